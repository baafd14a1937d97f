"""The pix2pix labeller's data: which pairs train and which whole scenes validate, decoded once.

Training pairs (tiles or resized scenes) come from ``DATA/train/{a,b}`` and any ``--extra`` folders;
validation uses whole scenes at their own size from ``DATA/scenes/{a,b}`` (stage 1 writes them; an older
or hand-made folder without it validates on its training-size pairs), predicted the way test scenes are.
A ``--split`` file decides which scenes train and which validate; without one a seeded share of the
training scenes is held out. Either way no validation or test scene reaches training (a K-fold split's
test scenes have pairs in the data folder, which it leaves out).

Photos are PNG or GeoTIFF with any number of bands, kept in their own data type; the band normalisation
(``bands.json`` of the data folder, which stage 1 writes; with ``--split``, the one learned from the
split's training scenes only, see ``splitbands``) is applied on the fly and stored with the model.
Pixels without data in a photo are ignored (255) in its label.

Usage: ``data = training_data(cfg, registry)``; ``data.train``, ``data.synthetic``, ``data.pools``, ``data.val``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Sequence

import numpy as np

from ..bands import BandStats
from ..classes import IGNORE_INDEX, ClassRegistry
from ..errors import UserError, warn
from ..geometry import resize_label, resize_photo, scene_of
from ..imgio import band_stats_for, list_images, pair_by_stem, read_label, read_model_photo
from ..progress import progress
from ..split import in_scenes, read_groups, read_split, scenes_of, val_scenes
from ..splitbands import split_band_stats

CLASS_WEIGHT_CAP = 20.0     # inverse frequency of a class with a handful of pixels would swamp the loss
SCENES_DIR = "scenes"


@dataclass
class PairSet:
    """Decoded pairs: ``photos`` (N, S, S, bands) in the bands' own type, ``labels`` (N, S, S) uint8
    (IGNORE_INDEX allowed); ``shapes`` counts the (height, width) the pairs had on disk."""
    stems: list[str]
    photos: np.ndarray
    labels: np.ndarray
    resized: int = 0
    shapes: dict[tuple[int, int], int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.stems)

    @property
    def scenes(self) -> list[str]:
        return [scene_of(s) for s in self.stems]

    @staticmethod
    def concat(sets: Sequence["PairSet"]) -> "PairSet":
        sets = [s for s in sets if len(s)]
        if not sets:
            raise ValueError("no pairs")
        shapes: dict[tuple[int, int], int] = {}
        for p in sets:
            for shape, n in p.shapes.items():
                shapes[shape] = shapes.get(shape, 0) + n
        return PairSet([s for p in sets for s in p.stems], np.concatenate([p.photos for p in sets]),
                       np.concatenate([p.labels for p in sets]), sum(p.resized for p in sets), shapes)

    def side(self, where: str | Path) -> int:
        """The one square side the pairs had on disk: a model's scale (model px per pair px) must hold for
        every pair, so pairs of several sizes, or stretched to a square, are refused."""
        if len(self.shapes) > 1:
            shown = ", ".join(f"{n} of {w}x{h}" for (h, w), n in sorted(self.shapes.items()))
            raise UserError(where, f"training pairs of {len(self.shapes)} sizes ({shown}): no one model scale "
                                   "holds for all of them; bring them to one square size (resize_to_256.py does)")
        (h, w), = self.shapes
        if h != w:
            raise UserError(where, f"training pairs are {w}x{h}: the model's square window would stretch them; "
                                   "cut square pairs (resize_to_256.py --mode tile)")
        return h


@dataclass
class Scene:
    """A whole scene at its own size, for validation."""
    stem: str
    photo: np.ndarray
    label: np.ndarray


@dataclass
class TrainingData:
    train: PairSet                              # real training pairs of the split's training scenes
    synthetic: PairSet | None                   # the --extra pairs (None: no extras)
    val: list[Scene] = field(default_factory=list)
    train_scenes: list[str] = field(default_factory=list)
    val_scenes: list[str] = field(default_factory=list)
    stats: BandStats = field(default_factory=BandStats.identity_uint8)
    pair_side: int = 0                          # side of the real training pairs on disk
    appended: bool = False                      # extras join the real pool (--synthetic-share 0, the paper's way)

    @cached_property
    def pools(self) -> list[PairSet]:
        """What the batches draw from: the real pairs, then the extras as a pool of their own (drawn at
        --synthetic-share) or, appended, in the real pool."""
        if self.synthetic is None:
            return [self.train]
        return [PairSet.concat([self.train, self.synthetic])] if self.appended else [self.train, self.synthetic]


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


def _read_pair(pa: Path, pb: Path, registry: ClassRegistry, allow_ignore: bool, stats: BandStats):
    r = read_model_photo(pa, stats)
    photo = r.data
    label = read_label(pb, registry, allow_ignore=allow_ignore)
    if photo.shape[:2] != label.shape:
        raise UserError(pb, f"label is {label.shape[1]}x{label.shape[0]} but its photo {pa.name} is "
                            f"{photo.shape[1]}x{photo.shape[0]}")
    if not r.valid.all():
        label = np.where(r.valid, label, IGNORE_INDEX).astype(np.uint8)
    return photo, label


def _decode(pairs, registry, allow_ignore, desc, show, stats: BandStats):
    """Read pairs in threads (PIL and GDAL release the GIL); results in order, so the first bad file is
    reported."""
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        jobs = pool.map(lambda p: _read_pair(p[1], p[2], registry, allow_ignore, stats), pairs)
        return list(progress(jobs, desc, enabled=show, total=len(pairs), unit="pair", leave=False))


def pairs_band_stats(pairs: list[tuple[str, Path, Path]]) -> BandStats:
    """The normalisation of a pair folder's photos: ``bands.json`` beside them (see ``band_stats_for``)."""
    photo = pairs[0][1]
    return band_stats_for(photo.parent, photo, up=2)


def load_pairs(pairs: list[tuple[str, Path, Path]], registry: ClassRegistry, size: int,
               allow_ignore: bool = True, show: bool = False, stats: BandStats | None = None) -> PairSet:
    """Decode pairs once (the bands of ``stats``, default the folder's own); pairs of another size are
    resized (counted in ``resized``)."""
    stats = stats if stats is not None else pairs_band_stats(pairs)
    decoded = _decode(pairs, registry, allow_ignore, "reading pairs", show, stats)
    photos = np.empty((len(pairs), size, size, stats.n_bands), np.dtype(stats.dtype))
    labels = np.empty((len(pairs), size, size), np.uint8)
    resized = 0
    shapes: dict[tuple[int, int], int] = {}
    for i, (photo, label) in enumerate(decoded):
        shapes[label.shape] = shapes.get(label.shape, 0) + 1
        if label.shape != (size, size):
            resized += 1
        photos[i] = resize_photo(photo, size)
        labels[i] = resize_label(label, size, "nearest")
    return PairSet([p[0] for p in pairs], photos, labels, resized, shapes)


def load_scenes(pairs: list[tuple[str, Path, Path]], registry: ClassRegistry, show: bool = False,
                stats: BandStats | None = None) -> list[Scene]:
    if not pairs:
        return []
    stats = stats if stats is not None else pairs_band_stats(pairs)
    decoded = _decode(pairs, registry, True, "reading scenes", show, stats)
    return [Scene(stem, photo, label) for (stem, _, _), (photo, label) in zip(pairs, decoded)]


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


def plan_split(cfg) -> tuple[list[tuple[str, Path, Path]], list[str], list[str]]:
    """(training pairs, training scenes, validation scenes) from the split file or a seeded hold-out."""
    pairs = list_pairs(train_folder(cfg.data))
    stems = [p[0] for p in pairs]
    if cfg.split is not None:
        split = read_split(cfg.split)
        train_sc, val_sc = split["train"], split["val"]
        # A K-fold split ("fold") tests scenes whose pairs the data folder holds: stage 1 kept every scene
        # for training, and the split keeps the fold's out of it. Elsewhere test scenes have no pairs.
        leaked = set(scenes_of(stems)) & set(split["test"])
        if leaked and "fold" not in split:
            raise UserError(cfg.data, f"training pairs of test scene {sorted(leaked)[0]} (split {cfg.split}): "
                                      "the data folder and the split disagree")
    else:
        val_sc = val_scenes(scenes_of(stems), cfg.val_fraction, cfg.seed, read_groups(cfg.data))
        train_sc = sorted(set(scenes_of(stems)) - set(val_sc))
    keep = set(in_scenes(stems, train_sc))
    train_pairs = [p for p in pairs if p[0] in keep]
    if not train_pairs:
        raise UserError(cfg.data, "no training pair belongs to a training scene of the split")
    return train_pairs, sorted(set(scenes_of(keep))), val_sc


def validation_pairs(data: Path, val_sc: list[str]) -> list[tuple[str, Path, Path]]:
    """Whole scenes of the validation split: ``DATA/scenes`` when stage 1 wrote it, else the training folder."""
    if not val_sc:
        return []
    whole = Path(data) / SCENES_DIR
    source = whole if (whole / "a").is_dir() else train_folder(data)
    pairs = [p for p in list_pairs(source) if p[0] in set(in_scenes([p[0]], val_sc))]
    missing = sorted(set(val_sc) - {scene_of(p[0]) for p in pairs})
    if missing:
        raise UserError(source, f"validation scene {missing[0]} has no pair in this folder")
    return pairs


def data_band_stats(data: Path, photo: Path) -> BandStats:
    """``DATA/bands.json`` (stage 1), or one folder above a hand-made pair folder."""
    return band_stats_for(data, photo, up=1)


def training_data(cfg, registry: ClassRegistry) -> TrainingData:
    train_pairs, train_sc, val_sc = plan_split(cfg)
    stats = data_band_stats(cfg.data, train_pairs[0][1])
    if cfg.split is not None:
        stats = split_band_stats([p[1] for p in train_pairs], stats, cfg.split)
    train = load_pairs(train_pairs, registry, cfg.size, show=cfg.progress, stats=stats)
    side = train.side(train_folder(cfg.data))
    extras = []
    for e in cfg.extra:
        if not list_images(Path(e) / "a", "photo folder"):
            warn(f"{e}: no extra pairs (all dropped by cgan.py label?); training without them")
            continue
        extras.append(load_pairs(list_pairs(Path(e)), registry, cfg.size, show=cfg.progress, stats=stats))
    synthetic = PairSet.concat(extras) if extras else None
    resized = train.resized + (synthetic.resized if synthetic is not None else 0)
    if resized:
        warn(f"{resized} training pairs are not {cfg.size}x{cfg.size}; resized them (photos area/Lanczos, "
             "labels nearest)")
    val = load_scenes(validation_pairs(cfg.data, val_sc), registry, show=cfg.progress, stats=stats)
    return TrainingData(train, synthetic, val, train_sc, val_sc, stats, side,
                        appended=synthetic is not None and not cfg.synthetic_share)
