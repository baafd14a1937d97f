"""How long will a run take on this machine? An estimate from a few timed steps of each model it trains.

A run is a list of trainings (``Training``): the stage each one is (its marker, so a resumed run counts
only what is left), the model it trains (a ``bench.BenchConfig``: pix2pix, dcgan, paired or synth, with
size, width, batch, labeller options, precision and XLA), its optimizer steps, the whole scenes it labels
(validation scenes times evaluations, test scenes, pseudo-labelled scenes) and the images it generates.
Every distinct model is built once and timed the way ``bench.py`` builds it (the stage's own training
step and input pipeline, on synthetic scenes in memory): the build and first steps, which trace the step
and which every training pays once, then ``TIMED_STEPS`` steps (their median); a labeller then labels
one synthetic scene whole, and its seconds per window price every scene labelled; a generator's forward
pass prices the images it generates. ``estimate`` multiplies them out. It is a pure function of the
trainings and the timings: the pipeline lists arms x folds x seeds x label budgets.

The timings see the machine as loaded now; left out are stage 1, GAN quality scores, sample grids,
checkpoints and the evaluation (seconds each at the presets' sizes), and DiffAugment's extra third per
GAN step.

Usage: ``print(estimate_run(cfg, counts, run.done))`` before a pipeline run; in parts,
``trainings = pipeline_trainings(cfg, counts)``; ``timings = time_models(trainings)``;
``total, rows = estimate(trainings, timings)``; ``format_estimate(total, rows, seconds_spent_timing)``.
"""

from __future__ import annotations

import gc
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

TIMED_STEPS = 4         # timed training steps per model, after WARMUP_STEPS
WARMUP_STEPS = 2        # the first traces the step; the second still warms caches
LONG_RUN_STEPS = 200    # a run training fewer steps in all is over before an estimate would say much
KIND_WORDS = {"pix2pix": "labeller", "dcgan": "DCGAN", "paired": "paired GAN", "synth": "mask-to-photo generator"}


@dataclass(eq=False)
class Training:
    stage: str                      # the pipeline's stage marker, e.g. "seed0/baseline"
    model: object                   # bench.BenchConfig after bench.resolve
    steps: int
    scenes: tuple = ()              # (height, width, scale, count, views) labelled whole; views 4 with flip TTA
    generated: int = 0              # images generated (forward passes of a generator)


@dataclass
class Timing:
    setup: float                    # seconds a training pays once: build and trace (beyond its steps)
    step: float                     # seconds per training step
    per_window: float = 0.0         # labellers: seconds per window of a whole-scene labelling
    label_setup: float = 0.0        # labellers: tracing of the first labelling
    per_image: float = 0.0          # seconds per generated image (a forward pass, per image)


@dataclass
class Row:
    kind: str
    trainings: int = 0
    steps: int = 0
    windows: int = 0
    seconds: float = 0.0
    stages: list = field(default_factory=list)


def model_key(model) -> tuple:
    from ..bench import to_argv

    return tuple(to_argv(model))


def windows(height: int, width: int, size: int, scale: float, overlap: float) -> int:
    from ..tiling import count_windows

    return count_windows(height, width, size, scale, overlap)


def time_models(trainings: list[Training], overlap: float = 0.25) -> dict[tuple, Timing]:
    """Build and time every distinct model of ``trainings`` once, in this process."""
    import keras

    from ..bench.measure import sync
    from ..bench.project import BUILDERS, synthetic_scenes
    from ..synthetic import make_scene

    timings: dict[tuple, Timing] = {}
    for t in trainings:
        key = model_key(t.model)
        if key in timings:
            continue
        m = t.model
        photos, labels = synthetic_scenes(max(2 * m.batch, 8), m.size, m.seed)
        with tempfile.TemporaryDirectory(prefix="landaug_estimate_") as tmp:
            t0 = time.perf_counter()
            bench = BUILDERS[m.model](m, photos, labels, Path(tmp))
            for _ in range(WARMUP_STEPS):
                sync(bench.train(next(bench.batches)))
            setup = time.perf_counter() - t0
            steps = []
            for _ in range(TIMED_STEPS):
                s0 = time.perf_counter()
                sync(bench.train(next(bench.batches)))
                steps.append(time.perf_counter() - s0)
            step = statistics.median(steps)
            timing = Timing(setup=max(setup - WARMUP_STEPS * step, 0.0), step=step)
            if bench.labeller is not None:
                h, w = _largest_scene(trainings, key) or (m.size, m.size)
                photo, _ = make_scene(m.seed, max(h, w))
                l0 = time.perf_counter()
                bench.labeller(photo)
                first = time.perf_counter() - l0
                l1 = time.perf_counter()
                bench.labeller(photo)
                again = time.perf_counter() - l1
                timing.per_window = again / windows(photo.shape[0], photo.shape[1], m.size, 1.0, overlap)
                timing.label_setup = max(first - again, 0.0)
            i0 = time.perf_counter()
            sync(bench.infer())
            timing.per_image = (time.perf_counter() - i0) / bench.infer_batch
            timings[key] = timing
        bench = None
        keras.backend.clear_session()
        gc.collect()
    return timings


def _largest_scene(trainings: list[Training], key: tuple) -> tuple[int, int] | None:
    sides = [(h, w) for t in trainings if model_key(t.model) == key for h, w, *_ in t.scenes]
    return max(sides, key=lambda s: s[0] * s[1]) if sides else None


def training_seconds(t: Training, timing: Timing, overlap: float = 0.25) -> tuple[float, int]:
    """(seconds, windows labelled) of one training."""
    n_windows = sum(count * views * windows(h, w, t.model.size, scale, overlap) for h, w, scale, count, views in t.scenes)
    seconds = t.steps * timing.step + n_windows * timing.per_window + t.generated * timing.per_image
    if t.steps:
        seconds += timing.setup
    if n_windows:
        seconds += timing.label_setup
    return seconds, n_windows


def estimate(trainings: list[Training], timings: dict[tuple, Timing], overlap: float = 0.25
             ) -> tuple[float, dict[str, Row]]:
    """(total seconds, a row per kind of model) of ``trainings`` at ``timings``."""
    rows: dict[str, Row] = {}
    for t in trainings:
        seconds, n_windows = training_seconds(t, timings[model_key(t.model)], overlap)
        row = rows.setdefault(t.model.model, Row(t.model.model))
        row.trainings += 1 if t.steps else 0
        row.steps += t.steps
        row.windows += n_windows
        row.seconds += seconds
        row.stages.append(t.stage)
    return sum(r.seconds for r in rows.values()), rows


def about(seconds: float) -> str:
    """A wall time in the words a person plans with: "about 40 s", "about 12 min", "about 2.5 h"."""
    if seconds < 90:
        return f"about {max(10, int(round(seconds, -1)))} s"
    if seconds < 90 * 60:
        return f"about {int(round(seconds / 60))} min"
    hours = round(seconds / 3600, 1)
    return f"about {hours:g} h"


def format_estimate(total: float, rows: dict[str, Row], timing_seconds: float) -> str:
    lines = [f"estimate on this machine: {about(total)} (from a few steps of each model, timed in "
             f"{timing_seconds:.0f} s; stage 1, GAN scores and the evaluation not counted)"]
    for row in rows.values():
        labelled = f", {row.windows} windows labelled" if row.windows else ""
        lines.append(f"  {KIND_WORDS.get(row.kind, row.kind)}: {row.trainings} training"
                     f"{'s' if row.trainings != 1 else ''}, {row.steps} steps{labelled}: {about(row.seconds)}")
    return "\n".join(lines)


def steps_of(steps: int, epochs: int, pairs: int, batch: int) -> int:
    """A labeller's optimizer steps: ``steps``, or ``epochs`` passes over ``pairs`` real pairs."""
    return steps or epochs * max(1, pairs // batch)


def evaluations_of(total: int, every: int, steps_per_epoch: int) -> int:
    """Validations over a training: every ``every`` steps (0: once an epoch) and at the end."""
    every = min(every or steps_per_epoch, total)
    return math.ceil(total / max(every, 1))


def _scale(cfg, height: int, width: int) -> float:
    """Model px per scene px of whole-scene labelling: the tile scale, or the scene fitted to the window."""
    if cfg.data_mode == "tile":
        return cfg.tile_scale
    return cfg.size / (min(height, width) if cfg.fit == "crop" else max(height, width))


def pipeline_trainings(cfg, counts: dict) -> list[Training]:
    """The trainings of a pipeline run, place by place (fold, seed, label budget), named by their cells
    (``cells.build``); ``counts`` is what ``inputs.check_input`` counted."""
    from .. import synth
    from ..bench import BenchConfig, resolve
    from .options import ARMS, PER_LAYOUT, REFERENCES, gan_width, synthetic_kinds
    from .places import places

    views = 4 if cfg.tta == "flips" else 1
    shapes = counts["shapes"]
    rest = sorted(counts["rest"], key=lambda s: shapes[s][0] * shapes[s][1])
    vh, vw = shapes[rest[len(rest) // 2]]
    labeller = resolve(BenchConfig(model="pix2pix", size=cfg.size, batch=cfg.cgan_batch, width=cfg.cgan_width,
                                   labeller=cfg.labeller, loss=cfg.loss, upsample=cfg.upsample,
                                   precision=cfg.precision, xla=cfg.xla, seed=cfg.seed))
    steps = steps_of(cfg.cgan_steps, cfg.cgan_epochs, counts["train_pairs"], cfg.cgan_batch)
    every = max(1, steps // cfg.evaluations) if cfg.cgan_steps and cfg.evaluations else 0
    n_eval = evaluations_of(steps, every, max(1, counts["train_pairs"] // cfg.cgan_batch))
    def scenes(test: list[str]) -> tuple:
        return ((vh, vw, _scale(cfg, vh, vw), n_eval * counts["val_per_seed"], views),
                *((h, w, _scale(cfg, h, w), 1, views) for h, w in (shapes[s] for s in test)))

    kinds = synthetic_kinds(cfg)
    generators = [("dcgan", "dcgan", cfg.gan_steps, cfg.gan_batch, gan_width(cfg), cfg.n_generated),
                  ("paired_gan", "paired", cfg.gan_steps, cfg.gan_batch, gan_width(cfg), cfg.n_generated),
                  ("masksynth_generator", "synth", cfg.synth_steps, synth.TrainConfig().batch, cfg.synth_width,
                   -(-cfg.n_generated // PER_LAYOUT) * PER_LAYOUT)]
    used = {"dcgan": "gan" in kinds, "paired_gan": "paired" in kinds, "masksynth_generator": "masksynth" in kinds}
    arms = (["baseline"] if "baseline" in cfg.arms or "gan" in kinds else []) + [a for a in cfg.arms if a != "baseline"]
    arms.sort(key=lambda a: a not in REFERENCES)
    out = []
    for place in places(cfg):
        n, test = place.name, counts["tests"][place.fold or 0]
        for stage, model, n_steps, batch, width, generated in generators:
            if used[stage]:
                bench = resolve(BenchConfig(model=model, size=cfg.size, batch=batch, width=width,
                                            precision=cfg.precision, xla=cfg.xla, seed=cfg.seed))
                out.append(Training(f"{n}/{stage}", bench, n_steps, generated=generated))
        for arm in arms:
            if ARMS[arm].synthetic == "gan":
                pseudo = ((cfg.size, cfg.size, 1.0, cfg.n_generated, views),)
                out.append(Training(f"{n}/label", labeller, 0, pseudo))
            probes = ("-color-probe", "-plain-probe") if (cfg.classic_color == "auto"
                                                           and "dihedral" in ARMS[arm].augment) else ()
            out += [Training(f"{n}/{arm}{probe}", labeller, steps, scenes(test)) for probe in probes]
            out.append(Training(f"{n}/{arm}", labeller, steps, scenes(test)))
    # The DCGAN scenes are pseudo-labelled once per seed.
    seen, unique = set(), []
    for t in out:
        if t.stage not in seen:
            seen.add(t.stage)
            unique.append(t)
    return unique


def estimate_run(cfg, counts: dict, done, always: bool = False) -> str | None:
    """The estimate of what is left of a pipeline run (``done(stage)`` is None for a stage not yet run); None
    for a run of fewer than ``LONG_RUN_STEPS`` training steps in all, unless ``always``."""
    trainings = [t for t in pipeline_trainings(cfg, counts) if done(t.stage) is None]
    if not trainings:
        return "estimate: every training of this run is done; only the evaluation is left"
    if not always and sum(t.steps for t in trainings) < LONG_RUN_STEPS:
        return None
    t0 = time.perf_counter()
    timings = time_models(trainings, cfg.overlap)
    total, rows = estimate(trainings, timings, cfg.overlap)
    return format_estimate(total, rows, time.perf_counter() - t0)
