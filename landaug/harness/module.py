"""The GAN protocol and the compiled training step every GAN stage runs on.

A stage's GAN is a ``GanModule`` (as keras-io's ``gan_ada.py`` is a ``keras.Model`` with its own
``train_step`` and metric trackers): it builds its networks and optimizers, names its loss weights and
metrics, and defines ``replica_step(batch, seeds)``, one tape per network, returning loss values already
averaged over the global batch. ``Trainer`` wraps it: the step counter, one checkpointed random generator
that draws the step's stateless seeds (so a resumed run continues the same random stream), the config
kept in the checkpoint, metric trackers, and one ``tf.function`` that runs the step on every replica
(XLA-compiled per replica with ``--xla``) and sums the replicas' values.

Usage: ``trainer = Trainer(module, rt, seed=cfg.seed, config=config_dict(cfg), xla=cfg.xla)``;
``trainer.train_step(batch)``; ``trainer.read_metrics()``; ``trainer.checkpoint_objects()``.
"""

from __future__ import annotations

import json
import sys


class GanModule:
    """What the harness needs of a GAN. Subclasses set the class attributes and implement the methods."""

    name: str = "gan"
    metric_names: tuple[str, ...] = ()
    loss_weights: dict[str, float] = {}
    n_seeds: int = 0              # stateless seeds the step draws (latents, noise, augmentation)

    def build(self, rt) -> None:
        """Networks and optimizers, created under ``rt.strategy.scope()``."""
        raise NotImplementedError

    def checkpoint_objects(self) -> dict:
        """Networks, inner optimizers and any other state a resumed run needs."""
        raise NotImplementedError

    def replica_step(self, batch, seeds) -> dict:
        """One update on this replica's slice of the batch; ``seeds`` is (2, n_seeds) int64."""
        raise NotImplementedError

    def after_step(self, step) -> None:
        """Cross-replica work after each update (e.g. a moving average of the generator)."""
        return None


def optimizer(rt, learning_rate: float, beta_1: float, name: str, variables=None):
    """``(inner, used)``: Adam, wrapped in dynamic loss scaling under mixed float16, built for ``variables``
    when given. The checkpoint holds ``inner``, the same in every precision."""
    import keras

    from ..models.layers import adam

    inner = adam(learning_rate, beta_1, name)
    used = inner
    if rt.precision == "mixed_float16":
        used = keras.optimizers.LossScaleOptimizer(inner, name=f"{name}_loss_scale")
    if variables is not None:
        inner.build(variables)
        if used is not inner:
            used.build(variables)
    return inner, used


def scale_loss(opt, loss):
    return opt.scale_loss(loss) if hasattr(opt, "scale_loss") else loss


def replicas_on_cpu(rt) -> bool:
    """Several replicas on logical CPU devices: XLA cannot reach variables of another CPU device."""
    return rt.num_replicas > 1 and all("CPU" in str(d).upper() for d in rt.devices)


class Trainer:
    """A GanModule with its step counter, random stream, trackers and compiled step."""

    def __init__(self, module: GanModule, rt, seed: int, config: dict, xla: bool = False):
        import keras
        import tensorflow as tf

        self.module, self.rt = module, rt
        module.build(rt)
        # Outside the strategy: read and advanced in cross-replica context only, identical on all workers.
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.rng = tf.random.Generator.from_seed(seed)
        self.config = tf.Variable(json.dumps(config, sort_keys=True, default=str), trainable=False, name="config")
        self.trackers = {k: keras.metrics.Mean(name=k) for k in module.metric_names}
        self.xla = bool(xla) and not replicas_on_cpu(rt)
        if xla and not self.xla and rt.is_chief:
            print("note: --xla is off for replicas on logical CPU devices (XLA cannot share their variables); "
                  "it applies on GPUs", file=sys.stderr)
        # XLA compiles the whole per-replica step (as Keras does with jit_compile): a nested plain
        # tf.function would turn the replicas' synchronisation points into unsupported merge calls.
        # No AutoGraph: the steps branch and loop in Python only, and converting the ~160 functions a step
        # reaches costs about a second of CPU time per model (a sixth of a small pipeline run's CPU time).
        self._replica = (tf.function(module.replica_step, jit_compile=True, autograph=False) if self.xla
                         else module.replica_step)
        self.train_step = tf.function(self._step, autograph=False)

    def _step(self, batch):
        import tensorflow as tf

        strategy = self.rt.strategy
        seeds = self.rng.make_seeds(max(self.module.n_seeds, 1))
        per_replica = strategy.run(self._replica, args=(batch, seeds))
        values = {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}
        self.module.after_step(self.step)
        self.step.assign_add(1)
        for k, v in values.items():
            self.trackers[k].update_state(v)

    def checkpoint_objects(self) -> dict:
        return {**self.module.checkpoint_objects(), "step": self.step, "rng": self.rng, "config": self.config}

    def read_metrics(self, reset: bool = True) -> dict[str, float]:
        out = {k: float(t.result()) for k, t in self.trackers.items()}
        if reset:
            for t in self.trackers.values():
                t.reset_state()
        return out
