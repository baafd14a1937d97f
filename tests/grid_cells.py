"""Toy cells for tests/test_grid.py: importable by name in the cells' own processes, as real cells are."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path


def write(out: str, needs: list[str] = (), wait_for: str | None = None) -> dict:
    """Writes ``out`` after checking the files of the cells it needs exist; with ``wait_for``, first waits
    (up to a minute) for that file, which another cell running at the same time writes."""
    missing = [n for n in needs if not Path(n).is_file()]
    if missing:
        raise RuntimeError(f"ran before the cells it needs: {missing}")
    if wait_for:
        t = time.monotonic()
        while not Path(wait_for).is_file():
            if time.monotonic() - t > 60:
                raise RuntimeError(f"{wait_for} never appeared: the cells did not run at the same time")
            time.sleep(0.05)
    with open(Path(out).with_suffix(".runs"), "a") as f:
        f.write("ran\n")
    Path(out).write_text("ok")
    return {"out": out}


def fail(message: str) -> None:
    raise RuntimeError(message)


def environment() -> dict:
    """The thread budget the cell's process was given, and what a Dask nanny sets for its workers."""
    keys = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "MALLOC_TRIM_THRESHOLD_")
    return {k: os.environ.get(k) for k in keys}


def tensorflow_threads() -> dict:
    """The thread pools TensorFlow reports after running an op, and whether importing Keras also loaded
    scikit-learn."""
    import keras  # noqa: F401  (its import is what would load scikit-learn)
    import tensorflow as tf

    float(tf.reduce_sum(tf.ones((4, 4))))
    return {"intra": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter": tf.config.threading.get_inter_op_parallelism_threads(),
            "env": environment(), "sklearn_loaded": sys.modules.get("sklearn") is not None}
