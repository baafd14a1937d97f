"""The project's own GANs, built for timing: the training step, input pipeline and inference the stages run.

pix2pix is the labeller module ``cgan.py train`` builds (``--labeller``, ``--loss``, ``--upsample``) on the
common ``Trainer`` fed by its batch source (gather, jitter); the DCGAN (and its paired variant) is
``gan.build_trainer`` fed by ``trainer_batches``; the mask-to-photo generator (``synth``) is
``synth.train.build_trainer`` fed by its flipped and rotated (photo, label) batches.
``fused_pieces`` builds them with Keras's BatchNormalization and/or Adam in place of the fused kernels.

Usage: ``bench = BUILDERS[model](cfg, photos, labels, work)`` (a ``measure.Bench``);
``photos, labels = synthetic_scenes(n, size, seed)``.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .measure import Bench

STEPS_AVAILABLE = 1_000_000     # the step datasets' length: more than any benchmark runs


def synthetic_scenes(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(photos (n, S, S, 3), labels (n, S, S)) uint8 SPARCS-like scenes, in memory."""
    from ..synthetic import make_scene

    photos = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty((n, size, size), np.uint8)
    for i in range(n):
        photos[i], labels[i] = make_scene(seed * 100_003 + i, size)
    return photos, labels


@contextmanager
def fused_pieces(no_fused: str | None):
    """Models and optimizers built inside use Keras's own batch norm (``all``, ``batchnorm``) and Adam
    (``all``, ``adam``) instead of the fused kernels; None keeps both fused."""
    import keras

    from ..models import layers

    bn_fused = no_fused not in ("all", "batchnorm")
    adam_fused = no_fused not in ("all", "adam")
    before, make_adam = layers.fused_enabled(), layers.adam
    layers.set_fused(bn_fused)
    if adam_fused != bn_fused:
        # set_fused switches both pieces together; the GAN modules get their optimizers from
        # layers.adam when they build, so one piece alone is measured by choosing the class here.
        def make_adam_chosen(learning_rate, beta_1, name):
            cls = layers.FusedAdam if adam_fused else keras.optimizers.Adam
            return cls(learning_rate, beta_1=beta_1, name=name)
        layers.adam = make_adam_chosen
    try:
        yield
    finally:
        layers.adam = make_adam
        layers.set_fused(before)


def fused_as_built(models, optimizers) -> dict:
    """Which fused pieces the built networks and optimizers really use (not what was asked for)."""
    import keras

    from ..models.layers import FusedAdam, FusedBatchNorm

    norms = [layer for m in models for layer in m.layers if isinstance(layer, keras.layers.BatchNormalization)]
    return {"batchnorm": bool(norms) and all(isinstance(n, FusedBatchNorm) for n in norms),
            "adam": all(isinstance(o, FusedAdam) for o in optimizers)}


def _label(name: str, precision: str, xla: bool, fused: dict) -> str:
    keras_pieces = [piece for piece, key in (("batch norm", "batchnorm"), ("Adam", "adam")) if not fused[key]]
    return (f"{name} project ({precision}{', XLA' if xla else ''}"
            f"{', Keras ' + ' + '.join(keras_pieces) if keras_pieces else ''})")


def _counted_step(trainer, tf):
    """The trainer's step without XLA and outside the strategy: the op graph whose FLOPs are counted
    (the profiler cannot look inside a compiled cluster; the arithmetic is the same)."""
    module = trainer.module

    def step(batch, seeds):
        values = module.replica_step(batch, seeds)
        module.after_step(trainer.step)
        return values
    return tf.function(step), tf.TensorSpec([2, max(module.n_seeds, 1)], tf.int64)


def build_pix2pix(cfg, photos, labels, work: Path) -> Bench:
    import tensorflow as tf

    from ..batches import StepSampler, step_dataset
    from ..cgan import SceneLabeller, TrainConfig
    from ..cgan.data import PairSet, TrainingData
    from ..cgan.infer import to_unit
    from ..cgan.model import build_module
    from ..cgan.train import batch_source
    from ..classes import SPARCS
    from ..config import config_dict
    from ..harness.module import Trainer
    from ..runtime import setup_runtime

    rt = setup_runtime(cfg.precision, seed=cfg.seed)
    tc = TrainConfig(data=work, out=work / "out", size=cfg.size, batch=cfg.batch, width=float(cfg.width),
                     target=cfg.target, labeller=cfg.labeller, loss=cfg.loss, upsample=cfg.upsample,
                     precision=rt.precision, xla=cfg.xla, seed=cfg.seed, progress=False, verbose=False)
    with fused_pieces(cfg.no_fused):
        module = build_module(tc, SPARCS, total_steps=STEPS_AVAILABLE)
        trainer = Trainer(module, rt, cfg.seed, config_dict(tc), cfg.xla)
    objs = module.checkpoint_objects()      # unet: no discriminator and no second optimizer
    fused = fused_as_built([objs[k] for k in ("generator", "discriminator") if k in objs],
                           [objs[k] for k in ("g_opt", "d_opt") if k in objs])
    pairs = PairSet([f"scene_{i:04d}" for i in range(len(photos))], photos, labels)
    sampler = StepSampler([len(pairs)], cfg.batch, seed=cfg.seed)
    make, transform, specs = batch_source(tc, TrainingData(pairs, None), sampler, None)
    batches = iter(step_dataset(make, specs, 0, STEPS_AVAILABLE, transform))

    def train(batch):
        trainer.train_step(batch)
        return trainer.step.read_value()

    labeller = SceneLabeller(module.gen, cfg.target, SPARCS, cfg.size, batch=cfg.batch)
    x = tf.constant(to_unit(photos[:cfg.batch]))
    spec_photo = tf.TensorSpec([cfg.batch, cfg.size, cfg.size, 3], tf.float32)
    spec_label = tf.TensorSpec([cfg.batch, cfg.size, cfg.size], tf.uint8)
    counted, spec_seeds = _counted_step(trainer, tf)
    name = "pix2pix" if (cfg.labeller, cfg.loss, cfg.upsample) == ("pix2pix", "ce", "transpose") else \
        f"{cfg.labeller} ({cfg.loss}, {cfg.upsample}, width {float(cfg.width):g})"
    return Bench(_label(name, rt.precision, trainer.xla, fused), rt.precision, train, batches,
                 lambda: labeller.fn(x)[:1, :1, :1], counted.get_concrete_function((spec_photo, spec_label), spec_seeds),
                 labeller.fn.get_concrete_function(spec_photo), cfg.batch, fused=fused, labeller=labeller)


def build_dcgan(cfg, photos, labels, work: Path) -> Bench:
    """The DCGAN, or with ``--model paired`` the DCGAN with the class index as a 4th channel."""
    import tensorflow as tf

    from .. import gan
    from ..classes import SPARCS
    from ..gan.options import DataPlan
    from ..runtime import call_inference, model_function

    paired = cfg.model == "paired"
    tc = gan.TrainConfig(images=work, out=work / "out", size=cfg.size, width=int(cfg.width), batch=cfg.batch,
                         steps=STEPS_AVAILABLE, precision=cfg.precision, xla=cfg.xla, seed=cfg.seed, progress=False)
    plan = DataPlan(photos=[], labels=[] if paired else None, native_size=cfg.size, size=cfg.size,
                    registry=SPARCS if paired else None, source=work)
    scenes = np.concatenate([photos, labels[..., None]], axis=-1) if paired else photos
    with fused_pieces(cfg.no_fused):
        trainer = gan.build_trainer(tc, plan, scenes)
    module = trainer.module
    fused = fused_as_built([module.G, module.D], [module.g_inner, module.d_inner])
    batches = iter(gan.trainer_batches(trainer, tc, 0, STEPS_AVAILABLE))

    def train(batch):
        trainer.train_step(batch)
        return trainer.step.read_value()

    sample = model_function(call_inference, module.E)
    z = tf.constant(gan.latents(cfg.seed, range(cfg.batch), tc.latent_dim))
    spec_real = (tf.TensorSpec([cfg.batch, cfg.size, cfg.size, scenes.shape[-1]], tf.uint8),)
    counted, spec_seeds = _counted_step(trainer, tf)
    return Bench(_label(cfg.model, trainer.rt.precision, trainer.xla, fused), trainer.rt.precision, train, batches,
                 lambda: sample(z)[:1, :1, :1], counted.get_concrete_function(spec_real, spec_seeds),
                 sample.get_concrete_function(tf.TensorSpec([cfg.batch, tc.latent_dim], tf.float32)), cfg.batch,
                 fused=fused)


def build_synth(cfg, photos, labels, work: Path) -> Bench:
    """``synth.py train``'s mask-to-photo generator (label map -> photo, pix2pix) at ``--width``."""
    import tensorflow as tf

    from .. import synth
    from ..classes import SPARCS
    from ..gan.data import batches as scene_batches
    from ..runtime import call_inference, model_function
    from ..synth.model import onehot
    from ..synth.options import DataPlan
    from ..synth.train import build_trainer

    tc = synth.TrainConfig(data=work, out=work / "out", steps=STEPS_AVAILABLE, batch=cfg.batch, width=float(cfg.width),
                           precision=cfg.precision, xla=cfg.xla, seed=cfg.seed, progress=False)
    with fused_pieces(cfg.no_fused):
        trainer = build_trainer(tc, DataPlan(pairs=[], size=cfg.size, registry=SPARCS, source=work))
    module = trainer.module
    fused = fused_as_built([module.G, module.D], [module.g_inner, module.d_inner])
    scenes = np.concatenate([photos, labels[..., None]], axis=-1)       # the label rides along, as in training
    batches = iter(scene_batches(trainer.rt, scenes, cfg.batch, cfg.seed, 0, STEPS_AVAILABLE, flip=True))

    def train(batch):
        trainer.train_step(batch)
        return trainer.step.read_value()

    render = model_function(call_inference, module.G)
    hot = tf.constant(onehot(labels[:cfg.batch], len(SPARCS)))
    counted, spec_seeds = _counted_step(trainer, tf)
    spec_real = (tf.TensorSpec([cfg.batch, cfg.size, cfg.size, 4], tf.uint8),)
    return Bench(_label("synth", trainer.rt.precision, trainer.xla, fused), trainer.rt.precision, train, batches,
                 lambda: render(hot)[:1, :1, :1], counted.get_concrete_function(spec_real, spec_seeds),
                 render.get_concrete_function(tf.TensorSpec([cfg.batch, cfg.size, cfg.size, len(SPARCS)], tf.float32)),
                 cfg.batch, fused=fused)


BUILDERS = {"pix2pix": build_pix2pix, "dcgan": build_dcgan, "paired": build_dcgan, "synth": build_synth}
