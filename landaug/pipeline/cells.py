"""The run as a grid of cells (``landaug.grid``): stage 1, each (fold, seed)'s split, per place the
generators, the pseudo-labels and every arm's pix2pix (with its colour probes), and the evaluation last.

Each cell is a top-level function of JSON arguments that rebuilds the run from its folder (its
``config.json``) and calls one stage, so it runs the same in a fresh process here or on a Dask worker.
A cell starts once the cells it needs have finished: a place's split before its generators, a generator
before the arms that use its pairs, the ``gan`` arm after the baseline of the same place that
pseudo-labels its scenes, and the evaluation after every arm of every place. Cell names are the stage
markers' (``seed0/baseline``, ``fold1/seed0/budget6/masksynth``, ``eval``), so a run resumes across
versions and ``summary.md`` reads the records.

Usage: ``cells = build(cfg)``; ``say(grid_size(cells, cfg, root))``; ``records(cells, cfg)``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ..files import read_json
from ..grid import Cell, marker_path
from .options import ARMS, REFERENCES, resume_config, stored_config, synthetic_kinds
from .places import ALL, Place, bases, places

GENERATORS = {"gan": "dcgan", "paired": "paired_gan", "masksynth": "masksynth_generator"}


def _run(out: str):
    from .stages import Run

    cfg = resume_config({"out": Path(out)})
    cfg.progress = stored_config(Path(out)).get("progress", True)
    return Run(cfg)


def data(out: str) -> dict:
    from .stages import stage_data

    return stage_data(_run(out))


def split(out: str, seed: int, fold: int | None = None) -> dict:
    from .stages import stage_split

    return stage_split(_run(out), seed, fold)


def generator(out: str, place: dict, kind: str) -> dict:
    from .stages import stage_gan, stage_synth

    run, p = _run(out), Place(**place)
    return stage_synth(run, p) if kind == "masksynth" else stage_gan(run, p, paired=kind == "paired")


def label(out: str, place: dict) -> dict:
    from .stages import stage_label

    return stage_label(_run(out), Place(**place))


def arm(out: str, place: dict, arm: str) -> dict:
    """An arm's pix2pix, with the augmentations its probes chose (``--classic-color auto``)."""
    from .stages import chosen_augment, stage_cgan, synthetic_pairs

    run, p = _run(out), Place(**place)
    return stage_cgan(run, p, arm, chosen_augment(run, p, arm), synthetic_pairs(run, p, arm))


def probe(out: str, place: dict, arm: str, colour: bool) -> dict:
    """One of the two validation probes of ``--classic-color auto``: the arm with or without colour jitter."""
    from .stages import probes, stage_cgan, synthetic_pairs

    run, p = _run(out), Place(**place)
    name = probes(arm)[0 if colour else 1]
    augment = ARMS[arm].augment + (",color" if colour else "")
    return stage_cgan(run, p, name, augment, synthetic_pairs(run, p, arm))


def evaluate(out: str) -> dict:
    from .evaluation import stage_eval

    return stage_eval(_run(out))


def _place_cells(cfg, out: str, p: Place, split_cell: str) -> list[Cell]:
    """A place's generators, pseudo-labels, probes and arms, in the order they ran before the grid: the
    generators, then the references, then the other arms."""
    n, where = p.name, p.args()
    kinds = synthetic_kinds(cfg)
    cells = [Cell(f"{n}/{GENERATORS[k]}", generator, {"out": out, "place": where, "kind": k}, needs=(split_cell,))
             for k in ("gan", "paired", "masksynth") if k in kinds]
    order = (["baseline"] if "baseline" in cfg.arms or "gan" in kinds else []) + \
        [a for a in cfg.arms if a != "baseline"]
    order.sort(key=lambda a: a not in REFERENCES)
    for a in order:
        kind = ARMS[a].synthetic
        needs = [split_cell] + ([f"{n}/{GENERATORS[kind]}"] if kind else [])
        if kind == "gan":
            if not any(c.name == f"{n}/label" for c in cells):
                cells.append(Cell(f"{n}/label", label, {"out": out, "place": where},
                                  needs=(f"{n}/baseline", f"{n}/{GENERATORS['gan']}")))
            needs.append(f"{n}/label")
        if "dihedral" in ARMS[a].augment and cfg.classic_color == "auto":
            for colour, name in zip((True, False), (f"{a}-color-probe", f"{a}-plain-probe")):
                cells.append(Cell(f"{n}/{name}", probe, {"out": out, "place": where, "arm": a, "colour": colour},
                                  needs=tuple(needs)))
                needs.append(f"{n}/{name}")
        cells.append(Cell(f"{n}/{a}", arm, {"out": out, "place": where, "arm": a}, needs=tuple(needs)))
    return cells


def build(cfg) -> list[Cell]:
    """Every cell of the run, in the order the serial executor runs them."""
    out = str(Path(cfg.out).resolve())
    cells = [Cell("data", data, {"out": out})]
    for seed in range(cfg.seed, cfg.seed + cfg.seeds):
        for b in (b for b in bases(cfg) if b.seed == seed):
            cells.append(Cell(f"{b.base}/split", split, {"out": out, "seed": b.seed, "fold": b.fold}, needs=("data",)))
        for p in (p for p in places(cfg) if p.seed == seed):
            cells += _place_cells(cfg, out, p, f"{p.base}/split")
    arms = [f"{p.name}/{a}" for p in places(cfg) for a in cfg.arms]
    cells.append(Cell("eval", evaluate, {"out": out}, needs=tuple(arms)))
    return cells


def _kind(cfg, cell: Cell) -> tuple[str, str]:
    """What a cell trains or does, and how long one such training is, for the size of the grid."""
    fn = cell.fn.rpartition(":")[2]
    if fn in ("arm", "probe"):
        return f"{cfg.labeller} training", f"{cfg.cgan_steps} steps" if cfg.cgan_steps else f"{cfg.cgan_epochs} epochs"
    if fn == "generator":
        kind = cell.args["kind"]
        steps = cfg.synth_steps if kind == "masksynth" else cfg.gan_steps
        what = {"gan": "DCGAN", "paired": "paired GAN", "masksynth": "mask-to-photo generator"}[kind]
        return f"{what} training", f"{steps} steps"
    return {"data": ("stage-1 preparation", ""), "split": ("split", ""), "label": ("pseudo-labelling", ""),
            "evaluate": ("evaluation", "")}[fn]


def grid_size(cells: list[Cell], cfg, root: Path) -> str:
    """The size of the grid before it runs: the cells of each kind (trainings with their length), and, when
    some finished before, the cell time left at their mean time per kind."""
    kinds = {c.name: _kind(cfg, c) for c in cells}
    counts = Counter(kinds.values())
    parts = [f"{n} {what}{'s' if n > 1 else ''}" + (f" of {length}" if length else "")
             for (what, length), n in counts.items()]
    finished = {c.name: read_json(marker_path(root, c.name)) for c in cells if marker_path(root, c.name).is_file()}
    line = f"the grid: {len(cells)} cells: {', '.join(parts)}"
    if not finished:
        return line
    seconds: dict[tuple, list[float]] = {}
    for name, record in finished.items():
        seconds.setdefault(kinds[name], []).append(float(record.get("seconds") or 0))
    left = [kinds[c.name] for c in cells if c.name not in finished]
    known = [seconds[k] for k in left if k in seconds]
    estimate = sum(sum(s) / len(s) for s in known)
    unknown = len(left) - len(known)
    return (f"{line}; {len(finished)} finished before, {len(left)} left: about {estimate / 3600:.1f} h of cell time at "
            f"the finished cells' mean time per kind" + (f", and {unknown} cells of kinds not yet timed" if unknown
                                                          else ""))


def records(cells: list[Cell], cfg) -> dict[str, dict]:
    """The markers of the finished cells, by name, and those of the full budget taken from another run."""
    root = Path(cfg.out)
    found = {c.name: read_json(marker_path(root, c.name)) for c in cells if marker_path(root, c.name).is_file()}
    if cfg.full_budget_from is not None:
        other = Path(cfg.full_budget_from)
        for p in bases(cfg):
            for a in cfg.arms:
                name = f"{Place(p.seed, p.fold, ALL).name}/{a}"
                if marker_path(other, name).is_file():
                    found.setdefault(name, {**read_json(marker_path(other, name)), "from": str(other)})
    return found
