"""The report as a reader sees it: report.md with the sets, one comparison table per reference, the
per-class and per-scene numbers, the figures, and how to read them.

Usage: ``text = render_markdown(report)``.
"""

from __future__ import annotations

import numpy as np

from .figures import figure_names


def fmt(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def signed(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:+.{digits}f}"


def pm(v, std, digits: int = 3) -> str:
    """Mean ± std; a value that is n/a has no spread to show, and a zero spread prints without a sign."""
    if v is None or std is None:
        return fmt(v, digits)
    return f"{fmt(v, digits)} ± {abs(std):.{digits}f}"


def ci_text(ci, digits: int = 3) -> str:
    return "n/a" if not ci else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def share(v) -> str:
    return "n/a" if v is None else f"{v:.0%}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = [[str(c).replace("|", "\\|") for c in r] for r in [header, *rows]]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return lines


def _sets(report: dict) -> list[str]:
    sets = report["sets"]
    rows = [[n, str(s["n_runs"]), str(s["n_scenes"]), pm(s["overall_accuracy"], s["overall_accuracy_std"]),
             pm(s["mean_iou"], s["mean_iou_std"]), pm(s["mean_iou_present"], s["mean_iou_present_std"]),
             pm(s["fw_iou"], s["fw_iou_std"]), pm(s["kappa"], s["kappa_std"]),
             pm(s["euclidean"]["mean_distance"], s["euclidean"]["mean_distance_std"], 1)]
            for n, s in sets.items()]
    L = ["## Sets", ""]
    L += table(["set", "runs", "scenes", "OA", "mIoU", "mIoU (truth classes)", "fw-IoU", "kappa",
                "Euclidean distance"], rows)
    L += ["", "Values are mean ± sample std over runs where a set has several runs.", ""]
    multi = [n for n, s in sets.items() if s["n_runs"] > 1]
    if multi:
        rows = [[n, r["path"], fmt(r["overall_accuracy"]), fmt(r["mean_iou"]), fmt(r["fw_iou"]), fmt(r["kappa"])]
                for n in multi for r in sets[n]["runs"]]
        L += ["### Runs", ""] + table(["set", "folder", "OA", "mIoU", "fw-IoU", "kappa"], rows) + [""]
    return L


def _per_class(report: dict) -> list[str]:
    sets = report["sets"]
    order = list(sets)
    names = [c["name"] for c in report["classes"]]
    first = sets[order[0]]["per_class"]
    L = ["## Per-class IoU", ""]
    rows = [[c, str(first[c]["support"])] + [pm(sets[n]["per_class"][c]["iou"], sets[n]["per_class"][c]["iou_std"])
                                             for n in order] for c in names]
    L += table(["class", "truth pixels"] + order, rows)
    L += ["", "n/a: the class is in neither the truth nor the prediction, so it has no IoU and is left out "
          "of the mIoU.", "", "### Precision, recall and F1", ""]
    rows = [[c] + [" / ".join(fmt(sets[n]["per_class"][c][k]) for k in ("precision", "recall", "f1"))
                   for n in order] for c in names]
    return L + table(["class"] + [f"{n} (P / R / F1)" for n in order], rows) + [""]


def _comparisons(report: dict) -> list[str]:
    comps = report["comparisons"]
    names = [c["name"] for c in report["classes"]]
    L = []
    for ref in report["meta"]["references"]:
        mine = {k: c for k, c in comps.items() if c["reference"] == ref}
        if not mine:
            continue
        L += [f"## Comparisons against `{ref}`", ""]
        rows = [[k, signed(c["mean_iou_delta"]), ci_text(c["mean_iou_delta_ci95"]), share(c["mean_iou_share_improved"]),
                 signed(c["mean_iou_present_delta"]), ci_text(c["mean_iou_present_delta_ci95"]),
                 signed(c["overall_accuracy_delta"]), ci_text(c["overall_accuracy_delta_ci95"]),
                 f"{c['images_improved']} / {c['images_worse']}", share(c["euclidean_improved_share"])]
                for k, c in mine.items()]
        L += table(["comparison", "Δ mIoU", "95% CI", "resamples better (mIoU; not a p-value)",
                    "Δ mIoU (truth classes)", "95% CI", "Δ OA", "95% CI", "scenes better / worse (mIoU)",
                    "scenes closer (Euclidean)"], rows)
        L += ["", "95% CI: two-level bootstrap over runs (seeds) and test scenes (see below); an interval that "
              "contains 0 means the runs and scenes at hand do not show a difference. Resamples better: the "
              f"{report['meta']['bootstrap']['share_improved']}.", "",
              f"### Per-class IoU change against `{ref}`", ""]
        rows = [[c] + [f"{signed(m['per_class_iou_delta'][c])} {ci_text(m['per_class_iou_delta_ci95'][c])}"
                       for m in mine.values()] for c in names]
        L += table(["class"] + list(mine), rows) + [""]
    return L


def _per_scene(report: dict) -> list[str]:
    sets = report["sets"]
    order = list(sets)
    ref = report["meta"]["references"][0]
    others = [n for n in order if n != ref]
    scenes = report["meta"]["scenes"]
    tiled = any(len(v) > 1 for v in scenes.values())
    header = ["scene"] + (["tiles"] if tiled else []) + [f"{n} mIoU" for n in order] + [f"Δ {n}" for n in others]
    rows = []
    for scene, stems in scenes.items():
        v = {n: sets[n]["per_scene"][scene]["mean_iou"] for n in order}
        d = [None if v[ref] is None or v[n] is None else v[n] - v[ref] for n in others]
        rows.append([scene] + ([str(len(stems))] if tiled else []) + [fmt(v[n]) for n in order]
                    + [signed(x) for x in d])
    note = (f"Δ: against `{ref}`. "
            + ("Tiles are grouped by scene; " + ("each pixel counted once (tiles.json)." if report["meta"]["tiles"]
                                                 else "without tiles.json, overlapping pixels count once per tile.")
               if tiled else ""))
    return ["## Per scene", ""] + table(header, rows) + ["", note.strip(), ""]


def _figures(report: dict) -> list[str]:
    meta = report["meta"]
    figs = meta.get("figures") or figure_names(report)
    L = ["## Figures", "", f"![Per-class IoU]({figs['per_class_iou']})", "",
         "Confusion matrices, each row normalised to 1 (where the pixels of a truth class went; grey: the "
         "class is absent from the truth):", ""]
    L += [f"![Confusion matrix of {n}]({f})" for n, f in figs["confusion"].items()] + [""]
    if figs.get("scenes"):
        shown = meta.get("scenes_shown") or []
        why = ("the scenes whose mIoU changed most between the first and the last set"
               if len(report["sets"]) > 1 else "the first scenes by name")
        L += [f"Test scenes ({why}; for sets with several runs, the first run is shown):", "",
              f"![Test scenes]({figs['scenes']})", "", "Shown: " + ", ".join(f"`{s}`" for s in shown), ""]
    return L


def _how_to_read(report: dict) -> list[str]:
    return [
        "## How to read these numbers", "",
        "- The confusion matrix counts pixels over all test scenes: rows are the truth, columns the prediction.",
        "- IoU of a class = TP / (TP + FP + FN); precision = TP / (TP + FP); recall = TP / (TP + FN); "
        "F1 = 2TP / (2TP + FP + FN); support = truth pixels of the class.",
        "- OA (overall accuracy) = correctly labelled pixels / all pixels; it is dominated by the large classes.",
        "- mIoU = mean IoU over the classes whose union TP + FP + FN is non-zero; a class absent from both "
        "truth and prediction is n/a, not 0, and is not averaged. mIoU (truth classes) averages only the "
        "classes with truth pixels.",
        "- fw-IoU = IoU of each class weighted by its share of the truth pixels.",
        "- kappa (Cohen's) = agreement beyond chance, (OA - pe) / (1 - pe) with pe the agreement expected "
        "from the class frequencies alone.",
        "- Euclidean distance: the paper's metric, kept as a secondary measure. Per scene, the mean over "
        "pixels of the RGB distance between the class colours of prediction and truth, in float "
        f"(0 = identical, at most {np.sqrt(3) * 255:.1f}); the table averages the scenes. It depends on "
        "the arbitrary class colours, so IoU is the measure to trust.",
        "- Per scene: the same metrics on each test scene alone, to see which scene got better or worse.",
        f"- Bootstrap: {report['meta']['bootstrap']['method']}", ""]


def render_markdown(report: dict) -> str:
    meta = report["meta"]
    n_files, n_scenes = len(meta["stems"]), len(meta["scenes"])
    what = f"{n_scenes} test scenes" + (f" in {n_files} tiles" if n_files != n_scenes else "")
    refs = ", ".join(f"`{r}`" for r in meta["references"])
    L = ["# Evaluation report", "",
         f"Truth: `{meta['truth']}` ({what}); classes: {meta['classes_source']}; truth pixels with value "
         f"{meta['ignore_index']} are ignored. Reference set{'s' if len(meta['references']) > 1 else ''}: {refs}.",
         ""]
    L += [f"Warning: {w}." for w in meta.get("warnings", [])] + ([""] if meta.get("warnings") else [])
    L += _sets(report) + _per_class(report) + _comparisons(report) + _per_scene(report) + _figures(report)
    L += _how_to_read(report)
    return "\n".join(L)
