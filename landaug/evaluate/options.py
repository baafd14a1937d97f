"""Which sets are scored against which truth, with which classes: the options of stage 4, checked up front.

Usage: ``cfg = EvalConfig(truth=T, preds=["before=B", "after=A"])``; ``sets = parse_pred_specs(cfg.preds)``;
``build_parser().parse_args(argv)`` for the CLI.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from .. import metrics as M
from ..classes import SPARCS, ClassRegistry, load_registry
from ..colours import check_tolerance
from ..errors import ArgumentParser, UserError
from ..files import find_upward

DEFAULT_TRUTH = Path("images_CGAN/test/b")
DEFAULT_PREDS = ("before=Pred_before_augmentation", "after=Pred_after_augmentation")
DEFAULT_OUT = Path("eval_report")
GLOB_CHARS = "*?["
SPARCS_SOURCE = "built-in SPARCS classes"


@dataclass
class EvalConfig:
    truth: Path = DEFAULT_TRUTH
    preds: list[str] = field(default_factory=lambda: list(DEFAULT_PREDS))
    out: Path = DEFAULT_OUT
    classes: Path | None = None
    images: Path | None = None
    references: list[str] = field(default_factory=list)   # empty: the first set
    scenes: int = 6
    bootstrap: int = M.BOOTSTRAP_RESAMPLES
    seed: int = M.BOOTSTRAP_SEED
    colour_tolerance: float = 0.0
    ignore_class: list[str] = field(default_factory=list)
    progress: bool = True


def build_parser() -> ArgumentParser:
    p = ArgumentParser(
        prog="eval.py",
        description="Score predicted label maps against the truth: confusion matrix, per-class IoU, mIoU, "
                    "OA, kappa, the paper's Euclidean distance, and a bootstrap comparison of sets over "
                    "training runs and test scenes.")
    p.add_argument("--truth", type=Path, default=DEFAULT_TRUTH,
                   help=f"folder of truth masks (default: {DEFAULT_TRUTH})")
    p.add_argument("--pred", action="append", metavar="NAME=DIR", default=None,
                   help="a named set of predictions; DIR may be a glob (quote it) matching several run "
                        "folders (training seeds), reported as mean +- std; repeat for more sets "
                        f"(default: {' '.join('--pred ' + s for s in DEFAULT_PREDS)})")
    p.add_argument("--reference", action="append", metavar="NAME", default=None,
                   help="a set every other set is compared with; repeat for several references "
                        "(default: the first --pred set)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"folder for report.json, report.md, figures and config.json (default: {DEFAULT_OUT})")
    p.add_argument("--classes", type=Path, default=None,
                   help="classes.json of the label colours (default: classes.json in the truth folder or "
                        "up to two folders above it, else the SPARCS classes)")
    p.add_argument("--colour-tolerance", type=float, default=0.0, metavar="N",
                   help="take mask colours within N RGB units of a class colour as that class (default 0: exact "
                        "colours only; a class that takes several colours is reported)")
    p.add_argument("--ignore-class", action="append", metavar="NAME", default=None,
                   help="a class of --classes whose pixels are unlabelled and left out of the scores; repeatable")
    p.add_argument("--images", type=Path, default=None,
                   help="folder of the test photos, shown beside truth and predictions in the scene grid")
    p.add_argument("--scenes", type=int, default=6,
                   help="test scenes in the scene grid, 0 for none (default: 6)")
    p.add_argument("--bootstrap", type=int, default=M.BOOTSTRAP_RESAMPLES,
                   help=f"bootstrap resamples for the confidence intervals, 0 for none "
                        f"(default: {M.BOOTSTRAP_RESAMPLES})")
    p.add_argument("--seed", type=int, default=M.BOOTSTRAP_SEED,
                   help=f"seed of the bootstrap resampling (default: {M.BOOTSTRAP_SEED})")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(argv: Sequence[str] | None) -> EvalConfig:
    args = build_parser().parse_args(argv)
    return EvalConfig(truth=args.truth, preds=list(args.pred) if args.pred else list(DEFAULT_PREDS),
                      out=args.out, classes=args.classes, images=args.images,
                      references=list(args.reference or []), scenes=args.scenes,
                      bootstrap=args.bootstrap, seed=args.seed, colour_tolerance=args.colour_tolerance,
                      ignore_class=list(args.ignore_class or []), progress=not args.quiet)


def check_numbers(scenes: int, bootstrap: int, colour_tolerance: float = 0.0) -> None:
    check_tolerance(colour_tolerance)
    if scenes < 0:
        raise UserError(f"--scenes must be 0 or more, got {scenes}")
    if bootstrap < 0:
        raise UserError(f"--bootstrap must be 0 (no intervals) or more, got {bootstrap}")


def parse_pred_specs(specs: Sequence[str]) -> dict[str, list[Path]]:
    """``NAME=DIR`` / ``NAME=GLOB`` strings -> {name: [run folders]}; a repeated NAME adds runs."""
    sets: dict[str, list[Path]] = {}
    for spec in specs:
        name, sep, pattern = spec.partition("=")
        name = name.strip()
        if not sep or not name or not pattern:
            raise UserError(f"--pred {spec!r}: expected NAME=DIR, e.g. --pred after=Pred_after_augmentation")
        literal = Path(pattern).expanduser()
        if any(ch in pattern for ch in GLOB_CHARS) and not literal.exists():
            dirs = [m for m in sorted(Path(m) for m in glob.glob(str(literal))) if m.is_dir()]
            if not dirs:
                raise UserError(pattern, f"the glob of --pred {name} matches no folder")
        else:
            if not literal.exists():
                raise UserError(literal, f"prediction folder of --pred {name} does not exist")
            if not literal.is_dir():
                raise UserError(literal, f"--pred {name} is not a folder")
            dirs = [literal]
        runs = sets.setdefault(name, [])
        for d in dirs:
            if any(same_folder(d, r) for r in runs):
                raise UserError(d, f"given twice for --pred {name}")
            runs.append(d)
    return sets


def same_folder(a: Path, b: Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def choose_references(names: Sequence[str], wanted: Sequence[str] | None, strict: bool) -> tuple[list[str], list[str]]:
    """The references among the set ``names`` (default: the first set) and the wanted ones not present.
    ``strict`` (the CLI, where the user typed them): a reference that is no set is an error."""
    if not wanted:
        return [names[0]], []
    refs, missing = [], []
    for r in dict.fromkeys(wanted):
        (refs if r in names else missing).append(r)
    if missing and strict:
        raise UserError(f"--reference {missing[0]} is not a --pred set (sets: {', '.join(names)})")
    if not refs:
        raise UserError(f"none of the references {', '.join(missing)} is a set (sets: {', '.join(names)})")
    return refs, missing


def resolve_registry(truth_dir: Path, classes: Path | None,
                     ignore: Sequence[str] = ()) -> tuple[ClassRegistry, str, str | None]:
    """``--classes`` if given, else the nearest classes.json at the truth folder or up to two levels above
    (the layout DATA/test/b), else SPARCS with a warning; ``ignore``: ``--ignore-class`` names. Returns
    (registry, source, warning or None)."""
    if classes is not None:
        return load_registry(classes, ignore=ignore), str(classes), None
    found = find_upward(truth_dir, "classes.json", up=2)
    if found is not None:
        return load_registry(found, ignore=ignore), str(found), None
    return SPARCS.without(ignore), SPARCS_SOURCE, (f"no classes.json in {truth_dir} or the two folders above it: the built-in "
                                   "SPARCS classes are used (pass --classes FILE for other classes)")


def describe_sets(sets: Mapping[str, Sequence[Path]]) -> dict[str, list[str]]:
    return {k: [str(r) for r in v] for k, v in sets.items()}
