"""Training logs: a CSV file that survives a resume, and TensorBoard scalars.

The CSV is appended row by row (a killed run loses at most the row being written) and, on resume, cut
back to the rows of the checkpoint being resumed, so the log of a resumed run is that of an
uninterrupted one. Only the chief writes.

Usage: ``log = CsvLog(out / "losses.csv", COLUMNS, chief)``; ``log.truncate_after(step)``;
``log.append(row)``; ``tb = Scalars(out / "logs", chief)``; ``tb.write(step, {"loss/d": 0.7})``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Sequence

from ..files import atomic_write_text


class CsvLog:
    def __init__(self, path: Path, columns: Sequence[str], chief: bool = True, key: str = "step"):
        self.path, self.columns, self.chief, self.key = Path(path), list(columns), chief, key

    def rows(self) -> list[dict]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as f:
            return [r for r in csv.DictReader(f) if _number(r.get(self.key)) is not None]

    def truncate_after(self, last: float) -> None:
        """Keep the rows up to ``last`` (the resumed checkpoint's step); they are about to be redone after."""
        if not self.chief:
            return
        rows = [r for r in self.rows() if _number(r[self.key]) <= last]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.path, buf.getvalue())

    def append(self, row: dict) -> None:
        if not self.chief:
            return
        new = not self.path.is_file()
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.columns, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)


def _number(v) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class Scalars:
    """TensorBoard scalars through the core summary op (works without the tensorboard package)."""

    def __init__(self, folder: Path, chief: bool = True):
        import tensorflow as tf

        self.writer = tf.summary.create_file_writer(str(folder)) if chief else None

    def write(self, step: int, values: dict[str, float]) -> None:
        if self.writer is None:
            return
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
        with self.writer.as_default(step=int(step)):
            for tag, v in values.items():
                if v is not None:
                    tf.summary.write(tag, tf.constant(float(v), tf.float32), step=int(step), metadata=meta)
        self.writer.flush()
