"""The labeller's options: unet without a discriminator, the pixel losses, the cosine schedule, resize-convolution
upsampling, flip TTA, and their checks on the command line and through the pipeline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from landaug import cgan
from landaug.classes import SPARCS
from landaug.errors import cli_main
from landaug.harness.schedule import learning_rate, rate_at, warmup_steps


def _tf():
    import tensorflow as tf
    return tf


def _loss(kind, p1, labels, valid=None, weights=(1.0, 1.0)):
    """A 2-class loss from class-1 probabilities ``p1`` (H, W) and labels (H, W), as one image."""
    from landaug.cgan import losses

    tf = _tf()
    p1 = np.asarray(p1, np.float64)
    logits = np.log(np.stack([1 - p1, p1], -1))[None].astype(np.float32)   # softmax(logits) == (1 - p1, p1)
    valid = np.ones(p1.shape, np.float32) if valid is None else np.asarray(valid, np.float32)
    fn = {"lovasz": losses.lovasz_softmax, "dice": losses.dice, "ce": losses.cross_entropy}[kind]
    out = fn(tf.constant(logits), tf.constant(np.asarray(labels, np.int32)[None]), tf.constant(valid[None]),
             tf.constant(np.asarray(weights, np.float32)))
    return float(out.numpy()[0])


# Four pixels: truth 1, 1, 0, 0; the model gives class 1 the probabilities 0.9, 0.4, 0.3, 0.2.
TOY_LABELS = [[1, 1], [0, 0]]
TOY_P1 = [[0.9, 0.4], [0.3, 0.2]]
# Lovász, by hand. Class 1: errors |y - p| = 0.1, 0.6, 0.3, 0.2, sorted 0.6 (y 1), 0.3 (0), 0.2 (0), 0.1 (1);
# Jaccard loss after each: 1 - 1/2, 1 - 1/3, 1 - 1/4, 1 - 0/4 -> weights 1/2, 1/6, 1/12, 1/4 -> 0.391667.
# Class 0: the same errors, sorted 0.6 (y 0), 0.3 (1), 0.2 (1), 0.1 (0); Jaccard loss 1 - 2/3, 1 - 1/3, 1, 1
# -> weights 1/3, 1/3, 1/3, 0 -> 0.366667. Mean 0.379167; with weights (1, 3): (0.366667 + 3 x 0.391667) / 4.
LOVASZ_1, LOVASZ_0 = 0.3 + 0.05 + 0.2 / 12 + 0.025, (0.6 + 0.3 + 0.2) / 3
# Dice, by hand. Class 1: 2 x 1.3 / (1.8 + 2) = 0.684211; class 0: 2 x 1.5 / (2.2 + 2) = 0.714286.
DICE_1, DICE_0 = 1 - 2.6 / 3.8, 1 - 3.0 / 4.2


def test_lovasz_softmax_on_a_two_class_toy_by_hand():
    assert _loss("lovasz", TOY_P1, TOY_LABELS) == pytest.approx((LOVASZ_0 + LOVASZ_1) / 2, abs=1e-5)
    # class weights weigh each present class's term: (w0 L0 + w1 L1) / (w0 + w1)
    assert _loss("lovasz", TOY_P1, TOY_LABELS, weights=(1, 3)) == pytest.approx((LOVASZ_0 + 3 * LOVASZ_1) / 4, abs=1e-5)
    # a perfect prediction costs ~0, a class missing from the truth adds nothing
    assert _loss("lovasz", [[1 - 1e-6, 1 - 1e-6], [1e-6, 1e-6]], TOY_LABELS) < 1e-5
    assert _loss("lovasz", [[0.2, 0.4], [0.3, 0.1]], [[0, 0], [0, 0]]) == pytest.approx(0.25, abs=1e-5)


def test_dice_on_a_two_class_toy_by_hand():
    assert _loss("dice", TOY_P1, TOY_LABELS) == pytest.approx((DICE_0 + DICE_1) / 2, abs=1e-5)
    assert _loss("dice", TOY_P1, TOY_LABELS, weights=(1, 3)) == pytest.approx((DICE_0 + 3 * DICE_1) / 4, abs=1e-5)
    assert _loss("dice", [[1 - 1e-6, 1 - 1e-6], [1e-6, 1e-6]], TOY_LABELS) < 1e-5


@pytest.mark.parametrize("kind", ["lovasz", "dice"])
def test_ignored_pixels_change_nothing(kind):
    # A third column of ignored pixels, confidently wrong, with any label: the same value as the toy alone.
    p1 = [[0.9, 0.4, 0.99], [0.3, 0.2, 0.01]]
    labels = [[1, 1, 0], [0, 0, 1]]
    valid = [[1, 1, 0], [1, 1, 0]]
    assert _loss(kind, p1, labels, valid) == pytest.approx(_loss(kind, TOY_P1, TOY_LABELS), abs=1e-6)
    # with every pixel ignored there is nothing to learn from
    assert _loss(kind, p1, labels, np.zeros((2, 3))) == 0.0


def test_combined_losses_add_cross_entropy_and_the_second_term():
    from landaug.cgan import losses

    tf = _tf()
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(2, 8, 8, 7)).astype(np.float32))
    safe = tf.constant(rng.integers(0, 7, (2, 8, 8)).astype(np.int32))
    valid = tf.constant((rng.random((2, 8, 8)) > 0.2).astype(np.float32))
    w = tf.constant(np.linspace(0.5, 2.0, 7).astype(np.float32))
    ce = losses.cross_entropy(logits, safe, valid, w).numpy()
    np.testing.assert_allclose(losses.pixel_loss("ce", logits, safe, valid, w).numpy(), ce)
    np.testing.assert_allclose(losses.pixel_loss("ce+dice", logits, safe, valid, w).numpy(),
                               ce + losses.dice(logits, safe, valid, w).numpy(), rtol=1e-6)
    np.testing.assert_allclose(losses.pixel_loss("ce+lovasz", logits, safe, valid, w).numpy(),
                               ce + losses.lovasz_softmax(logits, safe, valid, w).numpy(), rtol=1e-6)


# ---- the learning-rate schedule ---------------------------------------------------------------------

def test_cosine_schedule_values():
    lr, total = 2e-4, 100
    w = warmup_steps(total)
    assert w == 5 and warmup_steps(1280) == 64 and warmup_steps(10) == 1
    assert rate_at("cosine", lr, total, 1) == pytest.approx(lr / 5)            # warm-up start
    assert rate_at("cosine", lr, total, 3) == pytest.approx(3 * lr / 5)
    assert rate_at("cosine", lr, total, w) == pytest.approx(lr)                # peak
    assert rate_at("cosine", lr, total, w + 48) == pytest.approx(lr / 2)       # middle of the decay (96 steps)
    end = rate_at("cosine", lr, total, total)
    assert 0 < end < 1e-3 * lr                                                  # ~0 at the last step
    rates = [rate_at("cosine", lr, total, k) for k in range(w, total + 1)]
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert rate_at("constant", lr, total, 77) == lr
    # the Keras schedule the optimizers use gives the same rates, as a function of the update count
    schedule = learning_rate("cosine", lr, total)
    for k in (1, 3, w, w + 1, w + 48, total):
        # (float32: near the end 1 + cos(x) loses digits, so the tolerance is absolute there)
        assert float(schedule(k - 1)) == pytest.approx(rate_at("cosine", lr, total, k), rel=1e-5, abs=1e-6 * lr)
    assert learning_rate("constant", lr) == lr


# ---- decoder upsampling ------------------------------------------------------------------------------

def _period2_share(y: np.ndarray, border: int = 8) -> float:
    """Share of the interior's variation across the image that the four (row, column) parity classes
    explain: ~1 for a stride-2 checkerboard, ~0 without one (mean over channels)."""
    y = y[border:-border, border:-border]
    parity = np.stack([y[i::2, j::2].mean((0, 1)) for i in (0, 1) for j in (0, 1)])   # (4, C)
    return float((parity.std(0) / (y.std((0, 1)) + 1e-12)).mean())


def test_resize_upsampling_has_no_checkerboard_on_a_constant_photo():
    import keras

    from landaug.models.pix2pix import build_generator
    from landaug.runtime import setup_runtime

    setup_runtime("float32")
    x = np.full((1, 64, 64, 3), 0.3, np.float32)
    share = {}
    for upsample in ("transpose", "resize"):
        keras.utils.set_random_seed(0)
        gen = build_generator(64, 7, 0.25, upsample=upsample)
        share[upsample] = _period2_share(np.asarray(gen(x, training=False))[0])
    # At initialisation a transposed-convolution decoder paints a period-2 pattern on a constant photo;
    # the resize-convolution decoder's output there is flat up to a smooth remainder.
    assert share["transpose"] > 0.9
    assert share["resize"] < 0.2
    names = [layer.name for layer in gen.layers]
    assert "head_up" in names and "up1_conv" in names and not any(n.endswith("_deconv") for n in names)


# ---- flip TTA ----------------------------------------------------------------------------------------

def test_flip_tta_labels_a_mirrored_photo_with_the_mirrored_labels():
    import keras

    from landaug.cgan.model import build_labeller
    from landaug.runtime import setup_runtime

    setup_runtime("float32")
    keras.utils.set_random_seed(3)
    gen = build_labeller(32, 0.25, "classes", len(SPARCS))
    photo = np.random.default_rng(0).integers(0, 256, (45, 70, 3)).astype(np.uint8)   # odd, non-square
    probs = {}
    for tta in ("none", "flips"):
        lab = cgan.SceneLabeller(gen, "classes", SPARCS, 32, overlap=0.25, tta=tta)
        probs[tta] = [lab.probabilities(photo), lab.probabilities(photo[:, ::-1]), lab.probabilities(photo[::-1])]
    p, p_lr, p_ud = probs["flips"]
    np.testing.assert_array_equal(p_lr, p[:, ::-1])
    np.testing.assert_array_equal(p_ud, p[::-1])
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-5)
    # without TTA the untrained model is not mirror-symmetric: the test above could fail
    q, q_lr, _ = probs["none"]
    assert np.abs(q_lr - q[:, ::-1]).max() > 1e-4


# ---- unet: the generator alone ------------------------------------------------------------------------

def test_unet_builds_no_discriminator_and_follows_the_schedule():
    from landaug.harness.module import Trainer
    from landaug.runtime import setup_runtime

    tf = _tf()
    cfg = cgan.TrainConfig(size=32, width=0.25, batch=2, precision="float32", dropout=0.0, labeller="unet",
                           loss="ce+lovasz", lr_schedule="cosine", lr=1e-3)
    module = cgan.build_module(cfg, SPARCS, None, 3, total_steps=20)
    trainer = Trainer(module, setup_runtime("float32", seed=0), seed=0, config={})
    assert set(trainer.checkpoint_objects()) == {"generator", "g_opt", "dropout", "step", "rng", "config"}
    assert not hasattr(module, "disc")
    rng = np.random.default_rng(0)
    photo = tf.constant(rng.uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32))
    label = tf.constant(np.stack([np.eye(32, dtype=np.uint8) * 5, np.full((32, 32), 2, np.uint8)]))
    for k in range(1, 4):
        assert float(module.g_inner.learning_rate) == pytest.approx(rate_at("cosine", 1e-3, 20, k), rel=1e-5)
        trainer.train_step((photo, label))
    assert set(trainer.read_metrics()) == {"g_total", "g_seg"}


@pytest.fixture(scope="module")
def unet_run(demo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("unet") / "model"
    result = cgan.train(cgan.TrainConfig(data=demo_root / "images_CGAN", out=out, steps=60, eval_every=15, batch=4,
                                         width=0.25, labeller="unet", lr_schedule="cosine", upsample="resize",
                                         tta="flips", lr=2e-3, sample_every=0, progress=False, verbose=False))
    return out, result


@pytest.mark.slow
def test_unet_training_saves_no_discriminator_and_learns(unet_run, demo_root):
    tf = _tf()
    out, result = unet_run
    names = tf.train.load_checkpoint(str(out / "ckpt")).get_variable_to_shape_map()
    assert any(n.startswith("generator/") for n in names)
    assert not any(n.startswith(("discriminator/", "d_opt/")) for n in names)
    losses = [float(r["g_seg"]) for r in result.history]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0]
    assert all(r["g_adv"] == "" and r["d_loss"] == "" for r in result.history)
    lrs = [float(r["lr"]) for r in result.history]
    assert lrs == pytest.approx([rate_at("cosine", 2e-3, 60, s) for s in (15, 30, 45, 60)], rel=1e-4)
    desc = json.loads((out / "model.json").read_text())
    assert {k: desc[k] for k in ("labeller", "loss", "lr_schedule", "upsample", "tta")} == {
        "labeller": "unet", "loss": "ce", "lr_schedule": "cosine", "upsample": "resize", "tta": "flips"}
    config = json.loads((out / "config.json").read_text())
    assert config["warmup_steps"] == 3 and config["locked"]["labeller"] == "unet"
    # predict rebuilds the resize decoder from model.json (a transpose decoder would not match the
    # checkpoint) and labels with the model's TTA unless told otherwise
    assert cgan.SceneLabeller.load(out).tta == "flips"
    assert cgan.SceneLabeller.load(out, tta="none").tta == "none"
    test_a = demo_root / "images_CGAN" / "test" / "a"
    cgan.predict(out, test_a, out.parent / "pred", progress=False)
    assert json.loads((out.parent / "pred" / "config.json").read_text())["tta_used"] == "flips"


def _cli(argv, capsys):
    code = cli_main(cgan.main, argv, prog="cgan.py")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    return code, lines[-1] if lines else ""


@pytest.mark.slow
def test_a_cosine_run_resumes_only_to_its_own_length(unet_run, capsys):
    out, _ = unet_run
    code, line = _cli(["train", "--out", str(out), "--resume", "--steps", "120", "--quiet"], capsys)
    assert code == 2 and "cosine schedule fixed by its length (--steps 60)" in line
    code, line = _cli(["train", "--out", str(out), "--resume", "--labeller", "pix2pix", "--quiet"], capsys)
    assert code == 2 and "--labeller pix2pix contradicts the checkpoint" in line


@pytest.mark.parametrize("args, message", [
    (["--loss", "ce+dice", "--target", "rgb"], "--loss ce+dice needs --target classes"),
    (["--labeller", "unet", "--lambda", "10"], "drop --lambda"),
    (["--loss", "dice"], "invalid choice: 'dice'"),
    (["--upsample", "nearest"], "invalid choice: 'nearest'"),
])
def test_bad_labeller_options(demo_root, tmp_path, capsys, args, message):
    code, line = _cli(["train", "--data", str(demo_root / "images_CGAN"), "--out", str(tmp_path / "o"), "--quiet",
                       *args], capsys)
    assert code == 2 and message in line
    assert not (tmp_path / "o").exists()


def test_pipeline_passes_the_labeller_options_to_every_arm(tmp_path):
    from landaug.pipeline import build_parser, config_from_args
    from landaug.pipeline.options import stage_configs
    from landaug.pipeline.presets import PAPER_LABELLER, PAPER_OPTIONS, PRESETS

    argv = ["--demo", "--out", str(tmp_path / "r"), "--arms", "baseline,classic", "--labeller", "unet", "--loss",
            "ce+lovasz", "--lr-schedule", "cosine", "--upsample", "resize", "--tta", "flips", "--cgan-lr", "1e-3",
            "--cgan-beta1", "0.9", "--cgan-dropout", "0"]
    cfg = config_from_args(build_parser().parse_args(argv), argv)
    for arm in ("baseline", "classic"):
        tc = stage_configs(cfg, tmp_path / "r")[arm]
        assert (tc.labeller, tc.loss, tc.lr_schedule, tc.upsample, tc.tta) == ("unet", "ce+lovasz", "cosine",
                                                                               "resize", "flips")
        assert (tc.lr, tc.beta1, tc.dropout) == (1e-3, 0.9, 0.0)
    # demo and paper train the paper's pix2pix; cpu the labeller chosen on validation, and PAPER_OPTIONS give it
    # back the paper's labeller on native tiles, as the earlier SPARCS tables were run
    keys = tuple(PAPER_LABELLER) + ("tile_scale",)
    for name in ("demo", "paper"):
        assert {k: PRESETS[name][k] for k in keys} == {**PAPER_LABELLER, "tile_scale": 1.0}
    assert PRESETS["cpu"]["labeller"] == "unet" and PRESETS["cpu"]["tile_scale"] == 0.5
    argv = ["--sparcs", str(tmp_path), "--preset", "cpu", "--out", str(tmp_path / "p"), *PAPER_OPTIONS.split()]
    cfg = config_from_args(build_parser().parse_args(argv), argv)
    assert {k: getattr(cfg, k) for k in keys} == {**PAPER_LABELLER, "tile_scale": 1.0}
    assert (cfg.cgan_steps, PRESETS["cpu"]["cgan_steps"]) == (1280, 2560)
    # a preset's tile scale is for its tiles: scenes brought to the window take none
    argv = ["--sparcs", str(tmp_path), "--preset", "cpu", "--data-mode", "resize", "--out", str(tmp_path / "q")]
    assert config_from_args(build_parser().parse_args(argv), argv).tile_scale == 1.0


def test_help_shows_the_labeller_options():
    import argparse

    from landaug.bench.options import build_parser as bench_parser
    from landaug.cgan.cli import build_parser as cgan_parser
    from landaug.pipeline import build_parser as pipeline_parser

    sub = next(a for a in cgan_parser()._actions if isinstance(a, argparse._SubParsersAction))
    train, predict = sub.choices["train"].format_help(), sub.choices["predict"].format_help()
    pipeline = pipeline_parser().format_help()
    for flag in ("--labeller", "--loss", "--lr-schedule", "--upsample", "--tta"):
        assert flag in train and flag in pipeline, flag
    assert "first 5 % of the steps" in train and "model.json" in predict.split("--tta")[-1]
    assert "--ablation [{fused,labeller,inference,xla}]" in bench_parser().format_help()
