"""Stage 2: train the paper's DCGAN on the training scenes, generate synthetic scenes, score them.

Usage:
  gan.py train --images images --out models_GAN --steps 20000 [--with-labels images_CGAN/train] [--resume]
  gan.py generate --model models_GAN --n 200 --out generated_images [--seed 0] [--truncation 1.5]
  gan.py score --model models_GAN --images images [--n 500] [--inception-weights FILE]

``train`` writes into ``--out``: ``config.json`` (first), ``samples/samples_000500.png`` (16 fixed
latents, EMA generator), ``losses.csv``, ``scores.csv``, TensorBoard events in ``logs/``, checkpoints in
``checkpoints/`` (both networks, the EMA generator, both optimizers, step, RNG state, config) and, at
the end, ``training.png`` (loss and quality curves) and ``nearest.png`` (sample | nearest real scene).
With ``--with-labels DIR`` (a folder with ``a/`` photos and ``b/`` masks) the generator also outputs one
softmax channel per class and ``generate`` writes ``a/`` photos plus ``b/`` palette labels.

Python API (used by pipeline.py): ``train(TrainConfig(...))``, ``generate(GenerateConfig(...))``,
``score(ScoreConfig(...))``; each validates first and raises ``UserError`` on bad input.

Randomness: one checkpointed ``tf.random.Generator`` draws per-step seeds; every random tensor of a step
(latents, discriminator input noise, DiffAugment parameters) is drawn for the global batch from those
seeds and sliced per replica, and the real batch of step ``s`` is a pure function of ``(seed, s)``. So a
run resumed from a checkpoint, on any number of replicas, continues exactly where it stopped.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from . import dcgan
from .classes import ClassRegistry, load_registry, SPARCS
from .config import config_dict, load_config, save_config
from .diffaugment import n_random, parse_policy
from .errors import UserError
from .progress import progress as progress_bar
from .files import atomic_write_text, write_json
from .imgio import image_size, list_images, pair_by_stem, read_image, read_label, write_image, write_label
from .runtime import (PRECISIONS, STRATEGIES, call_inference, model_function, setup_runtime,
                      validate_runtime_options)

STAGE = "gan"
LOSSES = ("nonsaturating", "hinge")
GRID = 16                      # fixed latents in every sample grid (4 x 4)
SCORE_SAMPLES_MAX = 256        # generated scenes per quality score during training
CKPT_DIR = "checkpoints"
LOSS_COLUMNS = ("step", "d_loss", "g_loss", "d_real", "d_fake", "steps_per_sec")
# Options of the machine a run happens to use: --resume does not take them from the stored run.
RUNTIME_OPTIONS = ("precision", "xla", "strategy", "cpu_devices", "progress", "resume")
# Options that define the model or the optimisation: a resumed run must use the stored values.
RESUME_FIXED = ("size", "width", "latent_dim", "batch", "lr", "beta1", "loss", "ema", "d_noise",
                "diffaugment", "flip_rotate", "seed", "with_labels")


# --- configurations ----------------------------------------------------------------------------------

@dataclass
class TrainConfig:
    images: Path | None = None
    out: Path = Path("models_GAN")
    with_labels: Path | None = None
    classes: Path | None = None
    size: int = 0
    width: int = dcgan.PAPER_WIDTH
    latent_dim: int = 128
    steps: int = 20000
    batch: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    loss: str = "nonsaturating"
    ema: float = 0.999
    d_noise: float = 0.2
    diffaugment: str = ""
    flip_rotate: bool = True
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 1000
    score_every: int = 1000
    log_every: int = 50
    keep_checkpoints: int = 3
    resume: bool = False
    deterministic: bool = False
    precision: str = "auto"
    xla: bool = False
    strategy: str = "default"
    cpu_devices: int = 0
    progress: bool = True


@dataclass
class GenerateConfig:
    model: Path = Path("models_GAN")
    n: int = 200
    out: Path = Path("generated_images")
    seed: int = 0
    truncation: float | None = None
    batch: int = 32
    skip_existing: bool = False
    progress: bool = True


@dataclass
class ScoreConfig:
    model: Path = Path("models_GAN")
    images: Path = Path("images")
    n: int = 500
    seed: int = 0
    truncation: float | None = None
    out: Path | None = None
    inception_weights: Path | None = None
    progress: bool = True


_TRAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


# --- command line ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gan.py", description="Train a DCGAN on training scenes, generate synthetic scenes, score them.")
    sub = p.add_subparsers(dest="command", required=True, metavar="{train,generate,score}")
    d = _TRAIN_DEFAULTS

    t = sub.add_parser("train", help="train (or --resume) a DCGAN",
                       description="Train a DCGAN. Options left out on --resume keep their stored values.")
    # Defaults are None so that --resume can tell options given on the command line from stored ones.
    t.add_argument("--images", type=Path, help="folder of training photos (default: images; "
                   "with --with-labels the photos of DIR/a are used)")
    t.add_argument("--out", type=Path, help=f"output folder for checkpoints, samples, logs (default: {d['out']})")
    t.add_argument("--with-labels", type=Path, metavar="DIR",
                   help="paired mode: DIR/a photos + DIR/b masks (e.g. images_CGAN/train); the generator "
                        "also outputs a label map")
    t.add_argument("--classes", type=Path, metavar="FILE",
                   help="classes.json for --with-labels (default: DIR/classes.json, DIR/../classes.json, SPARCS)")
    t.add_argument("--size", type=int, help="scene size, a power of two >= 16; scenes are resized to it "
                                            "(default: the size of the scenes)")
    t.add_argument("--width", type=int, help=f"channels at the 4x4 end of both networks; the paper's is "
                                             f"{dcgan.PAPER_WIDTH} (default: {d['width']})")
    t.add_argument("--latent-dim", type=int, help=f"latent vector length (default: {d['latent_dim']})")
    t.add_argument("--steps", type=int, help=f"total training steps to reach (default: {d['steps']})")
    t.add_argument("--batch", type=int, help=f"global batch size, split across replicas (default: {d['batch']})")
    t.add_argument("--lr", type=float, help=f"Adam learning rate of both networks (default: {d['lr']})")
    t.add_argument("--beta1", type=float, help=f"Adam beta_1 (default: {d['beta1']})")
    t.add_argument("--loss", choices=LOSSES, help=f"adversarial loss on logits (default: {d['loss']})")
    t.add_argument("--ema", type=float, help=f"decay of the generator's moving average used for sampling; "
                                             f"0 turns it off (default: {d['ema']})")
    t.add_argument("--d-noise", type=float,
                   help=f"std of the Gaussian noise added to the discriminator's inputs, in units of the 0..1 "
                        f"intensity range (default: {d['d_noise']}, the paper's)")
    t.add_argument("--diffaugment", metavar="POLICY",
                   help="comma list of color,translation,cutout applied to real and fake scenes before the "
                        "discriminator (default: off, as in the paper; turn on for < ~1000 scenes)")
    t.add_argument("--flip-rotate", action=argparse.BooleanOptionalAction, default=None,
                   help="random flips and 90-degree rotations of the real scenes (default: on)")
    t.add_argument("--seed", type=int, help=f"seed of initialisation, data order and sampling (default: {d['seed']})")
    t.add_argument("--sample-every", type=int,
                   help=f"steps between sample grids; 0 = off (default: {d['sample_every']})")
    t.add_argument("--checkpoint-every", type=int,
                   help=f"steps between checkpoints; one is always written at the end "
                        f"(default: {d['checkpoint_every']})")
    t.add_argument("--score-every", type=int, help=f"steps between quality scores; 0 = only at the end "
                                                   f"(default: {d['score_every']})")
    t.add_argument("--log-every", type=int, help=f"steps between loss read-outs (default: {d['log_every']})")
    t.add_argument("--keep-checkpoints", type=int, help=f"checkpoints kept (default: {d['keep_checkpoints']})")
    t.add_argument("--resume", action="store_true", help="continue the run in --out up to --steps")
    t.add_argument("--deterministic", action="store_true", default=None,
                   help="deterministic ops: the same seed gives bitwise the same model (slower)")
    t.add_argument("--precision", choices=PRECISIONS,
                   help="auto = mixed_bfloat16 where the hardware runs it natively, else float32 (default: auto)")
    t.add_argument("--xla", action="store_true", default=None, help="compile the training step with XLA")
    t.add_argument("--strategy", choices=STRATEGIES, help="distribution over devices/machines (default: default)")
    t.add_argument("--cpu-devices", type=int,
                   help="split the CPU into N logical devices (to try --strategy mirrored without GPUs)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    g = sub.add_parser("generate", help="write synthetic scenes from a trained model",
                       description="Write N synthetic scenes; the same --seed gives the same scenes.")
    g.add_argument("--model", type=Path, default=GenerateConfig.model, help="trained model folder (default: models_GAN)")
    g.add_argument("--n", type=int, default=GenerateConfig.n, help="number of scenes (default: 200)")
    g.add_argument("--out", type=Path, default=GenerateConfig.out, help="output folder (default: generated_images)")
    g.add_argument("--seed", type=int, default=0, help="latent seed; part of every file name (default: 0)")
    g.add_argument("--truncation", type=float, help="redraw latent entries beyond +-T: fewer, more typical "
                                                    "scenes (e.g. 1.5; default: off)")
    g.add_argument("--batch", type=int, default=GenerateConfig.batch, help="scenes per forward pass (default: 32)")
    g.add_argument("--skip-existing", action="store_true",
                   help="write only missing files instead of refusing when a file of this seed exists")
    g.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("score", help="image-quality score of a trained model against real scenes",
                       description="Sliced Wasserstein distance, histogram distance, nearest real scene "
                                   "(and FID/KID with --inception-weights).")
    s.add_argument("--model", type=Path, default=ScoreConfig.model, help="trained model folder (default: models_GAN)")
    s.add_argument("--images", type=Path, default=ScoreConfig.images, help="real scenes (default: images)")
    s.add_argument("--n", type=int, default=ScoreConfig.n, help="generated scenes to score (default: 500)")
    s.add_argument("--seed", type=int, default=0, help="seed of latents and patch sampling (default: 0)")
    s.add_argument("--truncation", type=float, help="latent truncation as in generate (default: off)")
    s.add_argument("--out", type=Path, help="where score.json and nearest.png go (default: MODEL/score)")
    s.add_argument("--inception-weights", type=Path, metavar="FILE",
                   help="local InceptionV3 (no top) weights file: also report FID and KID")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Options given on the command line win; the others come from the stored run (on --resume) or defaults."""
    given = {k: v for k, v in vars(args).items() if k in _TRAIN_DEFAULTS and v is not None}
    given["resume"] = bool(args.resume)
    given["progress"] = not args.quiet
    base = dict(_TRAIN_DEFAULTS)
    out = Path(given.get("out", base["out"]))
    if args.resume and (out / "config.json").is_file():
        stored = _stored_train_config(out)
        base.update({k: v for k, v in stored.items() if k in base and k not in RUNTIME_OPTIONS})
    cfg = TrainConfig(**{**base, **given})
    return _normalise_paths(cfg)


def _normalise_paths(cfg: TrainConfig) -> TrainConfig:
    for name in ("images", "out", "with_labels", "classes"):
        v = getattr(cfg, name)
        if v is not None and not isinstance(v, Path):
            setattr(cfg, name, Path(v))
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "train":
        train(train_config_from_args(args))
    elif args.command == "generate":
        cfg = GenerateConfig(model=args.model, n=args.n, out=args.out, seed=args.seed, truncation=args.truncation,
                             batch=args.batch, skip_existing=args.skip_existing, progress=not args.quiet)
        written = generate(cfg)
        print(f"wrote {len(written)} scenes to {cfg.out}")
    else:
        cfg = ScoreConfig(model=args.model, images=args.images, n=args.n, seed=args.seed,
                          truncation=args.truncation, out=args.out, inception_weights=args.inception_weights,
                          progress=not args.quiet)
        report = score(cfg)
        print(format_score(report))
    return 0


# --- validation (before any compute) -----------------------------------------------------------------

@dataclass
class DataPlan:
    photos: list[Path]
    labels: list[Path] | None
    native_size: int
    size: int
    registry: ClassRegistry | None = None
    source: Path = field(default_factory=Path)

    @property
    def n_classes(self) -> int:
        return len(self.registry) if self.registry is not None else 0


def _positive(name: str, value, allow_zero: bool = False) -> None:
    if value is None or value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"--{name.replace('_', '-')} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def check_train_options(cfg: TrainConfig) -> None:
    for name in ("steps", "batch", "latent_dim", "lr", "keep_checkpoints", "log_every"):
        _positive(name, getattr(cfg, name))
    for name in ("sample_every", "checkpoint_every", "score_every", "seed"):
        _positive(name, getattr(cfg, name), allow_zero=True)
    if cfg.size:
        dcgan.check_size(cfg.size)
    dcgan.check_width(cfg.width)
    if cfg.loss not in LOSSES:
        raise UserError(f"--loss {cfg.loss!r} is not one of {', '.join(LOSSES)}")
    if not 0.0 <= cfg.ema < 1.0:
        raise UserError(f"--ema must be in [0, 1), got {cfg.ema}")
    if not 0.0 <= cfg.beta1 < 1.0:
        raise UserError(f"--beta1 must be in [0, 1), got {cfg.beta1}")
    if cfg.d_noise < 0:
        raise UserError(f"--d-noise must be >= 0, got {cfg.d_noise}")
    parse_policy(cfg.diffaugment)
    validate_runtime_options(cfg.precision, cfg.strategy, cfg.cpu_devices)
    replicas = max(cfg.cpu_devices, 1) if cfg.strategy == "mirrored" else 1
    if cfg.batch % replicas:
        raise UserError(f"--batch {cfg.batch} does not split over {replicas} replicas; use a multiple of {replicas}")


def _describe_sizes(sizes: dict[tuple[int, int], list[Path]]) -> str:
    parts = []
    for (w, h), files in sorted(sizes.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(f.name for f in files[:3]) + (", ..." if len(files) > 3 else "")
        parts.append(f"{w}x{h} ({len(files)}: {shown})")
    return "; ".join(parts)


def scan_scenes(folder: Path, what: str = "image folder") -> tuple[list[Path], int]:
    """All scenes of a folder, which must be non-empty, square and of one size: (files, size)."""
    files = list_images(folder, what)
    if not files:
        raise UserError(folder, f"{what} holds no images (png, jpg, tif); make them with resize_to_256.py")
    sizes: dict[tuple[int, int], list[Path]] = {}
    for f in files:
        sizes.setdefault(image_size(f), []).append(f)
    if len(sizes) > 1:
        raise UserError(folder, f"scenes of mixed sizes: {_describe_sizes(sizes)}; resize them to one size "
                                f"(resize_to_256.py)")
    (w, h), = sizes
    if w != h:
        raise UserError(folder, f"scenes are {w}x{h}, not square; crop or resize them (resize_to_256.py)")
    return files, w


def _registry_for_pairs(pairs_dir: Path, classes: Path | None) -> ClassRegistry:
    if classes is not None:
        return load_registry(classes)
    for cand in (pairs_dir / "classes.json", pairs_dir.parent / "classes.json"):
        if cand.is_file():
            return load_registry(cand)
    return SPARCS


def plan_data(cfg: TrainConfig) -> DataPlan:
    """Find and check the training scenes (headers only): sizes, pairs, class registry."""
    if cfg.with_labels is not None:
        d = cfg.with_labels
        if not d.is_dir():
            raise UserError(d, "--with-labels folder does not exist (expected DIR/a photos and DIR/b masks)")
        if not (d / "a").is_dir() or not (d / "b").is_dir():
            raise UserError(d, "--with-labels folder needs a/ (photos) and b/ (masks) sub-folders, "
                               "like images_CGAN/train")
        pairs = pair_by_stem(d / "a", d / "b")
        if not pairs:
            raise UserError(d / "a", "photo folder holds no images; make them with resize_to_256.py")
        photos, size = scan_scenes(d / "a", "photo folder")
        labels = [b for _, _, b in pairs]
        for (stem, a, b) in pairs:
            if image_size(b) != (size, size):
                w, h = image_size(b)
                raise UserError(b, f"mask is {w}x{h} but its photo {a.name} is {size}x{size}")
        registry = _registry_for_pairs(d, cfg.classes)
        photos = [a for _, a, _ in pairs]
        source = d
    else:
        folder = cfg.images or Path("images")
        photos, size = scan_scenes(folder)
        labels, registry, source = None, None, folder
    target = cfg.size or size
    if not cfg.size and (size < dcgan.MIN_SIZE or size & (size - 1)):
        raise UserError(photos[0].parent, f"scenes are {size}x{size}, not a power of two >= {dcgan.MIN_SIZE}; "
                                          f"pass --size (e.g. {max(2 ** int(math.log2(max(size, 1))), 16)})")
    return DataPlan(photos=photos, labels=labels, native_size=size, size=target, registry=registry, source=source)


def _stored_train_config(out: Path) -> dict:
    data = load_config(out / "config.json")
    if data.get("stage") != f"{STAGE} train":
        raise UserError(out / "config.json", f"is not from 'gan.py train' (stage {data.get('stage')!r})")
    return data.get("config", {})


def latest_checkpoint(folder: Path) -> str | None:
    import tensorflow as tf

    return tf.train.latest_checkpoint(str(folder / CKPT_DIR))


def _has_checkpoint(out: Path) -> bool:
    return (out / CKPT_DIR / "checkpoint").is_file()


def check_resume(cfg: TrainConfig, plan: DataPlan) -> None:
    out = cfg.out
    if not cfg.resume:
        if _has_checkpoint(out):
            raise UserError(out, "already holds a training run; pass --resume to continue it or choose "
                                 "another --out")
        return
    if not (out / "config.json").is_file():
        return
    stored = _stored_train_config(out)
    current = config_dict(cfg)
    current["size"] = plan.size
    for name in RESUME_FIXED:
        old, new = stored.get(name), current.get(name)
        if name == "size" and not old:
            continue
        if name == "diffaugment":
            old, new = ",".join(parse_policy(old)), ",".join(parse_policy(new))
        if name == "with_labels":
            old, new = old is not None, new is not None
        if old != new:
            flag = "--" + name.replace("_", "-")
            raise UserError(out / "config.json", f"{flag} {_show(new)} contradicts the stored run ({_show(old)}); "
                                                 f"drop {flag} to keep the stored value or start another --out")


def _show(v) -> str:
    if v is True or v is False:
        return "on" if v else "off"
    return repr(v) if isinstance(v, str) else str(v)


def validate(cfg: TrainConfig) -> DataPlan:
    """Every option and input checked before any compute; returns what to load."""
    _normalise_paths(cfg)
    check_train_options(cfg)
    if cfg.with_labels is not None and cfg.images is not None:
        raise UserError("--images and --with-labels both given: paired training reads its photos from DIR/a; "
                        "drop --images")
    plan = plan_data(cfg)
    check_resume(cfg, plan)
    return plan


# --- data --------------------------------------------------------------------------------------------

def _resize(a: np.ndarray, size: int, nearest: bool = False) -> np.ndarray:
    from PIL import Image

    if a.shape[0] == size:
        return a
    if nearest:
        return np.asarray(Image.fromarray(a).resize((size, size), Image.NEAREST))
    method = Image.BOX if size < a.shape[0] else Image.BICUBIC
    return np.asarray(Image.fromarray(a).resize((size, size), method))


def load_scenes(plan: DataPlan, progress: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode every scene once (threads; PIL releases the GIL): photos (N, S, S, 3), labels (N, S, S)."""
    def photo(p):
        return _resize(read_image(p), plan.size)

    def label(p):
        return _resize(read_label(p, plan.registry), plan.size, nearest=True)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        photos = list(progress_bar(pool.map(photo, plan.photos), "decode", enabled=progress,
                                   total=len(plan.photos), leave=False))
        labels = list(pool.map(label, plan.labels)) if plan.labels is not None else None
    return np.stack(photos), (np.stack(labels) if labels is not None else None)


def step_dataset(scenes: np.ndarray, batch: int, seed: int, start: int, stop: int, flip_rotate: bool,
                 replicas: int = 1, first_replica: int = 0, local_replicas: int = 1):
    """tf.data pipeline of the real batches of steps [start, stop), one element per local replica.

    The batch of step s is a pure function of (seed, s): each epoch is a fresh permutation of the cached
    scenes (stateless index shuffle), followed by a random flip/transpose per scene, all vectorised over
    the global batch; a replica takes its slice. Decoded scenes stay in memory, batches are prefetched.
    """
    import tensorflow as tf

    cache = tf.constant(scenes)                                                 # (N, S, S, C) uint8
    n = int(scenes.shape[0])
    per_replica = batch // replicas

    def real_batch(step):
        pos = step * batch + tf.range(batch, dtype=tf.int64)                    # global positions
        epoch, within = pos // n, pos % n
        seeds = tf.stack([tf.fill([batch], tf.cast(seed, tf.int64)), epoch, tf.zeros([batch], tf.int64)], 1)
        idx = tf.raw_ops.RandomIndexShuffle(index=within, seed=seeds, max_index=tf.constant(n - 1, tf.int64))
        x = tf.gather(cache, idx)                                               # (B, S, S, C)
        if flip_rotate:
            u = tf.random.stateless_uniform([batch, 3], seed=tf.stack([tf.cast(seed, tf.int64) + 1, step]))
            flip = u < 0.5
            x = tf.where(flip[:, 0, None, None, None], tf.transpose(x, [0, 2, 1, 3]), x)
            x = tf.where(flip[:, 1, None, None, None], tf.reverse(x, [1]), x)
            x = tf.where(flip[:, 2, None, None, None], tf.reverse(x, [2]), x)
        first = first_replica * per_replica
        x = x[first:first + local_replicas * per_replica]
        return tf.reshape(x, [local_replicas, per_replica, *scenes.shape[1:]])

    ds = tf.data.Dataset.range(start, stop)
    ds = ds.map(real_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(opts).prefetch(tf.data.AUTOTUNE)


def label_frequencies(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(labels.ravel(), minlength=n_classes)[:n_classes].astype(np.float64)


# --- latents and images ------------------------------------------------------------------------------

def latents(seed: int, indices: Sequence[int], dim: int, truncation: float | None = None) -> np.ndarray:
    """One latent per index, a function of (seed, index) only: the i-th scene never depends on --n."""
    out = np.empty((len(indices), dim), dtype=np.float32)
    for row, i in enumerate(indices):
        rng = np.random.default_rng([seed, int(i)])
        z = rng.standard_normal(dim)
        if truncation is not None:
            bad = np.abs(z) > truncation
            while bad.any():
                z[bad] = rng.standard_normal(int(bad.sum()))
                bad = np.abs(z) > truncation
        out[row] = z
    return out


def to_uint8_photo(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((np.asarray(x[..., :3], np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_label(x: np.ndarray) -> np.ndarray:
    return np.argmax(np.asarray(x[..., 3:]), axis=-1).astype(np.uint8)


def grid_image(photos: np.ndarray, labels: np.ndarray | None, registry: ClassRegistry | None,
               cols: int = 4) -> np.ndarray:
    """Tiles of photos (with their colourised label maps beside them in paired mode), 2 px gaps."""
    tiles = photos if labels is None else np.concatenate([photos, registry.colorize(labels)], axis=2)
    n, h, w, _ = tiles.shape
    rows = math.ceil(n / cols)
    gap = 2
    canvas = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = t
    return canvas


# --- CSV logs ----------------------------------------------------------------------------------------

def _append_csv(path: Path, row: dict, columns: Sequence[str]) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow(row)


def read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _truncate_csv(path: Path, last_step: int) -> None:
    """Drop rows logged after the checkpoint a run resumes from: they are about to be redone."""
    if not path.is_file():
        return
    text = path.read_text().splitlines(keepends=True)
    if not text:
        return
    rows = read_csv(path)
    keep = [text[0]] + [line for line, r in zip(text[1:], rows) if int(float(r["step"])) <= last_step]
    atomic_write_text(path, "".join(keep))


# --- training ----------------------------------------------------------------------------------------

class Trainer:
    """Models, optimizers, checkpoint and the compiled step of one run.

    ``train_step(batch)`` runs one discriminator and one generator update on a real batch from
    ``dataset(start)``; losses accumulate in ``trackers`` until ``read_metrics()``.
    """

    def __init__(self, cfg: TrainConfig, plan: DataPlan, rt, scenes: np.ndarray):
        import keras
        import tensorflow as tf

        self.cfg, self.plan, self.rt, self.scenes = cfg, plan, rt, scenes
        self.policy = parse_policy(cfg.diffaugment)
        self.n_classes = plan.n_classes
        self.channels = dcgan.out_channels(self.n_classes)
        sync = rt.num_replicas > 1
        keras.utils.set_random_seed(cfg.seed)
        with rt.strategy.scope():
            self.G = dcgan.build_generator(plan.size, cfg.width, cfg.latent_dim, self.n_classes, sync)
            self.D = dcgan.build_discriminator(plan.size, cfg.width, self.n_classes, sync)
            self.E = dcgan.build_generator(plan.size, cfg.width, cfg.latent_dim, self.n_classes, sync,
                                           name="generator_ema")
            self.E.set_weights(self.G.get_weights())
            self.g_opt = self._optimizer(keras)
            self.d_opt = self._optimizer(keras)
            self.g_opt.build(self.G.trainable_variables)
            self.d_opt.build(self.D.trainable_variables)
        # Outside the strategy: read and advanced in cross-replica context only, identical on all workers.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.rng = tf.random.Generator.from_seed(cfg.seed)
        self.config_json = tf.Variable(json.dumps(config_dict(cfg), sort_keys=True), trainable=False,
                                       name="config")
        self.trackers = {k: keras.metrics.Mean(name=k) for k in LOSS_COLUMNS[1:5]}
        self.ckpt = tf.train.Checkpoint(generator=self.G, discriminator=self.D, generator_ema=self.E,
                                        g_optimizer=self.g_opt, d_optimizer=self.d_opt, step=self.step,
                                        rng=self.rng, config=self.config_json)
        self.train_step = tf.function(self._step)
        # XLA compiles the whole per-replica step (as Keras does with jit_compile): a nested plain
        # tf.function would turn the replicas' synchronisation points into unsupported merge calls.
        self.xla = cfg.xla and not _replicas_on_cpu(rt)
        self._replica_fn = tf.function(self._replica_step, jit_compile=True) if self.xla else self._replica_step
        self._sample = model_function(call_inference, self.E)

    def _optimizer(self, keras):
        opt = keras.optimizers.Adam(self.cfg.lr, beta_1=self.cfg.beta1, beta_2=0.999)
        if self.rt.precision == "mixed_float16":
            opt = keras.optimizers.LossScaleOptimizer(opt)
        return opt

    # -- one step --

    def _losses(self, real_logits, fake_logits):
        import tensorflow as tf

        r, f = tf.squeeze(real_logits, -1), tf.squeeze(fake_logits, -1)
        if self.cfg.loss == "hinge":
            return tf.nn.relu(1.0 - r) + tf.nn.relu(1.0 + f), -f
        return tf.nn.softplus(-r) + tf.nn.softplus(f), tf.nn.softplus(-f)

    def _augment(self, x, u):
        from .diffaugment import diff_augment

        return diff_augment(x, self.policy, u, dcgan.PHOTO_CHANNELS) if self.policy else x

    def _scale(self, opt, loss):
        return opt.scale_loss(loss) if hasattr(opt, "scale_loss") else loss

    def _d_grads_fn(self, real, z, noise_real, noise_fake, u_real, u_fake):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            fake = self.G(z, training=True)
            real_logits = self.D([self._augment(real, u_real), noise_real], training=True)
            fake_logits = self.D([self._augment(fake, u_fake), noise_fake], training=True)
            d_per_sample, _ = self._losses(real_logits, fake_logits)
            loss = tf.nn.compute_average_loss(d_per_sample, global_batch_size=self.cfg.batch)
            scaled = self._scale(self.d_opt, loss)
        grads = tape.gradient(scaled, self.D.trainable_variables)
        return grads, loss, (tf.reduce_sum(real_logits) / self.cfg.batch,
                             tf.reduce_sum(fake_logits) / self.cfg.batch)

    def _g_grads_fn(self, z, noise_fake, u_fake):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            fake = self.G(z, training=True)
            fake_logits = self.D([self._augment(fake, u_fake), noise_fake], training=True)
            _, g_per_sample = self._losses(tf.zeros_like(fake_logits), fake_logits)
            loss = tf.nn.compute_average_loss(g_per_sample, global_batch_size=self.cfg.batch)
            scaled = self._scale(self.g_opt, loss)
        return tape.gradient(scaled, self.G.trainable_variables), loss

    def _replica_step(self, real_u8, seeds):
        import tensorflow as tf

        cfg = self.cfg
        ctx = tf.distribute.get_replica_context()
        local = cfg.batch // self.rt.num_replicas
        first = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * local
        size, c = self.plan.size, self.channels
        k = max(n_random(self.policy), 1)

        def draw(i, shape, normal=True):
            # Drawn for the whole global batch, then sliced: the same numbers on any replica count.
            fn = tf.random.stateless_normal if normal else tf.random.stateless_uniform
            return fn([cfg.batch, *shape], seed=seeds[:, i])[first:first + local]

        sigma = 2.0 * cfg.d_noise  # the option is in 0..1 intensity units, scenes are in [-1, 1]

        def noise(i):
            return sigma * draw(i, [size, size, c]) if sigma else tf.zeros([local, size, size, c])
        photo = tf.cast(real_u8[..., :3], tf.float32) / 127.5 - 1.0
        if self.n_classes:
            onehot = tf.one_hot(tf.cast(real_u8[..., 3], tf.int32), self.n_classes, dtype=tf.float32)
            real = tf.concat([photo, onehot], -1)                                # (b, S, S, 3 + k)
        else:
            real = photo                                                         # (b, S, S, 3)
        d_grads, d_loss, (d_real, d_fake) = self._d_grads_fn(
            real, draw(0, [cfg.latent_dim]), noise(1), noise(2), draw(3, [k], normal=False), draw(4, [k], normal=False))
        self.d_opt.apply_gradients(zip(d_grads, self.D.trainable_variables))
        g_grads, g_loss = self._g_grads_fn(draw(5, [cfg.latent_dim]), noise(6), draw(7, [k], normal=False))
        self.g_opt.apply_gradients(zip(g_grads, self.G.trainable_variables))
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}

    def _step(self, real):
        import tensorflow as tf

        seeds = self.rng.make_seeds(8)                                           # (2, 8)
        per_replica = self.rt.strategy.run(self._replica_fn, args=(real, seeds))
        values = {k: self.rt.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
                  for k, v in per_replica.items()}
        self._update_ema()
        self.step.assign_add(1)
        for k, v in values.items():
            self.trackers[k].update_state(v)

    def _update_ema(self):
        import tensorflow as tf

        t = tf.cast(self.step, tf.float32)
        # Warm-up as in tf.train.ExponentialMovingAverage(num_updates): early samples follow training.
        decay = tf.minimum(tf.constant(self.cfg.ema, tf.float32), (1.0 + t) / (10.0 + t))
        for e, w in zip(self.E.weights, self.G.weights):
            e.assign(decay * e + (1.0 - decay) * tf.cast(w, e.dtype))

    # -- outside the step --

    def dataset(self, start: int):
        cfg, rt = self.cfg, self.rt
        real = self.scenes

        def dataset_fn(ctx):
            local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
            return step_dataset(real, cfg.batch, cfg.seed, start, cfg.steps, cfg.flip_rotate,
                                replicas=ctx.num_replicas_in_sync, first_replica=ctx.input_pipeline_id * local,
                                local_replicas=local)

        if rt.num_replicas == 1:
            return step_dataset(real, cfg.batch, cfg.seed, start, cfg.steps, cfg.flip_rotate)
        return rt.strategy.distribute_datasets_from_function(dataset_fn)

    def read_metrics(self) -> dict:
        out = {k: float(t.result()) for k, t in self.trackers.items()}
        for t in self.trackers.values():
            t.reset_state()
        return out

    def generate(self, z: np.ndarray, batch: int = 32) -> np.ndarray:
        outs = [np.asarray(self._sample(z[i:i + batch])) for i in range(0, len(z), batch)]
        return np.concatenate(outs)


def _replicas_on_cpu(rt) -> bool:
    """Several replicas on logical CPU devices: XLA cannot reach variables of another CPU device."""
    return rt.num_replicas > 1 and all("CPU" in str(d).upper() for d in rt.devices)


def summary_scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar through the core summary op: works without the tensorboard package."""
    import tensorflow as tf
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
    tf.summary.write(tag, tf.constant(float(value), tf.float32), step=step, metadata=meta)


def _chief_tmp(out: Path, rt) -> Path:
    """Checkpoint folder of this worker: the real one on the chief, a throw-away one elsewhere."""
    if rt.is_chief:
        return out / CKPT_DIR
    task = json.loads(os.environ.get("TF_CONFIG", "{}")).get("task", {})
    return out / f".worker_{task.get('type', 'worker')}_{task.get('index', 0)}"


def build_trainer(cfg: TrainConfig, plan: DataPlan, scenes: np.ndarray) -> "Trainer":
    """Runtime, models, optimizers, checkpoint and compiled step (also used by benchmarks).

    ``scenes``: (N, S, S, 3) uint8 photos, with the class index as a 4th channel in paired mode.
    """
    rt = setup_runtime(cfg.precision, cfg.strategy, cfg.cpu_devices, cfg.deterministic, cfg.seed)
    if cfg.batch % rt.num_replicas:
        raise UserError(f"--batch {cfg.batch} does not split over {rt.num_replicas} replicas; "
                        f"use a multiple of {rt.num_replicas}")
    trainer = Trainer(cfg, plan, rt, scenes)
    if cfg.xla and not trainer.xla and rt.is_chief:
        print("gan.py: note: --xla is off for replicas on logical CPU devices (XLA cannot share their "
              "variables); it applies on GPUs", file=sys.stderr)
    return trainer


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) a DCGAN; returns a summary with the final losses and quality score."""
    plan = validate(cfg)
    photos, labels = load_scenes(plan, progress=False)
    scenes = photos if labels is None else np.concatenate([photos, labels[..., None]], axis=-1)
    out = cfg.out
    resume_from = cfg.resume and _has_checkpoint(out)
    cfg.size = plan.size

    trainer = build_trainer(cfg, plan, scenes)
    rt = trainer.rt
    out.mkdir(parents=True, exist_ok=True)
    if rt.is_chief:
        save_config(out / "config.json", cfg, stage=f"{STAGE} train", n_scenes=len(photos),
                    native_size=plan.native_size, resolved_precision=rt.precision, replicas=rt.num_replicas,
                    xla=trainer.xla, data=str(plan.source))
        if plan.registry is not None:
            plan.registry.save(out / "classes.json")
            write_json(out / "label_frequencies.json",
                       {"class_names": plan.registry.names,
                        "frequencies": label_frequencies(labels, plan.n_classes).tolist()})

    import tensorflow as tf

    manager = tf.train.CheckpointManager(trainer.ckpt, str(_chief_tmp(out, rt)), max_to_keep=cfg.keep_checkpoints,
                                         step_counter=trainer.step, checkpoint_name="ckpt")
    if resume_from:
        trainer.ckpt.restore(latest_checkpoint(out)).assert_existing_objects_matched()
    start = int(trainer.step.numpy())
    if rt.is_chief:
        for name in ("losses.csv", "scores.csv"):
            _truncate_csv(out / name, start)
    return _Run(cfg, plan, rt, trainer, photos, labels, manager).loop(start)


class _Run:
    """The host side of training: the loop, logging, samples, scores, checkpoints, final plots."""

    def __init__(self, cfg, plan, rt, trainer, photos, labels, manager):
        import tensorflow as tf

        self.cfg, self.plan, self.rt, self.t = cfg, plan, rt, trainer
        self.photos, self.labels, self.manager = photos, labels, manager
        self.out = cfg.out
        self.writer = tf.summary.create_file_writer(str(self.out / "logs")) if rt.is_chief else None
        self.fixed_z = latents(cfg.seed, range(GRID), cfg.latent_dim)
        n_score = min(max(len(photos), GRID), SCORE_SAMPLES_MAX)
        # A different seed stream than the grid: scores look at scenes the grid does not show.
        self.score_z = latents(cfg.seed + 1_000_003, range(n_score), cfg.latent_dim)
        self.real_freq = label_frequencies(labels, plan.n_classes) if labels is not None else None
        self.last_score: dict | None = None

    def loop(self, start: int) -> dict:
        cfg = self.cfg
        it = iter(self.t.dataset(start))
        bar = progress_bar(None, "gan train", enabled=cfg.progress and self.rt.is_chief, total=cfg.steps,
                           initial=start, unit="step")
        last = {}
        t0, s0, side = time.perf_counter(), start, 0.0
        for step in range(start + 1, cfg.steps + 1):
            self.t.train_step(next(it))
            bar.update(1)
            final = step == cfg.steps
            if step % cfg.log_every == 0 or final:
                now = time.perf_counter()
                last = self.t.read_metrics()
                # Training speed only: samples, scores and checkpoints in between do not count.
                last["steps_per_sec"] = (step - s0) / max(now - t0 - side, 1e-9)
                t0, s0, side = now, step, 0.0
                self._log(step, last)
                bar.set_postfix(d=f"{last['d_loss']:.3f}", g=f"{last['g_loss']:.3f}",
                                sps=f"{last['steps_per_sec']:.2f}")
            busy = time.perf_counter()
            if cfg.sample_every and (step % cfg.sample_every == 0 or final):
                self._samples(step)
            if (cfg.score_every and step % cfg.score_every == 0) or final:
                self._score(step, final)
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or final:
                self._checkpoint(step)
            side += time.perf_counter() - busy
        bar.close()
        if start >= cfg.steps:
            if cfg.sample_every:
                self._samples(start)
            self._score(start, True)
        if self.rt.is_chief:
            plot_training(self.out)
        else:
            shutil.rmtree(self.manager.directory, ignore_errors=True)
        return {"step": int(self.t.step.numpy()), "losses": last, "score": self.last_score, "out": str(self.out)}

    def _log(self, step: int, values: dict) -> None:
        if not self.rt.is_chief:
            return
        _append_csv(self.out / "losses.csv", {"step": step, **{k: f"{v:.6g}" for k, v in values.items()}},
                    LOSS_COLUMNS)
        with self.writer.as_default(step=step):
            for k, v in values.items():
                summary_scalar(f"loss/{k}" if k != "steps_per_sec" else "perf/steps_per_sec", v, step)
        self.writer.flush()

    def _samples(self, step: int) -> None:
        if not self.rt.is_chief:
            return
        x = self.t.generate(self.fixed_z)
        labels = to_label(x) if self.plan.n_classes else None
        write_image(self.out / "samples" / f"samples_{step:06d}.png",
                    grid_image(to_uint8_photo(x), labels, self.plan.registry))

    def _score(self, step: int, final: bool) -> None:
        if not self.rt.is_chief:
            return
        from . import quality

        x = self.t.generate(self.score_z)
        fake = to_uint8_photo(x)
        rep = quality.score_sets(self.photos, fake, seed=self.cfg.seed, flip_rotate=self.cfg.flip_rotate)
        row = {"step": step, "swd": rep["swd"]["mean"], "histogram": rep["histogram"]["mean"],
               "nearest_ratio": rep["nearest"]["ratio"]}
        row.update({f"swd_{r}": v for r, v in rep["swd"]["levels"].items()})
        if self.plan.n_classes:
            row["class_mix"] = quality.class_frequency_distance(
                self.real_freq, label_frequencies(to_label(x), self.plan.n_classes))
        columns = ["step", "swd", *[f"swd_{r}" for r in rep["swd"]["levels"]], "histogram", "nearest_ratio"]
        columns += ["class_mix"] if self.plan.n_classes else []
        _append_csv(self.out / "scores.csv", {k: (f"{v:.6g}" if k != "step" else v) for k, v in row.items()},
                    columns)
        with self.writer.as_default(step=step):
            for k, v in row.items():
                if k != "step":
                    summary_scalar(f"quality/{k}", v, step)
        self.last_score = row
        if final:
            quality.nearest_figure(fake, self.photos, rep["nearest"], self.out / "nearest.png",
                                   flip_rotate=self.cfg.flip_rotate)

    def _checkpoint(self, step: int) -> None:
        # Every worker takes part (variables may live on several devices); only the chief's files stay.
        self.manager.save(checkpoint_number=step)


def plot_training(out: Path) -> None:
    """``training.png``: loss curves and, below, the quality score over training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses, scores = read_csv(out / "losses.csv"), read_csv(out / "scores.csv")
    if not losses:
        return
    fig, (a, b) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    steps = [int(r["step"]) for r in losses]
    for k in ("d_loss", "g_loss"):
        a.plot(steps, [float(r[k]) for r in losses], label=k)
    a.set_ylabel("loss")
    a.legend()
    a.grid(alpha=0.3)
    if scores:
        ss = [int(r["step"]) for r in scores]
        b.plot(ss, [float(r["swd"]) for r in scores], "o-", label="SWD x1e3 (mean over levels)")
        b.set_ylabel("SWD x1e3 (lower is better)")
        b2 = b.twinx()
        b2.plot(ss, [float(r["nearest_ratio"]) for r in scores], "s--", color="tab:red",
                label="nearest-real ratio")
        b2.set_ylabel("nearest-real ratio (< 1: copies or blur)", color="tab:red")
        b.legend(loc="upper right")
    b.set_xlabel("step")
    b.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    from PIL import Image

    write_image(out / "training.png", np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB")))


# --- loading a trained model -------------------------------------------------------------------------

@dataclass
class _Model:
    folder: Path
    config: dict
    size: int
    n_classes: int
    registry: ClassRegistry | None


def check_model(folder: Path) -> _Model:
    """A trained model folder: config.json of 'gan.py train' and at least one checkpoint."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(folder, "model folder does not exist (train one with gan.py train --out DIR)")
    if not _has_checkpoint(folder):
        raise UserError(folder, f"no checkpoint in {folder / CKPT_DIR} (train one with gan.py train --out "
                                f"{folder})")
    cfg = _stored_train_config(folder)
    registry = None
    if cfg.get("with_labels"):
        registry = load_registry(folder / "classes.json")
    return _Model(folder, cfg, int(cfg["size"]), len(registry) if registry else 0, registry)


def _load_generator(m: _Model):
    """The EMA generator of the newest checkpoint, in float32."""
    setup_runtime("float32")
    import tensorflow as tf

    g = dcgan.build_generator(m.size, int(m.config["width"]), int(m.config["latent_dim"]), m.n_classes,
                              name="generator_ema")
    path = tf.train.latest_checkpoint(str(m.folder / CKPT_DIR))
    if path is None:
        raise UserError(m.folder / CKPT_DIR, "checkpoint files are missing or unreadable")
    tf.train.Checkpoint(generator_ema=g).restore(path).expect_partial()
    return g, path


def _run_generator(g, z: np.ndarray, batch: int, progress: bool, desc: str) -> np.ndarray:
    import tensorflow as tf

    fn = model_function(call_inference, g)
    outs = []
    for i in progress_bar(range(0, len(z), batch), desc, enabled=progress, leave=False):
        outs.append(np.asarray(fn(tf.constant(z[i:i + batch]))))
    return np.concatenate(outs) if outs else np.zeros((0,))


def scene_name(seed: int, index: int) -> str:
    return f"gan_s{seed}_{index:05d}"


def generate(cfg: GenerateConfig) -> list[Path]:
    """Write cfg.n scenes (photos, or a/ photos + b/ labels for a paired model); returns the photo paths."""
    if cfg.n <= 0:
        raise UserError(f"--n must be > 0, got {cfg.n}")
    if cfg.batch <= 0:
        raise UserError(f"--batch must be > 0, got {cfg.batch}")
    if cfg.truncation is not None and cfg.truncation <= 0:
        raise UserError(f"--truncation must be > 0, got {cfg.truncation}")
    if cfg.seed < 0:
        raise UserError(f"--seed must be >= 0, got {cfg.seed}")
    m = check_model(cfg.model)
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise UserError(out, "--out exists and is not a folder")
    paired = m.n_classes > 0
    photo_dir = out / "a" if paired else out
    names = [scene_name(cfg.seed, i) for i in range(cfg.n)]
    todo = []
    for i, name in enumerate(names):
        exists = (photo_dir / f"{name}.png").exists() or (paired and (out / "b" / f"{name}.png").exists())
        if exists and not cfg.skip_existing:
            raise UserError(photo_dir / f"{name}.png", "exists from an earlier run with --seed "
                                                        f"{cfg.seed}; pass another --seed, another --out, or "
                                                        "--skip-existing to add only the missing scenes")
        if not exists:
            todo.append(i)
    z = latents(cfg.seed, todo, int(m.config["latent_dim"]), cfg.truncation)
    written: list[Path] = []
    if todo:
        g, path = _load_generator(m)
        x = _run_generator(g, z, cfg.batch, cfg.progress, "generate")
        photos = to_uint8_photo(x)
        labels = to_label(x) if paired else None
        for row, i in enumerate(progress_bar(todo, "write", enabled=cfg.progress, leave=False)):
            p = photo_dir / f"{names[i]}.png"
            write_image(p, photos[row])
            if paired:
                write_label(out / "b" / f"{names[i]}.png", labels[row], m.registry)
            written.append(p)
    else:
        path = None
    if paired:
        m.registry.save(out / "classes.json")
    previous = []
    if (out / "config.json").is_file():
        try:
            old = json.loads((out / "config.json").read_text())
            previous = old.get("previous_runs", []) + [{k: old.get(k) for k in ("created", "command", "config")}]
        except (OSError, json.JSONDecodeError):
            previous = []
    save_config(out / "config.json", cfg, stage=f"{STAGE} generate", checkpoint=path, written=len(written),
                paired=paired, previous_runs=previous)
    return written


def score(cfg: ScoreConfig) -> dict:
    """Score a trained model against real scenes; writes score.json and nearest.png; returns the report."""
    from . import quality

    if cfg.n <= 1:
        raise UserError(f"--n must be > 1, got {cfg.n}")
    if cfg.truncation is not None and cfg.truncation <= 0:
        raise UserError(f"--truncation must be > 0, got {cfg.truncation}")
    if cfg.inception_weights is not None and not Path(cfg.inception_weights).is_file():
        raise UserError(cfg.inception_weights, "InceptionV3 weights file not found")
    m = check_model(cfg.model)
    files, size = scan_scenes(Path(cfg.images))
    plan = DataPlan(photos=files, labels=None, native_size=size, size=m.size)
    real, _ = load_scenes(plan, progress=cfg.progress)
    out = Path(cfg.out) if cfg.out is not None else m.folder / "score"
    g, path = _load_generator(m)
    z = latents(cfg.seed, range(cfg.n), int(m.config["latent_dim"]), cfg.truncation)
    x = _run_generator(g, z, 32, cfg.progress, "generate")
    fake = to_uint8_photo(x)
    flip = bool(m.config.get("flip_rotate", True))
    report = quality.score_sets(real, fake, seed=cfg.seed, flip_rotate=flip,
                                inception_weights=cfg.inception_weights)
    if m.n_classes and (m.folder / "label_frequencies.json").is_file():
        freq = json.loads((m.folder / "label_frequencies.json").read_text())["frequencies"]
        report["class_mix"] = quality.class_frequency_distance(freq, label_frequencies(to_label(x), m.n_classes))
    report["checkpoint"] = path
    out.mkdir(parents=True, exist_ok=True)
    quality.nearest_figure(fake, real, report["nearest"], out / "nearest.png", flip_rotate=flip)
    write_json(out / "score.json", report)
    save_config(out / "config.json", cfg, stage=f"{STAGE} score", checkpoint=path)
    return report


def format_score(report: dict) -> str:
    swd = report["swd"]
    lines = [f"SWD x1e3: mean {swd['mean']:.2f} | " + ", ".join(f"{r}px {v:.2f}" for r, v in swd["levels"].items()),
             f"histogram distance: {report['histogram']['mean']:.4f} (r {report['histogram']['red']:.4f}, "
             f"g {report['histogram']['green']:.4f}, b {report['histogram']['blue']:.4f})",
             f"nearest real scene: median RMS {report['nearest']['median_distance']:.4f} vs "
             f"{report['nearest']['real_median_distance']:.4f} between real scenes "
             f"(ratio {report['nearest']['ratio']:.2f}; well below 1: copies or blurry samples, see nearest.png)"]
    if "class_mix" in report:
        lines.append(f"class mix distance: {report['class_mix']:.4f}")
    if "fid" in report:
        lines.append(f"FID {report['fid']:.2f}, KID {report['kid']:.4f}")
    return "\n".join(lines)
