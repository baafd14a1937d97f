"""What each set scores and how sure a difference between two sets is: the report dictionary of stage 4.

Usage: ``report = build_report(plan, scene_cms, ignored_per_scene, n_resamples, seed)`` with
``scene_cms[name]`` an (n_runs, n_scenes, C, C) stack (``compute.by_scene``).

A set's metrics are the mean (± sample std) over its runs, each run's from its own confusion matrix
summed over all test scenes. Every set other than a reference is compared with each reference by a
two-level paired bootstrap over runs and scenes (``landaug.metrics.bootstrap_deltas``).
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np

from .. import metrics as M
from ..classes import IGNORE_INDEX
from .plan import EvalPlan

LEVEL = 0.95
SCALARS = {"overall_accuracy": M.overall_accuracy, "mean_iou": M.mean_iou, "mean_iou_present": M.mean_iou_present,
           "fw_iou": M.fw_iou, "kappa": M.kappa}
CLASS_METRICS = {"iou": M.iou_per_class, "precision": M.precision_per_class, "recall": M.recall_per_class,
                 "f1": M.f1_per_class}
INTERVALS = ("mean_iou", "mean_iou_present")   # a set's own value with its bootstrap interval
SHARE_NOTE = "share of bootstrap resamples in which the set is better than the reference (not a p-value)"
_none = M.nan_to_none  # NaN (undefined) -> null in JSON


def bootstrap_method(n_resamples: int, seed: int, comparisons: dict) -> str:
    """The bootstrap as a reader needs it to judge the intervals, with the unpaired comparisons named."""
    text = (
        f"Two-level paired bootstrap over training runs and test scenes, {n_resamples} resamples (seed "
        f"{seed}). Each resample draws, with replacement, as many runs as a set has and as many test scenes "
        "as there are (all tiles of a scene together). The scene draw is the same for both sets of a "
        "comparison; when both have the same number of runs the run draw is the same too, run r of one set "
        "being paired with run r of the other (runs in the order given; a glob is sorted, so seed folders "
        "line up). Each drawn run's per-scene confusion matrices are summed with the scene weights and the "
        "metric taken; a set's value is the mean over its drawn runs and the difference is set minus "
        "reference. The point estimate is the difference of the run means over all scenes; the "
        f"{LEVEL:.0%} interval is the percentile interval of the resampled differences, so it carries the "
        "seed-to-seed spread as well as the variability of the test scenes. share_improved is the "
        f"{SHARE_NOTE}. No interval is given with fewer than two test scenes.")
    unpaired = [f"{k} ({c['runs'][1]} vs {c['runs'][0]} runs)" for k, c in comparisons.items()
                if c["runs_paired"] is False]
    if unpaired:
        text += (" Runs differ in number in " + ", ".join(unpaired) + ": there each set's runs are drawn "
                 "independently (unpaired over seeds, still paired over scenes).")
    single = sorted({k for c in comparisons.values() for k, r in zip((c["reference"], c["set"]), c["runs"])
                     if r == 1})
    if single:
        text += (" " + ", ".join(single) + (" has" if len(single) == 1 else " have") + " a single run, which "
                 "adds no seed-to-seed spread.")
    return text


def _nanmean(a: np.ndarray, axis: int = 0) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    valid = ~np.isnan(a)
    return M.safe_divide(np.where(valid, a, 0.0).sum(axis=axis), valid.sum(axis=axis))


def _nanstd(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """Sample std (ddof=1) over runs; NaN with fewer than two defined values."""
    a = np.asarray(a, dtype=np.float64)
    valid = ~np.isnan(a)
    dev = np.where(valid, a - np.expand_dims(_nanmean(a, axis), axis), 0.0)
    return np.sqrt(M.safe_divide((dev ** 2).sum(axis=axis), valid.sum(axis=axis) - 1))


def set_report(runs: list[Path], cms: np.ndarray, ignored: np.ndarray, plan: EvalPlan,
               n_resamples: int = M.BOOTSTRAP_RESAMPLES, seed: int = M.BOOTSTRAP_SEED) -> dict:
    """One set: ``cms`` (n_runs, n_scenes, C, C), ``ignored`` truth pixels per scene; its mIoU with the
    interval of the two-level bootstrap over runs and scenes that the comparisons use."""
    names = plan.registry.names
    colors = plan.registry.colors
    run_cm = cms.sum(axis=1)                       # (R, C, C) pooled over scenes
    out: dict = {"n_images": len(plan.stems), "n_scenes": len(plan.scene_names), "n_runs": len(runs)}
    for key, fn in SCALARS.items():
        vals = fn(run_cm)
        out[key] = _none(_nanmean(vals))
        out[f"{key}_std"] = _none(_nanstd(vals))
    intervals = M.bootstrap_values(cms, {k: SCALARS[k] for k in INTERVALS}, n_resamples, seed, LEVEL)
    out.update({f"{k}_ci95": intervals[k] for k in INTERVALS})
    out["n_pixels"] = int(run_cm[0].sum())
    out["n_ignored_pixels"] = int(ignored.sum())
    out["confusion_matrix"] = run_cm.sum(axis=0).tolist()
    out["confusion_matrix_note"] = ("rows truth, columns prediction, pixels over all test scenes"
                                    + (f", summed over the {len(runs)} runs" if len(runs) > 1 else ""))
    class_vals = {k: fn(run_cm) for k, fn in CLASS_METRICS.items()}   # each (R, C)
    support = M.support_per_class(run_cm[0])
    out["per_class"] = {}
    for j, cname in enumerate(names):
        entry = {k: _none(_nanmean(v[:, j])) for k, v in class_vals.items()}
        entry["iou_std"] = _none(_nanstd(class_vals["iou"][:, j]))
        entry["support"] = int(support[j])
        out["per_class"][cname] = entry
    out["n_classes_in_mean_iou"] = int((~np.isnan(_nanmean(class_vals["iou"]))).sum())

    scene_scalars = {k: fn(cms) for k, fn in SCALARS.items()}         # each (R, S)
    scene_iou = M.iou_per_class(cms)                                  # (R, S, C)
    scene_dist = M.mean_color_distance(cms, colors)                   # (R, S)
    n_files = np.bincount(plan.scene_index, minlength=len(plan.scene_names))
    out["per_scene"] = {}
    for i, scene in enumerate(plan.scene_names):
        entry = {k: _none(_nanmean(v[:, i])) for k, v in scene_scalars.items()}
        entry["euclidean_distance"] = _none(_nanmean(scene_dist[:, i]))
        entry["n_files"] = int(n_files[i])
        entry["n_pixels"] = int(cms[0, i].sum())
        entry["n_ignored_pixels"] = int(ignored[i])
        entry["iou"] = {cname: _none(_nanmean(scene_iou[:, i, j])) for j, cname in enumerate(names)}
        out["per_scene"][scene] = entry
    run_mean_dist = _nanmean(scene_dist, axis=1)                      # (R,) mean over scenes per run
    out["euclidean"] = {
        "mean_distance": _none(_nanmean(run_mean_dist)),
        "mean_distance_std": _none(_nanstd(run_mean_dist)),
        "pixel_weighted_distance": _none(_nanmean(M.mean_color_distance(run_cm, colors))),
        "max_possible": float(np.sqrt(3) * 255),
        "note": "the paper's metric, secondary to IoU: per scene, the mean over pixels of the RGB distance "
                "between the class colours of prediction and truth (float); mean_distance averages the "
                "scenes, pixel_weighted_distance the pixels",
    }
    out["runs"] = []
    for r, run_dir in enumerate(runs):
        s = M.summarize(run_cm[r], names)
        out["runs"].append({
            "path": str(run_dir),
            **{k: s[k] for k in SCALARS},
            "euclidean_mean_distance": _none(run_mean_dist[r]),
            "per_class_iou": {k: v["iou"] for k, v in s["per_class"].items()},
        })
    return out


def comparison(ref: str, other: str, cms: dict[str, np.ndarray], sets: dict, plan: EvalPlan,
               n_resamples: int, seed: int) -> dict:
    """``other`` against ``ref``: differences of the run means and their two-level bootstrap intervals."""
    names = plan.registry.names
    a, b = sets[ref], sets[other]

    def diff(x, y):
        return None if x is None or y is None else y - x

    stats = {"mean_iou": M.mean_iou, "mean_iou_present": M.mean_iou_present,
             "overall_accuracy": M.overall_accuracy,
             **{f"iou:{c}": (lambda m, j=j: M.iou_per_class(m)[..., j]) for j, c in enumerate(names)}}
    boot = M.bootstrap_deltas(cms[ref], cms[other], stats, n_resamples=n_resamples, seed=seed, level=LEVEL)
    out = {"reference": ref, "set": other, "runs": boot["mean_iou"]["runs"],
           "runs_paired": boot["mean_iou"]["runs_paired"], "share_improved_note": SHARE_NOTE}
    for key in ("mean_iou", "mean_iou_present", "overall_accuracy"):
        out[f"{key}_delta"] = diff(a[key], b[key])
        out[f"{key}_delta_ci95"] = boot[key]["ci"]
        out[f"{key}_share_improved"] = boot[key]["share_improved"]
    out["fw_iou_delta"] = diff(a["fw_iou"], b["fw_iou"])
    out["kappa_delta"] = diff(a["kappa"], b["kappa"])
    out["per_class_iou_delta"] = {c: diff(a["per_class"][c]["iou"], b["per_class"][c]["iou"]) for c in names}
    out["per_class_iou_delta_ci95"] = {c: boot[f"iou:{c}"]["ci"] for c in names}
    per_scene = {s: diff(a["per_scene"][s]["mean_iou"], b["per_scene"][s]["mean_iou"]) for s in plan.scene_names}
    out["per_scene_mean_iou_delta"] = per_scene
    d = [v for v in per_scene.values() if v is not None]
    # scenes (whole test scenes, a tiled scene counted once); the key names predate tiles
    out["images_improved"] = sum(v > 0 for v in d)
    out["images_worse"] = sum(v < 0 for v in d)
    out["images_unchanged"] = sum(v == 0 for v in d)
    pairs = [(a["per_scene"][s]["euclidean_distance"], b["per_scene"][s]["euclidean_distance"])
             for s in plan.scene_names]
    pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
    out["euclidean_delta"] = diff(a["euclidean"]["mean_distance"], b["euclidean"]["mean_distance"])
    for key, test in (("improved", lambda x, y: y < x), ("worse", lambda x, y: y > x),
                      ("unchanged", lambda x, y: y == x)):
        out[f"euclidean_{key}_share"] = sum(test(x, y) for x, y in pairs) / len(pairs) if pairs else None
    return out


def build_report(plan: EvalPlan, cms: dict[str, np.ndarray], ignored: np.ndarray,
                 n_resamples: int = M.BOOTSTRAP_RESAMPLES, seed: int = M.BOOTSTRAP_SEED) -> dict:
    """``cms[name]`` (n_runs, n_scenes, C, C) and ``ignored`` (n_scenes,) in ``plan.scene_names`` order."""
    sets = {name: set_report(plan.sets[name], cms[name], ignored, plan, n_resamples, seed) for name in plan.sets}
    refs = plan.references or [next(iter(plan.sets))]
    comparisons = {f"{o} vs {ref}": comparison(ref, o, cms, sets, plan, n_resamples, seed)
                   for ref in refs for o in plan.sets if o != ref}
    idx = np.asarray(plan.scene_index)
    return {
        # the classes scored; colours of unlabelled pixels apart, so every entry of "classes" has its IoU
        "classes": [c.to_json() for c in plan.registry.classes],
        "ignore_colors": [list(c) for c in plan.registry.ignore_colors],
        "sets": sets,
        "comparisons": comparisons,
        "meta": {
            "truth": str(plan.truth_dir),
            "images": None if plan.images_dir is None else str(plan.images_dir),
            "stems": list(plan.stems),
            "scenes": {s: [plan.stems[i] for i in np.flatnonzero(idx == k)] for k, s in enumerate(plan.scene_names)},
            "tiles": plan.tiles_source,
            "classes_source": plan.registry_source,
            "ignore_index": IGNORE_INDEX,
            "reference_set": refs[0],
            "references": list(refs),
            "warnings": list(plan.warnings),
            "bootstrap": {"resamples": n_resamples, "seed": seed, "level": LEVEL,
                          "levels": "runs and scenes", "share_improved": SHARE_NOTE,
                          "method": bootstrap_method(n_resamples, seed, comparisons)},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    }
