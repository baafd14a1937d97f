"""Metrics against scikit-learn on random masks, hand-made cases with known answers, and the two-level
paired bootstrap over runs and scenes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from landaug import metrics as M
from landaug.classes import IGNORE_INDEX, SPARCS

C = 7
RTOL = 1e-12


def _random_pair(rng, shape=(40, 50), truth_classes=range(C), pred_classes=range(C), ignore_share=0.0):
    truth = rng.choice(np.array(list(truth_classes), np.uint8), size=shape)
    pred = rng.choice(np.array(list(pred_classes), np.uint8), size=shape)
    # correlate the prediction with the truth so scores are not all near chance
    keep = rng.random(shape) < 0.5
    pred = np.where(keep & np.isin(truth, list(pred_classes)), truth, pred)
    if ignore_share:
        truth[rng.random(shape) < ignore_share] = IGNORE_INDEX
    return truth, pred


def _check_against_sklearn(truth, pred, n=C):
    keep = truth.ravel() != IGNORE_INDEX
    y_true, y_pred = truth.ravel()[keep].astype(int), pred.ravel()[keep].astype(int)
    labels = list(range(n))
    cm = M.confusion_matrix(truth, pred, n)
    ref = skm.confusion_matrix(y_true, y_pred, labels=labels)
    np.testing.assert_array_equal(cm, ref)

    union = np.isin(labels, np.union1d(y_true, y_pred))
    present = [c for c in labels if union[c]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        iou_ref = skm.jaccard_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
        prec_ref = skm.precision_score(y_true, y_pred, labels=labels, average=None, zero_division=np.nan)
        rec_ref = skm.recall_score(y_true, y_pred, labels=labels, average=None, zero_division=np.nan)
        f1_ref = skm.f1_score(y_true, y_pred, labels=labels, average=None, zero_division=np.nan)
        fw_ref = skm.jaccard_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0)
    iou = M.iou_per_class(cm)
    # undefined (absent from both) is NaN here, where sklearn substitutes its zero_division value
    assert np.array_equal(np.isnan(iou), ~union)
    np.testing.assert_allclose(iou[union], iou_ref[union], rtol=RTOL)
    np.testing.assert_allclose(M.precision_per_class(cm), prec_ref, rtol=RTOL, equal_nan=True)
    np.testing.assert_allclose(M.recall_per_class(cm), rec_ref, rtol=RTOL, equal_nan=True)
    np.testing.assert_allclose(M.f1_per_class(cm), f1_ref, rtol=RTOL, equal_nan=True)
    np.testing.assert_array_equal(M.support_per_class(cm), np.bincount(y_true, minlength=n))
    assert M.overall_accuracy(cm) == pytest.approx(skm.accuracy_score(y_true, y_pred), rel=RTOL)
    assert M.mean_iou(cm) == pytest.approx(skm.jaccard_score(y_true, y_pred, labels=present, average="macro"),
                                           rel=RTOL)
    assert M.fw_iou(cm) == pytest.approx(fw_ref, rel=RTOL)
    assert M.kappa(cm) == pytest.approx(skm.cohen_kappa_score(y_true, y_pred), rel=1e-10)
    return cm, union


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn_on_random_masks(seed):
    rng = np.random.default_rng(seed)
    truth, pred = _random_pair(rng, ignore_share=0.1)
    _, union = _check_against_sklearn(truth, pred)
    assert union.all()


def test_class_absent_from_truth(rng):
    truth, pred = _random_pair(rng, truth_classes=[0, 1, 2, 4, 5, 6])
    cm, union = _check_against_sklearn(truth, pred)
    assert cm[3].sum() == 0 and cm[:, 3].sum() > 0
    # predicted but never true: a defined IoU of 0 that counts in the mean; recall undefined
    assert M.iou_per_class(cm)[3] == 0.0 and np.isnan(M.recall_per_class(cm)[3]) and union[3]


def test_class_absent_from_prediction(rng):
    truth, pred = _random_pair(rng, pred_classes=[0, 1, 2, 3, 4, 6])
    cm, union = _check_against_sklearn(truth, pred)
    assert cm[:, 5].sum() == 0 and cm[5].sum() > 0
    assert M.iou_per_class(cm)[5] == 0.0 and np.isnan(M.precision_per_class(cm)[5]) and union[5]


def test_class_absent_from_both(rng):
    classes = [0, 1, 2, 4, 5]
    truth, pred = _random_pair(rng, truth_classes=classes, pred_classes=classes, ignore_share=0.05)
    cm, union = _check_against_sklearn(truth, pred)
    assert not union[3] and not union[6]
    assert np.isnan(M.iou_per_class(cm)[[3, 6]]).all()
    summary = M.summarize(cm, SPARCS.names)
    assert summary["per_class"]["snow/ice"]["iou"] is None
    assert summary["per_class"]["flooded"]["f1"] is None
    assert summary["n_classes_in_mean_iou"] == 5
    # the absent classes are left out of the mean, not counted as 0
    iou = M.iou_per_class(cm)
    assert summary["mean_iou"] == pytest.approx(iou[classes].mean(), rel=RTOL)


def test_perfect_prediction():
    truth = np.array([[0, 0, 1], [1, 2, 2]], np.uint8)
    s = M.summarize(M.confusion_matrix(truth, truth, 4), ["a", "b", "c", "d"])
    assert s["overall_accuracy"] == 1.0 and s["mean_iou"] == 1.0 and s["fw_iou"] == 1.0
    assert s["kappa"] == pytest.approx(1.0)
    assert [s["per_class"][k]["iou"] for k in "abc"] == [1.0, 1.0, 1.0]
    assert s["per_class"]["d"] == {"iou": None, "precision": None, "recall": None, "f1": None, "support": 0}
    assert s["n_classes_in_mean_iou"] == 3


def test_all_wrong():
    truth = np.array([[0, 0], [1, 1]], np.uint8)
    pred = 1 - truth
    cm = M.confusion_matrix(truth, pred, 2)
    np.testing.assert_array_equal(cm, [[0, 2], [2, 0]])
    s = M.summarize(cm, ["a", "b"])
    assert s["overall_accuracy"] == 0.0 and s["mean_iou"] == 0.0 and s["fw_iou"] == 0.0
    assert s["kappa"] == pytest.approx(-1.0)   # systematically swapped: worse than chance
    assert s["per_class"]["a"] == {"iou": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}


def test_one_class_missing_by_hand():
    # truth: three of class 0, one of class 1; the prediction never says 1
    truth = np.array([[0, 0], [0, 1]], np.uint8)
    pred = np.zeros_like(truth)
    cm = M.confusion_matrix(truth, pred, 3)
    np.testing.assert_array_equal(cm, [[3, 0, 0], [1, 0, 0], [0, 0, 0]])
    s = M.summarize(cm, ["a", "b", "c"])
    assert s["per_class"]["a"]["iou"] == pytest.approx(3 / 4)
    assert s["per_class"]["a"]["precision"] == pytest.approx(3 / 4)
    assert s["per_class"]["a"]["recall"] == 1.0
    assert s["per_class"]["a"]["f1"] == pytest.approx(6 / 7)
    assert s["per_class"]["b"]["iou"] == 0.0 and s["per_class"]["b"]["precision"] is None
    assert s["per_class"]["c"]["iou"] is None
    assert s["overall_accuracy"] == pytest.approx(3 / 4)
    assert s["mean_iou"] == pytest.approx((3 / 4 + 0) / 2)
    assert s["fw_iou"] == pytest.approx(3 / 4 * 3 / 4)
    assert s["kappa"] == pytest.approx(0.0)    # always saying the majority class is chance level


def test_ignored_pixels_are_excluded_everywhere():
    truth = np.array([[0, IGNORE_INDEX], [1, IGNORE_INDEX]], np.uint8)
    pred = np.array([[0, 1], [1, 0]], np.uint8)
    cm = M.confusion_matrix(truth, pred, 2)
    np.testing.assert_array_equal(cm, [[1, 0], [0, 1]])
    assert M.mean_iou(cm) == 1.0
    assert M.pixel_color_distance(truth, pred, SPARCS.colors[:2]) == 0.0


def test_empty_matrix_is_undefined_not_zero():
    cm = M.confusion_matrix(np.full((2, 2), IGNORE_INDEX, np.uint8), np.zeros((2, 2), np.uint8), 3)
    s = M.summarize(cm, ["a", "b", "c"])
    assert s["n_pixels"] == 0
    assert s["overall_accuracy"] is None and s["mean_iou"] is None and s["kappa"] is None


def test_out_of_range_labels_rejected():
    with pytest.raises(ValueError):
        M.confusion_matrix(np.array([[0, 3]], np.uint8), np.array([[0, 1]], np.uint8), 3)
    with pytest.raises(ValueError):
        M.confusion_matrix(np.array([[0, 1]], np.uint8), np.array([[0, 7]], np.uint8), 3)
    with pytest.raises(ValueError):
        M.confusion_matrix(np.array([[0, 1]]), np.array([[0, 1, 2]]), 3)


def test_uint8_fast_path_equals_generic_path(rng):
    truth, pred = _random_pair(rng, ignore_share=0.2)
    np.testing.assert_array_equal(M.confusion_matrix(truth, pred, C),
                                  M.confusion_matrix(truth.astype(np.int64), pred.astype(np.int64), C))


def test_stacked_matrices_give_the_same_numbers(rng):
    cms = np.stack([M.confusion_matrix(*_random_pair(rng), C) for _ in range(4)])
    for fn in (M.iou_per_class, M.f1_per_class, M.mean_iou, M.fw_iou, M.kappa, M.overall_accuracy):
        stacked = fn(cms)
        for k in range(4):
            np.testing.assert_allclose(stacked[k], fn(cms[k]), rtol=RTOL, equal_nan=True)


def test_euclidean_distance_in_float_from_confusion_matrix(rng):
    truth, pred = _random_pair(rng, ignore_share=0.1)
    cm = M.confusion_matrix(truth, pred, C)
    by_pixel = M.pixel_color_distance(truth, pred, SPARCS.colors)
    assert M.mean_color_distance(cm, SPARCS.colors) == pytest.approx(by_pixel, rel=1e-12)
    # black against white: sqrt(3) * 255, where uint8 arithmetic would wrap around
    black = np.zeros((3, 3), np.uint8)
    white = np.full((3, 3), 5, np.uint8)
    assert M.pixel_color_distance(black, white, SPARCS.colors) == pytest.approx(np.sqrt(3) * 255)
    assert M.mean_color_distance(M.confusion_matrix(black, white, C), SPARCS.colors) == pytest.approx(
        np.sqrt(3) * 255)
    assert M.mean_color_distance(M.confusion_matrix(white, black, C), SPARCS.colors) == pytest.approx(
        np.sqrt(3) * 255)


def _image_stack(rng, n, noise, shape=(16, 16)):
    out = []
    for _ in range(n):
        t = rng.integers(0, 4, shape).astype(np.uint8)
        p = np.where(rng.random(shape) < noise, rng.integers(0, 4, shape), t).astype(np.uint8)
        out.append(M.confusion_matrix(t, p, 4))
    return np.stack(out)


def test_resample_weights_draw_every_image_count():
    w = M.resample_weights(8, 1000, seed=3)
    assert w.shape == (1000, 8)
    assert (w.sum(axis=1) == 8).all()
    np.testing.assert_array_equal(w, M.resample_weights(8, 1000, seed=3))
    assert not np.array_equal(w, M.resample_weights(8, 1000, seed=4))
    # every image is drawn about once per resample on average
    np.testing.assert_allclose(w.mean(axis=0), 1.0, atol=0.15)


def test_bootstrap_point_estimate_interval_and_seed():
    rng = np.random.default_rng(5)
    ref = [_image_stack(rng, 10, 0.6), _image_stack(rng, 10, 0.6)]
    new = [_image_stack(rng, 10, 0.3), _image_stack(rng, 10, 0.3), _image_stack(rng, 10, 0.3)]
    b = M.bootstrap_delta(ref, new)
    expected = np.mean([M.mean_iou(r.sum(0)) for r in new]) - np.mean([M.mean_iou(r.sum(0)) for r in ref])
    assert b["delta"] == pytest.approx(expected, rel=1e-12)
    lo, hi = b["ci"]
    assert lo < b["delta"] < hi and lo > 0
    assert b["share_improved"] == 1.0 and b["resamples"] == 1000 and b["seed"] == 0
    # 2 against 3 runs: no seed pairing, each set's runs drawn on their own
    assert b["runs"] == [2, 3] and b["runs_paired"] is False and b["levels"] == "runs and scenes"
    assert M.bootstrap_delta(ref, new) == b
    assert M.bootstrap_delta(ref, new, seed=1)["ci"] != b["ci"]


def test_bootstrap_of_a_set_against_itself_is_zero():
    rng = np.random.default_rng(6)
    runs = [_image_stack(rng, 6, 0.5)]
    b = M.bootstrap_delta(runs, runs)
    assert b["delta"] == 0.0 and b["ci"] == [0.0, 0.0] and b["share_improved"] == 0.0


def test_bootstrap_needs_two_scenes_and_the_same_scenes():
    rng = np.random.default_rng(7)
    one = [_image_stack(rng, 1, 0.5)]
    assert M.bootstrap_delta(one, [_image_stack(rng, 1, 0.2)])["ci"] is None
    with pytest.raises(ValueError):
        M.bootstrap_delta([_image_stack(rng, 3, 0.5)], [_image_stack(rng, 4, 0.5)])


def test_confusion_matrix_of_a_megapixel_uint8_mask_equals_the_generic_path(rng):
    truth = rng.integers(0, C, (1000, 1000)).astype(np.uint8)
    pred = rng.integers(0, C, (1000, 1000)).astype(np.uint8)
    cm = M.confusion_matrix(truth, pred, C)
    assert cm.sum() == 1_000_000
    np.testing.assert_array_equal(cm, M.confusion_matrix(truth.astype(np.int32), pred.astype(np.int32), C))


def test_mean_iou_present_leaves_out_classes_absent_from_the_truth():
    # Class 2 has no truth pixel; one stray pixel predicted as 2 costs mean_iou a third, not mean_iou_present.
    cm = np.array([[5, 0, 0],
                   [0, 4, 1],
                   [0, 0, 0]])
    assert M.mean_iou(cm) == pytest.approx((1.0 + 0.8 + 0.0) / 3)
    assert M.mean_iou_present(cm) == pytest.approx((1.0 + 0.8) / 2)
    stack = np.stack([cm, np.diag([3, 3, 3])])
    np.testing.assert_allclose(M.mean_iou_present(stack), [0.9, 1.0])
    assert np.isnan(M.mean_iou_present(np.zeros((3, 3))))
    assert M.summarize(cm, ["a", "b", "c"])["mean_iou_present"] == pytest.approx(0.9)


def _oa_runs(*correct_per_run, scenes=3, pixels=10):
    """Runs whose every scene has OA = correct/pixels: (n_runs, scenes, 2, 2), truth all class 0."""
    return np.array([[[[k, pixels - k], [0, 0]]] * scenes for k in correct_per_run], dtype=np.int64)


def test_two_level_interval_carries_the_seed_spread():
    # 2 seeds x 3 scenes; the seed effect dominates: seed 0 gains +0.3 (0.5 -> 0.8), seed 1 loses 0.1
    # (0.7 -> 0.6), and the scenes of a run agree. Point estimate: 0.7 - 0.6 = +0.1.
    ref, new = _oa_runs(5, 7), _oa_runs(8, 6)
    two = M.bootstrap_delta(ref, new, M.overall_accuracy)
    scenes_only = M.bootstrap_delta(ref, new, M.overall_accuracy, resample_runs_too=False)
    assert two["delta"] == pytest.approx(0.1) == scenes_only["delta"]
    # scenes alone see no spread at all; drawing the seeds, a quarter of the resamples take seed 0 twice
    # (+0.3) and a quarter seed 1 twice (-0.1), so the 95% interval runs from one to the other
    assert scenes_only["ci"] == pytest.approx([0.1, 0.1]) and scenes_only["share_improved"] == 1.0
    assert two["ci"] == pytest.approx([-0.1, 0.3])
    assert two["ci"][0] < 0.0 < two["ci"][1] and not scenes_only["ci"][0] <= 0.0 <= scenes_only["ci"][1]
    # better in every resample except those that drew seed 1 twice
    draws = M.resample_runs(2, 1000, seed=0)
    assert two["share_improved"] == pytest.approx((draws.sum(axis=1) < 2).mean())
    assert 0.65 < two["share_improved"] < 0.85 and two["runs_paired"] is True and two["valid_resamples"] == 1000


def test_two_level_interval_collapses_when_runs_and_scenes_agree():
    ref, new = _oa_runs(6, 6, 6), _oa_runs(9, 9, 9)
    b = M.bootstrap_delta(ref, new, M.overall_accuracy)
    assert b["delta"] == pytest.approx(0.3) and b["ci"] == pytest.approx([0.3, 0.3])
    assert b["share_improved"] == 1.0


def test_pairing_uses_the_same_draw_for_both_sets():
    rng = np.random.default_rng(8)
    runs = np.stack([_image_stack(rng, 5, noise) for noise in (0.2, 0.5, 0.8)])   # seeds differ a lot
    b = M.bootstrap_delta(runs, runs.copy())
    assert b["delta"] == 0.0 and b["ci"] == [0.0, 0.0] and b["share_improved"] == 0.0
    # run r is paired with run r: the same runs in another order are other seeds, so the interval opens
    shuffled = M.bootstrap_delta(runs, runs[::-1].copy())
    assert shuffled["delta"] == pytest.approx(0.0, abs=1e-12) and shuffled["ci"][0] < -0.05 < 0.05 < shuffled["ci"][1]
    # and unequal run counts are drawn independently (not paired), which also opens it
    unpaired = M.bootstrap_delta(runs, runs[:2].copy())
    assert unpaired["runs_paired"] is False and unpaired["ci"][1] - unpaired["ci"][0] > 0.05


def test_resample_runs_pair_equal_counts_only():
    a = M.resample_runs(3, 500, seed=2)
    assert a.shape == (500, 3) and a.min() == 0 and a.max() == 2
    np.testing.assert_array_equal(a, M.resample_runs(3, 500, seed=2))
    assert not np.array_equal(a, M.resample_runs(3, 500, seed=3))


def test_bootstrap_deltas_share_one_draw_across_stats():
    rng = np.random.default_rng(9)
    ref, new = [_image_stack(rng, 6, 0.6)], [_image_stack(rng, 6, 0.3)]
    many = M.bootstrap_deltas(ref, new, {"miou": M.mean_iou, "oa": M.overall_accuracy}, n_resamples=200, seed=4)
    assert many["miou"] == M.bootstrap_delta(ref, new, M.mean_iou, n_resamples=200, seed=4)
    assert many["oa"] == M.bootstrap_delta(ref, new, M.overall_accuracy, n_resamples=200, seed=4)
    assert M.bootstrap_delta(ref, new, n_resamples=0)["ci"] is None
