"""Stage 3: the pix2pix labeller. Train on photo/label pairs, predict label maps, pseudo-label new scenes.

Usage: ``python cgan.py train --data images_CGAN --out models_CGAN/before --epochs 57``;
``python cgan.py predict --model models_CGAN/before --images images_CGAN/test/a --out Pred_before_augmentation``;
``python cgan.py label --model models_CGAN/before --images generated_images --out labelled --min-confidence 0.6``.

From Python: ``train(TrainConfig(...))`` returns a ``TrainResult`` (best and final validation mIoU);
``predict(model, images, out)`` and ``label(model, images, out, min_confidence=...)`` write PNGs.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .classes import IGNORE_INDEX, ClassRegistry, registry_for_data
from .config import config_dict, save_config
from .errors import UserError
from .files import write_json
from .imgio import image_size, list_images, read_image, write_image, write_label
from .metrics import confusion_matrix, mean_iou
from .runtime import PRECISIONS, STRATEGIES, model_function, setup_runtime, validate_runtime_options

LAMBDA = 100.0          # weight of the per-pixel loss (cross-entropy or L1) against the adversarial loss
LEARNING_RATE = 2e-4
BETA_1 = 0.5
TARGETS = ("classes", "rgb")
CLASS_WEIGHTS = ("none", "auto")
CHECKPOINTS = ("best", "last")
SAMPLE_SCENES = 4
MODEL_FILE = "model.json"
CKPT_DIR = "ckpt"
BEST_DIR = "best"
LOG_CSV = "log.csv"
# cpu_seconds next to seconds: on a shared machine the wall time alone does not show the work done
LOG_FIELDS = ("epoch", "step", "g_total", "g_adv", "g_seg", "d_loss", "val_miou", "seconds", "cpu_seconds",
              "images_per_second")
# Options that define the model or the course of training: a resumed run must use the checkpoint's values.
LOCKED = ("size", "width", "dropout", "target", "class_weights", "lam", "lr", "beta1", "batch", "augment",
          "val_fraction", "seed", "data", "extra", "classes")
OPTION_NAMES = {"lam": "lambda", "beta1": "beta1", "class_weights": "class-weights", "val_fraction": "val-fraction"}

SIZE_POLICY = ("Image size: the model works at --size x --size. Photos and labels of another size are "
               "resized (photos with an area/Lanczos filter, labels nearest-neighbour) with a warning that "
               "counts them; predict and label resize each photo to the model size and the label map back "
               "to the photo's own size, so outputs always match their photo.")


# ---------------------------------------------------------------------------------------------------
# Configurations

@dataclass
class TrainConfig:
    data: Path = Path("images_CGAN")
    out: Path = Path("models_CGAN")
    extra: list[Path] = field(default_factory=list)
    epochs: int = 57
    batch: int = 4
    size: int | None = None
    width: float = 1.0
    dropout: float = 0.5
    target: str = "classes"
    class_weights: str = "none"
    lam: float = LAMBDA
    lr: float = LEARNING_RATE
    beta1: float = BETA_1
    augment: str = "jitter"
    val_fraction: float = 0.1
    seed: int = 0
    resume: bool = False
    deterministic: bool = False
    precision: str = "auto"
    xla: bool = False
    strategy: str = "default"
    cpu_devices: int = 0
    classes: Path | None = None
    sample_every: int = 5
    log_every: int = 10
    progress: bool = True
    verbose: bool = True


@dataclass
class PredictConfig:
    model: Path = Path("models_CGAN")
    images: Path = Path("images_CGAN/test/a")
    out: Path = Path("predict_CGAN")
    checkpoint: str = "best"
    batch: int = 8
    precision: str = "auto"
    progress: bool = True


@dataclass
class LabelConfig:
    model: Path = Path("models_CGAN")
    images: Path = Path("generated_images")
    out: Path = Path("labelled_CGAN")
    min_confidence: float | None = None
    checkpoint: str = "best"
    batch: int = 8
    precision: str = "auto"
    progress: bool = True


@dataclass
class TrainResult:
    out: Path
    epochs: int
    best_epoch: int | None
    best_val_miou: float | None
    final_val_miou: float | None
    history: list[dict]
    seconds: float


@dataclass
class LabelResult:
    out: Path
    written: int
    dropped: int
    ignored_fraction: float


# ---------------------------------------------------------------------------------------------------
# Validation (no TensorFlow: bad input fails fast)

def train_folder(data: Path) -> Path:
    """``DATA/train`` (stage 1 layout), or ``DATA`` itself when it holds ``a/`` and ``b/``."""
    data = Path(data)
    if not data.is_dir():
        raise UserError(data, "data folder does not exist (run resize_to_256.py first, or pass --data)")
    if (data / "train").is_dir():
        return data / "train"
    if (data / "a").is_dir() and (data / "b").is_dir():
        return data
    raise UserError(data, "has no train/a + train/b folders (photos and labels with the same names)")


def has_checkpoint(out: Path) -> bool:
    return (Path(out) / CKPT_DIR / "checkpoint").is_file()


def _power_of_two(size: int) -> bool:
    return 16 <= size <= 1024 and not size & (size - 1)


def resolve(cfg: TrainConfig) -> TrainConfig:
    """Fill in ``size`` from the training photos when not given."""
    if cfg.size is not None:
        return cfg
    photos = list_images(train_folder(cfg.data) / "a", "photo folder")
    if not photos:
        raise UserError(train_folder(cfg.data) / "a", "no photos (png, jpg, tif) to train on")
    w, h = image_size(photos[0])
    if w != h or not _power_of_two(w):
        raise UserError(photos[0], f"is {w}x{h}; pass --size (a power of two, e.g. 256) and the pairs are resized")
    return dataclasses.replace(cfg, size=w)


def _locked_values(cfg: TrainConfig) -> dict:
    def norm(v):
        if isinstance(v, Path):
            return str(v.resolve())
        if isinstance(v, (list, tuple)):
            return [norm(x) for x in v]
        return v
    return {k: norm(getattr(cfg, k)) for k in LOCKED}


def _opt(name: str) -> str:
    return "--" + OPTION_NAMES.get(name, name.replace("_", "-"))


def validate(cfg: TrainConfig) -> None:
    """Every option and input folder, before anything is computed or written."""
    from .segdata import pair_folder, parse_augment

    if cfg.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {cfg.epochs}")
    if cfg.batch < 1:
        raise UserError(f"--batch must be >= 1, got {cfg.batch}")
    if cfg.size is not None and not _power_of_two(cfg.size):
        raise UserError(f"--size must be a power of two from 16 to 1024 (e.g. 256), got {cfg.size}")
    if not 0 < cfg.width <= 4:
        raise UserError(f"--width must be in (0, 4] (1 = the paper's filters, 0.5 = half), got {cfg.width}")
    if not 0 <= cfg.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, got {cfg.target!r}")
    if cfg.class_weights not in CLASS_WEIGHTS:
        raise UserError(f"--class-weights must be one of {', '.join(CLASS_WEIGHTS)}, got {cfg.class_weights!r}")
    if cfg.class_weights != "none" and cfg.target != "classes":
        raise UserError("--class-weights needs --target classes (the rgb target has no per-class loss)")
    if cfg.lam < 0 or not math.isfinite(cfg.lam):
        raise UserError(f"--lambda must be >= 0, got {cfg.lam}")
    if not 0 < cfg.lr < 1:
        raise UserError(f"--lr must be in (0, 1), got {cfg.lr}")
    if not 0 <= cfg.beta1 < 1:
        raise UserError(f"--beta1 must be in [0, 1), got {cfg.beta1}")
    parse_augment(cfg.augment)
    if not 0 <= cfg.val_fraction < 1:
        raise UserError(f"--val-fraction must be in [0, 1), got {cfg.val_fraction}")
    if cfg.sample_every < 0 or cfg.log_every < 1:
        raise UserError("--sample-every must be >= 0 and --log-every >= 1")
    validate_runtime_options(cfg.precision, cfg.strategy, cfg.cpu_devices)
    if cfg.cpu_devices > 1 and cfg.strategy == "default":
        raise UserError("--cpu-devices splits the CPU for --strategy mirrored; add --strategy mirrored")
    if cfg.xla and cfg.cpu_devices > 1:
        raise UserError("--xla cannot compile one step across logical CPU devices: drop --xla or --cpu-devices")
    if cfg.classes is not None and not Path(cfg.classes).is_file():
        raise UserError(cfg.classes, "class registry not found (pass --classes FILE with a classes.json)")
    pair_folder(train_folder(cfg.data))
    for extra in cfg.extra:
        pair_folder(extra)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(out, "--out is a file, not a folder")
    if cfg.resume:
        if not has_checkpoint(out):
            raise UserError(out, "holds no checkpoint to resume (train without --resume first)")
        saved = _read_model_json(out).get("train", {})
        now = _locked_values(cfg)
        for key in LOCKED:
            if key in saved and saved[key] != now[key]:
                raise UserError(f"{_opt(key)} {_show(now[key])} contradicts the checkpoint in {out}, trained with "
                                f"{_opt(key)} {_show(saved[key])}: resume with the same value or use another --out")
    elif has_checkpoint(out):
        raise UserError(out, "already holds a training checkpoint: pass --resume to continue it, or choose another --out")


def _show(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v)


def _read_model_json(model_dir: Path) -> dict:
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise UserError(model_dir, f"is not a cgan.py model folder (no {MODEL_FILE}; train one with cgan.py train)")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(path, f"unreadable model description: {e}") from None


def _validate_inference(model: Path, images: Path, checkpoint: str, batch: int, precision: str) -> None:
    model = Path(model)
    if not model.is_dir():
        raise UserError(model, "model folder does not exist (train one with cgan.py train --out DIR)")
    _read_model_json(model)
    if checkpoint not in CHECKPOINTS:
        raise UserError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    if not _checkpoint_index(model, checkpoint).is_file():
        raise UserError(model, f"holds no {checkpoint} checkpoint (train it first, or pass --checkpoint "
                               f"{'last' if checkpoint == 'best' else 'best'})")
    if batch < 1:
        raise UserError(f"--batch must be >= 1, got {batch}")
    if precision not in PRECISIONS:
        raise UserError(f"--precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    if not list_images(images, "image folder"):
        raise UserError(images, "no photos (png, jpg, tif) to label")


def _checkpoint_index(model: Path, which: str) -> Path:
    return Path(model) / (BEST_DIR if which == "best" else CKPT_DIR) / "checkpoint"


def validate_predict(cfg: PredictConfig) -> None:
    _validate_inference(cfg.model, cfg.images, cfg.checkpoint, cfg.batch, cfg.precision)
    if Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise UserError(cfg.out, "--out is a file, not a folder")


def validate_label(cfg: LabelConfig) -> None:
    if cfg.min_confidence is not None and not 0 < cfg.min_confidence <= 1:
        raise UserError(f"--min-confidence must be in (0, 1], got {cfg.min_confidence}")
    _validate_inference(cfg.model, cfg.images, cfg.checkpoint, cfg.batch, cfg.precision)
    if Path(cfg.out).exists() and not Path(cfg.out).is_dir():
        raise UserError(cfg.out, "--out is a file, not a folder")


# ---------------------------------------------------------------------------------------------------
# Model, losses and the training step

def _target_channels(target: str, n_classes: int) -> int:
    return n_classes if target == "classes" else 3


def build_models(size: int, width: float, target: str, n_classes: int, synchronized: bool = False,
                 dropout: float = 0.5):
    from .pix2pix import build_discriminator, build_generator

    channels = _target_channels(target, n_classes)
    gen = build_generator(size, channels, width, output="logits" if target == "classes" else "tanh",
                          synchronized=synchronized, dropout=dropout)
    disc = build_discriminator(size, channels, width, synchronized=synchronized)
    return gen, disc


def _decode_logits(gen, decode, x):
    return decode(gen(x, training=False))


def make_decoder(target: str, colors: np.ndarray):
    """Model output -> (label int32 (B, S, S), confidence float32 (B, S, S)).

    classes: argmax and maximum of the softmax. rgb: nearest class colour; confidence d2 / (d1 + d2)
    from the distances to the nearest and second-nearest colour (1 on a class colour, 0.5 half-way)."""
    import tensorflow as tf

    if target == "classes":
        def decode(out):
            probs = tf.nn.softmax(out)
            return tf.argmax(probs, -1, output_type=tf.int32), tf.reduce_max(probs, -1)
        return decode
    table = tf.constant(colors.astype(np.float32) / 127.5 - 1.0)      # (K, 3) in [-1, 1]

    def decode(out):
        d = tf.norm(out[..., None, :] - table, axis=-1)                # (B, S, S, K)
        if table.shape[0] < 2:
            return tf.zeros(tf.shape(d)[:-1], tf.int32), tf.ones(tf.shape(d)[:-1])
        neg, idx = tf.math.top_k(-d, k=2)
        d1, d2 = -neg[..., 0], -neg[..., 1]
        return idx[..., 0], d2 / tf.maximum(d1 + d2, 1e-6)
    return decode


class Pix2Pix:
    """Both networks, both optimizers, the compiled training step and the checkpoint."""

    def __init__(self, cfg: TrainConfig, rt, registry: ClassRegistry, weights: np.ndarray | None):
        import keras
        import tensorflow as tf

        from .pix2pix import FusedAdam, dropout_seed_variables

        self.cfg, self.rt, self.registry = cfg, rt, registry
        self.n_classes = len(registry)
        self.global_batch = cfg.batch
        with rt.strategy.scope():
            self.gen, self.disc = build_models(cfg.size, cfg.width, cfg.target, self.n_classes,
                                               synchronized=rt.num_replicas > 1, dropout=cfg.dropout)
            inner_g = FusedAdam(cfg.lr, beta_1=cfg.beta1, name="g_adam")
            inner_d = FusedAdam(cfg.lr, beta_1=cfg.beta1, name="d_adam")
            inner_g.build(self.gen.trainable_variables)
            inner_d.build(self.disc.trainable_variables)
            if rt.precision == "mixed_float16":
                self.g_opt = keras.optimizers.LossScaleOptimizer(inner_g, name="g_loss_scale")
                self.d_opt = keras.optimizers.LossScaleOptimizer(inner_d, name="d_loss_scale")
                self.g_opt.build(self.gen.trainable_variables)
                self.d_opt.build(self.disc.trainable_variables)
            else:
                self.g_opt, self.d_opt = inner_g, inner_d
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.best_miou = tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_miou")
        self.best_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="best_epoch")
        self.rng = tf.random.Generator.from_seed(cfg.seed)
        self.config_json = tf.Variable(json.dumps(config_dict(cfg), sort_keys=True, default=str), dtype=tf.string,
                                       trainable=False, name="config")
        # The loss-scale state is left out (it re-adapts in a few steps), so a run may resume in
        # another precision: the checkpoint holds the inner Adam optimizers.
        self.ckpt = tf.train.Checkpoint(
            generator=self.gen, discriminator=self.disc, g_opt=inner_g, d_opt=inner_d, epoch=self.epoch,
            step=self.step, best_miou=self.best_miou, best_epoch=self.best_epoch, rng=self.rng,
            dropout=dropout_seed_variables(self.gen), config=self.config_json)
        self.best_ckpt = tf.train.Checkpoint(generator=self.gen, epoch=self.epoch, config=self.config_json)
        self.trackers = {k: keras.metrics.Mean(name=k) for k in ("g_total", "g_adv", "g_seg", "d_loss")}
        self.class_weights = tf.constant(weights if weights is not None else np.ones(self.n_classes, np.float32))
        self.colors_unit = tf.constant(registry.colors.astype(np.float32) / 127.5 - 1.0)
        self.decode = make_decoder(cfg.target, registry.colors)
        self.train_step = self._compile_step()
        self.infer = model_function(_decode_logits, self.gen, self.decode, reduce_retracing=True)

    # -- losses ------------------------------------------------------------------------------------
    def _targets(self, out, safe, valid):
        """(fake target, real target, per-example pixel loss) for the discriminator and the generator.

        Ignored pixels carry the generator's own output on both sides, so they tell the
        discriminator nothing and add nothing to the pixel loss."""
        import tensorflow as tf

        size2 = float(self.cfg.size * self.cfg.size)
        if self.cfg.target == "classes":
            probs = tf.nn.softmax(out)                                              # (b, S, S, K)
            onehot = tf.one_hot(safe, self.n_classes, dtype=probs.dtype)
            real = tf.where(valid[..., None] > 0, onehot, tf.stop_gradient(probs))
            ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=out)  # (b, S, S)
            pix = ce * tf.gather(self.class_weights, safe) * valid
            return probs, real, tf.reduce_sum(pix, axis=[1, 2]) / size2
        truth = tf.gather(self.colors_unit, safe)                                  # (b, S, S, 3)
        real = tf.where(valid[..., None] > 0, truth, tf.stop_gradient(out))
        l1 = tf.reduce_mean(tf.abs(truth - out), axis=-1) * valid
        return out, real, tf.reduce_sum(l1, axis=[1, 2]) / size2

    def _replica_step(self, photo, label):
        import tensorflow as tf

        label = tf.cast(label, tf.int32)
        valid_b = tf.not_equal(label, IGNORE_INDEX)
        safe = tf.where(valid_b, label, tf.zeros_like(label))
        valid = tf.cast(valid_b, tf.float32)

        def bce(target_value, logits):  # per example: mean over patches
            xent = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.fill(tf.shape(logits), target_value),
                                                           logits=logits)
            return tf.reduce_mean(xent, axis=[1, 2, 3])

        def average(per_example):
            return tf.nn.compute_average_loss(per_example, global_batch_size=self.global_batch)

        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            out = self.gen(photo, training=True)
            fake, real, seg = self._targets(out, safe, valid)
            d_real = self.disc([photo, real], training=True)
            d_fake = self.disc([photo, fake], training=True)
            g_adv = bce(1.0, d_fake)
            g_loss = average(g_adv + self.cfg.lam * seg)
            # halved, as in the paper, so D learns more slowly than G
            d_loss = average(0.5 * (bce(1.0, d_real) + bce(0.0, d_fake)))
            g_scaled = self.g_opt.scale_loss(g_loss)
            d_scaled = self.d_opt.scale_loss(d_loss)
        g_grads = g_tape.gradient(g_scaled, self.gen.trainable_variables)
        d_grads = d_tape.gradient(d_scaled, self.disc.trainable_variables)
        self.g_opt.apply_gradients(zip(g_grads, self.gen.trainable_variables))
        self.d_opt.apply_gradients(zip(d_grads, self.disc.trainable_variables))
        return g_loss, average(g_adv), average(seg), d_loss

    def _compile_step(self):
        import tensorflow as tf

        strategy = self.rt.strategy
        replica_step = tf.function(self._replica_step, jit_compile=True) if self.cfg.xla else self._replica_step
        trackers = list(self.trackers.values())

        @tf.function
        def train_step(photo, label):
            per_replica = strategy.run(replica_step, args=(photo, label))
            for tracker, value in zip(trackers, per_replica):
                tracker.update_state(strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None))
            self.step.assign_add(1)
        return train_step

    # -- evaluation ---------------------------------------------------------------------------------
    def predict_arrays(self, photos_u8: np.ndarray, batch: int = 8) -> tuple[np.ndarray, np.ndarray]:
        from .segdata import eval_batches

        labels, confs = [], []
        for x in eval_batches(photos_u8, batch):
            lab, conf = self.infer(x)
            labels.append(lab.numpy().astype(np.uint8))
            confs.append(conf.numpy())
        return np.concatenate(labels), np.concatenate(confs)

    def val_miou(self, photos: np.ndarray, labels: np.ndarray) -> tuple[float | None, np.ndarray | None]:
        if not len(photos):
            return None, None
        pred, _ = self.predict_arrays(photos, max(self.cfg.batch, 8))
        cm = confusion_matrix(labels, pred, self.n_classes)
        value = float(mean_iou(cm))
        return (None if math.isnan(value) else value), pred


# ---------------------------------------------------------------------------------------------------
# Training loop

def _load_training_data(cfg: TrainConfig, registry: ClassRegistry):
    from .segdata import PairSet, load_pairs, split_by_scene, warn

    base = load_pairs(train_folder(cfg.data), registry, cfg.size, allow_ignore=True, progress=cfg.progress)
    train_idx, val_idx = split_by_scene(base.stems, cfg.val_fraction, cfg.seed)
    extras = []
    for e in cfg.extra:
        if not list_images(Path(e) / "a", "photo folder"):
            warn(f"{e}: no extra pairs (all dropped by cgan.py label?); training without them")
            continue
        extras.append(load_pairs(Path(e), registry, cfg.size, allow_ignore=True, progress=cfg.progress))
    train = PairSet.concat([base.subset(train_idx), *extras])
    val = base.subset(val_idx)
    resized = base.resized + sum(e.resized for e in extras)
    if resized:
        warn(f"{resized} training pairs are not {cfg.size}x{cfg.size}; resized them (photos area/Lanczos, "
             "labels nearest)")
    if cfg.batch > len(train):
        raise UserError(f"--batch {cfg.batch} is larger than the {len(train)} training pairs "
                        f"(after holding out {len(val)} for validation): use --batch {len(train)} or less")
    return train, val


def _read_log(path: Path, upto_epoch: int) -> list[dict]:
    """Rows of an earlier run up to the checkpoint's epoch (a killed run may have logged one more)."""
    if not path.is_file():
        return []
    rows = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            try:
                if int(row["epoch"]) <= upto_epoch:
                    rows.append({k: row.get(k, "") for k in LOG_FIELDS})
            except (KeyError, TypeError, ValueError):
                continue
    return rows


def _write_log(path: Path, rows: list[dict]) -> None:
    import io

    from .files import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LOG_FIELDS)
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _fmt(v, digits: int = 4) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def sample_grid(photos: np.ndarray, truth: np.ndarray, pred: np.ndarray, registry: ClassRegistry,
                min_cell: int = 128) -> np.ndarray:
    """Rows of (photo | truth | prediction), cells upscaled (nearest) to at least ``min_cell`` px."""
    rep = max(1, math.ceil(min_cell / photos.shape[1]))
    gap = 2 * rep
    rows = []
    for p, t, q in zip(photos, truth, pred):
        cells = [p, registry.colorize(t), registry.colorize(q)]
        cells = [np.repeat(np.repeat(c, rep, 0), rep, 1) for c in cells]
        sep = np.full((cells[0].shape[0], gap, 3), 255, np.uint8)
        rows.append(np.concatenate([cells[0], sep, cells[1], sep, cells[2]], axis=1))
        rows.append(np.full((gap, rows[-1].shape[1], 3), 255, np.uint8))
    return np.concatenate(rows[:-1], axis=0)


def plot_losses(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return
    ep = [int(r["epoch"]) for r in rows]

    def col(k):
        return [float(r[k]) if r.get(k) not in ("", None) else np.nan for r in rows]

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for k, label in (("g_adv", "generator adversarial"), ("g_seg", "generator pixel loss"), ("d_loss", "discriminator")):
        a1.plot(ep, col(k), label=label)
    a1.set_xlabel("epoch")
    a1.set_ylabel("loss")
    a1.set_yscale("log")
    a1.legend()
    a2.plot(ep, col("val_miou"), marker="o", color="tab:green")
    a2.set_xlabel("epoch")
    a2.set_ylabel("validation mIoU")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def _scalar(tag: str, value: float) -> None:
    """A TensorBoard scalar through the low-level summary op, so the tensorboard package is optional."""
    import tensorflow as tf

    meta = tf.compat.v1.SummaryMetadata(plugin_data=tf.compat.v1.SummaryMetadata.PluginData(plugin_name="scalars"))
    tf.summary.write(tag, tf.constant(value, tf.float32), metadata=meta.SerializeToString())


def _remove_partial_files(out: Path) -> None:
    """Leftovers of a run killed while writing: checkpoint temp folders and atomic-write temp files."""
    for folder in (out / CKPT_DIR, out / BEST_DIR):
        for p in folder.glob("*_temp*"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    for p in [*out.glob(".*.tmp*"), *out.glob("samples/.*.tmp*")]:
        p.unlink(missing_ok=True)


def _model_description(cfg: TrainConfig, registry: ClassRegistry, rt) -> dict:
    return {"format": 1, "size": cfg.size, "width": cfg.width, "dropout": cfg.dropout, "target": cfg.target,
            "n_classes": len(registry),
            "classes": registry.to_json(), "precision": rt.precision, "train": _locked_values(cfg)}


def run_train(cfg: TrainConfig) -> TrainResult:
    """Train (or resume) as configured; ``cfg`` must have passed ``resolve`` and ``validate``."""
    from .segdata import class_weights as inverse_frequency
    from .segdata import parse_augment

    registry = registry_for_data(cfg.data, cfg.classes)
    train, val = _load_training_data(cfg, registry)
    augment = parse_augment(cfg.augment)
    weights = inverse_frequency(train.labels, len(registry)) if cfg.class_weights == "auto" else None

    rt = setup_runtime(cfg.precision, cfg.strategy, cfg.cpu_devices, cfg.deterministic, cfg.seed)
    if cfg.batch % rt.num_replicas:
        raise UserError(f"--batch {cfg.batch} is not divisible by the {rt.num_replicas} replicas: "
                        f"use a multiple of {rt.num_replicas}")
    import tensorflow as tf
    from tqdm import tqdm

    from .segdata import base_dataset, epoch_dataset

    model = Pix2Pix(cfg, rt, registry, weights)
    out = Path(cfg.out)
    ckpt_dir = out / CKPT_DIR if rt.is_chief else out / f".{CKPT_DIR}_worker{os.getpid()}"
    manager = tf.train.CheckpointManager(model.ckpt, ckpt_dir, max_to_keep=2)
    best_manager = tf.train.CheckpointManager(model.best_ckpt, out / BEST_DIR, max_to_keep=1) if rt.is_chief else None
    if cfg.resume:
        if rt.is_chief:
            _remove_partial_files(out)
        # The chief's files, read by every worker.
        path = tf.train.latest_checkpoint(out / CKPT_DIR)
        try:
            model.ckpt.read(path).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            raise UserError(path, f"checkpoint does not match this model ({str(e).splitlines()[0]})") from None
    start_epoch = int(model.epoch.numpy())

    if rt.is_chief:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / MODEL_FILE, {**_model_description(cfg, registry, rt),
                                      "compute_dtype": model.gen.get_layer("down1_conv").compute_dtype})
        registry.save(out / "classes.json")
        save_config(out / "config.json", cfg, stage="cgan-train", precision=rt.precision,
                    replicas=rt.num_replicas, train_pairs=len(train), val_pairs=len(val),
                    val_scenes=val.stems, class_weights=None if weights is None else weights.tolist(),
                    resumed_from_epoch=start_epoch if cfg.resume else None)
    rows = _read_log(out / LOG_CSV, start_epoch) if rt.is_chief else []
    if rt.is_chief:
        _write_log(out / LOG_CSV, rows)
    writer = tf.summary.create_file_writer(str(out / "logs")) if rt.is_chief else tf.summary.create_noop_writer()

    steps_per_epoch = len(train) // cfg.batch
    base = base_dataset(train)
    sample_src = val if len(val) else train.subset(range(min(SAMPLE_SCENES, len(train))))
    sample_idx = list(range(min(SAMPLE_SCENES, len(sample_src))))
    bar = tqdm(total=cfg.epochs * steps_per_epoch, initial=start_epoch * steps_per_epoch, unit="step",
               desc="cgan train", disable=not (cfg.progress and rt.is_chief), dynamic_ncols=True)
    say = bar.write if (cfg.progress and rt.is_chief) else print
    if cfg.verbose and rt.is_chief:
        say(f"cgan train: {len(train)} training pairs ({len(val)} held out for validation), {cfg.size} px, "
            f"width {cfg.width}, batch {cfg.batch} on {rt.num_replicas} replica(s), {rt.precision}"
            f"{', XLA' if cfg.xla else ''}, epochs {start_epoch + 1}..{cfg.epochs}")
    t_run = time.perf_counter()
    last_miou = None
    try:
        for epoch in range(start_epoch, cfg.epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            seed = int(model.rng.make_seeds(1)[0, 0].numpy())
            ds = rt.strategy.experimental_distribute_dataset(epoch_dataset(base, len(train), cfg.batch, seed, augment))
            for t in model.trackers.values():
                t.reset_state()
            for i, (photo, label) in enumerate(ds):
                model.train_step(photo, label)
                if (i + 1) % cfg.log_every == 0 or i + 1 == steps_per_epoch:
                    bar.set_postfix({k: f"{float(t.result()):.3f}" for k, t in model.trackers.items()}, refresh=False)
                    bar.update((i + 1) - (bar.n - epoch * steps_per_epoch))
            train_seconds = time.perf_counter() - t0
            losses = {k: float(t.result()) for k, t in model.trackers.items()}
            miou, pred = model.val_miou(val.photos, val.labels)
            last_miou = miou
            model.epoch.assign(epoch + 1)
            improved = miou is None or miou > float(model.best_miou.numpy())
            if improved:
                model.best_miou.assign(-1.0 if miou is None else miou)
                model.best_epoch.assign(epoch + 1)
                if best_manager is not None:
                    best_manager.save(checkpoint_number=epoch + 1)
            manager.save(checkpoint_number=epoch + 1)
            seconds = time.perf_counter() - t0
            row = {"epoch": epoch + 1, "step": int(model.step.numpy()), **{k: f"{v:.6f}" for k, v in losses.items()},
                   "val_miou": _fmt(miou, 6), "seconds": f"{seconds:.2f}",
                   "cpu_seconds": f"{time.process_time() - c0:.2f}",
                   "images_per_second": f"{steps_per_epoch * cfg.batch / max(train_seconds, 1e-9):.3f}"}
            rows.append(row)
            if rt.is_chief:
                _write_log(out / LOG_CSV, rows)
                with writer.as_default(step=epoch + 1):
                    for k, v in losses.items():
                        _scalar(f"loss/{k}", v)
                    if miou is not None:
                        _scalar("val/miou", miou)
                    _scalar("speed/images_per_second", float(row["images_per_second"]))
                writer.flush()
                last = epoch + 1 == cfg.epochs
                if cfg.sample_every and ((epoch + 1) % cfg.sample_every == 0 or last) and sample_idx:
                    photos = sample_src.photos[sample_idx]
                    spred = pred[sample_idx] if (pred is not None and len(val)) else model.predict_arrays(photos)[0]
                    write_image(out / "samples" / f"epoch_{epoch + 1:04d}.png",
                                sample_grid(photos, sample_src.labels[sample_idx], spred, registry))
            if cfg.verbose and rt.is_chief:
                say(f"epoch {epoch + 1}/{cfg.epochs}  g_adv {losses['g_adv']:.4f}  g_seg {losses['g_seg']:.4f}  "
                    f"d {losses['d_loss']:.4f}  val_mIoU {_fmt(miou)}{'  *best' if improved and miou is not None else ''}"
                    f"  {seconds:.1f} s ({row['images_per_second']} img/s)")
    finally:
        bar.close()
        if not rt.is_chief:
            shutil.rmtree(ckpt_dir, ignore_errors=True)
    if rt.is_chief:
        plot_losses(rows, out / "losses.png")
    best = float(model.best_miou.numpy())
    return TrainResult(out=out, epochs=cfg.epochs, best_epoch=int(model.best_epoch.numpy()) or None,
                       best_val_miou=None if best < 0 else best,
                       final_val_miou=last_miou if start_epoch < cfg.epochs else _last_logged_miou(rows),
                       history=rows, seconds=time.perf_counter() - t_run)


def _last_logged_miou(rows: list[dict]) -> float | None:
    for r in reversed(rows):
        if r.get("val_miou") not in ("", None):
            return float(r["val_miou"])
    return None


def train(cfg: TrainConfig) -> TrainResult:
    """Resolve, validate and train: the entry point for other Python code."""
    cfg = resolve(cfg)
    validate(cfg)
    return run_train(cfg)


# ---------------------------------------------------------------------------------------------------
# Inference: predict and label

class Labeller:
    """A trained generator restored from a model folder, labelling photos of any size."""

    def __init__(self, model_dir: Path, checkpoint: str = "best", precision: str = "auto"):
        desc = _read_model_json(model_dir)
        try:
            self.registry = ClassRegistry.from_json(desc["classes"], where=Path(model_dir) / MODEL_FILE)
            self.size, width, self.target = int(desc["size"]), float(desc["width"]), str(desc["target"])
            dropout = float(desc.get("dropout", 0.5))
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(Path(model_dir) / MODEL_FILE, f"incomplete model description ({e})") from None
        setup_runtime(precision)
        import tensorflow as tf

        from .pix2pix import build_generator

        # Dropout layers hold no weights but shift the layer indices the checkpoint is keyed by.
        self.gen = build_generator(self.size, _target_channels(self.target, len(self.registry)), width,
                                   output="logits" if self.target == "classes" else "tanh", dropout=dropout)
        path = tf.train.latest_checkpoint(str(Path(model_dir) / (BEST_DIR if checkpoint == "best" else CKPT_DIR)))
        if path is None:
            raise UserError(model_dir, f"holds no readable {checkpoint} checkpoint")
        try:
            status = tf.train.Checkpoint(generator=self.gen).read(path)
            status.expect_partial()   # the discriminator and optimizers of a 'last' checkpoint are not needed
            status.assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, AssertionError) as e:
            raise UserError(path, f"checkpoint does not match {MODEL_FILE} ({str(e).splitlines()[0]})") from None
        decode = make_decoder(self.target, self.registry.colors)
        self.infer = model_function(_decode_logits, self.gen, decode, reduce_retracing=True)
        self.resized = 0

    def __call__(self, photos: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Photos (H, W, 3) uint8 -> [(label (H, W) uint8, confidence (H, W) float32)] at each photo's size."""
        from PIL import Image

        from .geometry import resize_photo

        x = np.stack([resize_photo(p, self.size) for p in photos]).astype(np.float32) / 127.5 - 1.0
        lab, conf = self.infer(x)
        lab, conf = lab.numpy().astype(np.uint8), conf.numpy().astype(np.float32)
        out = []
        for p, l, c in zip(photos, lab, conf):
            h, w = p.shape[:2]
            if (h, w) != (self.size, self.size):
                self.resized += 1
                l = np.asarray(Image.fromarray(l, "L").resize((w, h), Image.Resampling.NEAREST))
                c = np.asarray(Image.fromarray(c, "F").resize((w, h), Image.Resampling.BILINEAR))
            out.append((l, c))
        return out


def _chunks(items: list, n: int):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def _warn_resized(labeller: Labeller) -> None:
    from .segdata import warn

    if labeller.resized:
        warn(f"{labeller.resized} photos are not {labeller.size}x{labeller.size}; resized them for the model "
             "and their label maps back to the photo size")


def run_predict(cfg: PredictConfig) -> list[Path]:
    from tqdm import tqdm

    photos = list_images(cfg.images, "image folder")
    labeller = Labeller(cfg.model, cfg.checkpoint, cfg.precision)
    out = Path(cfg.out)
    written = []
    with tqdm(total=len(photos), desc="cgan predict", unit="image", disable=not cfg.progress) as bar:
        for chunk in _chunks(photos, cfg.batch):
            for path, (lab, _) in zip(chunk, labeller([read_image(p) for p in chunk])):
                target = out / f"{path.stem}.png"
                write_label(target, lab, labeller.registry)
                written.append(target)
            bar.update(len(chunk))
    _warn_resized(labeller)
    save_config(out / "config.json", cfg, stage="cgan-predict", n_images=len(written))
    return written


def run_label(cfg: LabelConfig) -> LabelResult:
    from tqdm import tqdm

    photos = list_images(cfg.images, "image folder")
    labeller = Labeller(cfg.model, cfg.checkpoint, cfg.precision)
    out = Path(cfg.out)
    # Both folders exist even when every scene is dropped, so train --extra OUT stays valid.
    (out / "a").mkdir(parents=True, exist_ok=True)
    (out / "b").mkdir(parents=True, exist_ok=True)
    written, dropped, ignored, total = 0, [], 0, 0
    with tqdm(total=len(photos), desc="cgan label", unit="image", disable=not cfg.progress) as bar:
        for chunk in _chunks(photos, cfg.batch):
            images = [read_image(p) for p in chunk]
            for path, img, (lab, conf) in zip(chunk, images, labeller(images)):
                if cfg.min_confidence is not None:
                    if float(conf.mean()) < cfg.min_confidence:
                        dropped.append(path.stem)
                        continue
                    lab = np.where(conf < cfg.min_confidence, IGNORE_INDEX, lab).astype(np.uint8)
                ignored += int((lab == IGNORE_INDEX).sum())
                total += lab.size
                write_image(out / "a" / f"{path.stem}.png", img)
                write_label(out / "b" / f"{path.stem}.png", lab, labeller.registry)
                written += 1
            bar.update(len(chunk))
    _warn_resized(labeller)
    result = LabelResult(out=out, written=written, dropped=len(dropped),
                         ignored_fraction=ignored / total if total else 0.0)
    if dropped:
        print(f"cgan label: dropped {len(dropped)} of {len(photos)} scenes with mean confidence below "
              f"{cfg.min_confidence}", file=sys.stderr)
    save_config(out / "config.json", cfg, stage="cgan-label", written=written, dropped=dropped,
                ignored_fraction=result.ignored_fraction)
    return result


def predict(model: str | Path, images: str | Path, out: str | Path = "predict_CGAN", checkpoint: str = "best",
            batch: int = 8, precision: str = "auto", progress: bool = True) -> list[Path]:
    """Label maps (palette PNG, same stems) of every photo in ``images``; returns the written paths."""
    cfg = PredictConfig(Path(model), Path(images), Path(out), checkpoint, batch, precision, progress)
    validate_predict(cfg)
    return run_predict(cfg)


def label(model: str | Path, images: str | Path, out: str | Path, min_confidence: float | None = None,
          checkpoint: str = "best", batch: int = 8, precision: str = "auto", progress: bool = True) -> LabelResult:
    """Pseudo-label the photos of ``images`` into ``out/a`` + ``out/b``, ready for ``train --extra``."""
    cfg = LabelConfig(Path(model), Path(images), Path(out), min_confidence, checkpoint, batch, precision, progress)
    validate_label(cfg)
    return run_label(cfg)


def run(cfg):
    """Dispatch a validated configuration of any subcommand."""
    if isinstance(cfg, TrainConfig):
        return train(cfg)
    if isinstance(cfg, PredictConfig):
        validate_predict(cfg)
        return run_predict(cfg)
    if isinstance(cfg, LabelConfig):
        validate_label(cfg)
        return run_label(cfg)
    raise TypeError(f"not a cgan configuration: {type(cfg).__name__}")


# ---------------------------------------------------------------------------------------------------
# Command line

class _Parser(argparse.ArgumentParser):
    """Usage errors as one line (through UserError), like every other bad input."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


def _inference_options(p: argparse.ArgumentParser, out_default: str) -> None:
    p.add_argument("--model", type=Path, default=Path("models_CGAN"),
                   help="model folder written by cgan.py train --out (default models_CGAN)")
    p.add_argument("--images", type=Path, required=True, help="folder of photos (png, jpg, tif)")
    p.add_argument("--out", type=Path, default=Path(out_default), help=f"output folder (default {out_default})")
    p.add_argument("--checkpoint", choices=CHECKPOINTS, default="best",
                   help="best: highest validation mIoU (default); last: the latest epoch")
    p.add_argument("--batch", type=int, default=8, help="photos per inference batch (default 8)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="compute precision (default auto: mixed_bfloat16 where the hardware runs it natively)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="cgan.py", description="Stage 3: pix2pix labeller (photo -> land-cover label map).",
                epilog=SIZE_POLICY)
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,predict,label}", parser_class=_Parser)

    t = sub.add_parser("train", help="train (or --resume) on photo/label pairs",
                       description="Train pix2pix on DATA/train (a/ photos + b/ labels) plus any --extra pairs. "
                                   "A by-scene validation split is held out of DATA/train; the checkpoint with the "
                                   "best validation mIoU is kept as 'best' (the last epoch's when --val-fraction 0).",
                       epilog=SIZE_POLICY + " Example: python cgan.py train --data images_CGAN --out "
                              "models_CGAN/before --epochs 57 --width 0.5")
    t.add_argument("--data", type=Path, default=Path("images_CGAN"),
                   help="stage-1 folder with train/{a,b} (or a folder with a/ and b/ directly); default images_CGAN")
    t.add_argument("--out", type=Path, default=Path("models_CGAN"), help="model folder (default models_CGAN)")
    t.add_argument("--extra", type=Path, action="append", default=[], metavar="DIR",
                   help="more training pairs DIR/a + DIR/b (e.g. from cgan.py label); repeatable. Labels may "
                        "hold 255 = ignore, left out of the loss. Never used for validation")
    t.add_argument("--epochs", type=int, default=57, help="total epochs to reach, also with --resume (default 57)")
    t.add_argument("--batch", type=int, default=4, help="global batch, split across replicas (default 4)")
    t.add_argument("--size", type=int, default=None,
                   help="model input side, power of two 16..1024 (default: the training photos' size, 256 from "
                        "resize_to_256.py); the U-Net gets one level per halving")
    t.add_argument("--width", type=float, default=1.0,
                   help="filter multiplier (1 = the paper's 64..512 filters; 0.5 is ~4x cheaper, "
                        "recommended on a CPU)")
    t.add_argument("--dropout", type=float, default=0.5,
                   help="dropout rate in the first decoder blocks, pix2pix's noise (default 0.5; 0 = none)")
    t.add_argument("--target", choices=TARGETS, default="classes",
                   help="classes: per-class logits, cross-entropy (default); rgb: the paper's L1 on the colour "
                        "label image, decoded to the nearest class colour")
    t.add_argument("--class-weights", choices=CLASS_WEIGHTS, default="none",
                   help="auto: inverse-frequency cross-entropy weights (capped at 20) for rare classes (default none)")
    t.add_argument("--lambda", dest="lam", type=float, default=LAMBDA, metavar="LAMBDA",
                   help=f"weight of the pixel loss against the adversarial loss (default {LAMBDA:g})")
    t.add_argument("--lr", type=float, default=LEARNING_RATE, help=f"Adam learning rate (default {LEARNING_RATE:g})")
    t.add_argument("--beta1", type=float, default=BETA_1, help=f"Adam beta_1 (default {BETA_1:g})")
    t.add_argument("--augment", default="jitter",
                   help="comma list of on-the-fly augmentations applied to photo and label together: jitter "
                        "(pix2pix resize-and-crop + mirror, default), dihedral (the 8 flips/90-degree rotations), "
                        "color (mild brightness/contrast, photo only), or none")
    t.add_argument("--val-fraction", type=float, default=0.1,
                   help="share of DATA/train scenes held out for validation, by scene (default 0.1; 0 = none)")
    t.add_argument("--seed", type=int, default=0, help="seed of the split, the data order and augmentation (default 0)")
    t.add_argument("--resume", action="store_true",
                   help="continue the checkpoint in --out up to --epochs (options that shape the model or the "
                        "data must be the same)")
    t.add_argument("--deterministic", action="store_true",
                   help="op determinism and fixed seeds: the same command gives the same model (slower)")
    t.add_argument("--classes", type=Path, default=None,
                   help="classes.json (default DATA/classes.json, else the SPARCS classes)")
    t.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default): mixed_bfloat16 where the hardware runs it natively, else float32; "
                        "mixed_float16 uses loss scaling (GPUs)")
    t.add_argument("--xla", action="store_true", help="compile the training step with XLA (jit_compile)")
    t.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="default: one device; mirrored: all local GPUs (or --cpu-devices); multiworker: TF_CONFIG")
    t.add_argument("--cpu-devices", type=int, default=0,
                   help="split the CPU into N logical devices for --strategy mirrored (testing without GPUs)")
    t.add_argument("--sample-every", type=int, default=5,
                   help="save a (photo, truth, prediction) grid every N epochs and at the end (0 = never; default 5)")
    t.add_argument("--log-every", type=int, default=10, help="read the losses to the progress bar every N steps")
    t.add_argument("--quiet", action="store_true", help="no progress bar (epoch lines are still printed)")

    pr = sub.add_parser("predict", help="label maps (palette PNG) for a folder of photos",
                        description="Write one palette PNG label map per photo, same file stem.",
                        epilog=SIZE_POLICY + " Example: python cgan.py predict --model models_CGAN/before "
                               "--images images_CGAN/test/a --out Pred_before_augmentation")
    _inference_options(pr, "predict_CGAN")

    lb = sub.add_parser("label", help="pseudo-label photos into OUT/a + OUT/b for train --extra",
                        description="Pseudo-label photos (e.g. generated_images) as OUT/a (photos) + OUT/b (labels).",
                        epilog=SIZE_POLICY + " Confidence is the top softmax probability (classes target) or "
                               "d2 / (d1 + d2) of the distances to the two nearest class colours (rgb target).")
    _inference_options(lb, "labelled_CGAN")
    lb.add_argument("--min-confidence", type=float, default=None, metavar="P",
                    help="mark pixels with confidence below P as ignore (255) and drop scenes whose mean "
                         "confidence is below P (default: keep everything)")
    return p


def config_from_args(args: argparse.Namespace):
    if args.command == "train":
        return TrainConfig(data=args.data, out=args.out, extra=list(args.extra), epochs=args.epochs,
                           batch=args.batch, size=args.size, width=args.width, dropout=args.dropout,
                           target=args.target,
                           class_weights=args.class_weights, lam=args.lam, lr=args.lr, beta1=args.beta1,
                           augment=args.augment, val_fraction=args.val_fraction, seed=args.seed,
                           resume=args.resume, deterministic=args.deterministic, precision=args.precision,
                           xla=args.xla, strategy=args.strategy, cpu_devices=args.cpu_devices,
                           classes=args.classes, sample_every=args.sample_every, log_every=args.log_every,
                           progress=not args.quiet)
    if args.command == "predict":
        return PredictConfig(model=args.model, images=args.images, out=args.out, checkpoint=args.checkpoint,
                             batch=args.batch, precision=args.precision, progress=not args.quiet)
    return LabelConfig(model=args.model, images=args.images, out=args.out, min_confidence=args.min_confidence,
                       checkpoint=args.checkpoint, batch=args.batch, precision=args.precision,
                       progress=not args.quiet)


def main(argv: Sequence[str] | None = None) -> int:
    cfg = config_from_args(build_parser().parse_args(argv))
    if isinstance(cfg, TrainConfig):
        cfg = resolve(cfg)
        validate(cfg)
        result = run_train(cfg)
        if result.best_val_miou is not None:
            print(f"cgan train: best validation mIoU {result.best_val_miou:.4f} at epoch {result.best_epoch}; "
                  f"model in {result.out}")
    elif isinstance(cfg, PredictConfig):
        validate_predict(cfg)
        written = run_predict(cfg)
        print(f"cgan predict: {len(written)} label maps in {cfg.out}")
    else:
        validate_label(cfg)
        res = run_label(cfg)
        print(f"cgan label: {res.written} scenes in {res.out}/a + {res.out}/b, {res.dropped} dropped, "
              f"{100 * res.ignored_fraction:.1f} % of pixels ignored")
    return 0
