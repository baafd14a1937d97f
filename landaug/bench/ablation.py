"""What does a variant of a model cost per training step? Every variant built in one process, steps interleaved.

``--ablation fused``: do the fused batch norm and Adam kernels pay off? The same model is built four
times: fused batch norm and Adam (the default), Keras's own for both, and Keras's own for one piece at a
time. ``--ablation labeller``: what do the labeller's options cost? pix2pix (the reference) against unet
(no discriminator), unet with each pixel loss, both with resize-convolution upsampling, and unet at twice
the width. ``--ablation xla``: does compiling with XLA pay off on this CPU? The model as built (with
``--labeller``, ``--loss``, ``--upsample``, ``--precision``) without and with XLA, for the training step
and the forward pass alike (XLA's CPU code does not go through oneDNN, so the answer depends on the
instruction set and the precision).

The variants take turns, one training step each (waiting for its batch as a training loop does), for
``--warmup`` untimed and ``--steps`` timed rounds, the order rotating every round. On a machine shared
with other work the load changes from second to second; neighbouring steps of different variants see
nearly the same load, so each round's time ratio against the first variant's step is a fair comparison,
and the median over rounds is the figure to quote. The process's CPU time per step is recorded beside the
wall time: the work done, whatever share of the cores it got. Each variant's FLOPs per image are counted
from its step's graph. The forward passes (inference on a batch) then take turns the same way.

Usage: ``out = measure_ablation(resolve(BenchConfig(model="pix2pix", ablation="labeller")))``;
``format_ablation(out)``.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from pathlib import Path

from .measure import count_flops, machine, machine_words, process_peak_rss_mb, sync

# Each kind's variants as option overrides (or a function of the configuration giving them); the first is
# the one the others are compared with.
VARIANTS = {
    "fused": {"fused": {"no_fused": None}, "keras_both": {"no_fused": "all"},
              "keras_batchnorm": {"no_fused": "batchnorm"}, "keras_adam": {"no_fused": "adam"}},
    "labeller": {"pix2pix": {}, "unet": {"labeller": "unet"},
                 "unet_dice": {"labeller": "unet", "loss": "ce+dice"},
                 "unet_lovasz": {"labeller": "unet", "loss": "ce+lovasz"},
                 "unet_resize": {"labeller": "unet", "upsample": "resize"},
                 "pix2pix_resize": {"upsample": "resize"},
                 "unet_width2x": lambda cfg: {"labeller": "unet", "width": 2 * float(cfg.width)}},
    "xla": {"graph": {"xla": False}, "xla": {"xla": True}},
}


def measure_ablation(cfg) -> dict:
    """Images/s of each variant (median step) and its speed relative to the first (median of the
    per-round ratios); ``cfg`` after ``resolve`` and ``validate``."""
    load_before = os.getloadavg()[0]
    from ..runtime import setup_runtime
    from .project import BUILDERS, synthetic_scenes

    rt = setup_runtime(cfg.precision, seed=cfg.seed)
    photos, labels = synthetic_scenes(cfg.scenes or max(2 * cfg.batch, 8), cfg.size, cfg.seed)
    benches, infers = {}, {}
    kind = cfg.ablation
    with tempfile.TemporaryDirectory(prefix="landaug_ablation_") as tmp:
        for name, overrides in VARIANTS[kind].items():
            overrides = overrides(cfg) if callable(overrides) else overrides
            variant = dataclasses.replace(cfg, **overrides)
            benches[name] = BUILDERS[cfg.model](variant, photos, labels, Path(tmp))
            infers[name] = _compiled(benches[name].infer) if variant.xla else benches[name].infer
        # Warm-up in turns too: a variant built first must not run its first timed step with cold memory.
        for _ in range(cfg.warmup):
            for name, bench in benches.items():
                sync(bench.train(next(bench.batches)))
                sync(infers[name]())
        names = list(benches)
        train = _take_turns(names, cfg.steps, lambda name: sync(benches[name].train(next(benches[name].batches))))
        infer = _take_turns(names, cfg.steps, lambda name: sync(infers[name]()))
    variants = {}
    first = names[0]
    for name in names:
        (wall, cpu), (infer_wall, infer_cpu) = train[name], infer[name]
        variants[name] = {"label": benches[name].label, "fused": benches[name].fused,
                          "images_per_second": cfg.batch / statistics.median(wall),
                          "step_seconds": statistics.median(wall), "step_seconds_all": wall,
                          f"speed_vs_{first}": _median_ratio(train[first][0], wall),
                          # CPU seconds of this process: the work, whatever share of the cores it got
                          "cpu_seconds_per_step": statistics.median(cpu), "cpu_seconds_all": cpu,
                          f"cpu_speed_vs_{first}": _median_ratio(train[first][1], cpu),
                          "inference_images_per_second": benches[name].infer_batch / statistics.median(infer_wall),
                          "inference_seconds_all": infer_wall,
                          f"inference_speed_vs_{first}": _median_ratio(infer[first][0], infer_wall),
                          f"inference_cpu_speed_vs_{first}": _median_ratio(infer[first][1], infer_cpu),
                          "train_gflop_per_image": count_flops(benches[name].train_concrete) / cfg.batch / 1e9}
    return {"mode": "ablation", "ablation": kind, "reference_variant": first, "model": cfg.model, "size": cfg.size,
            "batch": cfg.batch, "width": cfg.width,
            "precision": rt.precision, "xla": cfg.xla, "rounds": cfg.steps, "warmup": cfg.warmup,
            "variants": variants, "process_peak_host_memory_mb": process_peak_rss_mb(), "machine": machine(),
            "load_average_before": load_before, "load_average_after": os.getloadavg()[0]}


def _compiled(infer):
    """The forward pass compiled with XLA as one cluster (its inputs are constants the closure captured)."""
    import tensorflow as tf

    return tf.function(infer, jit_compile=True)


def _take_turns(names: list[str], rounds: int, run) -> dict[str, tuple[list[float], list[float]]]:
    """(wall seconds, CPU seconds) of ``run(name)`` per round for every name, the order rotating each round."""
    times = {name: ([], []) for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            t0, c0 = time.perf_counter(), time.process_time()
            run(name)
            times[name][0].append(time.perf_counter() - t0)
            times[name][1].append(time.process_time() - c0)
    return times


def _median_ratio(reference: list[float], variant: list[float]) -> float:
    """The median over rounds of the reference's time over the variant's: the variant's speed relative to it."""
    return statistics.median(f / t for f, t in zip(reference, variant))


def format_ablation(out: dict) -> str:
    m = out["machine"]
    first = out["reference_variant"]
    lines = [f"bench: {out['ablation']} ablation, {out['model']} {out['size']} px, batch {out['batch']}, "
             f"width {out['width']:g}, {out['precision']}, {out['rounds']} interleaved rounds on "
             f"{machine_words(m)}, load {out['load_average_before']:.2f} -> {out['load_average_after']:.2f}"]
    for v in out["variants"].values():
        lines.append(f"  {v['label']:60s} {v['images_per_second']:8.2f} images/s  "
                     f"{v['speed_vs_' + first]:6.3f}x the {first} speed ({v['cpu_speed_vs_' + first]:.3f}x in CPU "
                     f"time), {v['train_gflop_per_image']:.2f} GFLOP/image; inference "
                     f"{v['inference_images_per_second']:.1f} images/s, {v['inference_speed_vs_' + first]:.3f}x "
                     f"({v['inference_cpu_speed_vs_' + first]:.3f}x in CPU time)")
    return "\n".join(lines)
