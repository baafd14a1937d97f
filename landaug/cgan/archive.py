"""``cgan.py predict``: label maps of every photo of a folder tree or a glob, resumable, serially or on Dask.

Every photo ``--images`` finds (``options.predict_scenes``) is labelled strip by strip (``scene``) into
``--out``, under its scene name. A scene is complete when its label map (and, with ``--confidence``, its
confidence map) stands under its own name: maps are renamed into place only when whole, so ``--resume``
skips the complete scenes and labels the others again, whatever stopped the run before. A scene that
fails is named with its error at once and the others carry on; the run then ends with one line per
failed scene and exit code 2. ``OUT/summary.json`` lists every scene: its size, seconds, maps, status (and
error); each scene's record waits in ``OUT/.predict/`` until then.

``--executor serial`` (default) labels the scenes one after another in this process, the model loaded
once. ``--executor dask`` spreads them over Dask workers (``--workers N`` on this machine, ``--scheduler``
a cluster) with ``landaug.grid``: scenes are grouped, in name order, into cells of at least
``CELL_PIXELS`` (one large scene alone; at least one cell per local worker), each cell a fresh process
that loads the model once (a few seconds: TensorFlow's start and the checkpoint) and labels its scenes.
Progress counts scenes done and left, megapixels per second and the time left.

Usage: ``run_predict(cfg)`` after ``validate_inference(cfg)``; ``predict(model, images, out, confidence=True)``.
"""

from __future__ import annotations

import math
import threading
import time
import traceback
from pathlib import Path

from ..config import save_config
from ..errors import UserError
from ..files import read_json, write_json
from ..imgio import image_size
from ..progress import _clock, progress
from .infer import SceneLabeller
from .options import (CONFIDENCE_DIR, PREDICT_STAGE, PredictConfig, earlier_predictions, locked_predict,
                      predict_scenes, read_model_json, validate_inference)
from .scene import confidence_path, label_path, predict_photo

RECORDS = ".predict"        # OUT/.predict/<scene>.json: a scene's record, until the summary gathers them
SUMMARY = "summary.json"
CELL_PIXELS = 64e6          # a Dask cell's least work: TensorFlow's start and the model stay small beside it
CELL_PREFIX = "predict-"


def complete(out: Path, scene: str, confidence: bool) -> Path | None:
    """The label map of a scene whose maps are all in place, else None."""
    for tiff in (True, False):
        label = label_path(out, scene, tiff)
        if label.is_file() and (not confidence or confidence_path(out, scene).is_file()):
            return label
    return None


def _options(cfg: PredictConfig) -> dict:
    """What a scene's labelling needs besides the scene: JSON, for a Dask cell."""
    return {"model": str(cfg.model), "out": str(cfg.out), "checkpoint": cfg.checkpoint, "precision": cfg.precision,
            "overlap": cfg.overlap, "batch": cfg.batch, "tta": cfg.tta, "scale": cfg.scale,
            "confidence": cfg.confidence, "cog": cfg.cog}


def label_scenes(labeller: SceneLabeller, scenes: list[tuple[str, str]], opts: dict, heard=None) -> list[str]:
    """Label each (photo, scene) into ``opts["out"]``, writing its record; a failure is recorded and the
    next scene labelled. ``heard(record)`` after each. Returns the failed scenes."""
    out, failed = Path(opts["out"]), []
    for photo, scene in scenes:
        t0 = time.perf_counter()
        try:
            record = {**predict_photo(labeller, Path(photo), scene, out, opts["scale"], opts["confidence"],
                                      opts["cog"]), "status": "done"}
        except Exception as e:   # one scene's failure, whatever it is, must not stop the archive
            if not isinstance(e, UserError):
                traceback.print_exc()
            w, h = image_size(photo)
            error = e.line() if isinstance(e, UserError) else f"{type(e).__name__}: {e}"
            record = {"scene": scene, "photo": photo, "height": h, "width": w,
                      "seconds": round(time.perf_counter() - t0, 2), "status": "failed", "error": error}
            failed.append(scene)
        write_json(out / RECORDS / f"{scene}.json", record)
        if heard is not None:
            heard(record)
    return failed


def label_cell(scenes: list[list[str]], **opts) -> dict:
    """A Dask cell: load the model once, label its scenes; fails (after all of them) if any scene failed."""
    labeller = SceneLabeller.load(Path(opts["model"]), opts["checkpoint"], opts["precision"], opts["overlap"],
                                  opts["batch"], opts["tta"])
    failed = label_scenes(labeller, [tuple(s) for s in scenes], opts)
    if failed:
        raise UserError(f"{len(failed)} of {len(scenes)} scenes failed: {', '.join(failed)} (their errors are above "
                        f"and in {Path(opts['out']) / SUMMARY})")
    return {"scenes": len(scenes)}


class _Board:
    """Progress over scenes: done and left, megapixels per second and the time left; a failed scene's line."""

    def __init__(self, todo: list[tuple[str, str, int]], earlier: int, enabled: bool):
        self.pixels = {scene: px for _, scene, px in todo}
        self.left_px, self.done_px, self.t0 = sum(self.pixels.values()), 0, time.monotonic()
        self.bar = progress(total=len(todo) + earlier, desc="cgan predict", enabled=enabled, unit="scene",
                            initial=earlier)

    def heard(self, record: dict) -> None:
        px = self.pixels.get(record["scene"], 0)
        self.left_px -= px
        if record["status"] == "failed":
            self.bar.write(f"cgan predict: FAILED {record['photo']}: {record['error']}")
        else:
            self.done_px += px
        rate = self.done_px / 1e6 / max(time.monotonic() - self.t0, 1e-9)
        left = _clock(self.left_px / 1e6 / rate) if rate > 0 else "?"
        self.bar.set_postfix(Mpx_s=f"{rate:.2f}", left=left)
        self.bar.update(1)


def _cells(todo: list[tuple[str, str, int]], workers: int) -> list[list[tuple[str, str]]]:
    """Consecutive scenes grouped into cells of about equal pixels, each at least ``CELL_PIXELS`` when the
    scenes allow, at least one per local worker."""
    total = sum(px for *_, px in todo)
    n = min(len(todo), max(math.ceil(total / CELL_PIXELS), workers, 1))
    groups: list[list[tuple[str, str]]] = [[] for _ in range(n)]
    before = 0
    for photo, scene, px in todo:
        groups[min(n - 1, int((before + px / 2) / max(total, 1) * n))].append((photo, scene))
        before += px
    return [g for g in groups if g]


def _on_dask(cfg: PredictConfig, todo: list[tuple[str, str, int]], board: _Board) -> dict:
    """Label ``todo`` in grid cells; the board hears each scene's record as a cell writes it."""
    from ..grid import Cell, ExecutorConfig, GridFailed, run_grid
    from ..grid.cells import STAGES_DIR

    out = Path(cfg.out)
    for marker in (out / STAGES_DIR).glob(f"{CELL_PREFIX}*.json"):
        marker.unlink()        # scenes, not cells, are what a resumed predict skips
    cells = [Cell(f"{CELL_PREFIX}{i:04d}", label_cell, {"scenes": g, **_options(cfg)})
             for i, g in enumerate(_cells(todo, cfg.workers))]
    stop, seen = threading.Event(), set()

    def watch():
        while True:
            last = stop.wait(1.0)
            for scene in [s for _, s, _ in todo if s not in seen]:
                path = out / RECORDS / f"{scene}.json"
                if path.is_file():
                    seen.add(scene)
                    board.heard(read_json(path))
            if last:
                return

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = run_grid(cells, out, ExecutorConfig.of(cfg), progress=False)
    except GridFailed as e:
        result = e.result
    finally:
        stop.set()
        watcher.join()
    lost = [name for name, o in result.failed.items() if "scenes failed:" not in o["error"]]
    return {"executor": result.executor, "cells": len(cells),
            "lost": [f"{name}: {result.failed[name]['error']} (log: {result.failed[name]['log']})" for name in lost]}


def _thread_budget(threads: int) -> None:
    from ..errors import warn
    from ..grid.child import thread_budget_on_import
    from ..grid.options import inter_op_threads

    try:
        thread_budget_on_import(threads, inter_op_threads(threads))
    except RuntimeError:
        warn(f"--threads {threads} comes too late: TensorFlow already runs in this process with its own threads")


def _start(cfg: PredictConfig, scenes) -> list[tuple[str, str, int]]:
    """Clear what an earlier run leaves that this one must not keep; the scenes still to label."""
    out = Path(cfg.out)
    if cfg.overwrite:
        for p in earlier_predictions(out):
            p.unlink()
    for folder in (out, out / CONFIDENCE_DIR, out / RECORDS):
        for p in folder.glob(".*.tmp*") if folder.is_dir() else []:
            p.unlink()          # a map a stopped run was writing
    todo = []
    for f in scenes:
        if cfg.resume and complete(out, f.scene, cfg.confidence):
            continue
        (out / RECORDS / f"{f.scene}.json").unlink(missing_ok=True)
        w, h = image_size(f.path)
        todo.append((str(f.path), f.scene, w * h))
    return todo


def run_predict(cfg: PredictConfig) -> list[Path]:
    """Label every scene (``validate_inference`` first); returns the label maps of all scenes, in order."""
    scenes = predict_scenes(cfg)
    out = Path(cfg.out)
    todo = _start(cfg, scenes)
    desc = read_model_json(cfg.model)
    info = dict(stage=PREDICT_STAGE, locked=locked_predict(cfg), n_scenes=len(scenes),
                scale=desc.get("scale") if cfg.scale is None else cfg.scale,
                fit=desc.get("fit") if cfg.scale is None else None, tta_used=cfg.tta or desc.get("tta", "none"))
    out.mkdir(parents=True, exist_ok=True)
    save_config(out / "config.json", cfg, **info)
    board = _Board(todo, len(scenes) - len(todo), cfg.progress)
    ran: dict = {"executor": {"kind": "serial"}, "lost": []}
    t0 = time.monotonic()
    try:
        if todo and cfg.executor == "dask":
            ran = _on_dask(cfg, todo, board)
        elif todo:
            if cfg.threads:
                _thread_budget(cfg.threads)
            labeller = SceneLabeller.load(cfg.model, cfg.checkpoint, cfg.precision, cfg.overlap, cfg.batch, cfg.tta)
            label_scenes(labeller, [(p, s) for p, s, _ in todo], _options(cfg), board.heard)
    finally:
        board.bar.close()
    return _finish(cfg, scenes, todo, info, ran, time.monotonic() - t0)


def _finish(cfg: PredictConfig, scenes, todo, info: dict, ran: dict, seconds: float) -> list[Path]:
    """summary.json and config.json; the label maps, or one error naming every failed scene."""
    out = Path(cfg.out)
    now = {s for _, s, _ in todo}
    rows = []
    for f in scenes:
        path = out / RECORDS / f"{f.scene}.json"
        record = read_json(path) if path.is_file() else {"scene": f.scene, "photo": str(f.path),
                                                          "status": "not labelled"}
        if f.scene not in now:
            record = {**record, "status": "done earlier"}
        rows.append(record)
    failed = [r for r in rows if r["status"] not in ("done", "done earlier")]
    write_json(out / SUMMARY, {"scenes": len(rows), "labelled": sum(r["status"] == "done" for r in rows),
                               "done_earlier": sum(r["status"] == "done earlier" for r in rows),
                               "failed": len(failed), "seconds": round(seconds, 1), "executor": ran["executor"],
                               "records": rows})
    save_config(out / "config.json", cfg, **info, n_images=len(rows) - len(failed), failed=len(failed),
                executor=ran["executor"], seconds=round(seconds, 1))
    if failed or ran["lost"]:
        lines = [f"{len(failed)} of {len(rows)} scenes failed (the others are in {out}; {out / SUMMARY} lists all; "
                 f"--resume labels the failed ones again)"]
        lines += [f"failed: {r['photo']}: {r.get('error', 'its cell ended before labelling it')}" for r in failed]
        lines += [f"failed cell {line}" for line in ran["lost"]]
        raise UserError("\n".join(lines))
    return [Path(r["label"]) if "label" in r else complete(out, r["scene"], cfg.confidence) for r in rows]


def predict(model, images, out="predict_CGAN", checkpoint: str = "best", batch: int = 32, overlap: float = 0.25,
            precision: str = "auto", progress: bool = True, scale: float | None = None, overwrite: bool = False,
            confidence: bool = False, tta: str | None = None, cog: bool = False, resume: bool = False,
            executor: str = "serial", workers: int = 0, scheduler: str | None = None, threads: int = 0,
            stems: list[str] | None = None) -> list[Path]:
    """Label maps (palette PNG, or label GeoTIFF for a georeferenced photo or one with gaps; each photo's own
    size) of every photo ``images`` finds (with ``stems``, of those scenes' photos only), named by scene; with
    ``confidence`` also the top class probability."""
    cfg = PredictConfig(Path(model), images, Path(out), checkpoint, batch, overlap, precision, progress, scale,
                        overwrite, confidence, tta, cog, resume, executor, workers, scheduler, threads,
                        None if stems is None else list(stems))
    validate_inference(cfg)
    return run_predict(cfg)

