"""What ``synth.py`` can be asked to do, and the checks made before any compute (no TensorFlow here).

Usage: ``plan = validate(TrainConfig(data=Path("images_CGAN"), out=Path("models_synth")))``; ``plan.pairs``;
``check_generate(GenerateConfig(...))``; ``check_score(ScoreConfig(...))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ..bands import BandStats
from ..classes import ClassRegistry, registry_for_data
from ..diffaugment import parse_policy
from ..errors import UserError, check_writable
from ..harness.checkpoints import has_checkpoint
from ..harness.options import RunFields, check_resume, check_runtime, comparable, stored_run
from ..imgio import image_size
from ..split import in_scenes, read_split, scenes_of

STAGE = "synth train"
GENERATORS = ("spade", "pix2pix", "oasis")
LAYOUT_KINDS = ("flip", "mosaic", "paste")
CKPT_DIR = "checkpoints"
MIN_SIZE, MAX_SIZE = 16, 1024
# Options that define the model or the course of training: a resumed run must keep the stored values.
LOCKED = ("generator", "width", "latent_dim", "batch", "lr", "beta1", "seed", "data", "split", "l1", "diversity",
          "diffaugment")
OASIS_ONLY = ("l1", "diversity", "diffaugment")     # options of the oasis generator alone


@dataclass
class TrainConfig(RunFields):
    data: Path = Path("images_CGAN")
    out: Path = Path("models_synth")
    split: Path | None = None
    generator: str = "pix2pix"
    steps: int = 2000
    batch: int = 8
    width: float = 0.25
    latent_dim: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    l1: float = 0.0             # oasis: weight of the pixel L1 against the real photo (0: none, as OASIS)
    diversity: float = 0.0      # oasis: weight of the mode-seeking term
    diffaugment: str = ""       # oasis: DiffAugment policy on the discriminator's inputs
    seed: int = 0
    sample_every: int = 500
    checkpoint_every: int = 500
    log_every: int = 50


@dataclass
class GenerateConfig:
    model: Path = Path("models_synth")
    out: Path = Path("generated_synth")
    n_layouts: int = 100
    per_layout: int = 2
    seed: int = 0
    rare_boost: float = 1.0
    layouts: str = ",".join(LAYOUT_KINDS)
    progress: bool = True


@dataclass
class ScoreConfig:
    model: Path = Path("models_synth")
    images: Path | None = None           # None: the validation scenes of the model's split
    n: int = 200
    seed: int = 0
    layouts: str = "mosaic"
    out: Path | None = None
    progress: bool = True


@dataclass
class DataPlan:
    """The training pairs a run learns from (headers checked, nothing decoded)."""
    pairs: list[tuple[str, Path, Path]]
    size: int
    registry: ClassRegistry
    source: Path
    train_scenes: list[str] = field(default_factory=list)
    # The data folder's band normalisation; with --split, train() learns the split's (splitbands).
    stats: BandStats = field(default_factory=BandStats.identity_uint8)


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise UserError(message)


def check_train_options(cfg: TrainConfig) -> None:
    """The options alone (no files)."""
    _check(cfg.generator in GENERATORS, f"--generator {cfg.generator!r} is not one of {', '.join(GENERATORS)}")
    for name in ("steps", "batch", "latent_dim", "log_every"):
        v = getattr(cfg, name)
        _check(isinstance(v, int) and v > 0, f"--{name.replace('_', '-')} must be an integer > 0, got {v}")
    for name in ("sample_every", "checkpoint_every", "seed"):
        v = getattr(cfg, name)
        _check(isinstance(v, int) and v >= 0, f"--{name.replace('_', '-')} must be an integer >= 0, got {v}")
    _check(math.isfinite(cfg.width) and 0 < cfg.width <= 4,
           f"--width must be in (0, 4] (a multiplier of the papers' channel counts), got {cfg.width}")
    _check(0 < cfg.lr < 1, f"--lr must be in (0, 1), got {cfg.lr}")
    _check(0 <= cfg.beta1 < 1, f"--beta1 must be in [0, 1), got {cfg.beta1}")
    for name in ("l1", "diversity"):
        v = getattr(cfg, name)
        _check(math.isfinite(v) and 0 <= v <= 1000, f"--{name} must be in [0, 1000] (a loss weight), got {v}")
    parse_policy(cfg.diffaugment)
    if cfg.generator != "oasis":
        given = [o for o in OASIS_ONLY if getattr(cfg, o)]
        _check(not given, f"--{given[0] if given else ''} applies to --generator oasis only; leave it out with "
                          f"--generator {cfg.generator}")
    check_runtime(cfg)


def training_pairs(data: Path, split: Path | None) -> tuple[list[tuple[str, Path, Path]], Path]:
    """(stem, photo, label) of DATA/train, only the split's training scenes with ``split``."""
    from ..cgan.data import list_pairs, train_folder

    folder = train_folder(data)
    pairs = list_pairs(folder)
    if split is not None:
        keep = set(in_scenes([p[0] for p in pairs], read_split(split)["train"]))
        pairs = [p for p in pairs if p[0] in keep]
        if not pairs:
            raise UserError(folder, f"no pair belongs to a training scene of {split}")
    return pairs, folder


def pair_size(pairs: list[tuple[str, Path, Path]]) -> int:
    """The common side of the photos and labels: square, one size, a power of two the networks take."""
    sizes = {}
    for _, a, b in pairs:
        for p in (a, b):
            sizes.setdefault(image_size(p), p)
    if len(sizes) > 1:
        shown = "; ".join(f"{w}x{h} ({p.name})" for (w, h), p in sorted(sizes.items())[:3])
        raise UserError(pairs[0][1].parent.parent, f"pairs of mixed sizes: {shown}; bring them to one size "
                                                   "with resize_to_256.py")
    ((w, h), first), = sizes.items()
    if w != h or w < MIN_SIZE or w > MAX_SIZE or w & (w - 1):
        raise UserError(first, f"is {w}x{h}; the generators need square pairs of a power of two from "
                               f"{MIN_SIZE} to {MAX_SIZE} px (resize_to_256.py --size)")
    return w


def plan_data(cfg: TrainConfig) -> DataPlan:
    from ..cgan.data import data_band_stats

    pairs, folder = training_pairs(cfg.data, cfg.split)
    size = pair_size(pairs)
    registry = registry_for_data(cfg.data)
    stats = data_band_stats(cfg.data, pairs[0][1])
    return DataPlan(pairs, size, registry, folder, scenes_of(p[0] for p in pairs), stats)


def locked_values(cfg: TrainConfig, plan: DataPlan | None = None) -> dict:
    values = {k: comparable(getattr(cfg, k)) for k in LOCKED}
    if plan is not None:
        values["size"] = plan.size
    return values


def validate(cfg: TrainConfig) -> DataPlan:
    """Every option and input checked before any compute; returns what to load."""
    check_train_options(cfg)
    plan = plan_data(cfg)
    check_writable(cfg.out)
    if cfg.resume:
        if not has_checkpoint(cfg.out / CKPT_DIR):
            raise UserError(cfg.out, "holds no checkpoint to resume (train without --resume first)")
        check_resume(cfg.out, stored_run(cfg.out, STAGE)[1], locked_values(cfg, plan))
    elif has_checkpoint(cfg.out / CKPT_DIR):
        raise UserError(cfg.out, "already holds a training run; pass --resume to continue it or choose another --out")
    return plan


def parse_layouts(text: str) -> tuple[str, ...]:
    """``flip,mosaic,paste`` -> the kinds in that order, each once."""
    kinds = tuple(dict.fromkeys(k.strip() for k in str(text).split(",") if k.strip()))
    bad = [k for k in kinds if k not in LAYOUT_KINDS]
    _check(bool(kinds) and not bad, f"--layouts {text!r}: give a comma list of {', '.join(LAYOUT_KINDS)}")
    return kinds


def check_generate(cfg: GenerateConfig) -> tuple[str, ...]:
    for name in ("n_layouts", "per_layout"):
        v = getattr(cfg, name)
        _check(isinstance(v, int) and v > 0, f"--{name.replace('_', '-')} must be an integer > 0, got {v}")
    _check(isinstance(cfg.seed, int) and cfg.seed >= 0, f"--seed must be an integer >= 0, got {cfg.seed}")
    _check(math.isfinite(cfg.rare_boost) and 0 <= cfg.rare_boost <= 16,
           f"--rare-boost must be in [0, 16] (0: plain layouts), got {cfg.rare_boost}")
    kinds = parse_layouts(cfg.layouts)
    _check(cfg.rare_boost == 0 or "paste" in kinds,
           f"--rare-boost {cfg.rare_boost:g} pastes rare-class regions into the 'paste' layouts: add paste to "
           "--layouts or use --rare-boost 0")
    check_writable(cfg.out)
    return kinds


def check_score(cfg: ScoreConfig) -> tuple[str, ...]:
    _check(isinstance(cfg.n, int) and cfg.n > 1, f"--n must be an integer > 1, got {cfg.n}")
    _check(isinstance(cfg.seed, int) and cfg.seed >= 0, f"--seed must be an integer >= 0, got {cfg.seed}")
    kinds = parse_layouts(cfg.layouts)
    if cfg.out is not None:
        check_writable(cfg.out)
    return kinds
