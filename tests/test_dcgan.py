"""The DCGAN models (shapes at 32/64/256, paired outputs) and the DiffAugment functions."""

from __future__ import annotations

import numpy as np
import pytest

from landaug.models import dcgan
from landaug.errors import UserError

tf = pytest.importorskip("tensorflow")


@pytest.fixture(autouse=True)
def _float32_policy():
    import keras

    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("size,width,n_classes", [(32, 32, 0), (64, 32, 7), (32, 16, 3)])
def test_models_run_at_small_sizes(size, width, n_classes):
    g = dcgan.build_generator(size, width, latent_dim=16, n_classes=n_classes)
    d = dcgan.build_discriminator(size, width, n_classes=n_classes)
    x = g(np.random.default_rng(0).standard_normal((2, 16)).astype("float32"), training=False)
    c = 3 + n_classes
    assert tuple(x.shape) == (2, size, size, c)
    assert g.name == "generator" and d.name == "discriminator"
    photo = np.asarray(x[..., :3])
    assert photo.min() >= -1.0 and photo.max() <= 1.0
    if n_classes:
        np.testing.assert_allclose(np.asarray(x[..., 3:]).sum(-1), 1.0, atol=1e-5)
    logits = d([x, tf.zeros_like(x)], training=False)
    assert tuple(logits.shape) == (2, 1)


def test_paper_shape_at_256():
    g = dcgan.build_generator(256, dcgan.PAPER_WIDTH, latent_dim=128)
    d = dcgan.build_discriminator(256, dcgan.PAPER_WIDTH)
    assert g.output_shape == (None, 256, 256, 3)
    assert d.output_shape == (None, 1)
    # The paper's channel ladder: 256 at 4x4 halving to 8 at 128x128; the discriminator mirrors it.
    assert dcgan.generator_channels(256, 256) == [(4, 256), (8, 128), (16, 64), (32, 32), (64, 16), (128, 8)]
    assert dcgan.discriminator_channels(256, 256) == [(256, 8), (128, 16), (64, 32), (32, 64), (16, 128), (8, 256)]
    assert g.get_layer("to_4x4").output.shape[1:] == (4, 4, 256)
    assert d.get_layer("down8_pool").output.shape[1:] == (4, 4, 256)


def test_width_scales_and_depth_follows_size():
    small = dcgan.build_generator(64, 64, latent_dim=16)
    big = dcgan.build_generator(64, 128, latent_dim=16)
    assert big.count_params() > 2 * small.count_params()
    assert len(dcgan.generator_channels(128, 64)) == len(dcgan.generator_channels(64, 64)) + 1


@pytest.mark.parametrize("size", [8, 100, 48, 0])
def test_bad_size_is_refused(size):
    with pytest.raises(UserError, match="power of two"):
        dcgan.check_size(size)


# --- DiffAugment -------------------------------------------------------------------------------------

from landaug import diffaugment as da  # noqa: E402


def _scenes(b=3, s=16, c=3, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (b, s, s, c)).astype("float32"))


@pytest.mark.parametrize("fn", [f for fns in da.AUGMENT_FNS.values() for f in fns], ids=lambda f: f.__name__)
def test_augment_keeps_shape_and_is_differentiable(fn):
    x = tf.Variable(_scenes(c=5))
    u = tf.constant(np.random.default_rng(1).uniform(size=(3, fn.n_random)).astype("float32"))
    with tf.GradientTape() as tape:
        y = fn(x, u, 3)
        loss = tf.reduce_sum(y * y)
    grad = tape.gradient(loss, x)
    assert y.shape == x.shape
    assert grad is not None
    g = tf.convert_to_tensor(grad).numpy()
    assert np.isfinite(g).all() and np.abs(g).sum() > 0
    assert not np.allclose(y.numpy(), x.numpy())


def test_colour_leaves_labels_geometry_moves_both():
    photo, label = _scenes(c=3, seed=2), _scenes(c=4, seed=3)
    both = tf.concat([photo, label], -1)
    u = tf.constant(np.random.default_rng(4).uniform(size=(3, da.n_random(("color", "translation", "cutout")))),
                    tf.float32)
    colour = da.diff_augment(both, ("color",), u[:, :3], photo_channels=3)
    np.testing.assert_array_equal(colour[..., 3:].numpy(), label.numpy())
    for name in ("translation", "cutout"):
        k = da.n_random((name,))
        moved = da.diff_augment(both, (name,), u[:, :k], photo_channels=3)
        np.testing.assert_allclose(moved[..., :3].numpy(), da.diff_augment(photo, (name,), u[:, :k]).numpy())
        np.testing.assert_allclose(moved[..., 3:].numpy(), da.diff_augment(label, (name,), u[:, :k], 0).numpy())


def test_translation_shifts_by_whole_pixels():
    x = _scenes(b=1, s=16)
    u = tf.constant([[1.0 - 1e-6, 0.5]])  # the largest downward shift, no sideways shift
    y = da.translation(x, u).numpy()
    s = int(16 * da.TRANSLATION_RATIO + 0.5)
    np.testing.assert_array_equal(y[0, : 16 - s], x.numpy()[0, s:])
    assert (y[0, 16 - s:] == 0).all()


def test_policy_parsing():
    assert da.parse_policy("color, cutout") == ("color", "cutout")
    assert da.parse_policy("") == ()
    assert da.n_random(("color", "translation", "cutout")) == 7
    with pytest.raises(UserError, match="zoom"):
        da.parse_policy("color,zoom")
