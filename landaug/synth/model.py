"""The mask-to-photo GANs on the common harness, and rendering photos for label layouts with them.

Both generators take a one-hot label map (S, S, K) and return a photo of the training bands in [-1, 1]
(their normalisation, ``bands.BandStats``); an ignore pixel (255) is an all-zero vector, so the generator
sees "unknown" there, and no loss counts it: no pixel loss, and the discriminator sees -1 there in real
and generated photos alike.

- ``spade`` (GauGAN, Park et al. 2019): SPADE generator with a latent per sample, multi-scale PatchGAN
  on (label, photo), hinge loss + ``LOSS_WEIGHTS["feature_matching"]`` x discriminator feature matching.
  Latents are drawn for the global batch from the step's stateless seeds and sliced per replica.
- ``pix2pix`` (Isola et al. 2017): the U-Net run label -> photo with the PatchGAN on (label, photo),
  non-saturating loss + 100 x L1 and the discriminator's loss halved; its only noise is dropout, whose
  random state is checkpointed.

At rendering time the photo's noise is a function of a key (seed, layout, k): a SPADE latent, or for
pix2pix the dropout seeds, with dropout kept on (``training=True``) and batch normalisation frozen at its
moving statistics, as pix2pix's authors kept dropout at test time for variety.

Usage: ``module = build_module(cfg, size, n_classes, stats)`` for ``harness.Trainer``;
``r = Renderer(kind, generator, latent_dim)``; ``photos = r.render(labels, [(seed, i, k), ...])`` (8-bit RGB)
or ``x = r.render_unit(...)`` (any bands, in [-1, 1]).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..bands import GAP_VALUE, BandStats, normalise_tf
from ..classes import IGNORE_INDEX
from ..harness.module import GanModule, optimizer, scale_loss

N_SCALES = 2                # discriminator scales of the SPADE GAN (GauGAN's)
L1_WEIGHT = 100.0           # pix2pix's lambda
PIX2PIX_WEIGHTS = {"adversarial": 1.0, "l1": L1_WEIGHT, "discriminator": 0.5}


def onehot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, S, S) class indices -> (N, S, S, K) float32 one-hot; ignore (or any value >= K) is all zero."""
    return (np.asarray(labels)[..., None] == np.arange(n_classes)).astype(np.float32)


def build_generator(kind: str, size: int, n_classes: int, width: float, latent_dim: int,
                    synchronized: bool = False, name: str = "generator", bands: int = 3):
    if kind == "spade":
        from ..models.spade import build_spade_generator

        return build_spade_generator(size, n_classes, bands, width, latent_dim, synchronized, name=name)
    from ..models.pix2pix import build_generator as unet

    return unet(size, bands, width, output="tanh", synchronized=synchronized, in_channels=n_classes, name=name)


def build_discriminator(kind: str, size: int, n_classes: int, width: float, synchronized: bool = False,
                        bands: int = 3):
    if kind == "spade":
        from ..models.spade import build_multiscale_discriminator

        return build_multiscale_discriminator(size, n_classes, bands, width, N_SCALES, synchronized)
    from ..models.pix2pix import build_discriminator as patchgan

    # pix2pix's discriminator sees (condition, target): here (label map, photo bands).
    return patchgan(size, bands, width, synchronized, photo_channels=n_classes)


class _LabelToPhoto(GanModule):
    """Networks, optimizers and the real batch shared by both kinds."""

    kind = ""

    def __init__(self, cfg, size: int, n_classes: int, stats: BandStats | None = None):
        self.cfg, self.size, self.n_classes = cfg, size, n_classes
        self.stats = stats if stats is not None else BandStats.identity_uint8(3)
        self.bands = self.stats.n_bands

    def build(self, rt) -> None:
        cfg = self.cfg
        self.rt = rt
        sync = rt.num_replicas > 1
        with rt.strategy.scope():
            self.G = build_generator(self.kind, self.size, self.n_classes, cfg.width, cfg.latent_dim, sync,
                                     bands=self.bands)
            self.D = build_discriminator(self.kind, self.size, self.n_classes, cfg.width, sync, bands=self.bands)
            self.g_inner, self.g_opt = optimizer(rt, cfg.lr, cfg.beta1, "g_adam", self.G.trainable_variables)
            self.d_inner, self.d_opt = optimizer(rt, cfg.lr, cfg.beta1, "d_adam", self.D.trainable_variables)

    def checkpoint_objects(self) -> dict:
        return {"generator": self.G, "discriminator": self.D, "g_optimizer": self.g_inner,
                "d_optimizer": self.d_inner}

    def real_pair(self, batch):
        """(b, S, S, bands + 1) raw photo + class index -> photo in [-1, 1], one-hot label, valid-pixel mask
        (an ignored label or a photo without data, NaN)."""
        import tensorflow as tf

        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        photo = normalise_tf(x[..., :self.bands], self.stats)                  # (b, S, S, bands)
        label = tf.cast(x[..., self.bands], tf.int32)                          # (b, S, S)
        # tf.one_hot gives all zeros for the out-of-range ignore value 255: "unknown" to the generator.
        hot = tf.one_hot(label, self.n_classes, dtype=tf.float32)             # (b, S, S, K)
        finite = tf.reduce_all(tf.math.is_finite(tf.cast(x[..., :self.bands], tf.float32)), axis=-1)
        valid = tf.cast(tf.not_equal(label, IGNORE_INDEX) & finite, tf.float32)        # (b, S, S)
        return photo, hot, valid

    def hide_gaps(self, photos, valid):
        """Photos (real or generated) set to -1 where the label is ignored (no data in the photo, or no
        annotation): the same on both sides of the discriminator, so no loss counts those pixels."""
        import tensorflow as tf

        return tf.where(valid[..., None] > 0, photos, tf.constant(GAP_VALUE, photos.dtype))

    def average(self, per_example):
        import tensorflow as tf

        return tf.nn.compute_average_loss(per_example, global_batch_size=self.cfg.batch)


class SpadeModule(_LabelToPhoto):
    kind = name = "spade"
    metric_names = ("d_loss", "g_loss", "g_adv", "g_fm")
    n_seeds = 2

    @property
    def loss_weights(self) -> dict:
        from ..models.spade import LOSS_WEIGHTS

        return LOSS_WEIGHTS

    def replica_step(self, batch, seeds) -> dict:
        import tensorflow as tf

        from ..models.spade import d_hinge, feature_matching, g_hinge, split_outputs

        cfg, w = self.cfg, self.loss_weights
        photo, hot, valid = self.real_pair(batch)
        ctx = tf.distribute.get_replica_context()
        local = cfg.batch // self.rt.num_replicas
        first = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * local

        def latent(i):
            # Drawn for the whole global batch, then sliced: the same numbers on any replica count.
            return tf.random.stateless_normal([cfg.batch, cfg.latent_dim], seed=seeds[:, i])[first:first + local]

        def judge(photos):
            return split_outputs(self.D([hot, self.hide_gaps(photos, valid)], training=True), N_SCALES)

        fake = tf.stop_gradient(self.G([hot, latent(0)], training=True))
        with tf.GradientTape() as tape:
            real_out, fake_out = judge(photo), judge(fake)
            d_loss = self.average(d_hinge([lg for _, lg in real_out], [lg for _, lg in fake_out]))
            d_scaled = scale_loss(self.d_opt, d_loss)
        self.d_opt.apply_gradients(zip(tape.gradient(d_scaled, self.D.trainable_variables),
                                       self.D.trainable_variables))
        real_features = [f for f, _ in judge(photo)]
        with tf.GradientTape() as tape:
            fake_out = judge(self.G([hot, latent(1)], training=True))
            adv = g_hinge([lg for _, lg in fake_out])
            fm = feature_matching(real_features, [f for f, _ in fake_out])
            g_loss = self.average(w["adversarial"] * adv + w["feature_matching"] * fm)
            g_scaled = scale_loss(self.g_opt, g_loss)
        self.g_opt.apply_gradients(zip(tape.gradient(g_scaled, self.G.trainable_variables),
                                       self.G.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss, "g_adv": self.average(adv), "g_fm": self.average(fm)}


class Pix2PixModule(_LabelToPhoto):
    kind = name = "pix2pix"
    metric_names = ("d_loss", "g_loss", "g_adv", "g_l1")
    loss_weights = PIX2PIX_WEIGHTS
    n_seeds = 0

    def build(self, rt) -> None:
        from ..models.pix2pix import dropout_seed_variables

        super().build(rt)
        self.dropout_state = dropout_seed_variables(self.G)

    def checkpoint_objects(self) -> dict:
        return {**super().checkpoint_objects(), "dropout": self.dropout_state}

    def replica_step(self, batch, seeds) -> dict:
        import tensorflow as tf

        w = self.loss_weights
        photo, hot, valid = self.real_pair(batch)

        def bce(target_value, logits):  # per example: mean over patches
            xent = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), target_value),
                                                           logits=logits)
            return tf.reduce_mean(xent, axis=[1, 2, 3])

        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.G(hot, training=True)
            d_real = self.D([hot, self.hide_gaps(photo, valid)], training=True)
            d_fake = self.D([hot, self.hide_gaps(fake, valid)], training=True)
            adv = bce(1.0, d_fake)
            # Mean |photo - fake| over channels and all pixels, ignore pixels counting zero.
            l1 = tf.reduce_sum(tf.reduce_mean(tf.abs(photo - fake), -1) * valid, [1, 2]) / float(self.size ** 2)
            g_loss = self.average(w["adversarial"] * adv + w["l1"] * l1)
            d_loss = self.average(w["discriminator"] * (bce(1.0, d_real) + bce(0.0, d_fake)))
            g_scaled, d_scaled = scale_loss(self.g_opt, g_loss), scale_loss(self.d_opt, d_loss)
        g_grads = g_tape.gradient(g_scaled, self.G.trainable_variables)
        d_grads = d_tape.gradient(d_scaled, self.D.trainable_variables)
        self.g_opt.apply_gradients(zip(g_grads, self.G.trainable_variables))
        self.d_opt.apply_gradients(zip(d_grads, self.D.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss, "g_adv": self.average(adv), "g_l1": self.average(l1)}


def build_module(cfg, size: int, n_classes: int, stats: BandStats | None = None) -> _LabelToPhoto:
    return (SpadeModule if cfg.generator == "spade" else Pix2PixModule)(cfg, size, n_classes, stats)


def to_uint8(x) -> np.ndarray:
    return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


class Renderer:
    """Photos for label maps from a generator (its own copy, not the one being trained), noise by key."""

    def __init__(self, kind: str, generator, latent_dim: int, batch: int = 16):
        import keras
        import tensorflow as tf

        from ..runtime import call_inference, model_function

        self.kind, self.model, self.latent_dim, self.batch = kind, generator, int(latent_dim), int(batch)
        self.n_classes = int(generator.inputs[0].shape[-1])
        self.bands = int(generator.outputs[0].shape[-1])
        if kind == "pix2pix":
            from ..models.pix2pix import dropout_seed_variables

            # Dropout on, batch statistics off: the moving averages the training run kept.
            for layer in generator.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
            self.states = list(dropout_seed_variables(generator).values())
            self.fn = tf.function(self._one_with_dropout)
        else:
            self.fn = model_function(call_inference, generator)

    def _one_with_dropout(self, x, seeds):
        for i, state in enumerate(self.states):
            state.assign(seeds[i])
        return self.model(x, training=True)

    def noise(self, key: Sequence[int]) -> np.ndarray:
        """The latent (SPADE) or the dropout layers' seeds (pix2pix) of one photo."""
        rng = np.random.default_rng([int(k) for k in key])
        if self.kind == "pix2pix":
            return rng.integers(0, 2 ** 31 - 1, (len(self.states), 2), dtype=np.int64)
        return rng.standard_normal(self.latent_dim).astype(np.float32)

    def render(self, labels: np.ndarray, keys: Sequence[Sequence[int]]) -> np.ndarray:
        """uint8 photos (N, S, S, 3) of an 8-bit RGB generator (see ``render_unit``)."""
        return to_uint8(self.render_unit(labels, keys))

    def render_unit(self, labels: np.ndarray, keys: Sequence[Sequence[int]]) -> np.ndarray:
        """Photos (N, S, S, bands) in [-1, 1] for label maps (N, S, S), photo i with the noise of ``keys[i]``.

        pix2pix renders one photo a call, so a photo never depends on what else is in the batch."""
        hot = onehot(labels, self.n_classes)
        if self.kind == "pix2pix":
            import tensorflow as tf

            outs = [np.asarray(self.fn(tf.constant(hot[i:i + 1]), tf.constant(self.noise(k))))
                    for i, k in enumerate(keys)]
        else:
            z = np.stack([self.noise(k) for k in keys]) if len(keys) else np.zeros((0, self.latent_dim), np.float32)
            outs = [np.asarray(self.fn([hot[i:i + self.batch], z[i:i + self.batch]]))
                    for i in range(0, len(keys), self.batch)]
        return (np.concatenate(outs).astype(np.float32) if outs
                else np.zeros((0, *labels.shape[1:], self.bands), np.float32))
