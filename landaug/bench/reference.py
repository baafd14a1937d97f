"""The fixture ``--compare`` measures against: pix2pix written the way the TensorFlow pix2pix tutorial writes it.

The same architecture as the project's (its filter counts, depth, dropout and normalisation placement at
the given size and width), but plainly: Keras ``Sequential`` blocks with ``BatchNormalization``, float32,
no XLA, one ``tf.function`` training step with two tapes, the tutorial's losses (binary cross-entropy from
logits plus 100 x L1 on a tanh output) and Keras Adam, fed by the tutorial's per-file input pipeline
(``Dataset.list_files``, PNG decoding per file, per-element jitter, shuffle, batch; no cache, no prefetch).
Nothing of the project's training code is used, so the speedup ``--compare`` reports is the project's own.

Usage: ``bench = build_reference(cfg, photos, labels, work)`` (a ``measure.Bench``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .measure import Bench

LAMBDA = 100                # the tutorial's L1 weight
REFERENCE_SHUFFLE = 400     # the tutorial's BUFFER_SIZE


def write_pngs(folder: Path, photos: np.ndarray, labels: np.ndarray, registry) -> Path:
    """``folder/a/*.png`` photos and ``folder/b/*.png`` colour label images, as the tutorial reads them."""
    from PIL import Image

    (folder / "a").mkdir(parents=True, exist_ok=True)
    (folder / "b").mkdir(parents=True, exist_ok=True)
    for i, (p, l) in enumerate(zip(photos, labels)):
        Image.fromarray(p).save(folder / "a" / f"scene_{i:04d}.png")
        Image.fromarray(registry.colorize(l)).save(folder / "b" / f"scene_{i:04d}.png")
    return folder


def _ref_downsample(filters: int, apply_batchnorm: bool, name: str):
    import keras
    import tensorflow as tf

    initializer = tf.random_normal_initializer(0.0, 0.02)
    block = keras.Sequential(name=name)
    block.add(keras.layers.Conv2D(filters, 4, strides=2, padding="same", kernel_initializer=initializer,
                                  use_bias=False))
    if apply_batchnorm:
        block.add(keras.layers.BatchNormalization())
    block.add(keras.layers.LeakyReLU(0.2))
    return block


def _ref_upsample(filters: int, apply_dropout: bool, name: str):
    import keras
    import tensorflow as tf

    initializer = tf.random_normal_initializer(0.0, 0.02)
    block = keras.Sequential(name=name)
    block.add(keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", kernel_initializer=initializer,
                                           use_bias=False))
    block.add(keras.layers.BatchNormalization())
    if apply_dropout:
        block.add(keras.layers.Dropout(0.5))
    block.add(keras.layers.ReLU())
    return block


def reference_generator(size: int, channels: int, width: float):
    """U-Net with the project's filters, dropout and normalisation placement; tanh output as in the tutorial."""
    import keras
    import tensorflow as tf

    from ..models.pix2pix import dropout_blocks, generator_filters

    filters = generator_filters(size, width)
    depth = len(filters)
    down_stack = [_ref_downsample(f, 0 < i < depth - 1, f"ref_down{i + 1}") for i, f in enumerate(filters)]
    n_drop = dropout_blocks(size)
    up_stack = [_ref_upsample(f, j < n_drop, f"ref_up{j + 1}") for j, f in enumerate(reversed(filters[:-1]))]
    last = keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same",
                                        kernel_initializer=tf.random_normal_initializer(0.0, 0.02),
                                        activation="tanh", name="ref_last")
    inputs = keras.layers.Input(shape=[size, size, 3])
    x = inputs
    skips = []
    for down in down_stack:
        x = down(x)
        skips.append(x)
    for up, skip in zip(up_stack, reversed(skips[:-1])):
        x = up(x)
        x = keras.layers.Concatenate()([x, skip])
    return keras.Model(inputs=inputs, outputs=last(x), name="reference_generator")


def reference_discriminator(size: int, channels: int, width: float):
    """PatchGAN with the project's depth and filters, written as in the tutorial."""
    import keras
    import tensorflow as tf

    from ..models.pix2pix import D_FILTERS, D_HEAD_FILTERS, discriminator_depth, scaled

    initializer = tf.random_normal_initializer(0.0, 0.02)
    inp = keras.layers.Input(shape=[size, size, 3], name="input_image")
    tar = keras.layers.Input(shape=[size, size, channels], name="target_image")
    x = keras.layers.concatenate([inp, tar])
    for i, f in enumerate(D_FILTERS[: discriminator_depth(size)]):
        x = _ref_downsample(scaled(f, width), i > 0, f"ref_d_down{i + 1}")(x)
    x = keras.layers.ZeroPadding2D()(x)
    x = keras.layers.Conv2D(scaled(D_HEAD_FILTERS, width), 4, strides=1, kernel_initializer=initializer,
                            use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    x = keras.layers.ZeroPadding2D()(x)
    last = keras.layers.Conv2D(1, 4, strides=1, kernel_initializer=initializer)(x)
    return keras.Model(inputs=[inp, tar], outputs=last, name="reference_discriminator")


def reference_dataset(folder: Path, size: int, batch: int, colors: np.ndarray | None, seed: int):
    """The tutorial's pipeline: list files, decode each in a map, jitter per element, shuffle, batch.

    ``colors`` (K, 3): the colour label image becomes K one-hot channels in [-1, 1] (the project's
    ``classes`` target); None keeps the RGB label image (``rgb`` target, the tutorial's own setting)."""
    import tensorflow as tf

    big = int(round(size * 286 / 256))
    table = None if colors is None else tf.constant(colors.astype(np.float32))

    def load(photo_file):
        label_file = tf.strings.regex_replace(photo_file, r"[/\\]a[/\\]([^/\\]+)$", r"/b/\1")
        photo = tf.cast(tf.io.decode_png(tf.io.read_file(photo_file), channels=3), tf.float32)
        label = tf.cast(tf.io.decode_png(tf.io.read_file(label_file), channels=3), tf.float32)
        return photo, label

    def resize(photo, label, height, width):
        photo = tf.image.resize(photo, [height, width], method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)
        label = tf.image.resize(label, [height, width], method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)
        return photo, label

    def random_crop(photo, label):
        stacked = tf.stack([photo, label], axis=0)
        cropped = tf.image.random_crop(stacked, size=[2, size, size, 3])
        return cropped[0], cropped[1]

    def random_jitter(photo, label):
        photo, label = resize(photo, label, big, big)
        photo, label = random_crop(photo, label)
        if tf.random.uniform(()) > 0.5:
            photo = tf.image.flip_left_right(photo)
            label = tf.image.flip_left_right(label)
        return photo, label

    def normalize(photo, label):
        return photo / 127.5 - 1, label / 127.5 - 1

    def to_classes(label):
        rgb = (label + 1) * 127.5
        nearest = tf.argmin(tf.reduce_sum(tf.abs(rgb[..., None, :] - table), axis=-1), axis=-1)
        return tf.one_hot(nearest, table.shape[0]) * 2 - 1

    def load_image_train(photo_file):
        photo, label = load(photo_file)
        photo, label = random_jitter(photo, label)
        photo, label = normalize(photo, label)
        return photo, (label if table is None else to_classes(label))

    files = tf.data.Dataset.list_files(str(Path(folder) / "a" / "*.png"), seed=seed)
    ds = files.map(load_image_train, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.shuffle(REFERENCE_SHUFFLE, seed=seed).batch(batch).repeat()


class ReferencePix2Pix:
    """Generator, discriminator, the tutorial's losses and optimizers, one compiled training step."""

    def __init__(self, size: int, channels: int, width: float):
        import keras
        import tensorflow as tf

        self.generator = reference_generator(size, channels, width)
        self.discriminator = reference_discriminator(size, channels, width)
        self.loss_object = keras.losses.BinaryCrossentropy(from_logits=True)
        self.generator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.discriminator_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.train_step = tf.function(self._train_step)
        self.infer = tf.function(lambda x: self.generator(x, training=False))

    def generator_loss(self, disc_generated_output, gen_output, target):
        import tensorflow as tf

        gan_loss = self.loss_object(tf.ones_like(disc_generated_output), disc_generated_output)
        l1_loss = tf.reduce_mean(tf.abs(target - gen_output))
        return gan_loss + LAMBDA * l1_loss, gan_loss, l1_loss

    def discriminator_loss(self, disc_real_output, disc_generated_output):
        import tensorflow as tf

        real_loss = self.loss_object(tf.ones_like(disc_real_output), disc_real_output)
        generated_loss = self.loss_object(tf.zeros_like(disc_generated_output), disc_generated_output)
        return real_loss + generated_loss

    def _train_step(self, input_image, target):
        import tensorflow as tf

        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            gen_output = self.generator(input_image, training=True)
            disc_real_output = self.discriminator([input_image, target], training=True)
            disc_generated_output = self.discriminator([input_image, gen_output], training=True)
            gen_total_loss, gen_gan_loss, gen_l1_loss = self.generator_loss(disc_generated_output, gen_output, target)
            disc_loss = self.discriminator_loss(disc_real_output, disc_generated_output)
        generator_gradients = gen_tape.gradient(gen_total_loss, self.generator.trainable_variables)
        discriminator_gradients = disc_tape.gradient(disc_loss, self.discriminator.trainable_variables)
        self.generator_optimizer.apply_gradients(zip(generator_gradients, self.generator.trainable_variables))
        self.discriminator_optimizer.apply_gradients(
            zip(discriminator_gradients, self.discriminator.trainable_variables))
        return gen_total_loss, disc_loss


def build_reference(cfg, photos, labels, work: Path) -> Bench:
    """The reference, built on ``photos``/``labels`` written as PNG files under ``work`` (it reads files)."""
    import keras
    import tensorflow as tf

    from ..classes import SPARCS

    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(cfg.seed)
    folder = write_pngs(work / "reference_pairs", photos, labels, SPARCS)
    colors = SPARCS.colors if cfg.target == "classes" else None
    channels = len(SPARCS) if cfg.target == "classes" else 3
    model = ReferencePix2Pix(cfg.size, channels, float(cfg.width))
    it = iter(reference_dataset(folder, cfg.size, cfg.batch, colors, cfg.seed))

    def train(batch):
        return model.train_step(*batch)[1]

    x = tf.constant(photos[:cfg.batch].astype(np.float32) / 127.5 - 1.0)
    spec_photo = tf.TensorSpec([cfg.batch, cfg.size, cfg.size, 3], tf.float32)
    spec_target = tf.TensorSpec([cfg.batch, cfg.size, cfg.size, channels], tf.float32)
    train_concrete = model.train_step.get_concrete_function(spec_photo, spec_target)
    infer_concrete = model.infer.get_concrete_function(spec_photo)
    return Bench("pix2pix reference (tutorial style, float32)", "float32", train, it,
                 lambda: model.infer(x)[:1, :1, :1], train_concrete, infer_concrete, cfg.batch, impl="reference")
