"""Land-cover segmentation metrics from confusion matrices, and how sure a difference between two sets is.

Usage: ``cm = confusion_matrix(truth, pred, n_classes)``; ``summarize(cm, registry.names)``;
``bootstrap_delta(ref_runs, new_runs)`` with each run an (n_scenes, C, C) stack of per-scene matrices;
``bootstrap_values(runs, {"mean_iou": mean_iou})`` for the interval of one set's value.

Conventions: rows of a confusion matrix are the truth, columns the prediction; truth pixels equal to
``IGNORE_INDEX`` are left out of every count. The array functions accept a stack of matrices
(..., C, C) and return NaN where a quantity is undefined (0/0); ``summarize`` turns NaN into ``None``
for JSON. mIoU averages only the classes whose union TP+FP+FN is non-zero: a class absent from both
truth and prediction has no IoU rather than an IoU of 0 or 1.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from .classes import IGNORE_INDEX

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, n_classes: int,
                     ignore_index: int | None = IGNORE_INDEX) -> np.ndarray:
    """(C, C) int64 counts, rows truth, columns prediction; one bincount, no loop over pixels."""
    truth = np.asarray(truth)
    pred = np.asarray(pred)
    if truth.shape != pred.shape:
        raise ValueError(f"truth {truth.shape} and prediction {pred.shape} differ in shape")
    if truth.dtype == np.uint8 and pred.dtype == np.uint8:
        # Fast path for label maps: one 256x256 joint histogram of (truth << 8 | pred), no masking pass.
        joint = np.bincount(((truth.astype(np.uint16) << 8) | pred).ravel(), minlength=65536).reshape(256, 256)
        if ignore_index is not None and 0 <= ignore_index < 256:
            joint[ignore_index] = 0
        if joint[n_classes:].any() or joint[:, n_classes:].any():
            raise ValueError(f"label values outside 0..{n_classes - 1}")
        return joint[:n_classes, :n_classes].astype(np.int64)
    t = truth.ravel()
    p = pred.ravel()
    if ignore_index is not None:
        keep = t != ignore_index
        if not keep.all():
            t, p = t[keep], p[keep]
    if t.size and (int(t.max()) >= n_classes or int(p.max()) >= n_classes
                   or int(t.min()) < 0 or int(p.min()) < 0):
        raise ValueError(f"label values outside 0..{n_classes - 1}")
    # intp before the multiply: uint8 * n_classes would wrap around
    flat = t.astype(np.intp) * n_classes + p.astype(np.intp)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes).astype(np.int64)


def _parts(cm: np.ndarray):
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    truth_count = cm.sum(axis=-1)   # TP + FN, the support
    pred_count = cm.sum(axis=-2)    # TP + FP
    return cm, tp, truth_count, pred_count


def safe_divide(num, den) -> np.ndarray:
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def iou_per_class(cm) -> np.ndarray:
    """TP / (TP + FP + FN) per class; NaN where the class is in neither truth nor prediction."""
    _, tp, t, p = _parts(cm)
    return safe_divide(tp, t + p - tp)


def precision_per_class(cm) -> np.ndarray:
    """TP / (TP + FP); NaN where the class is never predicted."""
    _, tp, _, p = _parts(cm)
    return safe_divide(tp, p)


def recall_per_class(cm) -> np.ndarray:
    """TP / (TP + FN); NaN where the class is absent from the truth."""
    _, tp, t, _ = _parts(cm)
    return safe_divide(tp, t)


def f1_per_class(cm) -> np.ndarray:
    """2TP / (2TP + FP + FN), the harmonic mean of precision and recall; NaN when absent from both."""
    _, tp, t, p = _parts(cm)
    return safe_divide(2 * tp, t + p)


def support_per_class(cm) -> np.ndarray:
    """Truth pixels per class."""
    return np.asarray(cm).sum(axis=-1)


def overall_accuracy(cm) -> np.ndarray:
    cm, tp, _, _ = _parts(cm)
    return safe_divide(tp.sum(axis=-1), cm.sum(axis=(-2, -1)))


def mean_iou(cm) -> np.ndarray:
    """Mean IoU over the classes with a non-zero union; NaN when no pixel is counted."""
    iou = iou_per_class(cm)
    valid = ~np.isnan(iou)
    return safe_divide(np.where(valid, iou, 0.0).sum(axis=-1), valid.sum(axis=-1))


def mean_iou_present(cm) -> np.ndarray:
    """Mean IoU over the classes present in the truth; NaN when the truth is empty.

    ``mean_iou`` also counts a class that no truth pixel has but some prediction does, with IoU 0: right
    by definition, but on a small test set a few hundred stray pixels of an absent class then lower the
    mean by 1/C. Reporting both shows when that happens."""
    cm, _, t, _ = _parts(cm)
    present = t > 0
    iou = np.nan_to_num(iou_per_class(cm))
    return safe_divide(np.where(present, iou, 0.0).sum(axis=-1), present.sum(axis=-1))


def fw_iou(cm) -> np.ndarray:
    """Frequency-weighted IoU: IoU of each class weighted by its share of the truth pixels."""
    cm, _, t, _ = _parts(cm)
    iou = iou_per_class(cm)
    # a class with truth pixels always has a non-zero union, so NaN only meets weight 0
    weighted = np.where(t > 0, np.nan_to_num(iou) * t, 0.0).sum(axis=-1)
    return safe_divide(weighted, cm.sum(axis=(-2, -1)))


def kappa(cm) -> np.ndarray:
    """Cohen's kappa (po - pe) / (1 - pe); NaN when chance agreement is 1 (a single class everywhere)."""
    cm, tp, t, p = _parts(cm)
    n = cm.sum(axis=(-2, -1))
    po = safe_divide(tp.sum(axis=-1), n)
    pe = safe_divide((t * p).sum(axis=-1), n * n)
    return safe_divide(po - pe, 1.0 - pe)


def color_distance_matrix(colors: np.ndarray) -> np.ndarray:
    """(C, C) float64 Euclidean RGB distances between class colours."""
    c = np.asarray(colors, dtype=np.float64)
    return np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(axis=-1))


def mean_color_distance(cm, colors: np.ndarray) -> np.ndarray:
    """The paper's Euclidean distance done in float: mean over pixels of the RGB distance between the
    class colours of truth and prediction. Each pixel's distance depends only on its (truth, prediction)
    pair, so the mean follows exactly from the confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    d = color_distance_matrix(colors)
    return safe_divide((cm * d).sum(axis=(-2, -1)), cm.sum(axis=(-2, -1)))


def pixel_color_distance(truth: np.ndarray, pred: np.ndarray, colors: np.ndarray,
                         ignore_index: int | None = IGNORE_INDEX) -> float:
    """The same mean distance computed pixel by pixel on colourised masks (float, no uint8 wrap-around)."""
    truth = np.asarray(truth)
    pred = np.asarray(pred)
    keep = np.ones(truth.shape, bool) if ignore_index is None else truth != ignore_index
    if not keep.any():
        return float("nan")
    c = np.asarray(colors, dtype=np.float64)
    diff = c[truth[keep]] - c[pred[keep]]
    return float(np.sqrt((diff ** 2).sum(axis=-1)).mean())


def nan_to_none(x) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def summarize(cm: np.ndarray, names: Sequence[str]) -> dict:
    """Every metric of one confusion matrix, JSON-ready; undefined values are ``None``."""
    cm = np.asarray(cm)
    per_class = {}
    iou, prec, rec, f1 = iou_per_class(cm), precision_per_class(cm), recall_per_class(cm), f1_per_class(cm)
    sup = support_per_class(cm)
    for i, name in enumerate(names):
        per_class[name] = {"iou": nan_to_none(iou[i]), "precision": nan_to_none(prec[i]),
                           "recall": nan_to_none(rec[i]), "f1": nan_to_none(f1[i]), "support": int(sup[i])}
    return {
        "n_pixels": int(cm.sum()),
        "overall_accuracy": nan_to_none(overall_accuracy(cm)),
        "mean_iou": nan_to_none(mean_iou(cm)),
        "mean_iou_present": nan_to_none(mean_iou_present(cm)),
        "fw_iou": nan_to_none(fw_iou(cm)),
        "kappa": nan_to_none(kappa(cm)),
        "n_classes_in_mean_iou": int((~np.isnan(iou)).sum()),
        "per_class": per_class,
    }


def resample_weights(n_items: int, n_resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(n_resamples, n_items) counts: how often each item (test scene) is drawn in each resample."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_items, size=(n_resamples, n_items))
    flat = draws + np.arange(n_resamples)[:, None] * n_items
    return np.bincount(flat.ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items)


def resample_runs(n_runs: int, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """(n_resamples, n_runs) run indices drawn with replacement, from a stream apart from the scene draw
    of ``resample_weights`` and keyed by the run count: sets with as many runs get the same draw (run r
    paired with run r), sets with other counts independent ones, whichever set is the reference."""
    return np.random.default_rng([seed, n_runs]).integers(0, n_runs, size=(n_resamples, n_runs))


def _as_runs(runs) -> np.ndarray:
    a = np.asarray(runs, dtype=np.float64)
    if a.ndim != 4 or a.shape[0] < 1:
        raise ValueError(f"expected runs of per-scene matrices (n_runs, n_scenes, C, C), got shape {a.shape}")
    return a


def _run_values(pooled: np.ndarray, stats: Mapping[str, Callable]) -> dict[str, np.ndarray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return {k: np.asarray(fn(pooled), dtype=np.float64) for k, fn in stats.items()}


def bootstrap_deltas(reference_runs, other_runs, stats: Mapping[str, Callable[[np.ndarray], np.ndarray]],
                     n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = 0.95, resample_runs_too: bool = True) -> dict[str, dict]:
    """Two-level paired bootstrap of ``stat(other) - stat(reference)`` for each named stat.

    Each argument is a sequence of runs (training seeds), each an (n_scenes, C, C) stack of per-scene
    confusion matrices in the same scene order. A resample draws the runs of each set with replacement
    and the scenes with replacement; the scene draw is the same for both sets, and so is the run draw
    when both sets have the same number of runs (run r of each set is the same seed); with different
    run counts each set's runs are drawn independently. Each drawn run's per-scene matrices are summed
    with the scene weights, the stat taken, and averaged over the drawn runs. The interval thus carries
    both the seed-to-seed spread and the variability of the test scenes. ``resample_runs_too=False``
    keeps every run in every resample (scenes only).

    Per stat: ``delta`` (difference of the run means over all scenes), ``ci`` = [lo, hi] (percentile
    interval at ``level``; ``None`` with fewer than two scenes or no resamples), ``share_improved``
    (share of resamples with a positive difference: a description of the resamples, not a p-value),
    ``valid_resamples`` (those where the stat is defined for both sets) and the settings.
    """
    ref, new = _as_runs(reference_runs), _as_runs(other_runs)
    if ref.shape[1:] != new.shape[1:]:
        raise ValueError(f"runs cover different scenes or classes: {ref.shape[1:]} vs {new.shape[1:]}")
    n_ref, n_scenes = ref.shape[:2]
    n_new = new.shape[0]
    paired = None if not resample_runs_too else n_ref == n_new
    base = {"level": level, "resamples": int(n_resamples), "seed": int(seed), "runs": [n_ref, n_new],
            "runs_paired": paired, "levels": "runs and scenes" if resample_runs_too else "scenes",
            "scenes": n_scenes}
    point_ref = _run_values(ref.sum(axis=1), stats)
    point_new = _run_values(new.sum(axis=1), stats)
    out = {k: {"delta": nan_to_none(point_new[k].mean() - point_ref[k].mean()), "ci": None,
               "share_improved": None, "valid_resamples": 0, **base} for k in stats}
    if n_scenes < 2 or n_resamples < 1:
        return out
    w = resample_weights(n_scenes, n_resamples, seed).astype(np.float64)          # (B, S)
    if resample_runs_too:
        idx_ref = resample_runs(n_ref, n_resamples, seed)
        idx_new = resample_runs(n_new, n_resamples, seed)
    else:
        idx_ref = np.broadcast_to(np.arange(n_ref), (n_resamples, n_ref))
        idx_new = np.broadcast_to(np.arange(n_new), (n_resamples, n_new))
    vals_ref, vals_new = _resampled(ref, stats, w, idx_ref), _resampled(new, stats, w, idx_new)
    alpha = (1.0 - level) / 2.0
    for k in stats:
        diffs = vals_new[k] - vals_ref[k]
        diffs = diffs[~np.isnan(diffs)]
        out[k]["valid_resamples"] = int(diffs.size)
        if diffs.size:
            lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])
            out[k]["ci"] = [float(lo), float(hi)]
            out[k]["share_improved"] = float((diffs > 0).mean())
    return out


def _resampled(runs: np.ndarray, stats: Mapping[str, Callable], w: np.ndarray, idx: np.ndarray) -> dict:
    """Per stat, each resample's mean over its drawn runs (``idx``, (B, n_drawn)) of the stat of each run's
    per-scene matrices summed with the scene weights ``w`` (B, S)."""
    n, s, c, _ = runs.shape
    # every run's resampled pool at once: (B, R, C, C); the run draw then picks among them
    vals = _run_values(np.einsum("bs,rsk->brk", w, runs.reshape(n, s, c * c)).reshape(len(w), n, c, c), stats)
    return {k: np.take_along_axis(v, idx, axis=1).mean(axis=1) for k, v in vals.items()}


def bootstrap_values(runs, stats: Mapping[str, Callable[[np.ndarray], np.ndarray]],
                     n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = 0.95) -> dict[str, list[float] | None]:
    """Per stat, the percentile interval of one set's value (the mean over its runs) under the same
    two-level bootstrap as ``bootstrap_deltas`` (runs, then scenes, with the same draws); None with fewer
    than two scenes or no resamples."""
    a = _as_runs(runs)
    if a.shape[1] < 2 or n_resamples < 1:
        return {k: None for k in stats}
    w = resample_weights(a.shape[1], n_resamples, seed).astype(np.float64)
    vals = _resampled(a, stats, w, resample_runs(a.shape[0], n_resamples, seed))
    alpha = (1.0 - level) / 2.0
    out = {}
    for k, v in vals.items():
        v = v[~np.isnan(v)]
        out[k] = [float(q) for q in np.quantile(v, [alpha, 1.0 - alpha])] if v.size else None
    return out


def bootstrap_delta(reference_runs, other_runs, stat: Callable[[np.ndarray], np.ndarray] = mean_iou,
                    n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                    level: float = 0.95, resample_runs_too: bool = True) -> dict:
    """``bootstrap_deltas`` of one stat (mIoU by default)."""
    return bootstrap_deltas(reference_runs, other_runs, {"stat": stat}, n_resamples, seed, level,
                            resample_runs_too)["stat"]
