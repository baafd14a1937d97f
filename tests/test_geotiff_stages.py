"""Multi-band GeoTIFFs through the stages: stage 1 keeps bands, georeference and nodata and learns the band
normalisation from the training scenes; pix2pix trains on the bands and predicts georeferenced label
GeoTIFFs; 8-bit PNG runs give what they always gave."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from landaug import cgan
from landaug.bands import BandStats, normalise_tf
from landaug.classes import IGNORE_INDEX, SPARCS
from landaug.errors import UserError
from landaug.evaluate import evaluate_sets
from landaug.imgio import write_image, write_label
from landaug.prepare import PrepareConfig, run
from landaug.synthetic import make_scene, make_scenes

ROOT = Path(__file__).resolve().parents[1]
EPSG = 32632
PIXEL = 30.0
SIZE = 48
N_SCENES = 6
TEST_SCENE = "scene3"


def _write_tif(path: Path, data: np.ndarray, nodata=None, transform=None, crs=None) -> None:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    data = data[..., None] if data.ndim == 2 else data
    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=data.shape[2],
                   dtype=data.dtype.name, nodata=nodata, transform=transform, crs=crs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **{k: v for k, v in profile.items() if v is not None}) as dst:
            dst.write(np.moveaxis(data, -1, 0))


def _gap(i: int) -> tuple[slice, slice]:
    """The block of scene i without data: a different corner and size in every scene."""
    h = 6 + 2 * i
    return (slice(0, h), slice(0, 10)) if i % 2 == 0 else (slice(SIZE - h, SIZE), slice(SIZE - 12, SIZE))


@pytest.fixture(scope="module")
def geo4(tmp_path_factory) -> Path:
    """6 scenes of 4 uint16 bands (blue, green, red, NIR) in UTM 32N, nodata 0 in a block of each, with
    single-band GeoTIFF masks; ``TEST_SCENE`` is the test scene."""
    from rasterio.crs import CRS
    from rasterio.transform import Affine

    root = tmp_path_factory.mktemp("geo4")
    (root / "photos").mkdir()
    (root / "masks").mkdir()
    for i in range(N_SCENES):
        photo, label = make_scene(100 + i, SIZE, bands=4)
        photo = np.maximum(photo, 1)
        photo[_gap(i)] = 0
        where = Affine(PIXEL, 0.0, 400000.0 + 5000 * i, 0.0, -PIXEL, 5200000.0)
        _write_tif(root / "photos" / f"scene{i}.tif", photo, 0, where, CRS.from_epsg(EPSG))
        _write_tif(root / "masks" / f"scene{i}.tif", label, None, where, CRS.from_epsg(EPSG))
    (root / "test.txt").write_text(TEST_SCENE + "\n")
    return root


@pytest.fixture(scope="module")
def prepared(geo4, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared4")
    run(PrepareConfig(images=geo4 / "photos", masks=geo4 / "masks", test_list=geo4 / "test.txt", bands="4,3,2",
                      rgb_bands="2,3,4", size=32, mode="tile", out=out, progress=False))
    return out


@pytest.fixture(scope="module")
def model(prepared, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model4") / "m"
    cgan.train(cgan.TrainConfig(data=prepared / "images_CGAN", out=out, steps=2, batch=2, width=0.125, size=32,
                                val_fraction=0.2, sample_every=1, progress=False, verbose=False))
    return out


def _read(path: Path):
    """(data (H, W, N), crs, transform, nodata, band descriptions) of a GeoTIFF, read with rasterio."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return np.moveaxis(src.read(), 0, -1), src.crs, src.transform, src.nodata, list(src.descriptions)


# --- stage 1 ----------------------------------------------------------------------------------------

def test_stage1_keeps_bands_georeference_and_marks_nodata_ignored(geo4, prepared):
    cg = prepared / "images_CGAN"
    data, crs, transform, nodata, names = _read(cg / "test" / "a" / f"{TEST_SCENE}.tif")
    original, o_crs, o_transform, _, _ = _read(geo4 / "photos" / f"{TEST_SCENE}.tif")
    np.testing.assert_array_equal(data, original[..., [3, 2, 1]])
    assert (crs.to_epsg(), transform, nodata, names) == (EPSG, o_transform, 0, ["band4", "band3", "band2"])
    truth = np.asarray(Image.open(cg / "test" / "b" / f"{TEST_SCENE}.png"))
    assert (truth[_gap(3)] == IGNORE_INDEX).all() and (truth == IGNORE_INDEX).sum() == truth[_gap(3)].size
    # A 48 px scene in 32 px tiles: offsets 0 and 16; each tile carries its own corner on the ground.
    tile, _, t_transform, _, _ = _read(cg / "train" / "a" / "scene1__t1_1.tif")
    source, _, s_transform, _, _ = _read(geo4 / "photos" / "scene1.tif")
    np.testing.assert_array_equal(tile, source[16:48, 16:48][..., [3, 2, 1]])
    assert (t_transform.c, t_transform.f) == (s_transform.c + 16 * PIXEL, s_transform.f - 16 * PIXEL)
    label = np.asarray(Image.open(cg / "train" / "b" / "scene1__t1_1.png"))
    np.testing.assert_array_equal(label == IGNORE_INDEX, source[16:48, 16:48, 0] == 0)
    assert sorted(p.suffix for p in (prepared / "images").iterdir()) == [".json"] + [".tif"] * 20
    assert (prepared / "images" / "bands.json").read_text() == (cg / "bands.json").read_text()


def test_band_normalisation_is_the_percentiles_of_the_training_pixels(geo4, prepared):
    pixels = []
    for i in range(N_SCENES):
        if f"scene{i}" == TEST_SCENE:
            continue
        data = _read(geo4 / "photos" / f"scene{i}.tif")[0][..., [3, 2, 1]]
        pixels.append(data[(data != 0).all(-1)])
    pixels = np.concatenate(pixels)
    stats = json.loads((prepared / "images_CGAN" / "bands.json").read_text())
    assert stats["bands"] == [4, 3, 2] and stats["dtype"] == "uint16" and stats["rgb"] == [2, 1, 0]
    np.testing.assert_array_equal(stats["low"], np.percentile(pixels, 2, axis=0))
    np.testing.assert_array_equal(stats["high"], np.percentile(pixels, 98, axis=0))
    # the test scene's pixels would move them
    everything = np.concatenate([pixels, _read(geo4 / "photos" / f"{TEST_SCENE}.tif")[0][..., [3, 2, 1]].reshape(-1, 3)])
    assert not np.array_equal(stats["high"], np.percentile(everything, 98, axis=0))


# --- pix2pix: train, predict, evaluate -----------------------------------------------------------------

def test_predict_writes_label_geotiffs_on_the_input_grid(geo4, prepared, model, tmp_path):
    desc = json.loads((model / "model.json").read_text())
    assert desc["bands"] == 3 and desc["band_stats"] == json.loads((prepared / "images_CGAN/bands.json").read_text())
    assert (model / "samples" / "step_0000002.png").is_file()
    # New scenes with all 4 bands: the model takes its bands 4, 3, 2 out of them.
    written = cgan.predict(model, geo4 / "photos", tmp_path / "pred", progress=False)
    assert [p.name for p in written] == [f"scene{i}.tif" for i in range(N_SCENES)]
    import rasterio

    for i, path in enumerate(written):
        with rasterio.open(geo4 / "photos" / f"scene{i}.tif") as src, rasterio.open(path) as pred:
            assert (pred.count, pred.dtypes[0], pred.nodata) == (1, "uint8", IGNORE_INDEX)
            assert (pred.crs, pred.transform, pred.width, pred.height) == (src.crs, src.transform, src.width,
                                                                          src.height)
            table = pred.colormap(1)
            assert [table[k][:3] for k in range(len(SPARCS))] == [tuple(c) for c in SPARCS.colors.tolist()]
            lab = pred.read(1)
        gap = np.zeros(lab.shape, bool)
        gap[_gap(i)] = True
        assert (lab[gap] == IGNORE_INDEX).all() and (lab[~gap] < len(SPARCS)).all()
    # The stage-1 copy of the test scene (its bands already picked, by name) gives the same prediction.
    again = cgan.predict(model, prepared / "images_CGAN" / "test" / "a", tmp_path / "pred_test", progress=False)
    np.testing.assert_array_equal(_read(again[0])[0], _read(tmp_path / "pred" / f"{TEST_SCENE}.tif")[0])
    # GeoTIFF masks and predictions are scored alike; pixels without data are left out of every metric.
    report = evaluate_sets(geo4 / "masks", {"m": [tmp_path / "pred"]}, SPARCS, n_resamples=0)
    gap_pixels = sum(np.zeros((SIZE, SIZE))[_gap(i)].size for i in range(N_SCENES))
    assert report["sets"]["m"]["n_ignored_pixels"] == gap_pixels


def test_predict_confidence_is_a_float_geotiff_on_the_photo_grid(geo4, model, tmp_path):
    cgan.predict(model, geo4 / "photos", tmp_path / "pred", progress=False, confidence=True)
    conf, crs, transform, nodata, names = _read(tmp_path / "pred" / "confidence" / "scene2_confidence.tif")
    _, o_crs, o_transform, _, _ = _read(geo4 / "photos" / "scene2.tif")
    assert conf.dtype == np.float32 and conf.shape == (SIZE, SIZE, 1) and names == ["confidence"]
    assert (crs, transform) == (o_crs, o_transform) and np.isnan(nodata)
    gap = np.zeros((SIZE, SIZE), bool)
    gap[_gap(2)] = True
    assert np.isnan(conf[gap]).all() and (conf[~gap] > 0).all() and (conf[~gap] <= 1).all()


def test_predict_refuses_a_photo_without_the_model_bands(model, tmp_path):
    (tmp_path / "few").mkdir()
    _write_tif(tmp_path / "few" / "x.tif", np.ones((32, 32, 2), np.uint16))
    with pytest.raises(UserError, match=r"has 2 bands .*the model takes bands \[4, 3, 2\]"):
        cgan.predict(model, tmp_path / "few", tmp_path / "out", progress=False)
    (tmp_path / "float").mkdir()
    _write_tif(tmp_path / "float" / "x.tif", np.ones((32, 32, 4), np.float32))
    with pytest.raises(UserError, match="holds float32 bands but the model's normalisation"):
        cgan.predict(model, tmp_path / "float", tmp_path / "out", progress=False)


# --- generators make the training bands -----------------------------------------------------------------

def test_generators_make_photos_of_the_training_bands(prepared, tmp_path):
    from landaug import gan, synth

    stats = BandStats.load(prepared / "images_CGAN" / "bands.json")
    small = dict(steps=1, batch=2, progress=False, checkpoint_every=0, sample_every=1)
    gan.train(gan.TrainConfig(with_labels=prepared / "images_CGAN" / "train", out=tmp_path / "g", width=8,
                              latent_dim=8, score_every=0, **small))
    assert BandStats.load(tmp_path / "g" / "bands.json") == stats
    written = gan.generate(gan.GenerateConfig(model=tmp_path / "g", n=2, out=tmp_path / "gen", progress=False))
    synth.train(synth.TrainConfig(data=prepared / "images_CGAN", out=tmp_path / "s", width=0.125, **small))
    written += synth.generate(synth.GenerateConfig(model=tmp_path / "s", out=tmp_path / "sg", n_layouts=1,
                                                   per_layout=1, progress=False))
    for path in written:
        data, _, _, _, names = _read(path)
        assert path.suffix == ".tif" and data.shape == (32, 32, 3) and data.dtype == np.uint16
        assert names == stats.names
    # the sample grids show the --rgb-bands composite: 3 colour channels whatever the bands
    for grid in (tmp_path / "g/samples/samples_000001.png", tmp_path / "s/samples/samples_000001.png"):
        assert Image.open(grid).mode == "RGB"


# --- SPARCS' own 10-band files -----------------------------------------------------------------------

def test_sparcs_data_tif_is_read_with_bands(tmp_path):
    sparcs = tmp_path / "sparcs"
    sparcs.mkdir()
    scenes = {}
    for i, (name, data, label) in enumerate(make_scenes(3, 40, seed=4, bands=10)):
        stem = f"LC8{i}_0{i}"
        write_image(sparcs / f"{stem}_photo.png", make_scene(i, 40)[0])
        write_label(sparcs / f"{stem}_mask.png", label, SPARCS)
        _write_tif(sparcs / f"{stem}_data.tif", data)
        scenes[stem] = data
    (tmp_path / "test.txt").write_text("LC82_02\n")
    run(PrepareConfig(sparcs=sparcs, test_list=tmp_path / "test.txt", bands="5,4,3", size=32, mode="tile",
                      out=tmp_path / "out", progress=False))
    tile, _, _, _, names = _read(tmp_path / "out/images_CGAN/train/a/LC80_00__t1_0.tif")
    np.testing.assert_array_equal(tile, scenes["LC80_00"][8:40, 0:32][..., [4, 3, 2]])
    assert names == ["nir", "red", "green"]
    stats = json.loads((tmp_path / "out/images_CGAN/bands.json").read_text())
    assert stats["names"] == ["nir", "red", "green"] and stats["dtype"] == "uint16"
    run(PrepareConfig(sparcs=sparcs, test_list=tmp_path / "test.txt", bands="all", size=32, out=tmp_path / "all",
                      progress=False))
    assert _read(tmp_path / "all/images_CGAN/test/a/LC82_02.tif")[0].shape == (40, 40, 10)
    (sparcs / "LC81_01_data.tif").unlink()
    with pytest.raises(UserError, match="LC81_01_data.tif: not found: --bands reads"):
        run(PrepareConfig(sparcs=sparcs, bands="all", size=32, out=tmp_path / "none", progress=False))
    assert not (tmp_path / "none").exists()


# --- 8-bit PNG runs are unchanged ----------------------------------------------------------------------

# sha256 over (relative path, mode, pixels) of every PNG stage 1 wrote, computed before stage 1 knew bands.
PNG_RUNS = {
    "r": "d880adcc0c4f44a215e957d8742ec3dcf0d0c48705b312b65b294186dfccb50d",
    "t": "a5405666da5045e07d8ee4d9cdcd73b9cc527cc3cdcb35be841c22944741c34a",
    "p": "3ab355be4efbeab1f57f5f5304b84c6494b54aac9df543c055b51e3ae429fe38",
    "q": "f981ededcc56325b8cda7667078515e7942339775d9ea5f41b86717e7fb5929c",
}


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.png")):
        im = Image.open(p)
        h.update(str(p.relative_to(root)).encode() + im.mode.encode() + np.asarray(im).tobytes())
    return h.hexdigest()


def test_png_runs_give_the_outputs_they_always_gave(tmp_path):
    run(PrepareConfig(demo=6, size=32, demo_size=48, out=tmp_path / "r", seed=2, progress=False))
    run(PrepareConfig(demo=6, size=16, demo_size=40, mode="tile", out=tmp_path / "t", seed=3, progress=False))
    for name, photo, label in make_scenes(5, 40, 9):
        write_image(tmp_path / "in" / "photos" / f"{name}.png", photo[:, :36])
        write_label(tmp_path / "in" / "masks" / f"{name}.png", label[:, :36], SPARCS)
    pairs = dict(images=tmp_path / "in" / "photos", masks=tmp_path / "in" / "masks", seed=1, progress=False)
    run(PrepareConfig(size=32, out=tmp_path / "p", **pairs))
    run(PrepareConfig(size=16, mode="tile", out=tmp_path / "q", **pairs))
    assert {k: _digest(tmp_path / k) for k in PNG_RUNS} == PNG_RUNS
    for k in PNG_RUNS:
        assert not list((tmp_path / k).rglob("*.tif"))
        for d in ("images", "images_CGAN"):
            assert json.loads((tmp_path / k / d / "bands.json").read_text()) == BandStats.identity_uint8(3).to_json()


def test_eight_bit_normalisation_is_x_over_127_5_minus_1_bit_for_bit():
    import tensorflow as tf

    from landaug.cgan.infer import to_unit

    x = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, -1)
    old = x.astype(np.float32) / 127.5 - 1.0
    stats = BandStats.identity_uint8(3)
    np.testing.assert_array_equal(normalise_tf(tf.constant(x), stats).numpy(), old)
    np.testing.assert_array_equal(to_unit(x), old)
    np.testing.assert_array_equal((tf.cast(x, tf.float32) / 127.5 - 1.0).numpy(), old)


# --- options -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["--bands", "4,7"], "scene0.tif: has 4 bands; --bands 7 does not exist (choose among 1..4)"),
    (["--bands", "4,3,2", "--rgb-bands", "1,2,3"], "--rgb-bands 1,2,3: band 1 is not among --bands 4,3,2"),
    (["--rgb-bands", "1,2"], "give 3 band numbers (red, green, blue) or 1 for grey"),
    (["--bands", "4,,3"], "expected band numbers separated by commas"),
    (["--demo-bands", "4"], "--demo-bands sets the bands of the synthetic scenes: it needs --demo"),
])
def test_band_options_are_one_line_before_any_work(geo4, tmp_path, args, needle):
    proc = subprocess.run([sys.executable, "resize_to_256.py", "--images", str(geo4 / "photos"), "--masks",
                           str(geo4 / "masks"), "--out", str(tmp_path / "out"), *args], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


# --- the whole experiment on 10-band scenes --------------------------------------------------------------

@pytest.mark.slow
def test_pipeline_demo_with_ten_bands(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "pipeline.py"), "--demo", "--demo-bands", "10", "--rgb-bands", "6,5,4",
         "--demo-scenes", "10", "--demo-size", "32", "--size", "32", "--arms", "baseline,gan", "--cgan-steps", "4",
         "--evaluations", "2", "--cgan-batch", "4", "--cgan-width", "0.125", "--gan-steps", "2", "--gan-batch", "4",
         "--gan-width", "0.125", "--n-generated", "3", "--quiet", "--out", "runs/a"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "a"
    stats = BandStats.load(run_dir / "data/images_CGAN/bands.json")
    assert stats.n_bands == 10 and stats.dtype == "uint16" and stats.rgb == [5, 4, 3]
    # the paper's DCGAN arm end to end: its generator, its scenes, their pseudo-labels, all learned from the
    # split's training scenes only (the DCGAN read exactly their photos; the pseudo-labeller was trained on them)
    from conftest import assert_learned_only_from_split

    split = assert_learned_only_from_split(run_dir / "seed0", ["baseline", "gan"], ["models_GAN"])
    assert json.loads((run_dir / "seed0/models_GAN/config.json").read_text())["n_scenes"] == len(split["train"])
    label = json.loads((run_dir / "seed0/predict_CGAN/config.json").read_text())
    assert set(label["model_train_scenes"]) == set(split["train"])
    generated = sorted((run_dir / "seed0/generated_images").glob("*.tif"))
    assert len(generated) == 3
    assert len(list((run_dir / "seed0/predict_CGAN/b").iterdir())) + json.loads(
        (run_dir / ".stages/seed0__label.json").read_text())["dropped"] == 3
    data, _, _, _, names = _read(generated[0])
    assert data.shape == (32, 32, 10) and data.dtype == np.uint16 and names == stats.names
    for arm in ("baseline", "gan"):
        preds = sorted((run_dir / "seed0" / arm / "Pred_test").glob("*.tif"))
        assert preds and [p.stem for p in preds] == sorted(p.stem for p in (run_dir / "data/images_CGAN/test/a").iterdir())
        assert _read(preds[0])[1].to_epsg() == 32633
    report = json.loads((run_dir / "eval_report/report.json").read_text())
    assert set(report["sets"]) == {"baseline", "gan"}
