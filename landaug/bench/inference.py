"""Is the strip-by-strip labeller faster than the whole-scene labeller it replaced, and what does each change give?

``bench.py --scene 1000 --ablation inference [--tta]``: one ``--scene`` x ``--scene`` photo labelled by the
same network (``--size``, ``--width``, ``--upsample``, untrained weights) in several ways, in one process,
taking turns scene by scene for ``--warmup`` untimed and ``--steps`` timed rounds, the order rotating every
round. Each round's time ratio against ``before`` is the comparison to quote (the median over rounds):
neighbouring scenes see nearly the same load on a shared machine. The variants:

- ``before``: the whole-scene labeller ``cgan.py predict`` used before (``bench.baseline``), 8 windows per
  forward pass;
- ``strips_b8``: strip by strip, 8 windows per pass, reading, network and blending one after another;
- ``strips_b32``: the same with ``--batch`` windows per pass (default 32, predict's default);
- ``strips_b32_threads``: reading and blending in threads beside the forward passes;
- ``strips_b32_threads_xla``: the forward pass and decoder compiled by XLA (``jit_compile=True``);
- ``strips_b32_threads_xla_softmax``: only the decoder (cast, softmax) compiled by XLA;
- ``strips_b32_threads_xla_softmax_head``: and the network as ``SceneLabeller.load`` builds it (what predict
  runs): the logits layer at the compute precision, the convolutions' weights held there.

The network's FLOPs per pass are counted from its graph; utilisation is the scene's network work over its
whole time, against the peak of the precision it computes in (``measure.peaks``).

Usage: ``out = measure_inference(resolve(BenchConfig(scene=1000, ablation="inference")))``;
``format_inference(out)``.
"""

from __future__ import annotations

import os
import statistics
import time

from .measure import compute_dtype, count_flops, machine, peaks, utilization
from .options import SCENE_OVERLAP

BEFORE_BATCH = 8
# name: (strips, windows per pass (None: --batch), threads, forward pass): "plain" one TensorFlow graph,
# "xla" all of it compiled, "xla_softmax" the decoder compiled, "head" and the logits layer at the compute
# precision
VARIANTS = {"before": (False, BEFORE_BATCH, False, "plain"), "strips_b8": (True, BEFORE_BATCH, False, "plain"),
            "strips_b32": (True, None, False, "plain"), "strips_b32_threads": (True, None, True, "plain"),
            "strips_b32_threads_xla": (True, None, True, "xla"),
            "strips_b32_threads_xla_softmax": (True, None, True, "xla_softmax"),
            "strips_b32_threads_xla_softmax_head": (True, None, True, "head")}


def _variant(gens, cfg, strips: bool, batch: int, threads: bool, forward: str):
    """(label a photo -> probabilities, the network function, its forward-pass counter); ``gens``: the
    network as trained (float32 logits layer) and as predict builds it, with the same weights."""
    from ..bench.baseline import whole_scene
    from ..blockwise import predict_scene
    from ..cgan.infer import SceneLabeller, _probabilities, to_unit
    from ..cgan.model import decoder
    from ..classes import SPARCS
    from ..runtime import model_function

    gen = gens[forward == "head"]
    labeller = SceneLabeller(gen, cfg.target, SPARCS, cfg.size, 1.0, SCENE_OVERLAP, batch)
    if forward == "plain":
        labeller.forward = labeller.fn
    elif forward == "xla":
        labeller.forward = model_function(_probabilities, gen, decoder(cfg.target, SPARCS.colors), jit_compile=True)
    passes = [0]
    run = labeller._run

    def counted(x):
        passes[0] += 1
        return run(x)
    tta = "flips" if cfg.tta else "none"
    k = len(SPARCS)

    def label(photo):
        x = to_unit(photo)
        if strips:
            return predict_scene(x, counted, cfg.size, k, 1.0, SCENE_OVERLAP, batch, tta, overlapped=threads)
        return whole_scene(x, counted, cfg.size, k, 1.0, SCENE_OVERLAP, batch, tta)
    return label, labeller.fn, passes


def measure_inference(cfg) -> dict:
    """Seconds per scene of each variant (median), and its speed against ``before`` (median of the per-round
    ratios); ``cfg`` after ``resolve`` and ``validate``."""
    load_before = os.getloadavg()[0]
    import tensorflow as tf

    from ..cgan.model import build_labeller, weights_at_compute_precision
    from ..classes import SPARCS
    from ..runtime import setup_runtime
    from ..synthetic import make_scene

    rt = setup_runtime(cfg.precision, seed=cfg.seed)
    gens = [build_labeller(cfg.size, float(cfg.width), cfg.target, len(SPARCS), upsample=cfg.upsample,
                           inference=inference) for inference in (False, True)]
    gens[1].set_weights(gens[0].get_weights())
    gens[1] = weights_at_compute_precision(gens[1])
    photo, _ = make_scene(cfg.seed, cfg.scene)
    variants = {}
    for name, (strips, batch, threads, forward) in VARIANTS.items():
        batch = batch or cfg.batch
        label, fn, passes = _variant(gens, cfg, strips, batch, threads, forward)
        # every variant's work is that of its plain graph, which XLA compiles whole or in part
        flops = count_flops(fn.get_concrete_function(tf.TensorSpec([batch, cfg.size, cfg.size, 3], tf.float32)))
        variants[name] = {"label": label, "passes": passes, "batch": batch, "flops_per_pass": flops, "seconds": [],
                          "cpu_seconds": []}
    names, ratios = list(variants), {n: [] for n in variants}
    for r in range(cfg.warmup + cfg.steps):
        order = names[r % len(names):] + names[:r % len(names)]
        took = {}
        for name in order:
            v = variants[name]
            v["passes"][0] = 0
            t0, c0 = time.perf_counter(), time.process_time()
            v["label"](photo)
            took[name] = time.perf_counter() - t0
            if r >= cfg.warmup:
                v["seconds"].append(took[name])
                v["cpu_seconds"].append(time.process_time() - c0)
        if r >= cfg.warmup:
            for name in names:
                ratios[name].append(took["before"] / took[name])
    f32_peak, peak = peaks(compute_dtype(rt.precision), cfg.peak_size)
    out = {}
    for name, v in variants.items():
        seconds = statistics.median(v["seconds"])
        gflops = v["flops_per_pass"] * v["passes"][0] / 1e9 / seconds
        out[name] = {"batch": v["batch"], "forward_passes": v["passes"][0], "seconds_per_scene": seconds,
                     "megapixels_per_second": cfg.scene ** 2 / 1e6 / seconds,
                     "cpu_seconds_per_scene": statistics.median(v["cpu_seconds"]),
                     "speedup_vs_before": statistics.median(ratios[name]), "network_gflops": gflops,
                     **utilization(gflops, peak, f32_peak), "seconds": v["seconds"]}
    return {"mode": "inference", "scene_px": cfg.scene, "size": cfg.size, "width": cfg.width,
            "upsample": cfg.upsample, "tta": bool(cfg.tta), "overlap": SCENE_OVERLAP, "precision": rt.precision,
            "steps": cfg.steps, "warmup": cfg.warmup, "peak_gflops": peak, "peak_float32_gflops": f32_peak,
            "variants": out, "machine": machine(), "load_average_before": load_before,
            "load_average_after": os.getloadavg()[0]}


def format_inference(out: dict) -> str:
    m = out["machine"]
    lines = [f"bench: a {out['scene_px']} x {out['scene_px']} scene labelled {'with flip TTA ' if out['tta'] else ''}"
             f"by a {out['size']} px labeller (width {out['width']:g}, {out['upsample']} upsampling, "
             f"{out['precision']}) in each way, {out['steps']} interleaved rounds, on {m['cpu']} ({m['cores']} cores); "
             f"load average {out['load_average_before']:.1f} before, {out['load_average_after']:.1f} after; peak "
             f"{out['peak_gflops']:.0f} GFLOP/s",
             f"  {'variant':36s} {'batch':>5s} {'passes':>6s} {'s/scene':>8s} {'Mpx/s':>6s} {'x before':>8s} "
             f"{'GFLOP/s':>8s} {'of peak':>7s}"]
    for name in VARIANTS:                 # in this order, whatever order the JSON keeps
        v = out["variants"][name]
        lines.append(f"  {name:36s} {v['batch']:5d} {v['forward_passes']:6d} {v['seconds_per_scene']:8.3f} "
                     f"{v['megapixels_per_second']:6.2f} {v['speedup_vs_before']:8.2f} {v['network_gflops']:8.0f} "
                     f"{100 * v['utilization']:6.0f}%")
    return "\n".join(lines)
