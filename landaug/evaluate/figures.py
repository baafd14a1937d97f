"""What the numbers look like: per-class IoU bars, confusion matrices and a grid of test scenes (PNG).

Photos of any number of bands are shown as the composite of ``bands.json`` beside them (stage 1's
``--rgb-bands``); without one, 8-bit RGB photos as they are and other photos stretched scene by scene.

Usage: ``figure_names(report)``; ``plot_per_class_iou(report, path)``; ``plot_confusion(cm, names, title,
path)``; ``plot_scenes(plan, report, pick_scenes(report, 6), path)``; ``plot_label_budget(rows, path)``.
matplotlib is imported on first use.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import metrics as M
from ..bands import BandStats, to_display
from ..classes import IGNORE_INDEX
from ..colours import ColourMatch
from ..errors import UserError
from ..files import atomic_output
from ..imgio import find_band_stats, read_label, read_model_photo, read_photo
from .plan import EvalPlan


def _slug(name: str, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "set"
    slug, k = base, 2
    while slug in taken:
        slug, k = f"{base}_{k}", k + 1
    taken.add(slug)
    return slug


def figure_names(report: dict) -> dict:
    taken: set[str] = set()
    return {"per_class_iou": "per_class_iou.png",
            "confusion": {n: f"confusion_{_slug(n, taken)}.png" for n in report["sets"]},
            "scenes": "scenes.png"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_fig(fig, path: Path) -> None:
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    finally:
        _pyplot().close(fig)


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def plot_per_class_iou(report: dict, path: Path) -> None:
    """Grouped bars: one group per class, one bar per set; error bars = std over runs."""
    plt = _pyplot()
    names = [c["name"] for c in report["classes"]]
    sets = list(report["sets"])
    x = np.arange(len(names))
    width = 0.8 / max(len(sets), 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(names) + 1.5), 4.2))
    for k, s in enumerate(sets):
        pc = report["sets"][s]["per_class"]
        vals = [pc[n]["iou"] for n in names]
        errs = [pc[n]["iou_std"] or 0.0 for n in names]
        pos = x - 0.4 + width * (k + 0.5)
        ax.bar(pos, [v if v is not None else 0.0 for v in vals], width,
               yerr=errs if report["sets"][s]["n_runs"] > 1 else None, capsize=2,
               label=f"{s} (mIoU {_fmt(report['sets'][s]['mean_iou'])})")
        for p, v in zip(pos, vals):
            if v is None:
                ax.text(p, 0.01, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("IoU")
    ax.set_title("Per-class IoU")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _save_fig(fig, path)


def plot_confusion(cm: np.ndarray, names: list[str], title: str, path: Path) -> None:
    """Confusion matrix normalised per truth row (each row: where that class's pixels went)."""
    plt = _pyplot()
    cm = np.asarray(cm, dtype=np.float64)
    norm = M.safe_divide(cm, cm.sum(axis=1, keepdims=True))
    c = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.65 * c, 0.8 + 0.6 * c))
    cmap = plt.get_cmap("Blues").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(norm), cmap=cmap, vmin=0, vmax=1)
    if c <= 15:
        for i in range(c):
            for j in range(c):
                v = norm[i, j]
                ax.text(j, i, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if (not np.isnan(v) and v > 0.6) else "black")
    ax.set_xticks(range(c), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(c), names, fontsize=8)
    ax.set_xlabel("prediction")
    ax.set_ylabel("truth")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    _save_fig(fig, path)


def pick_scenes(report: dict, n: int) -> list[str]:
    """With two or more sets, the scenes whose mIoU changed most between the first and the last set;
    with one set, the first scenes by name."""
    scenes = list(report["meta"]["scenes"])
    if n <= 0:
        return []
    sets = list(report["sets"])
    if len(sets) < 2:
        return scenes[:n]
    a, b = report["sets"][sets[0]]["per_scene"], report["sets"][sets[-1]]["per_scene"]

    def change(s):
        x, y = a[s]["mean_iou"], b[s]["mean_iou"]
        return -1.0 if x is None or y is None else abs(y - x)

    return sorted(scenes, key=lambda s: (-change(s), s))[:n]


def scene_image(plan: EvalPlan, scene: str, read, fill) -> np.ndarray:
    """A whole scene from its files: the file itself, the tiles laid out by tiles.json (each pixel from
    the tile that owns it), or, for tiles without tiles.json, the first tile."""
    k = plan.scene_names.index(scene)
    files = [i for i, s in enumerate(plan.scene_index) if s == k]
    tiles = [plan.tiles.get(plan.stems[i]) for i in files]
    if any(t is None for t in tiles):
        return read(files[0])
    t0 = tiles[0]
    first = read(files[0])
    canvas = np.full((t0.scene_height, t0.scene_width, *first.shape[2:]), fill, dtype=first.dtype)
    for i, t in zip(files, tiles):
        rows, cols = plan.windows[i]
        img = first if i == files[0] else read(i)
        canvas[t.top + rows.start:t.top + rows.stop, t.left + cols.start:t.left + cols.stop] = img[rows, cols]
    return canvas


def photo_display(path: Path, stats: BandStats | None) -> np.ndarray:
    """An 8-bit RGB picture of a photo (see the module's docstring)."""
    if stats is not None:
        try:
            return to_display(read_model_photo(path, stats).data, stats)
        except UserError:
            pass   # not the bands of bands.json: shown on its own terms below
    r = read_photo(path)
    n = r.data.shape[-1]
    if r.dtype == np.uint8 and n == 3:
        return r.data
    if not r.valid.any():
        return np.zeros((*r.data.shape[:2], 3), np.uint8)
    return to_display(r.data, BandStats.compute([(r.data, r.valid)], list(range(1, n + 1)), r.band_names))


def plot_scenes(plan: EvalPlan, report: dict, scenes: list[str], path: Path) -> None:
    """Rows = scenes; columns = photo (if given), truth, each set's prediction (its first run)."""
    plt = _pyplot()
    from matplotlib.patches import Patch

    reg = plan.registry
    cols = (["photo"] if plan.photo_files else []) + ["truth"] + list(plan.sets)
    ncol = 4
    legend_rows = -(-(len(reg) + 1) // ncol)
    legend_h = 0.3 + 0.2 * legend_rows          # inches below the grid: the last x-labels, then the legend
    height = 2.1 * len(scenes) + legend_h
    fig, axes = plt.subplots(len(scenes), len(cols), figsize=(2.1 * len(cols), height), squeeze=False)
    any_ignored = False
    stats = find_band_stats(plan.images_dir) if plan.photo_files else None
    for r, scene in enumerate(scenes):
        truth = scene_image(plan, scene, lambda i: read_label(plan.truth_files[i], reg, allow_ignore=True,
                                                              match=ColourMatch(plan.colour_tolerance)), IGNORE_INDEX)
        any_ignored |= bool((truth == IGNORE_INDEX).any())
        panels = []
        if plan.photo_files:
            panels.append(scene_image(plan, scene, lambda i: photo_display(plan.photo_files[i], stats), 0))
        panels.append(reg.colorize(truth))
        for name in plan.sets:
            pred = scene_image(plan, scene, lambda i: read_label(plan.pred_files[name][0][i], reg,
                                                                 match=ColourMatch(plan.colour_tolerance)), IGNORE_INDEX)
            any_ignored |= bool((pred == IGNORE_INDEX).any())
            panels.append(reg.colorize(pred))
        # a panel is ~200 px wide: subsampling large scenes first keeps the figure fast to draw
        step = max(1, -(-max(truth.shape) // 400))
        for c, (ax, img) in enumerate(zip(axes[r], panels)):
            ax.imshow(img[::step, ::step], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cols[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(scene, fontsize=8)
            if cols[c] in report["sets"]:
                ax.set_xlabel(f"mIoU {_fmt(report['sets'][cols[c]]['per_scene'][scene]['mean_iou'])}", fontsize=8)
    handles = [Patch(facecolor=np.array(c.color) / 255.0, edgecolor="black", label=c.name) for c in reg.classes]
    if any_ignored:
        handles.append(Patch(facecolor=(1, 0, 1), edgecolor="black", label="ignored"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), ncol), fontsize=8, frameon=False)
    fig.subplots_adjust(bottom=legend_h / height, top=1.0 - 0.3 / height, left=0.05, right=0.99,
                        wspace=0.08, hspace=0.25)
    _save_fig(fig, path)


def _interval_bars(value, ci) -> list[float]:
    """Error bar lengths (below, above) of a value with its interval (none without one)."""
    return [0.0, 0.0] if value is None or not ci else [max(0.0, value - ci[0]), max(0.0, ci[1] - value)]


def plot_label_budget(rows: list[dict], path: Path, references: tuple[str, ...] = ("baseline", "classic")) -> None:
    """Left: each arm's test mIoU against the labelled scenes it learned from; right: its gain over each
    reference (the first reference's over the second, the mirror of the second's over it, is left out).
    Rows: ``{"arm", "budget", "scenes", "mean_iou", "mean_iou_ci95", "gain_over_<ref>", ...}``; error bars
    are the 95% bootstrap intervals. Arms are nudged apart along the (logarithmic) scene axis."""
    plt = _pyplot()
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.0, 4.2))
    colours = plt.get_cmap("tab10")
    for k, arm in enumerate(arms):
        mine = sorted((r for r in rows if r["arm"] == arm), key=lambda r: r["scenes"])
        nudge = 1.0 + 0.025 * (k - (len(arms) - 1) / 2)
        xs = [r["scenes"] * nudge for r in mine]
        ys = [r["mean_iou"] for r in mine]
        bars = np.array([_interval_bars(r["mean_iou"], r.get("mean_iou_ci95")) for r in mine]).T
        left.errorbar(xs, [np.nan if y is None else y for y in ys], yerr=bars, marker="o", capsize=3,
                      color=colours(k % 10), label=arm)
        for ref, style in zip(references, ("-", "--")):
            gains = [r.get(f"gain_over_{ref}") for r in mine]
            mirrored = arm in references and references.index(arm) <= references.index(ref)
            if mirrored or all(g is None for g in gains):
                continue
            bars = np.array([_interval_bars(r.get(f"gain_over_{ref}"), r.get(f"gain_over_{ref}_ci95"))
                             for r in mine]).T
            right.errorbar(xs, [np.nan if g is None else g for g in gains], yerr=bars, marker="o", capsize=3,
                           linestyle=style, color=colours(k % 10), label=f"{arm} − {ref}")
    ticks = sorted({r["scenes"] for r in rows})
    whole = {r["scenes"] for r in rows if r.get("budget") == "all"}
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xticks(ticks, [f"all ({t:g})" if t in whole else f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("labelled training scenes")
        ax.grid(alpha=0.3)
    left.set_ylabel("test mIoU")
    left.set_title("Test mIoU (95% bootstrap interval)")
    left.legend(fontsize=8)
    right.axhline(0.0, color="black", linewidth=0.8)
    right.set_ylabel("Δ test mIoU")
    right.set_title("Gain over the references (solid: baseline, dashed: classic)")
    if right.get_legend_handles_labels()[0]:
        right.legend(fontsize=8)
    fig.tight_layout()
    _save_fig(fig, path)
