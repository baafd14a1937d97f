"""What ``cgan.py`` can be asked to do, and the checks made before any compute (no TensorFlow here).

Usage: ``cfg = resolve(TrainConfig(data="images_CGAN", out="models_CGAN/before"))``; ``validate(cfg)``;
``validate_inference(PredictConfig(...))``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..bands import BandStats
from ..config import load_config
from ..copypaste import check_options as check_copypaste
from ..errors import UserError, check_writable
from ..folders import Found, find_images, unique_scenes
from ..harness.checkpoints import has_checkpoint as has_training_checkpoint
from ..harness.options import RunFields, check_resume, check_runtime, comparable, stored_run
from ..harness.schedule import LR_SCHEDULES
from ..imgio import check_model_photo, image_size, list_images
from ..models import UPSAMPLES
from ..runtime import PRECISIONS
from .augment import parse_augment
from .data import pair_folder, train_folder
from .losses import LOSSES
from .model import LABELLERS, LAMBDA, TARGETS

STAGE = "cgan-train"
LEARNING_RATE = 2e-4
BETA_1 = 0.5
CLASS_WEIGHTS = ("none", "auto")
CHECKPOINTS = ("best", "last")
TTA = ("none", "flips")
EXPORT_FORMATS = ("savedmodel",)
MODEL_FILE = "model.json"
PREDICT_STAGE = "cgan-predict"
PREDICT_BATCH = 32                  # windows per forward pass of predict (docs/PERFORMANCE.md)
# Options that decide what predict writes: a resumed predict must keep them, so its maps all agree.
PREDICT_LOCKED = ("model", "images", "checkpoint", "overlap", "precision", "scale", "tta", "confidence", "cog")
CONFIDENCE_DIR = "confidence"   # predict --confidence: OUT/confidence/<stem>_confidence.tif
CKPT_DIR = "ckpt"
BEST_DIR = "best"
# Options that define the model or the course of training: a resumed run must keep the checkpoint's values.
LOCKED = ("size", "width", "dropout", "target", "class_weights", "lam", "lr", "beta1", "batch", "augment",
          "val_fraction", "seed", "data", "extra", "classes", "split", "synthetic_share", "eval_every",
          "copypaste_p", "copypaste_n", "copypaste_rarity", "overlap", "labeller", "loss", "lr_schedule", "upsample",
          "tta")
RENAMED = {"lam": "lambda", "copypaste_n": "copypaste-n", "copypaste_p": "copypaste-p"}
# What a run or model folder from before these options was trained with.
MODEL_DEFAULTS = {"labeller": "pix2pix", "loss": "ce", "lr_schedule": "constant", "upsample": "transpose",
                  "tta": "none"}


@dataclass
class TrainConfig(RunFields):
    data: Path = Path("images_CGAN")
    out: Path = Path("models_CGAN")
    extra: list[Path] = field(default_factory=list)
    split: Path | None = None
    epochs: int = 57
    steps: int = 0
    eval_every: int = 0
    batch: int = 4
    size: int | None = None
    width: float = 1.0
    dropout: float = 0.5
    target: str = "classes"
    labeller: str = "pix2pix"
    loss: str = "ce"
    lr_schedule: str = "constant"
    upsample: str = "transpose"
    tta: str = "none"
    class_weights: str = "none"
    lam: float = LAMBDA
    lr: float = LEARNING_RATE
    beta1: float = BETA_1
    augment: str = "jitter"
    synthetic_share: float = 0.0
    copypaste_p: float = 0.0
    copypaste_n: int = 2
    copypaste_rarity: float = 1.0
    val_fraction: float = 0.1
    overlap: float = 0.25
    seed: int = 0
    classes: Path | None = None
    sample_every: int = 5
    log_every: int = 10
    verbose: bool = True


@dataclass
class PredictConfig:
    model: Path = Path("models_CGAN")
    images: Path = Path("images_CGAN/test/a")   # a folder, searched with its sub-folders, or a glob of folders
    out: Path = Path("predict_CGAN")
    checkpoint: str = "best"
    batch: int = PREDICT_BATCH
    overlap: float = 0.25
    precision: str = "auto"
    progress: bool = True
    scale: float | None = None           # None: the model's training scale (photos as they come)
    overwrite: bool = False              # replace the label maps an earlier predict wrote to --out
    confidence: bool = False             # also write <scene>_confidence: the top class probability
    tta: str | None = None               # None: what the model was validated with (model.json)
    cog: bool = False                    # Cloud-Optimized GeoTIFFs with overviews
    resume: bool = False                 # keep the complete maps in --out, label the other scenes
    executor: str = "serial"             # serial: in this process; dask: scenes spread over Dask workers
    workers: int = 0
    scheduler: str | None = None
    threads: int = 0
    stems: list[str] | None = None       # only the photos of these scenes (a fold's test scenes); None: all


@dataclass
class LabelConfig:
    model: Path = Path("models_CGAN")
    images: Path = Path("generated_images")
    out: Path = Path("labelled_CGAN")
    min_confidence: float | None = None
    checkpoint: str = "best"
    batch: int = 8
    overlap: float = 0.25
    precision: str = "auto"
    progress: bool = True
    scale: float | None = 1.0            # generated scenes come at the model's own resolution
    tta: str | None = None               # None: what the model was validated with (model.json)


@dataclass
class ExportConfig:
    model: Path = Path("models_CGAN")
    out: Path = Path("labeller_savedmodel")
    format: str = "savedmodel"
    checkpoint: str = "best"
    precision: str = "float32"           # what the exported graph computes in; float32 runs everywhere


def _power_of_two(size: int) -> bool:
    return 16 <= size <= 1024 and not size & (size - 1)


def resolve(cfg: TrainConfig) -> TrainConfig:
    """Fill in ``size`` from the training photos when not given (the options are checked first)."""
    check_options(cfg)
    if cfg.size is not None:
        return cfg
    photos = list_images(train_folder(cfg.data) / "a", "photo folder")
    if not photos:
        raise UserError(train_folder(cfg.data) / "a", "no photos (png, jpg, tif) to train on")
    w, h = image_size(photos[0])
    if w != h or not _power_of_two(w):
        raise UserError(photos[0], f"is {w}x{h}; pass --size (a power of two, e.g. 256) and the pairs are resized")
    return dataclasses.replace(cfg, size=w)


def has_checkpoint(out: Path) -> bool:
    """A cgan.py model folder with a training checkpoint to resume."""
    return has_training_checkpoint(Path(out) / CKPT_DIR)


def locked_values(cfg: TrainConfig) -> dict:
    return {k: comparable(getattr(cfg, k)) for k in LOCKED}


def check_options(cfg: TrainConfig) -> None:
    """The options alone (no files): what the pipeline checks for every arm before anything runs."""
    if cfg.epochs < 1:
        raise UserError(f"--epochs must be >= 1, got {cfg.epochs}")
    if cfg.steps < 0 or cfg.eval_every < 0:
        raise UserError("--steps and --eval-every must be >= 0 (0: from --epochs, once an epoch)")
    if cfg.size is not None and not _power_of_two(cfg.size):
        raise UserError(f"--size must be a power of two from 16 to 1024 (e.g. 256), got {cfg.size}")
    if not 0 < cfg.width <= 4:
        raise UserError(f"--width must be in (0, 4] (1 = the paper's filters, 0.5 = half), got {cfg.width}")
    if not 0 <= cfg.dropout < 1:
        raise UserError(f"--dropout must be in [0, 1), got {cfg.dropout}")
    if cfg.target not in TARGETS:
        raise UserError(f"--target must be one of {', '.join(TARGETS)}, got {cfg.target!r}")
    if cfg.class_weights not in CLASS_WEIGHTS:
        raise UserError(f"--class-weights must be one of {', '.join(CLASS_WEIGHTS)}, got {cfg.class_weights!r}")
    if cfg.class_weights != "none" and cfg.target != "classes":
        raise UserError("--class-weights needs --target classes (the rgb target has no per-class loss)")
    for flag, value, choices in (("--labeller", cfg.labeller, LABELLERS), ("--loss", cfg.loss, LOSSES),
                                 ("--lr-schedule", cfg.lr_schedule, LR_SCHEDULES),
                                 ("--upsample", cfg.upsample, UPSAMPLES), ("--tta", cfg.tta, TTA)):
        if value not in choices:
            raise UserError(f"{flag} must be one of {', '.join(choices)}, got {value!r}")
    if cfg.loss != "ce" and cfg.target != "classes":
        raise UserError(f"--loss {cfg.loss} needs --target classes (the rgb target's pixel loss is L1)")
    if cfg.lam < 0 or not math.isfinite(cfg.lam):
        raise UserError(f"--lambda must be >= 0, got {cfg.lam}")
    if cfg.labeller == "unet" and cfg.lam != LAMBDA:
        raise UserError("--lambda weighs the pixel loss against the adversarial loss, which --labeller unet does "
                        "not have: drop --lambda")
    if not 0 < cfg.lr < 1:
        raise UserError(f"--lr must be in (0, 1), got {cfg.lr}")
    if not 0 <= cfg.beta1 < 1:
        raise UserError(f"--beta1 must be in [0, 1), got {cfg.beta1}")
    parse_augment(cfg.augment)
    if not 0 <= cfg.synthetic_share < 1:
        raise UserError(f"--synthetic-share must be in [0, 1) (0: append --extra pairs), got {cfg.synthetic_share}")
    if cfg.synthetic_share and not cfg.extra:
        raise UserError("--synthetic-share needs --extra DIR (the synthetic pairs to draw from)")
    if cfg.copypaste_p:
        check_copypaste(cfg.copypaste_p, cfg.copypaste_n, cfg.copypaste_rarity)
    if not 0 <= cfg.val_fraction < 1:
        raise UserError(f"--val-fraction must be in [0, 1), got {cfg.val_fraction}")
    if not 0 <= cfg.overlap <= 0.9:
        raise UserError(f"--overlap must be in [0, 0.9], got {cfg.overlap}")
    if cfg.sample_every < 0 or cfg.log_every < 1:
        raise UserError("--sample-every must be >= 0 and --log-every >= 1")
    check_runtime(cfg)
    if cfg.xla and cfg.cpu_devices > 1:
        raise UserError("--xla cannot compile one step across logical CPU devices: drop --xla or --cpu-devices")


def check_schedule_given(cfg: TrainConfig, epochs_given: bool, steps_given: bool) -> None:
    """--epochs counts only when --steps is 0: given on a run that counts steps (its own --steps, or the
    stored run's on --resume), it would be ignored, so it is refused."""
    if not epochs_given or not cfg.steps:
        return
    if steps_given:
        raise UserError(f"--epochs and --steps {cfg.steps} both set the length of training: give one of them")
    raise UserError(f"--epochs has no effect on the run in {cfg.out}: it counts steps (--steps {cfg.steps}); "
                    "give the new total as --steps N")


def validate(cfg: TrainConfig) -> None:
    """Every option and input folder, before anything is computed or written."""
    check_options(cfg)
    if cfg.classes is not None and not Path(cfg.classes).is_file():
        raise UserError(cfg.classes, "class registry not found (pass --classes FILE with a classes.json)")
    if cfg.split is not None:
        from ..split import read_split

        read_split(cfg.split)
    pair_folder(train_folder(cfg.data))
    for extra in cfg.extra:
        pair_folder(extra)
    out = Path(cfg.out)
    check_writable(out)
    if cfg.resume:
        if not has_checkpoint(out):
            raise UserError(out, "holds no checkpoint to resume (train without --resume first)")
        stored, locked = stored_run(out, STAGE)
        check_resume(out, {**MODEL_DEFAULTS, **locked}, locked_values(cfg), RENAMED)
        if cfg.lr_schedule == "cosine" and (stored.get("steps"), stored.get("epochs")) != (cfg.steps, cfg.epochs):
            length = f"--steps {stored['steps']}" if stored.get("steps") else f"--epochs {stored.get('epochs')}"
            raise UserError(f"{out} follows a cosine schedule fixed by its length ({length}): resume with the same "
                            "length, or train a longer run from the start")
    elif has_checkpoint(out):
        raise UserError(out, "already holds a training checkpoint: pass --resume to continue it, or choose another --out")


def read_model_json(model_dir: Path) -> dict:
    path = Path(model_dir) / MODEL_FILE
    if not path.is_file():
        raise UserError(model_dir, f"is not a cgan.py model folder (no {MODEL_FILE}; train one with cgan.py train)")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(path, f"unreadable model description: {e}") from None


def model_band_stats(desc: dict, where: Path) -> BandStats:
    """The band normalisation a model was trained with; models from before it took 8-bit RGB photos."""
    if desc.get("band_stats") is not None:
        return BandStats.from_json(desc["band_stats"], where)
    try:
        return BandStats.identity_uint8(int(desc.get("bands", 3)))
    except (TypeError, ValueError) as e:
        raise UserError(where, f"incomplete model description ({e})") from None


def earlier_predictions(out: Path) -> list[Path]:
    """Label maps (and confidence maps) a predict run left in ``out``."""
    out = Path(out)
    found = list_images(out) if out.is_dir() else []
    return found + (list_images(out / CONFIDENCE_DIR) if (out / CONFIDENCE_DIR).is_dir() else [])


def _has_cog_driver() -> bool:
    import rasterio

    with rasterio.Env() as env:
        return "COG" in env.drivers()


def checkpoint_folder(model: Path, which: str) -> Path:
    return Path(model) / (BEST_DIR if which == "best" else CKPT_DIR)


def validate_inference(cfg) -> None:
    """predict and label: the model folder, its checkpoint, the photos and the output folder."""
    if isinstance(cfg, LabelConfig) and cfg.min_confidence is not None and not 0 < cfg.min_confidence <= 1:
        raise UserError(f"--min-confidence must be in (0, 1], got {cfg.min_confidence}")
    model = Path(cfg.model)
    if not model.is_dir():
        raise UserError(model, "model folder does not exist (train one with cgan.py train --out DIR)")
    stats = model_band_stats(read_model_json(model), model / MODEL_FILE)
    if cfg.checkpoint not in CHECKPOINTS:
        raise UserError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got {cfg.checkpoint!r}")
    if not has_training_checkpoint(checkpoint_folder(model, cfg.checkpoint)):
        raise UserError(model, f"holds no {cfg.checkpoint} checkpoint (train it first, or pass --checkpoint "
                               f"{'last' if cfg.checkpoint == 'best' else 'best'})")
    if cfg.batch < 1:
        raise UserError(f"--batch must be >= 1, got {cfg.batch}")
    if not 0 <= cfg.overlap <= 0.9:
        raise UserError(f"--overlap must be in [0, 0.9], got {cfg.overlap}")
    if cfg.precision not in PRECISIONS:
        raise UserError(f"--precision {cfg.precision!r} is not one of {', '.join(PRECISIONS)}")
    if cfg.scale is not None and not 0 < cfg.scale <= 16:
        raise UserError(f"--scale must be in (0, 16] (model px per photo px), got {cfg.scale}")
    if cfg.tta is not None and cfg.tta not in TTA:
        raise UserError(f"--tta must be one of {', '.join(TTA)}, got {cfg.tta!r}")
    if getattr(cfg, "cog", False) and not _has_cog_driver():
        raise UserError("--cog needs GDAL's COG driver (GDAL 3.1 or newer), which this rasterio lacks")
    if isinstance(cfg, PredictConfig):
        photos = check_predict(cfg)
    else:
        photos = list_images(cfg.images, "image folder")
        if not photos:
            raise UserError(cfg.images, "no photos (png, jpg, tif) to label")
        check_writable(cfg.out)
    # Every photo, before the first label map is written: a bad one must not leave half a folder.
    for p in photos:
        check_model_photo(p, stats)


def predict_scenes(cfg: PredictConfig) -> list[Found]:
    """The photos ``--images`` finds (sub-folders included), never those inside ``--out``, each with the
    scene name its maps take (its stem, or its place and stem joined by ``--``)."""
    out = Path(cfg.out).resolve()
    found = [f for f in find_images(cfg.images, "--images") if out not in f.path.resolve().parents]
    if not found:
        raise UserError(cfg.images, f"holds no photos (png, jpg, tif) outside --out {cfg.out}")
    unique_scenes(found)
    if cfg.stems is not None:
        missing = sorted(set(cfg.stems) - {f.scene for f in found})
        if missing:
            raise UserError(cfg.images, f"holds no photo of scene {missing[0]}")
        found = [f for f in found if f.scene in set(cfg.stems)]
    return sorted(found, key=lambda f: f.scene)


def locked_predict(cfg: PredictConfig) -> dict:
    return {k: comparable(getattr(cfg, k)) for k in PREDICT_LOCKED}


def check_predict(cfg: PredictConfig) -> list[Path]:
    """predict's own checks: the executor, the output folder and an earlier run in it; the photos to label."""
    from ..grid.options import ExecutorConfig, validate_executor

    validate_executor(ExecutorConfig.of(cfg))
    if cfg.resume and cfg.overwrite:
        raise UserError("--resume keeps the maps an earlier predict wrote, --overwrite replaces them: give one")
    scenes = predict_scenes(cfg)
    check_writable(cfg.out)
    stored = Path(cfg.out) / "config.json"
    if cfg.resume and stored.is_file():
        data = load_config(stored)
        if data.get("stage") != PREDICT_STAGE:
            raise UserError(stored, f"is not from cgan.py predict (stage {data.get('stage')!r}): --resume continues "
                                    "a predict run")
        for key, value in locked_predict(cfg).items():
            was = data.get("locked", {}).get(key, value)
            if was != value:
                flag = "--" + key.replace("_", "-")
                raise UserError(f"{flag} {value} contradicts the maps in {cfg.out}, made with {flag} {was}: leave "
                                f"it out or give the same value, or use another --out")
    elif not cfg.overwrite and not cfg.resume:
        earlier = earlier_predictions(cfg.out)
        if earlier:
            raise UserError(cfg.out, f"already holds the maps of an earlier predict ({earlier[0].name}, ...): pass "
                                     "--resume to finish that run, --overwrite to replace them, or choose another "
                                     "--out")
    return [f.path for f in scenes]
def validate_export(cfg: ExportConfig) -> None:
    """export: the format, the model folder and its checkpoint, and an output folder that is new or empty."""
    if cfg.format not in EXPORT_FORMATS:
        raise UserError(f"--format must be one of {', '.join(EXPORT_FORMATS)}, got {cfg.format!r}")
    if cfg.precision not in PRECISIONS:
        raise UserError(f"--precision {cfg.precision!r} is not one of {', '.join(PRECISIONS)}")
    model = Path(cfg.model)
    if not model.is_dir():
        raise UserError(model, "model folder does not exist (train one with cgan.py train --out DIR)")
    model_band_stats(read_model_json(model), model / MODEL_FILE)
    if cfg.checkpoint not in CHECKPOINTS:
        raise UserError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, got {cfg.checkpoint!r}")
    if not has_training_checkpoint(checkpoint_folder(model, cfg.checkpoint)):
        raise UserError(model, f"holds no {cfg.checkpoint} checkpoint (train it first, or pass --checkpoint "
                               f"{'last' if cfg.checkpoint == 'best' else 'best'})")
    out = Path(cfg.out)
    if out.is_dir() and any(out.iterdir()):
        raise UserError(out, "is not empty: export into a new or empty folder (--out)")
    check_writable(out)
