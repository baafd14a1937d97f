"""``summary.md``: the page to read first after a run: the arms' test scores, their differences against
``baseline`` and ``classic`` with intervals over seeds and scenes, per-class IoU with the rare classes first,
validation scores, stage times and the command that reproduces the run.

Usage: ``path = write_summary(run, wall_seconds)``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..files import atomic_write_text


def machine_words(records: dict[str, dict]) -> str:
    """Where the run's cells ran, as their markers say ("Machine: ..." or, on a cluster, "Machines: ... (N
    cells); ..."), from the cells that listed their GPUs (the trainings) where any did. This process is
    described only for markers written before cells recorded their machine: on a cluster it is not where
    the trainings ran."""
    from collections import Counter

    from ..runtime import machine_description

    seen = [r["ran_on"]["machine"] for r in records.values() if r.get("ran_on", {}).get("machine")]
    listed = [m for m in seen if "GPUs not listed" not in m] or seen
    if not listed:
        return f"Machine: {machine_description()}"
    counts = Counter(listed)
    if len(counts) == 1:
        return f"Machine: {listed[0]}"
    return "Machines: " + "; ".join(f"{m} ({n} cell{'s' * (n != 1)})" for m, n in counts.most_common())


def _fmt(v, digits=3):
    return "n/a" if v is None else f"{v:.{digits}f}"


def _scale_words(data: dict) -> str:
    if data.get("scale") is None and data.get("fit"):
        return f"each scene fitted to the window, --fit {data['fit']}"
    return f"scale {_fmt(data.get('scale'), 4)}"


def _pm(v, std):
    return _fmt(v) if v is None or std is None else f"{_fmt(v)} ± {_fmt(std)}"


def _signed(v):
    return "n/a" if v is None else f"{v:+.3f}"


def _ci(ci):
    return "n/a" if not ci or ci[0] is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def _mean(values):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _test_words(cfg, data: dict) -> str:
    if cfg.folds:
        return f"{len(data.get('train_scenes', []))} whole scenes in {cfg.folds} folds, each tested once per seed"
    return f"{data.get('test_images', '?')} whole test scenes"


def describe_input(cfg) -> str:
    """The input in the words of the command line: which folders, which classes."""
    if cfg.demo:
        return "the project's synthetic scenes (`--demo`)"
    if cfg.sparcs is not None:
        return f"SPARCS scenes in `{cfg.sparcs}`"
    parts = [f"photos `{cfg.images}`, masks `{cfg.masks}`, classes "
             f"{f'`{cfg.classes}`' if cfg.classes is not None else 'SPARCS'}"]
    if cfg.ignore_class:
        parts.append(f"unlabelled: {', '.join(cfg.ignore_class)}")
    if cfg.colour_tolerance:
        parts.append(f"colour tolerance {cfg.colour_tolerance:g}")
    if cfg.group_by != "none":
        parts.append(f"split by {cfg.group_by}")
    return "; ".join(parts)


def arm_records(run, arm: str) -> list[dict]:
    """An arm's stage records at the budget the main report scores, over folds and seeds."""
    from .places import Place, bases, report_budgets

    top = report_budgets(run.cfg)[-1]
    return [run.records.get(f"{Place(b.seed, b.fold, top).name}/{arm}", {}) for b in bases(run.cfg)]


def _protocol(cfg) -> str:
    """How the test scenes and the splits were drawn, in the run's own layout."""
    if not cfg.folds:
        return ("Each seed drew its own validation scenes (`seed<S>/split.json`); every stage of a seed, GANs "
                "and band normalisation included, learned only from that split's training scenes.")
    return (f"The labelled scenes were dealt into {cfg.folds} folds (`folds.json`), each the test set once; each "
            "fold and seed drew its validation scenes from the other folds (`fold<F>/seed<S>/split.json`), and "
            "every stage of a fold and seed, GANs and band normalisation included, learned only from that "
            "split's training scenes. A seed's run of an arm is the union of its folds' predictions, so every "
            "scene is a test scene exactly once per seed.")


def _budget_lines(run) -> list[str]:
    from .evaluation import budget_note, budget_table

    path = run.root / "eval_report" / "label_budget.json"
    if not path.is_file():
        return []
    rows = json.loads(path.read_text())
    return ["", "## Label budgets", "", budget_note(run.cfg), "", *budget_table(rows), "",
            "![label budget](eval_report/label_budget.png)"]


def _arm_rows(run, sets: dict) -> list[str]:
    lines = ["| arm | test mIoU | mIoU (truth classes) | OA | validation mIoU, best | validation mIoU, mean of "
             "last 5 | labeller steps |", "|---|---|---|---|---|---|---|"]
    for arm, s in sets.items():
        recs = arm_records(run, arm)
        steps = sorted({r["steps"] for r in recs if r.get("steps")})
        lines.append(f"| {arm} | {_pm(s['mean_iou'], s.get('mean_iou_std'))} | "
                     f"{_pm(s.get('mean_iou_present'), s.get('mean_iou_present_std'))} | "
                     f"{_pm(s['overall_accuracy'], s.get('overall_accuracy_std'))} | "
                     f"{_fmt(_mean(r.get('best_val_miou') for r in recs))} | "
                     f"{_fmt(_mean(r.get('last5_val_miou') for r in recs))} | "
                     f"{'–'.join(map(str, steps)) if steps else 'n/a'} |")
    return lines


def _share_drawn(run, arm: str) -> str:
    """The synthetic share asked for and the share of all pairs drawn that was synthetic, over seeds."""
    cfg = run.cfg
    if not cfg.synthetic_share:
        return "appended"
    realised = _mean(r.get("synthetic_share_realised") for r in arm_records(run, arm))
    return (f"share {cfg.synthetic_share:g} of the pairs drawn over training (realised "
            f"{_fmt(realised)}, at batch {cfg.cgan_batch})")


def _arm_recipe(run, arm: str) -> str:
    """What an arm trains on, in the run's own settings."""
    from .options import ARMS

    cfg = run.cfg
    a = ARMS[arm]
    parts = [f"`--augment {a.augment}`"]
    if a.synthetic:
        what = {"gan": "DCGAN scenes pseudo-labelled by the baseline", "paired": "paired-GAN scenes with their labels",
                "masksynth": "photos rendered for new label layouts"}[a.synthetic]
        parts.append(f"{cfg.n_generated} {what}, {_share_drawn(run, arm)}")
    if a.copypaste:
        parts.append(f"copy-paste p {cfg.copypaste_p:g}, {cfg.copypaste_n} regions, rarity {cfg.copypaste_rarity:g}")
    if a.class_weights == "auto" or cfg.class_weights == "auto":
        parts.append("inverse-frequency class weights")
    return "; ".join(parts)


def _comparison_rows(comps: dict) -> list[str]:
    from .options import REFERENCES

    # "baseline vs classic" mirrors "classic vs baseline": each pair of references once.
    comps = {k: c for k, c in comps.items() if not (c["set"] in REFERENCES and c["reference"] in REFERENCES
                                                    and REFERENCES.index(c["set"]) < REFERENCES.index(c["reference"]))}
    lines = ["| comparison | Δ mIoU | 95% interval | Δ mIoU (truth classes) | 95% interval | resamples better | "
             "scenes better / worse |", "|---|---|---|---|---|---|---|"]
    for key, c in comps.items():
        share = c.get("mean_iou_present_share_improved")
        lines.append(f"| {key} | {_signed(c.get('mean_iou_delta'))} | {_ci(c.get('mean_iou_delta_ci95'))} | "
                     f"{_signed(c.get('mean_iou_present_delta'))} | {_ci(c.get('mean_iou_present_delta_ci95'))} | "
                     f"{'n/a' if share is None else f'{100 * share:.0f} %'} | "
                     f"{c.get('images_improved', 0)} / {c.get('images_worse', 0)} |")
    return lines


def _class_rows(run, sets: dict, names: list[str]) -> list[str]:
    first = next(iter(sets.values()))
    total = max(1, sum(first["per_class"][n]["support"] for n in names))
    share = {n: first["per_class"][n]["support"] / total for n in names}
    # Rare classes first: the ones augmentation is meant to help; classes absent from the test last.
    order = sorted(names, key=lambda n: (share[n] == 0, share[n]))
    lines = ["| class | test pixels | " + " | ".join(sets) + " |", "|---|---|" + "---|" * len(sets)]
    for name in order:
        lines.append(f"| {name} | {100 * share[name]:.2f} % | " + " | ".join(
            _pm(sets[a]["per_class"][name]["iou"], sets[a]["per_class"][name].get("iou_std") if run.cfg.seeds > 1
                else None) for a in sets) + " |")
    return lines


def write_summary(run, wall: float) -> Path:
    cfg = run.cfg
    report = json.loads((run.root / "eval_report" / "report.json").read_text())
    sets, comps = report["sets"], report.get("comparisons", {})
    names = [c["name"] for c in report["classes"]]
    data = run.records.get("data", {})
    own = {k: r for k, r in run.records.items() if "from" not in r}   # not the full budget of another run
    lines = [f"# Run `{run.root.name}`", "",
             f"Input: {describe_input(cfg)}; preset `{cfg.preset}`; arms {', '.join(cfg.arms)}; {cfg.seeds} seed(s); "
             f"{data.get('train_images', '?')} training {'tiles' if cfg.data_mode == 'tile' else 'images'} of "
             f"{cfg.size} px ({_scale_words(data)}) and {_test_words(cfg, data)}, labelled at their own size by "
             "sliding window and scored against their original masks. "
             f"Every arm's labeller: {cfg.labeller}, loss {cfg.loss}, Adam at {cfg.cgan_lr:g} (beta_1 "
             f"{cfg.cgan_beta1:g}) with a {cfg.lr_schedule} learning rate, decoder dropout {cfg.cgan_dropout:g}, "
             f"{cfg.upsample} upsampling, {'flip TTA' if cfg.tta == 'flips' else 'no TTA'}.", "",
             "Reproduce:", "", "```bash", cfg.command, "```", "",
             f"{machine_words(own)}. Wall time of this invocation: {wall / 60:.1f} min; of all its "
             f"stages, over every invocation (`--resume` included): "
             f"{sum(r.get('seconds', 0) for r in own.values()) / 60:.1f} min.", "",
             "## Test scores by arm", "",
             _protocol(cfg) + " The `best` "
             "checkpoint is the one with the highest validation mIoU over the classes present in the validation "
             "truth; beside it, the mean of the last five validation scores (a maximum over many evaluations is "
             "optimistic). Mean ± std over seeds. Labeller steps: " + ("the same for every arm (`--cgan-steps`)." if cfg.cgan_steps
                                                  else f"{cfg.cgan_epochs} epochs each, so arms with more pairs "
                                                  "train longer (`--cgan-steps N` equalises them)."), ""]
    lines += _arm_rows(run, sets)
    lines += ["", "| arm | trained on the split's training pairs with |", "|---|---|"]
    lines += [f"| {arm} | {_arm_recipe(run, arm)} |" for arm in sets]
    lines += ["", "mIoU (truth classes) leaves out classes that no test pixel has; plain mIoU counts them as 0 "
              "whenever an arm predicts a few pixels of them.", "", "## Differences", "",
              "Two-level paired bootstrap: each resample draws seeds and test scenes with replacement, the same "
              "draw for both arms, so an interval carries the seed-to-seed spread as well as the scenes'. "
              "\"Resamples better\" is the share of resamples in which the arm beats the reference (mIoU over "
              "the truth classes); it is not a p-value.", ""]
    lines += _comparison_rows(comps)
    lines += ["", "## Per-class IoU (test), rare classes first", "",
              "Mean ± std over seeds; test pixels is the class's share of the test scenes' pixels (a class with "
              "none has no IoU unless some arm predicts it, and then 0).", ""]
    lines += _class_rows(run, sets, names)
    lines += _budget_lines(run)
    lines += ["", "## Figures", "", "![per-class IoU](eval_report/per_class_iou.png)", "",
              "![test scenes](eval_report/scenes.png)", "",
              "The full report, with per-scene results and confusion matrices: "
              "[eval_report/report.md](eval_report/report.md).", "", "## Stages", "", "| stage | seconds |",
              "|---|---|"]
    lines += [f"| {k} | {v.get('seconds', '')} |" for k, v in own.items()]
    path = run.root / "summary.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path
