"""Training and inference throughput of the GANs, against the machine's measured matrix-multiply peak.

Usage: ``python bench.py --model pix2pix --size 256 --batch 4 [--precision auto] [--xla] [--compare] [--json]``

One process measures, for one configuration: the median over timed steps (warm-up excluded) of images
per second of a training step (with its input pipeline) and of inference; the FLOPs of one training step,
counted from the step's graph by TensorFlow's profiler (not estimated from the architecture); the
achieved GFLOP/s; and the peak of a large matrix multiply in the run's compute precision and in float32.
Utilisation is achieved / float32 peak, so a run in bfloat16 shows its gain as a higher figure.

``--impl reference`` runs the same pix2pix architecture written plainly in the style of the TensorFlow
pix2pix tutorial (float32, no XLA, Keras layers, one ``tf.function`` step with two tapes, the tutorial's
losses and its per-file input pipeline); ``--compare`` runs the project and the reference in the same
process and reports the speedup.

From Python: ``run(BenchConfig(...))`` returns the result dictionary that ``--json`` prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import UserError
from .runtime import PRECISIONS, setup_runtime

MODELS = ("pix2pix", "dcgan", "paired")
IMPLS = ("project", "reference")
TARGETS = ("classes", "rgb")
DEFAULT_WIDTH = {"pix2pix": 1.0, "dcgan": 256, "paired": 256}
PEAK_MATMUL = 4096          # n of the n x n x n matmul: large enough to run at the kernel's full speed
PEAK_REPEATS = 8
LAMBDA = 100                # the tutorial's L1 weight
REFERENCE_SHUFFLE = 400     # the tutorial's BUFFER_SIZE
JSON_KEYS = ("images_per_second", "train_gflop_per_image", "achieved_gflops", "peak_gflops", "utilization")


@dataclass
class BenchConfig:
    model: str = "pix2pix"
    size: int = 256
    batch: int = 4
    width: float | None = None
    precision: str = "auto"
    xla: bool = False
    impl: str = "project"
    compare: bool = False
    target: str = "classes"
    steps: int = 10
    warmup: int = 3
    scenes: int = 0
    seed: int = 0
    peak_size: int = PEAK_MATMUL
    memory_limit_mb: float | None = None
    search_batch: bool = True
    profile: int = 0
    json: bool = False


class BatchTooLarge(Exception):
    """A configuration ran out of memory (a real allocation failure, or over ``--memory-limit-mb``)."""


# ---------------------------------------------------------------------------------------------------
# Validation (no TensorFlow)

def _power_of_two(n) -> bool:
    return isinstance(n, int) and n >= 1 and not n & (n - 1)


def resolve(cfg: BenchConfig) -> BenchConfig:
    width = DEFAULT_WIDTH[cfg.model] if cfg.width is None else cfg.width
    if cfg.model != "pix2pix":
        width = int(width) if float(width).is_integer() else width
    return dataclasses.replace(cfg, width=width)


def validate(cfg: BenchConfig) -> None:
    if cfg.model not in MODELS:
        raise UserError(f"--model must be one of {', '.join(MODELS)}, got {cfg.model!r}")
    if cfg.impl not in IMPLS:
        raise UserError(f"--impl must be one of {', '.join(IMPLS)}, got {cfg.impl!r}")
    if cfg.precision not in PRECISIONS:
        raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got {cfg.precision!r}")
    if cfg.target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, got {cfg.target!r}")
    if not _power_of_two(cfg.size) or not 16 <= cfg.size <= 1024:
        raise UserError(f"--size must be a power of two from 16 to 1024 (e.g. 256), got {cfg.size}")
    if cfg.batch < 1:
        raise UserError(f"--batch must be >= 1, got {cfg.batch}")
    if cfg.steps < 1 or cfg.warmup < 1:
        raise UserError(f"--steps and --warmup must be >= 1 (the first step traces the graph), "
                        f"got {cfg.steps} and {cfg.warmup}")
    if cfg.scenes < 0:
        raise UserError(f"--scenes must be >= 0 (0 = enough for two batches), got {cfg.scenes}")
    if cfg.peak_size < 64:
        raise UserError(f"--peak-size must be >= 64, got {cfg.peak_size}")
    if cfg.profile < 0:
        raise UserError(f"--profile must be >= 0 (0 = no profile), got {cfg.profile}")
    if cfg.memory_limit_mb is not None and cfg.memory_limit_mb <= 0:
        raise UserError(f"--memory-limit-mb must be > 0, got {cfg.memory_limit_mb}")
    if cfg.model == "pix2pix":
        if not 0 < float(cfg.width) <= 4:
            raise UserError(f"--width for pix2pix is a filter multiplier in (0, 4] (1 = the paper's), got {cfg.width}")
    else:
        if not _power_of_two(cfg.width) or cfg.width < 8:
            raise UserError(f"--width for {cfg.model} is the channel count at 4x4, a power of two >= 8 "
                            f"(the paper's is 256), got {cfg.width}")
        if cfg.target != "classes":
            raise UserError(f"--target applies to pix2pix only, not --model {cfg.model}")
    if cfg.impl == "reference" or cfg.compare:
        if cfg.model != "pix2pix":
            raise UserError("the reference implementation is pix2pix only: drop --impl reference / --compare "
                            "or use --model pix2pix")
    if cfg.impl == "reference":
        if cfg.xla:
            raise UserError("--impl reference is the plain float32 step without XLA: drop --xla")
        if cfg.precision not in ("auto", "float32"):
            raise UserError(f"--impl reference runs in float32: drop --precision {cfg.precision}")
        if cfg.compare:
            raise UserError("--compare runs both implementations: drop --impl reference")


# ---------------------------------------------------------------------------------------------------
# Measurement helpers

def median_rate(seconds: Sequence[float], items: int) -> float:
    """Items per second of the median step."""
    return items / statistics.median(seconds)


def count_flops(concrete) -> int:
    """Floating-point operations of one call of a traced function, from the ops' registered statistics.

    Only ops that run are counted: those the function's outputs and side effects (its control outputs,
    e.g. the optimizer updates) depend on. A gradient graph also holds nodes TensorFlow prunes before
    running (the filter gradient of a layer whose weights a tape does not ask for), which the profiler's
    whole-graph total (``tf.compat.v1.profiler`` with ``float_operation``) would add. TensorFlow registers
    a count for convolutions (forward and both backward kernels), matmuls and elementwise arithmetic;
    fused batch norm and the optimizer kernels have none, so the count slightly undercounts the step.
    Dtype-independent: a bfloat16 step counts what the same step in float32 would."""
    from tensorflow.python.framework import ops as tf_ops
    from tensorflow.python.util import deprecation

    # The per-op statistics still call a TF1 shape helper, which logs a deprecation notice per op type.
    with deprecation.silence():
        return _count_flops(concrete, tf_ops)


def _count_flops(concrete, tf_ops) -> int:
    graph = concrete.graph
    seen, stack = set(), [t.op for t in graph.outputs] + list(getattr(graph, "control_outputs", []))
    total = 0
    while stack:
        op = stack.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        stack.extend(t.op for t in op.inputs)
        stack.extend(op.control_inputs)
        try:
            total += tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value or 0
        except (ValueError, TypeError):
            # Ops with no registered statistic, or shapes unknown at trace time: no count.
            pass
    return int(total)


def matmul_peak(dtype: str, n: int = PEAK_MATMUL, repeats: int = PEAK_REPEATS) -> float:
    """GFLOP/s of the fastest of ``repeats`` n x n x n matmuls in ``dtype`` (after one warm-up).

    The fastest, not the median: a peak is what the hardware can do, and on a shared machine any
    slower repetition only shows interference."""
    import tensorflow as tf

    a = tf.cast(tf.random.stateless_normal([n, n], seed=[1, 2]), dtype)
    b = tf.cast(tf.random.stateless_normal([n, n], seed=[3, 4]), dtype)
    # Only a corner comes back to the host: the timing is the multiply, not a copy of the result.
    mm = tf.function(lambda x, y: tf.matmul(x, y)[:1, :1])
    mm(a, b).numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        mm(a, b).numpy()
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / min(times) / 1e9


def _reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS counter of this process (Linux), so each configuration has its own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def current_rss_mb() -> float | None:
    return _status_mb("VmRSS")


def _status_mb(key: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset (else since start: ru_maxrss)."""
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def device_memory_mb() -> dict | None:
    """Current and peak memory of the first accelerator, where TensorFlow reports it (GPUs); else None."""
    import tensorflow as tf

    for kind in ("GPU", "CPU"):
        devices = tf.config.list_logical_devices(kind)
        if not devices:
            continue
        try:
            info = tf.config.experimental.get_memory_info(devices[0].name)
        except (ValueError, tf.errors.OpError):
            continue
        return {"device": devices[0].name, "current_mb": info["current"] / 2 ** 20, "peak_mb": info["peak"] / 2 ** 20}
    return None


def _reset_device_memory() -> None:
    import tensorflow as tf

    for d in tf.config.list_logical_devices("GPU")[:1] or tf.config.list_logical_devices("CPU")[:1]:
        try:
            tf.config.experimental.reset_memory_stats(d.name)
        except (ValueError, tf.errors.OpError):
            pass


def _is_oom(e: BaseException) -> bool:
    import tensorflow as tf

    return isinstance(e, (MemoryError, tf.errors.ResourceExhaustedError)) or "out of memory" in str(e).lower()


def largest_fitting_batch(fits: Callable[[int], bool], too_big: int) -> int:
    """The largest batch below ``too_big`` for which ``fits`` holds (0 if not even 1 fits).

    Halves until a batch fits, then bisects between that one and the smallest known failure."""
    lo, hi = 0, too_big
    b = too_big // 2
    while b >= 1:
        if fits(b):
            lo = b
            break
        hi = b
        b //= 2
    if lo == 0:
        return 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def too_large_message(cfg: BenchConfig, largest: int | None, why: str) -> str:
    what = f"--batch {cfg.batch} does not fit in memory for --model {cfg.model} at {cfg.size} px ({why})"
    if largest is None:
        return what + ": try a smaller --batch"
    if largest == 0:
        return what + ": not even --batch 1 fits; use a smaller --size or --width"
    return f"{what}: the largest batch that fits is {largest}, use --batch {largest}"


# ---------------------------------------------------------------------------------------------------
# Data: synthetic scenes, in memory for the project's pipelines, as PNG files for the reference

def _scenes(n: int, size: int, seed: int):
    from .synthetic import make_scene

    photos = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty((n, size, size), np.uint8)
    for i in range(n):
        photos[i], labels[i] = make_scene(seed * 100_003 + i, size)
    return photos, labels


def _write_pngs(folder: Path, photos: np.ndarray, labels: np.ndarray, registry) -> Path:
    """``folder/a/*.png`` photos and ``folder/b/*.png`` colour label images, as the tutorial reads them."""
    from PIL import Image

    (folder / "a").mkdir(parents=True, exist_ok=True)
    (folder / "b").mkdir(parents=True, exist_ok=True)
    for i, (p, l) in enumerate(zip(photos, labels)):
        Image.fromarray(p).save(folder / "a" / f"scene_{i:04d}.png")
        Image.fromarray(registry.colorize(l)).save(folder / "b" / f"scene_{i:04d}.png")
    return folder


# ---------------------------------------------------------------------------------------------------
# The reference: the TensorFlow pix2pix tutorial's way, with this project's layer shapes

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

    from .pix2pix import dropout_blocks, generator_filters

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

    from .pix2pix import D_FILTERS, D_HEAD_FILTERS, discriminator_depth, scaled

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


# ---------------------------------------------------------------------------------------------------
# Benchmarks: each returns (step(batch), next_batch(), fixed batch, infer(), flops concrete functions)

@dataclass
class Bench:
    """What the timing loop needs, independent of the model."""
    label: str
    precision: str
    train: Callable            # train(batch) -> a small tensor to synchronise on
    batches: object            # iterator of input batches (the real training pipeline)
    infer: Callable            # infer() -> a small tensor to synchronise on
    train_concrete: object     # traced training step, for counting FLOPs
    infer_concrete: object
    infer_batch: int


def _sync(x) -> None:
    import tensorflow as tf

    for t in tf.nest.flatten(x):
        if hasattr(t, "numpy"):
            t.numpy()


def _pix2pix_project(cfg: BenchConfig, photos, labels, work: Path) -> Bench:
    import tensorflow as tf

    from .cgan import Pix2Pix, TrainConfig
    from .classes import SPARCS
    from .segdata import PairSet, base_dataset, epoch_dataset

    rt = setup_runtime(cfg.precision)
    tc = TrainConfig(data=work, out=work / "out", size=cfg.size, batch=cfg.batch, width=float(cfg.width),
                     target=cfg.target, precision=rt.precision, xla=cfg.xla, seed=cfg.seed, progress=False,
                     verbose=False)
    model = Pix2Pix(tc, rt, SPARCS, None)
    pairs = PairSet([f"scene_{i}" for i in range(len(photos))], photos, labels)
    ds = epoch_dataset(base_dataset(pairs), len(pairs), cfg.batch, cfg.seed, ["jitter"]).repeat()
    it = iter(ds)

    def train(batch):
        model.train_step(*batch)
        return model.step.read_value()

    x = tf.constant(photos[:cfg.batch].astype(np.float32) / 127.5 - 1.0)
    spec_photo = tf.TensorSpec([cfg.batch, cfg.size, cfg.size, 3], tf.float32)
    spec_label = tf.TensorSpec([cfg.batch, cfg.size, cfg.size], tf.uint8)
    # The same step without the XLA wrapper: the profiler cannot look inside a compiled cluster.
    train_concrete = tf.function(model._replica_step).get_concrete_function(spec_photo, spec_label)
    infer_concrete = tf.function(lambda p: model.gen(p, training=False)).get_concrete_function(spec_photo)
    return Bench(f"pix2pix project ({rt.precision}{', XLA' if cfg.xla else ''})", rt.precision, train, it,
                 lambda: model.infer(x)[1][:1, :1, :1], train_concrete, infer_concrete, cfg.batch)


def _pix2pix_reference(cfg: BenchConfig, photos, labels, work: Path) -> Bench:
    import keras
    import tensorflow as tf

    from .classes import SPARCS

    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(cfg.seed)
    folder = _write_pngs(work / "reference_pairs", photos, labels, SPARCS)
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
                 lambda: model.infer(x)[:1, :1, :1], train_concrete, infer_concrete, cfg.batch)


def _dcgan_project(cfg: BenchConfig, photos, labels, work: Path) -> Bench:
    import tensorflow as tf

    from . import gan
    from .classes import SPARCS

    paired = cfg.model == "paired"
    total = cfg.warmup + cfg.steps + 8
    tc = gan.TrainConfig(images=work, out=work / "out", size=cfg.size, width=int(cfg.width), batch=cfg.batch,
                         steps=total * 3, precision=cfg.precision, xla=cfg.xla, seed=cfg.seed, progress=False)
    plan = gan.DataPlan(photos=[], labels=[] if paired else None, native_size=cfg.size, size=cfg.size,
                        registry=SPARCS if paired else None, source=work)
    scenes = np.concatenate([photos, labels[..., None]], axis=-1) if paired else photos
    trainer = gan.build_trainer(tc, plan, scenes)
    it = iter(trainer.dataset(0))

    def train(batch):
        trainer.train_step(batch)
        return trainer.step.read_value()

    z = tf.constant(gan.latents(cfg.seed, range(cfg.batch), tc.latent_dim))
    spec_real = tf.TensorSpec([cfg.batch, cfg.size, cfg.size, scenes.shape[-1]], tf.uint8)
    spec_seeds = tf.TensorSpec([2, 8], tf.int64)
    train_concrete = tf.function(trainer._replica_step).get_concrete_function(spec_real, spec_seeds)
    infer_concrete = tf.function(lambda v: trainer.E(v, training=False)).get_concrete_function(
        tf.TensorSpec([cfg.batch, tc.latent_dim], tf.float32))
    rt = trainer.rt
    return Bench(f"{cfg.model} project ({rt.precision}{', XLA' if trainer.xla else ''})", rt.precision, train, it,
                 lambda: trainer._sample(z)[:1, :1, :1], train_concrete, infer_concrete, cfg.batch)


BUILDERS = {("pix2pix", "project"): _pix2pix_project, ("pix2pix", "reference"): _pix2pix_reference,
            ("dcgan", "project"): _dcgan_project, ("paired", "project"): _dcgan_project}


def profile_ops(step: Callable, n: int, top: int = 15) -> dict:
    """Op time per step by op type and by graph node, from a TensorFlow profiler trace of ``n`` steps.

    Times are summed over the threads that run ops, so on a multi-core CPU they add up to more than
    the step's wall time; the executor's own events around ops are left out."""
    import collections

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory(prefix="landaug_trace_") as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(n):
            step()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    per_type, per_node = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for ev in line.events:
                name = names.get(ev.metadata_id, "")
                # Op events are "<node name>:<op type>"; "A::B" events are the runtime's own, and
                # "__inference_*" types are function calls whose time is their ops' time again.
                if ":" not in name or "::" in name:
                    continue
                node, op = (part.strip() for part in name.rsplit(":", 1))
                if op.startswith("__"):
                    continue
                # oneDNN's graph rewrite renames the kernels it takes over (Conv2D -> _MklNativeConv2D).
                op = op.removeprefix("_MklNative").removeprefix("_Mkl")
                ms = ev.duration_ps / 1e9 / n
                per_type[op] += ms
                per_node[f"{node} ({op})"] += ms
    return {"steps": n, "op_ms_per_step": sum(per_type.values()),
            "by_op_type": dict(per_type.most_common(top)), "by_node": dict(per_node.most_common(top))}


def _timed(fn: Callable, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def measure(cfg: BenchConfig, impl: str, photos, labels, work: Path) -> dict:
    """Build one implementation, warm up, time training and inference; FLOPs from the traced step."""
    import keras

    keras.backend.clear_session()
    gc.collect()
    _reset_peak_rss()
    _reset_device_memory()
    rss_before = current_rss_mb()
    try:
        bench = BUILDERS[(cfg.model, impl)](cfg, photos, labels, work)
        for _ in range(cfg.warmup):
            _sync(bench.train(next(bench.batches)))
            _sync(bench.infer())
    except Exception as e:  # noqa: BLE001 - only out-of-memory is turned into a message; the rest re-raises
        if _is_oom(e):
            raise BatchTooLarge(str(e).splitlines()[0] if str(e) else type(e).__name__) from None
        raise
    needed = peak_rss_mb() - (rss_before or 0.0)
    if cfg.memory_limit_mb is not None and needed > cfg.memory_limit_mb:
        raise BatchTooLarge(f"needs {needed:.0f} MB, over --memory-limit-mb {cfg.memory_limit_mb:g}")

    # Input pipeline alone: how fast it produces batches when nothing else runs.
    input_times = _timed(lambda: _sync(next(bench.batches)), cfg.steps)
    # Training as in a training loop: wait for the next batch, run the step.
    loop, waits = [], []
    for _ in range(cfg.steps):
        t0 = time.perf_counter()
        batch = next(bench.batches)
        t1 = time.perf_counter()
        _sync(bench.train(batch))
        t2 = time.perf_counter()
        loop.append(t2 - t0)
        waits.append(t1 - t0)
    # The step alone, on a batch already in memory.
    fixed = next(bench.batches)
    step_times = _timed(lambda: _sync(bench.train(fixed)), cfg.steps)
    infer_times = _timed(lambda: _sync(bench.infer()), cfg.steps)

    profile = profile_ops(lambda: _sync(bench.train(fixed)), cfg.profile) if cfg.profile else None
    train_flops = count_flops(bench.train_concrete)
    infer_flops = count_flops(bench.infer_concrete)
    images_per_second = median_rate(loop, cfg.batch)
    gflop_per_image = train_flops / cfg.batch / 1e9
    result = {
        "impl": impl, "label": bench.label, "precision": bench.precision,
        "images_per_second": images_per_second,
        "step_only_images_per_second": median_rate(step_times, cfg.batch),
        "inference_images_per_second": median_rate(infer_times, bench.infer_batch),
        "train_gflop_per_image": gflop_per_image,
        "inference_gflop_per_image": infer_flops / bench.infer_batch / 1e9,
        "achieved_gflops": gflop_per_image * images_per_second,
        "inference_achieved_gflops": infer_flops / bench.infer_batch / 1e9 * median_rate(infer_times, bench.infer_batch),
        "step_seconds": statistics.median(loop),
        "step_only_seconds": statistics.median(step_times),
        "input_seconds_per_batch": statistics.median(input_times),
        "input_wait_seconds": statistics.median(waits),
        "peak_host_memory_mb": peak_rss_mb(),
        "host_memory_needed_mb": needed,
        "device_memory": device_memory_mb(),
    }
    if profile is not None:
        result["profile"] = profile
    bench = None   # the models go before the next implementation is built
    keras.backend.clear_session()
    gc.collect()
    return result


def machine() -> dict:
    import keras
    import tensorflow as tf

    from .runtime import cpu_model_name, cpu_supports_bf16

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {"cpu": cpu_model_name(), "cores": os.cpu_count(), "gpus": gpus, "bf16_native": cpu_supports_bf16(),
            "tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version(),
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on)")}


def _compute_dtype(precision: str) -> str:
    return {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(precision, "float32")


def _peaks(dtype: str, n: int) -> tuple[float, float]:
    """(float32 peak, peak in ``dtype``) in GFLOP/s."""
    f32 = matmul_peak("float32", n)
    return f32, (f32 if dtype == "float32" else matmul_peak(dtype, n))


def run(cfg: BenchConfig) -> dict:
    """Measure the configuration (and the reference with ``compare``); returns the JSON result."""
    cfg = resolve(cfg)
    validate(cfg)
    from .tfquiet import quiet_tensorflow

    quiet_tensorflow()

    load_before = os.getloadavg()[0]
    rt = setup_runtime("float32" if cfg.impl == "reference" else cfg.precision)
    n = cfg.scenes or max(2 * cfg.batch, 8)
    photos, labels = _scenes(n, cfg.size, cfg.seed)
    impls = ["project", "reference"] if cfg.compare else [cfg.impl]
    dtype = _compute_dtype(rt.precision)
    # The peaks before and after the models, the higher counting: one short burst of other work on the
    # machine then does not lower the reference the utilisation is measured against.
    peaks = [_peaks(dtype, cfg.peak_size)]
    with tempfile.TemporaryDirectory(prefix="landaug_bench_") as tmp:
        results = {impl: measure(cfg, impl, photos, labels, Path(tmp)) for impl in impls}
    peaks.append(_peaks(dtype, cfg.peak_size))
    peak_f32, peak = max(p[0] for p in peaks), max(p[1] for p in peaks)
    main_result = results[impls[0]]
    for r in results.values():
        r["peak_float32_gflops"] = peak_f32
        r["utilization"] = r["achieved_gflops"] / peak_f32
    main_result["peak_gflops"] = peak
    main_result["peak_dtype"] = dtype
    main_result["peak_measurements_gflops"] = {"float32": [p[0] for p in peaks], dtype: [p[1] for p in peaks]}
    main_result["utilization_of_same_precision_peak"] = main_result["achieved_gflops"] / peak
    if cfg.compare:
        results["reference"]["peak_gflops"] = peak_f32
        results["reference"]["peak_dtype"] = "float32"
        results["reference"]["utilization_of_same_precision_peak"] = results["reference"]["utilization"]
    out = {"model": cfg.model, "size": cfg.size, "batch": cfg.batch, "width": cfg.width, "xla": cfg.xla,
           "requested_precision": cfg.precision, "target": cfg.target if cfg.model == "pix2pix" else None,
           "steps": cfg.steps, "warmup": cfg.warmup, **main_result, "machine": machine(),
           "process_peak_host_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
           # Other work on the machine distorts the timings: the 1-minute load average before this run.
           "load_average_before": load_before}
    if cfg.compare:
        out["reference"] = results["reference"]
        out["speedup"] = main_result["images_per_second"] / results["reference"]["images_per_second"]
        out["step_only_speedup"] = (main_result["step_only_images_per_second"]
                                    / results["reference"]["step_only_images_per_second"])
    return out


def _probe_fits(cfg: BenchConfig, batch: int) -> bool:
    """Does ``batch`` fit? Asked of a fresh process, so nothing of the failed attempt is still held."""
    argv = [sys.executable, "-m", "landaug.bench", *to_argv(dataclasses.replace(
        cfg, batch=batch, steps=1, warmup=1, compare=False, search_batch=False, json=True, peak_size=64))]
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    return proc.returncode == 0


def to_argv(cfg: BenchConfig) -> list[str]:
    argv = ["--model", cfg.model, "--size", str(cfg.size), "--batch", str(cfg.batch), "--precision", cfg.precision,
            "--impl", cfg.impl, "--target", cfg.target, "--steps", str(cfg.steps), "--warmup", str(cfg.warmup),
            "--scenes", str(cfg.scenes), "--seed", str(cfg.seed), "--peak-size", str(cfg.peak_size)]
    if cfg.width is not None:
        argv += ["--width", str(cfg.width)]
    if cfg.xla:
        argv.append("--xla")
    if cfg.compare:
        argv.append("--compare")
    if cfg.memory_limit_mb is not None:
        argv += ["--memory-limit-mb", str(cfg.memory_limit_mb)]
    if not cfg.search_batch:
        argv.append("--no-search-batch")
    if cfg.profile:
        argv += ["--profile", str(cfg.profile)]
    if cfg.json:
        argv.append("--json")
    return argv


# ---------------------------------------------------------------------------------------------------
# Command line

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench.py", description="Training and inference throughput, FLOPs and utilisation of the GANs.",
        epilog="Example: python bench.py --model pix2pix --size 256 --batch 4 --compare --json")
    p.add_argument("--model", choices=MODELS, default="pix2pix",
                   help="pix2pix (stage 3), dcgan (stage 2) or paired (stage 2 with label channels); default pix2pix")
    p.add_argument("--size", type=int, default=256, help="image side, a power of two (default 256)")
    p.add_argument("--batch", type=int, default=4, help="training batch (default 4)")
    p.add_argument("--width", type=float, default=None,
                   help="pix2pix: filter multiplier (default 1 = the paper's); dcgan/paired: channels at 4x4 "
                        "(default 256)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="compute precision (default auto: mixed_bfloat16 where the hardware runs it natively)")
    p.add_argument("--xla", action="store_true", help="compile the training step with XLA")
    p.add_argument("--impl", choices=IMPLS, default="project",
                   help="project (default) or reference: the TensorFlow tutorial's plain float32 pix2pix")
    p.add_argument("--compare", action="store_true",
                   help="run the project and the reference in this process and report the speedup")
    p.add_argument("--target", choices=TARGETS, default="classes",
                   help="pix2pix target: classes (one channel per class, default) or rgb (colour label image)")
    p.add_argument("--steps", type=int, default=10, help="timed steps; the median is reported (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first, incl. tracing (default 3)")
    p.add_argument("--scenes", type=int, default=0,
                   help="synthetic scenes in the data set (default 0 = max(2 x batch, 8))")
    p.add_argument("--seed", type=int, default=0, help="seed of the scenes and the weights (default 0)")
    p.add_argument("--peak-size", type=int, default=PEAK_MATMUL,
                   help=f"n of the n x n x n matmul that measures the peak (default {PEAK_MATMUL})")
    p.add_argument("--memory-limit-mb", type=float, default=None,
                   help="treat a configuration needing more host memory than this as out of memory "
                        "(to try the batch-size advice on a machine with plenty of memory)")
    p.add_argument("--no-search-batch", dest="search_batch", action="store_false",
                   help="on out-of-memory, fail without searching for the largest batch that fits")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also trace N training steps with the TensorFlow profiler and report the op time per "
                        "step by op type and by graph node (default 0 = no trace)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    return p


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    return BenchConfig(model=args.model, size=args.size, batch=args.batch, width=args.width,
                       precision=args.precision, xla=args.xla, impl=args.impl, compare=args.compare,
                       target=args.target, steps=args.steps, warmup=args.warmup, scenes=args.scenes,
                       seed=args.seed, peak_size=args.peak_size, memory_limit_mb=args.memory_limit_mb,
                       search_batch=args.search_batch, profile=args.profile, json=args.json)


def _fmt_result(r: dict) -> list[str]:
    mem = r.get("device_memory")
    lines = [
        f"  {r['label']}",
        f"    train      {r['images_per_second']:8.2f} images/s  ({r['step_seconds'] * 1000:.0f} ms/step incl. input; "
        f"step alone {r['step_only_images_per_second']:.2f} images/s)",
        f"    inference  {r['inference_images_per_second']:8.2f} images/s",
        f"    work       {r['train_gflop_per_image']:8.2f} GFLOP/image (training step), "
        f"{r['inference_gflop_per_image']:.2f} (inference)",
        f"    achieved   {r['achieved_gflops']:8.1f} GFLOP/s = {100 * r['utilization']:.0f} % of the float32 peak",
        f"    input      {r['input_seconds_per_batch'] * 1000:8.1f} ms/batch to produce, "
        f"{r['input_wait_seconds'] * 1000:.1f} ms/step waited",
        f"    memory     {r['peak_host_memory_mb']:8.0f} MB peak host"
        + (f", {mem['peak_mb']:.0f} MB peak on {mem['device']}" if mem else ""),
    ]
    prof = r.get("profile")
    if prof:
        lines.append(f"    profile    {prof['op_ms_per_step']:8.1f} ms of op time per step (all threads), "
                     f"{prof['steps']} traced steps; by op type:")
        lines += [f"               {ms:8.1f} ms  {op}" for op, ms in prof["by_op_type"].items()]
        lines.append("               by graph node:")
        lines += [f"               {ms:8.1f} ms  {node}" for node, ms in prof["by_node"].items()]
    return lines


def format_summary(out: dict) -> str:
    m = out["machine"]
    head = (f"bench: {out['model']} {out['size']} px, batch {out['batch']}, width {out['width']:g} on {m['cpu']} "
            f"({m['cores']} cores{', ' + ', '.join(m['gpus']) if m['gpus'] else ''}), TensorFlow {m['tensorflow']}")
    lines = [head, f"  peak matmul: {out['peak_float32_gflops']:.0f} GFLOP/s float32"
             + (f", {out['peak_gflops']:.0f} GFLOP/s {out['peak_dtype']}" if out["peak_dtype"] != "float32" else "")]
    lines += _fmt_result(out)
    if "reference" in out:
        lines += _fmt_result(out["reference"])
        lines.append(f"  speedup over the reference: {out['speedup']:.2f}x (step alone {out['step_only_speedup']:.2f}x)")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = resolve(config_from_args(build_parser().parse_args(argv)))
    validate(cfg)
    try:
        out = run(cfg)
    except BatchTooLarge as e:
        largest = largest_fitting_batch(lambda b: _probe_fits(cfg, b), cfg.batch) if cfg.search_batch else None
        raise UserError(too_large_message(cfg, largest, str(e))) from None
    print(json.dumps(out, sort_keys=True, default=float) if cfg.json else format_summary(out))
    return 0


if __name__ == "__main__":
    from .errors import cli_main

    sys.exit(cli_main(main, prog="bench.py"))
