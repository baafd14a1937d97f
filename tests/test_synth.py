"""synth.py: one step moves each generator, exact resume, generated pairs equal their layouts, rare boost,
mosaics of different scenes, the split respected, the diversity statistic and the score's figures, bad
options as one line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from landaug.classes import IGNORE_INDEX, load_registry
from landaug.copypaste import transform
from landaug.errors import UserError, cli_main
from landaug.geometry import scene_of
from landaug.imgio import list_images, read_image, read_label
from landaug.split import write_split
from landaug.synth import (GenerateConfig, LayoutMaker, ScoreConfig, TrainConfig, class_shares, fill_ignore, generate,
                           main, score, train, validate)
from landaug.synth.diversity import diversity_report, real_reference, rendered_difference
from landaug.synth.layouts import PASTES_PER_BOOST, source_photo

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(width=0.125, latent_dim=8, batch=4, sample_every=2, log_every=1, checkpoint_every=2, progress=False,
             precision="float32")


@pytest.fixture(autouse=True)
def _restore_tf_globals():
    """Training sets the global precision policy and op determinism: leave both as other tests expect."""
    yield
    if "keras" in sys.modules:
        import keras
        from tensorflow.python.framework import config as tf_config

        keras.mixed_precision.set_global_policy("float32")
        tf_config.disable_op_determinism()


def _digest(paths):
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


def _data(demo_root: Path) -> Path:
    return demo_root / "images_CGAN"


def _train_masks(data: Path, scenes=None):
    reg = load_registry(data / "classes.json")
    files = [p for p in list_images(data / "train" / "b") if scenes is None or scene_of(p.stem) in scenes]
    return np.stack([read_label(p, reg, allow_ignore=True) for p in files]), [p.stem for p in files]


@pytest.fixture(scope="module")
def split_model(demo_root, tmp_path_factory):
    """A model (the default generator) trained 2 steps on the training scenes of a split that holds 3 out."""
    tmp = tmp_path_factory.mktemp("synth_split")
    scenes = sorted({scene_of(p.stem) for p in list_images(_data(demo_root) / "train" / "a")})
    split = {"train": scenes[3:], "val": scenes[:3], "test": []}
    write_split(tmp / "split.json", split)
    train(TrainConfig(data=_data(demo_root), out=tmp / "m", split=tmp / "split.json", steps=2, **SMALL))
    return tmp / "m", split


# --- training ----------------------------------------------------------------------------------------

OASIS_ALL = dict(generator="oasis", diversity=1.0, l1=1.0, diffaugment="color,translation,cutout")


@pytest.mark.parametrize("kind", [dict(generator="spade"), dict(generator="pix2pix"), OASIS_ALL],
                         ids=["spade", "pix2pix", "oasis"])
def test_one_step_changes_the_generator(demo_root, tmp_path, kind):
    from landaug.gan.data import batches
    from landaug.synth.train import build_trainer, load_training_pairs

    cfg = TrainConfig(data=_data(demo_root), out=tmp_path / "m", steps=1, **kind, **SMALL)
    plan = validate(cfg)
    photos, labels = load_training_pairs(plan)
    labels[:, :5, :5] = IGNORE_INDEX     # an ignore patch in every pair: must not break the step
    t = build_trainer(cfg, plan)
    g, d = t.module.G, t.module.D
    before = [w.numpy().copy() for w in g.trainable_weights]
    d_before = [w.numpy().copy() for w in d.trainable_weights]
    scenes = np.concatenate([photos, labels[..., None]], -1)
    t.train_step(next(iter(batches(t.rt, scenes, cfg.batch, cfg.seed, 0, 1, flip=True))))
    moved = [not np.array_equal(a, w.numpy()) for a, w in zip(before, g.trainable_weights)]
    assert all(moved), f"{kind}: {moved.count(False)} of {len(moved)} generator weights did not move"
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(d_before, d.trainable_weights))
    m = t.read_metrics()
    assert int(t.step.numpy()) == 1 and set(m) == set(t.module.metric_names) and np.isfinite(list(m.values())).all()
    # Ignore pixels are "unknown" to the generator (a zero one-hot vector) and outside the pixel mask.
    batch = np.zeros((4, 32, 32, 4), np.uint8)
    batch[..., 3] = 2
    batch[0, 0, :3, 3] = [0, IGNORE_INDEX, 6]
    photo, hot, valid = (x.numpy() for x in t.module.real_pair(batch))
    np.testing.assert_array_equal(hot[0, 0, :3], np.eye(7, dtype=np.float32)[[0, 0, 6]] * [[1], [0], [1]])
    np.testing.assert_array_equal(valid[0, 0, :3], [1, 0, 1])
    assert photo.min() == -1.0 and valid.sum() == 4 * 32 * 32 - 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", [dict(generator="pix2pix"), OASIS_ALL], ids=["pix2pix", "oasis"])
def test_resume_equals_uninterrupted_training(demo_root, tmp_path, kind):
    """pix2pix's dropout noise, oasis's latents, noise maps and DiffAugment draws continue where they stopped."""
    common = dict(data=_data(demo_root), deterministic=True, **kind, **SMALL)
    full = train(TrainConfig(out=tmp_path / "full", steps=4, **common))
    train(TrainConfig(out=tmp_path / "half", steps=2, **common))
    resumed = train(TrainConfig(out=tmp_path / "half", steps=4, resume=True, **common))
    assert full["step"] == resumed["step"] == 4
    rows = lambda d: [r.split(",")[:-1] for r in (tmp_path / d / "losses.csv").read_text().splitlines()]  # noqa: E731
    assert rows("full") == rows("half") and len(rows("full")) == 5
    gen = dict(n_layouts=3, per_layout=2, seed=3, progress=False)
    a = generate(GenerateConfig(model=tmp_path / "full", out=tmp_path / "ga", **gen))
    b = generate(GenerateConfig(model=tmp_path / "half", out=tmp_path / "gb", **gen))
    assert [p.name for p in a] == [p.name for p in b] and len(a) == 6
    assert _digest(a) == _digest(b)
    out = tmp_path / "full"
    for f in ("config.json", "classes.json", "samples/samples_000002.png", "samples/samples_000004.png",
              "training.png", "checkpoints/checkpoint"):
        assert (out / f).is_file(), f
    assert list((out / "logs").glob("events.out.tfevents.*"))
    grid = read_image(out / "samples" / "samples_000004.png")
    assert grid.shape == (4 * 128 + 3 * 2, 5 * 128 + 4 * 2, 3)     # 4 rows of layout | 3 photos | real
    with pytest.raises(UserError, match="--latent-dim"):
        train(TrainConfig(out=tmp_path / "half", steps=6, resume=True, **{**common, "latent_dim": 4}))
    with pytest.raises(UserError, match="--resume"):
        train(TrainConfig(out=tmp_path / "full", steps=6, **common))


# --- layouts and generation --------------------------------------------------------------------------

def test_fill_ignore_takes_the_nearest_class():
    label = np.array([[1, 255, 255, 255, 255, 2]], np.uint8)
    np.testing.assert_array_equal(fill_ignore(label, 0), [[1, 1, 1, 2, 2, 2]])
    np.testing.assert_array_equal(fill_ignore(np.full((2, 2), 255, np.uint8), 4), np.full((2, 2), 4))
    np.testing.assert_array_equal(fill_ignore(np.array([[3, 255], [255, 255]], np.uint8), 0), np.full((2, 2), 3))


def test_generate_writes_the_layouts_within_the_split(split_model, demo_root, tmp_path):
    model, split = split_model
    cfg = json.loads((model / "config.json").read_text())
    assert cfg["train_scenes"] == split["train"]
    assert not set(cfg["train_scenes"]) & set(split["val"])
    out = tmp_path / "g"
    written = generate(GenerateConfig(model=model, out=out, n_layouts=6, per_layout=2, rare_boost=0.5, progress=False))
    assert [p.name for p in written] == [f"synth_s0_{i:05d}_{k}.png" for i in range(6) for k in range(2)]
    reg = load_registry(out / "classes.json")
    masks, stems = _train_masks(_data(demo_root), set(split["train"]))
    maker = LayoutMaker(masks, stems, len(reg))
    records = json.loads((out / "layouts.json").read_text())
    assert [r["kind"] for r in records] == ["flip", "mosaic", "paste"] * 2
    counts = np.zeros(len(reg))
    for i, rec in enumerate(records):
        expected = maker.make(0, i, ("flip", "mosaic", "paste"), 0.5).label
        for k in range(2):
            label = read_label(out / "b" / f"synth_s0_{i:05d}_{k}.png", reg)   # no ignore value allowed
            np.testing.assert_array_equal(label, expected)
            assert read_image(out / "a" / f"synth_s0_{i:05d}_{k}.png").shape == (32, 32, 3)
            counts += np.bincount(label.ravel(), minlength=len(reg))
        assert all(scene_of(s["stem"]) in split["train"] for s in rec["sources"])
        assert rec["pasted"] <= (PASTES_PER_BOOST // 2 if rec["kind"] == "paste" else 0)
    assert sum(r["pasted"] for r in records) > 0
    shares = json.loads((out / "config.json").read_text())["class_shares"]
    np.testing.assert_allclose(list(shares["written"].values()), counts / counts.sum(), atol=1e-6)
    np.testing.assert_allclose(list(shares["training_masks"].values()), class_shares(masks, len(reg)), atol=1e-6)
    # Two photos of one layout differ (different noise); the same seed gives the same files, never overwritten.
    a0, a1 = read_image(written[0]), read_image(written[1])
    assert not np.array_equal(a0, a1)
    again = generate(GenerateConfig(model=model, out=tmp_path / "g2", n_layouts=6, per_layout=2, rare_boost=0.5,
                                    progress=False))
    assert _digest(again) == _digest(written)
    with pytest.raises(UserError, match="exists"):
        generate(GenerateConfig(model=model, out=out, n_layouts=1, per_layout=1, progress=False))


def test_score_compares_with_the_validation_scenes_by_default(split_model, demo_root, tmp_path):
    """Choosing a generator never looks at test photos: without --images, the reference is the pairs of the
    validation scenes of the model's split."""
    from landaug.synth import ScoreConfig, score

    model, split = split_model
    report = score(ScoreConfig(model=model, n=4, out=tmp_path / "s", progress=False))
    assert report["reference"]["validation_scenes"] == split["val"]
    val_pairs = [p for p in list_images(_data(demo_root) / "train" / "a") if scene_of(p.stem) in split["val"]]
    assert report["n_real"] == len(val_pairs) > 0
    assert json.loads((tmp_path / "s" / "score.json").read_text())["reference"]["validation_scenes"] == split["val"]
    cfg = json.loads((model / "config.json").read_text())
    no_split = tmp_path / "no_split"
    no_split.mkdir()
    for name in ("checkpoints", "classes.json", "bands.json"):
        src = model / name
        (no_split / name).symlink_to(src, target_is_directory=src.is_dir())
    cfg["config"]["split"], cfg["val_scenes"] = None, []
    (no_split / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match="pass --images DIR"):
        score(ScoreConfig(model=no_split, n=4, out=tmp_path / "s2", progress=False))


def test_mosaics_combine_quadrants_of_different_scenes(demo_root):
    masks, stems = _train_masks(_data(demo_root))
    maker = LayoutMaker(masks, stems, 7)
    half = masks.shape[1] // 2
    for i in range(5):
        lay = maker.make(11, i, ("mosaic",), 0.0)
        assert lay.kind == "mosaic" and len({scene_of(s["stem"]) for s in lay.sources}) == 4
        for s in lay.sources:
            r, c = divmod(s["quadrant"], 2)
            src = transform(masks[stems.index(s["stem"])], s["transform"])
            win = (slice(r * half, (r + 1) * half), slice(c * half, (c + 1) * half))
            np.testing.assert_array_equal(lay.label[win], src[win])


def test_rare_boost_raises_the_rarest_class(demo_root):
    masks, stems = _train_masks(_data(demo_root))
    maker = LayoutMaker(masks, stems, 7)
    rarest = int(np.argmin(np.where(class_shares(masks, 7) > 0, class_shares(masks, 7), 1.0)))
    share = {r: class_shares(np.stack([lay.label for lay in maker.make_many(0, range(30), ("paste",), r)]), 7)[rarest]
             for r in (0.0, 2.0)}
    assert share[2.0] > share[0.0] * 1.5
    plain = maker.make_many(0, range(30), ("flip", "paste"), 0.0)
    assert all(lay.pasted == 0 for lay in plain)
    # R = 0: a paste layout is the flip it starts from.
    np.testing.assert_array_equal(plain[1].label, maker.make(0, 1, ("flip",), 0.0).label)


# --- scores -----------------------------------------------------------------------------------------

def test_diversity_statistic_by_hand():
    labels = np.zeros((2, 4, 4), np.uint8)
    labels[:, :, 2:] = 1                                          # left half class 0, right half class 1
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[:, :, :2] = 51                                              # class 0 differs by 0.2, class 1 not at all
    d = rendered_difference(a, b, labels, 3)
    assert d["mean"] == pytest.approx(0.1) and d["counts"] == [16, 16, 0]
    assert d["by_class"][0] == pytest.approx(0.2) and d["by_class"][1] == 0.0 and d["by_class"][2] is None
    # Real photos: class 0 is flat 0 in scene s0 and flat 127 in s1; class 1 (flat 255) only in s0.
    photos = np.zeros((3, 8, 8, 3), np.uint8)
    photos[1] = 127
    photos[2, :, 4:] = 255
    real_labels = np.zeros((3, 8, 8), np.uint8)
    real_labels[2, :, 4:] = 1
    ref = real_reference(photos, real_labels, ["s0", "s1", "s0"], 3)
    # Only pairs of different scenes count: (0, 1) and (1, 2), each 127 / 255 apart; each photo is flat.
    assert ref["different_scenes"][0] == pytest.approx(127 / 255) and ref["same_scene"][0] == 0.0
    assert ref["different_scenes"][1] is None and ref["same_scene"][1] == 0.0
    assert ref["different_scenes"][2] is None and ref["same_scene"][2] is None
    report = diversity_report(d, {"different_scenes": [0.5, None, None], "same_scene": [0.0, 0.1, None]},
                              ["x", "y", "z"])
    # Classes weigh by their share of the rendered pixels; classes without a real value are left out.
    assert report["rendered"] == pytest.approx(0.1) and report["real_different_scenes"] == 0.5
    assert report["real_same_scene"] == pytest.approx(0.05)
    assert report["by_class"]["x"] == {"rendered": 0.2, "real_different_scenes": 0.5, "real_same_scene": 0.0}


def test_source_photo_is_the_photo_the_layout_was_cut_from(demo_root):
    masks, stems = _train_masks(_data(demo_root))
    maker = LayoutMaker(masks, stems, 7)
    photo_of = lambda stem: masks[stems.index(stem)][..., None]   # noqa: E731  (a mask posing as a photo)
    for i, kind in enumerate(("mosaic", "flip", "mosaic")):
        lay = maker.make(5, i, (kind,), 0.0)
        np.testing.assert_array_equal(source_photo(lay, photo_of)[..., 0], fill_ignore(lay.label, 255))


def test_score_reports_diversity_and_writes_the_grid(split_model, demo_root, tmp_path):
    model, _ = split_model
    out = tmp_path / "score"
    report = score(ScoreConfig(model=model, images=_data(demo_root) / "test" / "a", n=5, out=out, progress=False))
    saved = json.loads((out / "score.json").read_text())
    d = saved["diversity_same_layout"]
    assert d["rendered"] == report["diversity_same_layout"]["rendered"] and 0 < d["rendered"] < 1
    assert 0 < d["real_same_scene"] < d["real_different_scenes"] < 1
    assert d["n_layouts"] == 5 and set(d["by_class"]) == set(load_registry(model / "classes.json").names)
    assert "swd" in saved and (out / "nearest.png").is_file()
    grid = read_image(out / "samples.png")
    assert grid.shape == (5 * 128 + 4 * 2, 6 * 128 + 5 * 2, 3)    # 5 rows of layout | 4 renderings | real


# --- the command line --------------------------------------------------------------------------------

def test_bad_options_exit_2_with_one_line(demo_root, tmp_path, capsys):
    data, out, nomodel = str(_data(demo_root)), str(tmp_path / "out"), tmp_path / "nomodel"
    nomodel.mkdir()
    cases = [
        (["train", "--data", data, "--out", out, "--generator", "gan"], "invalid choice: 'gan'"),
        (["train", "--data", data, "--out", out, "--width", "0"], "--width must be in (0, 4]"),
        (["train", "--data", data, "--out", out, "--steps", "0"], "--steps must be an integer > 0"),
        (["train", "--data", data, "--out", out, "--diversity", "1"], "--diversity applies to --generator oasis only"),
        (["train", "--data", data, "--out", out, "--generator", "oasis", "--diffaugment", "blur"],
         "--diffaugment: unknown augmentation blur"),
        (["train", "--data", data, "--out", out, "--generator", "oasis", "--l1", "-1"], "--l1 must be in [0, 1000]"),
        (["train", "--data", str(tmp_path / "missing"), "--out", out], "data folder does not exist"),
        (["train", "--data", data, "--out", out, "--resume"], "no checkpoint to resume"),
        (["generate", "--model", str(nomodel), "--out", out], "no checkpoint"),
        (["generate", "--model", str(nomodel), "--out", out, "--n-layouts", "0"], "--n-layouts must be"),
        (["generate", "--model", str(nomodel), "--out", out, "--layouts", "flip,swirl"], "--layouts 'flip,swirl'"),
        (["generate", "--model", str(nomodel), "--out", out, "--layouts", "flip,mosaic"], "add paste to --layouts"),
        (["score", "--model", str(nomodel), "--images", data, "--n", "1"], "--n must be an integer > 1"),
    ]
    for args, expected in cases:
        assert cli_main(main, args, prog="synth.py") == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("synth.py: error: ") and expected in lines[0], (args, lines)
        assert not Path(out).exists(), args
    r = subprocess.run([sys.executable, "synth.py", "generate", "--model", str(nomodel), "--rare-boost", "-1"],
                       cwd=ROOT, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert r.returncode == 2 and r.stderr.strip() == "synth.py: error: --rare-boost must be in [0, 16] " \
                                                     "(0: plain layouts), got -1.0"
