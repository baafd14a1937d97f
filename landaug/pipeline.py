"""The whole experiment in one command: stage 1, the GANs, one pix2pix labeller per arm and seed, and
the evaluation that compares the arms on the same test scenes.

Arms (``--arms``): ``baseline`` (pix2pix jitter only, the paper's "before"), ``classic`` (plus the eight
flips/rotations), ``gan`` (the paper's "after": DCGAN scenes pseudo-labelled by the baseline),
``paired`` (scenes synthesised with their labels), ``classic+gan`` and ``classic+paired``.

Usage: ``python pipeline.py --demo`` or ``python pipeline.py --sparcs DIR --test-list FILE --preset cpu --seeds 3``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
import platform
import shlex
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .classes import load_registry
from .config import save_config
from .errors import UserError
from .files import atomic_write_text, write_json
ARMS = {
    # name: (pix2pix augmentations, synthetic scenes added)
    "baseline": ("jitter", None),
    "classic": ("jitter,dihedral", None),
    "gan": ("jitter", "gan"),
    "paired": ("jitter", "paired"),
    "classic+gan": ("jitter,dihedral", "gan"),
    "classic+paired": ("jitter,dihedral", "paired"),
}
DEFAULT_ARMS = ("baseline", "classic", "gan", "paired")

# Sizes, widths, steps and epochs; every one can be overridden on the command line.
PRESETS = {
    # Synthetic scenes at 64 px: the four arms in a few minutes on a 2-core CPU; 520 pix2pix steps are
    # 40 epochs of the arms with 60 synthetic scenes.
    "demo": dict(demo_scenes=60, size=64, cgan_width=0.5, cgan_epochs=40, cgan_batch=8, cgan_steps=520, gan_width=0.25,
                 gan_steps=1200, gan_batch=16, n_generated=60, classic_color="off", precision="auto"),
    # Sized for four arms x 3 seeds on the 72 SPARCS scenes on a 2-core CPU: half resolution, half
    # pix2pix width, a short GAN schedule (the GAN's cost hardly depends on its width, so it keeps the
    # paper's). Every arm gets the same pix2pix steps: with equal epochs the 58-scene baseline would
    # train for a fifth of the steps of an arm with 200 synthetic scenes, and stop far from converged.
    "cpu": dict(demo_scenes=100, size=128, cgan_width=0.5, cgan_epochs=40, cgan_batch=8, cgan_steps=1280, gan_width=1.0,
                gan_steps=1500, gan_batch=16, n_generated=200, classic_color="off", precision="auto"),
    # The paper's scale: 256 px, full width, 57 pix2pix epochs, 200 synthetic scenes; for a GPU.
    "paper": dict(demo_scenes=100, size=256, cgan_width=1.0, cgan_epochs=57, cgan_batch=1, cgan_steps=0, gan_width=1.0,
                  gan_steps=20000, gan_batch=16, n_generated=200, classic_color="auto", precision="auto"),
}
TUNABLE = tuple(PRESETS["demo"])
STAGES_DIR = ".stages"


@dataclass
class PipelineConfig:
    demo: bool = False
    sparcs: Path | None = None
    images: Path | None = None
    masks: Path | None = None
    classes: Path | None = None
    test_list: Path | None = None
    test_fraction: float = 0.1
    data_mode: str = "resize"
    out: Path | None = None
    arms: tuple[str, ...] = DEFAULT_ARMS
    seeds: int = 1
    seed: int = 0
    preset: str = "demo"
    demo_scenes: int = 60
    size: int = 64
    cgan_width: float = 0.5
    cgan_epochs: int = 40
    cgan_batch: int = 8
    cgan_steps: int = 0
    gan_width: float = 0.25
    gan_steps: int = 1200
    gan_batch: int = 16
    n_generated: int = 60
    classic_color: str = "off"
    diffaugment: str = ""
    val_fraction: float = 0.1
    min_confidence: float | None = None
    precision: str = "auto"
    xla: bool = False
    resume: bool = False
    progress: bool = True
    command: str = ""


def source_name(cfg: PipelineConfig) -> str:
    return "demo" if cfg.demo else ("sparcs" if cfg.sparcs is not None else "data")


def default_out(cfg: PipelineConfig) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path("runs") / f"{source_name(cfg)}-{cfg.preset}-{stamp}"
    n = 1
    while out.exists():
        n += 1
        out = Path("runs") / f"{source_name(cfg)}-{cfg.preset}-{stamp}-{n}"
    return out


def validate(cfg: PipelineConfig) -> None:
    if sum([cfg.demo, cfg.sparcs is not None, cfg.images is not None]) != 1:
        raise UserError("give exactly one input: --demo, --sparcs DIR, or --images DIR --masks DIR")
    if cfg.images is not None and cfg.masks is None:
        raise UserError("--images needs --masks: the pipeline trains on labelled pairs")
    bad = [a for a in cfg.arms if a not in ARMS]
    if bad or not cfg.arms:
        raise UserError(f"--arms {','.join(bad) or '(empty)'} is unknown: choose from {', '.join(ARMS)}")
    if len(set(cfg.arms)) != len(cfg.arms):
        raise UserError(f"--arms names an arm twice: {','.join(cfg.arms)}")
    for name, value, low in (("--seeds", cfg.seeds, 1), ("--demo-scenes", cfg.demo_scenes, 2),
                             ("--cgan-epochs", cfg.cgan_epochs, 1), ("--cgan-batch", cfg.cgan_batch, 1),
                             ("--gan-steps", cfg.gan_steps, 1), ("--gan-batch", cfg.gan_batch, 1),
                             ("--n-generated", cfg.n_generated, 1), ("--cgan-steps", cfg.cgan_steps, 0)):
        if value < low:
            raise UserError(f"{name} must be at least {low}, got {value}")
    if cfg.size < 16 or cfg.size & (cfg.size - 1):
        raise UserError(f"--size must be a power of two >= 16, got {cfg.size}")
    if cfg.cgan_width <= 0 or cfg.gan_width <= 0:
        raise UserError("--cgan-width and --gan-width must be positive")
    if cfg.classic_color not in ("off", "on", "auto"):
        raise UserError(f"--classic-color must be off, on or auto, got {cfg.classic_color!r}")
    if cfg.data_mode not in ("resize", "tile"):
        raise UserError(f"--data-mode must be resize or tile, got {cfg.data_mode!r}")
    for path, what in ((cfg.sparcs, "SPARCS folder"), (cfg.images, "image folder"), (cfg.masks, "mask folder")):
        if path is not None and not path.is_dir():
            raise UserError(path, f"{what} does not exist")
    if cfg.test_list is not None and not cfg.test_list.is_file():
        raise UserError(cfg.test_list, "test list not found (one scene name a line)")
    if cfg.classes is not None:
        load_registry(cfg.classes)
    from .runtime import validate_runtime_options

    validate_runtime_options(cfg.precision, "default", 0)


# --- the run folder ---------------------------------------------------------------------------------

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

    def say(self, what: str) -> None:
        elapsed = int(time.monotonic() - self.t0)
        print(f"[pipeline {elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}] {what}",
              file=sys.stderr, flush=True)

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


def _fresh(folder: Path) -> Path:
    """Outputs of a stage that is being (re)run from the start: an interrupted attempt is discarded."""
    if folder.exists():
        shutil.rmtree(folder)
    return folder


# --- stages -----------------------------------------------------------------------------------------

def stage_data(run: Run) -> dict:
    from .prepare import PrepareConfig
    from .prepare import run as prepare

    cfg = run.cfg
    pc = PrepareConfig(sparcs=cfg.sparcs, images=cfg.images, masks=cfg.masks,
                       demo=cfg.demo_scenes if cfg.demo else 0, classes=cfg.classes, test_list=cfg.test_list,
                       test_fraction=cfg.test_fraction, seed=cfg.seed, size=cfg.size, mode=cfg.data_mode,
                       out=_fresh(run.data), progress=cfg.progress)
    summary = prepare(pc)
    if not summary["test_scenes"]:
        raise UserError(cfg.test_list or cfg.sparcs or cfg.images, "no test scene in the input: the arms "
                        "cannot be compared (pass --test-list FILE naming scenes that are in the input)")
    return {k: summary[k] for k in ("train_images", "test_images", "test_scenes")}


def stage_gan(run: Run, seed: int, paired: bool) -> dict:
    from . import gan

    cfg = run.cfg
    sd = run.seed_dir(seed)
    model = sd / ("models_GAN_paired" if paired else "models_GAN")
    tc = gan.TrainConfig(images=None if paired else run.data / "images", out=model,
                         with_labels=(run.data / "images_CGAN" / "train") if paired else None,
                         size=cfg.size, width=max(1, round(cfg.gan_width * _gan_paper_width())),
                         steps=cfg.gan_steps, batch=cfg.gan_batch, diffaugment=cfg.diffaugment, seed=seed,
                         sample_every=max(1, cfg.gan_steps // 4), checkpoint_every=max(1, cfg.gan_steps // 4),
                         score_every=max(1, cfg.gan_steps // 4), precision=cfg.precision, xla=cfg.xla,
                         resume=gan._has_checkpoint(model), progress=cfg.progress)
    result = gan.train(tc) or {}
    out = _fresh(sd / ("generated_paired" if paired else "generated_images"))
    gan.generate(gan.GenerateConfig(model=model, n=cfg.n_generated, out=out, seed=seed, progress=cfg.progress))
    return {"model": str(model), "generated": str(out), **_jsonable(result)}


def cgan_schedule(run: Run, seed: int, extra: list[Path]) -> dict:
    """Training pairs, epochs and optimizer steps of one arm's pix2pix.

    With ``--cgan-steps 0`` every arm trains ``--cgan-epochs`` epochs, as the paper does, so an arm with
    synthetic scenes also makes more optimizer steps; ``--cgan-steps N`` gives every arm the same N steps
    (rounded up to whole epochs), which separates the effect of the added data from that of longer training."""
    from .imgio import list_images
    from .segdata import split_by_scene

    cfg = run.cfg
    stems = [p.stem for p in list_images(run.data / "images_CGAN" / "train" / "a", "training photo folder")]
    train_idx, _ = split_by_scene(stems, cfg.val_fraction, seed)
    pairs = len(train_idx) + sum(len(list_images(Path(e) / "a", "photo folder")) for e in extra
                                 if (Path(e) / "a").is_dir())
    per_epoch = max(1, pairs // cfg.cgan_batch)
    epochs = -(-cfg.cgan_steps // per_epoch) if cfg.cgan_steps else cfg.cgan_epochs
    return {"train_pairs": pairs, "epochs": epochs, "steps": epochs * per_epoch}


def stage_cgan(run: Run, seed: int, arm: str, augment: str, extra: list[Path]) -> dict:
    from . import cgan

    cfg = run.cfg
    model = run.seed_dir(seed) / arm / "models_CGAN"
    schedule = cgan_schedule(run, seed, extra)
    tc = cgan.TrainConfig(data=run.data / "images_CGAN", out=model, extra=list(extra), epochs=schedule["epochs"],
                          batch=cfg.cgan_batch, size=cfg.size, width=cfg.cgan_width, augment=augment,
                          val_fraction=cfg.val_fraction, seed=seed, precision=cfg.precision, xla=cfg.xla,
                          resume=cgan.has_checkpoint(model), progress=cfg.progress, verbose=False)
    result = cgan.train(tc)
    pred = _fresh(run.seed_dir(seed) / arm / "Pred_test")
    cgan.predict(model, run.data / "images_CGAN" / "test" / "a", pred, checkpoint="best", progress=cfg.progress)
    return {"model": str(model), "predictions": str(pred), "augment": augment, **schedule,
            "best_val_miou": result.best_val_miou, "best_epoch": result.best_epoch,
            "train_seconds": round(result.seconds, 1)}


def stage_label(run: Run, seed: int) -> dict:
    from . import cgan

    sd = run.seed_dir(seed)
    out = _fresh(sd / "predict_CGAN")
    res = cgan.label(sd / "baseline" / "models_CGAN", sd / "generated_images", out,
                     min_confidence=run.cfg.min_confidence, progress=run.cfg.progress)
    return {"labelled": str(out), "written": res.written, "dropped": res.dropped}


def _gan_paper_width() -> int:
    from .dcgan import PAPER_WIDTH

    return PAPER_WIDTH


def _jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def run_seed(run: Run, seed: int, index: int) -> dict[str, str]:
    """All stages of one seed; returns each arm's prediction folder."""
    cfg = run.cfg
    tag = f"seed {index + 1}/{cfg.seeds}"
    sd = run.seed_dir(seed)
    synthetic = {ARMS[a][1] for a in cfg.arms}
    extra_dirs: dict[str | None, list[Path]] = {None: []}
    if "gan" in synthetic:
        run.stage(f"seed{seed}/dcgan", f"{tag} · DCGAN: train and generate", lambda: stage_gan(run, seed, False))
    if "paired" in synthetic:
        run.stage(f"seed{seed}/paired_gan", f"{tag} · paired GAN: train and generate",
                  lambda: stage_gan(run, seed, True))
        extra_dirs["paired"] = [sd / "generated_paired"]
    needs_baseline = "baseline" in cfg.arms or "gan" in synthetic
    preds: dict[str, str] = {}
    order = (["baseline"] if needs_baseline else []) + [a for a in cfg.arms if a != "baseline"]
    for arm in order:
        augment, syn = ARMS[arm]
        if syn == "gan" and "gan" not in extra_dirs:
            run.stage(f"seed{seed}/label", f"{tag} · pseudo-label the DCGAN scenes with the baseline",
                      lambda: stage_label(run, seed))
            extra_dirs["gan"] = [sd / "predict_CGAN"]
        if augment != "jitter" and cfg.classic_color != "off":
            augment = _classic_augment(run, seed, tag, arm, extra_dirs[syn])
        rec = run.stage(f"seed{seed}/{arm}", f"{tag} · arm {arm}: pix2pix train and predict",
                        lambda a=arm, aug=augment, ex=extra_dirs[syn]: stage_cgan(run, seed, a, aug, ex))
        if arm in cfg.arms:
            preds[arm] = rec["predictions"]
    return preds


def _classic_augment(run: Run, seed: int, tag: str, arm: str, extra: list[Path]) -> str:
    """``--classic-color auto``: keep the colour jitter only if it raises the validation mIoU."""
    base = "jitter,dihedral"
    if run.cfg.classic_color == "on":
        return base + ",color"
    probe = f"{arm}-color-probe"
    rec = run.stage(f"seed{seed}/{probe}", f"{tag} · arm {arm}: probe colour jitter on validation",
                    lambda: stage_cgan(run, seed, probe, base + ",color", extra))
    plain = run.stage(f"seed{seed}/{arm}-plain-probe", f"{tag} · arm {arm}: probe without colour jitter",
                      lambda: stage_cgan(run, seed, f"{arm}-plain-probe", base, extra))
    better = (rec.get("best_val_miou") or 0) > (plain.get("best_val_miou") or 0)
    return base + ",color" if better else base


# --- report -----------------------------------------------------------------------------------------

def stage_eval(run: Run, preds: dict[str, list[str]]) -> dict:
    from .evaluate import evaluate_sets

    cfg = run.cfg
    out = _fresh(run.root / "eval_report")
    report = evaluate_sets(run.data / "images_CGAN" / "test" / "b", preds,
                           load_registry(run.data / "images_CGAN" / "classes.json"), out=out,
                           images_dir=run.data / "images_CGAN" / "test" / "a", progress=cfg.progress)
    return {"report": str(out / "report.json"), "sets": list(report["sets"])}


def machine_description() -> str:
    from .runtime import cpu_features, cpu_model_name

    cpu = ", ".join([cpu_model_name(), *cpu_features()])
    try:
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:  # the summary must not fail for want of a device list
        gpus = []
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} logical CPUs ({cpu}), "
            f"{'GPUs: ' + ', '.join(gpus) if gpus else 'no GPU'}, Python {platform.python_version()}")


def write_summary(run: Run, wall: float) -> Path:
    cfg = run.cfg
    report = json.loads((run.root / "eval_report" / "report.json").read_text())
    sets, comps = report["sets"], report.get("comparisons", {})
    names = [c["name"] for c in report["classes"]]
    lines = [f"# Run `{run.root.name}`", "",
             f"Input: {source_name(cfg)}; preset `{cfg.preset}`; arms {', '.join(cfg.arms)}; "
             f"{cfg.seeds} seed(s); {run.records.get('data', {}).get('train_images', '?')} training and "
             f"{run.records.get('data', {}).get('test_images', '?')} test images of {cfg.size} px.", "",
             "Reproduce:", "", "```bash", cfg.command, "```", "",
             f"Machine: {machine_description()}. Wall time of this invocation: {wall / 60:.1f} min; "
             f"of all its stages, over every invocation (`--resume` included): "
             f"{sum(r.get('seconds', 0) for r in run.records.values()) / 60:.1f} min.", "",
             "## Test mIoU by arm", "",
             "Model selection (the `best` checkpoint) used the validation split held out of the training "
             "scenes; the test scenes were used only here. Mean ± std over seeds; the interval is the paired "
             "bootstrap over test images of the difference against `baseline`. pix2pix steps: the optimizer "
             "steps of one seed's training (" + ("the same for every arm, `--cgan-steps`" if cfg.cgan_steps else
             f"{cfg.cgan_epochs} epochs each, so arms with synthetic scenes train longer; `--cgan-steps N` "
             "equalises them") + ").", "",
             "mIoU (truth classes) leaves out classes that no test pixel has; plain mIoU counts them as 0 "
             "whenever an arm predicts a few pixels of them.", "",
             "| arm | test mIoU | OA | Δ mIoU vs baseline | 95% CI | mIoU (truth classes) | Δ | 95% CI | "
             "validation mIoU | pix2pix steps |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for arm in sets:
        s = sets[arm]
        comp = next((c for k, c in comps.items() if k.startswith(f"{arm} vs ")), None)
        recs = [run.records.get(f"seed{cfg.seed + i}/{arm}", {}) for i in range(cfg.seeds)]
        vals = [r["best_val_miou"] for r in recs if r.get("best_val_miou") is not None]
        val = f"{sum(vals) / len(vals):.3f}" if vals else "n/a"
        steps = sorted(r["steps"] for r in recs if "steps" in r)
        steps = "–".join(str(v) for v in dict.fromkeys([steps[0], steps[-1]])) if steps else "n/a"
        lines.append(f"| {arm} | {_pm(s['mean_iou'], s.get('mean_iou_std'))} | {_pm(s['overall_accuracy'], s.get('overall_accuracy_std'))} | "
                     f"{_signed(comp['mean_iou_delta']) if comp else '—'} | {_ci(comp.get('mean_iou_delta_ci95')) if comp else '—'} | "
                     f"{_pm(s.get('mean_iou_present'), s.get('mean_iou_present_std'))} | "
                     f"{_signed(comp.get('mean_iou_present_delta')) if comp else '—'} | "
                     f"{_ci(comp.get('mean_iou_present_delta_ci95')) if comp else '—'} | {val} | {steps} |")
    first = next(iter(sets.values()))
    lines += ["", "## Per-class IoU (test)", "",
              "Mean ± std over seeds; test pixels is the class's share of the test scenes' pixels (a class "
              "with none has no IoU unless some arm predicts it, and then 0).", "",
              "| class | test pixels | " + " | ".join(sets) + " |", "|---|---|" + "---|" * len(sets)]
    total = max(1, sum(first["per_class"][n]["support"] for n in names))
    for name in names:
        share = first["per_class"][name]["support"] / total
        lines.append(f"| {name} | {100 * share:.2f} % | " + " | ".join(
            _pm(sets[a]["per_class"][name]["iou"], sets[a]["per_class"][name].get("iou_std") if cfg.seeds > 1 else None)
            for a in sets) + " |")
    lines += ["", "## Figures", "", "![per-class IoU](eval_report/per_class_iou.png)", "",
              "![test scenes](eval_report/scenes.png)", "",
              "The full report, with per-image results and confusion matrices: [eval_report/report.md](eval_report/report.md).",
              "", "## Stages", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {k} | {v.get('seconds', '')} |" for k, v in run.records.items()]
    path = run.root / "summary.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def _fmt(v, digits=3):
    return "n/a" if v is None else f"{v:.{digits}f}"


def _pm(v, std):
    return _fmt(v) if v is None or std is None else f"{_fmt(v)} ± {_fmt(std)}"


def _signed(v):
    return "n/a" if v is None else f"{v:+.3f}"


def _ci(ci):
    return "n/a" if not ci or ci[0] is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def run(cfg: PipelineConfig) -> Path:
    """Run (or continue) the experiment; returns the path of ``summary.md``."""
    validate(cfg)
    t0 = time.monotonic()
    cfg.out.mkdir(parents=True, exist_ok=True)
    save_config(cfg.out / "config.json", cfg, stage="pipeline")
    r = Run(cfg)
    r.stage("data", "stage 1: prepare the scenes", lambda: stage_data(r))
    preds: dict[str, list[str]] = {a: [] for a in cfg.arms}
    for i in range(cfg.seeds):
        for arm, folder in run_seed(r, cfg.seed + i, i).items():
            preds[arm].append(folder)
    r.stage("eval", "evaluate the arms on the test scenes", lambda: stage_eval(r, preds))
    summary = write_summary(r, time.monotonic() - t0)
    r.say(f"done: {summary}")
    return summary


# --- command line -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    S = argparse.SUPPRESS
    p = argparse.ArgumentParser(
        prog="pipeline.py", argument_default=S,
        description="Run the whole experiment: prepare the scenes, train the GANs, train one pix2pix per arm and "
                    "seed, and compare the arms on the same test scenes (runs/NAME/summary.md).",
        epilog="Presets: demo (synthetic scenes, 64 px, minutes on a laptop CPU), cpu (128 px, half pix2pix width, "
               "1280 pix2pix steps for every arm, short GAN schedule; sized for four arms x 3 seeds on SPARCS on 2 CPU cores), paper (256 px, full width, 57 pix2pix "
               "epochs, for a GPU). Every value a preset sets can be overridden by its option. "
               "Example: python pipeline.py --sparcs sparcs_data --test-list docs/sparcs_test_list.txt --preset cpu --seeds 3")
    src = p.add_argument_group("input (exactly one)")
    src.add_argument("--demo", action="store_true", help="the project's synthetic scenes")
    src.add_argument("--sparcs", type=Path, metavar="DIR", help="USGS SPARCS folder (<scene>_photo.png + _mask.png)")
    src.add_argument("--images", type=Path, metavar="DIR", help="your photos (with --masks and --classes)")
    src.add_argument("--masks", type=Path, metavar="DIR", help="your masks, matched to --images by file stem")
    src.add_argument("--classes", type=Path, metavar="FILE", help="classes.json of your data (default SPARCS)")
    src.add_argument("--test-list", type=Path, metavar="FILE", help="test scenes, one name a line")
    src.add_argument("--test-fraction", type=float, help="share of random test scenes without --test-list (default 0.1)")
    src.add_argument("--data-mode", choices=("resize", "tile"), help="stage-1 geometry (default resize)")
    e = p.add_argument_group("experiment")
    e.add_argument("--out", type=Path, metavar="DIR", help="run folder (default runs/<input>-<preset>-<time>; never reused without --resume)")
    e.add_argument("--arms", type=lambda s: tuple(a.strip() for a in s.split(",") if a.strip()),
                   help=f"comma list of {', '.join(ARMS)} (default {','.join(DEFAULT_ARMS)})")
    e.add_argument("--seeds", type=int, help="repeat every arm with this many seeds (default 1)")
    e.add_argument("--seed", type=int, help="first seed (default 0)")
    e.add_argument("--preset", choices=tuple(PRESETS), help="demo (default with --demo) | cpu (default otherwise) | paper")
    e.add_argument("--resume", action="store_true", help="continue the run in --out: finished stages are skipped")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    t = p.add_argument_group("sizes and schedules (set by the preset)")
    t.add_argument("--demo-scenes", type=int, help="number of synthetic scenes with --demo")
    t.add_argument("--size", type=int, help="image side in pixels")
    t.add_argument("--cgan-width", type=float, help="pix2pix width multiplier (1.0 = the paper's)")
    t.add_argument("--cgan-epochs", type=int, help="pix2pix epochs")
    t.add_argument("--cgan-batch", type=int, help="pix2pix batch")
    t.add_argument("--cgan-steps", type=int, metavar="N",
                   help="train every arm's pix2pix for the same N optimizer steps (whole epochs, rounded up) "
                        "instead of --cgan-epochs, so arms with more scenes do not also train longer (0: --cgan-epochs for "
                        "every arm, as the paper; set by the preset)")
    t.add_argument("--gan-width", type=float, help="GAN width multiplier (1.0 = the paper's)")
    t.add_argument("--gan-steps", type=int, help="GAN training steps")
    t.add_argument("--gan-batch", type=int, help="GAN batch")
    t.add_argument("--n-generated", type=int, help="synthetic scenes added to the training set (the paper: 200)")
    t.add_argument("--classic-color", choices=("off", "on", "auto"),
                   help="mild brightness/contrast jitter in the classic arms; auto keeps it only if it raises validation mIoU")
    t.add_argument("--diffaugment", help="GAN DiffAugment policy, e.g. color,translation,cutout (default off)")
    t.add_argument("--val-fraction", type=float, help="validation share of the training scenes (default 0.1)")
    t.add_argument("--min-confidence", type=float, help="pseudo-label confidence threshold for the gan arms")
    t.add_argument("--precision", choices=("auto", "float32", "mixed_bfloat16", "mixed_float16"), help="compute precision")
    t.add_argument("--xla", action="store_true", help="compile training steps with XLA")
    return p


RESUME_FREE = {"resume", "out", "quiet"}


def config_from_args(ns: argparse.Namespace, argv: Sequence[str]) -> PipelineConfig:
    given = vars(ns)
    if given.get("resume"):
        if "out" not in given:
            raise UserError("--resume needs --out DIR: the run folder to continue")
        stored_path = given["out"] / "config.json"
        if not stored_path.is_file():
            raise UserError(stored_path, "no pipeline run to resume here (config.json missing)")
        stored = json.loads(stored_path.read_text())["config"]
        for key, value in given.items():
            if key in RESUME_FREE:
                continue
            old = stored.get(key)
            new = str(value) if isinstance(value, Path) else (list(value) if isinstance(value, tuple) else value)
            if old != new:
                raise UserError(f"--{key.replace('_', '-')} {value} contradicts the run being resumed "
                                f"({old}); drop it or start a new run")
        fields = {f.name: f for f in dataclasses.fields(PipelineConfig)}
        kwargs = {k: (Path(v) if v is not None and fields[k].type.startswith("Path") else v)
                  for k, v in stored.items() if k in fields}
        kwargs["arms"] = tuple(kwargs["arms"])
        cfg = PipelineConfig(**kwargs)
        cfg.resume, cfg.out, cfg.progress = True, given["out"], not given.get("quiet", False)
        return cfg
    preset = given.get("preset", "demo" if given.get("demo") else "cpu")
    values = {**PRESETS[preset], **{k: v for k, v in given.items() if k in TUNABLE}}
    cfg = PipelineConfig(preset=preset, progress=not given.get("quiet", False), **values,
                         **{k: v for k, v in given.items() if k not in TUNABLE and k not in ("quiet", "preset")})
    if cfg.out is None:
        cfg.out = default_out(cfg)
    elif cfg.out.exists() and any(cfg.out.iterdir()):
        raise UserError(cfg.out, "already holds a run; pass --resume to continue it, or choose another --out")
    cfg.command = shlex.join(["python", "pipeline.py", *argv])
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = config_from_args(build_parser().parse_args(argv), argv)
    run(cfg)
    return 0
