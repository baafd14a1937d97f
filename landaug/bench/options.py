"""What ``bench.py`` can be asked to measure, and the checks made before any compute (no TensorFlow here).

Usage: ``cfg = resolve(config_from_args(build_parser().parse_args(argv)))``; ``validate(cfg)``;
``to_argv(cfg)`` gives the command line back (for probing a batch size in a fresh process).
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass

from ..cgan.losses import LOSSES
from ..cgan.model import LABELLERS
from ..errors import ArgumentParser, UserError
from ..models import UPSAMPLES
from ..runtime import PRECISIONS

MODELS = ("pix2pix", "dcgan", "paired", "synth")
IMPLS = ("project", "reference")
TARGETS = ("classes", "rgb")
UNFUSED = ("all", "batchnorm", "adam")     # which fused pieces --no-fused swaps for Keras's own
# --ablation fused: the fused kernels; labeller: unet, losses, upsampling; inference: --scene labelled each way;
# xla: the model without and with XLA
ABLATIONS = ("fused", "labeller", "inference", "xla")
DEFAULT_WIDTH = {"pix2pix": 1.0, "dcgan": 256, "paired": 256, "synth": 0.25}
MULTIPLIER_WIDTH = ("pix2pix", "synth")      # --width is a filter multiplier (else channels at 4x4)
DEFAULT_SIZE = 256
DEFAULT_BATCH = 4
SCENE_SIZE = 128            # --scene: the model side of the project's 1000 px scenes shrunk to 128
SCENE_WIDTH = 0.5           # --scene: the README's CPU width
SCENE_BATCH = 8             # --scene: windows per forward pass, as cgan.py predict
INFERENCE_BATCH = 32        # --ablation inference: windows per forward pass, as cgan.py predict now
SCENE_OVERLAP = 0.25        # the project's default overlap of neighbouring windows
PEAK_MATMUL = 4096          # n of the n x n x n matmul: large enough to run at the kernel's full speed


@dataclass
class BenchConfig:
    model: str = "pix2pix"
    size: int | None = None             # None: 256, or 128 with --scene
    batch: int | None = None            # None: 4, or 8 windows with --scene
    width: float | None = None          # None: the model's default, or 0.5 with --scene
    precision: str = "auto"
    xla: bool = False
    impl: str = "project"
    compare: bool = False
    target: str = "classes"
    labeller: str = "pix2pix"           # pix2pix: the cgan.py train options of the same names
    loss: str = "ce"
    upsample: str = "transpose"
    no_fused: str | None = None         # None: fused batch norm and Adam; else one of UNFUSED
    scene: int = 0                      # > 0: whole-scene inference of a scene x scene photo instead
    ablation: str | None = None         # one of ABLATIONS: its variants in one process, steps interleaved
    tta: bool = False                   # --ablation inference: label with flip TTA
    steps: int = 10
    warmup: int = 3
    scenes: int = 0
    seed: int = 0
    peak_size: int = PEAK_MATMUL
    memory_limit_mb: float | None = None
    search_batch: bool = True
    profile: int = 0
    json: bool = False


def _power_of_two(n) -> bool:
    return isinstance(n, int) and n >= 1 and not n & (n - 1)


def resolve(cfg: BenchConfig) -> BenchConfig:
    """Fill in the size, batch and width the mode defaults to."""
    scene = cfg.scene > 0
    size = cfg.size if cfg.size is not None else (SCENE_SIZE if scene else DEFAULT_SIZE)
    scene_batch = INFERENCE_BATCH if cfg.ablation == "inference" else SCENE_BATCH
    batch = cfg.batch if cfg.batch is not None else (scene_batch if scene else DEFAULT_BATCH)
    width = cfg.width if cfg.width is not None else (SCENE_WIDTH if scene else DEFAULT_WIDTH[cfg.model])
    if cfg.model not in MULTIPLIER_WIDTH and float(width).is_integer():
        width = int(width)
    return dataclasses.replace(cfg, size=size, batch=batch, width=width)


def validate(cfg: BenchConfig) -> None:
    """``cfg`` after ``resolve``: one UserError naming the option and how to fix it."""
    if cfg.model not in MODELS:
        raise UserError(f"--model must be one of {', '.join(MODELS)}, got {cfg.model!r}")
    if cfg.impl not in IMPLS:
        raise UserError(f"--impl must be one of {', '.join(IMPLS)}, got {cfg.impl!r}")
    if cfg.precision not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if cfg.target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, got {cfg.target!r}")
    if cfg.no_fused is not None and cfg.no_fused not in UNFUSED:
        raise UserError(f"--no-fused takes one of {', '.join(UNFUSED)} (or nothing: all), got {cfg.no_fused!r}")
    for flag, value, choices in (("--labeller", cfg.labeller, LABELLERS), ("--loss", cfg.loss, LOSSES),
                                 ("--upsample", cfg.upsample, UPSAMPLES),
                                 ("--ablation", cfg.ablation or "fused", ABLATIONS)):
        if value not in choices:
            raise UserError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
    if not _power_of_two(cfg.size) or not 16 <= cfg.size <= 1024:
        raise UserError(f"--size must be a power of two from 16 to 1024 (e.g. 256), got {cfg.size}")
    if cfg.batch < 1:
        raise UserError(f"--batch must be >= 1, got {cfg.batch}")
    if cfg.steps < 1 or cfg.warmup < 1:
        raise UserError(f"--steps and --warmup must be >= 1 (the first step traces the graph), "
                        f"got {cfg.steps} and {cfg.warmup}")
    if cfg.scenes < 0:
        raise UserError(f"--scenes must be >= 0 (0 = enough for two batches), got {cfg.scenes}")
    if cfg.scene < 0:
        raise UserError(f"--scene is the side of the whole scene in pixels (e.g. 1000), got {cfg.scene}")
    if cfg.peak_size < 64:
        raise UserError(f"--peak-size must be >= 64, got {cfg.peak_size}")
    if cfg.profile < 0:
        raise UserError(f"--profile must be >= 0 (0 = no profile), got {cfg.profile}")
    if cfg.memory_limit_mb is not None and cfg.memory_limit_mb <= 0:
        raise UserError(f"--memory-limit-mb must be > 0, got {cfg.memory_limit_mb}")
    if cfg.tta and cfg.ablation != "inference":
        raise UserError("--tta is for --scene PX --ablation inference: drop it")
    if cfg.ablation == "inference" and not cfg.scene:
        raise UserError("--ablation inference labels a whole scene: give its side with --scene (e.g. --scene 1000)")
    if cfg.scene:
        _validate_scene(cfg)
    if cfg.ablation and cfg.ablation != "inference":
        _validate_ablation(cfg)
    _validate_model(cfg)


def _validate_model(cfg: BenchConfig) -> None:
    if cfg.model in MULTIPLIER_WIDTH:
        if not 0 < float(cfg.width) <= 4:
            raise UserError(f"--width for {cfg.model} is a filter multiplier in (0, 4] (1 = the paper's), "
                            f"got {cfg.width}")
    else:
        if not _power_of_two(cfg.width) or cfg.width < 8:
            raise UserError(f"--width for {cfg.model} is the channel count at 4x4, a power of two >= 8 "
                            f"(the paper's is 256), got {cfg.width}")
    if cfg.model != "pix2pix":
        if cfg.target != "classes":
            raise UserError(f"--target applies to pix2pix only, not --model {cfg.model}")
        if (cfg.labeller, cfg.loss, cfg.upsample) != ("pix2pix", "ce", "transpose"):
            raise UserError(f"--labeller, --loss and --upsample apply to pix2pix only, not --model {cfg.model}")
    if cfg.impl == "reference" or cfg.compare:
        if cfg.model != "pix2pix":
            raise UserError("the reference implementation is pix2pix only: drop --impl reference / --compare "
                            "or use --model pix2pix")
    if cfg.impl == "reference":
        if cfg.xla:
            raise UserError("--impl reference is the plain float32 step without XLA: drop --xla")
        if cfg.precision not in ("auto", "float32"):
            raise UserError(f"--impl reference runs in float32: drop --precision {cfg.precision}")
        if cfg.compare:
            raise UserError("--compare runs both implementations: drop --impl reference")
        if cfg.no_fused is not None:
            raise UserError("--impl reference is built from Keras layers only: drop --no-fused")
    if (cfg.impl == "reference" or cfg.compare) and (cfg.labeller, cfg.loss, cfg.upsample) != ("pix2pix", "ce",
                                                                                             "transpose"):
        raise UserError("the reference is the paper's pix2pix: drop --labeller, --loss and --upsample (or --compare)")


def _validate_scene(cfg: BenchConfig) -> None:
    """--scene times the pix2pix labeller on one whole scene: training options do not apply."""
    if cfg.model != "pix2pix":
        raise UserError(f"--scene times the pix2pix labeller: use --model pix2pix, not {cfg.model}")
    for flag, used in (("--compare", cfg.compare), ("--impl reference", cfg.impl == "reference"),
                       ("--xla", cfg.xla), ("--profile", cfg.profile),
                       ("--memory-limit-mb", cfg.memory_limit_mb is not None),
                       ("--labeller", cfg.labeller != "pix2pix"), ("--loss", cfg.loss != "ce")):
        if used:
            raise UserError(f"{flag} is for the training benchmark, not --scene: drop it")


def _validate_ablation(cfg: BenchConfig) -> None:
    """--ablation builds the project's model in every variant of the kind asked for and times training steps
    and forward passes: fused, every --no-fused variant; labeller, pix2pix and unet with each loss and
    upsampling; xla, the model as configured without and with XLA."""
    what = {"fused": "every --no-fused variant of the project's model",
            "labeller": "pix2pix against unet, the losses and the upsampling",
            "xla": "the model without and with XLA"}[cfg.ablation]
    # --ablation xla compares the model the other options build; the other kinds vary those options.
    varied = cfg.ablation != "xla"
    for flag, used in (("--scene", cfg.scene), ("--compare", cfg.compare), ("--impl reference", cfg.impl == "reference"),
                       ("--no-fused", cfg.no_fused is not None), ("--profile", cfg.profile),
                       ("--memory-limit-mb", cfg.memory_limit_mb is not None),
                       ("--xla", cfg.xla and not varied),
                       ("--labeller", varied and cfg.labeller != "pix2pix"), ("--loss", varied and cfg.loss != "ce"),
                       ("--upsample", varied and cfg.upsample != "transpose")):
        if used:
            raise UserError(f"--ablation {cfg.ablation} measures {what}: drop {flag}")
    if cfg.ablation == "labeller" and cfg.model != "pix2pix":
        raise UserError(f"--ablation labeller compares the labellers: use --model pix2pix, not {cfg.model}")


def too_large_message(cfg: BenchConfig, largest: int | None, why: str) -> str:
    what = f"--batch {cfg.batch} does not fit in memory for --model {cfg.model} at {cfg.size} px ({why})"
    if largest is None:
        return what + ": try a smaller --batch"
    if largest == 0:
        return what + ": not even --batch 1 fits; use a smaller --size or --width"
    return f"{what}: the largest batch that fits is {largest}, use --batch {largest}"


def to_argv(cfg: BenchConfig) -> list[str]:
    argv = ["--model", cfg.model, "--precision", cfg.precision, "--impl", cfg.impl, "--target", cfg.target,
            "--steps", str(cfg.steps), "--warmup", str(cfg.warmup), "--scenes", str(cfg.scenes),
            "--seed", str(cfg.seed), "--peak-size", str(cfg.peak_size), "--labeller", cfg.labeller,
            "--loss", cfg.loss, "--upsample", cfg.upsample]
    for flag, value in (("--size", cfg.size), ("--batch", cfg.batch), ("--width", cfg.width)):
        if value is not None:
            argv += [flag, str(value)]
    if cfg.scene:
        argv += ["--scene", str(cfg.scene)]
    if cfg.tta:
        argv += ["--tta"]
    if cfg.no_fused is not None:
        argv += ["--no-fused", cfg.no_fused]
    if cfg.memory_limit_mb is not None:
        argv += ["--memory-limit-mb", str(cfg.memory_limit_mb)]
    if cfg.profile:
        argv += ["--profile", str(cfg.profile)]
    if cfg.ablation:
        argv += ["--ablation", cfg.ablation]
    for flag, on in (("--xla", cfg.xla), ("--compare", cfg.compare),
                     ("--no-search-batch", not cfg.search_batch), ("--json", cfg.json)):
        if on:
            argv.append(flag)
    return argv


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="bench.py", description="Training and inference throughput, FLOPs and utilisation of the GANs; "
                                     "whole-scene labelling speed.",
        epilog="Examples: python bench.py --model pix2pix --size 256 --batch 4 --compare --json; "
               "python bench.py --scene 1000 --size 128 --width 0.5")
    p.add_argument("--model", choices=MODELS, default="pix2pix",
                   help="pix2pix (stage 3), dcgan (stage 2), paired (stage 2 with label channels) or synth (stage "
                        "2b, label map to photo); default pix2pix")
    p.add_argument("--size", type=int, default=None,
                   help=f"image side, a power of two (default {DEFAULT_SIZE}; {SCENE_SIZE} with --scene)")
    p.add_argument("--batch", type=int, default=None,
                   help=f"training batch (default {DEFAULT_BATCH}); with --scene, windows per forward pass "
                        f"(default {SCENE_BATCH})")
    p.add_argument("--width", type=float, default=None,
                   help=f"pix2pix: filter multiplier (default 1 = the paper's; {SCENE_WIDTH} with --scene); "
                        f"synth: filter multiplier (default {DEFAULT_WIDTH['synth']}); dcgan/paired: channels at 4x4 "
                        "(default 256)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="compute precision (default auto: mixed_bfloat16 where the hardware runs it natively)")
    p.add_argument("--xla", action="store_true", help="compile the training step with XLA")
    p.add_argument("--impl", choices=IMPLS, default="project",
                   help="project (default) or reference: the TensorFlow tutorial's plain float32 pix2pix")
    p.add_argument("--compare", action="store_true",
                   help="run the project and the reference in this process and report the speedup")
    p.add_argument("--target", choices=TARGETS, default="classes",
                   help="pix2pix target: classes (one channel per class, default) or rgb (colour label image)")
    p.add_argument("--labeller", choices=LABELLERS, default="pix2pix",
                   help="pix2pix: what cgan.py train --labeller trains: pix2pix (GAN, default) or unet (no "
                        "discriminator)")
    p.add_argument("--loss", choices=LOSSES, default="ce", help="pix2pix: the pixel loss (default ce)")
    p.add_argument("--upsample", choices=UPSAMPLES, default="transpose",
                   help="pix2pix: decoder upsampling, transpose (default) or resize (also with --scene)")
    p.add_argument("--no-fused", dest="no_fused", nargs="?", const="all", choices=UNFUSED, default=None,
                   help="build with Keras's BatchNormalization and Adam instead of the fused kernels (all), "
                        "or swap only one of them (batchnorm, adam): the ablation")
    p.add_argument("--ablation", nargs="?", const="fused", choices=ABLATIONS, default=None,
                   help="build several variants in this process and interleave their training steps, then their "
                        "forward passes (--steps rounds each): images/s and speed relative to the first. fused (the "
                        "default): with and without each fused kernel; labeller: pix2pix and unet, ce, ce+dice and "
                        "ce+lovasz, transpose and resize upsampling; xla: the model --model, --labeller, --loss, "
                        "--upsample and --precision build, without and with XLA; inference (with --scene): the "
                        "whole-scene labeller against strips, larger batches, threads and XLA, scene by scene")
    p.add_argument("--tta", action="store_true",
                   help="with --ablation inference: label with flip TTA (the photo and its three mirror images)")
    p.add_argument("--scene", type=int, default=0, metavar="PX",
                   help="time the pix2pix labeller on a whole PX x PX photo (sliding windows of --size, "
                        f"overlap {SCENE_OVERLAP}, scale 1) instead of training")
    p.add_argument("--steps", type=int, default=10,
                   help="timed steps (with --scene: timed scenes); the median is reported (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps or scenes first, incl. tracing (default 3)")
    p.add_argument("--scenes", type=int, default=0,
                   help="synthetic scenes in the data set (default 0 = max(2 x batch, 8))")
    p.add_argument("--seed", type=int, default=0, help="seed of the scenes and the weights (default 0)")
    p.add_argument("--peak-size", type=int, default=PEAK_MATMUL,
                   help=f"n of the n x n x n matmul that measures the peak (default {PEAK_MATMUL})")
    p.add_argument("--memory-limit-mb", type=float, default=None,
                   help="treat a configuration needing more host memory than this as out of memory "
                        "(to try the batch-size advice on a machine with plenty of memory)")
    p.add_argument("--no-search-batch", dest="search_batch", action="store_false",
                   help="on out-of-memory, fail without searching for the largest batch that fits")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also trace N training steps with the TensorFlow profiler and report the op time per "
                        "step by op type and by graph node (default 0 = no trace)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    return p


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(BenchConfig)})
