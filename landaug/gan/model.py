"""The paper's DCGAN (photos, or photo + label map in paired mode) as a GAN module on the common harness.

One discriminator update, then one generator update, per step; the non-saturating logistic loss on logits
(or the hinge loss); DiffAugment on real and generated scenes alike before the discriminator, in both
updates; Gaussian noise on the discriminator's inputs (the paper's); and an exponential moving average of
the generator for sampling, warmed up as ``tf.train.ExponentialMovingAverage(num_updates)`` does.

Every random tensor of a step (latents, input noise, DiffAugment parameters) is drawn for the global batch
from the step's stateless seeds and sliced per replica: the same numbers on any number of replicas.

Usage: ``module = Dcgan(cfg, plan)``, trained by ``landaug.harness.Trainer``; ``d_loss, g_loss = losses(kind, r, f)``.
"""

from __future__ import annotations

from ..bands import GAP_VALUE, BandStats, normalise_tf
from ..classes import IGNORE_INDEX
from ..diffaugment import diff_augment, n_random, parse_policy
from ..harness.module import GanModule, optimizer, scale_loss
from ..models import dcgan

LOSS_WEIGHTS = {"adversarial": 1.0}
EMA_WARMUP = 10.0   # decay min(ema, (1 + t) / (10 + t)) at step t


def losses(kind: str, real_logits, fake_logits):
    """Per-example (discriminator loss, generator loss) from logits (B, 1)."""
    import tensorflow as tf

    r, f = tf.squeeze(real_logits, -1), tf.squeeze(fake_logits, -1)
    if kind == "hinge":
        return tf.nn.relu(1.0 - r) + tf.nn.relu(1.0 + f), -f
    return tf.nn.softplus(-r) + tf.nn.softplus(f), tf.nn.softplus(-f)


def ema_decay(ema: float, step):
    """Warm-up: early samples follow training, later ones average over about 1 / (1 - ema) steps."""
    import tensorflow as tf

    t = tf.cast(step, tf.float32)
    return tf.minimum(tf.constant(ema, tf.float32), (1.0 + t) / (EMA_WARMUP + t))


class Dcgan(GanModule):
    name = "dcgan"
    metric_names = ("d_loss", "g_loss", "d_real", "d_fake")
    loss_weights = LOSS_WEIGHTS
    n_seeds = 8

    def __init__(self, cfg, size: int, n_classes: int = 0, bands: int = 3, stats: BandStats | None = None):
        self.cfg, self.size, self.n_classes, self.bands = cfg, size, n_classes, bands
        self.stats = stats if stats is not None else BandStats.identity_uint8(bands)
        self.policy = parse_policy(cfg.diffaugment)
        self.channels = dcgan.out_channels(n_classes, bands)

    def build(self, rt) -> None:
        cfg = self.cfg
        self.rt = rt
        sync = rt.num_replicas > 1
        with rt.strategy.scope():
            self.G = dcgan.build_generator(self.size, cfg.width, cfg.latent_dim, self.n_classes, sync, bands=self.bands)
            self.D = dcgan.build_discriminator(self.size, cfg.width, self.n_classes, sync, bands=self.bands)
            self.E = dcgan.build_generator(self.size, cfg.width, cfg.latent_dim, self.n_classes, sync,
                                           name="generator_ema", bands=self.bands)
            self.E.set_weights(self.G.get_weights())
            self.g_inner, self.g_opt = optimizer(rt, cfg.lr, cfg.beta1, "g_adam", self.G.trainable_variables)
            self.d_inner, self.d_opt = optimizer(rt, cfg.lr, cfg.beta1, "d_adam", self.D.trainable_variables)

    def checkpoint_objects(self) -> dict:
        return {"generator": self.G, "discriminator": self.D, "generator_ema": self.E,
                "g_optimizer": self.g_inner, "d_optimizer": self.d_inner}

    def augment(self, x, u):
        return diff_augment(x, self.policy, u, self.bands) if self.policy else x

    def _d_grads(self, real, valid, z, noise_real, noise_fake, u_real, u_fake):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            fake = self.hide_gaps(self.G(z, training=True), valid)
            real_logits = self.D([self.augment(real, u_real), noise_real], training=True)
            fake_logits = self.D([self.augment(fake, u_fake), noise_fake], training=True)
            d_per_sample, _ = losses(self.cfg.loss, real_logits, fake_logits)
            loss = tf.nn.compute_average_loss(d_per_sample, global_batch_size=self.cfg.batch)
            scaled = scale_loss(self.d_opt, loss)
        grads = tape.gradient(scaled, self.D.trainable_variables)
        return grads, loss, (tf.reduce_sum(real_logits) / self.cfg.batch, tf.reduce_sum(fake_logits) / self.cfg.batch)

    def _g_grads(self, valid, z, noise_fake, u_fake):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            fake = self.hide_gaps(self.G(z, training=True), valid)
            fake_logits = self.D([self.augment(fake, u_fake), noise_fake], training=True)
            _, g_per_sample = losses(self.cfg.loss, tf.zeros_like(fake_logits), fake_logits)
            loss = tf.nn.compute_average_loss(g_per_sample, global_batch_size=self.cfg.batch)
            scaled = scale_loss(self.g_opt, loss)
        return tape.gradient(scaled, self.G.trainable_variables), loss

    def real_scenes(self, real):
        """Raw photos (+ class index channel) -> scenes in [-1, 1] (+ one-hot label channels)."""
        import tensorflow as tf

        photo = normalise_tf(real[..., :self.bands], self.stats)
        if not self.n_classes:
            return photo                                                          # (b, S, S, bands)
        onehot = tf.one_hot(tf.cast(real[..., self.bands], tf.int32), self.n_classes, dtype=tf.float32)
        return tf.concat([photo, onehot], -1)                                     # (b, S, S, bands + k)

    def real_valid(self, real):
        """(b, S, S) True where a real scene has data: finite photo bands (``load_scenes`` gives gaps as NaN)
        and, in paired mode, a label."""
        import tensorflow as tf

        valid = tf.reduce_all(tf.math.is_finite(tf.cast(real[..., :self.bands], tf.float32)), axis=-1)
        if self.n_classes:
            valid = valid & tf.not_equal(tf.cast(real[..., self.bands], tf.int32), IGNORE_INDEX)
        return valid

    def hide_gaps(self, x, valid):
        """Scenes (real or generated) with the real scenes' pixels without data set to what a gap holds (-1
        in the photo bands, a zero label vector): the same on both sides of the discriminator, they tell it
        nothing, so no loss counts them and the generator is never taught to draw gaps."""
        import tensorflow as tf

        fill = tf.constant([GAP_VALUE] * self.bands + [0.0] * self.n_classes, x.dtype)
        return tf.where(valid[..., None], x, fill)

    def replica_step(self, batch, seeds) -> dict:
        import tensorflow as tf

        cfg = self.cfg
        raw = batch[0] if isinstance(batch, (tuple, list)) else batch
        ctx = tf.distribute.get_replica_context()
        local = cfg.batch // self.rt.num_replicas
        first = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * local
        size, c = self.size, self.channels
        k = max(n_random(self.policy), 1)

        def draw(i, shape, normal=True):
            # Drawn for the whole global batch, then sliced: the same numbers on any replica count.
            fn = tf.random.stateless_normal if normal else tf.random.stateless_uniform
            return fn([cfg.batch, *shape], seed=seeds[:, i])[first:first + local]

        sigma = 2.0 * cfg.d_noise  # the option is in 0..1 intensity units, scenes are in [-1, 1]

        def noise(i):
            return sigma * draw(i, [size, size, c]) if sigma else tf.zeros([local, size, size, c])

        valid = self.real_valid(raw)
        real = self.hide_gaps(self.real_scenes(raw), valid)
        d_grads, d_loss, (d_real, d_fake) = self._d_grads(
            real, valid, draw(0, [cfg.latent_dim]), noise(1), noise(2), draw(3, [k], normal=False),
            draw(4, [k], normal=False))
        self.d_opt.apply_gradients(zip(d_grads, self.D.trainable_variables))
        g_grads, g_loss = self._g_grads(valid, draw(5, [cfg.latent_dim]), noise(6), draw(7, [k], normal=False))
        self.g_opt.apply_gradients(zip(g_grads, self.G.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}

    def after_step(self, step) -> None:
        import tensorflow as tf

        decay = ema_decay(self.cfg.ema, step)
        for e, w in zip(self.E.weights, self.G.weights):
            e.assign(decay * e + (1.0 - decay) * tf.cast(w, e.dtype))
