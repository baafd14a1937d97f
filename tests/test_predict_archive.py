"""cgan.py predict over scenes and archives with an untrained 16 px labeller (no training): a GeoTIFF
scene with gaps labelled strip by strip equals the whole-scene labels, Cloud-Optimized maps, resume after a
stopped run, a failed scene named with a non-zero exit, and the Dask executor on two scenes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from landaug.classes import SPARCS
from landaug.geoio import GeoRef, write_raster

UTM = 'PROJCS["WGS 84 / UTM zone 33N",GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]],' \
      'PRIMEM["Greenwich",0],UNIT["degree",0.0174532925199433]],PROJECTION["Transverse_Mercator"],' \
      'PARAMETER["latitude_of_origin",0],PARAMETER["central_meridian",15],PARAMETER["scale_factor",0.9996],' \
      'PARAMETER["false_easting",500000],PARAMETER["false_northing",0],UNIT["metre",1]]'


def _model(folder, scale=1.0):
    """A model folder as cgan.py train leaves it, with random weights: model.json and best/."""
    import tensorflow as tf

    from landaug.cgan.model import build_labeller

    gen = build_labeller(16, 0.125, "classes", len(SPARCS), bands=3)
    tf.train.Checkpoint(generator=gen).save(str(folder / "best" / "ckpt"))
    (folder / "model.json").write_text(json.dumps({"format": 2, "size": 16, "width": 0.125, "target": "classes",
                                                   "classes": SPARCS.to_json(), "scale": scale, "bands": 3}))
    return folder


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return _model(tmp_path_factory.mktemp("m"), scale=0.6)


def _scene(path, h, w, seed=0, gap=False):
    data = np.random.default_rng(seed).integers(1, 256, (h, w, 3), dtype=np.uint8)
    if gap:
        data[5:17, 9:30] = 0
    georef = GeoRef(UTM, (30.0, 0.0, 400000.0, 0.0, -30.0, 5000000.0), w, h)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_raster(path, data, georef, nodata=0 if gap else None)
    return path


def test_a_scene_with_gaps_is_labelled_as_the_whole_scene_was(model, tmp_path):
    import rasterio

    from landaug.cgan.infer import SceneLabeller, label_scene
    from landaug.cgan.scene import predict_photo
    from landaug.imgio import read_model_photo

    photo = _scene(tmp_path / "s.tif", 83, 71, gap=True)
    labeller = SceneLabeller.load(model, batch=5, tta="flips")
    record = predict_photo(labeller, photo, "s", tmp_path / "out", scale=None, confidence=True)
    expected, conf = label_scene(labeller, read_model_photo(photo, labeller.stats), None)
    with rasterio.open(record["label"]) as src:
        assert (src.crs.to_epsg(), tuple(src.transform)[:6]) == (32633, (30.0, 0.0, 400000.0, 0.0, -30.0, 5000000.0))
        assert src.profile["tiled"] and src.nodata == 255 and src.colormap(1)[1] == tuple(SPARCS.colors[1]) + (255,)
        np.testing.assert_array_equal(src.read(1), expected)
    assert (expected[5:17, 9:30] == 255).all() and (expected != 255).sum() == 83 * 71 - 12 * 21
    with rasterio.open(record["confidence"]) as src:
        got = src.read(1)
        assert np.isnan(src.nodata) and np.isnan(got[5:17, 9:30]).all()
    valid = expected != 255
    np.testing.assert_array_equal(got[valid], conf[valid])
    assert not list((tmp_path / "out").rglob("*.tmp*"))


def test_cog_maps_have_overviews_and_the_cog_layout(model, tmp_path):
    import rasterio

    from landaug.cgan.infer import SceneLabeller
    from landaug.cgan.scene import predict_photo

    photo = _scene(tmp_path / "big.tif", 600, 560)
    record = predict_photo(SceneLabeller.load(model), photo, "big", tmp_path / "out", scale=0.05, confidence=True,
                           cog=True)
    for path in (record["label"], record["confidence"]):
        with rasterio.open(path) as src:
            assert src.profile["tiled"] and src.block_shapes[0] == (256, 256) and src.overviews(1) == [2, 4]
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG" and src.crs.to_epsg() == 32633
    with rasterio.open(record["label"]) as src:
        assert src.colormap(1)[2] == tuple(SPARCS.colors[2]) + (255,)


def _archive(root):
    """Three scenes in two folders, two with the same stem."""
    for i, rel in enumerate(("2020/a/x.tif", "2021/a/x.tif", "2021/b.tif")):
        _scene(root / rel, 40 + 7 * i, 33, seed=i)
    return root


def _predict(model, images, out, *extra):
    from landaug import cgan
    from landaug.errors import cli_main

    return cli_main(cgan.main, ["predict", "--model", str(model), "--images", str(images), "--out", str(out),
                                "--quiet", *extra], prog="cgan.py")


def test_archive_resume_skips_complete_scenes_and_redoes_partial_ones(model, tmp_path, capsys):
    images, out = _archive(tmp_path / "in"), tmp_path / "out"
    assert _predict(model, images, out, "--confidence") == 0
    names = sorted(p.name for p in out.glob("*.tif"))
    assert names == ["2020--a--x.tif", "2021--a--x.tif", "2021--b.tif"]
    summary = json.loads((out / "summary.json").read_text())
    assert [r["status"] for r in summary["records"]] == ["done"] * 3
    assert summary["records"][2]["height"] == 54 and summary["records"][2]["seconds"] >= 0
    # as a run stopped while writing the second scene leaves it: its map half-written under a temporary name
    (out / "2021--a--x.tif").rename(out / ".2021--a--x.tif.tmp123")
    kept = {p: p.stat().st_mtime_ns for p in out.rglob("*.tif") if "2021--a--x" not in p.name}
    assert _predict(model, images, out, "--confidence") == 2
    assert "--resume" in capsys.readouterr().err
    assert _predict(model, images, out, "--confidence", "--resume") == 0
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert (out / "2021--a--x.tif").is_file() and not list(out.rglob("*.tmp*"))
    statuses = [r["status"] for r in json.loads((out / "summary.json").read_text())["records"]]
    assert statuses == ["done earlier", "done", "done earlier"]
    assert _predict(model, images, out, "--resume", "--tta", "flips") == 2
    assert "--tta flips contradicts the maps" in capsys.readouterr().err


def test_a_failed_scene_is_named_while_the_others_finish(model, tmp_path, capsys, monkeypatch):
    from landaug.cgan import archive

    images, out = _archive(tmp_path / "in"), tmp_path / "out"
    real = archive.predict_photo

    def broken(labeller, photo, scene, *args, **kwargs):
        if scene == "2021--a--x":
            raise OSError("read error in block 3")
        return real(labeller, photo, scene, *args, **kwargs)
    monkeypatch.setattr(archive, "predict_photo", broken)
    assert _predict(model, images, out) == 2
    err = capsys.readouterr().err
    assert "1 of 3 scenes failed" in err and "2021/a/x.tif: OSError: read error in block 3" in err
    assert sorted(p.name for p in out.glob("*.tif")) == ["2020--a--x.tif", "2021--b.tif"]
    records = json.loads((out / "summary.json").read_text())["records"]
    assert [r["status"] for r in records] == ["done", "failed", "done"] and "block 3" in records[1]["error"]
    monkeypatch.setattr(archive, "predict_photo", real)
    assert _predict(model, images, out, "--resume") == 0
    assert sorted(p.name for p in out.glob("*.tif")) == ["2020--a--x.tif", "2021--a--x.tif", "2021--b.tif"]


@pytest.mark.slow
def test_dask_labels_an_archive_in_cells(model, tmp_path):
    images, out = tmp_path / "in", tmp_path / "out"
    for i in range(2):
        _scene(images / f"s{i}.tif", 48, 40, seed=i)
    assert _predict(model, images, out, "--executor", "dask", "--workers", "2", "--threads", "1") == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["executor"]["kind"] == "dask" and [r["status"] for r in summary["records"]] == ["done", "done"]
    serial = tmp_path / "serial"
    assert _predict(model, images, serial) == 0
    import rasterio

    for name in ("s0.tif", "s1.tif"):
        with rasterio.open(out / name) as a, rasterio.open(serial / name) as b:
            np.testing.assert_array_equal(a.read(1), b.read(1))
