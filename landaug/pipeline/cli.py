"""``pipeline.py``: the whole experiment in one command, and its options.

Usage: ``python pipeline.py --demo`` or ``python pipeline.py --sparcs DIR --test-list FILE --preset cpu --seeds 3``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

from ..cgan.losses import LOSSES
from ..cgan.model import LABELLERS
from ..cgan.options import TTA
from ..synth.options import GENERATORS
from ..config import save_config
from ..errors import ArgumentParser, UserError
from ..grid import add_executor_options
from ..harness.schedule import LR_SCHEDULES
from ..models import UPSAMPLES
from ..prepare.cli import OWN_DATA_HELP, add_own_data_options
from .estimate import LONG_RUN_STEPS, estimate_run
from .options import ARMS, DEFAULT_ARMS, RESUME_FREE, PipelineConfig, default_out, resume_config, validate
from .presets import PAPER_OPTIONS, PRESETS, TUNABLE
from .cells import build, grid_size, records
from .places import parse_budgets
from .stages import Run
from .summary import write_summary


def _by_preset(key: str) -> str:
    """What each preset sets an option to, for its help: " (demo: pix2pix, cpu: unet, paper: pix2pix)"."""
    return " (" + ", ".join(f"{name}: {values[key]:g}" if isinstance(values[key], float) else f"{name}: {values[key]}"
                            for name, values in PRESETS.items()) + ")"


def run(cfg: PipelineConfig) -> Path | None:
    """Run (or continue) the experiment as a grid of cells on the chosen executor; returns the path of
    ``summary.md`` (None with ``estimate_only``). A failed cell ends the run with GridFailed (one line per
    failed cell, with its log) once every cell that does not need it has finished."""
    from ..grid import ExecutorConfig, run_grid

    counts = validate(cfg)
    t0 = time.monotonic()
    r = Run(cfg)
    if cfg.estimate or cfg.estimate_only:
        for line in (estimate_run(cfg, counts, r.done, always=cfg.estimate_only) or "").splitlines():
            r.say(line)
    if cfg.estimate_only:
        return None
    cfg.out.mkdir(parents=True, exist_ok=True)
    save_config(cfg.out / "config.json", cfg, stage="pipeline")
    done = r.done("eval")
    if done is not None and done.get("sets") != list(cfg.arms):
        r.forget("eval")
    cells = build(cfg)
    r.say(grid_size(cells, cfg, cfg.out))
    run_grid(cells, cfg.out, ExecutorConfig.of(cfg), resume=cfg.resume, progress=cfg.progress)
    r.records = records(cells, cfg)
    summary = write_summary(r, time.monotonic() - t0)
    r.say(f"done: {summary}")
    return summary


def build_parser() -> ArgumentParser:
    S = argparse.SUPPRESS
    p = ArgumentParser(
        prog="pipeline.py", argument_default=S,
        description="Run the whole experiment: prepare the scenes, draw each seed's split, train the generators, "
                    "train one labeller per arm and seed, label the test scenes whole and compare the arms "
                    "(runs/NAME/summary.md).",
        epilog="Presets: demo (synthetic 64 px scenes, the paper's pix2pix labeller, minutes on a laptop CPU), cpu "
               "(128 px tiles of scenes resampled by 0.5, whole scenes for validation and test, the labeller chosen "
               "on SPARCS validation scenes: the U-Net alone at half width, Adam 1e-3, 2560 steps for every arm; "
               "sized for several arms x 3 seeds on SPARCS on 2 CPU cores; the paper's labeller on native tiles "
               f"instead: {PAPER_OPTIONS}), paper (256 px tiles, the paper's pix2pix at full width, 57 epochs, for a "
               "GPU). Every value a preset sets can be overridden by its option.\n\n" + OWN_DATA_HELP +
               "\n\nExamples: python pipeline.py --sparcs sparcs_data --test-list docs/sparcs_test_list.txt --preset cpu "
               "--seeds 3; python pipeline.py --images \"data/*/images\" --masks \"data/*/masks\" --classes "
               "data/classes.json --ignore-class Unlabeled --group-by folder")
    src = p.add_argument_group("input (exactly one)")
    src.add_argument("--demo", action="store_true", help="the project's synthetic scenes")
    src.add_argument("--sparcs", type=Path, metavar="DIR", help="USGS SPARCS folder (<scene>_photo.png + _mask.png)")
    src.add_argument("--images", type=Path, metavar="DIR", help="your photos (with --masks and --classes): a folder "
                                                              "with its sub-folders, or a quoted glob of folders")
    src.add_argument("--masks", type=Path, metavar="DIR", help="your masks (folder or quoted glob), matched to "
                                                             "--images by sub-folder and file stem")
    src.add_argument("--classes", type=Path, metavar="FILE", help="classes.json of your data, ours or Supervisely's "
                                                                 "(see below; default SPARCS)")
    add_own_data_options(src)
    src.add_argument("--test-list", type=Path, metavar="FILE", help="test scenes, one name a line")
    src.add_argument("--test-fraction", type=float, help="share of random test scenes without --test-list (default 0.1)")
    src.add_argument("--bands", metavar="LIST", help="photo bands to use, in order, e.g. 4,3,2, or all (default all; "
                                                    "with --sparcs: reads <scene>_data.tif)")
    src.add_argument("--rgb-bands", metavar="R,G,B", help="bands shown as red, green, blue in figures (default: the "
                                                          "first three bands used)")
    src.add_argument("--demo-bands", type=int, metavar="N", help="bands of the synthetic scenes with --demo: 3 "
                                                                 "(8-bit, default), 4 or 10 (uint16 GeoTIFFs)")
    e = p.add_argument_group("experiment")
    e.add_argument("--out", type=Path, metavar="DIR", help="run folder (default runs/<input>-<preset>-<time>; "
                                                            "never reused without --resume)")
    e.add_argument("--arms", type=lambda s: tuple(a.strip() for a in s.split(",") if a.strip()),
                   help=f"comma list of {', '.join(ARMS)} (default {','.join(DEFAULT_ARMS)})")
    e.add_argument("--seeds", type=int, help="repeat every arm, its split and its generators with this many seeds "
                                             "(default 1)")
    e.add_argument("--seed", type=int, help="first seed (default 0)")
    e.add_argument("--folds", type=int, metavar="K",
                   help="K-fold testing: deal the labelled scenes (whole folders with --group-by folder) into K "
                        "folds, each the test set once, so every scene is tested once per seed (default 0: the one "
                        "test set of --test-list or --test-fraction)")
    e.add_argument("--train-scenes", type=parse_budgets, metavar="N1,N2,...,all",
                   help="label budgets: in each fold and seed, every arm (and its generators) learns from nested "
                        "random subsets of N1, N2, ... of the training scenes (all: every one); the report plots "
                        "test mIoU against them (default: every training scene)")
    e.add_argument("--full-budget-from", type=Path, metavar="RUN",
                   help="with --train-scenes: take the full budget's results from RUN, a finished run with the same "
                        "options (and these arms, at least these seeds), instead of training it again")
    e.add_argument("--preset", choices=tuple(PRESETS), help="demo (default with --demo) | cpu (default otherwise) | paper")
    e.add_argument("--resume", action="store_true", help="continue the run in --out: finished stages are skipped")
    e.add_argument("--report-so-far", action="store_true",
                   help="report the finished part of the run in --out, which may still be training: the budgets "
                        "whose every arm has finished every fold of its first seeds, in <out>/eval_so_far/; "
                        "trains nothing and writes nothing else")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.add_argument("--estimate-only", action="store_true",
                   help="time a few steps of every model the run trains, print its estimated wall time on this "
                        f"machine and stop, writing nothing (a run of {LONG_RUN_STEPS} training steps or more prints "
                        "the estimate before it starts)")
    e.add_argument("--no-estimate", dest="estimate", action="store_false",
                   help="start the run without timing the models first")
    t = p.add_argument_group("sizes and schedules (set by the preset; in brackets what each preset sets)")
    t.add_argument("--demo-scenes", type=int, help="number of synthetic scenes with --demo" + _by_preset("demo_scenes"))
    t.add_argument("--demo-size", type=int, help="side of the synthetic scenes in pixels" + _by_preset("demo_size"))
    t.add_argument("--data-mode", choices=("resize", "tile"),
                   help="training pairs: native-resolution tiles of side --size, or scenes shrunk to --size"
                        + _by_preset("data_mode"))
    t.add_argument("--size", type=int, help="model window (tile) side in pixels" + _by_preset("size"))
    t.add_argument("--fit", choices=("crop", "pad"), help="--data-mode resize: a non-square scene's centred square "
                                                          "(default crop) or the scene mirrored to a square (pad)")
    t.add_argument("--tile-scale", type=float, metavar="F",
                   help="--data-mode tile: resample the scenes by F in (0, 1] before cutting tiles (1: native "
                        "resolution); the models label the test scenes at scale F" + _by_preset("tile_scale"))
    t.add_argument("--cgan-width", type=float,
                   help="pix2pix width multiplier (1.0 = the paper's)" + _by_preset("cgan_width"))
    t.add_argument("--cgan-epochs", type=int, help="pix2pix epochs when --cgan-steps is 0" + _by_preset("cgan_epochs"))
    t.add_argument("--cgan-batch", type=int, help="pix2pix batch" + _by_preset("cgan_batch"))
    t.add_argument("--cgan-steps", type=int, metavar="N",
                   help="train every arm's pix2pix for the same N optimizer steps (0: --cgan-epochs for every arm, "
                        "as the paper, so arms with more pairs train longer)" + _by_preset("cgan_steps"))
    t.add_argument("--evaluations", type=int, metavar="N", help="validate each arm N times over its steps (0: once "
                                                                "an epoch)" + _by_preset("evaluations"))
    t.add_argument("--gan-width", type=float, help="GAN width multiplier (1.0 = the paper's)" + _by_preset("gan_width"))
    t.add_argument("--gan-steps", type=int, help="GAN training steps" + _by_preset("gan_steps"))
    t.add_argument("--gan-batch", type=int, help="GAN batch" + _by_preset("gan_batch"))
    t.add_argument("--n-generated", type=int,
                   help="synthetic scenes (or layouts) made per seed (the paper: 200)" + _by_preset("n_generated"))
    t.add_argument("--synth-steps", type=int,
                   help="mask-to-photo generator training steps" + _by_preset("synth_steps"))
    t.add_argument("--synth-width", type=float,
                   help="mask-to-photo generator width multiplier" + _by_preset("synth_width"))
    t.add_argument("--synth-generator", choices=GENERATORS,
                   help="how the masksynth arm renders photos for new label layouts (synth.py train --generator): "
                        "pix2pix (one rendering per layout, noise from dropout), oasis (3D noise, renderings that vary) "
                        "or spade" + _by_preset("synth_generator"))
    lab = p.add_argument_group("how every arm's labeller is trained (set by the preset; in brackets what each "
                               "preset sets)")
    lab.add_argument("--labeller", choices=LABELLERS, help="pix2pix (U-Net + PatchGAN, the paper's) or unet (the same "
                                                           "U-Net on the pixel loss alone)" + _by_preset("labeller"))
    lab.add_argument("--loss", choices=LOSSES, help="pixel loss: ce, ce+dice or ce+lovasz" + _by_preset("loss"))
    lab.add_argument("--lr-schedule", choices=LR_SCHEDULES,
                     help="constant or cosine (linear warm-up, then cosine decay to ~0 at the last step)"
                          + _by_preset("lr_schedule"))
    lab.add_argument("--upsample", choices=UPSAMPLES, help="decoder upsampling: transpose or resize (bilinear 2x + 3x3 "
                                                           "convolution)" + _by_preset("upsample"))
    lab.add_argument("--tta", choices=TTA, help="validation and test labelling: none or flips (mean probabilities of "
                                                "the scene and its three mirror images)" + _by_preset("tta"))
    lab.add_argument("--cgan-lr", type=float, metavar="LR", help="Adam learning rate" + _by_preset("cgan_lr"))
    lab.add_argument("--cgan-beta1", type=float, metavar="B", help="Adam beta_1" + _by_preset("cgan_beta1"))
    lab.add_argument("--cgan-dropout", type=float, metavar="P",
                     help="dropout rate in the first decoder blocks" + _by_preset("cgan_dropout"))
    t.add_argument("--classic-color", choices=("off", "on", "auto"),
                   help="mild brightness/contrast jitter in the classic arms; auto keeps it only if it raises "
                        "validation mIoU" + _by_preset("classic_color"))
    a = p.add_argument_group("augmentation options")
    a.add_argument("--synthetic-share", type=float, metavar="S",
                   help="share of the pairs drawn from the synthetic pairs in the gan/paired/masksynth arms, "
                        "counted over the run so that it holds at any batch "
                        "(default 0.25, the better of 0.25 and 0.5 on SPARCS validation; 0: synthetic pairs are "
                        "appended to the training set, the paper's way)")
    a.add_argument("--copypaste-p", type=float, metavar="P", help="copy-paste arms: share of samples that get pasted "
                                                                  "regions (default 0.25, picked on SPARCS validation)")
    a.add_argument("--copypaste-n", type=int, metavar="N", help="copy-paste arms: regions per sample (default 2)")
    a.add_argument("--copypaste-rarity", type=float, metavar="R",
                   help="copy-paste arms: classes drawn with weight frequency^-R (default 1)")
    a.add_argument("--rare-boost", type=float, metavar="R",
                   help="masksynth arms: rare-class regions pasted into new layouts grow with R (default 1; 0: none)")
    a.add_argument("--class-weights", choices=("none", "auto"),
                   help="inverse-frequency cross-entropy weights in every arm (the classic+weights arm always has them)")
    a.add_argument("--diffaugment", help="GAN DiffAugment policy, e.g. color,translation,cutout (default off)")
    a.add_argument("--val-fraction", type=float, help="validation share of the training scenes, per seed (default 0.1)")
    a.add_argument("--min-confidence", type=float, help="pseudo-label confidence threshold for the gan arms")
    a.add_argument("--overlap", type=float, help="overlap of neighbouring windows when labelling whole scenes "
                                                 "(default 0.25)")
    a.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"),
                   help="compute precision; auto: mixed_bfloat16 where the hardware runs it natively (mixed_float16 "
                        "on Volta and Turing GPUs), else float32"
                        + _by_preset("precision"))
    a.add_argument("--xla", action="store_true", help="compile training steps with XLA")
    add_executor_options(p)
    return p


def config_from_args(ns: argparse.Namespace, argv: Sequence[str]) -> PipelineConfig:
    given = vars(ns)
    if given.get("resume"):
        return resume_config(given)
    preset = given.get("preset", "demo" if given.get("demo") else "cpu")
    values = {**PRESETS[preset], **{k: v for k, v in given.items() if k in TUNABLE}}
    if values["data_mode"] != "tile" and "tile_scale" not in given:
        values["tile_scale"] = 1.0      # a preset's tile scale is for its tiles; scenes brought to the window have none
    if given.get("folds") and "test_fraction" in given:
        raise UserError("--test-fraction sets one test set aside; with --folds every scene is tested once: drop it")
    cfg = PipelineConfig(preset=preset, progress=not given.get("quiet", False), **values,
                         **{k: v for k, v in given.items() if k not in TUNABLE and k not in ("quiet", "preset")})
    if cfg.out is None:
        cfg.out = default_out(cfg)
    elif cfg.out.exists() and cfg.out.is_dir() and any(cfg.out.iterdir()):
        raise UserError(cfg.out, "already holds a run; pass --resume to continue it, or choose another --out")
    cfg.command = shlex.join(["python", "pipeline.py", *argv])
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = build_parser().parse_args(argv)
    if vars(ns).pop("report_so_far", False):
        from .evaluation import report_so_far

        if "out" not in vars(ns):
            raise UserError("--report-so-far needs --out RUN: the run folder to report on")
        print(f"report: {report_so_far(resume_config(vars(ns)))}")
        return 0
    cfg = config_from_args(ns, argv)
    run(cfg)
    return 0


__all__ = ["RESUME_FREE", "build_parser", "config_from_args", "main", "run"]
