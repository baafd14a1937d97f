"""How each prediction agrees with its truth: one confusion matrix per test file and run, then per scene.

Usage: ``cms, ignored = compute_confusions(plan)``; ``scene_cms = by_scene(cms[name], plan)``.

Each file's matrix covers only the pixels it owns (a tile's share of its scene, see ``plan``), less the
pixels that are 255 in the truth or in a label GeoTIFF prediction (no data). A whole 1000x1000 scene is a
few uint8 arrays at a time per worker; a matrix is C x C integers, so 8 scenes x 3
seeds x 6 sets stay small. PNG decoding releases the GIL, so a few threads overlap it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import metrics as M
from ..classes import IGNORE_INDEX
from ..colours import ColourMatch
from ..errors import UserError
from ..imgio import read_label
from ..progress import progress as progress_bar
from .options import SPARCS_SOURCE
from .plan import EvalPlan


def _read(path, plan: EvalPlan, allow_ignore: bool, match: ColourMatch) -> np.ndarray:
    try:
        return read_label(path, plan.registry, allow_ignore=allow_ignore, match=match)
    except UserError as e:
        if plan.registry_source != SPARCS_SOURCE:
            raise
        # The usual cause of a colour that is no class: the masks use other classes than SPARCS.
        raise UserError(e.where, f"{e.message} (classes: built-in SPARCS; pass --classes FILE)") from None


def compute_confusions(plan: EvalPlan, progress: bool = False,
                       workers: int | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per set an (n_runs, n_files, C, C) int64 stack of per-file confusion matrices over the owned
    pixels, and the ignored truth pixels per file. Reads each truth mask once; raises UserError on a bad
    mask, the first in name order. Classes that took several mask colours through ``--colour-tolerance`` are
    added to ``plan.warnings``."""
    c = len(plan.registry)
    match = ColourMatch(plan.colour_tolerance)
    n = len(plan.stems)
    cms = {name: np.zeros((len(runs), n, c, c), dtype=np.int64) for name, runs in plan.pred_files.items()}
    ignored = np.zeros(n, dtype=np.int64)

    def one(i: int):
        truth = _read(plan.truth_files[i], plan, allow_ignore=True, match=match)
        win = plan.windows[i] if plan.windows else None
        preds = {}
        for name, runs in plan.pred_files.items():
            for r, files in enumerate(runs):
                pred = _read(files[i], plan, allow_ignore=False, match=match)
                if pred.shape != truth.shape:
                    raise UserError(files[i], f"prediction is {pred.shape[1]}x{pred.shape[0]} but its truth "
                                              f"{plan.truth_files[i]} is {truth.shape[1]}x{truth.shape[0]}")
                preds[name, r] = pred
        # A label GeoTIFF's nodata (255: its photo had no data there) is no prediction: those pixels are left
        # out of every set's metrics, so all sets are scored on the same pixels.
        gaps = [p == IGNORE_INDEX for p in preds.values()]
        if any(g.any() for g in gaps):
            truth = np.where(np.logical_or.reduce(gaps), IGNORE_INDEX, truth).astype(np.uint8)
        owned = truth if win is None else truth[win]
        found = {k: M.confusion_matrix(owned, p if win is None else p[win], c) for k, p in preds.items()}
        return i, int((owned == IGNORE_INDEX).sum()), found

    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            progress_bar(total=n, desc="eval", enabled=progress, unit="file", leave=False) as bar:
        try:
            # map yields in file order, so the first bad file by name is the one reported
            for i, n_ignored, found in pool.map(one, range(n)):
                ignored[i] = n_ignored
                for (name, r), cm in found.items():
                    cms[name][r, i] = cm
                bar.update(1)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    plan.warnings += match.warnings(plan.registry)
    return cms, ignored


def by_scene(per_file: np.ndarray, plan: EvalPlan) -> np.ndarray:
    """Sum the file axis (axis 1 of (R, n_files, ...), or axis 0 of (n_files,)) into the plan's scenes."""
    per_file = np.asarray(per_file)
    axis = 1 if per_file.ndim > 1 else 0
    shape = list(per_file.shape)
    shape[axis] = len(plan.scene_names)
    out = np.zeros(shape, dtype=per_file.dtype)
    idx = np.asarray(plan.scene_index, dtype=np.intp)
    if axis == 1:
        np.add.at(out, (slice(None), idx), per_file)
    else:
        np.add.at(out, idx, per_file)
    return out
