"""TensorFlow runtime set-up shared by the training stages: devices, precision, XLA, determinism, strategy.

``--precision auto`` picks mixed bfloat16 where the hardware runs it natively, else float32; the environment
variable ``LANDAUG_PRECISION`` (float32, mixed_bfloat16 or mixed_float16) overrides what ``auto`` picks for a
whole run of every stage (``make demo``, ``make test``), e.g. to time the float32 path of CPUs without
bfloat16 on one that has it.

Usage: ``rt = setup_runtime(precision="auto", strategy="default", cpu_devices=0, deterministic=False, seed=0)``
then build models under ``with rt.strategy.scope():``. Must run before anything else touches TensorFlow.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .tfquiet import quiet_tensorflow

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
PRECISION_ENV = "LANDAUG_PRECISION"     # what --precision auto resolves to, when set
STRATEGIES = ("default", "mirrored", "multiworker")
ONEDNN_ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")
# oneDNN's instruction-set caps below AVX512_CORE_BF16: no native bfloat16 dot products under them.
ISAS_WITHOUT_BF16 = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI"}
SPEED_ENV = (*ONEDNN_ISA_ENV, "XLA_FLAGS", "NPY_DISABLE_CPU_FEATURES", "OPENBLAS_CORETYPE", "TF_ENABLE_ONEDNN_OPTS",
             "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", PRECISION_ENV)


def cpu_model_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo, for the machine line of reports and benchmarks."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def cpu_flags() -> list[str]:
    """The CPU's feature flags as the kernel lists them (``lscpu``'s Flags line)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line.split(":", 1)[1].split()
    except OSError:
        pass
    return []


def cpu_features() -> list[str]:
    """The CPU features that decide this project's speed (AVX-512, its bfloat16 extension, AMX)."""
    flags = set(cpu_flags())
    names = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}
    return [label for flag, label in names.items() if flag in flags]


def onednn_isa_cap() -> str | None:
    """The instruction set oneDNN is limited to (``ONEDNN_MAX_CPU_ISA``, e.g. AVX2), None when it is not."""
    for name in ONEDNN_ISA_ENV:
        value = os.environ.get(name, "").strip().upper()
        if value:
            return value
    return None


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bfloat16 matmuls natively (AVX512-BF16 or AMX), as oneDNN uses them: not when
    oneDNN is limited to an instruction set below AVX512_CORE_BF16."""
    return onednn_isa_cap() not in ISAS_WITHOUT_BF16 and _cpu_has_bf16()


def bfloat16_kernels_capped() -> bool:
    """oneDNN capped below AVX512_CORE_BF16 on a CPU that has bfloat16 (the AVX2 emulation of
    docs/PERFORMANCE.md): TensorFlow, reading the CPU's flags, still hands bfloat16 work to oneDNN, which
    has no kernel for it under the cap: a convolution fails (AbortedError), a matmul kills the process."""
    return onednn_isa_cap() in ISAS_WITHOUT_BF16 and _cpu_has_bf16()


def _cpu_has_bf16() -> bool:
    return bool({"AVX512-BF16", "AMX-BF16"} & set(cpu_features()))


def speed_settings() -> dict[str, str]:
    """The environment variables set for this process that change which instructions and threads the run
    uses (instruction-set caps of oneDNN, XLA and NumPy, oneDNN on or off, thread pools, the precision)."""
    return {name: os.environ[name] for name in SPEED_ENV if os.environ.get(name)}


def machine_description() -> str:
    """This process's machine in one line: system, logical CPUs, the CPU, its speed features and settings
    (thread pools left out: a run records each cell's own), and the GPUs TensorFlow sees. The GPUs only
    when this process has imported TensorFlow anyway (a training has; importing it to ask costs seconds
    of CPU), else "GPUs not listed"."""
    import platform
    import sys

    settings = [f"{k}={v}" for k, v in speed_settings().items() if "THREADS" not in k]
    cpu = ", ".join([cpu_model_name(), *cpu_features(), *settings])
    gpus = "GPUs not listed"
    if "tensorflow" in sys.modules:
        try:
            names = [d.name for d in sys.modules["tensorflow"].config.list_physical_devices("GPU")]
            gpus = "GPUs: " + ", ".join(names) if names else "no GPU"
        except Exception:  # a description must not fail a run for want of a device list
            pass
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical CPUs ({cpu}), {gpus}, "
            f"Python {platform.python_version()}")


def forced_precision() -> str | None:
    """The precision ``LANDAUG_PRECISION`` makes ``auto`` pick (None when unset), checked."""
    value = os.environ.get(PRECISION_ENV, "").strip()
    if not value:
        return None
    if value not in PRECISIONS[1:]:
        raise UserError(f"the environment variable {PRECISION_ENV}={value!r} is not one of "
                        f"{', '.join(PRECISIONS[1:])}: it sets what --precision auto picks; unset it or fix it")
    return value


def validate_runtime_options(precision: str, strategy: str, cpu_devices: int) -> None:
    """Checked before any compute: names the option and how to fix it."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    forced = forced_precision()
    if (forced if precision == "auto" else precision) == "mixed_bfloat16" and bfloat16_kernels_capped():
        raise UserError(f"--precision mixed_bfloat16: oneDNN is capped at {onednn_isa_cap()} (ONEDNN_MAX_CPU_ISA), "
                        "which has no bfloat16 kernels, on a CPU whose flags make TensorFlow use them: the training "
                        "would fail or crash; use --precision float32, or lift the cap")
    if strategy not in STRATEGIES:
        raise UserError(f"--strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if cpu_devices < 0:
        raise UserError(f"--cpu-devices must be >= 0, got {cpu_devices}")
    if strategy == "multiworker" and "TF_CONFIG" not in os.environ:
        raise UserError("--strategy multiworker needs the TF_CONFIG environment variable "
                        "(cluster and task of this process; see README 'Scaling up')")


@dataclass
class Runtime:
    strategy: object
    precision: str
    num_replicas: int
    is_chief: bool
    devices: list

    @property
    def compute_dtype(self) -> str:
        return {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(self.precision, "float32")


def _resolve_precision(precision: str, tf) -> str:
    if precision != "auto":
        return precision
    forced = forced_precision()
    if forced:
        return forced
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        cc = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        return "mixed_bfloat16" if tuple(cc) >= (8, 0) else ("mixed_float16" if tuple(cc) >= (7, 0) else "float32")
    return "mixed_bfloat16" if cpu_supports_bf16() else "float32"


def _is_chief_from_tf_config() -> bool:
    cfg = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = cfg.get("task", {})
    kind, index = task.get("type", "chief"), int(task.get("index", 0))
    has_chief = "chief" in cfg.get("cluster", {})
    return kind == "chief" or (not has_chief and kind == "worker" and index == 0)


_imports_frozen = False


def _freeze_imports() -> None:
    """Move the objects alive now (TensorFlow's and Keras's ~370,000 import-time objects) out of the cyclic
    garbage collector's reach, once per process.

    Every ``clear_session`` runs a full collection, and tracing a model triggers more, each walking all of
    them: without this, building and tracing tiny models (the test suite, ``bench.py --ablation labeller``
    at 16 px, a pipeline run on 32 px scenes) costs 13-15 % more CPU time. Live objects are never freed by
    the collector anyway; only cyclic garbage of objects alive at this moment would stay, so a collection
    runs first."""
    import gc

    global _imports_frozen
    if not _imports_frozen:
        gc.collect()
        gc.freeze()
        _imports_frozen = True


def setup_runtime(precision: str = "auto", strategy: str = "default", cpu_devices: int = 0,
                  deterministic: bool = False, seed: int = 0) -> Runtime:
    """Configure TensorFlow once for a training or inference run and return the distribution strategy."""
    validate_runtime_options(precision, strategy, cpu_devices)
    quiet_tensorflow()
    import keras
    import tensorflow as tf

    if cpu_devices > 1:
        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(cpu_devices)])
        except RuntimeError:
            # Devices were initialised earlier in this process (tests); keep what exists.
            pass
    _freeze_imports()
    # A fresh Keras state for this run; clear_session also resets the precision policy, so it must
    # come before the policy is set, never after.
    keras.backend.clear_session()
    # Initial weights, dropout and every other global random stream follow --seed in every run; bitwise
    # equal results across runs additionally need deterministic kernels.
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    resolved = _resolve_precision(precision, tf)
    keras.mixed_precision.set_global_policy(resolved)

    is_chief = True
    devices: list = []
    if strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        strat = tf.distribute.MirroredStrategy(devices=devices)
    elif strategy == "multiworker":
        strat = tf.distribute.MultiWorkerMirroredStrategy()
        is_chief = _is_chief_from_tf_config()
    else:
        strat = tf.distribute.get_strategy()
    if strategy != "default":
        devices = list(strat.extended.worker_devices)
    return Runtime(strategy=strat, precision=resolved, num_replicas=strat.num_replicas_in_sync,
                   is_chief=is_chief, devices=devices)


def model_function(fn, *bound, **tf_function_kwargs):
    """``tf.function`` of ``fn`` with its leading arguments (a model, a decoder) bound.

    TensorFlow counts retracings per code object, so a lambda traced once for each of many models in
    one process (the pipeline's arms and seeds) adds up to a false "excessive retracing" warning; a
    ``functools.partial`` has no code object and is counted on its own. No AutoGraph (as the training
    steps): the forward passes branch in Python only."""
    import functools

    import tensorflow as tf

    return tf.function(functools.partial(fn, *bound), **{"autograph": False, **tf_function_kwargs})


def call_inference(model, x):
    """A model's forward pass in inference mode, for ``model_function(call_inference, model)``."""
    return model(x, training=False)
