"""The run's evaluation: every arm on the same test scenes, per label budget, and how each arm's test mIoU
and its gains grow with the labelled scenes.

A run of an arm is one seed's predictions. Without ``--folds`` that is its prediction folder; with
``--folds`` it is the union of its folds' predictions, gathered as hard links in
``pooled/[budget<N>/]seed<S>/<arm>`` (a scene predicted twice, or not at all, is refused), so every
labelled scene is tested exactly once per seed and the two-level bootstrap resamples the seeds, then all
the scenes. With ``--train-scenes`` each budget has its own report (``eval_report/budget<N>/``; the largest
budget's is ``eval_report/`` itself), and ``eval_report/label_budget.png`` and ``label_budget.json`` and a
table in ``report.md`` give, against the number of labelled scenes, each arm's test mIoU and its gains over
``baseline`` and ``classic``, each with its bootstrap interval. The full budget of ``--full-budget-from``
is read from that run.

While a long run trains, ``pipeline.py --report-so-far --out RUN`` reports its finished part in
``eval_so_far/``: the budgets whose every arm has finished every fold for the first seeds, the most seeds
any budget has finished (cells run seeds first, then budgets, then folds, so that part grows budget by
budget).

Usage: ``stage_eval(run)`` (the grid's last cell); ``report_so_far(cfg)``; ``budget_table(rows)``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from ..errors import UserError
from ..files import atomic_write_text, read_json, write_json
from ..imgio import list_images
from .options import REFERENCES
from .places import ALL, Place, bases, report_budgets
from .stages import Run, fresh

PREDICTIONS = "Pred_test"
POOLED = "pooled"
REPORT = "eval_report"
SO_FAR = "eval_so_far"


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:   # another filesystem, or one without hard links
        shutil.copy2(src, dst)


def pool(run: Run, source: Path, budget, seed: int, arm: str, scenes: list[str], pooled: Path) -> Path:
    """One seed's run of an arm under K-fold: the predictions of all its folds in one folder below
    ``pooled``, each of ``scenes`` exactly once."""
    dest = fresh(pooled / ("" if budget in (None, ALL) else f"budget{budget}") / f"seed{seed}" / arm)
    dest.mkdir(parents=True)
    found: dict[str, Path] = {}
    for fold in range(run.cfg.folds):
        for p in list_images(Place(seed, fold, budget).dir(source) / arm / PREDICTIONS, "prediction folder"):
            if p.stem in found:
                raise UserError(p, f"scene {p.stem} was also predicted in {found[p.stem].parent}: the folds overlap")
            found[p.stem] = p
            _link(p, dest / p.name)
    missing = sorted(set(scenes) - set(found))
    if missing:
        raise UserError(dest, f"no fold predicted scene {missing[0]} (seed {seed}, arm {arm})")
    return dest


def prediction_runs(run: Run, budget, scenes: list[str], pooled: Path) -> dict[str, list[Path]]:
    """Each arm's runs (one a seed) at a budget: folders of predictions of all the test scenes."""
    cfg = run.cfg
    source = run.root
    if budget == ALL and cfg.full_budget_from is not None:
        source = Path(cfg.full_budget_from)
        _check_same_splits(run, source)
    sets = {}
    for arm in cfg.arms:
        seeds = [cfg.seed + i for i in range(cfg.seeds)]
        sets[arm] = ([pool(run, source, budget, s, arm, scenes, pooled) for s in seeds] if cfg.folds else
                     [Place(s, None, budget).dir(source) / arm / PREDICTIONS for s in seeds])
    return sets


def _check_same_splits(run: Run, other: Path) -> None:
    """The run whose full budget this one takes drew the same splits (the same options make them)."""
    for p in bases(run.cfg):
        ours, theirs = read_json(p.split_path(run.root)), read_json(p.split_path(other))
        for part in ("train", "val", "test"):
            if ours[part] != theirs.get(part):
                raise UserError(p.split_path(other), f"its {part} scenes are not those of {p.split_path(run.root)}: "
                                                     "--full-budget-from needs a run with the same splits")


def scene_counts(run: Run, budgets: list) -> dict:
    """Labelled training scenes per budget: N, or for ``all`` the mean over the folds and seeds."""
    sizes = [len(read_json(p.split_path(run.root))["train"]) for p in bases(run.cfg)]
    return {b: (sum(sizes) / len(sizes) if b == ALL else b) for b in budgets}


def budget_rows(reports: dict, counts: dict) -> list[dict]:
    """Per budget and arm: test mIoU, its interval, and its gain over each reference with its interval."""
    rows = []
    for budget, report in reports.items():
        for arm, s in report["sets"].items():
            row = {"budget": budget, "scenes": counts[budget], "arm": arm, "runs": s["n_runs"],
                   "mean_iou": s["mean_iou"], "mean_iou_ci95": s.get("mean_iou_ci95")}
            for ref in REFERENCES:
                c = report["comparisons"].get(f"{arm} vs {ref}")
                row[f"gain_over_{ref}"] = c["mean_iou_delta"] if c else None
                row[f"gain_over_{ref}_ci95"] = c["mean_iou_delta_ci95"] if c else None
            rows.append(row)
    return rows


def _value(v, ci, signed: bool = False) -> str:
    if v is None:
        return "–"
    form = "+.3f" if signed else ".3f"
    return f"{v:{form}}" + (f" [{ci[0]:{form}}, {ci[1]:{form}}]" if ci else "")


def _mirrored(arm: str, ref: str) -> bool:
    """A reference against itself, or baseline against classic: the mirror of classic against baseline."""
    return arm in REFERENCES and REFERENCES.index(arm) <= REFERENCES.index(ref)


def budget_table(rows: list[dict]) -> list[str]:
    """The label-budget figures as a markdown table, budgets in increasing order."""
    lines = ["| labelled scenes | arm | runs | test mIoU [95% interval] | gain over baseline | gain over classic |",
             "|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: r["scenes"]):
        scenes = f"{r['scenes']:g}" + (" (all)" if r["budget"] == ALL else "")
        gains = [_value(None if _mirrored(r["arm"], ref) else r[f"gain_over_{ref}"], r[f"gain_over_{ref}_ci95"],
                        signed=True) for ref in REFERENCES]
        lines.append(f"| {scenes} | {r['arm']} | {r['runs']} | {_value(r['mean_iou'], r['mean_iou_ci95'])} | "
                     f"{' | '.join(gains)} |")
    return lines


def budget_note(cfg) -> str:
    """What the label-budget table shows, and where its full budget comes from."""
    note = ("Each arm trained on nested random subsets of the training scenes of every fold and seed (written in "
            "its split.json); all: every training scene. Intervals: the two-level bootstrap over seeds and test "
            "scenes of each budget's report.")
    if cfg.full_budget_from is not None:
        note += (f" The full budget (all) is the run in `{cfg.full_budget_from}` (its first {cfg.seeds} seed(s)), "
                 "trained with the same options on the same splits.")
    return note


def stage_eval(run: Run, report: str = REPORT, note: str = "") -> dict:
    """Every arm of every budget against baseline and classic in ``run.root/report`` (the pooled K-fold
    predictions below it); ``note`` opens its report.md."""
    from ..classes import load_registry
    from ..evaluate import evaluate_sets
    from ..evaluate.figures import plot_label_budget

    cfg = run.cfg
    out = fresh(run.root / report)
    pooled = run.root / POOLED if report == REPORT else out / POOLED
    data = run.data / "images_CGAN" / ("scenes" if cfg.folds else "test")
    registry = load_registry(run.data / "images_CGAN" / "classes.json")
    scenes = [p.stem for p in list_images(data / "b", "truth mask folder")]
    budgets = report_budgets(cfg)
    reports = {}
    for budget in budgets:
        preds = prediction_runs(run, budget, scenes, pooled)
        refs = [r for r in REFERENCES if r in preds] or [next(iter(preds))]
        reports[budget] = evaluate_sets(data / "b", preds, registry, images_dir=data / "a", references=refs,
                                        out=out if budget == budgets[-1] else out / f"budget{budget}",
                                        progress=cfg.progress)
    record = {"report": str(out / "report.json"), "sets": list(reports[budgets[-1]]["sets"])}
    if budgets != [None]:
        rows = budget_rows(reports, scene_counts(run, budgets))
        write_json(out / "label_budget.json", rows)
        plot_label_budget(rows, out / "label_budget.png")
        section = ["", "## Label budgets", "", budget_note(cfg), "", *budget_table(rows), "",
                   "![label budget](label_budget.png)", ""]
        atomic_write_text(out / "report.md", (out / "report.md").read_text() + "\n".join(section))
        record["label_budget"] = str(out / "label_budget.json")
    if note:
        atomic_write_text(out / "report.md", f"{note}\n\n" + (out / "report.md").read_text())
    return record


def finished_part(cfg) -> tuple[int, list]:
    """The most seeds (the first S) for which some budget has finished every arm in every fold, and those
    budgets; the full budget of ``--full-budget-from`` is finished by that run."""
    from ..grid import marker_path

    folds = range(cfg.folds) if cfg.folds else [None]
    trained = [b for b in list(cfg.train_scenes) or [None] if not (b == ALL and cfg.full_budget_from)]

    def finished(seed: int, budget) -> bool:
        return all(marker_path(cfg.out, f"{Place(seed, f, budget).name}/{arm}").is_file()
                   for f in folds for arm in cfg.arms)

    for n in range(cfg.seeds, 0, -1):
        budgets = [b for b in trained if all(finished(cfg.seed + i, b) for i in range(n))]
        if budgets:
            return n, budgets
    first = Place(cfg.seed, 0 if cfg.folds else None, trained[0]).name
    raise UserError(cfg.out, f"nothing to report yet: no budget has finished every arm in every fold of its first "
                             f"seed (e.g. {first}); --report-so-far reports once one has")


def _words(budgets) -> str:
    return ", ".join(str(b) for b in budgets)


def report_so_far(cfg) -> Path:
    """The finished part of a run (which may still be training) in ``eval_so_far/``: its report.md opens by
    saying which seeds and budgets it holds. Nothing outside that folder is written."""
    seeds, budgets = finished_part(cfg)
    own = [b for b in budgets if b is not None]
    part = dataclasses.replace(cfg, seeds=seeds, train_scenes=tuple(own))
    note = (f"**Report so far** of a run that may still be training: its first {seeds} of {cfg.seeds} seed(s)" +
            (f", label budget(s) {_words(own)} of {_words(cfg.train_scenes)}" if own else "") +
            (f", and the full budget from `{cfg.full_budget_from}`" if cfg.full_budget_from else "") +
            ". Rerun `pipeline.py --report-so-far` as more cells finish; the run's own report is `eval_report/`.")
    stage_eval(Run(part), SO_FAR, note)
    return cfg.out / SO_FAR / "report.md"
