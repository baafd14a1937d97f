"""The global batch of a training step as a pure function of (seed, step), over pools of examples.

Each pool (real training pairs, synthetic pairs, ...) is walked epoch by epoch in a fresh seeded
permutation; a batch takes a fixed number of examples from each pool (its share of the batch), so adding
synthetic scenes never makes training longer. Because the batch of step ``s`` depends on nothing but
(seed, s), a run resumed at step ``s`` sees exactly the batches of an uninterrupted one, and a run on N
replicas the same global batches as one device: every input pipeline builds the global batch and keeps
its replicas' slices.

Usage: ``sampler = StepSampler([n_real, n_synth], batch=8, shares=[0.5, 0.5], seed=0)``;
``real_idx, synth_idx = sampler.indices(step)``; ``ds = step_dataset(make, specs, start, stop, batch)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def split_batch(batch: int, shares: Sequence[float]) -> list[int]:
    """Examples per pool: the shares of ``batch`` rounded by largest remainder (they sum to ``batch``)."""
    shares = np.asarray(shares, np.float64)
    raw = shares / shares.sum() * batch
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: batch - counts.sum()]:
        counts[i] += 1
    return counts.tolist()


class StepSampler:
    """Indices into each pool for any step; pool ``i`` epoch ``e`` is permutation ``rng([seed, i, e])``."""

    def __init__(self, sizes: Sequence[int], batch: int, shares: Sequence[float] | None = None, seed: int = 0):
        if any(n < 1 for n in sizes):
            raise ValueError(f"every pool needs at least one example, got sizes {list(sizes)}")
        self.sizes, self.batch, self.seed = [int(n) for n in sizes], int(batch), int(seed)
        self.counts = split_batch(batch, shares if shares is not None else [1.0] + [0.0] * (len(sizes) - 1))
        self._perms: dict[tuple[int, int], np.ndarray] = {}

    def _perm(self, pool: int, epoch: int) -> np.ndarray:
        key = (pool, epoch)
        if key not in self._perms:
            if len(self._perms) > 16:
                self._perms.clear()
            self._perms[key] = np.random.default_rng([self.seed, pool, epoch]).permutation(self.sizes[pool])
        return self._perms[key]

    def indices(self, step: int) -> list[np.ndarray]:
        out = []
        for pool, (n, k) in enumerate(zip(self.sizes, self.counts)):
            pos = int(step) * k + np.arange(k)
            epoch, within = pos // n, pos % n
            out.append(np.array([self._perm(pool, int(e))[w] for e, w in zip(epoch, within)], np.int64))
        return out

    def epochs_done(self, steps: int, pool: int = 0) -> float:
        """Passes over pool ``pool`` after ``steps`` steps."""
        return steps * self.counts[pool] / self.sizes[pool]


def step_dataset(make: Callable[[int], tuple], specs: Sequence[tuple], start: int, stop: int,
                 transform: Callable | None = None, replicas: int = 1, first_replica: int = 0,
                 local_replicas: int = 1):
    """tf.data of the batches of steps [start, stop).

    ``make(step) -> tuple of numpy arrays`` builds a global batch on the host (gathers, copy-paste);
    ``specs`` gives each array's (dtype, shape); ``transform(step, *tensors) -> tuple`` runs vectorised TF
    work on it (augmentation, scaling). With several replicas each element is this pipeline's replicas'
    slices, one per local replica (for ``distribute_datasets_from_function``)."""
    import tensorflow as tf

    dtypes = [tf.as_dtype(d) for d, _ in specs]

    def host(step):
        arrays = tf.numpy_function(lambda s: make(int(s)), [step], dtypes, stateful=False)
        return tuple(tf.ensure_shape(a, shape) for a, (_, shape) in zip(arrays, specs))

    def device(step, *arrays):
        arrays = transform(step, *arrays) if transform is not None else arrays
        if replicas == 1:
            return arrays
        per = specs[0][1][0] // replicas
        first = first_replica * per
        return tuple(tf.reshape(a[first:first + local_replicas * per], [local_replicas, per, *a.shape[1:]])
                     for a in arrays)

    ds = tf.data.Dataset.range(start, stop)
    ds = ds.map(lambda s: (s, *host(s)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.map(device, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if replicas > 1:
        ds = ds.unbatch()
    opts = tf.data.Options()
    opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    opts.deterministic = True
    return ds.with_options(opts).prefetch(tf.data.AUTOTUNE)


def distribute(rt, dataset_fn: Callable[..., object]):
    """One device: ``dataset_fn()``; several: each input pipeline builds its replicas' slices."""
    if rt.num_replicas == 1:
        return dataset_fn()

    def per_pipeline(ctx):
        local = ctx.num_replicas_in_sync // ctx.num_input_pipelines
        return dataset_fn(replicas=ctx.num_replicas_in_sync, first_replica=ctx.input_pipeline_id * local,
                          local_replicas=local)

    return rt.strategy.distribute_datasets_from_function(per_pipeline)
