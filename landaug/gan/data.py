"""The DCGAN's data: training scenes decoded once, step batches with flips and rotations, latents.

Real scenes are randomly flipped and transposed (the 8 flips/90-degree rotations; satellite scenes have no
"up"); in paired mode the class index rides along as a last channel, so photo and label move together.
Photos keep their bands' own data type until the model normalises them (float32 with NaN gaps when a
photo has pixels without data).

Usage: ``photos, labels = load_scenes(plan)``; ``ds = batches(rt, scenes, cfg, start)``;
``z = latents(seed, range(16), 128)``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import numpy as np

from ..batches import StepSampler, distribute, step_dataset
from ..geometry import resize_label, resize_photo
from ..imgio import read_label, read_model_photo
from ..progress import progress
from .options import DataPlan


def load_scenes(plan: DataPlan, show: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode every scene once (threads; PIL and GDAL release the GIL): photos (N, S, S, bands) in the
    bands' type, or float32 with NaN where a photo has no data, so the model can keep the gaps out of its
    loss (``Dcgan.hide_gaps``); labels (N, S, S)."""
    def photo(p):
        r = read_model_photo(p, plan.stats)
        data = r.data
        if not r.valid.all():
            data = data.astype(np.float32)
            data[~r.valid] = np.nan
        return resize_photo(data, plan.size)

    def label(p):
        # Ignored pixels (255, e.g. no data in the photo) become an all-zero label vector (tf.one_hot).
        return resize_label(read_label(p, plan.registry, allow_ignore=True), plan.size, "nearest")

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        photos = list(progress(pool.map(photo, plan.photos), "decode", enabled=show, total=len(plan.photos),
                               leave=False))
        labels = list(pool.map(label, plan.labels)) if plan.labels is not None else None
    if len({p.dtype for p in photos}) > 1:
        photos = [p.astype(np.float32) for p in photos]
    return np.stack(photos), (np.stack(labels) if labels is not None else None)


def flip_rotate(x, step, seed: int):
    """A random transpose and flips per scene of (B, S, S, C), seeded by (seed, step)."""
    import tensorflow as tf

    u = tf.random.stateless_uniform([tf.shape(x)[0], 3], seed=tf.stack([tf.cast(seed, tf.int64) + 1, step]))
    flip = u < 0.5
    x = tf.where(flip[:, 0, None, None, None], tf.transpose(x, [0, 2, 1, 3]), x)
    x = tf.where(flip[:, 1, None, None, None], tf.reverse(x, [1]), x)
    return tf.where(flip[:, 2, None, None, None], tf.reverse(x, [2]), x)


def batches(rt, scenes: np.ndarray, batch: int, seed: int, start: int, stop: int, flip: bool):
    """The real batches of steps [start, stop): a pure function of (seed, step), sliced per replica."""
    sampler = StepSampler([len(scenes)], batch, seed=seed)

    def make(step: int):
        return (scenes[sampler.indices(step)[0]],)

    def transform(step, x):
        return (flip_rotate(x, step, seed) if flip else x,)

    specs = [(scenes.dtype, (batch, *scenes.shape[1:]))]
    return distribute(rt, lambda **kw: step_dataset(make, specs, start, stop, transform, **kw))


def label_frequencies(labels: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(labels.ravel(), minlength=n_classes)[:n_classes].astype(np.float64)


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


def to_uint8_photo(x: np.ndarray, bands: int = 3) -> np.ndarray:
    return np.clip(np.rint((np.asarray(x[..., :bands], np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def to_label(x: np.ndarray, bands: int = 3) -> np.ndarray:
    return np.argmax(np.asarray(x[..., bands:]), axis=-1).astype(np.uint8)
