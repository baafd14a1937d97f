"""The tables of docs/RESULTS.md's K-fold sections, from a K-fold run's report (``eval_report/``, or
``eval_so_far/`` of ``pipeline.py --report-so-far`` while it trains) and the run's markers: one row per arm
(test mIoU, mIoU over the truth classes, OA, differences against baseline and classic with their intervals,
scenes better, validation), then per-class IoU with each augmentation's change against classic.

Usage: python experiments/kfold_table.py RUN_DIR REPORT_DIR [BUDGET], e.g.
    python experiments/kfold_table.py runs/sparcs-budgets runs/sparcs-budgets/eval_so_far 6
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def _f(v: float | None, sign: bool = False) -> str:
    return "n/a" if v is None else (f"{v:+.3f}" if sign else f"{v:.3f}")


def _ci(ci: list | None) -> str:
    return "—" if not ci else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def validation(run: Path, arm: str, seeds: list[str], folds: int) -> str:
    """Best and last-five validation mIoU of an arm, each the mean over its folds and seeds."""
    marks = [json.loads((run / ".stages" / f"fold{f}__seed{s}__{arm}.json").read_text())
             for f in range(folds) for s in seeds]
    best = statistics.mean(m["best_val_miou"] for m in marks)
    last5 = statistics.mean(m["last5_val_miou"] for m in marks)
    return f"{best:.3f} / {last5:.3f}"


def arm_rows(report: dict, run: Path, seeds: list[str], folds: int) -> list[str]:
    sets, comps = report["sets"], report["comparisons"]
    rows = ["| arm | test mIoU | mIoU (truth classes) | OA | Δ vs baseline | 95% interval | Δ vs classic | "
            "95% interval | scenes better / worse than baseline | validation mIoU, best / last 5 |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for arm, s in sets.items():
        vb, vc = comps.get(f"{arm} vs baseline", {}), comps.get(f"{arm} vs classic", {})
        better = f"{vb['images_improved']} / {vb['images_worse']}" if vb else "—"
        rows.append(f"| {arm} | {_f(s['mean_iou'])} | {_f(s['mean_iou_present'])} | {_f(s['overall_accuracy'])} | "
                    f"{_f(vb.get('mean_iou_delta'), True) if vb else '—'} | {_ci(vb.get('mean_iou_delta_ci95'))} | "
                    f"{_f(vc.get('mean_iou_delta'), True) if vc else '—'} | {_ci(vc.get('mean_iou_delta_ci95'))} | "
                    f"{better} | {validation(run, arm, seeds, folds)} |")
    return rows


def class_rows(report: dict) -> list[str]:
    """Per-class test IoU, rare classes first, and each arm's change against classic with its interval."""
    sets, comps = report["sets"], report["comparisons"]
    first = next(iter(sets.values()))["per_class"]
    total = sum(c["support"] for c in first.values())
    names = sorted(first, key=lambda n: first[n]["support"])
    against = [a for a in sets if f"{a} vs classic" in comps]
    head = ["class", "test pixels", *sets, *(f"{a} − classic" for a in against)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        iou = [_f(s["per_class"][n]["iou"]) for s in sets.values()]
        delta = []
        for a in against:
            c = comps[f"{a} vs classic"]
            d, ci = c["per_class_iou_delta"].get(n), c["per_class_iou_delta_ci95"].get(n)
            delta.append("n/a" if d is None else f"{d:+.3f} {_ci(ci)}")
        rows.append(f"| {n} | {100 * first[n]['support'] / total:.2f} % | " + " | ".join(iou + delta) + " |")
    return rows


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print("\n".join(__doc__.strip().splitlines()[-2:]), file=sys.stderr)
        return 2
    run, reports = Path(argv[0]), Path(argv[1])
    budget = argv[2] if len(argv) == 3 else None
    own = reports / f"budget{budget}" / "report.json"
    report = json.loads((own if budget and own.is_file() else reports / "report.json").read_text())
    cfg = json.loads((run / "config.json").read_text())["config"]
    runs = {s["n_runs"] for s in report["sets"].values()}
    seeds = [str(cfg.get("seed", 0) + i) for i in range(max(runs))]
    places = [f"{s}__budget{budget}" if budget else s for s in seeds]
    print("\n".join(arm_rows(report, run, places, cfg["folds"]) + [""] + class_rows(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
