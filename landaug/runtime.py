"""TensorFlow runtime set-up shared by the training stages: devices, precision, XLA, determinism, strategy.

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
STRATEGIES = ("default", "mirrored", "multiworker")


def cpu_model_name() -> str:
    """The CPU's marketing name from /proc/cpuinfo, for the machine line of reports and benchmarks."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def cpu_features() -> list[str]:
    """The CPU features that decide this project's speed (AVX-512, its bfloat16 extension, AMX)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return []
    names = {"avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}
    return [label for flag, label in names.items() if flag in flags]


def cpu_supports_bf16() -> bool:
    """True when this CPU runs bfloat16 matmuls natively (AVX512-BF16 or AMX), as oneDNN uses them."""
    return bool({"AVX512-BF16", "AMX-BF16"} & set(cpu_features()))


def validate_runtime_options(precision: str, strategy: str, cpu_devices: int) -> None:
    """Checked before any compute: names the option and how to fix it."""
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
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
    ``functools.partial`` has no code object and is counted on its own."""
    import functools

    import tensorflow as tf

    return tf.function(functools.partial(fn, *bound), **tf_function_kwargs)


def call_inference(model, x):
    """A model's forward pass in inference mode, for ``model_function(call_inference, model)``."""
    return model(x, training=False)
