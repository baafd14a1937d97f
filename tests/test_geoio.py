"""GeoTIFF scenes in and label GeoTIFFs out: data, validity, georeference, band selection, errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
from rasterio.crs import CRS  # noqa: E402
from rasterio.transform import Affine  # noqa: E402

from landaug import geoio  # noqa: E402
from landaug.classes import SPARCS  # noqa: E402
from landaug.errors import UserError  # noqa: E402

UTM = CRS.from_epsg(32633)
TRANSFORM = Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)  # 30 m pixels, north up
NODATA = 0


def _write(path: Path, data: np.ndarray, crs=UTM, transform=TRANSFORM, nodata=NODATA, names=None) -> Path:
    """Writes with rasterio directly, so the reader is tested against files it did not write."""
    n, h, w = data.shape
    kw = {"crs": crs, "transform": transform} if crs is not None else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        dst = rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=n, dtype=data.dtype.name,
                            nodata=nodata, **kw)
    with dst:
        dst.write(data)
        for i, name in enumerate(names or []):
            dst.set_band_description(i + 1, name)
    return path


@pytest.fixture
def scene(tmp_path, rng):
    """A 10-band uint16 scene (N, H, W) with nodata in band 3 at one pixel and in band 7 at another."""
    data = rng.integers(1, 20000, size=(10, 12, 16), dtype=np.uint16)
    data[2, 1, 2] = NODATA
    data[6, 5, 9] = NODATA
    return _write(tmp_path / "scene.tif", data), data


def test_read_raster_data_valid_georef(scene):
    path, data = scene
    r = geoio.read_raster(path)
    assert r.data.shape == (12, 16, 10) and r.dtype == np.uint16
    np.testing.assert_array_equal(r.data, np.moveaxis(data, 0, -1))
    expected_valid = np.ones((12, 16), bool)
    expected_valid[1, 2] = expected_valid[5, 9] = False
    np.testing.assert_array_equal(r.valid, expected_valid)
    assert CRS.from_wkt(r.georef.crs) == UTM
    assert r.georef.transform == (30.0, 0.0, 500000.0, 0.0, -30.0, 4200000.0)
    assert (r.georef.width, r.georef.height) == (16, 12) and r.georef.is_georeferenced
    assert r.band_names == [f"band{i}" for i in range(1, 11)]


def test_band_selection_order_and_validity(scene):
    path, data = scene
    r = geoio.read_raster(path, bands=[7, 1, 4])
    np.testing.assert_array_equal(r.data, np.moveaxis(data[[6, 0, 3]], 0, -1))
    assert r.band_names == ["band7", "band1", "band4"]
    # Band 3's nodata pixel is not among the selected bands, so only band 7's pixel is invalid.
    assert r.valid.sum() == 12 * 16 - 1 and not r.valid[5, 9] and r.valid[1, 2]


def test_four_band_names_from_descriptions(tmp_path, rng):
    data = rng.integers(0, 3000, size=(4, 8, 8), dtype=np.uint16)
    path = _write(tmp_path / "bgrn.tif", data, names=["blue", "green", "red", "nir"], nodata=None)
    r = geoio.read_raster(path, bands=[4, 3, 2])
    assert r.band_names == ["nir", "red", "green"] and r.valid.all()
    assert geoio.raster_size(path) == (8, 8) and geoio.raster_count(path) == 4


@pytest.mark.parametrize("bands, text", [([11], "has 10 bands; --bands 11 does not exist"),
                                         ([0], "--bands 0 does not exist"),
                                         ([2, 5, 2], "repeats band 2")])
def test_bad_band_numbers(scene, bands, text):
    path, _ = scene
    with pytest.raises(UserError) as e:
        geoio.read_raster(path, bands=bands)
    assert e.value.where == str(path) and text in e.value.message


@pytest.mark.parametrize("damage", ["truncate", "junk", "missing"])
def test_corrupt_or_missing_file_is_one_line(scene, tmp_path, damage):
    path, _ = scene
    bad = tmp_path / "bad.tif"
    if damage == "truncate":
        raw = path.read_bytes()
        bad.write_bytes(raw[: len(raw) // 2])
    elif damage == "junk":
        bad.write_bytes(b"this is not a tiff")
    with pytest.raises(UserError) as e:
        geoio.read_raster(bad)
    assert e.value.where == str(bad) and "\n" not in e.value.line()


def test_dataset_mask_makes_pixels_invalid(tmp_path):
    path = tmp_path / "masked.tif"
    data = np.full((2, 6, 6), 500, np.uint16)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with rasterio.open(path, "w", driver="GTiff", width=6, height=6, count=2, dtype="uint16",
                           crs=UTM, transform=TRANSFORM) as dst:
            dst.write(data)
            mask = np.full((6, 6), 255, np.uint8)
            mask[0, :3] = 0
            dst.write_mask(mask)
    valid = geoio.read_raster(path).valid
    assert valid.sum() == 33 and not valid[0, :3].any()


def test_georef_of_header_crop_resize(scene, tmp_path):
    path, _ = scene
    g = geoio.GeoRef.of(path)
    assert (g.width, g.height) == (16, 12)
    tile = g.crop(4, 2, 8, 8)
    assert tile.transform == (30.0, 0.0, 500000.0 + 4 * 30, 0.0, -30.0, 4200000.0 - 2 * 30)
    half = g.resized(8, 6)
    assert half.transform == (60.0, 0.0, 500000.0, 0.0, -60.0, 4200000.0) and half.crs == g.crs
    assert geoio.GeoRef.from_json(g.to_json()) == g
    plain = _write(tmp_path / "plain.tif", np.ones((1, 4, 5), np.uint8), crs=None, nodata=None)
    p = geoio.GeoRef.of(plain)
    assert not p.is_georeferenced and (p.width, p.height) == (5, 4)


def test_label_geotiff_round_trip(tmp_path, rng):
    label = rng.integers(0, 7, size=(10, 14)).astype(np.uint8)
    label[3, 3] = 255
    g = geoio.GeoRef(UTM.to_wkt(), tuple(TRANSFORM)[:6], 14, 10)
    out = tmp_path / "sub" / "pred.tif"
    colors = SPARCS.colors.tolist()
    geoio.write_label_geotiff(out, label, g, colors)
    assert sorted(p.name for p in out.parent.iterdir()) == ["pred.tif"]
    with rasterio.open(out) as src:
        assert src.count == 1 and src.dtypes[0] == "uint8" and src.nodata == 255
        assert (src.width, src.height) == (14, 10)
        assert src.crs == UTM and src.transform == TRANSFORM
        assert src.compression.value.lower() == "deflate"
        cmap = src.colormap(1)
        np.testing.assert_array_equal(src.read(1), label)
    for i, c in enumerate(colors):
        assert cmap[i] == (*c, 255)
    # GDAL reports the nodata entry as transparent; its colour is the ignore magenta.
    assert cmap[255][:3] == (255, 0, 255)
    back, valid = geoio.read_mask_raster(out)
    np.testing.assert_array_equal(back, label)
    np.testing.assert_array_equal(valid, label != 255)


def test_label_geotiff_size_must_match_georef(tmp_path):
    g = geoio.GeoRef(None, (30.0, 0.0, 0.0, 0.0, -30.0, 0.0), 8, 8)
    with pytest.raises(UserError, match="7x8 px but its georeference is for 8x8"):
        geoio.write_label_geotiff(tmp_path / "x.tif", np.zeros((8, 7), np.uint8), g, [(0, 0, 0)])
    assert not (tmp_path / "x.tif").exists()


def test_write_raster_round_trip(tmp_path, rng):
    data = rng.normal(size=(5, 6, 3)).astype(np.float32)
    data[0, 0] = -9999.0
    g = geoio.GeoRef(UTM.to_wkt(), tuple(TRANSFORM)[:6], 6, 5)
    out = tmp_path / "bands.tif"
    geoio.write_raster(out, data, g, nodata=-9999.0, band_names=["a", "b", "c"])
    r = geoio.read_raster(out)
    assert r.dtype == np.float32 and r.band_names == ["a", "b", "c"]
    np.testing.assert_array_equal(r.data, data)
    assert r.valid.sum() == 29 and not r.valid[0, 0]
    assert CRS.from_wkt(r.georef.crs) == UTM and r.georef.transform == g.transform
    plain = tmp_path / "plain.tif"
    geoio.write_raster(plain, np.arange(12, dtype=np.int16).reshape(3, 4))
    r2 = geoio.read_raster(plain)
    assert r2.data.shape == (3, 4, 1) and r2.dtype == np.int16 and not r2.georef.is_georeferenced


def test_read_mask_raster_errors_and_nodata(tmp_path):
    two = _write(tmp_path / "two.tif", np.zeros((2, 4, 4), np.uint8), nodata=None)
    with pytest.raises(UserError, match="needs 1 band, this file has 2"):
        geoio.read_mask_raster(two)
    big = np.zeros((1, 4, 4), np.uint16)
    big[0, 1, 1] = 300
    with pytest.raises(UserError, match=r"0..254, found \[300\]"):
        geoio.read_mask_raster(_write(tmp_path / "big.tif", big, nodata=None))
    label, valid = geoio.read_mask_raster(_write(tmp_path / "nd.tif", big, nodata=300))
    assert label.dtype == np.uint8 and label[1, 1] == 255 and valid.sum() == 15
    with pytest.raises(UserError, match="integer class indices"):
        geoio.read_mask_raster(_write(tmp_path / "f.tif", np.zeros((1, 4, 4), np.float32), nodata=None))


def test_is_raster():
    assert geoio.is_raster("a/B.TIF") and geoio.is_raster("x.tiff")
    assert not geoio.is_raster("x.png") and not geoio.is_raster("x.jpg")
