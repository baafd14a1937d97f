"""The mask-to-photo GANs on the common harness.

Every generator takes a one-hot label map (S, S, K) and returns a photo of the training bands in [-1, 1]
(their normalisation, ``bands.BandStats``); an ignore pixel (255) is an all-zero vector, so the generator
sees "unknown" there, and no loss counts it: no pixel loss, and the discriminator sees -1 there in real
and generated photos alike.

- ``oasis`` (Schönfeld et al. 2021, on a U-Net): a latent per photo and a per-pixel noise map at every
  decoder scale, resize-convolution decoder; a segmentation discriminator with N + 1 classes, the
  class-balanced OASIS loss and no pixel loss by default (``--l1`` adds one), optionally a
  mode-seeking term (``--diversity``, Mao et al. 2019) and DiffAugment on the discriminator's inputs.
- ``spade`` (GauGAN, Park et al. 2019): SPADE generator with a latent per sample, multi-scale PatchGAN
  on (label, photo), hinge loss + ``LOSS_WEIGHTS["feature_matching"]`` x discriminator feature matching.
- ``pix2pix`` (Isola et al. 2017): the U-Net run label -> photo with the PatchGAN on (label, photo),
  non-saturating loss + 100 x L1 and the discriminator's loss halved; its only noise is dropout, whose
  random state is checkpointed.

Random inputs (latents, noise maps, DiffAugment parameters) are drawn for the global batch from the
step's stateless seeds and sliced per replica. Rendering with a trained generator is ``render``.

Usage: ``module = build_module(cfg, size, n_classes, stats)`` for ``harness.Trainer``;
``g = build_generator(kind, size, n_classes, width, latent_dim)``.
"""

from __future__ import annotations

import numpy as np

from ..bands import GAP_VALUE, BandStats, normalise_tf
from ..classes import IGNORE_INDEX
from ..harness.module import GanModule, optimizer, scale_loss

N_SCALES = 2                # discriminator scales of the SPADE GAN (GauGAN's)
L1_WEIGHT = 100.0           # pix2pix's lambda
PIX2PIX_WEIGHTS = {"adversarial": 1.0, "l1": L1_WEIGHT, "discriminator": 0.5}
EMA = 0.999                 # oasis renders with a moving average of its generator
RENDERED = {"oasis": "generator_ema"}   # the checkpoint entry of the rendering generator, if not "generator"


def onehot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, S, S) class indices -> (N, S, S, K) float32 one-hot; ignore (or any value >= K) is all zero."""
    return (np.asarray(labels)[..., None] == np.arange(n_classes)).astype(np.float32)


def build_generator(kind: str, size: int, n_classes: int, width: float, latent_dim: int,
                    synchronized: bool = False, name: str = "generator", bands: int = 3):
    if kind == "oasis":
        from ..models.oasis import build_noise_generator

        return build_noise_generator(size, n_classes, bands, width, latent_dim, synchronized, name=name)
    if kind == "spade":
        from ..models.spade import build_spade_generator

        return build_spade_generator(size, n_classes, bands, width, latent_dim, synchronized, name=name)
    from ..models.pix2pix import build_generator as unet

    return unet(size, bands, width, output="tanh", synchronized=synchronized, in_channels=n_classes, name=name)


def build_discriminator(kind: str, size: int, n_classes: int, width: float, synchronized: bool = False,
                        bands: int = 3):
    if kind == "oasis":
        from ..models.oasis import build_segmentation_discriminator

        return build_segmentation_discriminator(size, n_classes, bands, width)
    if kind == "spade":
        from ..models.spade import build_multiscale_discriminator

        return build_multiscale_discriminator(size, n_classes, bands, width, N_SCALES, synchronized)
    from ..models.pix2pix import build_discriminator as patchgan

    # pix2pix's discriminator sees (condition, target): here (label map, photo bands).
    return patchgan(size, bands, width, synchronized, photo_channels=n_classes)


class _LabelToPhoto(GanModule):
    """Networks, optimizers and the real batch shared by every kind."""

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

    @property
    def rendering(self):
        """The generator that renders photos (sample grids, checkpoints read by generate and score)."""
        return self.G

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


class OasisModule(_LabelToPhoto):
    """One forward pass, one tape per network (as pix2pix): the discriminator labels real pixels with their
    class and generated ones "fake"; the generator wants its pixels labelled with their layout's class.
    Photos are rendered by an exponential moving average of the generator (``EMA``, warmed up as the
    DCGAN's), which smooths out the last steps' swings."""

    kind = name = "oasis"
    n_seeds = 6    # latent, noise map, second latent and noise map, DiffAugment of real and generated

    def __init__(self, cfg, size: int, n_classes: int, stats: BandStats | None = None):
        from ..diffaugment import parse_policy

        super().__init__(cfg, size, n_classes, stats)
        self.policy = parse_policy(cfg.diffaugment)
        self.metric_names = ("d_loss", "g_loss", "g_adv", "g_l1") + (("g_div",) if cfg.diversity else ())

    def build(self, rt) -> None:
        super().build(rt)
        with rt.strategy.scope():
            self.E = build_generator(self.kind, self.size, self.n_classes, self.cfg.width, self.cfg.latent_dim,
                                     rt.num_replicas > 1, name="generator_ema", bands=self.bands)
            self.E.set_weights(self.G.get_weights())

    @property
    def rendering(self):
        return self.E

    def checkpoint_objects(self) -> dict:
        return {**super().checkpoint_objects(), RENDERED["oasis"]: self.E}

    def after_step(self, step) -> None:
        import tensorflow as tf

        from ..gan.model import ema_decay

        decay = ema_decay(EMA, step)
        for e, w in zip(self.E.weights, self.G.weights):
            e.assign(decay * e + (1.0 - decay) * tf.cast(w, e.dtype))

    @property
    def loss_weights(self) -> dict:
        return {"adversarial": 1.0, "l1": self.cfg.l1, "diversity": self.cfg.diversity}

    def _draw(self, seeds, i: int, shape, normal: bool = True):
        """Random numbers for the whole global batch, sliced: the same numbers on any replica count."""
        import tensorflow as tf

        ctx = tf.distribute.get_replica_context()
        local = self.cfg.batch // self.rt.num_replicas
        first = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * local
        fn = tf.random.stateless_normal if normal else tf.random.stateless_uniform
        return fn([self.cfg.batch, *shape], seed=seeds[:, i])[first:first + local]

    def _judge(self, photos, hot, weights, u):
        """Discriminator logits of photos, with the one-hot labels and pixel weights moved alike by DiffAugment."""
        import tensorflow as tf

        from ..diffaugment import diff_augment

        if self.policy:
            x = diff_augment(tf.concat([photos, hot, weights[..., None]], -1), self.policy, u, self.bands)
            photos, hot, weights = x[..., :self.bands], x[..., self.bands:-1], x[..., -1]
        return self.D(photos, training=True), hot, weights

    def replica_step(self, batch, seeds) -> dict:
        import tensorflow as tf

        from ..diffaugment import n_random
        from ..models.oasis import class_balance, mode_seeking, segmentation_d_loss, segmentation_g_loss

        cfg, w = self.cfg, self.loss_weights
        photo, hot, valid = self.real_pair(batch)
        ctx = tf.distribute.get_replica_context()
        counts = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(hot, [0, 1, 2]))
        weights = class_balance(hot, counts)
        k = max(n_random(self.policy), 1)
        noise_shape = [self.size, self.size, 1]
        z = self._draw(seeds, 0, [cfg.latent_dim])
        noise = self._draw(seeds, 1, noise_shape)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.G([hot, z, noise], training=True)
            if cfg.diversity:
                z2 = self._draw(seeds, 2, [cfg.latent_dim])
                fake2 = self.G([hot, z2, self._draw(seeds, 3, noise_shape)], training=True)
                div = mode_seeking(fake, fake2, z, z2)
            real_logits, real_hot, real_w = self._judge(self.hide_gaps(photo, valid), hot, weights,
                                                        self._draw(seeds, 4, [k], False))
            fake_logits, fake_hot, fake_w = self._judge(self.hide_gaps(fake, valid), hot, weights,
                                                        self._draw(seeds, 5, [k], False))
            adv = segmentation_g_loss(fake_logits, fake_hot, fake_w)
            # Mean |photo - fake| over bands and all pixels, ignore pixels counting zero.
            l1 = tf.reduce_sum(tf.reduce_mean(tf.abs(photo - fake), -1) * valid, [1, 2]) / float(self.size ** 2)
            per_example = w["adversarial"] * adv + w["l1"] * l1
            if cfg.diversity:
                per_example -= w["diversity"] * div
            g_loss = self.average(per_example)
            d_loss = self.average(segmentation_d_loss(real_logits, fake_logits, real_hot, real_w, fake_hot))
            g_scaled, d_scaled = scale_loss(self.g_opt, g_loss), scale_loss(self.d_opt, d_loss)
        g_grads = g_tape.gradient(g_scaled, self.G.trainable_variables)
        d_grads = d_tape.gradient(d_scaled, self.D.trainable_variables)
        self.g_opt.apply_gradients(zip(g_grads, self.G.trainable_variables))
        self.d_opt.apply_gradients(zip(d_grads, self.D.trainable_variables))
        out = {"d_loss": d_loss, "g_loss": g_loss, "g_adv": self.average(adv), "g_l1": self.average(l1)}
        if cfg.diversity:
            out["g_div"] = self.average(div)
        return out


MODULES = {"spade": SpadeModule, "pix2pix": Pix2PixModule, "oasis": OasisModule}


def build_module(cfg, size: int, n_classes: int, stats: BandStats | None = None) -> _LabelToPhoto:
    return MODULES[cfg.generator](cfg, size, n_classes, stats)


