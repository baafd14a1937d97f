"""The global batch of a training step as a pure function of (seed, step), over pools of examples.

Each pool (real training pairs, synthetic pairs, ...) is walked epoch by epoch in a fresh seeded
permutation; the batches take from each pool its share of every example drawn so far (a running count,
so a share of 0.25 is honoured at batch 1 too: one step in four), so adding synthetic scenes never makes
training longer. Because the batch of step ``s`` depends on nothing but (seed, s), a run resumed at step
``s`` sees exactly the batches of an uninterrupted one, and a run on N replicas the same global batches
as one device: every input pipeline builds the global batch and keeps its replicas' slices.

Usage: ``sampler = StepSampler([n_real, n_synth], batch=8, shares=[0.5, 0.5], seed=0)``;
``real_idx, synth_idx = sampler.indices(step)``; ``ds = step_dataset(make, specs, start, stop, batch)``.
"""

from __future__ import annotations

import math
import threading
from typing import Callable, Sequence

import numpy as np


PERM_CACHE = 16   # permutations kept: the epochs a few steps in flight can reach, per pool


class StepSampler:
    """Indices into each pool for any step; pool ``i`` epoch ``e`` is permutation ``rng([seed, i, e])``.

    The pools share every batch by running count: pools after the first have given, to steps
    0..s-1, their share of the ``batch * s`` examples drawn so far rounded half up (so never more than
    one example off it, at any batch), and the first pool gives the rest. Where ``share * batch`` is
    whole, every step takes exactly that many. Safe to call from the threads of a parallel tf.data map.
    """

    def __init__(self, sizes: Sequence[int], batch: int, shares: Sequence[float] | None = None, seed: int = 0):
        if any(n < 1 for n in sizes):
            raise ValueError(f"every pool needs at least one example, got sizes {list(sizes)}")
        self.sizes, self.batch, self.seed = [int(n) for n in sizes], int(batch), int(seed)
        shares = np.asarray(shares if shares is not None else [1.0] + [0.0] * (len(sizes) - 1), np.float64)
        if len(shares) != len(self.sizes) or (shares < 0).any() or shares.sum() <= 0:
            raise ValueError(f"need one non-negative share per pool, got {shares.tolist()}")
        self.shares = (shares / shares.sum()).tolist()
        # Pool i's part of what pools 0..i draw together: peeled off the running total from the last pool.
        together = np.cumsum(self.shares)
        self._parts = [s / t if t > 0 else 0.0 for s, t in zip(self.shares, together)]
        self._perms: dict[tuple[int, int], np.ndarray] = {}
        self._lock = threading.Lock()

    def drawn(self, steps: int) -> list[int]:
        """Examples each pool has given to steps 0..steps-1 (they sum to ``batch * steps``)."""
        left = self.batch * int(steps)
        out = [0] * len(self.sizes)
        for pool in range(len(self.sizes) - 1, 0, -1):
            out[pool] = math.floor(self._parts[pool] * left + 0.5)
            left -= out[pool]
        out[0] = left
        return out

    def per_step(self, pool: int = 0) -> float:
        """Examples pool ``pool`` gives a step on average: its share of the batch (rounded to 1e-9, so a
        whole count reads whole)."""
        return round(self.batch * self.shares[pool], 9)

    @property
    def batch_counts(self) -> list[int | float]:
        """Examples each pool gives a step on average; whole numbers where every step takes the same."""
        return [int(c) if c == int(c) else c for c in map(self.per_step, range(len(self.sizes)))]

    def realised_share(self, steps: int, pool: int = 1) -> float:
        """The share of the examples of steps 0..steps-1 that pool ``pool`` gave."""
        return self.drawn(steps)[pool] / max(1, self.batch * int(steps))

    def _perm(self, pool: int, epoch: int) -> np.ndarray:
        key = (pool, epoch)
        with self._lock:
            perm = self._perms.get(key)
            if perm is None:
                if len(self._perms) >= PERM_CACHE:
                    self._perms.clear()
                perm = np.random.default_rng([self.seed, pool, epoch]).permutation(self.sizes[pool])
                self._perms[key] = perm
            return perm

    def indices(self, step: int) -> list[np.ndarray]:
        out = []
        for pool, (n, first, stop) in enumerate(zip(self.sizes, self.drawn(step), self.drawn(int(step) + 1))):
            pos = np.arange(first, stop)
            epoch, within = pos // n, pos % n
            out.append(np.array([self._perm(pool, int(e))[w] for e, w in zip(epoch, within)], np.int64))
        return out

    def epochs_done(self, steps: int, pool: int = 0) -> float:
        """Passes over pool ``pool`` after ``steps`` steps."""
        return self.drawn(steps)[pool] / self.sizes[pool]


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
    # Deleting a distributed iterator waits out tf.data's autotuning thread, which on one core sleeps
    # up to tens of seconds between rounds: every distributed training ended with that stall. The batches
    # are the same either way; without autotuning each AUTOTUNE parallelism is the core count.
    opts.autotune.enabled = replicas == 1
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
