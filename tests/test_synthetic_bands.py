"""Synthetic scenes: the RGB output is unchanged, and multi-band scenes have plausible spectra and the
same labels as the RGB scene of their seed."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from landaug.errors import UserError
from landaug.synthetic import (BAND_SETS, CLOUD, FLOODED, LAND, SHADOW, SNOW, WATER, make_scene,
                               make_scenes)

# sha256 of photo bytes + label bytes, computed before the multi-band mode existed.
RGB_CHECKSUMS = {
    (0, 32): "929366f3df16a72ba9bc0a977d542a778e01aee753de6c03ceb809c8b4a109a5",
    (1, 48): "0c4d337d39b89ea73ec7ba5234e2fb7a2163ce6bb272262bcfd052854342a9b5",
    (7, 64): "3a41a20d715350474e3b33fb91ac9b53bca47aa1dbff4a1df801bb1ccb8101a5",
    (123, 40): "27e996cf3ffc27b56b159e4f6a8518737460cd900b4d3fd9e35b8a6971c29a3b",
}
SCENES_CHECKSUM = "9a567971b42b4be786e537364f3534796163045a5dada6c774dca7f5440398e4"  # make_scenes(3, 32, 5)


@pytest.mark.parametrize("seed, size", sorted(RGB_CHECKSUMS))
def test_rgb_scene_unchanged(seed, size):
    photo, label = make_scene(seed, size)
    assert photo.dtype == np.uint8 and photo.shape == (size, size, 3)
    assert hashlib.sha256(photo.tobytes() + label.tobytes()).hexdigest() == RGB_CHECKSUMS[seed, size]
    same, _ = make_scene(seed, size, bands="false_color")
    np.testing.assert_array_equal(same, photo)


def test_rgb_scenes_unchanged():
    h = hashlib.sha256()
    for name, photo, label in make_scenes(3, 32, 5):
        h.update(name.encode() + photo.tobytes() + label.tobytes())
    assert h.hexdigest() == SCENES_CHECKSUM


@pytest.mark.parametrize("bands, n", [(4, 4), (10, 10), ("landsat8", 10), ("bgrn", 4)])
def test_multiband_same_labels_as_rgb(bands, n):
    for seed in (0, 7):
        _, rgb_label = make_scene(seed, 32)
        photo, label = make_scene(seed, 32, bands=bands)
        assert photo.dtype == np.uint16 and photo.shape == (32, 32, n)
        np.testing.assert_array_equal(label, rgb_label)
    assert len(BAND_SETS["landsat8"]) == 10 and BAND_SETS["bgrn"] == ("blue", "green", "red", "nir")


def test_four_bands_are_the_matching_landsat8_bands():
    ten, _ = make_scene(3, 32, bands=10)
    four, _ = make_scene(3, 32, bands=4)
    idx = [BAND_SETS["landsat8"].index(b) for b in BAND_SETS["bgrn"]]
    np.testing.assert_array_equal(four, ten[..., idx])


def test_make_scenes_bands_and_names():
    rgb = list(make_scenes(2, 24, 9))
    ten = list(make_scenes(2, 24, 9, bands=10))
    assert [n for n, _, _ in ten] == [n for n, _, _ in rgb]
    for (_, _, a), (_, p, b) in zip(rgb, ten):
        np.testing.assert_array_equal(a, b)
        assert p.shape == (24, 24, 10)


def test_unknown_band_set():
    with pytest.raises(UserError, match="got 5"):
        make_scene(0, 16, bands=5)
    with pytest.raises(UserError, match="'sentinel2'"):
        make_scene(0, 16, bands="sentinel2")


@pytest.fixture(scope="module")
def pixels():
    """Per class, the 10-band pixels (as float) of a dozen 48 px scenes."""
    per_class: dict[int, list[np.ndarray]] = {}
    for _, photo, label in make_scenes(12, 48, 3, bands=10):
        for c in np.unique(label):
            per_class.setdefault(int(c), []).append(photo[label == c].astype(np.float64))
    return {c: np.concatenate(v) for c, v in per_class.items()}


def band(name: str) -> int:
    return BAND_SETS["landsat8"].index(name)


def test_spectra_ordered(pixels):
    for c in (WATER, SNOW, LAND, CLOUD, SHADOW, FLOODED):
        assert len(pixels.get(c, [])) > 50, f"class {c} missing from the sample scenes"
    mean = {c: v.mean(axis=0) for c, v in pixels.items()}
    med = {c: np.median(v, axis=0) for c, v in pixels.items()}
    nir, red, green, swir1, swir2 = (band(b) for b in ("nir", "red", "green", "swir1", "swir2"))
    cirrus, tir1, tir2 = band("cirrus"), band("tir1"), band("tir2")
    # Water is dark in NIR and SWIR, land bright in NIR and greener than red (NDVI > 0).
    assert mean[WATER][nir] < mean[LAND][nir] / 5 and mean[WATER][swir1] < mean[LAND][swir1] / 5
    assert mean[WATER][nir] < mean[WATER][green]
    assert mean[LAND][nir] > 2 * mean[LAND][red]
    # Snow: bright in the visible, dark in SWIR.
    assert mean[SNOW][swir1] < mean[SNOW][green] / 4 and mean[SNOW][green] > 5000
    # Clouds: bright everywhere, bright in cirrus, cold.
    assert (mean[CLOUD][:7] > 2500).all() and mean[CLOUD][cirrus] > 10 * mean[LAND][cirrus]
    assert mean[CLOUD][tir1] < mean[LAND][tir1] - 2000 and mean[CLOUD][tir2] < mean[LAND][tir2] - 2000
    assert 24000 < mean[CLOUD][tir1] < 26000 and 29000 < mean[LAND][tir1] < 31500  # kelvin x 100
    # Cloud shadow (median: soft cloud edges spill onto shadow pixels) darker in every reflective band.
    assert (med[SHADOW][:7] < med[LAND][:7]).all()
    # Flooded: between water and land in NIR.
    assert mean[WATER][nir] < mean[FLOODED][nir] < mean[LAND][nir]
    assert mean[LAND][swir2] < mean[LAND][swir1]
