"""Stage 3 (cgan.py): training step, train -> predict -> label, resume, kill-and-resume, bad inputs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import needs_half_precision_kernels
from landaug import cgan
from landaug.classes import IGNORE_INDEX, SPARCS, registry_for_data
from landaug.errors import cli_main
from landaug.geoio import read_raster
from landaug.imgio import list_images, read_image, read_label, write_image, write_label

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(epochs=2, batch=4, width=0.25, sample_every=1, log_every=1, progress=False, verbose=False)


def _cfg(data: Path, out: Path, **kw) -> cgan.TrainConfig:
    return cgan.TrainConfig(data=data, out=out, **{**FAST, **kw})


def _run_cli(argv, capsys):
    code = cli_main(cgan.main, argv, prog="cgan.py")
    return code, capsys.readouterr()


def _one_error_line(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("cgan.py: error: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def trained(demo_root, tmp_path_factory):
    """One short training run shared by the predict / label / bad-input tests."""
    out = tmp_path_factory.mktemp("cgan") / "model"
    result = cgan.train(_cfg(demo_root / "images_CGAN", out))
    return out, result


# ---- the training step ----------------------------------------------------------------------------

def _model(size=32, precision="float32", seed=0, **kw):
    from landaug.cgan import Pix2Pix
    from landaug.harness.module import Trainer
    from landaug.runtime import setup_runtime

    cfg = cgan.TrainConfig(size=size, width=0.25, batch=2, precision=precision, dropout=0.0, seed=seed, **kw)
    rt = setup_runtime(precision, seed=seed)
    return Trainer(Pix2Pix(cfg, SPARCS, None), rt, seed=seed, config={})


def _fixed_batch(size=32, seed=0):
    rng = np.random.default_rng(seed)
    photo = rng.uniform(-1, 1, (2, size, size, 3)).astype(np.float32)
    label = (np.add.outer(np.arange(size), np.arange(size)) // (size // 3) % 7).astype(np.uint8)
    return photo, np.stack([label, label.T])


def test_one_step_lowers_the_loss_on_a_fixed_batch():
    import tensorflow as tf

    m = _model(lr=1e-3)
    photo, label = _fixed_batch()
    safe = tf.constant(label.astype(np.int32))
    valid = tf.ones(label.shape, tf.float32)

    def pixel_loss():
        _, _, seg = m.module._targets(m.module.gen(photo, training=True), safe, valid)
        return float(tf.reduce_mean(seg))

    before = pixel_loss()
    m.train_step((tf.constant(photo), tf.constant(label)))
    after = pixel_loss()
    assert np.isfinite(before) and after < before
    assert int(m.step.numpy()) == 1
    assert float(m.trackers["g_seg"].result()) == pytest.approx(before, rel=0.05)


def test_ignored_pixels_carry_no_loss_and_no_signal():
    import tensorflow as tf

    m = _model().module
    photo, label = _fixed_batch()
    label[:, :, : 16] = IGNORE_INDEX
    lab = tf.constant(label.astype(np.int32))
    valid = tf.cast(lab != IGNORE_INDEX, tf.float32)
    safe = tf.where(lab != IGNORE_INDEX, lab, 0)
    out = m.gen(photo, training=False)
    fake, real, seg = m._targets(out, safe, valid)
    # the pixel loss is the cross-entropy over the labelled pixels only, per image over all pixels
    logp = tf.nn.log_softmax(out).numpy()
    keep = label != IGNORE_INDEX
    ce = -np.take_along_axis(logp, np.where(keep, label, 0)[..., None].astype(int), -1)[..., 0]
    np.testing.assert_allclose(seg.numpy(), (ce * keep).sum((1, 2)) / 32 ** 2, rtol=1e-5)
    # at ignored pixels the discriminator sees the generator's own output on both sides
    np.testing.assert_allclose(real.numpy()[:, :, :16], fake.numpy()[:, :, :16])
    assert np.all(real.numpy()[:, :, 16:].max(-1) == 1.0)
    # changing the truth under the ignore mask changes nothing; all-ignore gives zero loss
    all_ignored = tf.zeros_like(valid)
    assert float(tf.reduce_max(m._targets(out, safe, all_ignored)[2])) == 0.0


# ---- train -> predict -> label --------------------------------------------------------------------

def test_train_writes_checkpoints_logs_and_samples(trained):
    out, result = trained
    for name in ("model.json", "config.json", "classes.json", "log.csv", "losses.png", "ckpt/checkpoint",
                 "best/checkpoint", "samples/step_0000002.png", "samples/step_0000004.png"):
        assert (out / name).is_file(), name
    assert list((out / "logs").glob("events.out.tfevents.*"))
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step,g_total") and len(rows) == 3
    assert result.epochs == 2 and len(result.history) == 2
    vals = [float(r["val_miou"]) for r in result.history]
    assert result.best_val_miou == pytest.approx(max(vals), abs=1e-6) and result.best_epoch == 1 + vals.index(max(vals))
    assert result.last5_val_miou == pytest.approx(sum(vals) / len(vals), abs=1e-6)
    assert result.final_val_miou == pytest.approx(float(result.history[-1]["val_miou"]), rel=1e-5)
    desc = json.loads((out / "model.json").read_text())
    assert desc["size"] == 32 and desc["target"] == "classes" and desc["n_classes"] == 7
    # the networks really run in the precision the runtime chose
    assert desc["compute_dtype"] == {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(
        desc["precision"], "float32")


def test_predict_then_label_then_train_on_extra(trained, demo_root, tmp_path):
    out, _ = trained
    test_a = demo_root / "images_CGAN" / "test" / "a"
    written = cgan.predict(out, test_a, tmp_path / "pred", progress=False)
    assert [p.stem for p in written] == [p.stem for p in list_images(test_a)]
    reg = registry_for_data(demo_root / "images_CGAN")
    for p in written:
        with Image.open(p) as im:
            assert im.mode == "P" and im.size == (32, 32)
        assert read_label(p, reg).max() < len(reg)

    res = cgan.label(out, demo_root / "images", tmp_path / "lab", min_confidence=0.3, progress=False)
    a, b = list_images(tmp_path / "lab" / "a"), list_images(tmp_path / "lab" / "b")
    assert [p.stem for p in a] == [p.stem for p in b] and len(a) == res.written
    assert res.written + res.dropped == len(list_images(demo_root / "images"))
    for p in b:
        vals = set(np.unique(read_label(p, reg, allow_ignore=True)))
        assert vals <= set(range(len(reg))) | {IGNORE_INDEX}
    # an unreachable threshold drops every scene and still leaves a valid, empty extra folder
    res2 = cgan.label(out, demo_root / "images", tmp_path / "none", min_confidence=1.0, progress=False)
    assert res2.written == 0 and res2.dropped == len(list_images(demo_root / "images"))
    assert (tmp_path / "none" / "a").is_dir() and (tmp_path / "none" / "b").is_dir()

    if res.written == 0:   # the short run may be unsure everywhere: label without threshold instead
        res = cgan.label(out, demo_root / "images", tmp_path / "lab", progress=False)
    result = cgan.train(_cfg(demo_root / "images_CGAN", tmp_path / "after", epochs=1,
                             extra=[tmp_path / "lab", tmp_path / "none"], augment="dihedral,color"))
    cfg = json.loads((tmp_path / "after" / "config.json").read_text())
    n_train = len(list_images(demo_root / "images_CGAN" / "train" / "a"))
    assert cfg["train_pairs"] == n_train - len(cfg["val_scenes"]) + res.written
    assert result.best_val_miou is not None


def test_predict_labels_whole_scenes_of_any_size_without_a_coarse_grid(trained, tmp_path, capsys):
    """A 1000 px scene through a 32 px model at scale 32/1000 (scenes shrunk for training) and a 301x217 photo:
    label maps of exactly the photos' sizes, whose class edges fall anywhere, not on the ~31 px grid that
    blowing a 32 px label map up would give."""
    from landaug.synthetic import make_scene

    out, _ = trained
    (tmp_path / "big").mkdir()
    photo = make_scene(7, 1000)[0]
    write_image(tmp_path / "big" / "scene.png", photo)
    write_image(tmp_path / "big" / "odd.png", photo[100:317, 200:501])
    code, cap = _run_cli(["predict", "--model", str(out), "--images", str(tmp_path / "big"),
                          "--out", str(tmp_path / "p"), "--scale", str(32 / 1000), "--quiet"], capsys)
    assert code == 0, cap.err
    for name, size in (("scene.png", (1000, 1000)), ("odd.png", (301, 217))):
        with Image.open(tmp_path / "p" / name) as im:
            assert im.size == size and im.mode == "P"
    lab = read_label(tmp_path / "p" / "scene.png", SPARCS)
    assert len(np.unique(lab)) >= 2
    edge_cols = np.unique(np.nonzero(lab[:, 1:] != lab[:, :-1])[1])
    edge_rows = np.unique(np.nonzero(lab[1:] != lab[:-1])[0])
    assert len(edge_cols) > 64 and len(edge_rows) > 64, (len(edge_cols), len(edge_rows))


def test_predict_checks_every_photo_first_and_never_replaces_earlier_maps(trained, demo_root, tmp_path, capsys):
    out, _ = trained
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, p in enumerate(list_images(demo_root / "images")[:9]):
        Image.open(p).convert("RGB").save(photos / f"p{i}.jpg", quality=95)
    good = (photos / "p6.jpg").read_bytes()
    (photos / "p6.jpg").write_bytes(good[: len(good) // 2])
    args = ["predict", "--model", str(out), "--images", str(photos), "--out", str(tmp_path / "pred"), "--quiet"]
    code, cap = _run_cli(args, capsys)
    assert code == 2 and "p6.jpg: unreadable or truncated image" in _one_error_line(cap.err)
    assert not (tmp_path / "pred").exists()
    (photos / "p6.jpg").write_bytes(good)
    code, cap = _run_cli(args + ["--confidence"], capsys)
    assert code == 0, cap.err
    conf = read_raster(tmp_path / "pred" / "confidence" / "p3_confidence.tif")
    assert conf.dtype == np.float32 and conf.data.shape == (32, 32, 1) and not conf.georef.is_georeferenced
    assert (conf.data >= 1 / len(SPARCS) - 1e-6).all() and (conf.data <= 1).all()
    before = (tmp_path / "pred" / "p0.png").stat().st_mtime_ns
    code, cap = _run_cli(args, capsys)
    assert code == 2 and "already holds the maps of an earlier predict" in _one_error_line(cap.err)
    assert (tmp_path / "pred" / "p0.png").stat().st_mtime_ns == before
    code, cap = _run_cli(args + ["--overwrite"], capsys)
    assert code == 0 and len(list_images(tmp_path / "pred")) == 9
    assert not (tmp_path / "pred" / "confidence").exists() or not list_images(tmp_path / "pred" / "confidence")


def test_best_checkpoint_is_the_best_evaluation(trained):
    import tensorflow as tf

    out, result = trained
    best_step = int(tf.train.load_checkpoint(str(out / "best")).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))
    rows = list(result.history)
    vals = [float(r["val_miou"]) for r in rows]
    assert best_step == int(rows[vals.index(max(vals))]["step"]) == result.best_step


def test_same_seed_same_start_and_batches(demo_root):
    """Without --deterministic the seed still fixes the initial weights and every batch."""
    from landaug.cgan.data import training_data
    from landaug.cgan.train import batch_source
    from landaug.batches import StepSampler

    weights = []
    for seed in (3, 3, 4):
        m = _model(seed=seed)
        weights.append([w.numpy().copy() for w in m.module.gen.weights[:4]])
    assert all(np.array_equal(a, b) for a, b in zip(weights[0], weights[1]))
    assert not all(np.array_equal(a, b) for a, b in zip(weights[0], weights[2]))
    cfg = cgan.resolve(cgan.TrainConfig(data=demo_root / "images_CGAN", batch=4, seed=3, copypaste_p=0.5, progress=False))
    data = training_data(cfg, SPARCS)
    from landaug.copypaste import ComponentBank

    bank = ComponentBank.build(data.train.photos, data.train.labels, data.train.scenes, len(SPARCS))
    batches = []
    for _ in range(2):
        make, _, _ = batch_source(cfg, data, StepSampler([len(data.train)], 4, seed=3), bank)
        batches.append([make(step) for step in (0, 1, 7)])
    for (p1, l1), (p2, l2) in zip(*batches):
        np.testing.assert_array_equal(p1, p2)
        np.testing.assert_array_equal(l1, l2)


@needs_half_precision_kernels
def test_one_step_in_mixed_float16_with_loss_scaling():
    import keras
    import tensorflow as tf

    try:
        m = _model(precision="mixed_float16")
        assert isinstance(m.module.g_opt, keras.optimizers.LossScaleOptimizer)
        assert m.module.gen.get_layer("down1_conv").compute_dtype == "float16"
        before = [w.numpy().copy() for w in m.module.gen.trainable_weights[:3]]
        scale0 = float(m.module.g_opt.dynamic_scale.numpy())
        photo, label = _fixed_batch()
        # The first steps may overflow at the initial scale: those are skipped and the scale halved.
        for _ in range(20):
            m.train_step((tf.constant(photo), tf.constant(label)))
            if any(not np.array_equal(a, w.numpy()) for a, w in zip(before, m.module.gen.trainable_weights[:3])):
                break
        else:
            raise AssertionError("no update in 20 steps")
        assert float(m.module.g_opt.dynamic_scale.numpy()) <= scale0
        assert np.isfinite(m.read_metrics()["g_seg"])
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ---- resume ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_resume_gives_the_same_model_as_one_run(demo_root, tmp_path):
    data = demo_root / "images_CGAN"
    kw = dict(deterministic=True, seed=7, sample_every=0)
    straight = cgan.train(_cfg(data, tmp_path / "straight", epochs=4, **kw))
    cgan.train(_cfg(data, tmp_path / "split", epochs=2, **kw))
    resumed = cgan.train(_cfg(data, tmp_path / "split", epochs=4, resume=True, **kw))
    assert [r["g_total"] for r in resumed.history] == [r["g_total"] for r in straight.history]
    test_a = data / "test" / "a"
    p1 = cgan.predict(tmp_path / "straight", test_a, tmp_path / "p1", checkpoint="last", progress=False)
    p2 = cgan.predict(tmp_path / "split", test_a, tmp_path / "p2", checkpoint="last", progress=False)
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(np.asarray(Image.open(a)), np.asarray(Image.open(b)))
    import tensorflow as tf
    w1 = tf.train.load_checkpoint(str(tmp_path / "straight" / "ckpt"))
    w2 = tf.train.load_checkpoint(str(tmp_path / "split" / "ckpt"))
    keys = [k for k in w1.get_variable_to_shape_map() if k.startswith(("generator/", "discriminator/", "g_opt/"))]
    assert len(keys) > 50
    for key in keys:
        np.testing.assert_array_equal(w1.get_tensor(key), w2.get_tensor(key), err_msg=key)


@pytest.mark.slow
def test_resume_after_sigkill(demo_root, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "cgan.py", "train", "--data", str(demo_root / "images_CGAN"), "--out", str(out),
           "--width", "0.25", "--batch", "2", "--sample-every", "0", "--quiet"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd + ["--epochs", "500"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 600
        while time.time() < deadline and not (out / "ckpt" / "checkpoint").is_file():
            time.sleep(0.1)
        time.sleep(0.7)   # well into a later epoch
        assert proc.poll() is None, "training ended before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    import tensorflow as tf
    done = int(tf.train.load_checkpoint(str(out / "ckpt")).get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))
    assert done >= 1
    r = subprocess.run(cmd + ["--epochs", str(done + 2), "--resume"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    epochs = [int(l.split(",")[0]) for l in (out / "log.csv").read_text().splitlines()[1:]]
    assert epochs == list(range(1, done + 3))
    assert f"epochs {done + 1}..{done + 2}" in r.stdout
    assert not [p for p in out.rglob("*.tmp*")]


def _train_stopped_at_save(demo_root, out, monkeypatch, stop, **kw) -> None:
    """A training that dies (KeyboardInterrupt) at the checkpoint save for which ``stop(steps saved so far)``
    holds; saving works normally again afterwards."""
    from landaug.harness.checkpoints import Checkpoints

    real_save, saves = Checkpoints.save, []

    def save(self, step):
        saves.append(step)
        if stop(saves):
            raise KeyboardInterrupt
        real_save(self, step)

    monkeypatch.setattr(Checkpoints, "save", save)
    with pytest.raises(KeyboardInterrupt):
        cgan.train(_cfg(demo_root / "images_CGAN", out, **kw))
    monkeypatch.setattr(Checkpoints, "save", real_save)


@pytest.mark.slow
def test_best_and_ckpt_agree_after_a_stop_between_their_saves(demo_root, tmp_path, monkeypatch):
    """The run dies at the second of the two saves of an improving evaluation; after the resume, whose
    evaluations never improve again, best/ holds the step recorded as the best, with its weights."""
    import importlib

    import tensorflow as tf

    train_module = importlib.import_module("landaug.cgan.train")

    scores = iter([0.1, 0.2, 0.0, 0.0])
    monkeypatch.setattr(train_module, "evaluate", lambda labeller, scenes: (next(scores), None, []))
    # evaluation 2 (step 4) improved: its second save never happens
    kw = dict(steps=4, eval_every=2, batch=2, sample_every=0)
    _train_stopped_at_save(demo_root, tmp_path / "m", monkeypatch, lambda saves: len(saves) == 4, **kw)
    result = cgan.train(_cfg(demo_root / "images_CGAN", tmp_path / "m", resume=True, **{**kw, "steps": 6}))
    best = tf.train.load_checkpoint(str(tmp_path / "m" / "best"))
    assert int(best.get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == result.best_step
    assert result.best_step == 4 and result.best_val_miou == pytest.approx(0.2)
    at_4 = tf.train.load_checkpoint(str(tmp_path / "m" / "ckpt" / "ckpt-4"))
    keys = [k for k in best.get_variable_to_shape_map() if k.startswith("generator/")
            and k in at_4.get_variable_to_shape_map()]
    assert len(keys) > 10
    for key in keys:
        np.testing.assert_array_equal(best.get_tensor(key), at_4.get_tensor(key), err_msg=key)


@pytest.mark.slow
def test_a_stop_at_a_checkpoint_leaves_the_log_without_gaps_or_repeats(demo_root, tmp_path, monkeypatch):
    """The run dies at the checkpoint of its second evaluation, after that evaluation's row: the resume
    starts from the first checkpoint, drops the row it is about to redo, and the log holds every
    evaluation once."""
    kw = dict(steps=4, eval_every=2, batch=2, sample_every=0)
    _train_stopped_at_save(demo_root, tmp_path / "m", monkeypatch, lambda saves: saves[-1] == 4, **kw)
    log = tmp_path / "m" / "log.csv"
    assert [r.split(",")[1] for r in log.read_text().splitlines()[1:]] == ["2", "4"]
    cgan.train(_cfg(demo_root / "images_CGAN", tmp_path / "m", resume=True, **{**kw, "steps": 6}))
    assert [r.split(",")[1] for r in log.read_text().splitlines()[1:]] == ["2", "4", "6"]


def test_copy_paste_takes_regions_from_real_pairs_only(demo_root, tmp_path):
    """--extra pairs appended to the real ones (--synthetic-share 0) train, but are never cut for pasting."""
    from landaug.cgan.data import training_data
    from landaug.cgan.train import copypaste_bank

    extra = tmp_path / "extra"
    shutil.copytree(demo_root / "images_CGAN" / "test", extra)
    cfg = cgan.resolve(_cfg(demo_root / "images_CGAN", tmp_path / "m", extra=[extra], copypaste_p=0.5))
    data = training_data(cfg, SPARCS)
    assert data.appended and len(data.pools) == 1 and len(data.pools[0]) == len(data.train) + len(data.synthetic)
    bank = copypaste_bank(cfg, data, len(SPARCS))
    sources = {c.scene for c in bank.components}
    assert sources and sources <= set(data.train_scenes)
    assert not sources & {p.stem for p in (extra / "a").iterdir()}


# ---- bad input: exit code 2, one line ---------------------------------------------------------------

def _copy_data(demo_root: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(demo_root / "images_CGAN", data)
    return data


def _train_args(data, out, *more):
    return ["train", "--data", str(data), "--out", str(out), "--epochs", "1", "--width", "0.25", "--quiet", *more]


def test_bad_training_folders(demo_root, tmp_path, capsys):
    data = _copy_data(demo_root, tmp_path)
    for p in (data / "train" / "b").iterdir():
        p.unlink()
    code, cap = _run_cli(_train_args(data, tmp_path / "o"), capsys)
    assert code == 2 and "has no label with the same name" in _one_error_line(cap.err)

    for p in (data / "train" / "a").iterdir():
        p.unlink()
    code, cap = _run_cli(_train_args(data, tmp_path / "o"), capsys)
    assert code == 2 and "no photos" in _one_error_line(cap.err)

    code, cap = _run_cli(_train_args(tmp_path / "missing", tmp_path / "o"), capsys)
    assert code == 2 and "does not exist" in _one_error_line(cap.err)
    code, cap = _run_cli(_train_args(demo_root / "images_CGAN", tmp_path / "o", "--extra", str(tmp_path)), capsys)
    assert code == 2 and "has no a/ folder" in _one_error_line(cap.err)
    assert not (tmp_path / "o").exists()


def test_label_value_outside_the_registry(demo_root, tmp_path, capsys):
    data = _copy_data(demo_root, tmp_path)
    bad = sorted((data / "train" / "b").iterdir())[3]
    lab = read_label(bad, SPARCS).copy()
    lab[0, 0] = 9
    Image.fromarray(lab, "L").save(bad)
    code, cap = _run_cli(_train_args(data, tmp_path / "o"), capsys)
    line = _one_error_line(cap.err)
    assert code == 2 and bad.name in line and "[9]" in line
    assert not (tmp_path / "o").exists()


def test_pairs_of_several_sizes_are_refused(demo_root, tmp_path, capsys):
    data = _copy_data(demo_root, tmp_path)
    stem = sorted((data / "train" / "a").iterdir())[0].name
    photo = read_image(data / "train" / "a" / stem)
    write_image(data / "train" / "a" / stem, np.asarray(Image.fromarray(photo).resize((64, 64))))
    lab = read_label(data / "train" / "b" / stem, SPARCS)
    write_label(data / "train" / "b" / stem, np.repeat(np.repeat(lab, 2, 0), 2, 1), SPARCS)
    code, cap = _run_cli(_train_args(data, tmp_path / "o", "--size", "32", "--val-fraction", "0"), capsys)
    line = _one_error_line(cap.err)
    assert code == 2 and "training pairs of 2 sizes (10 of 32x32, 1 of 64x64)" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_pairs_of_another_size_are_resized_and_the_model_records_their_true_scale(demo_root, tmp_path, capsys):
    """32 px tiles at scale 1 trained at --size 16: resized with a warning, and the model labels photos at
    scale 0.5, the resolution it learned from."""
    from landaug.files import write_json

    data = _copy_data(demo_root, tmp_path)
    write_json(data / "config.json", {"mode": "tile", "scale": 1.0})
    code, cap = _run_cli(_train_args(data, tmp_path / "o", "--size", "16", "--sample-every", "0"), capsys)
    assert code == 0 and "training pairs are not 16x16" in cap.err
    desc = json.loads((tmp_path / "o" / "model.json").read_text())
    assert (desc["scale"], desc["fit"]) == (0.5, None)
    assert json.loads((tmp_path / "o" / "config.json").read_text())["scale"] == 0.5


def test_bad_model_folders(trained, demo_root, tmp_path, capsys):
    images = str(demo_root / "images_CGAN" / "test" / "a")
    code, cap = _run_cli(["predict", "--model", str(tmp_path / "nope"), "--images", images], capsys)
    assert code == 2 and "model folder does not exist" in _one_error_line(cap.err)
    (tmp_path / "empty").mkdir()
    code, cap = _run_cli(["predict", "--model", str(tmp_path / "empty"), "--images", images], capsys)
    assert code == 2 and "not a cgan.py model folder" in _one_error_line(cap.err)
    shutil.copy(trained[0] / "model.json", tmp_path / "empty" / "model.json")
    code, cap = _run_cli(["label", "--model", str(tmp_path / "empty"), "--images", images], capsys)
    assert code == 2 and "holds no best checkpoint" in _one_error_line(cap.err)
    code, cap = _run_cli(["predict", "--model", str(trained[0]), "--images", str(tmp_path / "empty")], capsys)
    assert code == 2 and "no images (png, jpg, tif) for --images" in _one_error_line(cap.err)


def test_resume_refusals(trained, demo_root, tmp_path, capsys):
    out = trained[0]
    data = demo_root / "images_CGAN"
    code, cap = _run_cli(_train_args(data, out, "--epochs", "3", "--resume", "--width", "0.5"), capsys)
    line = _one_error_line(cap.err)
    assert code == 2 and "--width 0.5 contradicts the checkpoint" in line and "--width 0.25" in line
    code, cap = _run_cli(_train_args(data, out, "--epochs", "3", "--resume", "--augment", "dihedral"), capsys)
    assert code == 2 and "--augment dihedral contradicts" in _one_error_line(cap.err)
    code, cap = _run_cli(_train_args(data, out), capsys)
    assert code == 2 and "already holds a training checkpoint" in _one_error_line(cap.err)
    code, cap = _run_cli(_train_args(data, tmp_path / "fresh", "--resume"), capsys)
    assert code == 2 and "holds no checkpoint to resume" in _one_error_line(cap.err)
    # the validation overlap changes which checkpoint is best: locked like the options that shape the model
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    code, cap = _run_cli(_train_args(data, copy, "--epochs", "3", "--resume", "--overlap", "0.5"), capsys)
    assert code == 2 and "--overlap 0.5 contradicts the checkpoint" in _one_error_line(cap.err)
    # a run that counts steps: --epochs would be ignored, so it is refused
    stored = json.loads((copy / "config.json").read_text())
    stored["config"]["steps"] = 4
    (copy / "config.json").write_text(json.dumps(stored))
    code, cap = _run_cli(_train_args(data, copy, "--epochs", "3", "--resume"), capsys)
    assert code == 2 and "--epochs has no effect" in _one_error_line(cap.err) and "--steps 4" in cap.err
    code, cap = _run_cli(_train_args(data, tmp_path / "both", "--steps", "4"), capsys)
    assert code == 2 and "give one of them" in _one_error_line(cap.err)
    assert (copy / "ckpt").is_dir() and not (tmp_path / "both").exists()


@pytest.mark.parametrize("args,message", [
    (["--size", "48"], "--size must be a power of two"),
    (["--width", "0"], "--width must be in (0, 4]"),
    (["--val-fraction", "1"], "--val-fraction must be in [0, 1)"),
    (["--augment", "rotate"], "--augment 'rotate' is unknown"),
    (["--batch", "64"], "--batch 64 is larger than the"),
    (["--target", "rgb", "--class-weights", "auto"], "--class-weights needs --target classes"),
    (["--precision", "half"], "invalid choice: 'half'"),
    (["--cpu-devices", "2"], "add --strategy mirrored"),
])
def test_bad_options(demo_root, tmp_path, capsys, args, message):
    code, cap = _run_cli(_train_args(demo_root / "images_CGAN", tmp_path / "o", *args), capsys)
    assert code == 2 and message in _one_error_line(cap.err)
    assert not (tmp_path / "o").exists()


def test_bad_label_options(trained, demo_root, tmp_path, capsys):
    code, cap = _run_cli(["label", "--model", str(trained[0]), "--images", str(demo_root / "images"),
                          "--out", str(tmp_path / "l"), "--min-confidence", "2"], capsys)
    assert code == 2 and "--min-confidence must be in (0, 1]" in _one_error_line(cap.err)


def test_export_savedmodel_gives_the_keras_models_probabilities(trained, tmp_path, capsys):
    import tensorflow as tf

    model, out = trained[0], tmp_path / "exported"
    code, cap = _run_cli(["export", "--model", str(model), "--format", "savedmodel", "--out", str(out)], capsys)
    assert code == 0, cap.err
    labeller = cgan.SceneLabeller.load(model, precision="float32")
    x = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    want = labeller.fn(tf.constant(x)).numpy()
    loaded = tf.saved_model.load(str(out))
    got = loaded.signatures["serving_default"](windows=tf.constant(x))["probabilities"].numpy()
    assert got.shape == (3, 32, 32, len(SPARCS)) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-5)
    side = json.loads((out / "landaug.json").read_text())
    desc = json.loads((model / "model.json").read_text())
    assert side["size"] == desc["size"] == 32 and side["classes"] == desc["classes"]
    assert (side["scale"], side["fit"], side["bands"]["count"]) == (desc["scale"], desc.get("fit"), 3)
    assert side["normalisation"]["kind"] == "x / 127.5 - 1"
    assert side["signature"]["input"] == {"name": "windows", "dtype": "float32", "shape": [None, 32, 32, 3]}
    # an export never writes into a folder that holds something
    code, cap = _run_cli(["export", "--model", str(model), "--out", str(out)], capsys)
    assert code == 2 and "is not empty" in _one_error_line(cap.err)


@needs_half_precision_kernels
def test_predict_computes_the_logits_layer_at_the_compute_precision_and_compiles_only_the_decoder(trained):
    """The trained weights, the logits layer at bfloat16 under mixed precision (float32 otherwise), the
    convolutions' weights cast once, the softmax in float32 by XLA: the same probabilities as the plain
    graph of the mixed-precision network, close to the float32 network's."""
    import keras
    import tensorflow as tf

    from landaug.cgan.model import build_labeller

    model = trained[0]
    desc = json.loads((model / "model.json").read_text())
    x = tf.constant(np.random.default_rng(1).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32))
    exact = cgan.SceneLabeller.load(model, precision="float32")
    assert exact.gen.get_layer("head").compute_dtype == "float32"
    want = exact.fn(x).numpy()
    np.testing.assert_allclose(exact.forward(x).numpy(), want, atol=1e-6)
    try:
        mixed = cgan.SceneLabeller.load(model, precision="mixed_bfloat16")
        head, bn = mixed.gen.get_layer("head"), mixed.gen.get_layer("down2_bn")
        assert head.compute_dtype == "bfloat16" and head.kernel.dtype == "bfloat16"
        assert {v.dtype for v in bn.weights} == {"float32"}
        # the same network holding float32 weights, cast at every pass: the same outputs, bit for bit
        cast_each_pass = build_labeller(32, desc["width"], "classes", len(SPARCS), dropout=desc["dropout"],
                                        inference=True)
        cast_each_pass.set_weights(exact.gen.get_weights())
        assert np.array_equal(cast_each_pass(x, training=False).numpy(), mixed.gen(x, training=False).numpy())
        got = mixed.forward(x).numpy()
        np.testing.assert_allclose(got, mixed.fn(x).numpy(), atol=1e-6)
        as_trained = cgan.SceneLabeller.load(model, precision="mixed_bfloat16", as_trained=True)
        assert as_trained.gen.get_layer("head").compute_dtype == "float32" and as_trained.forward is as_trained.fn
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert got.dtype == np.float32 and np.allclose(got.sum(-1), 1.0, atol=1e-5)
    # bfloat16 throughout the network: probabilities within a few hundredths of the float32 network's
    assert np.abs(got - want).max() < 0.05 and not np.array_equal(got, want)


def test_script_reports_one_line_and_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "cgan.py", "predict", "--model", str(tmp_path / "nope"),
                        "--images", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    assert r.stderr.strip() == f"cgan.py: error: {tmp_path / 'nope'}: model folder does not exist " \
                               "(train one with cgan.py train --out DIR)"
    r = subprocess.run([sys.executable, "cgan.py", "fly"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1


# ---- real scenes ----------------------------------------------------------------------------------

def test_sparcs_scenes_train_and_predict(sparcs_dir, tmp_path):
    """A few SPARCS scenes shrunk to 64 px to train on; a held-out scene labelled whole at its native
    1000 px, at the training scale, and scored against its original mask."""
    from landaug.evaluate import evaluate_sets
    from landaug.files import write_json
    from landaug.metrics import confusion_matrix, mean_iou

    scenes = sorted(p.name[: -len("_photo.png")] for p in sparcs_dir.glob("*_photo.png"))[:6]
    data = tmp_path / "sparcs64"
    for s in scenes[:5]:
        photo = Image.fromarray(read_image(sparcs_dir / f"{s}_photo.png")).resize((64, 64), Image.Resampling.BOX)
        mask = read_label(sparcs_dir / f"{s}_mask.png", SPARCS, allow_ignore=True)
        write_image(data / "train" / "a" / f"{s}.png", np.asarray(photo))
        write_label(data / "train" / "b" / f"{s}.png",
                    np.asarray(Image.fromarray(mask, "L").resize((64, 64), Image.Resampling.NEAREST)), SPARCS)
    write_json(data / "config.json", {"scale": 64 / 1000})
    for sub in ("a", "b"):
        (data / "test" / sub).mkdir(parents=True)
    (data / "test" / "a" / f"{scenes[5]}.png").symlink_to(sparcs_dir / f"{scenes[5]}_photo.png")
    (data / "test" / "b" / f"{scenes[5]}.png").symlink_to(sparcs_dir / f"{scenes[5]}_mask.png")
    result = cgan.train(_cfg(data, tmp_path / "m", epochs=2, batch=2, val_fraction=0.2, sample_every=0))
    assert json.loads((tmp_path / "m" / "model.json").read_text())["scale"] == pytest.approx(0.064)
    assert result.best_val_miou == pytest.approx(max(float(r["val_miou"]) for r in result.history), abs=1e-6)
    [pred] = cgan.predict(tmp_path / "m", data / "test" / "a", tmp_path / "pred", progress=False)
    truth = read_label(data / "test" / "b" / f"{scenes[5]}.png", SPARCS, allow_ignore=True)
    label = read_label(pred, SPARCS)
    assert label.shape == truth.shape == (1000, 1000)
    miou = float(mean_iou(confusion_matrix(truth, label, len(SPARCS))))
    report = evaluate_sets(data / "test" / "b", {"m": [tmp_path / "pred"]}, SPARCS, n_resamples=0)
    assert report["sets"]["m"]["mean_iou"] == pytest.approx(miou)
