"""What ``pipeline.py`` runs: the arms, the options, and every check made before any work.

Every option of every stage the run will reach is checked here, in about a second, before the run folder
is created; where the data decide (too few training pairs for the batch), the input is counted from file
names and headers, and the message names the pipeline's own option.

Usage: ``cfg = config_from_args(build_parser().parse_args(argv), argv)``; ``validate(cfg)``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..classes import load_registry
from ..errors import UserError, check_writable
from ..folders import search_folders


@dataclass(frozen=True)
class Arm:
    """How one arm's pix2pix is trained: its augmentations and what it adds to the real pairs."""
    augment: str = "jitter"
    synthetic: str | None = None          # gan | paired | masksynth
    copypaste: bool = False
    class_weights: str = "none"


ARMS = {
    "baseline": Arm(),                                          # the paper's "before"
    "classic": Arm("jitter,dihedral"),                          # + the eight flips/rotations
    "classic+weights": Arm("jitter,dihedral", class_weights="auto"),
    "copypaste": Arm(copypaste=True),                           # rare-class copy-paste
    "classic+copypaste": Arm("jitter,dihedral", copypaste=True),
    "gan": Arm(synthetic="gan"),                                # the paper's "after"
    "paired": Arm(synthetic="paired"),
    "masksynth": Arm(synthetic="masksynth"),
    "classic+gan": Arm("jitter,dihedral", synthetic="gan"),
    "classic+paired": Arm("jitter,dihedral", synthetic="paired"),
    "classic+masksynth": Arm("jitter,dihedral", synthetic="masksynth"),
}
# The arms that tell the story: the paper's two, free flips, the cheap rare-class lever, and the two generators
# that come with their own labels.
DEFAULT_ARMS = ("baseline", "classic", "copypaste", "gan", "paired", "masksynth")
REFERENCES = ("baseline", "classic")
PER_LAYOUT = 2   # photos rendered per new label layout in the masksynth arms


@dataclass
class PipelineConfig:
    demo: bool = False
    sparcs: Path | None = None
    images: Path | None = None
    masks: Path | None = None
    classes: Path | None = None
    test_list: Path | None = None
    test_fraction: float = 0.1
    bands: str | None = None             # stage 1's --bands: "4,3,2" or "all"
    rgb_bands: str | None = None         # stage 1's --rgb-bands
    demo_bands: int = 3
    colour_tolerance: float = 0.0        # stage 1's --colour-tolerance
    ignore_class: tuple[str, ...] = ()   # stage 1's --ignore-class
    group_by: str = "none"               # stage 1's --group-by; also each seed's validation draw
    data_mode: str = "resize"
    fit: str = "crop"                  # stage 1's --fit (resize mode)
    tile_scale: float = 1.0            # stage 1's --tile-scale (tile mode)
    out: Path | None = None
    arms: tuple[str, ...] = DEFAULT_ARMS
    seeds: int = 1
    seed: int = 0
    folds: int = 0                       # K-fold testing: every labelled scene a test scene once (0: off)
    train_scenes: tuple = ()             # label budgets: scene counts, "all" last (): every training scene
    full_budget_from: Path | None = None  # a run whose full-budget results the label-budget report takes
    preset: str = "demo"
    demo_scenes: int = 60
    demo_size: int = 64
    size: int = 64
    cgan_width: float = 0.5
    cgan_epochs: int = 40
    cgan_batch: int = 8
    cgan_steps: int = 0
    evaluations: int = 13
    labeller: str = "pix2pix"
    loss: str = "ce"
    lr_schedule: str = "constant"
    upsample: str = "transpose"
    tta: str = "none"
    cgan_lr: float = 2e-4
    cgan_beta1: float = 0.5
    cgan_dropout: float = 0.5
    gan_width: float = 0.25
    gan_steps: int = 1200
    gan_batch: int = 16
    n_generated: int = 60
    synth_steps: int = 1200
    synth_width: float = 0.25
    synth_generator: str = "pix2pix"    # synth.py train --generator: how masksynth renders photos
    rare_boost: float = 1.0
    synthetic_share: float = 0.25      # picked on SPARCS validation from 0.25 and 0.5 (docs/RESULTS.md)
    copypaste_p: float = 0.25          # picked on SPARCS validation (docs/RESULTS.md)
    copypaste_n: int = 2
    copypaste_rarity: float = 1.0
    class_weights: str = "none"
    classic_color: str = "off"
    diffaugment: str = ""
    val_fraction: float = 0.1
    min_confidence: float | None = None
    overlap: float = 0.25
    precision: str = "auto"
    xla: bool = False
    resume: bool = False
    progress: bool = True
    estimate: bool = True              # time a few steps of each model and print the run's wall time first
    estimate_only: bool = False        # print that estimate and stop, writing nothing
    command: str = ""
    executor: str = "serial"             # where the cells run (landaug.grid): serial | dask
    workers: int = 0
    scheduler: str | None = None
    threads: int = 0


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


def synthetic_kinds(cfg: PipelineConfig) -> set[str]:
    return {ARMS[a].synthetic for a in cfg.arms} - {None}


def _check_basic(cfg: PipelineConfig) -> None:
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
                             ("--n-generated", cfg.n_generated, 1), ("--cgan-steps", cfg.cgan_steps, 0),
                             ("--evaluations", cfg.evaluations, 0), ("--synth-steps", cfg.synth_steps, 1)):
        if value < low:
            raise UserError(f"{name} must be at least {low}, got {value}")
    if cfg.size < 16 or cfg.size & (cfg.size - 1):
        raise UserError(f"--size must be a power of two >= 16, got {cfg.size}")
    if cfg.demo_size < cfg.size:
        raise UserError(f"--demo-size must be at least --size ({cfg.size}), got {cfg.demo_size}")
    if cfg.cgan_width <= 0 or cfg.gan_width <= 0:
        raise UserError("--cgan-width and --gan-width must be positive")
    if cfg.classic_color not in ("off", "on", "auto"):
        raise UserError(f"--classic-color must be off, on or auto, got {cfg.classic_color!r}")
    if cfg.data_mode not in ("resize", "tile"):
        raise UserError(f"--data-mode must be resize or tile, got {cfg.data_mode!r}")
    if not 0 < cfg.val_fraction < 1:
        raise UserError(f"--val-fraction must be in (0, 1): validation picks the checkpoint, got {cfg.val_fraction}")
    if cfg.rare_boost < 0:
        raise UserError(f"--rare-boost must be >= 0, got {cfg.rare_boost}")
    if cfg.min_confidence is not None and not 0 < cfg.min_confidence <= 1:
        raise UserError(f"--min-confidence must be in (0, 1], got {cfg.min_confidence}")
    if cfg.sparcs is not None and not cfg.sparcs.is_dir():
        raise UserError(cfg.sparcs, "SPARCS folder does not exist")
    for path, option in ((cfg.images, "--images"), (cfg.masks, "--masks")):
        if path is not None:
            search_folders(path, option)
    if cfg.test_list is not None and not cfg.test_list.is_file():
        raise UserError(cfg.test_list, "test list not found (one scene name a line)")
    _check_folds_and_budgets(cfg)
    from ..prepare.options import check_band_options, check_fit_options, check_mask_options

    check_mask_options(cfg.colour_tolerance, cfg.ignore_class, cfg.group_by,
                       "demo" if cfg.demo else "sparcs" if cfg.sparcs is not None else "pairs")
    load_registry(cfg.classes, ignore=cfg.ignore_class)
    check_band_options(cfg.bands, cfg.rgb_bands, cfg.demo_bands, cfg.demo)
    check_fit_options(cfg.data_mode, cfg.fit, cfg.tile_scale, "--data-mode")


def _check_folds_and_budgets(cfg: PipelineConfig) -> None:
    if cfg.folds and cfg.test_list is not None:
        raise UserError("--test-list and --folds are exclusive: --test-list sets one test set aside, --folds K "
                        "tests every scene once; drop one of them")
    if cfg.folds and cfg.folds < 2:
        raise UserError(f"--folds must be at least 2 (each fold is the test set once; 0: no folds), got {cfg.folds}")
    if cfg.full_budget_from is None:
        return
    if not cfg.train_scenes:
        raise UserError("--full-budget-from gives the full budget of a label-budget report: it needs "
                        "--train-scenes N1,N2,...")
    if "all" in cfg.train_scenes:
        raise UserError("--train-scenes names all and --full-budget-from gives it: drop all from --train-scenes, or "
                        "drop --full-budget-from to train the full budget in this run")
    from .places import check_full_budget_run

    check_full_budget_run(cfg, stored_config(cfg.full_budget_from, "--full-budget-from"))


def gan_width(cfg: PipelineConfig) -> int:
    from ..models.dcgan import PAPER_WIDTH

    w = max(8, round(cfg.gan_width * PAPER_WIDTH))
    return 1 << (w.bit_length() - 1)


def stage_configs(cfg: PipelineConfig, out: Path) -> dict:
    """Each stage's configuration for seed 0 of this run: built once here to check every option."""
    from .. import gan

    configs = {}
    for arm in cfg.arms:
        configs[arm] = cgan_config(cfg, arm, out / "x", [out / "x"] if ARMS[arm].synthetic else [], None, 0)
    if "masksynth" in synthetic_kinds(cfg):
        configs["masksynth generator"] = synth_config(cfg, out, out / "x", None, 0)
    for kind in synthetic_kinds(cfg) & {"gan", "paired"}:
        configs[kind + "_gan"] = gan.TrainConfig(images=out, out=out / "x", size=cfg.size, width=gan_width(cfg),
                                                 steps=cfg.gan_steps, batch=cfg.gan_batch, diffaugment=cfg.diffaugment,
                                                 precision=cfg.precision, xla=cfg.xla)
    return configs


def cgan_config(cfg: PipelineConfig, arm: str, model: Path, extra: list[Path], split: Path | None, seed: int,
                augment: str | None = None, data: Path | None = None):
    from .. import cgan

    a = ARMS[arm]
    steps = cfg.cgan_steps
    every = max(1, steps // cfg.evaluations) if steps and cfg.evaluations else 0
    return cgan.TrainConfig(data=data or model, out=model, extra=list(extra), split=split, epochs=cfg.cgan_epochs,
                            steps=steps, eval_every=every, batch=cfg.cgan_batch, size=cfg.size, width=cfg.cgan_width,
                            augment=augment or a.augment, class_weights="auto" if a.class_weights == "auto" else
                            cfg.class_weights, synthetic_share=cfg.synthetic_share if a.synthetic else 0.0,
                            copypaste_p=cfg.copypaste_p if a.copypaste else 0.0, copypaste_n=cfg.copypaste_n,
                            copypaste_rarity=cfg.copypaste_rarity, val_fraction=cfg.val_fraction,
                            labeller=cfg.labeller, loss=cfg.loss, lr_schedule=cfg.lr_schedule, upsample=cfg.upsample,
                            tta=cfg.tta, lr=cfg.cgan_lr, beta1=cfg.cgan_beta1, dropout=cfg.cgan_dropout,
                            overlap=cfg.overlap, seed=seed, precision=cfg.precision, xla=cfg.xla,
                            resume=False, progress=cfg.progress, verbose=False)


def synth_config(cfg: PipelineConfig, data: Path, model: Path, split: Path | None, seed: int):
    from .. import synth

    every = max(1, cfg.synth_steps // 4)
    return synth.TrainConfig(data=data, out=model, split=split, steps=cfg.synth_steps, width=cfg.synth_width,
                             generator=cfg.synth_generator,
                             seed=seed, sample_every=every, checkpoint_every=every, precision=cfg.precision,
                             xla=cfg.xla, resume=(model / "checkpoints" / "checkpoint").is_file(),
                             progress=cfg.progress)


def validate(cfg: PipelineConfig) -> dict:
    """Every option of the run and of each stage it reaches, before anything is written; returns what the
    input was counted to hold (``inputs.check_input``)."""
    from ..cgan.options import check_options
    from ..diffaugment import parse_policy
    from ..gan.options import check_train_options
    from ..runtime import validate_runtime_options
    from ..synth.options import check_train_options as check_synth

    from ..grid import ExecutorConfig, validate_executor

    _check_basic(cfg)
    validate_executor(ExecutorConfig.of(cfg))
    validate_runtime_options(cfg.precision, "default", 0)
    parse_policy(cfg.diffaugment)
    out = cfg.out or Path("runs")
    check_writable(out)
    for name, stage_cfg in stage_configs(cfg, out).items():
        try:
            check = check_options if name in ARMS else check_synth if name == "masksynth generator" else check_train_options
            check(stage_cfg)
        except UserError as e:
            raise UserError(_pipeline_words(e.message)) from None
    from .inputs import check_input

    return check_input(cfg)


def _pipeline_words(message: str) -> str:
    """A stage's message in the pipeline's option names."""
    for stage, ours in (("--batch", "--cgan-batch / --gan-batch"), ("--copypaste-p", "--copypaste-p"),
                        ("--synthetic-share", "--synthetic-share"), ("--width", "--cgan-width / --gan-width")):
        if message.startswith(stage + " "):
            return ours + message[len(stage):]
    return message


# A resumed run may add arms (finished stages are skipped, the evaluation is redone over all of them) and
# run its cells elsewhere (the grid refuses a --threads that contradicts the finished cells).
EXECUTOR_OPTIONS = ("executor", "workers", "scheduler", "threads")
PLACE_OPTIONS = ("executor", "workers", "scheduler")
RESUME_FREE = {"resume", "out", "quiet", "arms", "estimate", "estimate_only", *EXECUTOR_OPTIONS}


def command_with_arms(command: str, arms: tuple[str, ...]) -> str:
    """The run's command with its ``--arms`` (or an abbreviation argparse took for it) replaced by
    ``arms``: what reproduces a run that grew arms on resume."""
    words, kept = shlex.split(command), []
    i = 0
    while i < len(words):
        name = words[i].split("=", 1)[0]
        if len(name) > 2 and "--arms".startswith(name):
            i += 1 if "=" in words[i] else 2
            continue
        kept.append(words[i])
        i += 1
    return shlex.join([*kept, "--arms", ",".join(arms)])


def stored_config(out: Path, option: str = "--out") -> dict:
    """The configuration a pipeline run in ``out`` was started with."""
    path = Path(out) / "config.json"
    if not path.is_file():
        raise UserError(path, f"no pipeline run here (config.json missing): {option} names a run folder of "
                              f"pipeline.py")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(path, f"not a readable config.json: {e}") from None
    if not isinstance(data, dict) or data.get("stage") != "pipeline" or not isinstance(data.get("config"), dict):
        raise UserError(path, f"is not the config.json of a pipeline.py run ({option})")
    return data["config"]


def resume_config(given: dict) -> PipelineConfig:
    """The run in ``given["out"]`` as it was started, with the options a resumed run may change. Its cells
    run where this invocation says (any of --executor, --workers, --scheduler), else where they ran before:
    a Dask run resumed without those options would otherwise go on serially at the Dask run's thread budget,
    one core of two idle."""
    if "out" not in given:
        raise UserError("--resume needs --out DIR: the run folder to continue")
    stored_path = given["out"] / "config.json"
    if not stored_path.is_file():
        raise UserError(stored_path, "no pipeline run here (config.json missing)")
    stored = json.loads(stored_path.read_text())["config"]
    place = {k: given[k] for k in PLACE_OPTIONS if given.get(k) is not None} or {
        k: stored[k] for k in PLACE_OPTIONS if stored.get(k) is not None}
    stored = {k: v for k, v in stored.items() if k not in EXECUTOR_OPTIONS}
    for key, value in given.items():
        if key in RESUME_FREE:
            continue
        old = stored.get(key)
        new = str(value) if isinstance(value, Path) else (list(value) if isinstance(value, tuple) else value)
        if old != new:
            raise UserError(f"--{key.replace('_', '-')} {value} contradicts the run being resumed "
                            f"({old}); drop it or start a new run")
    fields = {f.name: f for f in dataclasses.fields(PipelineConfig)}
    kwargs = {k: (Path(v) if v is not None and str(fields[k].type).startswith("Path") else v)
              for k, v in stored.items() if k in fields}
    kwargs["arms"] = tuple(given.get("arms", kwargs["arms"]))
    kwargs["train_scenes"] = tuple(kwargs.get("train_scenes", ()))
    kwargs.update({**place, **({"threads": given["threads"]} if given.get("threads") is not None else {})})
    if list(kwargs["arms"]) != stored.get("arms"):
        kwargs["command"] = command_with_arms(stored.get("command", ""), kwargs["arms"])
    cfg = PipelineConfig(**kwargs)
    cfg.resume, cfg.out, cfg.progress = True, given["out"], not given.get("quiet", False)
    cfg.estimate, cfg.estimate_only = given.get("estimate", True), given.get("estimate_only", False)
    return cfg
