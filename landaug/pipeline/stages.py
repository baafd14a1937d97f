"""The stages of one run: stage 1, each (fold, seed)'s split, and per place (``places``) the generators, the
pseudo-labels and one pix2pix per arm, each labelling its test scenes whole.

Stage 1 prepares the data once; each (fold, seed) then draws its split (``<place>/split.json``, with the
nested subsets of its label budgets), through which every later stage of a place reads its inputs: both
GANs, the pseudo-labels, the mask-to-photo generator and every pix2pix arm learn from the same real
training scenes and nothing of validation or test, the band normalisation included (``bands.json``
beside each split, learned from its training scenes). Each arm's model then labels the place's test
scenes whole, at their own size: stage 1's test scenes, or with ``--folds`` the fold's scenes, which stage
1 kept among the whole scenes (``images_CGAN/scenes``). Each stage is a cell of the run's grid
(``cells``); a finished stage leaves a marker there that ``--resume`` skips.

Usage: ``run = Run(cfg)``; ``stage_data(run)``; ``stage_split(run, seed=0, fold=None)``;
``stage_cgan(run, Place(0), "baseline", "jitter", [])``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from ..config import load_config
from ..files import read_json, write_json
from ..grid import marker_path
from ..split import draw_folds, in_scenes, read_groups, read_split, write_split
from ..splitbands import save_split_band_stats
from .inputs import prepare_config
from .options import ARMS, PER_LAYOUT, PipelineConfig, cgan_config, gan_width, synth_config
from .places import FOLDS_FILE, Place, base_split, budget_split, numeric

GENERATED = {"gan": "predict_CGAN", "paired": "generated_paired", "masksynth": "generated_synth"}


class Run:
    """A run folder: its configuration, its places, and the markers of its finished stages."""

    def __init__(self, cfg: PipelineConfig):
        self.cfg = cfg
        self.root = cfg.out
        self.t0 = time.monotonic()
        self.records: dict[str, dict] = {}     # finished stages by cell name (summary.md)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def done(self, stage: str) -> dict | None:
        m = marker_path(self.root, stage)
        return read_json(m) if m.is_file() else None

    def forget(self, stage: str) -> None:
        """Mark a stage to be run again (its inputs changed)."""
        marker_path(self.root, stage).unlink(missing_ok=True)

    def line(self, what: str) -> str:
        elapsed = int(time.monotonic() - self.t0)
        return f"[pipeline {elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] {what}"

    def say(self, what: str) -> None:
        print(self.line(what), file=sys.stderr, flush=True)


def fresh(folder: Path) -> Path:
    """Outputs of a stage that is being (re)run from the start: an interrupted attempt is discarded."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder


def stage_data(run: Run) -> dict:
    """Stage 1; with ``--folds`` also the folds of the labelled scenes (``folds.json``), whole folders with
    ``--group-by folder``."""
    from ..prepare import run as prepare

    summary = prepare(prepare_config(run.cfg, fresh(run.data)))
    record = {k: summary[k] for k in ("train_images", "test_images", "train_scenes", "test_scenes", "scale", "fit")}
    if run.cfg.folds:
        folds = draw_folds(summary["train_scenes"], run.cfg.folds, run.cfg.seed,
                           read_groups(run.data / "images_CGAN", up=0))
        write_json(run.root / FOLDS_FILE, {"folds": folds, "seed": run.cfg.seed, "group_by": run.cfg.group_by})
        record["folds"] = [len(f) for f in folds]
    return record


def stage_split(run: Run, seed: int, fold: int | None = None) -> dict:
    """The split of a (fold, seed) (the test scenes fixed, validation drawn by the seed, whole groups with
    --group-by) and of each of its label budgets, each with the band normalisation of its training scenes
    beside it, which every later stage of the place uses."""
    cgan_data = run.data / "images_CGAN"
    data = load_config(cgan_data / "config.json")
    test = data["test_scenes"] if fold is None else read_json(run.root / FOLDS_FILE)["folds"][fold]
    split = base_split(run.cfg, data["train_scenes"], test, seed, fold, read_groups(cgan_data, up=0))
    base = Place(seed, fold)
    _write_split(run, base.split_path(run.root), split)
    for n in numeric(run.cfg.train_scenes):
        _write_split(run, Place(seed, fold, n).split_path(run.root), budget_split(split, n))
    return {"train": len(split["train"]), "val": split["val"], "test": len(split["test"])}


def _write_split(run: Run, path: Path, split: dict) -> None:
    from ..cgan.data import data_band_stats, list_pairs, train_folder

    cgan_data = run.data / "images_CGAN"
    write_split(path, split)
    pairs = list_pairs(train_folder(cgan_data))
    keep = set(in_scenes([stem for stem, _, _ in pairs], split["train"]))
    photos = [a for stem, a, _ in pairs if stem in keep]
    save_split_band_stats(path, photos, data_band_stats(cgan_data, photos[0]))


def test_photos(run: Run, place: Place) -> tuple[Path, list[str] | None]:
    """The photos a place's models label for the test: stage 1's test scenes, or the fold's whole scenes."""
    if run.cfg.folds:
        return run.data / "images_CGAN" / "scenes" / "a", read_split(place.split_path(run.root))["test"]
    return run.data / "images_CGAN" / "test" / "a", None


def stage_gan(run: Run, place: Place, paired: bool) -> dict:
    from .. import gan

    cfg = run.cfg
    sd = place.dir(run.root)
    model = sd / ("models_GAN_paired" if paired else "models_GAN")
    every = max(1, cfg.gan_steps // 4)
    tc = gan.TrainConfig(images=None if paired else run.data / "images", out=model, split=place.split_path(run.root),
                         with_labels=(run.data / "images_CGAN" / "train") if paired else None,
                         size=cfg.size, width=gan_width(cfg), steps=cfg.gan_steps, batch=cfg.gan_batch,
                         diffaugment=cfg.diffaugment, seed=place.seed, sample_every=every, checkpoint_every=every,
                         score_every=every, precision=cfg.precision, xla=cfg.xla,
                         resume=(model / "checkpoints" / "checkpoint").is_file(), progress=cfg.progress)
    result = gan.train(tc) or {}
    out = fresh(sd / ("generated_paired" if paired else "generated_images"))
    gan.generate(gan.GenerateConfig(model=model, n=cfg.n_generated, out=out, seed=place.seed, progress=cfg.progress))
    return {"model": str(model), "generated": str(out), **json.loads(json.dumps(result, default=str))}


def stage_label(run: Run, place: Place) -> dict:
    from .. import cgan

    sd = place.dir(run.root)
    out = fresh(sd / GENERATED["gan"])
    res = cgan.label(sd / "baseline" / "models_CGAN", sd / "generated_images", out,
                     min_confidence=run.cfg.min_confidence, overlap=run.cfg.overlap, progress=run.cfg.progress)
    return {"labelled": str(out), "written": res.written, "dropped": res.dropped}


def synthetic_pairs(run: Run, place: Place, arm: str) -> list[Path]:
    """The synthetic pairs an arm adds to the real ones: its generator's, made in the same place."""
    kind = ARMS[arm.removesuffix("-color-probe").removesuffix("-plain-probe")].synthetic
    return [place.dir(run.root) / GENERATED[kind]] if kind else []


def stage_cgan(run: Run, place: Place, arm: str, augment: str, extra: list[Path]) -> dict:
    from .. import cgan

    cfg = run.cfg
    model = place.dir(run.root) / arm / "models_CGAN"
    tc = cgan_config(cfg, arm.removesuffix("-color-probe").removesuffix("-plain-probe"), model, extra,
                     place.split_path(run.root), place.seed, augment, data=run.data / "images_CGAN")
    tc.resume = cgan.has_checkpoint(model)

    def progress_line(step: int, total: int, miou: float | None, best: bool) -> str:
        score = "n/a" if miou is None else f"{miou:.3f}"
        return run.line(f"{place.tag(cfg)} · arm {arm}: step {step}/{total}, validation mIoU "
                        f"{score}{' (best so far)' if best else ''}")

    result = cgan.train(tc, progress_line)
    pred = fresh(place.dir(run.root) / arm / "Pred_test")
    photos, stems = test_photos(run, place)
    cgan.predict(model, photos, pred, checkpoint="best", overlap=cfg.overlap, progress=cfg.progress, stems=stems)
    stored = load_config(model / "config.json")
    return {"model": str(model), "predictions": str(pred), "augment": augment, "steps": result.steps,
            "train_pairs": stored.get("train_pairs"),
            "synthetic_share_realised": stored.get("synthetic_share_realised"),
            "best_val_miou": result.best_val_miou, "best_step": result.best_step,
            "last5_val_miou": result.last5_val_miou, "train_seconds": round(result.seconds, 1)}


def stage_synth(run: Run, place: Place) -> dict:
    from .. import synth

    cfg = run.cfg
    sd = place.dir(run.root)
    model = sd / "models_synth"
    synth.train(synth_config(cfg, run.data / "images_CGAN", model, place.split_path(run.root), place.seed))
    out = fresh(sd / GENERATED["masksynth"])
    written = synth.generate(synth.GenerateConfig(model=model, out=out, n_layouts=-(-cfg.n_generated // PER_LAYOUT),
                                                  per_layout=PER_LAYOUT, rare_boost=cfg.rare_boost, seed=place.seed,
                                                  progress=cfg.progress))
    return {"model": str(model), "generated": str(out), "written": len(written)}


def probes(arm: str) -> tuple[str, str]:
    """The two probe trainings of ``--classic-color auto``: with and without the colour jitter."""
    return f"{arm}-color-probe", f"{arm}-plain-probe"


def chosen_augment(run: Run, place: Place, arm: str) -> str:
    """An arm's augmentations; ``--classic-color auto`` keeps the colour jitter of the classic arms only if
    its probe reached a higher validation mIoU than the probe without it (their markers say)."""
    base = ARMS[arm].augment
    if "dihedral" not in base or run.cfg.classic_color == "off":
        return base
    if run.cfg.classic_color == "on":
        return base + ",color"
    colour, plain = (run.done(f"{place.name}/{p}") or {} for p in probes(arm))
    return base + ",color" if (colour.get("best_val_miou") or 0) > (plain.get("best_val_miou") or 0) else base
