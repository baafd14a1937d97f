"""Strip-by-strip labelling against the whole-scene labeller it replaced (``bench.baseline``): the same
probabilities bit for bit at any size, scale, batch and with flip TTA, with a model whose output depends on
the whole window; rows held that do not grow with the scene; strip-wise resampling equal to PIL's."""

from __future__ import annotations

import numpy as np
import pytest

from landaug.bench.baseline import whole_scene
from landaug.blockwise import ArrayRows, label_strips, make_plan, predict_scene
from landaug.resample import Resampler

C, K = 3, 4
RNG = np.random.default_rng(3)
MIX = RNG.normal(size=(C, K)).astype(np.float32) * 2
CONTEXT = RNG.normal(size=(C, K)).astype(np.float32) * 4


def windowed(x: np.ndarray) -> np.ndarray:
    """Softmax probabilities from each pixel, its window's mean and its place in the window: every window
    sees something else, so a window cut or blended differently changes the result."""
    s = x.shape[1]
    ramp = np.linspace(-1, 1, s, dtype=np.float32)
    z = x @ MIX + (x.mean(axis=(1, 2), keepdims=True) @ CONTEXT) + ramp[None, :, None, None] * ramp[None, None, :, None]
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (h, w, C)).astype(np.float32)


@pytest.mark.parametrize("shape, window, scale, batch, tta", [
    ((157, 93), 16, 1.0, 5, "none"),       # not a multiple of the window, batches across window rows
    ((157, 93), 16, 0.37, 3, "none"),      # shrunk (box filter) to the model's scale and back
    ((41, 57), 16, 1.7, 8, "none"),        # grown (Lanczos)
    ((203, 40), 16, 0.8, 6, "none"),       # PIL resizes this one vertically first
    ((83, 61), 16, 0.6, 4, "flips"),       # flip TTA: the up-down mirrors in their own pass
    ((9, 150), 16, 1.0, 2, "flips"),       # fewer rows than a window
])
def test_strips_equal_the_whole_scene_bit_for_bit(shape, window, scale, batch, tta):
    photo = _photo(*shape)
    kwargs = dict(scale=scale, overlap=0.25, batch=batch, tta=tta)
    expected = whole_scene(photo, windowed, window, K, **kwargs)
    got = predict_scene(photo, windowed, window, K, **kwargs)
    np.testing.assert_array_equal(got, expected)
    # The threads only overlap the stages: the plain loop gives the same bits.
    np.testing.assert_array_equal(predict_scene(photo, windowed, window, K, overlapped=False, **kwargs), expected)


def test_strips_arrive_in_order_and_small_whatever_the_chunk():
    photo = _photo(203, 40)
    got, rows = [], []

    def sink(a, probs, valid):
        rows.append((a, len(probs)))
        got.append(probs.copy())
    label_strips(ArrayRows(photo, chunk=7), windowed, 16, K, sink, scale=0.8, batch=6)
    starts = [a for a, _ in rows]
    assert starts == sorted(starts) and starts[0] == 0 and sum(n for _, n in rows) == 203
    assert max(n for _, n in rows) <= 64
    np.testing.assert_array_equal(np.concatenate(got), whole_scene(photo, windowed, 16, K, scale=0.8, batch=6))


@pytest.mark.parametrize("scale, batch, heights", [(1.0, 8, (3000, 30000)), (0.5, 32, (4000, 12000)),
                                                   (2.0, 16, (2000, 6000))])
def test_rows_held_do_not_grow_with_the_scene(scale, batch, heights):
    """A few window rows however tall the scene: the window, plus a window row per further row of windows
    one batch spans (windows start at most the window less the overlap apart)."""
    plans = [make_plan(h, 1000, 128, 0.25, scale, batch) for h in heights]
    per_row = len(plans[0].lefts)
    bound = 128 + (-(-batch // per_row)) * 96
    for p in plans:
        assert p.blend_rows <= bound and p.model_rows <= bound
    assert abs(plans[0].blend_rows - plans[1].blend_rows) <= 4 and abs(plans[0].model_rows - plans[1].model_rows) <= 4


def test_the_rings_allocated_are_the_planned_rows():
    """What is allocated, not only what is planned: every ring's rows, for a short and a tall scene."""
    from landaug import blockwise

    sizes = []
    real = blockwise._Ring.__init__

    def spy(self, n, width, channels):
        sizes.append(n)
        real(self, n, width, channels)
    blockwise._Ring.__init__ = spy
    try:
        for h in (60, 600):
            label_strips(ArrayRows(_photo(h, 30)), windowed, 16, K, lambda *a: None, batch=4)
    finally:
        blockwise._Ring.__init__ = real
    assert sizes[:2] == sizes[2:] and max(sizes) < 60


@pytest.mark.parametrize("src, dst, filt", [((97, 31), (40, 13), "box"), ((203, 40), (162, 32), "box"),
                                            ((23, 11), (61, 29), "lanczos"), ((122, 35), (35, 171), "lanczos"),
                                            ((50, 20), (131, 7), "bilinear"), ((64, 9), (64, 30), "lanczos")])
def test_resampling_strip_by_strip_is_pils_whole_resize(src, dst, filt):
    from PIL import Image

    from landaug.resample import FILTERS

    plane = np.random.default_rng(1).random(src, dtype=np.float32)
    whole = np.asarray(Image.fromarray(plane, "F").resize(dst[::-1], FILTERS[filt][0]))
    rs = Resampler(src, dst, filt)
    rows = rs.first_pass(plane[..., None])
    strips = [rs.second_pass(rows, 0, a, min(dst[0], a + 5)) for a in range(0, dst[0], 5)]
    np.testing.assert_array_equal(np.concatenate(strips)[..., 0], whole)
