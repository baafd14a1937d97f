"""``bench.py``: measure one configuration (and the reference with ``--compare``), print a summary or JSON.

Utilisation is reported against the matrix-multiply peak of the precision the run computes in (the
bfloat16 peak for mixed_bfloat16, float16 for mixed_float16), with the figure against the float32 peak
beside it. A batch that does not fit ends with one line naming the largest batch that does, found by
trying smaller batches in fresh processes.

Usage: ``out = run(BenchConfig(model="pix2pix", size=256, batch=4, compare=True))``; ``main(argv)``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from ..errors import UserError
from .measure import (BatchTooLarge, compute_dtype, largest_fitting_batch, machine, machine_words, measure, peaks,
                      process_peak_rss_mb, utilization)
from .options import BenchConfig, build_parser, config_from_args, resolve, to_argv, too_large_message, validate

ROOT = Path(__file__).resolve().parents[2]


def run(cfg: BenchConfig) -> dict:
    """Measure the configuration (and the reference with ``compare``); returns the JSON result."""
    cfg = resolve(cfg)
    validate(cfg)
    from ..tfquiet import quiet_tensorflow

    quiet_tensorflow()
    if cfg.ablation == "inference":
        from .inference import measure_inference

        return measure_inference(cfg)
    if cfg.scene:
        from .scene import measure_scene

        return measure_scene(cfg)
    if cfg.ablation:
        from .ablation import measure_ablation

        return measure_ablation(cfg)
    from ..runtime import setup_runtime
    from .project import BUILDERS, synthetic_scenes
    from .reference import build_reference

    load_before = os.getloadavg()[0]
    rt = setup_runtime("float32" if cfg.impl == "reference" else cfg.precision)
    n = cfg.scenes or max(2 * cfg.batch, 8)
    photos, labels = synthetic_scenes(n, cfg.size, cfg.seed)
    impls = ["project", "reference"] if cfg.compare else [cfg.impl]
    builders = {"project": BUILDERS[cfg.model], "reference": build_reference}
    dtype = compute_dtype(rt.precision)
    # The peaks before and after the models, the higher counting: one short burst of other work on the
    # machine then does not lower the reference the utilisation is measured against.
    measured = [peaks(dtype, cfg.peak_size)]
    with tempfile.TemporaryDirectory(prefix="landaug_bench_") as tmp:
        results = {impl: measure(cfg, builders[impl], photos, labels, Path(tmp)) for impl in impls}
    measured.append(peaks(dtype, cfg.peak_size))
    peak_f32, peak = max(p[0] for p in measured), max(p[1] for p in measured)
    for r in results.values():
        r_dtype = compute_dtype(r["precision"])
        r_peak = peak if r_dtype == dtype else peak_f32
        r.update(peak_gflops=r_peak, peak_dtype=r_dtype, peak_float32_gflops=peak_f32,
                 **utilization(r["achieved_gflops"], r_peak, peak_f32))
    main_result = results[impls[0]]
    main_result["peak_measurements_gflops"] = {"float32": [p[0] for p in measured], dtype: [p[1] for p in measured]}
    out = {"mode": "train", "model": cfg.model, "size": cfg.size, "batch": cfg.batch, "width": cfg.width,
           "xla": cfg.xla, "requested_precision": cfg.precision, "no_fused": cfg.no_fused,
           "target": cfg.target if cfg.model == "pix2pix" else None, "steps": cfg.steps, "warmup": cfg.warmup,
           **main_result, "machine": machine(), "process_peak_host_memory_mb": process_peak_rss_mb(),
           # Other work on the machine distorts the timings: the 1-minute load average before this run.
           "load_average_before": load_before}
    if cfg.compare:
        ref = results["reference"]
        out["reference"] = ref
        out["speedup"] = main_result["images_per_second"] / ref["images_per_second"]
        out["step_only_speedup"] = main_result["step_only_images_per_second"] / ref["step_only_images_per_second"]
    return out


def _probe_fits(cfg: BenchConfig, batch: int) -> bool:
    """Does ``batch`` fit? Asked of a fresh process, so nothing of the failed attempt is still held."""
    argv = [sys.executable, "-m", "landaug.bench", *to_argv(dataclasses.replace(
        cfg, batch=batch, steps=1, warmup=1, compare=False, search_batch=False, json=True, peak_size=64))]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    return proc.returncode == 0


def utilization_line(r: dict) -> str:
    """The headline against the run's own precision first, the float32 figure after it."""
    line = f"{r['achieved_gflops']:8.1f} GFLOP/s = {100 * r['utilization']:.0f} % of the {r['peak_dtype']} peak"
    if r["peak_dtype"] != "float32":
        line += f" ({100 * r['utilization_float32']:.0f} % of the float32 peak)"
    return line


def _fmt_result(r: dict) -> list[str]:
    mem = r.get("device_memory")
    lines = [
        f"  {r['label']}",
        f"    train      {r['images_per_second']:8.2f} images/s  ({r['step_seconds'] * 1000:.0f} ms/step incl. input; "
        f"step alone {r['step_only_images_per_second']:.2f} images/s)",
        f"    inference  {r['inference_images_per_second']:8.2f} images/s",
        f"    work       {r['train_gflop_per_image']:8.2f} GFLOP/image (training step), "
        f"{r['inference_gflop_per_image']:.2f} (inference)",
        f"    achieved   {utilization_line(r)}",
        f"    input      {r['input_seconds_per_batch'] * 1000:8.1f} ms/batch to produce, "
        f"{r['input_wait_seconds'] * 1000:.1f} ms/step waited",
        f"    memory     {r['peak_host_memory_mb']:8.0f} MB peak host"
        + (f", {mem['peak_mb']:.0f} MB peak on {mem['device']}" if mem else ""),
    ]
    prof = r.get("profile")
    if prof:
        lines.append(f"    profile    {prof['op_ms_per_step']:8.1f} ms of op time per step (all threads), "
                     f"{prof['steps']} traced steps; by op type:")
        lines += [f"               {ms:8.1f} ms  {op}" for op, ms in prof["by_op_type"].items()]
        lines.append("               by graph node:")
        lines += [f"               {ms:8.1f} ms  {node}" for node, ms in prof["by_node"].items()]
    return lines


def format_summary(out: dict) -> str:
    if out.get("mode") == "inference":
        from .inference import format_inference

        return format_inference(out)
    if out.get("mode") == "scene":
        from .scene import format_scene

        return format_scene(out)
    if out.get("mode") == "ablation":
        from .ablation import format_ablation

        return format_ablation(out)
    m = out["machine"]
    head = (f"bench: {out['model']} {out['size']} px, batch {out['batch']}, width {out['width']:g} on "
            f"{machine_words(m)}, TensorFlow {m['tensorflow']}, load {out['load_average_before']:.2f}")
    peak_line = f"  peak matmul: {out['peak_float32_gflops']:.0f} GFLOP/s float32"
    if out["peak_dtype"] != "float32":
        peak_line = f"  peak matmul: {out['peak_gflops']:.0f} GFLOP/s {out['peak_dtype']}, " \
                    f"{out['peak_float32_gflops']:.0f} GFLOP/s float32"
    lines = [head, peak_line, *_fmt_result(out)]
    if "reference" in out:
        lines += _fmt_result(out["reference"])
        lines.append(f"  speedup over the reference: {out['speedup']:.2f}x (step alone {out['step_only_speedup']:.2f}x)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = resolve(config_from_args(build_parser().parse_args(argv)))
    validate(cfg)
    try:
        out = run(cfg)
    except BatchTooLarge as e:
        largest = largest_fitting_batch(lambda b: _probe_fits(cfg, b), cfg.batch) if cfg.search_batch else None
        raise UserError(too_large_message(cfg, largest, str(e))) from None
    print(json.dumps(out, sort_keys=True, default=float) if cfg.json else format_summary(out))
    return 0
