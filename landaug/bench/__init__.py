"""``bench.py``: how fast the GANs train and infer on this machine, against its measured matrix-multiply peak.

One process measures, for one configuration: the median over timed steps (warm-up excluded) of images
per second of a training step (with its input pipeline) and of inference; the FLOPs of one training step,
counted from the step's graph (not estimated from the architecture); the achieved GFLOP/s; and the peak
of a large matrix multiply in the run's compute precision and in float32. ``--compare`` also runs the
tutorial-style reference pix2pix and reports the speedup; ``--no-fused`` builds with Keras's batch norm
and Adam instead of the fused kernels, ``--ablation`` interleaves all those builds in one process
(``--ablation labeller``: pix2pix against unet, the pixel losses and the decoder's upsampling);
``--scene PX`` times the labeller on a whole PX x PX scene.

Modules: ``options`` (configuration, checks, command line), ``measure`` (FLOPs, peaks, memory, timing),
``project`` (the project's GANs as built for timing), ``reference`` (the tutorial-style pix2pix),
``ablation`` (variants of a model, steps interleaved), ``scene`` (whole-scene inference speed), ``cli`` (the
run and its summary).

Usage: ``python bench.py --model pix2pix --size 256 --batch 4 [--compare] [--no-fused] [--ablation] [--json]``;
``python bench.py --size 128 --width 0.5 --batch 8 --ablation labeller``;
``python bench.py --scene 1000 --size 128 --width 0.5``; from Python ``run(BenchConfig(...))``.
"""

from .cli import format_summary, main, run, utilization_line
from .measure import BatchTooLarge, count_flops, largest_fitting_batch, matmul_peak, utilization
from .options import BenchConfig, resolve, to_argv, too_large_message, validate

# The keys every training result has (besides the per-run details): the test of the JSON checks them.
JSON_KEYS = ("images_per_second", "train_gflop_per_image", "achieved_gflops", "peak_gflops", "utilization",
             "utilization_float32")

__all__ = ["BatchTooLarge", "BenchConfig", "JSON_KEYS", "count_flops", "format_summary", "largest_fitting_batch",
           "main", "matmul_peak", "resolve", "run", "to_argv", "too_large_message", "utilization",
           "utilization_line", "validate"]
