"""Stage 4: score label maps against the truth and compare sets of predictions (before/after augmentation).

Usage: ``python eval.py [--truth DIR] [--pred NAME=DIR|GLOB ...] [--out DIR] [--classes FILE] [--images DIR]``
From code: ``report = evaluate_sets(truth_dir, {"before": [dir], "after": [run1, run2]}, registry, out=DIR)``.

Every prediction is paired with its truth mask by file stem. One confusion matrix per run, summed over
the test images, gives the set's metrics (landaug.metrics); a set given several folders (a glob, or the
same NAME repeated) is several runs, e.g. training seeds, reported as mean +- std over runs. Every set is
compared with the first: differences of mIoU, OA and per-class IoU, with a paired bootstrap interval over
test images. Outputs in ``--out``: report.json, report.md, figures (PNG) and config.json.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import metrics as M
from .classes import IGNORE_INDEX, SPARCS, ClassRegistry, load_registry
from .config import save_config
from .errors import UserError
from .progress import progress as progress_bar
from .files import atomic_output, atomic_write_text, write_json
from .imgio import by_stem, image_size, list_images, pair_by_stem, read_image, read_label

DEFAULT_TRUTH = Path("images_CGAN/test/b")
DEFAULT_PREDS = ("before=Pred_before_augmentation", "after=Pred_after_augmentation")
DEFAULT_OUT = Path("eval_report")
GLOB_CHARS = "*?["

BOOTSTRAP_NOTE = (
    "Paired bootstrap over test images: each of the {resamples} resamples (seed {seed}) draws the test "
    "images with replacement and applies the same draw to every run of both sets. In a resample each run's "
    "per-image confusion matrices are summed over the drawn images and the metric taken; a set's value is "
    "the mean over its runs, so the point estimate equals the reported difference of run means. The "
    "{level:.0%} interval is the percentile interval of the differences. It covers the variability of the "
    "test scenes, not of training seeds: the run-to-run spread is the separate +- std."
)


@dataclass
class EvalConfig:
    truth: Path = DEFAULT_TRUTH
    preds: list[str] = field(default_factory=lambda: list(DEFAULT_PREDS))
    out: Path = DEFAULT_OUT
    classes: Path | None = None
    images: Path | None = None
    scenes: int = 6
    bootstrap: int = M.BOOTSTRAP_RESAMPLES
    seed: int = M.BOOTSTRAP_SEED
    progress: bool = True


@dataclass
class EvalPlan:
    """Everything checked before any pixel is read: the pairs, their sizes and the class registry."""

    truth_dir: Path
    registry: ClassRegistry
    registry_source: str
    stems: list[str]
    truth_files: list[Path]
    sets: dict[str, list[Path]]                 # set name -> run folders
    pred_files: dict[str, list[list[Path]]]     # set name -> run -> file per stem
    images_dir: Path | None = None
    photo_files: list[Path] | None = None


# ----------------------------------------------------------------------------------------------- CLI

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="eval.py",
        description="Score predicted label maps against the truth: confusion matrix, per-class IoU, mIoU, "
                    "OA, kappa, the paper's Euclidean distance, and a bootstrap comparison of sets.")
    p.add_argument("--truth", type=Path, default=DEFAULT_TRUTH,
                   help=f"folder of truth masks (default: {DEFAULT_TRUTH})")
    p.add_argument("--pred", action="append", metavar="NAME=DIR", default=None,
                   help="a named set of predictions; DIR may be a glob (quote it) matching several run "
                        "folders, reported as mean +- std; repeat for more sets, the first is the reference "
                        f"(default: {' '.join('--pred ' + s for s in DEFAULT_PREDS)})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"folder for report.json, report.md, figures and config.json (default: {DEFAULT_OUT})")
    p.add_argument("--classes", type=Path, default=None,
                   help="classes.json of the label colours (default: classes.json in the truth folder or "
                        "up to two folders above it, else the SPARCS classes)")
    p.add_argument("--images", type=Path, default=None,
                   help="folder of the test photos, shown beside truth and predictions in the scene grid")
    p.add_argument("--scenes", type=int, default=6,
                   help="test scenes in the scene grid, 0 for none (default: 6)")
    p.add_argument("--bootstrap", type=int, default=M.BOOTSTRAP_RESAMPLES,
                   help=f"bootstrap resamples for the confidence intervals, 0 for none "
                        f"(default: {M.BOOTSTRAP_RESAMPLES})")
    p.add_argument("--seed", type=int, default=M.BOOTSTRAP_SEED,
                   help=f"seed of the bootstrap resampling (default: {M.BOOTSTRAP_SEED})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = EvalConfig(truth=args.truth, preds=list(args.pred) if args.pred else list(DEFAULT_PREDS),
                     out=args.out, classes=args.classes, images=args.images, scenes=args.scenes,
                     bootstrap=args.bootstrap, seed=args.seed, progress=not args.quiet)
    report = run(cfg)
    if cfg.progress:
        print(f"wrote {cfg.out / 'report.md'}")
        for name, s in report["sets"].items():
            print(f"  {name}: mIoU {_pm(s['mean_iou'], s['mean_iou_std'])}, "
                  f"OA {_pm(s['overall_accuracy'], s['overall_accuracy_std'])}")
        for key, c in report["comparisons"].items():
            ci = c["mean_iou_delta_ci95"]
            print(f"  {key}: mIoU {_signed(c['mean_iou_delta'])}"
                  + (f" (95% CI {_signed(ci[0])} .. {_signed(ci[1])})" if ci else ""))
    return 0


# ------------------------------------------------------------------------------------------ validation

def parse_pred_specs(specs: Sequence[str]) -> dict[str, list[Path]]:
    """``NAME=DIR`` / ``NAME=GLOB`` strings -> {name: [run folders]}; a repeated NAME adds runs."""
    sets: dict[str, list[Path]] = {}
    for spec in specs:
        name, sep, pattern = spec.partition("=")
        name = name.strip()
        if not sep or not name or not pattern:
            raise UserError(f"--pred {spec!r}: expected NAME=DIR, e.g. --pred after=Pred_after_augmentation")
        literal = Path(pattern).expanduser()
        if any(ch in pattern for ch in GLOB_CHARS) and not literal.exists():
            matches = sorted(Path(m) for m in glob.glob(str(literal)))
            dirs = [m for m in matches if m.is_dir()]
            if not dirs:
                raise UserError(pattern, f"the glob of --pred {name} matches no folder")
        else:
            if not literal.exists():
                raise UserError(literal, f"prediction folder of --pred {name} does not exist")
            if not literal.is_dir():
                raise UserError(literal, f"--pred {name} is not a folder")
            dirs = [literal]
        runs = sets.setdefault(name, [])
        for d in dirs:
            if any(_same(d, r) for r in runs):
                raise UserError(d, f"given twice for --pred {name}")
            runs.append(d)
    return sets


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def resolve_registry(truth_dir: Path, classes: Path | None) -> tuple[ClassRegistry, str]:
    """``--classes`` if given, else the nearest classes.json at the truth folder or up to two levels
    above (the layout DATA/test/b), else SPARCS."""
    if classes is not None:
        return load_registry(classes), str(classes)
    for d in [truth_dir, truth_dir.parent, truth_dir.parent.parent]:
        if (d / "classes.json").is_file():
            return load_registry(d / "classes.json"), str(d / "classes.json")
    return SPARCS, "built-in SPARCS classes"


def plan_evaluation(truth_dir: str | Path, sets: Mapping[str, Sequence[str | Path]], registry: ClassRegistry,
                    images_dir: str | Path | None = None, registry_source: str = "given") -> EvalPlan:
    """Pair every run folder with the truth by stem and check sizes from the headers; raises UserError."""
    truth_dir = Path(truth_dir)
    if not truth_dir.is_dir():
        raise UserError(truth_dir, "truth mask folder does not exist (run resize_to_256.py first or pass "
                                   "--truth DIR)")
    truth = by_stem(list_images(truth_dir, "truth mask folder"), truth_dir)
    if not truth:
        raise UserError(truth_dir, "truth mask folder holds no images (png, jpg, tif)")
    if not sets:
        raise UserError("no prediction sets given: pass --pred NAME=DIR")
    stems = sorted(truth)
    sizes = {s: image_size(truth[s]) for s in stems}
    pred_files: dict[str, list[list[Path]]] = {}
    for name, runs in sets.items():
        if not runs:
            raise UserError(f"set {name!r} has no prediction folder")
        pred_files[name] = []
        for run_dir in runs:
            pairs = pair_by_stem(truth_dir, run_dir, a_what="truth mask", b_what="prediction")
            for stem, t_path, p_path in pairs:
                if image_size(p_path) != sizes[stem]:
                    raise UserError(p_path, f"prediction is {_wh(image_size(p_path))} but its truth "
                                            f"{t_path} is {_wh(sizes[stem])}")
            pred_files[name].append([p for _, _, p in pairs])
    photo_files = None
    if images_dir is not None:
        images_dir = Path(images_dir)
        pairs = pair_by_stem(images_dir, truth_dir, a_what="photo", b_what="truth mask")
        for stem, p_path, t_path in pairs:
            if image_size(p_path) != sizes[stem]:
                raise UserError(p_path, f"photo is {_wh(image_size(p_path))} but its truth {t_path} is "
                                        f"{_wh(sizes[stem])}")
        photo_files = [p for _, p, _ in pairs]
    return EvalPlan(truth_dir=truth_dir, registry=registry, registry_source=registry_source, stems=stems,
                    truth_files=[truth[s] for s in stems],
                    sets={k: [Path(r) for r in v] for k, v in sets.items()}, pred_files=pred_files,
                    images_dir=images_dir, photo_files=photo_files)


def _wh(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def validate(cfg: EvalConfig) -> EvalPlan:
    """Check options and inputs before any pixel is read or anything is written."""
    if cfg.scenes < 0:
        raise UserError(f"--scenes must be 0 or more, got {cfg.scenes}")
    if cfg.bootstrap < 0:
        raise UserError(f"--bootstrap must be 0 (no intervals) or more, got {cfg.bootstrap}")
    if cfg.out.exists() and not cfg.out.is_dir():
        raise UserError(cfg.out, "--out exists and is not a folder")
    if cfg.images is not None and not cfg.images.is_dir():
        raise UserError(cfg.images, "photo folder of --images does not exist")
    if not cfg.truth.is_dir():
        raise UserError(cfg.truth, "truth mask folder does not exist (run resize_to_256.py first or pass "
                                   "--truth DIR)")
    sets = parse_pred_specs(cfg.preds)
    registry, source = resolve_registry(cfg.truth, cfg.classes)
    plan = plan_evaluation(cfg.truth, sets, registry, cfg.images, registry_source=source)
    check_out(cfg.out, plan)
    return plan


# ------------------------------------------------------------------------------------------- compute

def compute_confusions(plan: EvalPlan, progress: bool = False,
                       workers: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per set an (n_runs, n_images, C, C) int64 stack of per-image confusion matrices, and the number of
    ignored truth pixels per image. Reads each truth mask once; raises UserError on a bad mask."""
    from concurrent.futures import ThreadPoolExecutor

    c = len(plan.registry)
    n = len(plan.stems)
    cms = {name: np.zeros((len(runs), n, c, c), dtype=np.int64) for name, runs in plan.pred_files.items()}
    ignored = np.zeros(n, dtype=np.int64)

    def one(i: int):
        truth = read_label(plan.truth_files[i], plan.registry, allow_ignore=True)
        found = {}
        for name, runs in plan.pred_files.items():
            for r, files in enumerate(runs):
                pred = read_label(files[i], plan.registry, allow_ignore=False)
                if pred.shape != truth.shape:
                    raise UserError(files[i], f"prediction is {pred.shape[1]}x{pred.shape[0]} but its truth "
                                              f"{plan.truth_files[i]} is {truth.shape[1]}x{truth.shape[0]}")
                found[name, r] = M.confusion_matrix(truth, pred, c)
        return i, int((truth == IGNORE_INDEX).sum()), found

    # PNG decoding releases the GIL, so a few threads overlap it; results come back in image order, so
    # the first bad file in name order is the one reported.
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            progress_bar(total=n, desc="eval", enabled=progress, unit="scene", leave=False) as bar:
        try:
            for i, n_ignored, found in pool.map(one, range(n)):
                ignored[i] = n_ignored
                for (name, r), cm in found.items():
                    cms[name][r, i] = cm
                bar.update(1)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return cms, ignored


def _nanmean(a: np.ndarray, axis: int = 0) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    valid = ~np.isnan(a)
    cnt = valid.sum(axis=axis)
    tot = np.where(valid, a, 0.0).sum(axis=axis)
    return M.safe_divide(tot, cnt)


def _nanstd(a: np.ndarray, axis: int = 0) -> np.ndarray:
    """Sample std (ddof=1) over runs; NaN with fewer than two defined values."""
    a = np.asarray(a, dtype=np.float64)
    valid = ~np.isnan(a)
    cnt = valid.sum(axis=axis)
    mean = _nanmean(a, axis)
    dev = np.where(valid, a - np.expand_dims(mean, axis), 0.0)
    return np.sqrt(M.safe_divide((dev ** 2).sum(axis=axis), cnt - 1))


_none = M.nan_to_none  # NaN (undefined) -> null in JSON
SCALARS = {"overall_accuracy": M.overall_accuracy, "mean_iou": M.mean_iou, "mean_iou_present": M.mean_iou_present,
           "fw_iou": M.fw_iou, "kappa": M.kappa}
CLASS_METRICS = {"iou": M.iou_per_class, "precision": M.precision_per_class, "recall": M.recall_per_class,
                 "f1": M.f1_per_class}


def _set_report(runs: list[Path], cms: np.ndarray, ignored: np.ndarray, plan: EvalPlan) -> dict:
    names = plan.registry.names
    colors = plan.registry.colors
    run_cm = cms.sum(axis=1)                       # (R, C, C) pooled over images
    out: dict = {"n_images": len(plan.stems), "n_runs": len(runs)}
    for key, fn in SCALARS.items():
        vals = fn(run_cm)
        out[key] = _none(_nanmean(vals))
        out[f"{key}_std"] = _none(_nanstd(vals))
    pooled = run_cm.sum(axis=0)
    out["n_pixels"] = int(run_cm[0].sum())
    out["n_ignored_pixels"] = int(ignored.sum())
    out["confusion_matrix"] = pooled.tolist()
    out["confusion_matrix_note"] = ("rows truth, columns prediction, pixels over all test images"
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

    img_scalars = {k: fn(cms) for k, fn in SCALARS.items()}           # each (R, N)
    img_iou = M.iou_per_class(cms)                                    # (R, N, C)
    img_dist = M.mean_color_distance(cms, colors)                     # (R, N)
    out["per_image"] = {}
    for i, stem in enumerate(plan.stems):
        entry = {k: _none(_nanmean(v[:, i])) for k, v in img_scalars.items()}
        entry["euclidean_distance"] = _none(_nanmean(img_dist[:, i]))
        entry["n_pixels"] = int(cms[0, i].sum())
        entry["n_ignored_pixels"] = int(ignored[i])
        entry["iou"] = {cname: _none(_nanmean(img_iou[:, i, j])) for j, cname in enumerate(names)}
        out["per_image"][stem] = entry
    run_mean_dist = _nanmean(img_dist, axis=1)                        # (R,) mean over images per run
    out["euclidean"] = {
        "mean_distance": _none(_nanmean(run_mean_dist)),
        "mean_distance_std": _none(_nanstd(run_mean_dist)),
        "pixel_weighted_distance": _none(_nanmean(M.mean_color_distance(run_cm, colors))),
        "max_possible": float(np.sqrt(3) * 255),
        "note": "the paper's metric, secondary to IoU: per image, the mean over pixels of the RGB distance "
                "between the class colours of prediction and truth (float); mean_distance averages the "
                "images, pixel_weighted_distance the pixels",
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


def _comparison(ref: str, other: str, cms: dict[str, np.ndarray], sets: dict, plan: EvalPlan,
                n_resamples: int, seed: int) -> dict:
    names = plan.registry.names
    a, b = sets[ref], sets[other]
    ref_runs, other_runs = list(cms[ref]), list(cms[other])

    def diff(x, y):
        return None if x is None or y is None else y - x

    def boot(stat):
        return M.bootstrap_delta(ref_runs, other_runs, stat, n_resamples=n_resamples, seed=seed)

    miou, oa, present = boot(M.mean_iou), boot(M.overall_accuracy), boot(M.mean_iou_present)
    out = {
        "reference": ref, "set": other,
        "mean_iou_delta": diff(a["mean_iou"], b["mean_iou"]),
        "mean_iou_delta_ci95": miou["ci"],
        "mean_iou_p_improved": miou["p_improved"],
        "mean_iou_present_delta": diff(a["mean_iou_present"], b["mean_iou_present"]),
        "mean_iou_present_delta_ci95": present["ci"],
        "overall_accuracy_delta": diff(a["overall_accuracy"], b["overall_accuracy"]),
        "overall_accuracy_delta_ci95": oa["ci"],
        "fw_iou_delta": diff(a["fw_iou"], b["fw_iou"]),
        "kappa_delta": diff(a["kappa"], b["kappa"]),
        "per_class_iou_delta": {c: diff(a["per_class"][c]["iou"], b["per_class"][c]["iou"]) for c in names},
        "per_class_iou_delta_ci95": {
            c: boot(lambda m, j=j: M.iou_per_class(m)[..., j])["ci"] for j, c in enumerate(names)},
    }
    per_img = {s: diff(a["per_image"][s]["mean_iou"], b["per_image"][s]["mean_iou"]) for s in plan.stems}
    out["per_image_mean_iou_delta"] = per_img
    d = [v for v in per_img.values() if v is not None]
    out["images_improved"] = sum(v > 0 for v in d)
    out["images_worse"] = sum(v < 0 for v in d)
    out["images_unchanged"] = sum(v == 0 for v in d)
    ea = [a["per_image"][s]["euclidean_distance"] for s in plan.stems]
    eb = [b["per_image"][s]["euclidean_distance"] for s in plan.stems]
    pairs = [(x, y) for x, y in zip(ea, eb) if x is not None and y is not None]
    n = len(pairs) or 1
    out["euclidean_delta"] = diff(a["euclidean"]["mean_distance"], b["euclidean"]["mean_distance"])
    out["euclidean_improved_share"] = sum(y < x for x, y in pairs) / n if pairs else None
    out["euclidean_worse_share"] = sum(y > x for x, y in pairs) / n if pairs else None
    out["euclidean_unchanged_share"] = sum(y == x for x, y in pairs) / n if pairs else None
    return out


def build_report(plan: EvalPlan, cms: dict[str, np.ndarray], ignored: np.ndarray,
                 n_resamples: int = M.BOOTSTRAP_RESAMPLES, seed: int = M.BOOTSTRAP_SEED) -> dict:
    sets = {name: _set_report(plan.sets[name], cms[name], ignored, plan) for name in plan.sets}
    order = list(plan.sets)
    comparisons = {f"{o} vs {order[0]}": _comparison(order[0], o, cms, sets, plan, n_resamples, seed)
                   for o in order[1:]}
    return {
        "classes": plan.registry.to_json(),
        "sets": sets,
        "comparisons": comparisons,
        "meta": {
            "truth": str(plan.truth_dir),
            "images": None if plan.images_dir is None else str(plan.images_dir),
            "stems": list(plan.stems),
            "classes_source": plan.registry_source,
            "ignore_index": IGNORE_INDEX,
            "reference_set": order[0],
            "bootstrap": {"resamples": n_resamples, "seed": seed, "level": 0.95,
                          "method": BOOTSTRAP_NOTE.format(resamples=n_resamples, seed=seed, level=0.95)},
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        },
    }


def evaluate_sets(truth_dir: str | Path, sets: Mapping[str, Sequence[str | Path]],
                  registry: ClassRegistry | None = None, *, out: str | Path | None = None,
                  images_dir: str | Path | None = None, n_resamples: int = M.BOOTSTRAP_RESAMPLES,
                  seed: int = M.BOOTSTRAP_SEED, scenes: int = 6, progress: bool = False) -> dict:
    """Evaluate named sets of prediction folders (several folders = several runs) against one truth
    folder; the first set is the reference. Returns the report dict; with ``out`` also writes
    report.json, report.md, the figures and config.json there (nothing is written when an input is bad).
    ``registry`` None: classes.json next to the truth as in ``eval.py``, else SPARCS."""
    source = "given"
    if registry is None:
        registry, source = resolve_registry(Path(truth_dir), None)
    plan = plan_evaluation(truth_dir, sets, registry, images_dir, registry_source=source)
    cfg = None
    if out is not None:
        cfg = EvalConfig(truth=Path(truth_dir), preds=[f"{k}={d}" for k, v in plan.sets.items() for d in v],
                         out=Path(out), images=None if images_dir is None else Path(images_dir), scenes=scenes,
                         bootstrap=n_resamples, seed=seed, progress=progress)
        check_out(cfg.out, plan)
    return _evaluate_plan(plan, cfg, n_resamples, seed, progress)


def check_out(out: Path, plan: EvalPlan) -> None:
    """The output folder must not be an input folder: its figures would be read as predictions later."""
    if out.exists() and not out.is_dir():
        raise UserError(out, "--out exists and is not a folder")
    inputs = [plan.truth_dir, *(d for runs in plan.sets.values() for d in runs)]
    if plan.images_dir is not None:
        inputs.append(plan.images_dir)
    if any(_same(out, d) for d in inputs):
        raise UserError(out, "--out is one of the input folders; choose another folder")


def _evaluate_plan(plan: EvalPlan, cfg: EvalConfig | None, n_resamples: int, seed: int, progress: bool) -> dict:
    cms, ignored = compute_confusions(plan, progress)
    report = build_report(plan, cms, ignored, n_resamples, seed)
    if cfg is not None:
        write_outputs(report, plan, cfg.out, scenes=cfg.scenes)
        save_config(cfg.out / "config.json", cfg, stage="eval",
                    sets={k: [str(r) for r in v] for k, v in plan.sets.items()},
                    classes_source=plan.registry_source, classes=plan.registry.to_json())
    return report


def run(cfg: EvalConfig) -> dict:
    plan = validate(cfg)
    return _evaluate_plan(plan, cfg, cfg.bootstrap, cfg.seed, cfg.progress)


# ------------------------------------------------------------------------------------------- outputs

def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "set"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}_{k}", k + 1
    taken.add(slug)
    return slug


def figure_names(report: dict) -> dict:
    taken: set[str] = set()
    return {"per_class_iou": "per_class_iou.png",
            "confusion": {n: f"confusion_{_slug(n, taken)}.png" for n in report["sets"]},
            "scenes": "scenes.png"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_fig(fig, path: Path) -> None:
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    finally:
        _pyplot().close(fig)


def plot_per_class_iou(report: dict, path: Path) -> None:
    """Grouped bars: one group per class, one bar per set; error bars = std over runs."""
    plt = _pyplot()
    names = [c["name"] for c in report["classes"]]
    sets = list(report["sets"])
    x = np.arange(len(names))
    width = 0.8 / max(len(sets), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 1.5), 4.2))
    for k, s in enumerate(sets):
        pc = report["sets"][s]["per_class"]
        vals = [pc[n]["iou"] for n in names]
        errs = [pc[n]["iou_std"] or 0.0 for n in names]
        pos = x - 0.4 + width * (k + 0.5)
        miou = report["sets"][s]["mean_iou"]
        label = f"{s} (mIoU {_fmt(miou)})"
        ax.bar(pos, [v if v is not None else 0.0 for v in vals], width,
               yerr=errs if report["sets"][s]["n_runs"] > 1 else None, capsize=2, label=label)
        for p, v in zip(pos, vals):
            if v is None:
                ax.text(p, 0.01, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.set_title("Per-class IoU")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save_fig(fig, path)


def plot_confusion(cm: np.ndarray, names: list[str], title: str, path: Path) -> None:
    """Confusion matrix normalised per truth row (each row: where that class's pixels went)."""
    plt = _pyplot()
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = M.safe_divide(cm, rows)
    c = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.65 * c, 0.8 + 0.6 * c))
    cmap = plt.get_cmap("Blues").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(norm), cmap=cmap, vmin=0, vmax=1)
    if c <= 15:
        for i in range(c):
            for j in range(c):
                v = norm[i, j]
                ax.text(j, i, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if (not np.isnan(v) and v > 0.6) else "black")
    ax.set_xticks(range(c), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(c), names, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    _save_fig(fig, path)


def pick_scenes(report: dict, n: int) -> list[str]:
    """With two or more sets, the scenes whose per-image mIoU changed most between the first and the last
    set; with one set, the first scenes by name."""
    stems = report["meta"]["stems"]
    if n <= 0:
        return []
    sets = list(report["sets"])
    if len(sets) < 2:
        return stems[:n]
    a, b = report["sets"][sets[0]]["per_image"], report["sets"][sets[-1]]["per_image"]

    def change(s):
        x, y = a[s]["mean_iou"], b[s]["mean_iou"]
        return -1.0 if x is None or y is None else abs(y - x)

    return sorted(stems, key=lambda s: (-change(s), s))[:n]


def plot_scenes(plan: EvalPlan, report: dict, stems: list[str], path: Path) -> None:
    """Rows = scenes; columns = photo (if given), truth, each set's prediction (its first run)."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    reg = plan.registry
    idx = {s: i for i, s in enumerate(plan.stems)}
    cols = (["photo"] if plan.photo_files else []) + ["truth"] + list(plan.sets)
    ncol = 4
    legend_rows = -(-(len(reg) + 1) // ncol)
    legend_h = 0.3 + 0.2 * legend_rows          # inches below the grid: the last x-labels, then the legend
    height = 2.1 * len(stems) + legend_h
    fig, axes = plt.subplots(len(stems), len(cols), figsize=(2.1 * len(cols), height), squeeze=False)
    any_ignored = False
    for r, stem in enumerate(stems):
        i = idx[stem]
        truth = read_label(plan.truth_files[i], reg, allow_ignore=True)
        any_ignored |= bool((truth == IGNORE_INDEX).any())
        panels = []
        if plan.photo_files:
            panels.append(read_image(plan.photo_files[i]))
        panels.append(reg.colorize(truth))
        for name in plan.sets:
            panels.append(reg.colorize(read_label(plan.pred_files[name][0][i], reg)))
        # a panel is ~200 px wide: subsampling large scenes first keeps the figure fast to draw
        step = max(1, -(-max(truth.shape) // 400))
        for c, (ax, img) in enumerate(zip(axes[r], panels)):
            ax.imshow(img[::step, ::step], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cols[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(stem, fontsize=8)
            if cols[c] in report["sets"]:
                v = report["sets"][cols[c]]["per_image"][stem]["mean_iou"]
                ax.set_xlabel(f"mIoU {_fmt(v)}", fontsize=8)
    handles = [Patch(facecolor=np.array(c.color) / 255.0, edgecolor="black", label=c.name) for c in reg.classes]
    if any_ignored:
        handles.append(Patch(facecolor=(1, 0, 1), edgecolor="black", label="ignored"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), ncol), fontsize=8, frameon=False)
    fig.subplots_adjust(bottom=legend_h / height, top=1.0 - 0.3 / height, left=0.05, right=0.99,
                        wspace=0.08, hspace=0.25)
    _save_fig(fig, path)


def write_outputs(report: dict, plan: EvalPlan, out: Path, scenes: int = 6) -> None:
    """report.json, report.md and the figures into ``out`` (each file written atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    figs = figure_names(report)
    names = plan.registry.names
    plot_per_class_iou(report, out / figs["per_class_iou"])
    for name, fname in figs["confusion"].items():
        n_runs = report["sets"][name]["n_runs"]
        title = f"{name}: rows normalised" + (f" ({n_runs} runs pooled)" if n_runs > 1 else "")
        plot_confusion(np.array(report["sets"][name]["confusion_matrix"]), names, title, out / fname)
    shown = pick_scenes(report, scenes)
    if shown:
        plot_scenes(plan, report, shown, out / figs["scenes"])
    else:
        (out / figs["scenes"]).unlink(missing_ok=True)   # a stale grid from an earlier run would mislead
    report["meta"]["figures"] = {**figs, "scenes": figs["scenes"] if shown else None}
    report["meta"]["scenes_shown"] = shown
    write_json(out / "report.json", report)
    atomic_write_text(out / "report.md", render_markdown(report))


# ------------------------------------------------------------------------------------------ markdown

def _fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _signed(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:+.{digits}f}"


def _pm(v, std, digits: int = 3) -> str:
    return _fmt(v, digits) if std is None else f"{_fmt(v, digits)} ± {std:.{digits}f}"


def _ci(ci, digits: int = 3) -> str:
    return "n/a" if not ci else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = [[str(c).replace("|", "\\|") for c in r] for r in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return lines


def render_markdown(report: dict) -> str:
    sets = report["sets"]
    order = list(sets)
    names = [c["name"] for c in report["classes"]]
    meta = report["meta"]
    figs = meta.get("figures") or figure_names(report)
    n_img = len(meta["stems"])
    L = ["# Evaluation report", "",
         f"Truth: `{meta['truth']}` ({n_img} test images); classes: {meta['classes_source']}; "
         f"truth pixels with value {meta['ignore_index']} are ignored. Reference set: `{meta['reference_set']}`.",
         "", "## Sets", ""]
    rows = []
    for n, s in sets.items():
        rows.append([n, str(s["n_runs"]), str(s["n_images"]), _pm(s["overall_accuracy"], s["overall_accuracy_std"]),
                     _pm(s["mean_iou"], s["mean_iou_std"]), _pm(s["fw_iou"], s["fw_iou_std"]),
                     _pm(s["kappa"], s["kappa_std"]),
                     _pm(s["euclidean"]["mean_distance"], s["euclidean"]["mean_distance_std"], 1)])
    L += _table(["set", "runs", "images", "OA", "mIoU", "fw-IoU", "kappa", "Euclidean distance"], rows)
    L += ["", "Values are mean ± sample std over runs where a set has several runs.", ""]
    multi = [n for n, s in sets.items() if s["n_runs"] > 1]
    if multi:
        L += ["### Runs", ""]
        rows = [[n, r["path"], _fmt(r["overall_accuracy"]), _fmt(r["mean_iou"]), _fmt(r["fw_iou"]),
                 _fmt(r["kappa"])] for n in multi for r in sets[n]["runs"]]
        L += _table(["set", "folder", "OA", "mIoU", "fw-IoU", "kappa"], rows) + [""]

    L += ["## Per-class IoU", ""]
    first = sets[order[0]]["per_class"]
    rows = [[c, str(first[c]["support"])] + [_pm(sets[n]["per_class"][c]["iou"], sets[n]["per_class"][c]["iou_std"])
                                             for n in order] for c in names]
    L += _table(["class", "truth pixels"] + order, rows)
    L += ["", "n/a: the class is in neither the truth nor the prediction, so it has no IoU and is left out "
          "of the mIoU.", ""]
    L += ["### Precision, recall and F1", ""]
    rows = [[c] + [" / ".join(_fmt(sets[n]["per_class"][c][k]) for k in ("precision", "recall", "f1"))
                   for n in order] for c in names]
    L += _table(["class"] + [f"{n} (P / R / F1)" for n in order], rows) + [""]

    comps = report["comparisons"]
    if comps:
        L += [f"## Comparisons against `{order[0]}`", ""]
        rows = [[k, _signed(c["mean_iou_delta"]), _ci(c["mean_iou_delta_ci95"]),
                 _signed(c["overall_accuracy_delta"]), _ci(c["overall_accuracy_delta_ci95"]),
                 f"{c['images_improved']} / {c['images_worse']}",
                 "n/a" if c["euclidean_improved_share"] is None else f"{c['euclidean_improved_share']:.0%}"]
                for k, c in comps.items()]
        L += _table(["comparison", "Δ mIoU", "95% CI", "Δ OA", "95% CI", "images better / worse (mIoU)",
                     "images closer (Euclidean)"], rows)
        L += ["", "An interval that contains 0 means the test images do not show a difference.", "",
              "### Per-class IoU change", ""]
        rows = [[c] + [f"{_signed(comps[k]['per_class_iou_delta'][c])} {_ci(comps[k]['per_class_iou_delta_ci95'][c])}"
                       for k in comps] for c in names]
        L += _table(["class"] + list(comps), rows) + [""]

    L += ["## Per image", ""]
    header = ["scene"] + [f"{n} mIoU" for n in order] + [f"Δ {n}" for n in order[1:]]
    rows = []
    for stem in meta["stems"]:
        v = [sets[n]["per_image"][stem]["mean_iou"] for n in order]
        d = [None if v[0] is None or x is None else x - v[0] for x in v[1:]]
        rows.append([stem] + [_fmt(x) for x in v] + [_signed(x) for x in d])
    L += _table(header, rows) + [""]

    L += ["## Figures", "", f"![Per-class IoU]({figs['per_class_iou']})", "",
          "Confusion matrices, each row normalised to 1 (where the pixels of a truth class went; grey: the "
          "class is absent from the truth):", ""]
    L += [f"![Confusion matrix of {n}]({f})" for n, f in figs["confusion"].items()] + [""]
    if figs.get("scenes"):
        shown = meta.get("scenes_shown") or []
        why = ("the scenes whose mIoU changed most between the first and the last set"
               if len(order) > 1 else "the first scenes by name")
        L += [f"Test scenes ({why}; for sets with several runs, the first run is shown):", "",
              f"![Test scenes]({figs['scenes']})", "", "Shown: " + ", ".join(f"`{s}`" for s in shown), ""]

    boot = meta["bootstrap"]
    L += ["## How to read these numbers", "",
          "- The confusion matrix counts pixels over all test images: rows are the truth, columns the "
          "prediction.",
          "- IoU of a class = TP / (TP + FP + FN); precision = TP / (TP + FP); recall = TP / (TP + FN); "
          "F1 = 2TP / (2TP + FP + FN); support = truth pixels of the class.",
          "- OA (overall accuracy) = correctly labelled pixels / all pixels; it is dominated by the "
          "large classes.",
          "- mIoU = mean IoU over the classes whose union TP + FP + FN is non-zero; a class absent from "
          "both truth and prediction is n/a, not 0, and is not averaged.",
          "- fw-IoU = IoU of each class weighted by its share of the truth pixels.",
          "- kappa (Cohen's) = agreement beyond chance, (OA - pe) / (1 - pe) with pe the agreement expected "
          "from the class frequencies alone.",
          "- Euclidean distance: the paper's metric, kept as a secondary measure. Per image, the mean over "
          "pixels of the RGB distance between the class colours of prediction and truth, in float "
          f"(0 = identical, at most {np.sqrt(3) * 255:.1f}); the table averages the images. It depends on "
          "the arbitrary class colours, so IoU is the measure to trust.",
          "- Per image: the same metrics on each test image alone, to see which scene got better or worse.",
          f"- Bootstrap: {boot['method']}", ""]
    return "\n".join(L)
