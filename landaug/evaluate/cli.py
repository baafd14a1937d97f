"""Stage 4 from the command line and from code: check everything, score every set, write the report.

Usage: ``sys.exit(script_main(main))`` (eval.py); ``report = run(EvalConfig(...))``;
``report = evaluate_sets(truth_dir, {"baseline": [d1, d2], "gan": [d3, d4]}, registry, out=DIR)``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .. import metrics as M
from ..classes import ClassRegistry
from ..config import save_config
from ..errors import UserError, check_writable
from ..files import atomic_write_text, write_json
from . import figures as F
from .compute import by_scene, compute_confusions
from .markdown import pm, render_markdown, signed
from .options import (EvalConfig, check_numbers, choose_references, config_from_args, describe_sets,
                      parse_pred_specs, resolve_registry)
from .plan import EvalPlan, check_out, plan_evaluation
from .report import build_report


def validate(cfg: EvalConfig) -> EvalPlan:
    """Check options and inputs before any pixel is read or anything is written."""
    check_numbers(cfg.scenes, cfg.bootstrap, cfg.colour_tolerance)
    check_writable(cfg.out, "--out")
    if cfg.images is not None and not cfg.images.is_dir():
        raise UserError(cfg.images, "photo folder of --images does not exist")
    if not cfg.truth.is_dir():
        raise UserError(cfg.truth, "truth mask folder does not exist (run resize_to_256.py first or pass "
                                   "--truth DIR)")
    sets = parse_pred_specs(cfg.preds)
    refs, _ = choose_references(list(sets), cfg.references, strict=True)
    registry, source, warning = resolve_registry(cfg.truth, cfg.classes, cfg.ignore_class)
    plan = plan_evaluation(cfg.truth, sets, registry, cfg.images, registry_source=source)
    plan.references, plan.colour_tolerance = refs, cfg.colour_tolerance
    plan.warnings[:0] = [warning] if warning else []
    check_out(cfg.out, plan)
    return plan


def run(cfg: EvalConfig) -> dict:
    plan = validate(cfg)
    return evaluate_plan(plan, cfg, cfg.bootstrap, cfg.seed, cfg.progress)


def evaluate_sets(truth_dir: str | Path, sets: Mapping[str, Sequence[str | Path]],
                  registry: ClassRegistry | None = None, *, out: str | Path | None = None,
                  images_dir: str | Path | None = None, references: Sequence[str] | None = None,
                  n_resamples: int = M.BOOTSTRAP_RESAMPLES, seed: int = M.BOOTSTRAP_SEED, scenes: int = 6,
                  progress: bool = False) -> dict:
    """Evaluate named sets of prediction folders (several folders = several runs) against one truth
    folder and compare every set with each of ``references`` present among the sets (default: the
    first set). Returns the report dict; with ``out`` also writes report.json, report.md, the figures
    and config.json there (nothing is written when an input is bad). ``registry`` None: classes.json
    next to the truth as in ``eval.py``, else SPARCS with a warning."""
    check_numbers(scenes, n_resamples)
    if out is not None:
        check_writable(out, "out")
    warnings, source = [], "given"
    if registry is None:
        registry, source, warning = resolve_registry(Path(truth_dir), None)
        warnings += [warning] if warning else []
    plan = plan_evaluation(truth_dir, sets, registry, images_dir, registry_source=source)
    plan.references, missing = choose_references(list(plan.sets), references, strict=False)
    warnings += [f"reference {m!r} is not among the sets and is left out" for m in missing]
    plan.warnings[:0] = warnings
    cfg = None
    if out is not None:
        cfg = EvalConfig(truth=Path(truth_dir), preds=[f"{k}={d}" for k, v in plan.sets.items() for d in v],
                         out=Path(out), images=None if images_dir is None else Path(images_dir),
                         references=list(plan.references), scenes=scenes, bootstrap=n_resamples, seed=seed,
                         progress=progress)
        check_out(cfg.out, plan)
    return evaluate_plan(plan, cfg, n_resamples, seed, progress)


def evaluate_plan(plan: EvalPlan, cfg: EvalConfig | None, n_resamples: int, seed: int, progress: bool) -> dict:
    cms, ignored = compute_confusions(plan, progress)
    scene_cms = {name: by_scene(c, plan) for name, c in cms.items()}
    report = build_report(plan, scene_cms, by_scene(ignored, plan), n_resamples, seed)
    # after the evaluation succeeded, so that a bad input still fails with its one line alone
    for w in plan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if cfg is not None:
        write_outputs(report, plan, cfg.out, scenes=cfg.scenes)
        save_config(cfg.out / "config.json", cfg, stage="eval", sets=describe_sets(plan.sets),
                    classes_source=plan.registry_source, classes=plan.registry.to_json())
    return report


def write_outputs(report: dict, plan: EvalPlan, out: Path, scenes: int = 6) -> None:
    """report.json, report.md and the figures into ``out`` (each file written atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    figs = F.figure_names(report)
    names = plan.registry.names
    F.plot_per_class_iou(report, out / figs["per_class_iou"])
    for name, fname in figs["confusion"].items():
        n_runs = report["sets"][name]["n_runs"]
        title = f"{name}: rows normalised" + (f" ({n_runs} runs pooled)" if n_runs > 1 else "")
        F.plot_confusion(np.array(report["sets"][name]["confusion_matrix"]), names, title, out / fname)
    shown = F.pick_scenes(report, scenes)
    if shown:
        F.plot_scenes(plan, report, shown, out / figs["scenes"])
    else:
        (out / figs["scenes"]).unlink(missing_ok=True)   # a stale grid from an earlier run would mislead
    report["meta"]["figures"] = {**figs, "scenes": figs["scenes"] if shown else None}
    report["meta"]["scenes_shown"] = shown
    write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render_markdown(report))


def main(argv: Sequence[str] | None = None) -> int:
    cfg = config_from_args(argv)
    report = run(cfg)
    if cfg.progress:
        print(f"wrote {cfg.out / 'report.md'}")
        for name, s in report["sets"].items():
            print(f"  {name}: mIoU {pm(s['mean_iou'], s['mean_iou_std'])}, "
                  f"OA {pm(s['overall_accuracy'], s['overall_accuracy_std'])}")
        for key, c in report["comparisons"].items():
            ci = c["mean_iou_delta_ci95"]
            print(f"  {key}: mIoU {signed(c['mean_iou_delta'])}"
                  + (f" (95% CI {signed(ci[0])} .. {signed(ci[1])}, runs and scenes resampled)" if ci else ""))
    return 0
