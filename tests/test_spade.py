"""SPADE generator and multi-scale discriminator: shapes under mixed precision, label conditioning,
gradient flow, the GauGAN losses against hand computations, and that the generator can learn."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from conftest import needs_half_precision_kernels  # noqa: E402
from landaug.models import spade as M  # noqa: E402

N_CLASSES = 7


pytestmark = pytest.mark.usefixtures("float32_policy")


def _labels(size: int, seed: int, b: int = 2, block: int = 4) -> tf.Tensor:
    """Blocky one-hot label maps (B, S, S, K), float32."""
    small = np.random.default_rng(seed).integers(0, N_CLASSES, (b, size // block, size // block))
    return tf.one_hot(np.kron(small, np.ones((block, block), np.int64)), N_CLASSES, dtype=tf.float32)


def _latent(seed: int, b: int = 2, dim: int = 64) -> tf.Tensor:
    return tf.constant(np.random.default_rng(seed).normal(size=(b, dim)).astype(np.float32))


def test_channel_plan_and_patch_sizes():
    assert M.generator_channels(256, 1.0) == [(4, 1024), (8, 512), (16, 256), (32, 128), (64, 64), (128, 64),
                                              (256, 64)]
    assert M.generator_channels(32, 0.25) == [(4, 256), (8, 128), (16, 64), (32, 32)]
    assert M.generator_channels(16, 0.0078125) == [(4, 16), (8, 8), (16, 8)]   # floors: 16 at 4x4, 8 after
    assert M.discriminator_strides(16, 2) == [3, 2]
    assert M.patch_sizes(16, 2) == [2, 2]
    assert M.patch_sizes(32, 2) == [4, 2]
    assert M.patch_sizes(256, 3) == [32, 16, 8]
    with pytest.raises(ValueError, match="power of two"):
        M.build_spade_generator(48, N_CLASSES)
    with pytest.raises(ValueError, match="n_scales"):
        M.build_multiscale_discriminator(16, N_CLASSES, n_scales=4)   # the fourth scale would be 2 px
    with pytest.raises(ValueError, match="outputs cannot be split"):
        M.split_outputs(list(range(9)), 2)
    assert M.split_outputs(list(range(10)), 2) == [([0, 1, 2, 3], 4), ([5, 6, 7, 8], 9)]
    assert M.LOSS_WEIGHTS == {"adversarial": 1.0, "feature_matching": 10.0}


@pytest.mark.parametrize("size,width,out_channels,policy", [
    (16, 0.125, 3, "float32"), pytest.param(32, 0.25, 10, "mixed_bfloat16", marks=needs_half_precision_kernels)])
def test_shapes_and_dtypes(size, width, out_channels, policy):
    keras.mixed_precision.set_global_policy(policy)
    g = M.build_spade_generator(size, N_CLASSES, out_channels, width=width)
    d = M.build_multiscale_discriminator(size, N_CLASSES, out_channels, width=width)
    assert (g.name, d.name) == ("spade_generator", "spade_discriminator")
    g2 = M.build_spade_generator(size, N_CLASSES, width=width, synchronized=True, name="g2")
    assert g2.name == "g2"
    norms = [l for l in g2.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert norms and all(l.synchronized and not (l.center or l.scale) for l in norms)
    assert [i.name for i in g.inputs] == ["label", "latent"] and [i.name for i in d.inputs] == ["label", "photo"]

    photo = g([_labels(size, 0), _latent(0)], training=True)
    assert photo.shape == (2, size, size, out_channels) and photo.dtype == tf.float32
    assert float(tf.reduce_max(tf.abs(photo))) <= 1.0 and float(tf.math.reduce_std(photo)) > 1e-3

    outputs = d([_labels(size, 1), photo], training=True)
    assert len(outputs) == 2 * 5
    hidden_dtype = tf.bfloat16 if policy == "mixed_bfloat16" else tf.float32
    # scale s sees S / 2^s; stride-2 convs: 3, or fewer to keep the logit map at least 2 x 2
    expected_sides = {16: [[8, 4, 2, 2], [4, 2, 2, 2]], 32: [[16, 8, 4, 4], [8, 4, 2, 2]]}[size]
    channels = [max(8, round(f * width)) for f in (64, 128, 256, 512)]
    for (features, logits), sides in zip(M.split_outputs(outputs, 2), expected_sides):
        assert [tuple(f.shape) for f in features] == [(2, s, s, c) for s, c in zip(sides, channels)]
        assert all(f.dtype == hidden_dtype for f in features)
        assert logits.shape == (2, sides[-1], sides[-1], 1) and logits.dtype == tf.float32


@pytest.mark.parametrize("policy", ["float32", pytest.param("mixed_bfloat16", marks=needs_half_precision_kernels)])
def test_label_map_and_latent_steer_the_photo(policy):
    keras.mixed_precision.set_global_policy(policy)
    g = M.build_spade_generator(16, N_CLASSES, width=0.125)
    a, b, z = _labels(16, 0), _labels(16, 1), _latent(0)
    photo_a = g([a, z], training=False).numpy()
    np.testing.assert_array_equal(photo_a, g([a, z], training=False).numpy())
    assert np.abs(photo_a - g([b, z], training=False).numpy()).mean() > 1e-3
    assert np.abs(photo_a - g([a, _latent(1)], training=False).numpy()).mean() > 1e-3
    # Classes only change where the labels do: a change in one corner moves that corner most.
    c = a.numpy().copy()
    c[:, :4, :4] = np.eye(N_CLASSES, dtype=np.float32)[(np.argmax(c[:, :4, :4], -1) + 1) % N_CLASSES]
    diff = np.abs(photo_a - g([tf.constant(c), z], training=False).numpy()).mean(axis=(0, 3))
    assert diff[:4, :4].mean() > 3 * diff[8:, 8:].mean()


def _gan_losses(g, d, label, latent, real):
    fake = g([label, latent], training=True)
    fake_split = M.split_outputs(d([label, fake], training=True), 2)
    real_split = M.split_outputs(d([label, real], training=True), 2)
    adversarial = M.g_hinge([logits for _, logits in fake_split])
    matching = M.feature_matching([f for f, _ in real_split], [f for f, _ in fake_split])
    return fake, adversarial, matching


def test_gradients_reach_every_generator_weight():
    g = M.build_spade_generator(16, N_CLASSES, width=0.125)
    d = M.build_multiscale_discriminator(16, N_CLASSES, width=0.125)
    real = tf.constant(np.random.default_rng(2).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        _, adversarial, matching = _gan_losses(g, d, _labels(16, 0), _latent(0), real)
        loss = tf.reduce_mean(adversarial) + M.LOSS_WEIGHTS["feature_matching"] * tf.reduce_mean(matching)
    grads = tape.gradient(loss, g.trainable_variables)
    assert len(grads) == len(g.trainable_variables) > 50
    rms = {v.path: float(np.sqrt(np.mean(np.square(gr.numpy())))) for v, gr in zip(g.trainable_variables, grads)
           if gr is not None}
    assert set(rms) == {v.path for v in g.trainable_variables}
    # A weight cancelled by a normalisation (a conv bias before batch norm) gets a rounding-level
    # gradient some 1e-6 of the others: every weight here must be well above that.
    typical = float(np.median(list(rms.values())))
    assert {k: r for k, r in rms.items() if r < 1e-3 * typical} == {}


def test_losses_against_hand_computation():
    def t(values, shape):
        return tf.constant(np.array(values, np.float32).reshape(shape))

    # two scales, batch 2; scale 0 has 2 real patches and 1 fake patch per example
    real = [t([[2.0, -0.5], [0.5, 0.5]], (2, 1, 2, 1)), t([1.5, -1.0], (2, 1, 1, 1))]
    fake = [t([0.3, -2.0], (2, 1, 1, 1)), t([-1.0, 0.0], (2, 1, 1, 1))]
    # example 0: scale 0 (0 + 1.5) / 2 + 1.3 = 2.05, scale 1 0 + 0 = 0     -> 1.025
    # example 1: scale 0 (0.5 + 0.5) / 2 + 0 = 0.5, scale 1 2 + 1 = 3       -> 1.75
    d_loss = M.d_hinge(real, fake)
    assert d_loss.dtype == tf.float32
    np.testing.assert_allclose(d_loss.numpy(), [1.025, 1.75], rtol=1e-6)
    # example 0: (-0.3 + 1) / 2 = 0.35; example 1: (2 + 0) / 2 = 1
    np.testing.assert_allclose(M.g_hinge(fake).numpy(), [0.35, 1.0], rtol=1e-6)
    np.testing.assert_allclose(M.g_hinge(tf.cast(fake[0], tf.bfloat16)).numpy(), [-0.30078125, 2.0])

    real_f = [[t([1, 2, 0, 0], (2, 1, 2, 1)), t([0, 0, 3, 1, 1, 1], (2, 1, 3, 1))],
              [t([5, 0], (2, 1, 1, 1)), t([0, -1], (2, 1, 1, 1))]]
    fake_f = [[t([1, 0, 0, 4], (2, 1, 2, 1)), t([0, 0, 0, -1, -1, -1], (2, 1, 3, 1))],
              [t([1, 2], (2, 1, 1, 1)), t([0, 1], (2, 1, 1, 1))]]
    # per layer, example 0: 1, 1, 4, 0 -> 1.5; example 1: 2, 2, 2, 2 -> 2
    np.testing.assert_allclose(M.feature_matching(real_f, fake_f).numpy(), [1.5, 2.0], rtol=1e-6)
    flat = M.feature_matching([f for s in real_f for f in s], [f for s in fake_f for f in s])
    np.testing.assert_allclose(flat.numpy(), [1.5, 2.0], rtol=1e-6)

    fake_var = [[tf.Variable(f) for f in s] for s in fake_f]
    real_var = [[tf.Variable(f) for f in s] for s in real_f]
    with tf.GradientTape(persistent=True) as tape:
        loss = tf.reduce_sum(M.feature_matching(real_var, fake_var))
    assert all(gr is None for gr in tape.gradient(loss, keras.tree.flatten(real_var)))
    # d/d fake of |real - fake| / (4 layers x 2 values): sign(fake - real) / 8 (0 where equal)
    np.testing.assert_allclose(tape.gradient(loss, fake_var[0][0]).numpy().ravel(), [0, -0.125, 0, 0.125])
    with pytest.raises(ValueError, match="same number of scales"):
        M.d_hinge(real, fake[:1])


def test_generator_fits_one_pair():
    """A few Adam steps on fixed (label, photo) pairs with L1 + hinge must bring the photos much closer."""
    g = M.build_spade_generator(16, N_CLASSES, width=0.125)
    d = M.build_multiscale_discriminator(16, N_CLASSES, width=0.125)
    label = _labels(16, 3)
    palette = np.random.default_rng(4).uniform(-0.8, 0.8, (N_CLASSES, 3)).astype(np.float32)
    target = tf.constant(palette[np.argmax(label.numpy(), -1)])     # each class its own colour
    latent = tf.repeat(_latent(5, b=1), 2, axis=0)   # one latent: only the label maps tell the two apart
    opt = keras.optimizers.Adam(2e-3, beta_1=0.5)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            fake, adversarial, _ = _gan_losses(g, d, label, latent, target)
            l1 = tf.reduce_mean(tf.abs(fake - target))
            loss = 10.0 * l1 + tf.reduce_mean(adversarial)
        opt.apply_gradients(zip(tape.gradient(loss, g.trainable_variables), g.trainable_variables))
        return l1

    l1 = [float(step()) for _ in range(30)]
    assert l1[-1] < 0.35 * l1[0], l1
