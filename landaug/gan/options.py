"""What ``gan.py`` can be asked to do, and the checks made before any compute (no TensorFlow here).

Usage: ``plan = validate(TrainConfig(images=Path("images"), out=Path("models_GAN")))``; ``plan.photos``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..bands import BandStats
from ..classes import SPARCS, ClassRegistry, load_registry
from ..diffaugment import parse_policy
from ..errors import UserError, check_writable
from ..files import find_upward
from ..harness.checkpoints import has_checkpoint
from ..harness.options import RunFields, check_resume, check_runtime, comparable, stored_run
from ..imgio import band_stats_for, image_size, list_images, pair_by_stem
from ..models import dcgan
from ..split import in_scenes, read_split, scenes_of

STAGE = "gan train"
LOSSES = ("nonsaturating", "hinge")
CKPT_DIR = "checkpoints"
# Options that define the model or the optimisation: a resumed run must keep the stored values.
LOCKED = ("size", "width", "latent_dim", "batch", "lr", "beta1", "loss", "ema", "d_noise", "diffaugment",
          "flip_rotate", "seed", "with_labels", "images", "split")


@dataclass
class TrainConfig(RunFields):
    images: Path | None = None
    out: Path = Path("models_GAN")
    with_labels: Path | None = None
    split: Path | None = None
    classes: Path | None = None
    size: int = 0
    width: int = dcgan.PAPER_WIDTH
    latent_dim: int = 128
    steps: int = 20000
    batch: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    loss: str = "nonsaturating"
    ema: float = 0.999
    d_noise: float = 0.2
    diffaugment: str = ""
    flip_rotate: bool = True
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 1000
    score_every: int = 1000
    log_every: int = 50
    keep_checkpoints: int = 3


@dataclass
class GenerateConfig:
    model: Path = Path("models_GAN")
    n: int = 200
    out: Path = Path("generated_images")
    seed: int = 0
    truncation: float | None = None
    batch: int = 32
    skip_existing: bool = False
    progress: bool = True


@dataclass
class ScoreConfig:
    model: Path = Path("models_GAN")
    images: Path = Path("images")
    n: int = 500
    seed: int = 0
    truncation: float | None = None
    out: Path | None = None
    inception_weights: Path | None = None
    progress: bool = True


@dataclass
class DataPlan:
    photos: list[Path]
    labels: list[Path] | None
    native_size: int
    size: int
    registry: ClassRegistry | None = None
    source: Path = field(default_factory=Path)
    # The data folder's band normalisation; with --split, train() learns the split's (splitbands).
    stats: BandStats = field(default_factory=BandStats.identity_uint8)

    @property
    def n_classes(self) -> int:
        return len(self.registry) if self.registry is not None else 0

    @property
    def train_scenes(self) -> list[str]:
        return scenes_of(p.stem for p in self.photos)


def _positive(name: str, value, allow_zero: bool = False) -> None:
    if value is None or value < 0 or (value == 0 and not allow_zero):
        raise UserError(f"--{name.replace('_', '-')} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def check_train_options(cfg: TrainConfig) -> None:
    """The options alone (no files): what the pipeline checks before anything runs."""
    for name in ("steps", "batch", "latent_dim", "lr", "keep_checkpoints", "log_every"):
        _positive(name, getattr(cfg, name))
    for name in ("sample_every", "checkpoint_every", "score_every", "seed"):
        _positive(name, getattr(cfg, name), allow_zero=True)
    if cfg.size:
        dcgan.check_size(cfg.size)
    dcgan.check_width(cfg.width)
    if cfg.loss not in LOSSES:
        raise UserError(f"--loss {cfg.loss!r} is not one of {', '.join(LOSSES)}")
    if not 0.0 <= cfg.ema < 1.0:
        raise UserError(f"--ema must be in [0, 1), got {cfg.ema}")
    if not 0.0 <= cfg.beta1 < 1.0:
        raise UserError(f"--beta1 must be in [0, 1), got {cfg.beta1}")
    if cfg.d_noise < 0:
        raise UserError(f"--d-noise must be >= 0, got {cfg.d_noise}")
    parse_policy(cfg.diffaugment)
    check_runtime(cfg)
    if cfg.with_labels is not None and cfg.images is not None:
        raise UserError("--images and --with-labels both given: paired training reads its photos from DIR/a; "
                        "drop --images")


def _describe_sizes(sizes: dict[tuple[int, int], list[Path]]) -> str:
    parts = []
    for (w, h), files in sorted(sizes.items(), key=lambda kv: -len(kv[1])):
        shown = ", ".join(f.name for f in files[:3]) + (", ..." if len(files) > 3 else "")
        parts.append(f"{w}x{h} ({len(files)}: {shown})")
    return "; ".join(parts)


def scan_scenes(files: list[Path], folder: Path, what: str = "image folder") -> int:
    """The size of the scenes, which must be non-empty, square and of one size."""
    if not files:
        raise UserError(folder, f"{what} holds no images (png, jpg, tif); make them with resize_to_256.py")
    sizes: dict[tuple[int, int], list[Path]] = {}
    for f in files:
        sizes.setdefault(image_size(f), []).append(f)
    if len(sizes) > 1:
        raise UserError(folder, f"scenes of mixed sizes: {_describe_sizes(sizes)}; resize them to one size "
                                f"(resize_to_256.py)")
    (w, h), = sizes
    if w != h:
        raise UserError(folder, f"scenes are {w}x{h}, not square; crop or resize them (resize_to_256.py)")
    return w


def registry_for_pairs(pairs_dir: Path, classes: Path | None) -> ClassRegistry:
    if classes is not None:
        return load_registry(classes)
    found = find_upward(pairs_dir, "classes.json", up=1)
    return SPARCS if found is None else load_registry(found)


def _only_training_scenes(stems: list[str], cfg: TrainConfig, where: Path) -> set[str]:
    """The stems a GAN may learn from: those of the split's training scenes (all without --split)."""
    if cfg.split is None:
        return set(stems)
    split = read_split(cfg.split)
    keep = set(in_scenes(stems, split["train"]))
    if not keep:
        raise UserError(where, f"no scene of the training split in {cfg.split} is in this folder")
    return keep


def plan_data(cfg: TrainConfig) -> DataPlan:
    """Find and check the training scenes (headers only): sizes, pairs, split, class registry."""
    if cfg.with_labels is not None:
        d = cfg.with_labels
        if not d.is_dir():
            raise UserError(d, "--with-labels folder does not exist (expected DIR/a photos and DIR/b masks)")
        if not (d / "a").is_dir() or not (d / "b").is_dir():
            raise UserError(d, "--with-labels folder needs a/ (photos) and b/ (masks) sub-folders, "
                               "like images_CGAN/train")
        pairs = pair_by_stem(d / "a", d / "b")
        if not pairs:
            raise UserError(d / "a", "photo folder holds no images; make them with resize_to_256.py")
        keep = _only_training_scenes([s for s, _, _ in pairs], cfg, d)
        pairs = [p for p in pairs if p[0] in keep]
        size = scan_scenes([a for _, a, _ in pairs], d / "a", "photo folder")
        for (stem, a, b) in pairs:
            if image_size(b) != (size, size):
                w, h = image_size(b)
                raise UserError(b, f"mask is {w}x{h} but its photo {a.name} is {size}x{size}")
        registry = registry_for_pairs(d, cfg.classes)
        photos, labels, source = [a for _, a, _ in pairs], [b for _, _, b in pairs], d
    else:
        folder = cfg.images or Path("images")
        files = list_images(folder)
        keep = _only_training_scenes([f.stem for f in files], cfg, folder) if files else set()
        photos = [f for f in files if f.stem in keep]
        size = scan_scenes(photos, folder)
        labels, registry, source = None, None, folder
    target = cfg.size or size
    if not cfg.size and (size < dcgan.MIN_SIZE or size & (size - 1)):
        raise UserError(photos[0].parent, f"scenes are {size}x{size}, not a power of two >= {dcgan.MIN_SIZE}; "
                                          f"pass --size (e.g. {max(2 ** int(math.log2(max(size, 1))), 16)})")
    # Stage 1 writes bands.json into images/ and images_CGAN/ (the parent of the paired folder).
    stats = band_stats_for(source, photos[0], up=1)
    return DataPlan(photos=photos, labels=labels, native_size=size, size=target, registry=registry, source=source,
                    stats=stats)


def locked_values(cfg: TrainConfig, plan: DataPlan) -> dict:
    values = {k: comparable(getattr(cfg, k)) for k in LOCKED}
    values["size"] = plan.size
    values["diffaugment"] = ",".join(parse_policy(cfg.diffaugment))
    return values


def validate(cfg: TrainConfig) -> DataPlan:
    """Every option and input checked before any compute; returns what to load."""
    check_train_options(cfg)
    plan = plan_data(cfg)
    check_writable(cfg.out)
    if not cfg.resume:
        if has_checkpoint(cfg.out / CKPT_DIR):
            raise UserError(cfg.out, "already holds a training run; pass --resume to continue it or choose "
                                     "another --out")
    elif (cfg.out / "config.json").is_file():
        check_resume(cfg.out, stored_run(cfg.out, STAGE)[1], locked_values(cfg, plan))
    return plan
