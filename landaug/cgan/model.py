"""The labeller as a training module: the pix2pix GAN, or the same U-Net trained on the per-pixel loss alone.

``--labeller pix2pix`` (Isola et al. 2017): the generator minimises the adversarial loss plus
``LOSS_WEIGHTS["pixel"]`` (the paper's lambda = 100) times a per-pixel loss, on class logits
(``--target classes``: ``--loss`` ce, ce+dice or ce+lovasz, ``landaug.cgan.losses``) or L1 on the colour
label image (``--target rgb``, the paper's); the discriminator's loss is halved, as in the paper, so it
learns more slowly than the generator. Ignored pixels (255) carry the generator's own output on both sides
of the discriminator and add nothing to the pixel loss.

``--labeller unet``: the same U-Net generator trained on the per-pixel loss alone, the standard
segmentation set-up; no discriminator is built, trained or saved.

Both learn at the rate ``--lr-schedule`` gives each step (``landaug.harness.schedule``).

Usage: ``module = build_module(cfg, registry, weights, bands, total_steps)``, trained by
``landaug.harness.Trainer``; ``decoder(target, colors)`` turns outputs into class probabilities.
"""

from __future__ import annotations

import numpy as np

from ..classes import IGNORE_INDEX, ClassRegistry
from ..harness.module import GanModule, optimizer, scale_loss
from ..harness.schedule import learning_rate
from .losses import pixel_loss

LAMBDA = 100.0          # weight of the per-pixel loss (cross-entropy or L1) against the adversarial loss
LOSS_WEIGHTS = {"adversarial": 1.0, "pixel": LAMBDA, "discriminator": 0.5}
TARGETS = ("classes", "rgb")
LABELLERS = ("pix2pix", "unet")


def target_channels(target: str, n_classes: int) -> int:
    return n_classes if target == "classes" else 3


def build_labeller(size: int, width: float, target: str, n_classes: int, synchronized: bool = False,
                   dropout: float = 0.5, bands: int = 3, upsample: str = "transpose", inference: bool = False):
    """The U-Net generator: photo -> class logits (or a tanh colour label image for ``--target rgb``); built
    ``inference=True``, its last layer computes at the compute precision (``build_generator``'s head_dtype)."""
    from ..models.pix2pix import build_generator

    return build_generator(size, target_channels(target, n_classes), width,
                           output="logits" if target == "classes" else "tanh", synchronized=synchronized,
                           dropout=dropout, in_channels=bands, upsample=upsample,
                           head_dtype=None if inference else "float32")


def weights_at_compute_precision(model):
    """``model`` with its convolutions' weights held at the compute precision of the mixed-precision policy,
    cast once instead of at every forward pass (about 8 % of a 128 px labeller's pass on a CPU), with the
    same outputs bit for bit; the other layers keep their float32 variables (batch-norm statistics), a layer
    built to compute in float32 stays so. For inference only; the model itself when the policy computes in
    float32."""
    import keras

    dtype = keras.mixed_precision.global_policy().compute_dtype
    if dtype == "float32":
        return model

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)) and \
                layer.dtype_policy.compute_dtype == dtype:
            config["dtype"] = dtype
        return layer.__class__.from_config(config)
    held = keras.models.clone_model(model, clone_function=clone)
    held.set_weights(model.get_weights())
    return held


def decoder(target: str, colors: np.ndarray):
    """Model output -> class probabilities (B, S, S, K) float32.

    classes: the softmax. rgb: weights proportional to the inverse squared distance to each class colour,
    normalised (on a class colour, that class gets 1; half-way between two, 0.5 each)."""
    import tensorflow as tf

    if target == "classes":
        return lambda out: tf.nn.softmax(tf.cast(out, tf.float32))
    table = tf.constant(colors.astype(np.float32) / 127.5 - 1.0)      # (K, 3) in [-1, 1]

    def probs(out):
        d = tf.norm(tf.cast(out, tf.float32)[..., None, :] - table, axis=-1)   # (B, S, S, K)
        w = 1.0 / tf.maximum(d, 1e-6) ** 2
        return w / tf.reduce_sum(w, axis=-1, keepdims=True)
    return probs


class Pix2Pix(GanModule):
    name = "pix2pix"
    metric_names = ("g_total", "g_adv", "g_seg", "d_loss")
    loss_weights = LOSS_WEIGHTS

    def __init__(self, cfg, registry: ClassRegistry, weights: np.ndarray | None = None, bands: int = 3,
                 total_steps: int | None = None):
        self.cfg, self.registry, self.bands, self.total_steps = cfg, registry, bands, total_steps
        self.n_classes = len(registry)
        self.loss_weights = {**LOSS_WEIGHTS, "pixel": cfg.lam}
        self.class_weights_np = weights if weights is not None else np.ones(self.n_classes, np.float32)

    def _optimizer(self, rt, name: str, variables):
        cfg = self.cfg
        return optimizer(rt, learning_rate(cfg.lr_schedule, cfg.lr, self.total_steps), cfg.beta1, name, variables)

    def _build_generator(self, rt) -> None:
        import tensorflow as tf

        from ..models.pix2pix import dropout_seed_variables

        cfg = self.cfg
        self.gen = build_labeller(cfg.size, cfg.width, cfg.target, self.n_classes, synchronized=rt.num_replicas > 1,
                                  dropout=cfg.dropout, bands=self.bands, upsample=cfg.upsample)
        self.g_inner, self.g_opt = self._optimizer(rt, "g_adam", self.gen.trainable_variables)
        self.dropout_state = dropout_seed_variables(self.gen)
        self.class_weights = tf.constant(self.class_weights_np)
        self.colors_unit = tf.constant(self.registry.colors.astype(np.float32) / 127.5 - 1.0)

    def build(self, rt) -> None:
        from ..models.pix2pix import build_discriminator

        cfg = self.cfg
        with rt.strategy.scope():
            self._build_generator(rt)
            self.disc = build_discriminator(cfg.size, target_channels(cfg.target, self.n_classes), cfg.width,
                                            synchronized=rt.num_replicas > 1, photo_channels=self.bands)
            self.d_inner, self.d_opt = self._optimizer(rt, "d_adam", self.disc.trainable_variables)

    def checkpoint_objects(self) -> dict:
        return {"generator": self.gen, "discriminator": self.disc, "g_opt": self.g_inner, "d_opt": self.d_inner,
                "dropout": self.dropout_state}

    def _targets(self, out, safe, valid):
        """(fake target, real target, per-example pixel loss) for the discriminator and the generator."""
        import tensorflow as tf

        if self.cfg.target == "classes":
            probs = tf.nn.softmax(out)                                              # (b, S, S, K)
            onehot = tf.one_hot(safe, self.n_classes, dtype=probs.dtype)
            real = tf.where(valid[..., None] > 0, onehot, tf.stop_gradient(probs))
            return probs, real, pixel_loss(self.cfg.loss, out, safe, valid, self.class_weights)
        size2 = float(self.cfg.size * self.cfg.size)
        truth = tf.gather(self.colors_unit, safe)                                  # (b, S, S, 3)
        real = tf.where(valid[..., None] > 0, truth, tf.stop_gradient(out))
        l1 = tf.reduce_mean(tf.abs(truth - out), axis=-1) * valid
        return out, real, tf.reduce_sum(l1, axis=[1, 2]) / size2

    def _average(self, per_example):
        import tensorflow as tf

        return tf.nn.compute_average_loss(per_example, global_batch_size=self.cfg.batch)

    @staticmethod
    def _labels(label):
        """(safe labels with ignored pixels set to class 0, valid mask 0/1 float32)."""
        import tensorflow as tf

        label = tf.cast(label, tf.int32)
        valid_b = tf.not_equal(label, IGNORE_INDEX)
        return tf.where(valid_b, label, tf.zeros_like(label)), tf.cast(valid_b, tf.float32)

    def replica_step(self, batch, seeds) -> dict:
        import tensorflow as tf

        photo, label = batch
        safe, valid = self._labels(label)
        w = self.loss_weights

        def bce(target_value, logits):  # per example: mean over patches
            xent = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), target_value),
                                                           logits=logits)
            return tf.reduce_mean(xent, axis=[1, 2, 3])

        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            out = self.gen(photo, training=True)
            fake, real, seg = self._targets(out, safe, valid)
            d_real = self.disc([photo, real], training=True)
            d_fake = self.disc([photo, fake], training=True)
            g_adv = bce(1.0, d_fake)
            g_loss = self._average(w["adversarial"] * g_adv + w["pixel"] * seg)
            d_loss = self._average(w["discriminator"] * (bce(1.0, d_real) + bce(0.0, d_fake)))
            g_scaled = scale_loss(self.g_opt, g_loss)
            d_scaled = scale_loss(self.d_opt, d_loss)
        g_grads = g_tape.gradient(g_scaled, self.gen.trainable_variables)
        d_grads = d_tape.gradient(d_scaled, self.disc.trainable_variables)
        self.g_opt.apply_gradients(zip(g_grads, self.gen.trainable_variables))
        self.d_opt.apply_gradients(zip(d_grads, self.disc.trainable_variables))
        return {"g_total": g_loss, "g_adv": self._average(g_adv), "g_seg": self._average(seg), "d_loss": d_loss}


class UNet(Pix2Pix):
    """The pix2pix generator trained on the per-pixel loss alone (weight 1): no discriminator."""

    name = "unet"
    metric_names = ("g_total", "g_seg")

    def build(self, rt) -> None:
        with rt.strategy.scope():
            self._build_generator(rt)

    def checkpoint_objects(self) -> dict:
        return {"generator": self.gen, "g_opt": self.g_inner, "dropout": self.dropout_state}

    def replica_step(self, batch, seeds) -> dict:
        import tensorflow as tf

        photo, label = batch
        safe, valid = self._labels(label)
        with tf.GradientTape() as tape:
            _, _, seg = self._targets(self.gen(photo, training=True), safe, valid)
            loss = self._average(seg)
            scaled = scale_loss(self.g_opt, loss)
        grads = tape.gradient(scaled, self.gen.trainable_variables)
        self.g_opt.apply_gradients(zip(grads, self.gen.trainable_variables))
        return {"g_total": loss, "g_seg": loss}


def build_module(cfg, registry: ClassRegistry, weights: np.ndarray | None = None, bands: int = 3,
                 total_steps: int | None = None) -> Pix2Pix:
    """The training module ``cfg.labeller`` names."""
    if cfg.labeller not in LABELLERS:
        raise ValueError(f"labeller must be one of {', '.join(LABELLERS)}, got {cfg.labeller!r}")
    return (UNet if cfg.labeller == "unet" else Pix2Pix)(cfg, registry, weights, bands, total_steps)
