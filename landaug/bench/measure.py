"""How fast did a configuration run, how much work was that, and how close to the machine's peak?

FLOPs are counted from a traced step's graph (TensorFlow's registered per-op statistics), peaks are the
fastest large matrix multiply in a given dtype, memory is the process's resident high-water mark, and
``measure`` times one built configuration (a ``Bench``) the way a training loop runs it.

Usage: ``count_flops(fn.get_concrete_function(spec))``; ``peak = matmul_peak("bfloat16")``;
``result = measure(cfg, build, photos, labels, work)`` with ``build(cfg, photos, labels, work) -> Bench``.
"""

from __future__ import annotations

import collections
import gc
import os
import platform
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .options import PEAK_MATMUL

PEAK_REPEATS = 8
COMPUTE_DTYPES = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}


class BatchTooLarge(Exception):
    """A configuration ran out of memory (a real allocation failure, or over ``--memory-limit-mb``)."""


@dataclass
class Bench:
    """What the timing loop needs of a built configuration, whatever the model."""
    label: str
    precision: str
    train: Callable            # train(batch) -> a small tensor to synchronise on
    batches: object            # iterator of input batches (the real training pipeline)
    infer: Callable            # infer() -> a small tensor to synchronise on
    train_concrete: object     # traced training step, for counting FLOPs
    infer_concrete: object
    infer_batch: int
    impl: str = "project"
    fused: dict | None = None  # {"batchnorm": bool, "adam": bool} as built; None for the reference
    labeller: object = None    # pix2pix: the SceneLabeller of its generator, labelling whole scenes


# ---------------------------------------------------------------------------------------------------
# Work and peaks

def count_flops(concrete) -> int:
    """Floating-point operations of one call of a traced function, from the ops' registered statistics.

    Only ops that run are counted: those the function's outputs and side effects (its control outputs,
    e.g. the optimizer updates) depend on. A gradient graph also holds nodes TensorFlow prunes before
    running (the filter gradient of a layer whose weights a tape does not ask for), which the profiler's
    whole-graph total (``tf.compat.v1.profiler`` with ``float_operation``) would add. TensorFlow registers
    a count for convolutions (forward and both backward kernels), matmuls and elementwise arithmetic;
    fused batch norm and the optimizer kernels have none, so the count slightly undercounts the step.
    Dtype-independent: a bfloat16 step counts what the same step in float32 would."""
    from tensorflow.python.framework import ops as tf_ops
    from tensorflow.python.util import deprecation

    # The per-op statistics still call a TF1 shape helper, which logs a deprecation notice per op type.
    with deprecation.silence():
        return _count_flops(concrete, tf_ops)


def _count_flops(concrete, tf_ops) -> int:
    graph = concrete.graph
    seen, stack = set(), [t.op for t in graph.outputs] + list(getattr(graph, "control_outputs", []))
    total = 0
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
        try:
            total += tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value or 0
        except (ValueError, TypeError):
            # Ops with no registered statistic, or shapes unknown at trace time: no count.
            pass
    return int(total)


def compute_dtype(precision: str) -> str:
    return COMPUTE_DTYPES.get(precision, "float32")


def matmul_peak(dtype: str, n: int = PEAK_MATMUL, repeats: int = PEAK_REPEATS) -> float:
    """GFLOP/s of the fastest of ``repeats`` n x n x n matmuls in ``dtype`` (after one warm-up).

    The fastest, not the median: a peak is what the hardware can do, and on a shared machine any
    slower repetition only shows interference."""
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal([n, n], seed=[1, 2]), dtype)
    b = tf.cast(tf.random.stateless_normal([n, n], seed=[3, 4]), dtype)
    # Only a corner comes back to the host: the timing is the multiply, not a copy of the result.
    mm = tf.function(lambda x, y: tf.matmul(x, y)[:1, :1])
    mm(a, b).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        mm(a, b).numpy()
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / min(times) / 1e9


def peaks(dtype: str, n: int) -> tuple[float, float]:
    """(float32 peak, peak in ``dtype``) in GFLOP/s."""
    f32 = matmul_peak("float32", n)
    return f32, (f32 if dtype == "float32" else matmul_peak(dtype, n))


def utilization(achieved_gflops: float, peak_gflops: float, peak_float32_gflops: float) -> dict:
    """The headline against the peak of the precision the run computes in, and the float32 figure beside it.

    A bfloat16 step measured against the float32 peak can show more than 100 %; against the bfloat16
    peak it says how much of the arithmetic the run actually uses."""
    return {"utilization": achieved_gflops / peak_gflops, "utilization_float32": achieved_gflops / peak_float32_gflops}


def machine() -> dict:
    """What the numbers were measured on."""
    import keras
    import tensorflow as tf

    from ..runtime import cpu_features, cpu_flags, cpu_model_name, cpu_supports_bf16, onednn_isa_cap, speed_settings

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    # 0 means TensorFlow's own choice (the number of cores for both pools).
    threads = {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
               "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    return {"cpu": cpu_model_name(), "cores": os.cpu_count(), "cpu_features": cpu_features(), "gpus": gpus,
            "cpu_flags": " ".join(cpu_flags()), "isa_cap": onednn_isa_cap(), "settings": speed_settings(),
            "threads": threads, "bf16_native": cpu_supports_bf16(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "python": platform.python_version(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")}


def machine_words(m: dict) -> str:
    """The machine of a summary's first line: CPU, cores, and any instruction-set cap or setting in force."""
    settings = " ".join(f"{k}={v}" for k, v in m.get("settings", {}).items())
    return (f"{m['cpu']} ({m['cores']} cores{', ' + ', '.join(m['gpus']) if m['gpus'] else ''}"
            f"{'; ' + settings if settings else ''})")


def median_rate(seconds: Sequence[float], items: int) -> float:
    """Items per second of the median step."""
    return items / statistics.median(seconds)


# ---------------------------------------------------------------------------------------------------
# Memory

def reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS counter of this process (Linux), so each configuration has its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def current_rss_mb() -> float | None:
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset (else since start: ru_maxrss)."""
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    return process_peak_rss_mb()


def process_peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def device_memory_mb() -> dict | None:
    """Current and peak memory of the first accelerator, where TensorFlow reports it (GPUs); else None."""
    import tensorflow as tf

    for kind in ("GPU", "CPU"):
        devices = tf.config.list_logical_devices(kind)
        if not devices:
            continue
        try:
            info = tf.config.experimental.get_memory_info(devices[0].name)
        except (ValueError, tf.errors.OpError):
            continue
        return {"device": devices[0].name, "current_mb": info["current"] / 2 ** 20, "peak_mb": info["peak"] / 2 ** 20}
    return None


def reset_device_memory() -> None:
    import tensorflow as tf

    for d in tf.config.list_logical_devices("GPU")[:1] or tf.config.list_logical_devices("CPU")[:1]:
        try:
            tf.config.experimental.reset_memory_stats(d.name)
        except (ValueError, tf.errors.OpError):
            pass


def is_oom(e: BaseException) -> bool:
    import tensorflow as tf

    return isinstance(e, (MemoryError, tf.errors.ResourceExhaustedError)) or "out of memory" in str(e).lower()


def largest_fitting_batch(fits: Callable[[int], bool], too_big: int) -> int:
    """The largest batch below ``too_big`` for which ``fits`` holds (0 if not even 1 fits).

    Halves until a batch fits, then bisects between that one and the smallest known failure."""
    lo, hi = 0, too_big
    b = too_big // 2
    while b >= 1:
        if fits(b):
            lo = b
            break
        hi = b
        b //= 2
    if lo == 0:
        return 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


# ---------------------------------------------------------------------------------------------------
# Timing

def sync(x) -> None:
    """Wait for every tensor in ``x``: TensorFlow may return before the work is done."""
    import tensorflow as tf

    for t in tf.nest.flatten(x):
        if hasattr(t, "numpy"):
            t.numpy()


def timed(fn: Callable, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def profile_ops(step: Callable, n: int, top: int = 15) -> dict:
    """Op time per step by op type and by graph node, from a TensorFlow profiler trace of ``n`` steps.

    Times are summed over the threads that run ops, so on a multi-core CPU they add up to more than
    the step's wall time; the executor's own events around ops are left out."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory(prefix="landaug_trace_") as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(n):
            step()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    per_type, per_node = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                name = names.get(ev.metadata_id, "")
                # Op events are "<node name>:<op type>"; "A::B" events are the runtime's own, and
                # "__inference_*" types are function calls whose time is their ops' time again.
                if ":" not in name or "::" in name:
                    continue
                node, op = (part.strip() for part in name.rsplit(":", 1))
                if op.startswith("__"):
                    continue
                # oneDNN's graph rewrite renames the kernels it takes over (Conv2D -> _MklNativeConv2D).
                op = op.removeprefix("_MklNative").removeprefix("_Mkl")
                ms = ev.duration_ps / 1e9 / n
                per_type[op] += ms
                per_node[f"{node} ({op})"] += ms
    return {"steps": n, "op_ms_per_step": sum(per_type.values()),
            "by_op_type": dict(per_type.most_common(top)), "by_node": dict(per_node.most_common(top))}


def measure(cfg, build: Callable, photos, labels, work: Path) -> dict:
    """Build one implementation, warm up, time training and inference; FLOPs from the traced step."""
    import keras

    keras.backend.clear_session()
    gc.collect()
    reset_peak_rss()
    reset_device_memory()
    rss_before = current_rss_mb()
    try:
        bench = build(cfg, photos, labels, work)
        for _ in range(cfg.warmup):
            sync(bench.train(next(bench.batches)))
            sync(bench.infer())
    except Exception as e:  # noqa: BLE001 - only out-of-memory is turned into a message; the rest re-raises
        if is_oom(e):
            raise BatchTooLarge(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        raise
    needed = peak_rss_mb() - (rss_before or 0.0)
    if cfg.memory_limit_mb is not None and needed > cfg.memory_limit_mb:
        raise BatchTooLarge(f"needs {needed:.0f} MB, over --memory-limit-mb {cfg.memory_limit_mb:g}")

    # Input pipeline alone: how fast it produces batches when nothing else runs.
    input_times = timed(lambda: sync(next(bench.batches)), cfg.steps)
    # Training as in a training loop: wait for the next batch, run the step.
    loop, waits, cpu = [], [], []
    for _ in range(cfg.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        batch = next(bench.batches)
        t1 = time.perf_counter()
        sync(bench.train(batch))
        t2 = time.perf_counter()
        loop.append(t2 - t0)
        waits.append(t1 - t0)
        cpu.append(time.process_time() - c0)
    # The step alone, on a batch already in memory.
    fixed = next(bench.batches)
    step_times = timed(lambda: sync(bench.train(fixed)), cfg.steps)
    infer_times = timed(lambda: sync(bench.infer()), cfg.steps)

    profile = profile_ops(lambda: sync(bench.train(fixed)), cfg.profile) if cfg.profile else None
    train_flops = count_flops(bench.train_concrete)
    infer_flops = count_flops(bench.infer_concrete)
    images_per_second = median_rate(loop, cfg.batch)
    infer_rate = median_rate(infer_times, bench.infer_batch)
    gflop_per_image = train_flops / cfg.batch / 1e9
    result = {
        "impl": bench.impl, "label": bench.label,
        "precision": bench.precision, "fused": bench.fused,
        "images_per_second": images_per_second,
        "step_only_images_per_second": median_rate(step_times, cfg.batch),
        "inference_images_per_second": infer_rate,
        "train_gflop_per_image": gflop_per_image,
        "inference_gflop_per_image": infer_flops / bench.infer_batch / 1e9,
        "achieved_gflops": gflop_per_image * images_per_second,
        "inference_achieved_gflops": infer_flops / bench.infer_batch / 1e9 * infer_rate,
        "step_seconds": statistics.median(loop),
        # CPU seconds of this process per step: the work, whatever share of the cores other jobs left it
        "cpu_seconds_per_step": statistics.median(cpu),
        "step_only_seconds": statistics.median(step_times),
        "input_seconds_per_batch": statistics.median(input_times),
        "input_wait_seconds": statistics.median(waits),
        "peak_host_memory_mb": peak_rss_mb(),
        "host_memory_needed_mb": needed,
        "device_memory": device_memory_mb(),
    }
    if profile is not None:
        result["profile"] = profile
    bench = None   # the models go before the next implementation is built
    keras.backend.clear_session()
    gc.collect()
    return result
