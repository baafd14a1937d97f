"""Training the pix2pix labeller on the common harness: batches, validation on whole scenes, best model.

Every ``eval_every`` steps (once an epoch by default) the generator labels the validation scenes whole,
at their own size, exactly as test scenes are labelled, and the mIoU over the classes present in their
truth decides the ``best`` checkpoint; ``ckpt/`` holds the latest state for ``--resume``. The batch of a
step is a pure function of (seed, step), so a resumed run continues exactly where it stopped.

Usage: ``result = train(TrainConfig(data="images_CGAN", out="models_CGAN/before", epochs=57))``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..bands import normalise_tf, to_display
from ..batches import StepSampler, distribute, step_dataset
from ..classes import registry_for_data
from ..config import config_dict, load_config, save_config
from ..copypaste import ComponentBank, paste_batch
from ..errors import UserError
from ..files import write_json
from ..harness.checkpoints import Checkpoints
from ..harness.figures import Panel, image_grid, plot_log
from ..harness.logs import CsvLog, Scalars
from ..harness.loop import Loop
from ..harness.module import Trainer
from ..harness.schedule import rate_at, warmup_steps
from ..imgio import write_image
from ..metrics import confusion_matrix, mean_iou, mean_iou_present
from ..runtime import setup_runtime
from .augment import augment_batch, parse_augment
from .data import TrainingData, class_weights, training_data
from .infer import SceneLabeller
from .model import build_module
from .options import BEST_DIR, CKPT_DIR, MODEL_FILE, STAGE, TrainConfig, locked_values, resolve, validate

SAMPLE_SCENES = 4
LOG_CSV = "log.csv"
# cpu_seconds next to seconds: on a shared machine the wall time alone does not show the work done
LOG_FIELDS = ("epoch", "step", "g_total", "g_adv", "g_seg", "d_loss", "val_miou", "val_miou_all", "lr", "seconds",
              "cpu_seconds", "images_per_second")
LAST_EVALS = 5


@dataclass
class TrainResult:
    out: Path
    epochs: int
    steps: int
    best_epoch: float | None
    best_step: int | None
    best_val_miou: float | None
    final_val_miou: float | None
    last5_val_miou: float | None
    history: list[dict]
    seconds: float


@dataclass
class Schedule:
    steps_per_epoch: int
    total: int
    eval_every: int

    def epoch(self, step: int) -> float | int:
        e = step / self.steps_per_epoch
        return int(e) if e == int(e) else round(e, 3)


def schedule(cfg: TrainConfig, sampler: StepSampler) -> Schedule:
    """Steps per pass over the real pairs, the total to reach, and how often to evaluate."""
    per_epoch = max(1, int(sampler.sizes[0] // sampler.per_step(0)))
    total = cfg.steps or cfg.epochs * per_epoch
    return Schedule(per_epoch, total, min(cfg.eval_every or per_epoch, total))


def data_geometry(data: Path, pair_side: int, model_size: int) -> tuple[float | None, str | None]:
    """(scale, fit) of a model trained on ``data``'s pairs of side ``pair_side`` at ``model_size``: model px
    per scene px (stage 1 records the pairs' own scale; a hand-made folder is at scale 1), and how stage 1
    fitted each scene to the window (``crop``/``pad``, resize mode; None for tiles), in which case the model
    fits each photo the same way and ``scale`` is the scenes' common one, or None when their sizes differ."""
    path = Path(data) / "config.json"
    recorded = load_config(path) if path.is_file() else {}
    if not isinstance(recorded, dict):
        raise UserError(path, "not a stage-1 config.json (expected a JSON object)")
    # Stage 1 before --fit wrote resize-mode data without the key: it always cropped.
    fit = recorded.get("fit", "crop" if recorded.get("mode") == "resize" else None)
    scale = recorded.get("scale", 1.0)
    if fit not in (None, "crop", "pad") or (scale is None and fit is None) or not (
            scale is None or isinstance(scale, (int, float)) and scale > 0):
        raise UserError(path, f"records scale {scale!r} and fit {fit!r} for its training pairs: expected a "
                              "positive scale, or fit crop or pad (run resize_to_256.py again)")
    return (None if scale is None else float(scale) * model_size / pair_side), fit


def _scale_words(scale: float | None, fit: str | None) -> str:
    return f"each scene fitted to the window (--fit {fit})" if fit else f"at scale {scale:.4g}"


def batch_source(cfg: TrainConfig, data: TrainingData, sampler: StepSampler, bank: ComponentBank | None):
    """``make(step)`` (host: gather, copy-paste) and ``transform(step, photo, label)`` (TF: the band
    normalisation, augment)."""
    import tensorflow as tf

    pools = data.pools
    scenes = [np.array(p.scenes) for p in pools]
    names = parse_augment(cfg.augment)

    def make(step: int):
        idx = sampler.indices(step)
        photos = np.concatenate([p.photos[i] for p, i in zip(pools, idx)])
        labels = np.concatenate([p.labels[i] for p, i in zip(pools, idx)])
        if bank is not None:
            sc = np.concatenate([s[i] for s, i in zip(scenes, idx)])
            photos, labels = paste_batch(photos, labels, sc, bank, (cfg.seed, step), cfg.copypaste_p,
                                         cfg.copypaste_n, cfg.copypaste_rarity)
        return photos, labels

    def transform(step, photos, labels):
        x = normalise_tf(photos, data.stats)
        return augment_batch(x, labels, tf.stack([tf.constant(cfg.seed, tf.int64), step]), names)

    shape = data.train.photos.shape[1:]
    specs = [(data.train.photos.dtype, (cfg.batch, *shape)), (np.uint8, (cfg.batch, *shape[:2]))]
    return make, transform, specs


def reconcile_best(best_ckpt: Checkpoints, best: dict, start: int) -> None:
    """On resume, ``best/`` must hold the step that ``ckpt/`` records as the best. ``ckpt/`` is saved
    first, so a run killed between the two saves resumes at the best step itself: ``best/`` is written
    again from the restored generator. Any other disagreement cannot be repaired and is refused."""
    recorded = int(best["best_step"].numpy())
    held = best_ckpt.saved_step()
    if recorded == 0 or held == recorded:
        return
    if recorded == start:
        best_ckpt.save(start)
        return
    raise UserError(best_ckpt.folder, f"holds the model of step {held} but the checkpoint in "
                                      f"{best_ckpt.folder.parent / CKPT_DIR} records step {recorded} as the best: "
                                      "the run was stopped between its two saves; train again into a new --out")


def _synthetic_words(data: TrainingData, share: float) -> str:
    if data.synthetic is None:
        return ""
    return f" + {len(data.synthetic)} synthetic, {'appended' if data.appended else f'at share {share:g}'}"


def copypaste_bank(cfg: TrainConfig, data: TrainingData, n_classes: int) -> ComponentBank | None:
    """The regions copy-paste draws from: the real training pairs only, never the --extra pairs (appended
    or not), so a pasted region is always real."""
    if cfg.copypaste_p <= 0:
        return None
    return ComponentBank.build(data.train.photos, data.train.labels, data.train.scenes, n_classes)


def evaluate(labeller: SceneLabeller, scenes) -> tuple[float | None, float | None, list[np.ndarray]]:
    """(mIoU over the truth classes, mIoU, predictions) of the validation scenes, pooled."""
    if not scenes:
        return None, None, []
    n = labeller.n_classes
    cm = np.zeros((n, n), np.int64)
    preds = []
    for s in scenes:
        pred, _ = labeller(s.photo)
        cm += confusion_matrix(s.label, pred, n)
        preds.append(pred)
    present, full = float(mean_iou_present(cm)), float(mean_iou(cm))
    return (None if np.isnan(present) else present), (None if np.isnan(full) else full), preds


def _model_description(cfg, registry, rt, scale, fit, bands, data: TrainingData) -> dict:
    return {"format": 2, "size": cfg.size, "width": cfg.width, "dropout": cfg.dropout, "target": cfg.target,
            "labeller": cfg.labeller, "loss": cfg.loss, "upsample": cfg.upsample, "tta": cfg.tta,
            "lr_schedule": cfg.lr_schedule, "n_classes": len(registry), "classes": registry.to_json(),
            "precision": rt.precision, "scale": scale, "fit": fit, "bands": bands, "band_stats": data.stats.to_json(),
            "train_scenes": data.train_scenes, "train": locked_values(cfg)}


def run_train(cfg: TrainConfig, on_evaluation: Callable[[int, int, float | None, bool], str] | None = None
              ) -> TrainResult:
    """Train (or resume) as configured; ``cfg`` must have passed ``resolve`` and ``validate``.
    ``on_evaluation(step, total, val_miou, best)`` returns a line to show after each evaluation (a caller's
    own words, e.g. the pipeline's, where ``verbose`` is off)."""
    registry = registry_for_data(cfg.data, cfg.classes)
    data = training_data(cfg, registry)
    pools = [len(p) for p in data.pools]
    shares = [1 - cfg.synthetic_share, cfg.synthetic_share] if len(pools) == 2 else None
    sampler = StepSampler(pools, cfg.batch, shares, cfg.seed)
    if math.ceil(sampler.per_step(0)) > pools[0]:
        raise UserError(f"--batch {cfg.batch} is larger than the {pools[0]} training pairs "
                        f"(after holding out {len(data.val)} scenes for validation): use --batch {pools[0]} "
                        "or less")
    sched = schedule(cfg, sampler)
    all_labels = np.concatenate([p.labels for p in data.pools])
    weights = class_weights(all_labels, len(registry)) if cfg.class_weights == "auto" else None
    bank = copypaste_bank(cfg, data, len(registry))
    bands = int(data.train.photos.shape[-1])
    scale, fit = data_geometry(cfg.data, data.pair_side, cfg.size)

    rt = setup_runtime(cfg.precision, cfg.strategy, cfg.cpu_devices, cfg.deterministic, cfg.seed)
    if cfg.batch % rt.num_replicas:
        raise UserError(f"--batch {cfg.batch} does not split over the {rt.num_replicas} replicas: "
                        f"use a multiple of {rt.num_replicas}")
    import tensorflow as tf

    module = build_module(cfg, registry, weights, bands, sched.total)
    trainer = Trainer(module, rt, cfg.seed, config_dict(cfg), cfg.xla)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    best = {"best_miou": tf.Variable(-1.0, dtype=tf.float64, trainable=False, name="best_miou"),
            "best_step": tf.Variable(0, dtype=tf.int64, trainable=False, name="best_step")}
    out = Path(cfg.out)
    ckpt = Checkpoints({**trainer.checkpoint_objects(), "epoch": epoch, **best}, out / CKPT_DIR, rt, keep=2)
    best_ckpt = Checkpoints({"generator": module.gen, "step": trainer.step, "config": trainer.config},
                            out / BEST_DIR, rt, keep=1)
    if cfg.resume:
        ckpt.resume(out, (CKPT_DIR, BEST_DIR))
    start = int(trainer.step.numpy())
    if cfg.resume:
        reconcile_best(best_ckpt, best, start)

    log = CsvLog(out / LOG_CSV, LOG_FIELDS, rt.is_chief)
    if rt.is_chief:
        out.mkdir(parents=True, exist_ok=True)
        n_synthetic = len(data.synthetic) if data.synthetic is not None else 0
        save_config(out / "config.json", cfg, stage=STAGE, locked=locked_values(cfg), precision=rt.precision,
                    replicas=rt.num_replicas, train_pairs=len(data.train) + n_synthetic,
                    synthetic_pairs=n_synthetic, synthetic_appended=data.appended, batch_counts=sampler.batch_counts,
                    synthetic_share_realised=sampler.realised_share(sched.total) if len(pools) == 2 else None,
                    train_scenes=data.train_scenes, val_scenes=data.val_scenes, val_pairs=len(data.val),
                    steps=sched.total, steps_per_epoch=sched.steps_per_epoch, eval_every=sched.eval_every,
                    scale=scale, fit=fit, bands=bands,
                    warmup_steps=warmup_steps(sched.total) if cfg.lr_schedule == "cosine" else 0,
                    class_weights=None if weights is None else weights.tolist(),
                    copypaste=None if bank is None else bank.summary(),
                    resumed_from_step=start if cfg.resume else None)
        write_json(out / MODEL_FILE, {**_model_description(cfg, registry, rt, scale, fit, bands, data),
                                      "compute_dtype": module.gen.get_layer("down1_conv").compute_dtype})
        registry.save(out / "classes.json")
        log.truncate_after(start)
    scalars = Scalars(out / "logs", rt.is_chief)

    make, transform, specs = batch_source(cfg, data, sampler, bank)
    batches = distribute(rt, lambda **kw: step_dataset(make, specs, start, sched.total, transform, **kw))
    labeller = SceneLabeller(module.gen, cfg.target, registry, cfg.size, scale, cfg.overlap,
                             batch=max(cfg.batch, 8), stats=data.stats, fit=fit, tta=cfg.tta)
    run = _Run(cfg, sched, trainer, ckpt, best_ckpt, best, epoch, log, scalars, labeller, data, rt)
    run.on_evaluation = on_evaluation
    loop = Loop(trainer, batches, start, sched.total, "cgan train", cfg.progress)
    loop.every(sched.eval_every, run.evaluate_and_save)
    if cfg.verbose and rt.is_chief:
        span = (f"epochs {sched.epoch(start) + 1 if start % sched.steps_per_epoch == 0 else sched.epoch(start)}.."
                f"{sched.epoch(sched.total)}")
        print(f"cgan train: {cfg.labeller} ({cfg.loss}, {cfg.lr_schedule} rate, {cfg.upsample} upsampling"
              f"{', flip TTA' if cfg.tta == 'flips' else ''}), {len(data.train)} training pairs"
              f"{_synthetic_words(data, cfg.synthetic_share)}"
              f" ({len(data.val)} validation scenes), {cfg.size} px {_scale_words(scale, fit)}, width {cfg.width}, "
              f"batch {cfg.batch} on {rt.num_replicas} replica(s), {rt.precision}{', XLA' if trainer.xla else ''}, "
              f"steps {start + 1}..{sched.total} ({span}), evaluation every {sched.eval_every} steps", flush=True)
    t0 = time.perf_counter()
    run.loop = loop
    try:
        loop.run()
    finally:
        ckpt.close()
        best_ckpt.close()
    rows = log.rows() if rt.is_chief else run.rows
    if rt.is_chief:
        plot_log(rows, out / "losses.png", [Panel(module.metric_names[1:], "loss", log=True),
                                            Panel(("val_miou", "val_miou_all"), "validation mIoU")])
    return result(out, sched, best, rows, time.perf_counter() - t0)


def result(out: Path, sched: Schedule, best: dict, rows: list[dict], seconds: float) -> TrainResult:
    vals = [float(r["val_miou"]) for r in rows if r.get("val_miou") not in ("", None)]
    b = float(best["best_miou"].numpy())
    best_step = int(best["best_step"].numpy()) or None
    return TrainResult(out=out, epochs=int(np.ceil(sched.total / sched.steps_per_epoch)), steps=sched.total,
                       best_epoch=None if best_step is None else sched.epoch(best_step), best_step=best_step,
                       best_val_miou=None if b < 0 else b, final_val_miou=vals[-1] if vals else None,
                       last5_val_miou=float(np.mean(vals[-LAST_EVALS:])) if vals else None,
                       history=rows, seconds=seconds)


class _Run:
    """What happens at each evaluation: validate, keep the best, checkpoint, log, samples."""

    def __init__(self, cfg, sched, trainer, ckpt, best_ckpt, best, epoch, log, scalars, labeller, data, rt):
        self.cfg, self.sched, self.trainer, self.ckpt, self.best_ckpt = cfg, sched, trainer, ckpt, best_ckpt
        self.best, self.epoch, self.log, self.scalars, self.labeller = best, epoch, log, scalars, labeller
        self.data, self.rt = data, rt
        self.rows: list[dict] = []
        self.n_evals = 0
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.loop = None
        self.on_evaluation = None

    def evaluate_and_save(self, step: int, final: bool) -> None:
        cfg, sched = self.cfg, self.sched
        rate = self.loop.steps_per_second(step) if self.loop else 0.0
        losses = self.trainer.read_metrics()
        miou, miou_all, preds = evaluate(self.labeller, self.data.val)
        self.n_evals += 1
        self.epoch.assign(step // sched.steps_per_epoch)
        improved = miou is None or miou > float(self.best["best_miou"].numpy())
        if improved:
            self.best["best_miou"].assign(-1.0 if miou is None else miou)
            self.best["best_step"].assign(step)
        row = {"epoch": sched.epoch(step), "step": step, **{k: f"{v:.6f}" for k, v in losses.items()},
               "val_miou": "" if miou is None else f"{miou:.6f}",
               "val_miou_all": "" if miou_all is None else f"{miou_all:.6f}",
               "lr": f"{rate_at(cfg.lr_schedule, cfg.lr, sched.total, step):.6g}",
               "seconds": f"{time.perf_counter() - self.t0:.2f}", "cpu_seconds": f"{time.process_time() - self.c0:.2f}",
               "images_per_second": f"{rate * cfg.batch:.3f}"}
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        self.rows.append(row)
        # The row before the checkpoint: a run killed between the two resumes from the previous checkpoint and
        # drops the row (log.truncate_after), where the other order would lose this evaluation's row for good.
        self.log.append(row)
        # ckpt/ before best/: a run killed before best/ is written resumes at this very step (see reconcile_best).
        self.ckpt.save(step)
        if improved:
            self.best_ckpt.save(step)
        if not self.rt.is_chief:
            return
        self.scalars.write(step, {**{f"loss/{k}": v for k, v in losses.items()}, "val/miou_present": miou,
                                  "val/miou": miou_all, "speed/images_per_second": rate * cfg.batch})
        if cfg.sample_every and (self.n_evals % cfg.sample_every == 0 or final):
            self._samples(step, preds)
        if cfg.verbose:
            shown = "  ".join(f"{k} {v:.4f}" for k, v in losses.items() if k != "g_total")
            line = (f"step {step}/{sched.total} (epoch {sched.epoch(step)})  {shown}  val_mIoU "
                    f"{'n/a' if miou is None else f'{miou:.4f}'}{'  *best' if improved and miou is not None else ''}"
                    f"  ({row['images_per_second']} img/s)")
            self._show(line)
        if self.on_evaluation is not None:
            self._show(self.on_evaluation(step, sched.total, miou, improved and miou is not None))

    def _show(self, line: str) -> None:
        (self.loop.bar.write if self.loop and self.loop.bar else print)(line)

    def _samples(self, step: int, preds: list[np.ndarray]) -> None:
        reg, stats = self.labeller.registry, self.data.stats
        if self.data.val:
            scenes = self.data.val[:SAMPLE_SCENES]
            rows = [[to_display(s.photo, stats), reg.colorize(s.label), reg.colorize(p)] for s, p in zip(scenes, preds)]
        else:
            tr = self.data.train
            rows = [[to_display(tr.photos[i], stats), reg.colorize(tr.labels[i]),
                     reg.colorize(self.labeller(tr.photos[i], 1.0)[0])] for i in range(min(SAMPLE_SCENES, len(tr)))]
        write_image(Path(self.cfg.out) / "samples" / f"step_{step:07d}.png",
                    image_grid(rows, cell=192, nearest=[False, True, True]))


def train(cfg: TrainConfig, on_evaluation: Callable[[int, int, float | None, bool], str] | None = None
          ) -> TrainResult:
    """Resolve, validate and train: the entry point for other Python code."""
    cfg = resolve(cfg)
    validate(cfg)
    return run_train(cfg, on_evaluation)
