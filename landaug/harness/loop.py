"""The training loop every GAN stage runs: steps from a resumed position to the total, with events.

Events (log, samples, evaluation, checkpoint, ...) run every N steps and, if asked, after the last step.
Training speed is measured over the steps alone: the time spent in events is left out.

Usage: ``loop = Loop(trainer, batches, start, total, "gan train", progress=True)``;
``loop.every(50, lambda step, final: log_losses(loop, step, csv, scalars))``; ``loop.every(1000, save_fn)``;
``loop.run()``. Each event is ``fn(step: int, final: bool)`` and may read ``loop.steps_per_second()`` or set
``loop.bar`` postfixes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..progress import progress


@dataclass
class Event:
    every: int
    fn: Callable[[int, bool], None]
    at_end: bool = True


class Loop:
    def __init__(self, trainer, batches, start: int, total: int, desc: str, progress_on: bool = True,
                 every_line: int | None = None):
        self.trainer, self.batches, self.start, self.total = trainer, batches, start, total
        self.desc, self.progress_on, self.every_line = desc, progress_on, every_line
        self.events: list[Event] = []
        self.bar = None
        self._t0 = self._s0 = self._side = 0.0

    def every(self, n: int, fn: Callable[[int, bool], None], at_end: bool = True) -> None:
        self.events.append(Event(int(n), fn, at_end))

    def steps_per_second(self, step: int) -> float:
        """Steps per second since the previous call, events excluded."""
        now = time.perf_counter()
        rate = (step - self._s0) / max(now - self._t0 - self._side, 1e-9)
        self._t0, self._s0, self._side = now, step, 0.0
        return rate

    def run(self) -> None:
        it = iter(self.batches)
        self.bar = progress(None, self.desc, enabled=self.progress_on and self.trainer.rt.is_chief,
                            total=self.total, initial=self.start, unit="step", every=self.every_line)
        self._t0, self._s0, self._side = time.perf_counter(), self.start, 0.0
        try:
            for step in range(self.start + 1, self.total + 1):
                self.trainer.train_step(next(it))
                self.bar.update(1)
                final = step == self.total
                t = time.perf_counter()
                for ev in self.events:
                    if (ev.every and step % ev.every == 0) or (final and ev.at_end):
                        ev.fn(step, final)
                self._side += time.perf_counter() - t
        finally:
            self.bar.close()


def log_losses(loop: Loop, step: int, csv, scalars) -> dict:
    """Read (and reset) the trainer's loss trackers, add the training speed, and write them to the CSV
    log, TensorBoard and the progress bar; returns the values."""
    values = loop.trainer.read_metrics()
    values["steps_per_sec"] = loop.steps_per_second(step)
    csv.append({"step": step, **{k: f"{v:.6g}" for k, v in values.items()}})
    scalars.write(step, {(f"loss/{k}" if k != "steps_per_sec" else "perf/steps_per_sec"): v for k, v in values.items()})
    loop.bar.set_postfix({k: f"{v:.3f}" for k, v in values.items() if k != "steps_per_sec"},
                         sps=f"{values['steps_per_sec']:.2f}")
    return values
