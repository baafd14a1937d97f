"""Where each part of a run works: one place per (fold, seed, label budget), with its folder and its split.

Without ``--folds`` a place is a seed (``seed<S>/``), tested on the scenes stage 1 set aside. With
``--folds K`` the labelled scenes are dealt into K folds (``folds.json``), each the test set of its
places once (``fold<F>/seed<S>/``); the other scenes train and validate. With ``--train-scenes`` each
(fold, seed) trains on nested subsets of its training scenes as well: budget N works in
``budget<N>/`` below it, and budget ``all`` (every training scene) in the folder itself, so a run with
budgets holds the layout of a run without them. Each place's ``split.json`` says which scenes it trains on.

Usage: ``for p in places(cfg): p.dir(root)``; ``split = base_split(cfg, scenes, test, seed, fold, groups)``;
``budget_split(split, 6)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from ..errors import UserError
from ..split import draw_split, nested_subsets

ALL = "all"
FOLDS_FILE = "folds.json"


def parse_budgets(text: str) -> tuple:
    """``--train-scenes 6,12,24,all``: scene counts in increasing order, ``all`` last."""
    budgets: list = []
    for word in (w.strip().lower() for w in str(text).split(",") if w.strip()):
        if word != ALL and not (word.isdigit() and int(word) > 0):
            raise UserError(f"--train-scenes {text}: {word!r} is neither a number of scenes (1 or more) nor all")
        value = ALL if word == ALL else int(word)
        if value in budgets:
            raise UserError(f"--train-scenes {text} names {value} twice")
        budgets.append(value)
    if not budgets:
        raise UserError("--train-scenes needs at least one budget, e.g. 6,12,all")
    return tuple(sorted(b for b in budgets if b != ALL)) + ((ALL,) if ALL in budgets else ())


def numeric(budgets: Sequence) -> list[int]:
    return [b for b in budgets if b != ALL]


@dataclass(frozen=True)
class Place:
    seed: int
    fold: int | None = None
    budget: int | str | None = None     # None: a run without budgets; ALL: every training scene

    @property
    def base(self) -> str:
        """The (fold, seed) folder: its split.json lists every budget's scenes."""
        return f"seed{self.seed}" if self.fold is None else f"fold{self.fold}/seed{self.seed}"

    @property
    def name(self) -> str:
        return self.base if self.budget in (None, ALL) else f"{self.base}/budget{self.budget}"

    def dir(self, root: Path) -> Path:
        return Path(root) / self.name

    def split_path(self, root: Path) -> Path:
        return self.dir(root) / "split.json"

    def args(self) -> dict:
        return {"seed": self.seed, "fold": self.fold, "budget": self.budget}

    def tag(self, cfg) -> str:
        """How a progress line names the place: ``fold 2/4 · seed 1/3 · 6 labelled scenes``."""
        parts = [] if self.fold is None else [f"fold {self.fold + 1}/{cfg.folds}"]
        parts.append(f"seed {self.seed - cfg.seed + 1}/{cfg.seeds}")
        if self.budget not in (None, ALL):
            parts.append(f"{self.budget} labelled scenes")
        return " · ".join(parts)


def report_budgets(cfg) -> list:
    """The budgets the report compares, smallest first: the run's own, and ``all`` from ``--full-budget-from``
    (``[None]`` without budgets)."""
    budgets = list(cfg.train_scenes) or [None]
    return budgets + [ALL] if cfg.full_budget_from is not None else budgets


def bases(cfg) -> list[Place]:
    """One place per (fold, seed): the folders that hold each split. Seeds outermost, so that a K-fold run
    stopped half-way has tested every scene once with its first seed rather than half the scenes twice."""
    folds = range(cfg.folds) if cfg.folds else [None]
    return [Place(cfg.seed + i, f) for i in range(cfg.seeds) for f in folds]


def places(cfg, budget=...) -> list[Place]:
    """Every place this run trains in (with ``budget``, only that budget's), in the order they run; the
    full budget of ``--full-budget-from`` is the other run's. Seeds outermost, then budgets, then folds: a
    run stopped part-way has tested every scene at its first budgets, which the report can already pool."""
    trained = [b for b in list(cfg.train_scenes) or [None] if not (b == ALL and cfg.full_budget_from)]
    seeds = [cfg.seed + i for i in range(cfg.seeds)]
    return [Place(b.seed, b.fold, x) for s in seeds for x in trained for b in bases(cfg)
            if b.seed == s and (budget is ... or x == budget)]


def base_split(cfg, scenes: Sequence[str], test: Sequence[str], seed: int, fold: int | None,
               groups: Mapping[str, str] | None) -> dict:
    """A (fold, seed)'s split: the given test scenes, validation drawn by the seed from the rest (whole
    groups), and with budgets each budget's nested subset of the training scenes under ``"budgets"``."""
    split = draw_split(scenes, test, cfg.val_fraction, seed, groups)
    if fold is not None:
        split.update(fold=fold, folds=cfg.folds)
    if numeric(cfg.train_scenes):
        split["budgets"] = nested_subsets(split["train"], numeric(cfg.train_scenes), seed, fold)
    return split


def budget_split(split: dict, budget: int) -> dict:
    """The split of one budget: its subset trains, validation and test as for the whole training set."""
    out = {k: v for k, v in split.items() if k != "budgets"}
    return {**out, "train": split["budgets"][str(budget)], "budget": budget, "train_available": len(split["train"])}


def check_budgets(cfg, splits: Mapping[Place, dict]) -> None:
    """Every budget fits the training scenes of every (fold, seed), before any work."""
    sizes = {p: len(s["train"]) for p, s in splits.items()}
    worst = min(sizes, key=sizes.get)
    largest = max(numeric(cfg.train_scenes), default=0)
    if largest > sizes[worst]:
        where = worst.base.replace("/", " ")
        raise UserError(f"--train-scenes {largest} is more than the {sizes[worst]} training scenes of {where} "
                        f"(after its test and validation scenes): the largest budget possible is {sizes[worst]}")


# What a run may differ in from the run whose full budget it takes: which arms, seeds and budgets it trains,
# where and how it runs. Anything else would make the other run's cells not the ones this run would train.
FULL_BUDGET_FREE = {"arms", "seeds", "train_scenes", "full_budget_from", "out", "resume", "progress", "command",
                    "executor", "workers", "scheduler", "threads"}


def check_full_budget_run(cfg, other: dict) -> None:
    """``--full-budget-from RUN``: RUN trained the full budget of every arm, fold and seed of this run the
    same way this run would (its finished cells are there), so its results can stand for budget all."""
    from ..config import config_dict
    from ..grid import marker_path

    run = cfg.full_budget_from
    ours = config_dict(cfg)
    for key, value in ours.items():
        if key in FULL_BUDGET_FREE or key not in other:
            continue
        mine = list(value) if isinstance(value, tuple) else value
        if other[key] != mine:
            raise UserError(run, f"--full-budget-from: that run has --{key.replace('_', '-')} {other[key]}, this "
                                 f"one {mine}: its cells are not the ones this run would train; give the same "
                                 f"options, or drop --full-budget-from")
    if other.get("full_budget_from") or (other.get("train_scenes") and ALL not in other["train_scenes"]):
        raise UserError(run, "--full-budget-from: that run did not train the full budget itself")
    if other.get("seeds", 1) < cfg.seeds:
        raise UserError(run, f"--full-budget-from: that run has {other.get('seeds', 1)} seed(s), this one "
                             f"--seeds {cfg.seeds}: use --seeds {other.get('seeds', 1)} or fewer")
    missing = [a for a in cfg.arms if a not in other.get("arms", [])]
    if missing:
        raise UserError(run, f"--full-budget-from: that run has no arm {missing[0]} (its arms: "
                             f"{', '.join(other.get('arms', []))}); drop it from --arms")
    for p in bases(cfg):
        for arm in cfg.arms:
            if not marker_path(run, f"{p.name}/{arm}").is_file():
                raise UserError(run, f"--full-budget-from: that run has not finished {p.name}/{arm}: finish it "
                                     f"first (pipeline.py --resume --out {run})")
