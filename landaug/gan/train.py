"""Training the DCGAN on the common harness: samples from fixed latents, quality scores, checkpoints.

``train`` writes into ``--out``: ``config.json`` (first), ``samples/samples_000500.png`` (16 fixed
latents, EMA generator), ``losses.csv``, ``scores.csv``, TensorBoard events in ``logs/``, checkpoints in
``checkpoints/`` (both networks, the EMA generator, both optimizers, step, RNG state, config) and, at
the end, ``training.png`` (loss and quality curves) and ``nearest.png`` (sample | nearest real scene).
The photos' band normalisation goes into ``bands.json``; samples, scores and figures use its composite
(``rgb``), which for 8-bit RGB photos is the photo itself.

Usage: ``summary = train(TrainConfig(images=Path("images"), out=Path("models_GAN"), steps=20000))``.
"""

from __future__ import annotations

import numpy as np

from .. import quality
from ..bands import BANDS_FILE, to_display
from ..config import config_dict, save_config
from ..errors import UserError
from ..files import write_json
from ..harness.checkpoints import Checkpoints
from ..harness.figures import Panel, image_grid, plot_log, tile_images
from ..harness.logs import CsvLog, Scalars
from ..harness.loop import Loop, log_losses
from ..harness.module import Trainer
from ..imgio import write_image
from ..runtime import model_function, call_inference, setup_runtime
from ..splitbands import split_band_stats
from .data import batches, label_frequencies, latents, load_scenes, to_label
from .model import Dcgan
from .options import CKPT_DIR, STAGE, DataPlan, TrainConfig, locked_values, validate

GRID = 16                      # fixed latents in every sample grid (4 x 4)
SCORE_SAMPLES_MAX = 256        # generated scenes per quality score during training
LOSS_COLUMNS = ("step", "d_loss", "g_loss", "d_real", "d_fake", "steps_per_sec")


def build_trainer(cfg: TrainConfig, plan: DataPlan, scenes: np.ndarray) -> Trainer:
    """Runtime, models, optimizers and compiled step (also used by benchmarks).

    ``scenes``: (N, S, S, bands) raw photos, with the class index as a last channel in paired mode."""
    rt = setup_runtime(cfg.precision, cfg.strategy, cfg.cpu_devices, cfg.deterministic, cfg.seed)
    if cfg.batch % rt.num_replicas:
        raise UserError(f"--batch {cfg.batch} does not split over {rt.num_replicas} replicas; "
                        f"use a multiple of {rt.num_replicas}")
    module = Dcgan(cfg, plan.size, plan.n_classes, plan.stats.n_bands, plan.stats)
    trainer = Trainer(module, rt, cfg.seed, config_dict(cfg), cfg.xla)
    trainer.scenes = scenes
    return trainer


def trainer_batches(trainer: Trainer, cfg: TrainConfig, start: int, stop: int | None = None):
    return batches(trainer.rt, trainer.scenes, cfg.batch, cfg.seed, start, cfg.steps if stop is None else stop,
                   cfg.flip_rotate)


def train(cfg: TrainConfig) -> dict:
    """Train (or resume) a DCGAN; returns a summary with the final losses and quality score."""
    plan = validate(cfg)
    if cfg.split is not None:
        plan.stats = split_band_stats(plan.photos, plan.stats, cfg.split)
    photos, labels = load_scenes(plan, show=False)
    scenes = photos if labels is None else np.concatenate([photos, labels[..., None]], axis=-1)
    out = cfg.out
    cfg.size = plan.size
    trainer = build_trainer(cfg, plan, scenes)
    rt = trainer.rt
    ckpt = Checkpoints(trainer.checkpoint_objects(), out / CKPT_DIR, rt, keep=cfg.keep_checkpoints)
    if cfg.resume and ckpt.latest() is not None:
        ckpt.resume(out, (CKPT_DIR,))
    start = int(trainer.step.numpy())
    if rt.is_chief:
        out.mkdir(parents=True, exist_ok=True)
        save_config(out / "config.json", cfg, stage=STAGE, locked=locked_values(cfg, plan), n_scenes=len(photos),
                    native_size=plan.native_size, resolved_precision=rt.precision, replicas=rt.num_replicas,
                    xla=trainer.xla, data=str(plan.source), train_scenes=plan.train_scenes,
                    bands=plan.stats.n_bands, resumed_from_step=start if cfg.resume else None)
        plan.stats.save(out / BANDS_FILE)
        if plan.registry is not None:
            plan.registry.save(out / "classes.json")
            write_json(out / "label_frequencies.json",
                       {"class_names": plan.registry.names,
                        "frequencies": label_frequencies(labels, plan.n_classes).tolist()})
    run = _Run(cfg, plan, trainer, photos, labels, ckpt)
    if rt.is_chief:
        run.losses.truncate_after(start)
        run.scores.truncate_after(start)
    return run.loop(start)


class _Run:
    """The host side of training: logging, samples, scores, checkpoints, final plots."""

    def __init__(self, cfg, plan, trainer, photos, labels, ckpt):
        self.cfg, self.plan, self.t, self.rt = cfg, plan, trainer, trainer.rt
        self.photos, self.labels, self.ckpt = photos, labels, ckpt
        self.out = cfg.out
        chief = self.rt.is_chief
        self.losses = CsvLog(self.out / "losses.csv", LOSS_COLUMNS, chief)
        self.scores = CsvLog(self.out / "scores.csv", _score_columns(plan.n_classes), chief)
        self.scalars = Scalars(self.out / "logs", chief)
        self.fixed_z = latents(cfg.seed, range(GRID), cfg.latent_dim)
        n_score = min(max(len(photos), GRID), SCORE_SAMPLES_MAX)
        # A different seed stream than the grid: scores look at scenes the grid does not show.
        self.score_z = latents(cfg.seed + 1_000_003, range(n_score), cfg.latent_dim)
        self.real_freq = label_frequencies(labels, plan.n_classes) if labels is not None else None
        # Scores compare against a fixed seeded subset of the real scenes: nearest-neighbour search over
        # thousands of tiles and all their flips would cost more than the training it measures.
        pick = np.sort(np.random.default_rng(cfg.seed).permutation(len(photos))[:SCORE_SAMPLES_MAX])
        self.stats = plan.stats
        self.score_real = to_display(photos[pick], self.stats)
        self.sample = model_function(call_inference, trainer.module.E)
        self.last_score: dict | None = None
        self.last: dict = {}

    def display(self, x: np.ndarray) -> np.ndarray:
        """The composite of generated photos (N, S, S, 3) uint8: what grids show and scores compare."""
        return to_display(x[..., :self.stats.n_bands], self.stats, normalised=True)

    def generate(self, z: np.ndarray, batch: int = 32) -> np.ndarray:
        return np.concatenate([np.asarray(self.sample(z[i:i + batch])) for i in range(0, len(z), batch)])

    def loop(self, start: int) -> dict:
        cfg = self.cfg
        self.lp = Loop(self.t, trainer_batches(self.t, cfg, start), start, cfg.steps, "gan train", cfg.progress)
        self.lp.every(cfg.log_every, self._log)
        if cfg.sample_every:
            self.lp.every(cfg.sample_every, lambda step, final: self._samples(step))
        self.lp.every(cfg.score_every, lambda step, final: self._score(step, final))
        self.lp.every(cfg.checkpoint_every, lambda step, final: self.ckpt.save(step))
        self.lp.run()
        if start >= cfg.steps:
            if cfg.sample_every:
                self._samples(start)
            self._score(start, True)
        self.ckpt.close()
        if self.rt.is_chief:
            plot_training(self.out, self.losses.rows(), self.scores.rows())
        return {"step": int(self.t.step.numpy()), "losses": self.last, "score": self.last_score, "out": str(self.out)}

    def _log(self, step: int, final: bool) -> None:
        self.last = log_losses(self.lp, step, self.losses, self.scalars)

    def _samples(self, step: int) -> None:
        if not self.rt.is_chief:
            return
        x = self.generate(self.fixed_z)
        photos = self.display(x)
        n = self.stats.n_bands
        cells = list(photos) if not self.plan.n_classes else [
            np.concatenate([p, self.plan.registry.colorize(lab)], axis=1) for p, lab in zip(photos, to_label(x, n))]
        write_image(self.out / "samples" / f"samples_{step:06d}.png", image_grid(tile_images(np.stack(cells))))

    def _score(self, step: int, final: bool) -> None:
        if not self.rt.is_chief:
            return
        x = self.generate(self.score_z)
        fake = self.display(x)
        rep = quality.score_sets(self.score_real, fake, seed=self.cfg.seed, flip_rotate=self.cfg.flip_rotate)
        row = {"step": step, "swd": rep["swd"]["mean"], "histogram": rep["histogram"]["mean"],
               "nearest_ratio": rep["nearest"]["ratio"]}
        row.update({f"swd_{r}": v for r, v in rep["swd"]["levels"].items()})
        if self.plan.n_classes:
            row["class_mix"] = quality.class_frequency_distance(
                self.real_freq, label_frequencies(to_label(x, self.stats.n_bands), self.plan.n_classes))
        self.scores.columns = ["step", "swd", *[f"swd_{r}" for r in rep["swd"]["levels"]], "histogram",
                               "nearest_ratio"] + (["class_mix"] if self.plan.n_classes else [])
        self.scores.append({k: (f"{v:.6g}" if k != "step" else v) for k, v in row.items()})
        self.scalars.write(step, {f"quality/{k}": v for k, v in row.items() if k != "step"})
        self.last_score = row
        if final:
            quality.nearest_figure(fake, self.score_real, rep["nearest"], self.out / "nearest.png",
                                   flip_rotate=self.cfg.flip_rotate)


def _score_columns(n_classes: int) -> list[str]:
    return ["step", "swd", "histogram", "nearest_ratio"] + (["class_mix"] if n_classes else [])


def plot_training(out, losses: list[dict], scores: list[dict]) -> None:
    """``training.png``: loss curves above, the quality score over training below."""
    rows = {int(float(r["step"])): dict(r) for r in losses}
    for s in scores:
        rows.setdefault(int(float(s["step"])), {"step": s["step"]}).update(s)
    panels = [Panel(("d_loss", "g_loss"), "loss")]
    if scores:
        panels.append(Panel(("swd",), "SWD x1e3 (lower is better)", twin=("nearest_ratio",),
                            twin_label="nearest-real ratio"))
    plot_log([rows[k] for k in sorted(rows)], out / "training.png", panels)
