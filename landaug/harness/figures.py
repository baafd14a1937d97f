"""Figures of a training run: one atomic PNG saver, image grids of samples, and curves from a CSV log.

Usage: ``save_figure(fig, out / "losses.png")``; ``write_image(path, image_grid([[photo, truth, pred], ...]))``;
``plot_log(rows, out / "losses.png", [Panel(("d_loss", "g_loss"), "loss", log=True)])``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..files import atomic_output
from ..geometry import resize_label, resize_photo


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path, dpi: int = 100, **savefig_kwargs) -> None:
    """Write a matplotlib figure atomically as PNG and close it."""
    try:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, **savefig_kwargs)
    finally:
        pyplot().close(fig)


def fit_cell(image: np.ndarray, cell: int, nearest: bool = False) -> np.ndarray:
    """An RGB image brought to ``cell`` px on its long side: large scenes shrink, small tiles grow in
    whole pixel blocks so their pixels stay visible."""
    h, w = image.shape[:2]
    if max(h, w) < cell:
        rep = max(1, cell // max(h, w))
        return np.repeat(np.repeat(image, rep, 0), rep, 1)
    size = (max(1, round(h * cell / max(h, w))), max(1, round(w * cell / max(h, w))))
    if nearest:
        return np.stack([resize_label(image[..., c], size, "nearest") for c in range(image.shape[-1])], -1)
    return resize_photo(image, size)


def image_grid(rows: Sequence[Sequence[np.ndarray]], cell: int = 0, gap: int = 2,
               nearest: Sequence[bool] | None = None) -> np.ndarray:
    """RGB uint8 images in rows, each fitted to ``cell`` px (0: as they are), white gaps between them."""
    fitted = [[fit_cell(im, cell, bool(nearest and nearest[j])) if cell else im for j, im in enumerate(row)]
              for row in rows]
    h = max(im.shape[0] for row in fitted for im in row)
    w = max(im.shape[1] for row in fitted for im in row)
    ncol = max(len(row) for row in fitted)
    canvas = np.full((len(fitted) * (h + gap) - gap, ncol * (w + gap) - gap, 3), 255, np.uint8)
    for r, row in enumerate(fitted):
        for c, im in enumerate(row):
            canvas[r * (h + gap): r * (h + gap) + im.shape[0], c * (w + gap): c * (w + gap) + im.shape[1]] = im
    return canvas


def tile_images(images: np.ndarray, cols: int = 4) -> list[list[np.ndarray]]:
    """A flat stack of images as rows of ``cols``."""
    return [list(images[i:i + cols]) for i in range(0, len(images), cols)] if len(images) else []


@dataclass
class Panel:
    keys: tuple[str, ...]
    ylabel: str
    log: bool = False
    twin: tuple[str, ...] = ()
    twin_label: str = ""


def plot_log(rows: list[dict], path: Path, panels: Sequence[Panel], x: str = "step") -> None:
    """One subplot per panel, curves of the CSV columns over ``x``; missing values are gaps."""
    if not rows:
        return
    plt = pyplot()
    xs = [float(r[x]) for r in rows]

    def col(k):
        return [float(r[k]) if r.get(k) not in ("", None) else math.nan for r in rows]

    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 3 * len(panels)), sharex=True, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        for k in panel.keys:
            ax.plot(xs, col(k), label=k, marker="o" if len(rows) < 30 else None)
        ax.set_ylabel(panel.ylabel)
        if panel.log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
        if panel.twin:
            ax2 = ax.twinx()
            for k in panel.twin:
                ax2.plot(xs, col(k), "s--", color="tab:red", label=k)
            ax2.set_ylabel(panel.twin_label, color="tab:red")
    axes[-1, 0].set_xlabel(x)
    fig.tight_layout()
    save_figure(fig, path)
