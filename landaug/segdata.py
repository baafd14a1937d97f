"""Paired photo / label data for the pix2pix labeller: loading, validation split, augmentation, tf.data.

Pairs are decoded once (PIL, with the label checks of ``imgio``) into uint8 arrays held in memory; each
epoch's ``tf.data`` pipeline shuffles them, batches, augments whole batches with vectorised ops and
prefetches. Augmentations are small pure functions ``fn(photo, label, seed) -> (photo, label)`` on
batches (photo float32 (B, S, S, 3) in [-1, 1], label uint8 (B, S, S)) with stateless random ops, so an
epoch is a pure function of its seed and a resumed run sees the same batches as an uninterrupted one.

Usage: ``pairs = load_pairs(folder, registry, size)``; ``ds = epoch_dataset(pairs, batch, seed, ["jitter"])``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .classes import IGNORE_INDEX, ClassRegistry
from .errors import UserError
from .imgio import pair_by_stem, read_image, read_label
from .geometry import resize_label, resize_photo, scene_of

JITTER_SCALE = 286 / 256    # pix2pix: resize 256 -> 286, then random-crop back to 256
COLOR_BRIGHTNESS = 0.1      # +- in [-1, 1] units, i.e. +- 5 % of the range
COLOR_CONTRAST = 0.1        # contrast factor in [0.9, 1.1]
CLASS_WEIGHT_CAP = 20.0     # inverse frequency of a class with a handful of pixels would swamp the loss


@dataclass
class PairSet:
    """Decoded pairs: ``photos`` (N, S, S, 3) uint8, ``labels`` (N, S, S) uint8 (IGNORE_INDEX allowed)."""
    stems: list[str]
    photos: np.ndarray
    labels: np.ndarray
    sources: list[str] = field(default_factory=list)
    resized: int = 0

    def __len__(self) -> int:
        return len(self.stems)

    def subset(self, idx: Sequence[int]) -> "PairSet":
        idx = np.asarray(idx, dtype=np.int64)
        return PairSet([self.stems[i] for i in idx], self.photos[idx], self.labels[idx],
                       [self.sources[i] for i in idx] if self.sources else [], 0)

    @staticmethod
    def concat(sets: Sequence["PairSet"]) -> "PairSet":
        sets = [s for s in sets if len(s)]
        if not sets:
            raise ValueError("no pairs")
        return PairSet([s for p in sets for s in p.stems], np.concatenate([p.photos for p in sets]),
                       np.concatenate([p.labels for p in sets]), [s for p in sets for s in p.sources],
                       sum(p.resized for p in sets))


def pair_folder(folder: Path) -> tuple[Path, Path]:
    """``folder/a`` + ``folder/b``, or a clear error naming what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(folder, "training folder does not exist (expected a folder with a/ photos and b/ labels)")
    for sub in ("a", "b"):
        if not (folder / sub).is_dir():
            raise UserError(folder, f"has no {sub}/ folder (expected a/ photos and b/ labels with the same names)")
    return folder / "a", folder / "b"


def list_pairs(folder: Path) -> list[tuple[str, Path, Path]]:
    """Matched (stem, photo, label) of ``folder/a`` and ``folder/b``; empty or unmatched is an error."""
    a, b = pair_folder(folder)
    pairs = pair_by_stem(a, b, "photo", "label")
    if not pairs:
        raise UserError(a, "no photos (png, jpg, tif) to train on")
    return pairs


def load_pairs(folder: Path, registry: ClassRegistry, size: int, allow_ignore: bool = False,
               progress: bool = False) -> PairSet:
    """Decode every pair of ``folder`` once; pairs of another size are resized (counted in ``resized``)."""
    from tqdm import tqdm

    pairs = list_pairs(folder)
    photos = np.empty((len(pairs), size, size, 3), np.uint8)
    labels = np.empty((len(pairs), size, size), np.uint8)
    resized = 0
    for i, (stem, pa, pb) in enumerate(tqdm(pairs, desc=f"reading {Path(folder).name}", unit="pair",
                                            disable=not progress, leave=False)):
        photo = read_image(pa)
        label = read_label(pb, registry, allow_ignore=allow_ignore)
        if photo.shape[:2] != label.shape:
            raise UserError(pb, f"label is {label.shape[1]}x{label.shape[0]} but its photo {pa.name} is "
                                f"{photo.shape[1]}x{photo.shape[0]}")
        if label.shape != (size, size):
            resized += 1
        photos[i] = resize_photo(photo, size)
        labels[i] = resize_label(label, size, "nearest")
    return PairSet([p[0] for p in pairs], photos, labels, [str(folder)] * len(pairs), resized)


def split_by_scene(stems: Sequence[str], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded split of indices into (train, val) by scene: tiles of one scene land on the same side."""
    if val_fraction <= 0:
        return list(range(len(stems))), []
    scenes = sorted({scene_of(s) for s in stems})
    if len(scenes) < 2:
        raise UserError(f"--val-fraction {val_fraction} needs at least 2 scenes, found {len(scenes)} "
                        "(use --val-fraction 0 to train without validation)")
    n_val = min(len(scenes) - 1, max(1, round(val_fraction * len(scenes))))
    order = np.random.default_rng(seed).permutation(len(scenes))
    val_scenes = {scenes[i] for i in order[:n_val]}
    train = [i for i, s in enumerate(stems) if scene_of(s) not in val_scenes]
    val = [i for i, s in enumerate(stems) if scene_of(s) in val_scenes]
    return train, val


def class_weights(labels: np.ndarray, n_classes: int, cap: float = CLASS_WEIGHT_CAP) -> np.ndarray:
    """Inverse-frequency weights, normalised to a mean of 1 per labelled pixel, capped at ``cap``.

    Classes absent from the labels get weight 0 (they contribute no pixel anyway)."""
    counts = np.bincount(labels[labels != IGNORE_INDEX].ravel(), minlength=n_classes)[:n_classes].astype(np.float64)
    freq = counts / max(counts.sum(), 1.0)
    w = np.where(counts > 0, 1.0 / np.maximum(freq, 1e-12), 0.0)
    for _ in range(2):
        w = w / max((w * freq).sum(), 1e-12)
        w = np.minimum(w, cap)
    return w.astype(np.float32)


# ---------------------------------------------------------------------------------------------------
# Augmentations: pure functions on batches; seed is a stateless seed, shape (2,) int32/int64.

def _tf():
    import tensorflow as tf
    return tf


def _bits(seed, batch, p: float = 0.5):
    tf = _tf()
    return tf.random.stateless_uniform([batch], seed) < p


def _where_batch(flag, a, b):
    tf = _tf()
    shape = tf.concat([tf.shape(flag), tf.ones([tf.rank(a) - 1], tf.int32)], 0)
    return tf.where(tf.reshape(flag, shape), a, b)


def _crop(x, oy, ox, size: int):
    """Per-example crop of (B, H, W, C) at offsets (oy, ox) by index gathers: one op per axis."""
    tf = _tf()
    rows = oy[:, None] + tf.range(size)[None]                       # (B, S)
    cols = ox[:, None] + tf.range(size)[None]
    x = tf.gather(x, rows, axis=1, batch_dims=1)                     # (B, S, W, C)
    return tf.gather(x, cols, axis=2, batch_dims=1)                  # (B, S, S, C)


def jitter(photo, label, seed):
    """pix2pix random jitter: resize S -> S * 286/256, random-crop back to S, mirror left-right."""
    tf = _tf()
    size = photo.shape[1]
    big = int(round(size * JITTER_SCALE))
    s_crop, s_flip = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    b = tf.shape(photo)[0]
    photo = tf.image.resize(photo, [big, big], method="bilinear")
    label = tf.image.resize(label[..., None], [big, big], method="nearest")
    off = tf.random.stateless_uniform([2, b], s_crop, minval=0, maxval=big - size + 1, dtype=tf.int32)
    photo = _crop(photo, off[0], off[1], size)
    label = _crop(label, off[0], off[1], size)[..., 0]
    flip = _bits(s_flip, b)
    return _where_batch(flip, photo[:, :, ::-1], photo), _where_batch(flip, label[:, :, ::-1], label)


def dihedral(photo, label, seed):
    """One of the eight flips / 90-degree rotations per scene (square images), photo and label alike."""
    tf = _tf()
    b = tf.shape(photo)[0]
    s_lr, s_ud, s_t = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    for bit, op in ((_bits(s_lr, b), lambda x: x[:, :, ::-1]),
                    (_bits(s_ud, b), lambda x: x[:, ::-1]),
                    (_bits(s_t, b), lambda x: tf.transpose(x, [0, 2, 1, 3]))):
        photo = _where_batch(bit, op(photo), photo)
        label = _where_batch(bit, op(label[..., None])[..., 0], label)
    return photo, label


def color(photo, label, seed):
    """Mild brightness / contrast jitter of the photo; the label is untouched."""
    tf = _tf()
    b = tf.shape(photo)[0]
    u = tf.random.stateless_uniform([2, b, 1, 1, 1], seed, minval=-1.0, maxval=1.0)
    mean = tf.reduce_mean(photo, axis=[1, 2, 3], keepdims=True)
    photo = (photo - mean) * (1.0 + COLOR_CONTRAST * u[1]) + mean + COLOR_BRIGHTNESS * u[0]
    return tf.clip_by_value(photo, -1.0, 1.0), label


AUGMENT_FNS: dict[str, Callable] = {"jitter": jitter, "dihedral": dihedral, "color": color}


def parse_augment(text: str) -> list[str]:
    """``"jitter,dihedral"`` -> names; ``"none"`` or empty -> no augmentation."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if names == ["none"]:
        return []
    bad = [n for n in names if n not in AUGMENT_FNS]
    if bad:
        raise UserError(f"--augment {bad[0]!r} is unknown: use a comma list of {', '.join(AUGMENT_FNS)} (or none)")
    return names


def augment_batch(photo, label, seed, names: Sequence[str]):
    """Apply the named augmentations in order, each with its own seed derived from ``seed``."""
    tf = _tf()
    for k, name in enumerate(names):
        photo, label = AUGMENT_FNS[name](photo, label, tf.random.experimental.stateless_fold_in(seed, k))
    return photo, label


def to_unit(photo_u8):
    """uint8 [0, 255] -> float32 [-1, 1]."""
    tf = _tf()
    return tf.cast(photo_u8, tf.float32) / 127.5 - 1.0


def base_dataset(pairs: PairSet):
    """The decoded pairs as an in-memory dataset (built once per run, reused every epoch)."""
    tf = _tf()
    return tf.data.Dataset.from_tensor_slices((pairs.photos, pairs.labels))


def epoch_dataset(base, n: int, batch: int, seed: int, names: Sequence[str]):
    """One epoch: seeded shuffle, full batches, vectorised augmentation, prefetch.

    ``seed`` fixes this epoch completely (order and every random transform)."""
    tf = _tf()
    seed = int(seed) % (2 ** 31 - 1)
    ds = base.shuffle(n, seed=seed, reshuffle_each_iteration=False).batch(batch, drop_remainder=True)

    def prep(i, pair):
        photo, label = pair
        return augment_batch(to_unit(photo), label, tf.stack([tf.constant(seed, tf.int64), i]), names)

    ds = ds.enumerate().map(prep, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    opts = tf.data.Options()
    # The pairs are in memory, not in files: multi-worker runs shard batches by element.
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    opts.deterministic = True
    return ds.with_options(opts).prefetch(tf.data.AUTOTUNE)


def eval_batches(photos: np.ndarray, batch: int):
    """Unaugmented photos in order, as float32 [-1, 1] batches."""
    for i in range(0, len(photos), batch):
        yield (photos[i:i + batch].astype(np.float32) / 127.5) - 1.0


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)
