"""OASIS-style networks: no checkerboard from the resize-convolution decoder, the noise reaches the photo,
shapes under mixed precision, class balancing and the N + 1 losses against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from conftest import needs_half_precision_kernels  # noqa: E402
from landaug.models import oasis as M  # noqa: E402
from landaug.models.pix2pix import build_generator as unet  # noqa: E402

N_CLASSES = 7


pytestmark = pytest.mark.usefixtures("float32_policy")


def period2_share(photo: np.ndarray, border: int = 4) -> float:
    """Share of the photo's variation (interior, per band) that a period-2 pattern explains: the variance
    of the four (row, column) parity classes' means over the variance of all pixels. A checkerboard of
    stride-2 transposed convolutions gives nearly 1, a smooth image nearly 0."""
    x = np.asarray(photo, np.float64)[border:-border, border:-border]
    phases = np.stack([x[a::2, b::2].mean((0, 1)) for a in (0, 1) for b in (0, 1)])     # (4, C)
    return float((phases.var(0) / (x.var((0, 1)) + 1e-30)).mean())


def _constant_label(size: int, cls: int = 4, b: int = 1) -> np.ndarray:
    return np.broadcast_to(np.eye(N_CLASSES, dtype=np.float32)[cls], (b, size, size, N_CLASSES)).copy()


def test_constant_input_gives_no_period_2_pattern():
    keras.utils.set_random_seed(0)
    size = 64
    g = M.build_noise_generator(size, N_CLASSES, 3, width=0.25, latent_dim=8)
    hot = _constant_label(size)
    photo = g([hot, np.zeros((1, 8), np.float32), np.zeros((1, size, size, 1), np.float32)], training=False)
    assert period2_share(photo[0]) < 0.05
    # The statistic can fail: pix2pix's transposed convolutions stamp their stride on the same input.
    old = unet(size, 3, 0.25, output="tanh", in_channels=N_CLASSES, name="old")
    assert period2_share(old(hot, training=False)[0]) > 0.3


def test_noise_and_latent_change_the_photo_and_only_they_vary():
    keras.utils.set_random_seed(1)
    size = 32
    g = M.build_noise_generator(size, N_CLASSES, 4, width=0.125, latent_dim=8)
    assert [tuple(i.shape[1:]) for i in g.inputs] == [(size, size, N_CLASSES), (8,), (size, size, 1)]
    hot = np.repeat(_constant_label(size, 2), 3, 0)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 8)).astype(np.float32)
    n = rng.normal(size=(3, size, size, 1)).astype(np.float32)
    z[1], n[2] = z[0], n[0]
    out = np.asarray(g([hot, z, n], training=False))
    assert out.shape == (3, size, size, 4) and np.abs(out).max() <= 1.0
    again = np.asarray(g([hot, z, n], training=False))
    np.testing.assert_array_equal(out, again)
    assert np.abs(out[0] - out[1]).mean() > 1e-4      # another noise map only
    assert np.abs(out[0] - out[2]).mean() > 1e-4      # another latent only


@needs_half_precision_kernels
def test_discriminator_shapes_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    for size in (16, 64):
        d = M.build_segmentation_discriminator(size, N_CLASSES, 3, width=0.125)
        g = M.build_noise_generator(size, N_CLASSES, 3, width=0.125, latent_dim=4)
        photo = g([_constant_label(size, b=2), np.zeros((2, 4), np.float32), np.zeros((2, size, size, 1), np.float32)])
        logits = d(photo)
        assert photo.dtype == tf.float32 and logits.dtype == tf.float32
        assert tuple(logits.shape) == (2, size, size, N_CLASSES + 1)


def test_class_balance_and_losses_by_hand():
    labels = np.array([[[0, 0, 0], [0, 0, 1], [1, 1, 255]]])                          # 5 of class 0, 3 of 1
    hot = tf.one_hot(labels, 2, dtype=tf.float32)                                      # ignore: all zero
    w = M.class_balance(hot, tf.reduce_sum(hot, [0, 1, 2])).numpy()
    # 8 labelled pixels, 2 classes: class 0 weighs 8 / (2 * 5), class 1 8 / (2 * 3); they average 1.
    np.testing.assert_allclose(w[0], [[0.8, 0.8, 0.8], [0.8, 0.8, 4 / 3], [4 / 3, 4 / 3, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(w.sum() / 8, 1.0, rtol=1e-6)
    # Logits that put probability p on the right class everywhere: each cross-entropy is -log p.
    p = 0.7
    right = np.log(np.where(np.concatenate([hot.numpy(), np.zeros((1, 3, 3, 1))], -1) > 0, p, (1 - p) / 2))
    fake_right = np.log(np.concatenate([np.full((1, 3, 3, 2), (1 - p) / 2), np.full((1, 3, 3, 1), p)], -1))
    right[0, 2, 2] = np.log(1 / 3)                                                     # the ignore pixel
    d = M.segmentation_d_loss(tf.constant(right, tf.float32), tf.constant(fake_right, tf.float32), hot, w, hot)
    # Real side: sum(w * -log p) / 9 = 8 * -log p / 9; fake side: 8 known pixels of -log p, over 9.
    np.testing.assert_allclose(d.numpy(), [2 * 8 * -np.log(p) / 9], rtol=1e-5)
    g = M.segmentation_g_loss(tf.constant(right, tf.float32), hot, w)
    np.testing.assert_allclose(g.numpy(), [8 * -np.log(p) / 9], rtol=1e-5)


def test_mode_seeking_ratio():
    a = tf.zeros((2, 4, 4, 3))
    b = tf.concat([tf.fill((1, 4, 4, 3), 0.5), tf.zeros((1, 4, 4, 3))], 0)
    za, zb = tf.zeros((2, 8)), tf.fill((2, 8), 2.0)
    np.testing.assert_allclose(M.mode_seeking(a, b, za, zb).numpy(), [0.25, 0.0], atol=1e-5)
