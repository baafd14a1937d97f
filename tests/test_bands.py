"""Per-band normalisation: percentiles of the training pixels, the [-1, 1] mapping and its inverse."""

from __future__ import annotations

import json

import numpy as np
import pytest

from landaug.bands import BandStats, denormalise, normalise, parse_bands, to_display
from landaug.errors import UserError


def _stats(low, high, dtype="uint16"):
    n = len(low)
    return BandStats(list(range(1, n + 1)), [f"b{i}" for i in range(n)], dtype, list(low), list(high))


def test_parse_bands():
    assert parse_bands("4,3,2") == [4, 3, 2]
    assert parse_bands(" 10 , 1 ") == [10, 1]
    for bad, text in [("4;3", "separated by commas"), ("0,1", "start at 1"), ("2,2", "band 2 is named twice"),
                      ("", "separated by commas")]:
        with pytest.raises(UserError, match=text):
            parse_bands(bad, "--rgb-bands")
    with pytest.raises(UserError, match="--rgb-bands '4,3': expected 3 band numbers"):
        parse_bands("4,3", "--rgb-bands", count=3)


def test_percentiles_equal_numpy_over_valid_pixels(rng):
    a = rng.integers(0, 5000, size=(6, 7, 2), dtype=np.uint16)
    b = rng.integers(0, 5000, size=(5, 4, 2), dtype=np.uint16)
    va = rng.random((6, 7)) > 0.3
    vb = np.ones((5, 4), bool)
    stats = BandStats.compute([(a, va), (b, vb)], [4, 2], ["nir", "blue"])
    pixels = np.concatenate([a[va], b[vb]])
    np.testing.assert_array_equal(stats.low, np.percentile(pixels, 2, axis=0))
    np.testing.assert_array_equal(stats.high, np.percentile(pixels, 98, axis=0))
    assert stats.bands == [4, 2] and stats.dtype == "uint16" and stats.rgb == [0, 0, 0]


def test_sample_is_seeded_and_close_to_exact(rng):
    scenes = [(rng.integers(0, 10001, size=(50, 50, 1), dtype=np.uint16), np.ones((50, 50), bool))
              for _ in range(4)]
    exact = np.percentile(np.concatenate([d.reshape(-1) for d, _ in scenes]), [2, 98])
    s1 = BandStats.compute(scenes, [1], ["x"], max_samples=3000, seed=5)
    s2 = BandStats.compute(iter(scenes), [1], ["x"], max_samples=3000, seed=5)
    assert (s1.low, s1.high) == (s2.low, s2.high)
    # 3000 of 10000 uniform values: the 2nd/98th percentiles are within ~1% of the range.
    assert abs(s1.low[0] - exact[0]) < 150 and abs(s1.high[0] - exact[1]) < 150
    assert (s1.low, s1.high) != (exact[0], exact[1])


def test_compute_errors_and_constant_band():
    with pytest.raises(UserError, match="no valid pixels"):
        BandStats.compute([(np.ones((3, 3, 1), np.uint16), np.zeros((3, 3), bool))], [1], ["x"])
    with pytest.raises(UserError, match="mix data types uint16 and int16"):
        BandStats.compute([(np.ones((3, 3, 1), np.uint16), np.ones((3, 3), bool)),
                           (np.ones((3, 3, 1), np.int16), np.ones((3, 3), bool))], [1], ["x"])
    s = BandStats.compute([(np.full((3, 3, 1), 7, np.uint16), np.ones((3, 3), bool))], [1], ["x"])
    assert (s.low, s.high) == ([7.0], [8.0])
    assert normalise(np.full((2, 2, 1), 7, np.uint16), s).max() == -1.0


def test_normalise_hand_values():
    s = _stats([100, 0], [300, 1000])
    data = np.array([[[100, 0], [200, 250], [300, 1000], [50, 2000]]], np.uint16)
    x = normalise(data, s)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x[0], [[-1, -1], [0, -0.5], [1, 1], [-1, 1]], atol=1e-7)


def test_denormalise_round_trip_within_one_dn(rng):
    s = _stats([120.5, 3000], [9000, 12000.25])
    data = np.stack([rng.integers(121, 9000, 500), rng.integers(3000, 12000, 500)], -1).astype(np.uint16)
    back = denormalise(normalise(data, s), s)
    assert back.dtype == np.uint16
    assert np.abs(back.astype(int) - data.astype(int)).max() <= 1
    assert denormalise(np.array([[-1.0, 1.0]]), s).tolist() == [[120, 12000]]
    f = _stats([-1.0], [3.0], dtype="float32")
    np.testing.assert_allclose(denormalise(np.array([[0.5]]), f), [[2.0]])


def test_identity_uint8_is_today_scaling():
    s = BandStats.identity_uint8(3)
    x = np.arange(256, dtype=np.uint8).repeat(3).reshape(16, 16, 3)
    np.testing.assert_array_equal(normalise(x, s), x.astype(np.float32) / 127.5 - 1)
    np.testing.assert_array_equal(denormalise(normalise(x, s), s), x)
    np.testing.assert_array_equal(to_display(x, s), x)


def test_to_display_uses_rgb_positions():
    s = _stats([0, 0, 0, 0], [100, 200, 300, 400]).with_rgb([4, 3, 2])
    assert s.rgb == [3, 2, 1]
    data = np.array([[[0, 200, 150, 400]]], np.uint16)
    assert to_display(data, s).tolist() == [[[255, 128, 255]]]
    grey = _stats([0], [10]).with_rgb([1])
    assert to_display(np.array([[[5]]], np.uint16), grey).tolist() == [[[128, 128, 128]]]
    assert to_display(np.array([[[1.0]]], np.float32), grey, normalised=True).tolist() == [[[255, 255, 255]]]
    with pytest.raises(UserError, match="band 9 is not among"):
        s.with_rgb([9, 3, 2])


def test_save_load_round_trip_and_malformed(tmp_path):
    s = _stats([1.5, 2], [100, 200.25]).with_rgb([2])
    path = tmp_path / "bands.json"
    s.save(path)
    assert BandStats.load(path) == s
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError) as e:
        BandStats.load(bad)
    assert e.value.where == str(bad)
    d = s.to_json()
    d["high"] = [1.0, 300.0]
    bad.write_text(json.dumps(d))
    with pytest.raises(UserError, match="every high must exceed its low"):
        BandStats.load(bad)
    bad.write_text(json.dumps({"bands": [1]}))
    with pytest.raises(UserError, match="KeyError"):
        BandStats.load(bad)
    with pytest.raises(UserError, match="not found"):
        BandStats.load(tmp_path / "none.json")
