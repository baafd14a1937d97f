"""Options every training stage shares: runtime choices, batch/replica checks, and the resume lock.

A resumed run must keep the options that define its model and its course of training; options left out
on the command line take their stored values, contradicting ones are refused with one line naming them.

Usage: ``add_runtime_options(parser)``; ``check_runtime(cfg)``; ``config, locked = stored_run(out, stage)``;
``config, locked = stored_run(out, stage)``; ``check_resume(out, locked, current_locked)``;
``class TrainConfig(RunFields): ...``; ``cfg = config_from_args(TrainConfig, args, STAGE, Path("models"))``.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..config import load_config
from ..errors import UserError
from ..runtime import PRECISIONS, STRATEGIES, validate_runtime_options

# Options of the machine a run happens to use: a resumed run may change them.
RUNTIME_FIELDS = ("precision", "xla", "strategy", "cpu_devices", "progress", "resume", "deterministic",
                  "verbose")


@dataclass
class RunFields:
    """The fields every training configuration ends with: how and where this run happens to run."""
    resume: bool = False
    deterministic: bool = False
    precision: str = "auto"
    xla: bool = False
    strategy: str = "default"
    cpu_devices: int = 0
    progress: bool = True


def add_runtime_options(p: argparse.ArgumentParser, default=None) -> None:
    """--precision, --xla, --strategy, --cpu-devices and --deterministic, with their help texts."""
    g = p.add_argument_group("runtime (free to change on --resume)")
    g.add_argument("--precision", choices=PRECISIONS, default=default,
                   help="auto (default): mixed_bfloat16 where the hardware runs it natively, else float32; "
                        "mixed_float16 uses loss scaling (GPUs)")
    g.add_argument("--xla", action="store_true", default=default, help="compile the training step with XLA")
    g.add_argument("--strategy", choices=STRATEGIES, default=default,
                   help="default: one device; mirrored: all local GPUs (or --cpu-devices); multiworker: TF_CONFIG")
    g.add_argument("--cpu-devices", type=int, default=default,
                   help="split the CPU into N logical devices for --strategy mirrored (testing without GPUs)")
    g.add_argument("--deterministic", action="store_true", default=default,
                   help="op determinism: the same command gives bitwise the same model (slower); seeds are "
                        "always set from --seed")


def add_loop_options(p: argparse.ArgumentParser, defaults: dict) -> None:
    """--sample-every, --checkpoint-every, --log-every, --resume, --quiet and the runtime options of a GAN
    stage that trains for --steps."""
    p.add_argument("--sample-every", type=int, help=f"steps between sample grids; 0 = off (default: "
                                                    f"{defaults['sample_every']})")
    p.add_argument("--checkpoint-every", type=int, help=f"steps between checkpoints; one is always written at the "
                                                        f"end (default: {defaults['checkpoint_every']})")
    p.add_argument("--log-every", type=int, help=f"steps between loss read-outs (default: {defaults['log_every']})")
    p.add_argument("--resume", action="store_true", help="continue the run in --out up to --steps")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_runtime_options(p)


def replicas_planned(strategy: str, cpu_devices: int) -> int | None:
    """Replicas known before TensorFlow starts (None: decided by the GPUs or TF_CONFIG)."""
    if strategy == "default":
        return 1
    if strategy == "mirrored" and cpu_devices > 1:
        return cpu_devices
    return None


def check_batch(batch: int, replicas: int | None, option: str = "--batch") -> None:
    if batch < 1:
        raise UserError(f"{option} must be >= 1, got {batch}")
    if replicas and batch % replicas:
        raise UserError(f"{option} {batch} does not split over {replicas} replicas: use a multiple of {replicas}")


def check_runtime(cfg) -> None:
    """The runtime fields of a stage configuration, checked before TensorFlow starts."""
    validate_runtime_options(cfg.precision, cfg.strategy, cfg.cpu_devices)
    if cfg.cpu_devices > 1 and cfg.strategy == "default":
        raise UserError("--cpu-devices splits the CPU for --strategy mirrored; add --strategy mirrored")
    check_batch(cfg.batch, replicas_planned(cfg.strategy, cfg.cpu_devices))


def option_flag(name: str, renamed: dict[str, str] | None = None) -> str:
    return "--" + (renamed or {}).get(name, name.replace("_", "-"))


def comparable(v):
    """Paths by their absolute form, sequences as lists: what a stored config.json can be compared with."""
    if isinstance(v, Path):
        return str(v.resolve())
    if isinstance(v, (list, tuple)):
        return [comparable(x) for x in v]
    return v


def _show(v) -> str:
    if v is True or v is False:
        return "on" if v else "off"
    if isinstance(v, list):
        return "[" + ", ".join(map(str, v)) + "]"
    return str(v)


def stored_run(out: Path, stage: str) -> tuple[dict, dict]:
    """(all options, locked options) a run in ``out`` was started with (its ``config.json``)."""
    data = load_config(Path(out) / "config.json")
    if data.get("stage") != stage:
        raise UserError(Path(out) / "config.json", f"is not from '{stage}' (stage {data.get('stage')!r})")
    return data.get("config", {}), data.get("locked", {})


def check_resume(out: Path, stored: dict, current: dict, renamed: dict[str, str] | None = None) -> None:
    """Refuse a resume whose locked options differ from the stored run's, naming the first that does."""
    for key, new in current.items():
        if key in stored and stored[key] != new:
            flag = option_flag(key, renamed)
            raise UserError(f"{flag} {_show(new)} contradicts the checkpoint in {out}, trained with {flag} "
                            f"{_show(stored[key])}: leave it out or give the same value, or use another --out")


def config_from_args(cls, args, stage: str, default_out: Path):
    """A stage's training configuration from its parsed command line: given options win; on --resume the
    others come from the stored run, else the defaults. (Options are parsed with default None.)"""
    names = {f.name for f in dataclasses.fields(cls)}
    given = {k: v for k, v in vars(args).items() if k in names and v is not None}
    given["resume"] = bool(args.resume)
    given["progress"] = not args.quiet
    out = Path(given.get("out", default_out))
    stored = stored_run(out, stage)[0] if args.resume and (out / "config.json").is_file() else {}
    return fill_from_stored(cls, given, stored)


def fill_from_stored(cls, given: dict, stored: dict) -> object:
    """A config dataclass from options given on the command line; the rest from the stored run (on
    resume) or the defaults. Runtime fields never come from the stored run."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    base = {k: v for k, v in stored.items() if k in fields and k not in RUNTIME_FIELDS}
    for k, v in list(base.items()):
        if v is not None and str(fields[k].type).startswith("Path"):
            base[k] = Path(v)
        elif v is not None and str(fields[k].type).startswith("list[Path]"):
            base[k] = [Path(x) for x in v]
    return cls(**{**base, **given})
