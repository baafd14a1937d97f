"""Pixels without data (NaN in float bands, a nodata value, an internal mask) never reach a model as NaN,
never bleed into valid pixels when a scene is resampled, stay out of every loss and metric, and come out
as no data (255, the label GeoTIFF's nodata) in predictions, also for GeoTIFFs without a georeference."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from landaug.bands import BandStats, normalise, normalise_tf
from landaug.classes import IGNORE_INDEX, SPARCS
from landaug.geoio import read_raster
from landaug.geometry import resize_photo
from landaug.prepare import PrepareConfig, run
from landaug.synthetic import make_scene

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32
N_SCENES = 8
TEST = ("s3", "s6")


def _write_tif(path: Path, data: np.ndarray, nodata=None) -> None:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    data = data[..., None] if data.ndim == 2 else data
    profile = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=data.shape[2],
                   dtype=data.dtype.name)
    if nodata is not None:
        profile["nodata"] = nodata
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(np.moveaxis(data, -1, 0))


def _gap(i: int) -> tuple[slice, slice]:
    return slice(0, 6 + i), slice(0, 8)


def _nan_scenes(root: Path, n: int = N_SCENES, side: int = SIZE) -> Path:
    """Float32 reflectance GeoTIFFs (4 bands, no georeference, no nodata value) whose gaps are NaN, with
    single-band GeoTIFF masks; ``TEST`` are the test scenes."""
    for i in range(n):
        photo, label = make_scene(100 + i, side, bands=4)
        photo = photo.astype(np.float32) / 10000
        photo[_gap(i)] = np.nan
        _write_tif(root / "photos" / f"s{i}.tif", photo)
        _write_tif(root / "masks" / f"s{i}.tif", label)
    (root / "test.txt").write_text("\n".join(TEST) + "\n")
    return root


@pytest.fixture(scope="module")
def nan_data(tmp_path_factory) -> Path:
    root = _nan_scenes(tmp_path_factory.mktemp("nan"))
    run(PrepareConfig(images=root / "photos", masks=root / "masks", test_list=root / "test.txt", size=16,
                      mode="tile", out=root / "prep", progress=False))
    return root


def _stats() -> BandStats:
    return BandStats([1, 2, 3, 4], ["b1", "b2", "b3", "b4"], "float32", [0.0] * 4, [0.5] * 4)


def _with_gap(shape=(2, 8, 8, 4)) -> np.ndarray:
    x = np.full(shape, 0.25, np.float32)
    x[:, :3, :3] = np.nan
    return x


# --- reading ----------------------------------------------------------------------------------------

def test_nan_is_no_data_even_without_a_nodata_value(tmp_path):
    photo = np.full((8, 8, 2), 0.3, np.float32)
    photo[2, 3, 1] = np.nan
    photo[5, 5, 0] = np.inf
    _write_tif(tmp_path / "x.tif", photo)
    r = read_raster(tmp_path / "x.tif")
    assert r.nodata is None
    assert sorted(zip(*np.nonzero(~r.valid))) == [(2, 3), (5, 5)]


# --- every way a photo enters a model -----------------------------------------------------------------

def test_nan_becomes_a_finite_model_input_everywhere():
    import tensorflow as tf

    from landaug.cgan.infer import to_unit
    from landaug.gan.model import Dcgan
    from landaug.synth.model import SpadeModule

    stats, x = _stats(), _with_gap()
    assert np.isfinite(normalise(x, stats)).all() and (normalise(x, stats)[:, :3, :3] == -1).all()
    assert np.isfinite(normalise_tf(tf.constant(x), stats).numpy()).all()
    assert np.isfinite(to_unit(x[0], stats)).all()                              # SceneLabeller: predict, label
    label = np.full((2, 8, 8, 1), 2, np.float32)
    label[:, :3, :3] = IGNORE_INDEX
    paired = Dcgan(SimpleNamespace(diffaugment=""), 8, n_classes=7, bands=4, stats=stats)
    assert np.isfinite(paired.real_scenes(tf.constant(np.concatenate([x, label], -1))).numpy()).all()
    photo, _, valid = SpadeModule(SimpleNamespace(), 8, 7, stats).real_pair(tf.constant(np.concatenate([x, label], -1)))
    assert np.isfinite(photo.numpy()).all() and (valid.numpy()[:, :3, :3] == 0).all()


def test_gan_discriminators_see_the_gaps_alike_in_real_and_generated_scenes():
    """A gap (no data, or in paired and mask-to-photo training an ignored label) holds the same values in real
    and generated scenes before the discriminator, so it tells it nothing and no loss counts it."""
    import tensorflow as tf

    from landaug.gan.model import Dcgan
    from landaug.synth.model import SpadeModule

    stats, rng = _stats(), np.random.default_rng(0)
    x = _with_gap()
    label = np.full((2, 8, 8, 1), 2, np.float32)
    label[:, 5, 5] = IGNORE_INDEX                                   # annotated nowhere, photo valid
    gaps = np.isnan(x).any(-1) | (label[..., 0] == IGNORE_INDEX)
    for dcgan, raw in ((Dcgan(SimpleNamespace(diffaugment=""), 8, n_classes=7, bands=4, stats=stats),
                        np.concatenate([x, label], -1)),
                       (Dcgan(SimpleNamespace(diffaugment=""), 8, bands=4, stats=stats), x)):
        valid = dcgan.real_valid(tf.constant(raw))
        np.testing.assert_array_equal(valid.numpy(), ~gaps if dcgan.n_classes else ~np.isnan(x).any(-1))
        real = dcgan.hide_gaps(dcgan.real_scenes(tf.constant(raw)), valid).numpy()
        fake = dcgan.hide_gaps(tf.constant(rng.uniform(-1, 1, real.shape).astype(np.float32)), valid).numpy()
        np.testing.assert_array_equal(real[~valid.numpy()], fake[~valid.numpy()])
        assert np.isfinite(real).all()
    spade = SpadeModule(SimpleNamespace(), 8, 7, stats)
    photo, _, valid = spade.real_pair(tf.constant(np.concatenate([x, label], -1)))
    real = spade.hide_gaps(photo, valid).numpy()
    fake = spade.hide_gaps(tf.constant(rng.uniform(-1, 1, real.shape).astype(np.float32)), valid).numpy()
    np.testing.assert_array_equal(real[gaps], fake[gaps])
    np.testing.assert_array_equal(real[~gaps], photo.numpy()[~gaps])


def test_pix2pix_batches_are_finite_and_ignore_the_gaps(nan_data):
    import tensorflow as tf

    from landaug import cgan
    from landaug.batches import StepSampler
    from landaug.cgan.data import training_data
    from landaug.cgan.train import batch_source

    cfg = cgan.resolve(cgan.TrainConfig(data=nan_data / "prep" / "images_CGAN", batch=4, augment="jitter,dihedral",
                                        progress=False))
    data = training_data(cfg, SPARCS)
    photos = data.train.photos
    assert np.isnan(photos).any()
    np.testing.assert_array_equal(data.train.labels == IGNORE_INDEX, np.isnan(photos).any(-1))
    make, transform, _ = batch_source(cfg, data, StepSampler([len(data.train)], cfg.batch, seed=0), None)
    for step in range(3):
        x, y = transform(tf.constant(step, tf.int64), *map(tf.constant, make(step)))
        assert np.isfinite(x.numpy()).all()
    for s in data.val:                          # validation truth ignores the gaps, as the test truth does
        np.testing.assert_array_equal(s.label == IGNORE_INDEX, np.isnan(s.photo).any(-1))


# --- resampling never spreads a gap --------------------------------------------------------------------

def test_resizing_keeps_gaps_out_of_valid_pixels():
    photo = np.full((40, 40, 2), 0.5, np.float32)
    photo[:13, :13] = np.nan
    small = resize_photo(photo, 10)
    valid = np.isfinite(small).all(-1)
    assert (small[valid] == 0.5).all()
    # an output pixel is a gap where most of its footprint is: 13 px of gap cover 3.25 output pixels
    assert (~valid).sum() == 9 and not valid[:3, :3].any()


@pytest.mark.parametrize("mode", ["resize", "tile"])
def test_stage1_fills_gaps_with_nodata_and_valid_pixels_with_valid_data(tmp_path, mode):
    """uint16 scenes of one value with a nodata-0 block: resizing (resize mode, or --tile-scale) gives
    valid pixels of that value only (no average with the nodata value) and nodata exactly where the
    label is ignored."""
    for i in range(3):
        photo = np.full((48, 40, 3), 700, np.uint16)
        photo[:11 + 2 * i, :9] = 0          # edges that fall inside output pixels
        _write_tif(tmp_path / "photos" / f"s{i}.tif", photo, nodata=0)
        _write_tif(tmp_path / "masks" / f"s{i}.tif", make_scene(i, 48)[1][:, :40])
    extra = {"tile_scale": 0.5} if mode == "tile" else {}
    run(PrepareConfig(images=tmp_path / "photos", masks=tmp_path / "masks", split="none", size=16, mode=mode,
                      out=tmp_path / "out", progress=False, **extra))
    tiles = sorted((tmp_path / "out/images_CGAN/train/a").iterdir())
    assert tiles
    for path in tiles:
        data = read_raster(path).data
        label = np.asarray(Image.open(path.parent.parent / "b" / f"{path.stem}.png"))
        assert set(np.unique(data)) <= {0, 700}
        assert ((data == 0).all(-1) <= (label == IGNORE_INDEX)).all()


def test_stage1_learns_finite_band_statistics_and_ignores_nan_gaps(nan_data):
    stats = json.loads((nan_data / "prep/images_CGAN/bands.json").read_text())
    assert np.isfinite(stats["low"]).all() and np.isfinite(stats["high"]).all()
    photo = read_raster(nan_data / "prep/images_CGAN/test/a/s3.tif")
    truth = np.asarray(Image.open(nan_data / "prep/images_CGAN/test/b/s3.png"))
    gap = np.zeros(truth.shape, bool)
    gap[_gap(3)] = True
    np.testing.assert_array_equal(truth == IGNORE_INDEX, gap)
    np.testing.assert_array_equal(~photo.valid, gap)


# --- training, prediction, evaluation -------------------------------------------------------------------

def _losses(path: Path, columns) -> np.ndarray:
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert rows
    return np.array([[float(r[c]) for c in columns] for r in rows])


@pytest.mark.slow
def test_pix2pix_trains_and_predicts_through_nan_gaps(nan_data, tmp_path):
    from landaug import cgan
    from landaug.cgan.infer import SceneLabeller
    from landaug.evaluate import evaluate_sets
    from landaug.geoio import read_mask_raster

    model = tmp_path / "m"
    cgan.train(cgan.TrainConfig(data=nan_data / "prep/images_CGAN", out=model, steps=2, eval_every=1, batch=2,
                                width=0.125, size=16, val_fraction=0.2, sample_every=0, progress=False,
                                verbose=False))
    rows = _losses(model / "log.csv", ("g_total", "g_adv", "g_seg", "d_loss", "val_miou"))
    assert np.isfinite(rows).all()
    photo = read_raster(nan_data / "photos" / "s3.tif")
    probs = SceneLabeller.load(model).probabilities(photo.data)
    assert np.isfinite(probs).all() and np.allclose(probs.sum(-1), 1, atol=1e-4)
    test_a = nan_data / "prep/images_CGAN/test/a"
    written = cgan.predict(model, test_a, tmp_path / "pred", progress=False)
    # no georeference, but pixels without data: a label GeoTIFF whose nodata marks them
    assert [p.name for p in written] == [f"{s}.tif" for s in TEST]
    for stem, path in zip(TEST, written):
        label, valid = read_mask_raster(path)
        gap = np.zeros(label.shape, bool)
        gap[_gap(int(stem[1:]))] = True
        np.testing.assert_array_equal(~valid, gap)
        assert (label[valid] < len(SPARCS)).all()
    report = evaluate_sets(nan_data / "prep/images_CGAN/test/b", {"m": [tmp_path / "pred"]}, SPARCS, n_resamples=0)
    assert report["sets"]["m"]["n_ignored_pixels"] == sum(6 * 8 + int(s[1:]) * 8 for s in TEST)


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_dcgan_trains_and_generates_through_nan_gaps(nan_data, tmp_path):
    """The paper's DCGAN, unpaired and paired, on stage 1's scenes with NaN gaps: finite losses, finite
    generated photos."""
    from landaug import gan
    from landaug.geoio import read_raster as read

    common = dict(size=16, width=8, latent_dim=8, steps=2, batch=2, sample_every=0, score_every=0, log_every=1,
                  checkpoint_every=2, progress=False, precision="float32")
    # the unpaired DCGAN writes photos; the paired one photos under a/ and their labels under b/
    for name, kw, photos_in in (("unpaired", dict(images=nan_data / "prep/images"), ""),
                                ("paired", dict(with_labels=nan_data / "prep/images_CGAN/train"), "a")):
        model = tmp_path / name
        gan.train(gan.TrainConfig(out=model, **kw, **common))
        assert np.isfinite(_losses(model / "losses.csv", ("d_loss", "g_loss"))).all(), name
        out = tmp_path / f"{name}_generated"
        gan.generate(gan.GenerateConfig(model=model, n=2, out=out, progress=False))
        photos = sorted((out / photos_in).glob("*.tif"))
        assert len(photos) == 2 and all(np.isfinite(read(p).data).all() for p in photos), name


@pytest.mark.slow
def test_pipeline_runs_on_nan_geotiffs_without_a_georeference(tmp_path):
    """The whole experiment on non-georeferenced float GeoTIFFs with NaN gaps: every training stage's losses
    finite, predictions with no data, and the evaluation done. (The DCGAN's training on gaps is the test
    above; its arm runs end to end in test_geotiff_stages.)"""
    data = _nan_scenes(tmp_path / "in")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "pipeline.py"), "--images", str(data / "photos"), "--masks", str(data / "masks"),
         "--test-list", str(data / "test.txt"), "--size", "32", "--data-mode", "tile", "--arms",
         "baseline,masksynth", "--cgan-steps", "2", "--evaluations", "1", "--cgan-batch", "2", "--cgan-width",
         "0.125", "--synth-steps", "2", "--synth-width", "0.125", "--n-generated", "2", "--quiet", "--out", "runs/a"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = tmp_path / "runs" / "a"
    for arm in ("baseline", "masksynth"):
        # the default labeller (cpu preset) is a U-Net without a discriminator: its losses are g_total = g_seg
        assert np.isfinite(_losses(run_dir / "seed0" / arm / "models_CGAN" / "log.csv", ("g_total", "g_seg"))).all()
        preds = sorted(p.name for p in (run_dir / "seed0" / arm / "Pred_test").glob("*.tif"))
        assert preds == [f"{s}.tif" for s in TEST]
    assert np.isfinite(_losses(run_dir / "seed0/models_synth/losses.csv", ("d_loss", "g_loss"))).all()
    report = json.loads((run_dir / "eval_report/report.json").read_text())
    assert set(report["sets"]) == {"baseline", "masksynth"}
