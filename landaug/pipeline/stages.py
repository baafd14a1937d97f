"""The stages of one run, each skipped when a finished marker says it is done (``--resume``).

Stage 1 prepares the data once; each seed then draws its split (``seed<S>/split.json``), through which
every later stage of that seed reads its inputs: both GANs, the pseudo-labels, the mask-to-photo
generator and every pix2pix arm learn from the same real training scenes and nothing of validation or
test, the band normalisation included (``seed<S>/bands.json``, learned from the training scenes). Each arm's model then labels the test scenes whole, at their own size.

Usage: ``run = Run(cfg)``; ``run.stage("data", "stage 1", lambda: stage_data(run))``; ``run_seed(run, 0, 0)``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

from ..config import load_config
from ..files import write_json
from ..split import draw_split, in_scenes, read_groups, write_split
from ..splitbands import save_split_band_stats
from .inputs import prepare_config
from .options import PER_LAYOUT, ARMS, REFERENCES, PipelineConfig, cgan_config, gan_width, synth_config, synthetic_kinds

STAGES_DIR = ".stages"


class Run:
    """A run folder: stage markers make a restarted pipeline skip what already finished."""

    def __init__(self, cfg: PipelineConfig):
        self.cfg = cfg
        self.root = cfg.out
        self.t0 = time.monotonic()
        self.records: dict[str, dict] = {}

    @property
    def data(self) -> Path:
        return self.root / "data"

    def seed_dir(self, seed: int) -> Path:
        return self.root / f"seed{seed}"

    def _marker(self, stage: str) -> Path:
        return self.root / STAGES_DIR / f"{stage.replace('/', '__')}.json"

    def done(self, stage: str) -> dict | None:
        m = self._marker(stage)
        return json.loads(m.read_text()) if m.is_file() else None

    def forget(self, stage: str) -> None:
        """Mark a stage to be run again (its inputs changed)."""
        self._marker(stage).unlink(missing_ok=True)

    def line(self, what: str) -> str:
        elapsed = int(time.monotonic() - self.t0)
        return f"[pipeline {elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] {what}"

    def say(self, what: str) -> None:
        print(self.line(what), file=sys.stderr, flush=True)

    def stage(self, stage: str, label: str, fn: Callable[[], dict | None]) -> dict:
        """Run ``fn`` once: a stage with a marker is skipped; a marker is written only on success."""
        record = self.done(stage)
        if record is not None:
            self.say(f"{label}: done earlier, skipped")
        else:
            self.say(label)
            t = time.monotonic()
            result = fn() or {}
            record = {"stage": stage, "seconds": round(time.monotonic() - t, 1), **result}
            write_json(self._marker(stage), record)
        self.records[stage] = record
        return record


def fresh(folder: Path) -> Path:
    """Outputs of a stage that is being (re)run from the start: an interrupted attempt is discarded."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder


def stage_data(run: Run) -> dict:
    from ..prepare import run as prepare

    summary = prepare(prepare_config(run.cfg, fresh(run.data)))
    return {k: summary[k] for k in ("train_images", "test_images", "train_scenes", "test_scenes", "scale", "fit")}


def stage_split(run: Run, seed: int) -> dict:
    """This seed's split of the prepared scenes (the test scenes fixed, validation drawn by the seed, whole
    groups with --group-by) and the band normalisation of its training scenes beside it, which every later
    stage of the seed uses."""
    from ..cgan.data import data_band_stats, list_pairs, train_folder

    cgan_data = run.data / "images_CGAN"
    data = load_config(cgan_data / "config.json")
    split = draw_split(data["train_scenes"], data["test_scenes"], run.cfg.val_fraction, seed,
                       read_groups(cgan_data, up=0))
    write_split(split_path(run, seed), split)
    pairs = list_pairs(train_folder(cgan_data))
    keep = set(in_scenes([stem for stem, _, _ in pairs], split["train"]))
    photos = [a for stem, a, _ in pairs if stem in keep]
    save_split_band_stats(split_path(run, seed), photos, data_band_stats(cgan_data, photos[0]))
    return {"train": len(split["train"]), "val": split["val"], "test": len(split["test"])}


def split_path(run: Run, seed: int) -> Path:
    return run.seed_dir(seed) / "split.json"


def stage_gan(run: Run, seed: int, paired: bool) -> dict:
    from .. import gan

    cfg = run.cfg
    sd = run.seed_dir(seed)
    model = sd / ("models_GAN_paired" if paired else "models_GAN")
    every = max(1, cfg.gan_steps // 4)
    tc = gan.TrainConfig(images=None if paired else run.data / "images", out=model, split=split_path(run, seed),
                         with_labels=(run.data / "images_CGAN" / "train") if paired else None,
                         size=cfg.size, width=gan_width(cfg), steps=cfg.gan_steps, batch=cfg.gan_batch,
                         diffaugment=cfg.diffaugment, seed=seed, sample_every=every, checkpoint_every=every,
                         score_every=every, precision=cfg.precision, xla=cfg.xla,
                         resume=(model / "checkpoints" / "checkpoint").is_file(), progress=cfg.progress)
    result = gan.train(tc) or {}
    out = fresh(sd / ("generated_paired" if paired else "generated_images"))
    gan.generate(gan.GenerateConfig(model=model, n=cfg.n_generated, out=out, seed=seed, progress=cfg.progress))
    return {"model": str(model), "generated": str(out), **json.loads(json.dumps(result, default=str))}


def stage_label(run: Run, seed: int) -> dict:
    from .. import cgan

    sd = run.seed_dir(seed)
    out = fresh(sd / "predict_CGAN")
    res = cgan.label(sd / "baseline" / "models_CGAN", sd / "generated_images", out,
                     min_confidence=run.cfg.min_confidence, overlap=run.cfg.overlap, progress=run.cfg.progress)
    return {"labelled": str(out), "written": res.written, "dropped": res.dropped}


def stage_cgan(run: Run, seed: int, arm: str, augment: str, extra: list[Path]) -> dict:
    from .. import cgan

    cfg = run.cfg
    model = run.seed_dir(seed) / arm / "models_CGAN"
    tc = cgan_config(cfg, arm.removesuffix("-color-probe").removesuffix("-plain-probe"), model, extra,
                     split_path(run, seed), seed, augment, data=run.data / "images_CGAN")
    tc.resume = cgan.has_checkpoint(model)

    def progress_line(step: int, total: int, miou: float | None, best: bool) -> str:
        score = "n/a" if miou is None else f"{miou:.3f}"
        return run.line(f"seed {seed - cfg.seed + 1}/{cfg.seeds} · arm {arm}: step {step}/{total}, validation mIoU "
                        f"{score}{' (best so far)' if best else ''}")

    result = cgan.train(tc, progress_line)
    pred = fresh(run.seed_dir(seed) / arm / "Pred_test")
    cgan.predict(model, run.data / "images_CGAN" / "test" / "a", pred, checkpoint="best", overlap=cfg.overlap,
                 progress=cfg.progress)
    stored = load_config(model / "config.json")
    return {"model": str(model), "predictions": str(pred), "augment": augment, "steps": result.steps,
            "train_pairs": stored.get("train_pairs"),
            "synthetic_share_realised": stored.get("synthetic_share_realised"),
            "best_val_miou": result.best_val_miou, "best_step": result.best_step,
            "last5_val_miou": result.last5_val_miou, "train_seconds": round(result.seconds, 1)}


def stage_synth(run: Run, seed: int) -> dict:
    from .. import synth

    cfg = run.cfg
    sd = run.seed_dir(seed)
    model = sd / "models_synth"
    synth.train(synth_config(cfg, run.data / "images_CGAN", model, split_path(run, seed), seed))
    out = fresh(sd / "generated_synth")
    written = synth.generate(synth.GenerateConfig(model=model, out=out, n_layouts=-(-cfg.n_generated // PER_LAYOUT),
                                                  per_layout=PER_LAYOUT, rare_boost=cfg.rare_boost, seed=seed,
                                                  progress=cfg.progress))
    return {"model": str(model), "generated": str(out), "written": len(written)}


def _classic_augment(run: Run, seed: int, tag: str, arm: str, extra: list[Path]) -> str:
    """``--classic-color auto``: keep the colour jitter only if it raises the validation mIoU."""
    base = ARMS[arm].augment
    if run.cfg.classic_color == "on":
        return base + ",color"
    probe = f"{arm}-color-probe"
    rec = run.stage(f"seed{seed}/{probe}", f"{tag} · arm {arm}: probe colour jitter on validation",
                    lambda: stage_cgan(run, seed, probe, base + ",color", extra))
    plain = run.stage(f"seed{seed}/{arm}-plain-probe", f"{tag} · arm {arm}: probe without colour jitter",
                      lambda: stage_cgan(run, seed, f"{arm}-plain-probe", base, extra))
    better = (rec.get("best_val_miou") or 0) > (plain.get("best_val_miou") or 0)
    return base + ",color" if better else base


def run_seed(run: Run, seed: int, index: int) -> dict[str, str]:
    """All stages of one seed; returns each arm's prediction folder."""
    cfg = run.cfg
    tag = f"seed {index + 1}/{cfg.seeds}"
    sd = run.seed_dir(seed)
    run.stage(f"seed{seed}/split", f"{tag} · draw the split (train / validation / test scenes)",
              lambda: stage_split(run, seed))
    kinds = synthetic_kinds(cfg)
    extra: dict[str | None, list[Path]] = {None: []}
    if "gan" in kinds:
        run.stage(f"seed{seed}/dcgan", f"{tag} · DCGAN: train and generate", lambda: stage_gan(run, seed, False))
    if "paired" in kinds:
        run.stage(f"seed{seed}/paired_gan", f"{tag} · paired GAN: train and generate",
                  lambda: stage_gan(run, seed, True))
        extra["paired"] = [sd / "generated_paired"]
    if "masksynth" in kinds:
        run.stage(f"seed{seed}/masksynth_generator", f"{tag} · mask-to-photo generator: train and render layouts",
                  lambda: stage_synth(run, seed))
        extra["masksynth"] = [sd / "generated_synth"]
    needs_baseline = "baseline" in cfg.arms or "gan" in kinds
    preds: dict[str, str] = {}
    order = (["baseline"] if needs_baseline else []) + [a for a in cfg.arms if a != "baseline"]
    order.sort(key=lambda a: a not in REFERENCES)
    for arm in order:
        syn = ARMS[arm].synthetic
        if syn == "gan" and "gan" not in extra:
            run.stage(f"seed{seed}/label", f"{tag} · pseudo-label the DCGAN scenes with the baseline",
                      lambda: stage_label(run, seed))
            extra["gan"] = [sd / "predict_CGAN"]
        augment = ARMS[arm].augment
        if "dihedral" in augment and cfg.classic_color != "off":
            augment = _classic_augment(run, seed, tag, arm, extra[syn])
        rec = run.stage(f"seed{seed}/{arm}", f"{tag} · arm {arm}: pix2pix train and predict",
                        lambda a=arm, aug=augment, ex=extra[syn]: stage_cgan(run, seed, a, aug, ex))
        if arm in cfg.arms:
            preds[arm] = rec["predictions"]
    return preds


def stage_eval(run: Run, preds: dict[str, list[str]]) -> dict:
    from ..classes import load_registry
    from ..evaluate import evaluate_sets

    cfg = run.cfg
    out = fresh(run.root / "eval_report")
    refs = [r for r in REFERENCES if r in preds] or [next(iter(preds))]
    report = evaluate_sets(run.data / "images_CGAN" / "test" / "b", preds,
                           load_registry(run.data / "images_CGAN" / "classes.json"), out=out,
                           images_dir=run.data / "images_CGAN" / "test" / "a", references=refs,
                           progress=cfg.progress)
    return {"report": str(out / "report.json"), "sets": list(report["sets"])}
