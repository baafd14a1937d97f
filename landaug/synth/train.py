"""Training a mask-to-photo generator on the common harness: batches, sample grids, logs, checkpoints.

``train`` writes into ``--out``: ``config.json`` (first: options, locked options, training scenes),
``classes.json``, ``samples/samples_000500.png`` (rows of: layout | 3 photos rendered from it with
different noise | the real photo, for 4 fixed training layouts), ``losses.csv``, TensorBoard events in
``logs/``, checkpoints in ``checkpoints/`` (both networks, both optimizers, pix2pix's dropout state, step,
random stream, config), ``bands.json`` (the photos' band normalisation; grids show its composite) and, at
the end, ``training.png``. Real batches are a pure function of (seed, step), randomly flipped and rotated
with photo and label together, so a resumed run repeats an uninterrupted one.

Usage: ``summary = train(TrainConfig(data=Path("images_CGAN"), out=Path("models_synth"), steps=2000))``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..bands import BANDS_FILE, to_display
from ..config import config_dict, save_config
from ..harness.checkpoints import Checkpoints
from ..harness.figures import Panel, image_grid, plot_log
from ..harness.logs import CsvLog, Scalars
from ..harness.loop import Loop, log_losses
from ..harness.module import Trainer
from ..imgio import write_image
from ..split import read_split
from ..splitbands import split_band_stats
from .model import build_generator, build_module
from .render import Renderer
from .options import CKPT_DIR, STAGE, DataPlan, TrainConfig, locked_values, validate

SAMPLE_LAYOUTS = 4          # rows of a sample grid
SAMPLE_NOISES = 3           # photos rendered per row
SAMPLE_STREAM = 1_000_003   # keeps the grid's noise apart from any generate --seed
SAMPLE_CELL = 128


def load_training_pairs(plan: DataPlan, show: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Photos (N, S, S, bands) in the bands' type and labels (N, S, S) (255 = ignore) of the planned pairs,
    decoded once."""
    from ..cgan.data import load_pairs

    pairs = load_pairs(plan.pairs, plan.registry, plan.size, allow_ignore=True, show=show, stats=plan.stats)
    return pairs.photos, pairs.labels


def build_trainer(cfg: TrainConfig, plan: DataPlan) -> Trainer:
    """Runtime, networks, optimizers and the compiled step."""
    from ..errors import UserError
    from ..runtime import setup_runtime

    rt = setup_runtime(cfg.precision, cfg.strategy, cfg.cpu_devices, cfg.deterministic, cfg.seed)
    if cfg.batch % rt.num_replicas:
        raise UserError(f"--batch {cfg.batch} does not split over {rt.num_replicas} replicas; "
                        f"use a multiple of {rt.num_replicas}")
    module = build_module(cfg, plan.size, len(plan.registry), plan.stats)
    return Trainer(module, rt, cfg.seed, config_dict(cfg), cfg.xla)


def sample_rows(n: int) -> list[int]:
    """Indices of the fixed sample layouts: spread over the training pairs."""
    return sorted({int(round(i)) for i in np.linspace(0, n - 1, min(SAMPLE_LAYOUTS, n))})


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) a mask-to-photo GAN; returns a summary with the final losses."""
    plan = validate(cfg)
    if cfg.split is not None:
        plan.stats = split_band_stats([a for _, a, _ in plan.pairs], plan.stats, cfg.split)
    photos, labels = load_training_pairs(plan)
    trainer = build_trainer(cfg, plan)
    rt = trainer.rt
    out = Path(cfg.out)
    ckpt = Checkpoints(trainer.checkpoint_objects(), out / CKPT_DIR, rt, keep=2)
    if cfg.resume:
        ckpt.resume(out, (CKPT_DIR,))
    start = int(trainer.step.numpy())
    if rt.is_chief:
        out.mkdir(parents=True, exist_ok=True)
        save_config(out / "config.json", cfg, stage=STAGE, locked=locked_values(cfg, plan),
                    train_scenes=plan.train_scenes, val_scenes=read_split(cfg.split)["val"] if cfg.split else [],
                    n_pairs=len(plan.pairs), size=plan.size,
                    data_path=str(Path(cfg.data).resolve()), resolved_precision=rt.precision,
                    replicas=rt.num_replicas, xla=trainer.xla, bands=plan.stats.n_bands,
                    resumed_from_step=start if cfg.resume else None)
        plan.registry.save(out / "classes.json")
        plan.stats.save(out / BANDS_FILE)
    run = _Run(cfg, plan, trainer, photos, labels, ckpt)
    if rt.is_chief:
        run.losses.truncate_after(start)
    return run.loop(start)


class _Run:
    """The host side of training: losses, sample grids, checkpoints, the final plot."""

    def __init__(self, cfg: TrainConfig, plan: DataPlan, trainer: Trainer, photos, labels, ckpt):
        self.cfg, self.plan, self.t, self.rt, self.ckpt = cfg, plan, trainer, trainer.rt, ckpt
        self.photos, self.labels = photos, labels
        self.out = Path(cfg.out)
        chief = self.rt.is_chief
        self.columns = ("step", *trainer.module.metric_names, "steps_per_sec")
        self.losses = CsvLog(self.out / "losses.csv", self.columns, chief)
        self.scalars = Scalars(self.out / "logs", chief)
        self.rows = sample_rows(len(labels))
        self.renderer = None
        self.last: dict = {}

    def loop(self, start: int) -> dict:
        from ..gan.data import batches

        cfg = self.cfg
        scenes = np.concatenate([self.photos, self.labels[..., None]], axis=-1)    # label rides along
        data = batches(self.rt, scenes, cfg.batch, cfg.seed, start, cfg.steps, flip=True)
        self.lp = Loop(self.t, data, start, cfg.steps, "synth train", cfg.progress)
        self.lp.every(cfg.log_every, self._log)
        if cfg.sample_every:
            self.lp.every(cfg.sample_every, lambda step, final: self.samples(step))
        self.lp.every(cfg.checkpoint_every, lambda step, final: self.ckpt.save(step))
        self.lp.run()
        if start >= cfg.steps and cfg.sample_every:
            self.samples(start)
        self.ckpt.close()
        if self.rt.is_chief:
            plot_log(self.losses.rows(), self.out / "training.png",
                     [Panel(self.t.module.metric_names, "loss")])
        return {"step": int(self.t.step.numpy()), "losses": self.last, "out": str(self.out)}

    def _log(self, step: int, final: bool) -> None:
        self.last = log_losses(self.lp, step, self.losses, self.scalars)

    def _renderer(self) -> Renderer:
        """A copy of the generator for sampling, so sampling never touches the training state."""
        if self.renderer is None:
            cfg, plan = self.cfg, self.plan
            copy = build_generator(cfg.generator, plan.size, len(plan.registry), cfg.width, cfg.latent_dim,
                                   name="sample_generator", bands=plan.stats.n_bands)
            self.renderer = Renderer(cfg.generator, copy, cfg.latent_dim)
        self.renderer.model.set_weights(self.t.module.rendering.get_weights())
        return self.renderer

    def samples(self, step: int) -> None:
        if not self.rt.is_chief:
            return
        reg, stats = self.plan.registry, self.plan.stats
        rows = self.rows
        keys = [(self.cfg.seed, SAMPLE_STREAM, r, k) for r in range(len(rows)) for k in range(SAMPLE_NOISES)]
        layouts = np.repeat(self.labels[rows], SAMPLE_NOISES, axis=0)
        fake = to_display(self._renderer().render_unit(layouts, keys), stats, normalised=True)
        fake = fake.reshape(len(rows), SAMPLE_NOISES, *layouts.shape[1:], 3)
        grid = [[reg.colorize(self.labels[i]), *fake[r], to_display(self.photos[i], stats)]
                for r, i in enumerate(rows)]
        nearest = [True] + [False] * (SAMPLE_NOISES + 1)
        write_image(self.out / "samples" / f"samples_{step:06d}.png",
                    image_grid(grid, cell=SAMPLE_CELL, nearest=nearest))
