"""File helpers every module may use: atomic writes, JSON in and out. Imports nothing of the project.

Usage: ``write_json(path, data)``; ``with atomic_output(path) as tmp: fig.savefig(tmp)``;
``atomic_write_text(path, text)``; ``read_json(path)``; ``find_upward(folder, "classes.json", up=2)``;
``made = missing_folders(out)`` before creating ``out``, ``remove_empty_folders(made)`` if the work then fails.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def _tmp_path(path: Path) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); outputs should get the usual umask-based mode.
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    return Path(tmp)


@contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds, so an
    interrupted write never leaves a half-written file under the real name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)


def json_default(o):
    """JSON for the values stages record: paths, numpy scalars and arrays, sets and tuples."""
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_json(path: str | Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=json_default) + "\n")


def read_json(path: str | Path):
    """The parsed file; OSError and json.JSONDecodeError pass to the caller, who knows what to say."""
    return json.loads(Path(path).read_text())


def find_upward(folder: str | Path, name: str, up: int) -> Path | None:
    """``folder/name``, else the same name in up to ``up`` folders above (a data folder's files sit beside
    its sub-folders, e.g. ``DATA/classes.json`` for the pairs in ``DATA/train``); None if none exists."""
    folder = Path(folder)
    for d in [folder, *folder.parents][: up + 1]:
        if (d / name).is_file():
            return d / name
    return None


def missing_folders(folder: str | Path) -> list[Path]:
    """The folders ``folder.mkdir(parents=True)`` would create, deepest first."""
    folder = Path(folder)
    return [d for d in [folder, *folder.parents] if not d.exists()]


def remove_empty_folders(folders: list[Path]) -> None:
    """Undo ``missing_folders``' creation after a failure: each folder, deepest first, while it is empty."""
    for d in folders:
        try:
            d.rmdir()
        except OSError:
            return
