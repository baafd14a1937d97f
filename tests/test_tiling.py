"""Whole-scene sliding-window inference with pure numpy models: exact on pointwise models at any size,
no seams where windows meet, sub-window boundaries at reduced scale, window counts and batching."""

from __future__ import annotations

import math

import numpy as np
import pytest

from landaug.errors import UserError
from landaug.blockwise import predict_scene
from landaug.tiling import count_windows, labels_and_confidence, window_starts, window_weights

C, K = 4, 3  # photo channels, classes
LINEAR = np.random.default_rng(7).normal(size=(C, K)).astype(np.float32) * 3
BIAS = np.array([0.2, -0.1, 0.0], np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def pointwise(x: np.ndarray) -> np.ndarray:
    """Each pixel's probabilities depend on its own channels only."""
    return _softmax(x @ LINEAR + BIAS).astype(np.float32)


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, C), dtype=np.float32)


@pytest.mark.parametrize("shape, window, overlap", [
    ((301, 217), 32, 0.25), ((1000, 1000), 32, 0.25), ((5, 3), 16, 0.25), ((1, 40), 16, 0.5), ((70, 50), 16, 0.0)])
def test_pointwise_model_is_reproduced_exactly_at_any_size(shape, window, overlap):
    photo = _photo(*shape)
    probs = predict_scene(photo, pointwise, window, K, overlap=overlap, batch=16)
    assert probs.shape == (*shape, K) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, pointwise(photo), atol=1e-5, rtol=0)


def test_windows_are_padded_by_mirror_reflection():
    photo = _photo(5, 3)
    seen = []
    predict_scene(photo, lambda x: (seen.append(x.copy()), pointwise(x))[1], 16, K)
    assert len(seen) == 1 and seen[0].shape == (1, 16, 16, C) and seen[0].dtype == np.float32
    # 16 px from 5 rows: 5 above, 6 below; from 3 columns: 6 left, 7 right; mirrored repeatedly.
    np.testing.assert_array_equal(seen[0][0], np.pad(photo, ((5, 6), (6, 7), (0, 0)), mode="symmetric"))


def _ramp_model(window: int, n_classes: int = 2):
    """Probabilities that change across the window: class 0 goes from 0.3 (top left) to 0.7 (bottom
    right), 0.2 along each axis."""
    i = np.arange(window, dtype=np.float32) / (window - 1)
    p0 = 0.3 + 0.2 * (i[:, None] + i[None, :])

    def predict(x):
        p = np.stack([p0, 1 - p0], axis=-1)[None]
        return np.repeat(p, len(x), axis=0).astype(np.float32)
    return predict


def _max_jump(a: np.ndarray) -> float:
    return float(max(np.abs(np.diff(a, axis=0)).max(), np.abs(np.diff(a, axis=1)).max()))


def test_no_seams_where_windows_meet():
    window, overlap = 32, 0.25
    ov = round(overlap * window)
    flat = np.full((100, 90, C), 0.5, np.float32)
    blended = predict_scene(flat, _ramp_model(window), window, 2, overlap=overlap)[..., 0]
    # Along an axis the model changes by 0.2 / (window - 1) per px; a cross-fade over the overlap
    # moves from one window's value to the next (at most 0.2 apart) by at most pi / (2 ov) per px.
    bound = 0.2 * (1 / (window - 1) + math.pi / (2 * ov))
    jump = _max_jump(blended)
    assert 0.2 / (window - 1) * 0.5 < jump <= bound * 1.05
    # Without overlap on a multiple of the window, windows butt together and the full 0.2 jump
    # (0.7 at one window's corner to 0.5 at the next one's edge) appears: the bound can fail.
    hard = predict_scene(flat[:96, :64], _ramp_model(window), window, 2, overlap=0.0)[..., 0]
    assert _max_jump(hard) > 0.19 > bound * 1.05


@pytest.mark.parametrize("shape, scale", [((100, 90), 1.0), ((61, 47), 0.5), ((5, 3), 1.0), ((40, 30), 1.7)])
def test_constant_model_gives_that_constant(shape, scale):
    const = np.array([0.1, 0.2, 0.7], np.float32)
    probs = predict_scene(_photo(*shape), lambda x: np.broadcast_to(const, (*x.shape[:3], K)), 16, K,
                          scale=scale)
    assert probs.shape == (*shape, K)
    np.testing.assert_allclose(probs, np.broadcast_to(const, probs.shape), atol=1e-6, rtol=0)


def test_reduced_scale_boundary_is_finer_than_the_model_grid():
    h, w, scale = 1000, 617, 0.25
    cols = np.arange(w)[None, :]
    boundary = 250 + np.arange(h) // 10  # first class-1 column of each row: 250 .. 349, slanted
    photo = (cols >= boundary[:, None]).astype(np.float32)[..., None]

    def two_class(x):
        return np.concatenate([1 - x, x], axis=-1)

    probs = predict_scene(photo, two_class, 32, 2, scale=scale)
    assert probs.shape == (h, w, 2)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-6)
    label, _ = labels_and_confidence(probs)
    found = label.argmax(axis=1)
    assert (label == (cols >= found[:, None])).all()  # one clean edge per row
    err = np.abs(found - boundary)
    assert err.max() <= 1 / scale and err.mean() < 1.0
    # A label map blown up from the model's grid would put every edge on a multiple of 1 / scale.
    assert set(np.unique(found % 4)) == {0, 1, 2, 3}


def test_window_starts_by_hand():
    assert window_starts(1064, 256, 192) == [0, 162, 323, 485, 646, 808]  # 808 / 5 = 161.6 per step
    assert window_starts(80, 32, 24) == [0, 24, 48]
    assert window_starts(32, 32, 24) == [0]
    assert window_starts(33, 32, 24) == [0, 1]
    assert window_starts(57, 32, 24) == [0, 12, 25]  # one step of 25 > 24: a third window
    assert window_starts(56, 32, 24) == [0, 24]
    with pytest.raises(ValueError):
        window_starts(20, 32, 24)


def test_count_windows_by_hand():
    # 1000 px + 2 x 32 px margin (half of 64 px overlap) = 1064 px: 6 windows of 256 at steps <= 192.
    assert count_windows(1000, 1000, 256) == 36
    # scale 0.25: 250 + 64 = 314 px, 2 windows per axis.
    assert count_windows(1000, 1000, 256, scale=0.25) == 4
    # 301 x 217, window 32, overlap 8: 309 x 225 padded, steps of 24: 1 + ceil(277 / 24) = 13 rows,
    # 1 + ceil(193 / 24) = 10 columns.
    assert count_windows(301, 217, 32) == 130
    assert count_windows(5, 3, 16) == 1
    # no overlap, no margin: 64 / 16 = 4 exactly, 65 needs a fifth.
    assert count_windows(64, 65, 16, overlap=0) == 4 * 5


def test_window_weights_shape_and_values():
    w = window_weights(16, 4)
    assert w.shape == (16, 16) and w.dtype == np.float32
    assert (w > 0).all() and w.max() == 1.0 and w[8, 8] == 1.0 and w[7, 7] == 1.0
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(w, w[::-1])
    np.testing.assert_array_equal(w, w[:, ::-1])
    edge = math.sin(math.pi / 16) ** 2  # pixel centre 0.5 px into a 4 px ramp
    assert w[0, 8] == pytest.approx(edge, rel=1e-6) and w[0, 0] == pytest.approx(edge ** 2, rel=1e-6)
    # windows overlapping by exactly the ramp cross-fade: their weights add up to 1
    np.testing.assert_allclose(w[8, 12:] + w[8, :4], 1.0, atol=1e-6)
    assert (window_weights(16, 0) == 1).all()
    wide = window_weights(16, 14)
    assert (wide > 0).all() and wide.max() == pytest.approx(1.0) and wide[7, 8] == wide.max()


@pytest.mark.parametrize("shape, scale, batch", [((301, 217), 1.0, 5), ((200, 130), 0.5, 3), ((5, 3), 1.0, 4)])
def test_batches_never_exceed_batch_and_every_window_runs_once(shape, scale, batch):
    sizes = []

    def counting(x):
        assert x.shape[1:] == (16, 16, C) and x.dtype == np.float32
        sizes.append(len(x))
        return pointwise(x)

    predict_scene(_photo(*shape), counting, 16, K, scale=scale, batch=batch)
    n = count_windows(*shape, 16, scale=scale)
    assert max(sizes) <= batch and sum(sizes) == n
    assert sizes == [batch] * (n // batch) + ([n % batch] if n % batch else [])


def test_labels_and_confidence():
    probs = np.array([[[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]]], np.float32)
    label, conf = labels_and_confidence(probs)
    assert label.dtype == np.uint8 and conf.dtype == np.float32
    np.testing.assert_array_equal(label, [[1, 0]])
    np.testing.assert_array_equal(conf, np.array([[0.7, 0.5]], np.float32))
    with pytest.raises(UserError):
        labels_and_confidence(probs[0])


@pytest.mark.parametrize("kwargs, where", [
    ({"window": 4}, "window"), ({"window": 16.0}, "window"), ({"window": True}, "window"),
    ({"overlap": -0.1}, "overlap"), ({"overlap": 0.95}, "overlap"), ({"overlap": 1}, "overlap"),
    ({"scale": 0}, "scale"), ({"scale": -1.0}, "scale"), ({"scale": float("nan")}, "scale"),
    ({"batch": 0}, "batch"), ({"n_classes": 0}, "n_classes"),
    ({"photo": np.zeros((16, 16), np.float32)}, "photo"), ({"photo": np.zeros((0, 16, 3), np.float32)}, "photo"),
])
def test_bad_arguments_raise(kwargs, where):
    args = {"photo": _photo(20, 20), "predict_batch": pointwise, "window": 16, "n_classes": K, **kwargs}
    with pytest.raises(UserError, match=f"^{where}: ") as info:
        predict_scene(**args)
    assert isinstance(info.value, ValueError)


def test_bad_count_windows_arguments_and_model_output_raise():
    with pytest.raises(UserError, match="^window: "):
        count_windows(100, 100, 7)
    with pytest.raises(UserError, match="^scale: "):
        count_windows(100, 100, 16, scale=0)
    with pytest.raises(ValueError, match="predict_batch returned shape"):
        predict_scene(_photo(20, 20), lambda x: pointwise(x)[..., :2], 16, K)
