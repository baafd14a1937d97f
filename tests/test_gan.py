"""gan.py: training step, resume equivalence, paired generation, quality scores, bad inputs."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from landaug import quality
from landaug.errors import UserError
from landaug.gan import (GenerateConfig, TrainConfig, build_trainer, generate, latents, load_scenes, train,
                         trainer_batches, validate)
from landaug.classes import load_registry
from landaug.imgio import list_images, pair_by_stem, read_image, read_label

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(width=16, latent_dim=16, batch=4, sample_every=2, score_every=0, log_every=2, checkpoint_every=2,
             progress=False, precision="float32")


@pytest.fixture(autouse=True)
def _restore_tf_globals():
    """Training sets the global precision policy and op determinism: leave both as other tests expect."""
    yield
    import keras
    from tensorflow.python.framework import config as tf_config

    keras.mixed_precision.set_global_policy("float32")
    tf_config.disable_op_determinism()


def _digest(paths):
    return [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]


def _run(args, **kw):
    return subprocess.run([sys.executable, "gan.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, **kw)


# --- training ----------------------------------------------------------------------------------------

def test_one_step_changes_both_networks(demo_root, tmp_path):
    cfg = TrainConfig(images=demo_root / "images", out=tmp_path / "m", steps=1, diffaugment="color,translation,cutout",
                      **SMALL)
    plan = validate(cfg)
    photos, _ = load_scenes(plan)
    t = build_trainer(cfg, plan, photos)
    nets = (("G", t.module.G), ("D", t.module.D), ("E", t.module.E))
    before = {n: [w.numpy().copy() for w in m.trainable_weights] for n, m in nets}
    t.train_step(next(iter(trainer_batches(t, cfg, 0))))
    for name, model in nets:
        changed = [not np.array_equal(a, w.numpy()) for a, w in zip(before[name], model.trainable_weights)]
        assert all(changed), f"{name}: {changed.count(False)} weights did not move"
    m = t.read_metrics()
    assert int(t.step.numpy()) == 1 and np.isfinite(list(m.values())).all()


@pytest.mark.slow
def test_resume_equals_uninterrupted_training(demo_root, tmp_path):
    common = dict(images=demo_root / "images", deterministic=True, diffaugment="translation,cutout", **SMALL)
    common["precision"] = "auto"  # the default path (mixed bfloat16 where the CPU has it)
    full = train(TrainConfig(out=tmp_path / "full", steps=4, **common))
    train(TrainConfig(out=tmp_path / "half", steps=2, **common))
    resumed = train(TrainConfig(out=tmp_path / "half", steps=4, resume=True, **common))
    assert full["step"] == resumed["step"] == 4
    a = generate(GenerateConfig(model=tmp_path / "full", n=3, out=tmp_path / "ga", progress=False))
    b = generate(GenerateConfig(model=tmp_path / "half", n=3, out=tmp_path / "gb", progress=False))
    assert [p.name for p in a] == [p.name for p in b]
    assert _digest(a) == _digest(b)
    rows = lambda d: [r.split(",")[:5] for r in (tmp_path / d / "losses.csv").read_text().splitlines()]  # noqa: E731
    assert rows("full") == rows("half")
    out = tmp_path / "full"
    for f in ("config.json", "samples/samples_000002.png", "samples/samples_000004.png", "scores.csv",
              "training.png", "nearest.png", "checkpoints/checkpoint"):
        assert (out / f).is_file(), f
    assert list((out / "logs").glob("events.out.tfevents.*"))
    # A resume that contradicts a stored option is refused and names it.
    with pytest.raises(UserError, match="--width"):
        train(TrainConfig(out=tmp_path / "half", steps=6, resume=True, **{**common, "width": 32}))
    with pytest.raises(UserError, match="--resume"):
        train(TrainConfig(out=tmp_path / "full", steps=6, **common))


def test_paired_generation_writes_valid_labels(demo_root, tmp_path):
    pairs = demo_root / "images_CGAN" / "train"
    res = train(TrainConfig(with_labels=pairs, out=tmp_path / "m", steps=2, diffaugment="color,translation", **SMALL))
    # The class-mix score is the distance between the training labels' class frequencies and the samples'.
    import json

    real = json.loads((tmp_path / "m" / "label_frequencies.json").read_text())["frequencies"]
    counts = np.bincount(np.concatenate([read_label(b, load_registry(pairs.parent / "classes.json")).ravel()
                                         for b in list_images(pairs / "b")]), minlength=7)
    np.testing.assert_array_equal(real, counts)
    assert 0.0 < res["score"]["class_mix"] <= 1.0
    gen = tmp_path / "gen"
    written = generate(GenerateConfig(model=tmp_path / "m", n=3, out=gen, seed=7, progress=False))
    assert len(written) == 3 and all(p.parent == gen / "a" for p in written)

    reg = load_registry(gen / "classes.json")
    assert reg.names == load_registry(demo_root / "images_CGAN" / "classes.json").names
    matched = pair_by_stem(gen / "a", gen / "b")
    assert len(matched) == 3
    for stem, a, b in matched:
        assert "s7" in stem
        label = read_label(b, reg)
        assert label.shape == read_image(a).shape[:2] and label.max() < len(reg)
    # Repeating the run never overwrites; --skip-existing adds only what is missing, identically.
    with pytest.raises(UserError, match="exists"):
        generate(GenerateConfig(model=tmp_path / "m", n=3, out=gen, seed=7, progress=False))
    before = _digest(list_images(gen / "a"))
    more = generate(GenerateConfig(model=tmp_path / "m", n=4, out=gen, seed=7, skip_existing=True, progress=False))
    assert [p.name for p in more] == ["gan_s7_00003.png"]
    assert _digest(list_images(gen / "a"))[:3] == before
    other = generate(GenerateConfig(model=tmp_path / "m", n=2, out=gen, seed=8, progress=False))
    assert _digest(other) != before[:2]


@pytest.mark.slow
def test_sigkill_mid_training_resumes(demo_root, tmp_path):
    out = tmp_path / "m"
    args = ["train", "--images", str(demo_root / "images"), "--out", str(out), "--width", "16", "--latent-dim", "16",
            "--batch", "4", "--checkpoint-every", "3", "--sample-every", "0", "--score-every", "0",
            "--log-every", "1", "--precision", "float32", "--quiet"]
    proc = subprocess.Popen([sys.executable, "gan.py", *args, "--steps", "100000"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        deadline = time.time() + 600
        # The state file names a checkpoint only once that checkpoint is complete.
        while not (out / "checkpoints" / "checkpoint").is_file() and time.time() < deadline:
            assert proc.poll() is None, "training stopped before its first checkpoint"
            time.sleep(0.2)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    import tensorflow as tf

    last = int(Path(tf.train.latest_checkpoint(str(out / "checkpoints"))).name.split("-")[1])
    assert last >= 3 and last % 3 == 0
    r = _run([*args, "--steps", str(last + 2), "--resume"], timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert Path(tf.train.latest_checkpoint(str(out / "checkpoints"))).name == f"ckpt-{last + 2}"
    steps = [int(line.split(",")[0]) for line in (out / "losses.csv").read_text().splitlines()[1:]]
    assert steps == list(range(1, last + 3))


# --- generation details ------------------------------------------------------------------------------

def test_latents_depend_on_seed_and_index_only():
    a = latents(3, range(5), 8)
    np.testing.assert_array_equal(a[2:4], latents(3, [2, 3], 8))
    assert not np.array_equal(a, latents(4, range(5), 8))
    t = latents(3, range(50), 8, truncation=0.5)
    assert np.abs(t).max() <= 0.5


# --- quality -----------------------------------------------------------------------------------------

def _smooth_scenes(n, size, seed):
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    x = np.stack([gaussian_filter(rng.random((size, size, 3)), (2, 2, 0)) for _ in range(n)])
    return np.clip((x - x.mean()) * 900 + 128, 0, 255).astype(np.uint8)


def test_swd_is_zero_for_identical_sets_and_grows_with_noise():
    real = _smooth_scenes(12, 32, 0)
    assert quality.swd(real, real)["mean"] == pytest.approx(0.0, abs=1e-6)
    rng = np.random.default_rng(1)
    values = []
    for sigma in (4, 16, 48):
        noisy = np.clip(real + rng.normal(0, sigma, real.shape), 0, 255).astype(np.uint8)
        values.append(quality.swd(real, noisy, seed=0)["mean"])
    assert values[0] > 1.0 and values == sorted(values)
    assert quality.swd(real, noisy, seed=5) == quality.swd(real, noisy, seed=5)


def test_histogram_and_nearest_real_detect_copies():
    real = _smooth_scenes(10, 32, 2)
    assert quality.histogram_distance(real, real)["mean"] == 0.0
    assert quality.histogram_distance(real, np.clip(real.astype(int) + 40, 0, 255).astype(np.uint8))["mean"] > 0.05
    copies = np.stack([real[3][::-1], real[5].transpose(1, 0, 2)])
    nn = quality.nearest_real(copies, real)
    assert nn["index"] == [3, 5] and max(nn["distance"]) < 1e-3 and nn["ratio"] < 0.01
    fresh = quality.nearest_real(_smooth_scenes(4, 32, 9), real)
    assert fresh["ratio"] > 0.5


def test_frechet_distance_of_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (2000, 4))
    assert quality.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)
    assert quality.frechet_distance(a, a + 2.0) == pytest.approx(16.0, rel=0.05)


# --- bad input ---------------------------------------------------------------------------------------

def _bad_cases(demo_root: Path, tmp: Path):
    from PIL import Image

    (tmp / "empty").mkdir()
    mixed = tmp / "mixed"
    mixed.mkdir()
    for i, s in enumerate((32, 32, 64)):
        Image.new("RGB", (s, s)).save(mixed / f"s{i}.png")
    pairs = tmp / "pairs"
    for sub in ("a", "b"):
        (pairs / sub).mkdir(parents=True)
    src = demo_root / "images_CGAN" / "train"
    for p in list_images(src / "a")[:3]:
        (pairs / "a" / p.name).write_bytes(p.read_bytes())
    for p in list_images(src / "b")[1:3]:
        (pairs / "b" / p.name).write_bytes(p.read_bytes())
    (tmp / "nomodel").mkdir()
    out = str(tmp / "out")
    return [
        (["train", "--images", str(tmp / "empty"), "--out", out], "no images"),
        (["train", "--images", str(mixed), "--out", out], "mixed sizes: 32x32 (2: s0.png, s1.png); 64x64 (1: s2.png)"),
        (["train", "--with-labels", str(pairs), "--out", out], "has no mask"),
        (["generate", "--model", str(tmp / "nomodel"), "--out", out], "no checkpoint"),
        (["score", "--model", str(tmp / "nomodel"), "--images", str(demo_root / "images")], "no checkpoint"),
        (["generate", "--model", str(tmp / "nomodel"), "--n", "0", "--out", out], "--n must be > 0"),
        (["train", "--images", str(demo_root / "images"), "--size", "48", "--out", out], "not a power of two"),
    ]


def test_bad_inputs_exit_2_with_one_line(demo_root, tmp_path):
    for args, expected in _bad_cases(demo_root, tmp_path):
        r = _run(args, timeout=300)
        assert r.returncode == 2, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("gan.py: error: "), r.stderr
        assert expected in lines[0], lines[0]
        assert not (tmp_path / "out").exists(), args


MIRRORED_SCRIPT = """
import sys
from pathlib import Path
import numpy as np
import tensorflow as tf
from landaug.gan import TrainConfig, train
images, out = Path(sys.argv[1]), Path(sys.argv[2])
common = dict(images=images, steps=2, width=16, latent_dim=16, batch=4, sample_every=0, score_every=0,
              log_every=1, progress=False, precision="float32", diffaugment="color,translation,cutout")
# Logical devices must exist before anything else touches TensorFlow: the two-replica run goes first.
train(TrainConfig(out=out / "two", strategy="mirrored", cpu_devices=2, **common))
train(TrainConfig(out=out / "one", **common))
a = tf.train.load_checkpoint(str(out / "one" / "checkpoints"))
b = tf.train.load_checkpoint(str(out / "two" / "checkpoints"))
names = [n for n, _ in tf.train.list_variables(str(out / "one" / "checkpoints")) if "generator" in n]
diff = max(float(np.abs(a.get_tensor(n) - b.get_tensor(n)).max()) for n in names
           if a.get_tensor(n).dtype.kind == "f")
print(len(names), diff)
"""


@pytest.mark.slow
def test_two_replicas_match_one_device(demo_root, tmp_path):
    r = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(demo_root / "images"), str(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)})
    assert r.returncode == 0, r.stderr[-2000:]
    n, diff = r.stdout.split()[-2:]
    assert int(n) > 20 and float(diff) < 1e-4


# --- losses, DiffAugment and the moving average, against hand computations ---------------------------

def test_both_losses_on_known_logits():
    import tensorflow as tf

    from landaug.gan.model import losses

    r, f = tf.constant([[2.0], [-0.5]]), tf.constant([[0.3], [-1.0]])
    d, g = losses("nonsaturating", r, f)
    sp = lambda x: np.log1p(np.exp(x))  # noqa: E731
    np.testing.assert_allclose(d.numpy(), [sp(-2.0) + sp(0.3), sp(0.5) + sp(-1.0)], rtol=1e-6)
    np.testing.assert_allclose(g.numpy(), [sp(-0.3), sp(1.0)], rtol=1e-6)
    d, g = losses("hinge", r, f)
    np.testing.assert_allclose(d.numpy(), [max(0, 1 - 2.0) + max(0, 1 + 0.3), max(0, 1.5) + max(0, 0.0)])
    np.testing.assert_allclose(g.numpy(), [-0.3, 1.0])


def test_diffaugment_reaches_real_and_fake_and_the_generator_step(demo_root, tmp_path):
    """Every discriminator input, real or generated, in both updates, goes through DiffAugment."""
    cfg = TrainConfig(images=demo_root / "images", out=tmp_path / "m", steps=1, diffaugment="translation", **SMALL)
    plan = validate(cfg)
    photos, _ = load_scenes(plan)
    t = build_trainer(cfg, plan, photos)
    seen = []
    original = t.module.augment

    def spy(x, u):
        seen.append(x)
        return original(x, u)

    t.module.augment = spy
    t.module.replica_step(next(iter(trainer_batches(t, cfg, 0))), t.rng.make_seeds(8))
    # discriminator update: real and fake; generator update: fake
    assert len(seen) == 3
    real = t.module.real_scenes(next(iter(trainer_batches(t, cfg, 0)))[0])
    np.testing.assert_allclose(seen[0].numpy(), real.numpy())


def test_moving_average_update_and_warm_up(demo_root, tmp_path):
    import tensorflow as tf

    from landaug.gan.model import ema_decay

    assert float(ema_decay(0.999, 0)) == pytest.approx(0.1)
    assert float(ema_decay(0.999, 10)) == pytest.approx(11 / 20)
    assert float(ema_decay(0.999, 100000)) == pytest.approx(0.999)
    cfg = TrainConfig(images=demo_root / "images", out=tmp_path / "m", steps=1, **SMALL)
    plan = validate(cfg)
    t = build_trainer(cfg, plan, load_scenes(plan)[0])
    e0 = [w.numpy().copy() for w in t.module.E.weights]
    for w in t.module.G.weights:
        w.assign(w + 1.0)
    g = [w.numpy().copy() for w in t.module.G.weights]
    t.module.after_step(tf.constant(5, tf.int64))
    d = 6 / 15
    for e, a, b in zip(t.module.E.weights, e0, g):
        np.testing.assert_allclose(e.numpy(), d * a + (1 - d) * b, rtol=1e-5, atol=1e-6)


def test_score_report_flags_only_a_low_nearest_ratio():
    from landaug.gan.generate import format_score

    report = {"swd": {"mean": 80.0, "levels": {64: 40.0, 32: 120.0}},
              "histogram": {"mean": 0.1, "red": 0.1, "green": 0.1, "blue": 0.1},
              "nearest": {"median_distance": 0.34, "real_median_distance": 0.25, "ratio": 1.36}}
    assert "well below 1" not in format_score(report) and "ratio 1.36)" in format_score(report)
    report["nearest"].update(median_distance=0.05, ratio=0.2)
    assert "ratio 0.20; well below 1: samples copy training scenes" in format_score(report)
