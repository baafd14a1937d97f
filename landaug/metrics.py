"""Land-cover segmentation metrics from confusion matrices, and a paired bootstrap over test images.

Usage: ``cm = confusion_matrix(truth, pred, n_classes)``; ``summarize(cm, registry.names)``;
``bootstrap_delta([cms_ref], [cms_new])`` with per-image matrices of shape (n_images, C, C).

Conventions: rows of a confusion matrix are the truth, columns the prediction; truth pixels equal to
``IGNORE_INDEX`` are left out of every count. The array functions accept a stack of matrices
(..., C, C) and return NaN where a quantity is undefined (0/0); ``summarize`` turns NaN into ``None``
for JSON. mIoU averages only the classes whose union TP+FP+FN is non-zero: a class absent from both
truth and prediction has no IoU rather than an IoU of 0 or 1.
"""

from __future__ import annotations

from typing import Callable, Sequence

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
    """(n_resamples, n_items) counts: how often each item is drawn in each bootstrap resample."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_items, size=(n_resamples, n_items))
    flat = draws + np.arange(n_resamples)[:, None] * n_items
    return np.bincount(flat.ravel(), minlength=n_resamples * n_items).reshape(n_resamples, n_items)


def _stat_over_runs(runs: Sequence[np.ndarray], weights: np.ndarray,
                    stat: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Mean over runs of ``stat`` of each run's resampled pooled matrix, per resample: (n_resamples,)."""
    vals = []
    for cms in runs:
        cms = np.asarray(cms, dtype=np.float64)
        n, c, _ = cms.shape
        pooled = (weights @ cms.reshape(n, c * c)).reshape(-1, c, c)
        vals.append(stat(pooled))
    return np.mean(vals, axis=0)


def bootstrap_delta(reference_runs: Sequence[np.ndarray], other_runs: Sequence[np.ndarray],
                    stat: Callable[[np.ndarray], np.ndarray] = mean_iou,
                    n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                    level: float = 0.95) -> dict:
    """Paired bootstrap over test images of ``stat(other) - stat(reference)``.

    Each argument is a list of runs, each run an (n_images, C, C) stack of per-image confusion matrices
    in the same image order. A resample draws images with replacement; the same draw is applied to every
    run of both sets (pairing). Within a resample each run's matrices are summed over the drawn images
    and ``stat`` taken, and a set's value is the mean of ``stat`` over its runs, so the point estimate
    is exactly the difference of the run-averaged metrics. The interval reflects the variability of the
    test images, not of the training seeds (the run-to-run spread is reported separately).
    Returns ``delta``, ``ci`` = [lo, hi] (percentile interval at ``level``; ``None`` for fewer than two
    images), ``p_improved`` (share of resamples with a positive difference) and the settings.
    """
    n_images = {np.asarray(r).shape[0] for r in [*reference_runs, *other_runs]}
    if len(n_images) != 1:
        raise ValueError(f"runs cover different numbers of images: {sorted(n_images)}")
    n = n_images.pop()
    identity = np.ones((1, n))
    delta = float(_stat_over_runs(other_runs, identity, stat)[0] - _stat_over_runs(reference_runs, identity, stat)[0])
    out = {"delta": nan_to_none(delta), "ci": None, "p_improved": None, "level": level,
           "resamples": int(n_resamples), "seed": int(seed)}
    if n < 2 or n_resamples < 1:
        return out
    w = resample_weights(n, n_resamples, seed).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        diffs = _stat_over_runs(other_runs, w, stat) - _stat_over_runs(reference_runs, w, stat)
    diffs = diffs[~np.isnan(diffs)]
    if diffs.size:
        alpha = (1.0 - level) / 2.0
        lo, hi = np.quantile(diffs, [alpha, 1.0 - alpha])
        out["ci"] = [float(lo), float(hi)]
        out["p_improved"] = float((diffs > 0).mean())
    return out
