"""Rendering photos for label layouts with a trained mask-to-photo generator, the noise of each photo a
function of a key (seed, layout, k), so the same key always gives the same photo.

The noise by kind: ``spade``, a latent; ``oasis``, a latent and a per-pixel noise map; ``pix2pix``, the
dropout layers' seeds, with dropout kept on (``training=True``) and batch normalisation frozen at its
moving statistics, as pix2pix's authors kept dropout at test time for variety.

Usage: ``r = Renderer(kind, generator, latent_dim)``; ``photos = r.render(labels, [(seed, i, k), ...])``
(8-bit RGB) or ``x = r.render_unit(...)`` (any bands, in [-1, 1]).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .model import onehot


def to_uint8(x) -> np.ndarray:
    return np.clip(np.rint((np.asarray(x, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


class Renderer:
    """Photos for label maps from a generator (its own copy, not the one being trained), noise by key."""

    def __init__(self, kind: str, generator, latent_dim: int, batch: int = 16):
        import keras
        import tensorflow as tf

        from ..runtime import call_inference, model_function

        self.kind, self.model, self.latent_dim, self.batch = kind, generator, int(latent_dim), int(batch)
        self.n_classes = int(generator.inputs[0].shape[-1])
        self.size = int(generator.inputs[0].shape[1])
        self.bands = int(generator.outputs[0].shape[-1])
        if kind == "pix2pix":
            from ..models.pix2pix import dropout_seed_variables

            # Dropout on, batch statistics off: the moving averages the training run kept.
            for layer in generator.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
            self.states = list(dropout_seed_variables(generator).values())
            self.fn = tf.function(self._one_with_dropout)
        else:
            self.fn = model_function(call_inference, generator)

    def _one_with_dropout(self, x, seeds):
        for i, state in enumerate(self.states):
            state.assign(seeds[i])
        return self.model(x, training=True)

    def noise(self, key: Sequence[int]):
        """The dropout layers' seeds (pix2pix), the latent (SPADE), or (latent, noise map) (oasis) of one photo."""
        from ..models.oasis import NOISE_CHANNELS

        rng = np.random.default_rng([int(k) for k in key])
        if self.kind == "pix2pix":
            return rng.integers(0, 2 ** 31 - 1, (len(self.states), 2), dtype=np.int64)
        z = rng.standard_normal(self.latent_dim).astype(np.float32)
        if self.kind == "oasis":
            return z, rng.standard_normal((self.size, self.size, NOISE_CHANNELS)).astype(np.float32)
        return z

    def render(self, labels: np.ndarray, keys: Sequence[Sequence[int]]) -> np.ndarray:
        """uint8 photos (N, S, S, 3) of an 8-bit RGB generator (see ``render_unit``)."""
        return to_uint8(self.render_unit(labels, keys))

    def render_unit(self, labels: np.ndarray, keys: Sequence[Sequence[int]]) -> np.ndarray:
        """Photos (N, S, S, bands) in [-1, 1] for label maps (N, S, S), photo i with the noise of ``keys[i]``.

        pix2pix renders one photo a call, so a photo never depends on what else is in the batch; the
        others run in inference mode, where a photo depends on its own inputs only."""
        hot = onehot(labels, self.n_classes)
        outs = []
        if self.kind == "pix2pix":
            import tensorflow as tf

            outs = [np.asarray(self.fn(tf.constant(hot[i:i + 1]), tf.constant(self.noise(k))))
                    for i, k in enumerate(keys)]
        else:
            noises = [self.noise(k) for k in keys]
            for i in range(0, len(keys), self.batch):
                part = noises[i:i + self.batch]
                inputs = ([np.stack([z for z, _ in part]), np.stack([n for _, n in part])] if self.kind == "oasis"
                          else [np.stack(part)])
                outs.append(np.asarray(self.fn([hot[i:i + self.batch], *inputs])))
        return (np.concatenate(outs).astype(np.float32) if outs
                else np.zeros((0, *labels.shape[1:], self.bands), np.float32))
