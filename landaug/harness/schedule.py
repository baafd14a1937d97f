"""How the learning rate changes over a run: constant, or a short linear warm-up then a cosine decay.

The rate of a step is a function of the optimizer's update count alone (a variable in every checkpoint),
so a resumed run continues the same schedule exactly. For the cosine schedule, step k (1-based) of T:

    k <= W:  lr * k / W                                        (warm-up, W = WARMUP_FRACTION of T)
    k >  W:  lr * (1 + cos(pi * (k - W) / (T - W + 1))) / 2    (cosine, reaching ~0 at the last step)

so the first step takes lr / W, step W the full rate, the middle of the decay half of it, and the last step
a rate close to zero (lr * 1.7e-6 for T = 1280), yet every step still learns.

Usage: ``lr = learning_rate("cosine", 2e-4, total_steps=1280)`` for ``keras.optimizers.Adam``;
``warmup_steps(1280)``; ``rate_at("cosine", 2e-4, 1280, k)`` (plain Python, for tests and plots).
"""

from __future__ import annotations

import functools
import math

LR_SCHEDULES = ("constant", "cosine")
WARMUP_FRACTION = 0.05


def warmup_steps(total: int) -> int:
    """Steps of the linear warm-up: 5 % of the run, at least one."""
    return max(1, round(WARMUP_FRACTION * total))


def rate_at(schedule: str, lr: float, total: int, k: int) -> float:
    """The learning rate of step ``k`` (1-based) of a ``total``-step run."""
    if schedule == "constant":
        return lr
    w = warmup_steps(total)
    if k <= w:
        return lr * k / w
    return lr * 0.5 * (1.0 + math.cos(math.pi * (k - w) / (total - w + 1)))


def learning_rate(schedule: str, lr: float, total: int | None = None):
    """A float (constant) or a Keras schedule of the update count (cosine), for an optimizer."""
    if schedule == "constant":
        return lr
    if schedule != "cosine":
        raise ValueError(f"schedule must be one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
    if not total or total < 1:
        raise ValueError(f"a cosine schedule needs the run's total steps, got {total!r}")
    return _schedule_class()(lr, int(total))


@functools.cache
def _schedule_class():
    """The Keras schedule class, made on first use so that importing this module needs no Keras."""
    import keras
    from keras import ops

    class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, lr: float, total: int):
            self.lr, self.total, self.warmup = float(lr), int(total), warmup_steps(total)

        def __call__(self, iterations):
            k = ops.cast(iterations, "float32") + 1.0          # the step about to be made, 1-based
            warm = self.lr * k / self.warmup
            frac = ops.minimum((k - self.warmup) / float(self.total - self.warmup + 1), 1.0)
            return ops.where(k <= self.warmup, warm, self.lr * 0.5 * (1.0 + ops.cos(math.pi * frac)))

        def get_config(self):
            return {"lr": self.lr, "total": self.total}

    return WarmupCosine
