"""pix2pix networks and the training augmentations: shapes per size, fused kernels equal to Keras, augmentation."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

from landaug.models import layers as L  # noqa: E402
from landaug.models import pix2pix as P  # noqa: E402
from landaug.cgan import augment as S  # noqa: E402
from landaug.cgan.data import class_weights  # noqa: E402
from landaug.classes import IGNORE_INDEX  # noqa: E402
from landaug.errors import UserError  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy():
    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("size,width,output,channels", [(16, 0.125, "logits", 7), (32, 0.25, "logits", 5),
                                                        (64, 0.125, "tanh", 3), (256, 0.0625, "logits", 7)])
def test_generator_shapes(size, width, output, channels):
    g = P.build_generator(size, channels, width, output=output)
    assert g.name == "generator"
    assert g.output_shape == (None, size, size, channels)
    downs = [l for l in g.layers if l.name.endswith("_conv") and l.name.startswith("down")]
    assert len(downs) == int(np.log2(size))           # one stride-2 block per halving, down to 1 x 1
    assert downs[-1].output.shape[1:3] == (1, 1)
    n_drop = sum(isinstance(l, keras.layers.Dropout) for l in g.layers)
    assert n_drop == P.dropout_blocks(size) == min(3, int(np.log2(size)) - 3)
    y = g(np.zeros((2, size, size, 3), np.float32), training=False)
    assert y.dtype == tf.float32
    if output == "tanh":
        assert float(tf.reduce_max(tf.abs(y))) <= 1.0


def test_generator_width_scales_filters():
    assert P.generator_filters(256, 1.0) == [64, 128, 256, 512, 512, 512, 512, 512]
    assert P.generator_filters(256, 0.5) == [32, 64, 128, 256, 256, 256, 256, 256]
    assert len(P.generator_filters(512)) == 9


@pytest.mark.parametrize("size,patches", [(16, 6), (32, 6), (64, 6), (256, 30)])
def test_discriminator_shapes(size, patches):
    d = P.build_discriminator(size, 7, width=0.0625)
    assert d.name == "discriminator"
    assert d.output_shape == (None, patches, patches, 1)
    out = d([np.zeros((1, size, size, 3), np.float32), np.zeros((1, size, size, 7), np.float32)])
    assert out.shape == (1, patches, patches, 1)


@pytest.mark.parametrize("size", [8, 48, 2048])
def test_bad_sizes_are_refused(size):
    with pytest.raises(ValueError, match="power of two"):
        P.build_generator(size, 7, 0.25)


def test_fused_batchnorm_matches_keras():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2, 3, size=(4, 6, 6, 8)).astype(np.float32))
    results = []
    for cls in (keras.layers.BatchNormalization, L.FusedBatchNorm):
        layer = cls(momentum=0.9)
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 2.0, 8, dtype=np.float32))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * tf.sin(x))
        grads = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance, layer(x, training=False)])
    for a, b in zip(*results):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)


def test_fused_adam_matches_keras():
    w0 = np.random.default_rng(1).normal(size=(20, 10)).astype(np.float32)
    finals = []
    for cls in (keras.optimizers.Adam, L.FusedAdam):
        v = keras.Variable(w0.copy())
        opt = cls(1e-2, beta_1=0.5)
        opt.build([v])
        for i in range(4):
            opt.apply_gradients([(tf.constant(np.sin(w0 * (i + 1))), v)])
        finals.append(v.numpy())
    assert np.abs(finals[0] - w0).max() > 1e-3
    np.testing.assert_allclose(finals[0], finals[1], atol=1e-6)


# ---- data pipeline --------------------------------------------------------------------------------

def _coded_batch(b=3, size=32, seed=0):
    """Blocky labels and photos whose red channel encodes the label, to check alignment."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 7, (b, size // 8, size // 8)).astype(np.uint8)
    label = np.repeat(np.repeat(small, 8, 1), 8, 2)
    photo = np.stack([label * 30.0, rng.uniform(0, 255, label.shape), np.zeros(label.shape)], -1)
    return tf.constant(photo / 127.5 - 1.0, tf.float32), tf.constant(label)


@pytest.mark.parametrize("name", ["jitter", "dihedral", "color"])
def test_augment_shapes_and_alignment(name):
    photo, label = _coded_batch()
    p2, l2 = S.AUGMENT_FNS[name](photo, label, tf.constant([3, 4], tf.int64))
    assert p2.shape == photo.shape and l2.shape == label.shape and l2.dtype == tf.uint8
    assert set(np.unique(l2.numpy())) <= set(np.unique(label.numpy()))
    if name == "color":
        np.testing.assert_array_equal(l2.numpy(), label.numpy())
        assert not np.allclose(p2.numpy(), photo.numpy())
        return
    code = np.rint((p2.numpy()[..., 0] + 1.0) * 127.5 / 30.0)
    exact = np.isclose((p2.numpy()[..., 0] + 1.0) * 127.5 / 30.0, code, atol=1e-3)
    # pixels away from block edges (the photo is interpolated there) carry their label's code
    assert exact.mean() > 0.5
    assert (code[exact] == l2.numpy()[exact]).mean() > 0.99


def test_dihedral_reaches_all_eight_transforms():
    photo, label = _coded_batch(b=64, size=16)
    photo = tf.repeat(photo[:1], 64, axis=0)
    label = tf.repeat(label[:1], 64, axis=0)
    _, l2 = S.dihedral(photo, label, tf.constant([0, 1], tf.int64))
    assert len({l.tobytes() for l in l2.numpy()}) == 8


def test_augment_is_a_pure_function_of_the_seed():
    photo, label = _coded_batch()
    names = ["jitter", "dihedral", "color"]
    a = S.augment_batch(photo, label, tf.constant([1, 2], tf.int64), names)
    b = S.augment_batch(photo, label, tf.constant([1, 2], tf.int64), names)
    c = S.augment_batch(photo, label, tf.constant([1, 3], tf.int64), names)
    np.testing.assert_array_equal(a[0].numpy(), b[0].numpy())
    assert not np.array_equal(a[0].numpy(), c[0].numpy())


def test_parse_augment():
    assert S.parse_augment("jitter, dihedral") == ["jitter", "dihedral"]
    assert S.parse_augment("none") == []
    with pytest.raises(UserError, match="--augment 'rotate'"):
        S.parse_augment("jitter,rotate")


def test_class_weights_inverse_frequency():
    labels = np.zeros((1, 10, 10), np.uint8)
    labels[0, 0, :10] = 1          # 10 % class 1, 90 % class 0, class 2 absent
    labels[0, 1, 0] = IGNORE_INDEX
    w = class_weights(labels, 3)
    assert w[2] == 0 and w[1] > w[0] > 0
    assert w[1] / w[0] == pytest.approx(89 / 10, rel=1e-5)
    freq = np.array([89, 10, 0]) / 99
    assert (w * freq).sum() == pytest.approx(1.0, rel=1e-5)
