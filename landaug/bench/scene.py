"""How long does the pix2pix labeller take to label one whole scene, and is the network or the blending the bound?

A ``--scene`` x ``--scene`` uint8 photo is labelled by ``SceneLabeller`` exactly as ``cgan.py predict`` does
(windows of the model's ``--size`` at scale 1, the project's overlap, ``--batch`` windows per forward pass,
blended probabilities, labels and confidence). The forward passes are timed apart from the rest, so the
report splits a scene's time into the network and everything around it (cutting windows, blending,
normalising, the label map). Untrained weights: the speed does not depend on what the network learnt.

Usage: ``out = measure_scene(resolve(BenchConfig(scene=1000, size=128, width=0.5)))``; ``format_scene(out)``.
"""

from __future__ import annotations

import os
import statistics
import time

from .measure import count_flops, machine, machine_words, peak_rss_mb, process_peak_rss_mb
from .options import SCENE_OVERLAP
from .project import fused_as_built, fused_pieces

SCALE = 1.0


def _timed_network(labeller) -> list[tuple[float, float]]:
    """Time every forward pass of ``labeller`` from now on; returns the list the (wall, CPU) seconds go to.

    The labeller converts the network's output to numpy straight away, so converting here first makes
    each recorded time the whole forward pass, not its launch."""
    fn, times = labeller.forward, []

    def forward(x):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn(x).numpy()
        times.append((time.perf_counter() - t0, time.process_time() - c0))
        return out

    labeller.forward = forward
    return times


def measure_scene(cfg) -> dict:
    """Seconds per scene (median of ``cfg.steps`` after ``cfg.warmup``), megapixels per second, windows, and
    the network's share of the time; ``cfg`` after ``resolve`` and ``validate``."""
    load_before = os.getloadavg()[0]
    import tensorflow as tf

    from ..cgan import SceneLabeller
    from ..cgan.model import build_labeller, weights_at_compute_precision
    from ..classes import SPARCS
    from ..runtime import setup_runtime
    from ..synthetic import make_scene
    from ..tiling import count_windows

    rt = setup_runtime(cfg.precision, seed=cfg.seed)
    with fused_pieces(cfg.no_fused):
        gen = weights_at_compute_precision(build_labeller(cfg.size, float(cfg.width), cfg.target, len(SPARCS),
                                                          upsample=cfg.upsample, inference=True))
    fused = fused_as_built([gen], [])
    fused.pop("adam")           # inference: no optimizer
    photo, _ = make_scene(cfg.seed, cfg.scene)
    labeller = SceneLabeller(gen, cfg.target, SPARCS, cfg.size, SCALE, SCENE_OVERLAP, cfg.batch)
    flops_per_pass = count_flops(labeller.fn.get_concrete_function(
        tf.TensorSpec([cfg.batch, cfg.size, cfg.size, 3], tf.float32)))
    network = _timed_network(labeller)
    for _ in range(cfg.warmup):
        labeller(photo)
    totals, nets, cpus, net_cpus, passes = [], [], [], [], 0
    for _ in range(cfg.steps):
        network.clear()
        t0, c0 = time.perf_counter(), time.process_time()
        labeller(photo)
        totals.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        nets.append(sum(w for w, _ in network))
        net_cpus.append(sum(c for _, c in network))
        passes = len(network)

    windows = count_windows(cfg.scene, cfg.scene, cfg.size, SCALE, SCENE_OVERLAP)
    seconds, net = statistics.median(totals), statistics.median(nets)
    gflop = flops_per_pass * passes / 1e9
    return {
        "mode": "scene", "scene_px": cfg.scene, "size": cfg.size, "width": cfg.width, "batch": cfg.batch,
        "overlap": SCENE_OVERLAP, "scale": SCALE, "target": cfg.target, "precision": rt.precision,
        "fused": fused, "steps": cfg.steps, "warmup": cfg.warmup,
        "windows_per_scene": windows, "forward_passes_per_scene": passes,
        "seconds_per_scene": seconds,
        "megapixels_per_second": cfg.scene * cfg.scene / 1e6 / seconds,
        "windows_per_second": windows / seconds,
        "network_seconds_per_scene": net,
        "blending_seconds_per_scene": statistics.median(t - n for t, n in zip(totals, nets)),
        "network_share": net / seconds,
        # CPU seconds of this process: the work, whatever share of the cores it got on a shared machine
        "cpu_seconds_per_scene": statistics.median(cpus),
        "network_cpu_seconds_per_scene": statistics.median(net_cpus),
        "network_cpu_share": statistics.median(net_cpus) / statistics.median(cpus),
        "gflop_per_scene": gflop,
        "network_achieved_gflops": gflop / net,
        "scene_seconds": totals, "network_seconds": nets,
        "peak_host_memory_mb": peak_rss_mb(), "process_peak_host_memory_mb": process_peak_rss_mb(),
        "machine": machine(), "load_average_before": load_before,
    }


def format_scene(out: dict) -> str:
    m = out["machine"]
    norm = "fused batch norm" if out["fused"]["batchnorm"] else "Keras batch norm"
    per_pass = out["network_seconds_per_scene"] / max(out["forward_passes_per_scene"], 1)
    return "\n".join([
        f"bench: whole-scene labelling of a {out['scene_px']} x {out['scene_px']} photo by pix2pix "
        f"({out['size']} px windows, width {out['width']:g}, overlap {out['overlap']:g}, scale {out['scale']:g}, "
        f"{out['precision']}, {norm}) on {machine_words(m)}, TensorFlow {m['tensorflow']}",
        f"  scene      {out['seconds_per_scene']:8.3f} s per scene = {out['megapixels_per_second']:.2f} Mpx/s "
        f"(median of {out['steps']})",
        f"  windows    {out['windows_per_scene']:8d} per scene in {out['forward_passes_per_scene']} forward passes "
        f"of {out['batch']} ({out['windows_per_second']:.1f} windows/s)",
        f"  network    {out['network_seconds_per_scene']:8.3f} s = {100 * out['network_share']:.0f} % of the scene "
        f"({per_pass * 1000:.0f} ms per pass, {out['network_achieved_gflops']:.0f} GFLOP/s)",
        f"  blending   {out['blending_seconds_per_scene']:8.3f} s (cutting windows, blending, normalising, labels)",
        f"  CPU time   {out['cpu_seconds_per_scene']:8.3f} s per scene, {100 * out['network_cpu_share']:.0f} % of it "
        f"in the network",
        f"  memory     {out['peak_host_memory_mb']:8.0f} MB peak host",
    ])
