"""Checkpoints with exact resume, written by the chief only.

Every worker of a multi-worker run takes part in saving (variables may live on several devices), but
only the chief writes into the run folder; the others write a scratch folder beside it and remove it at
the end. A run killed while writing leaves temporary files that ``remove_partial_files`` clears before a
resume. Optimizers are checkpointed without their loss-scale wrapper, so a run may resume in another
precision (the scale re-adapts within a few steps).

Usage: ``ckpt = Checkpoints(objects, out / "ckpt", rt, keep=2)``; ``ckpt.resume(out, ("ckpt",))``; ``ckpt.save(step)``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..errors import UserError


def has_checkpoint(folder: Path) -> bool:
    """A checkpoint is complete once TensorFlow's state file names it."""
    return (Path(folder) / "checkpoint").is_file()


def _scratch(folder: Path) -> Path:
    task = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}").get("task", {})
    return folder.parent / f".{folder.name}_{task.get('type', 'worker')}{task.get('index', os.getpid())}"


def remove_partial_files(out: Path, folders: tuple[str, ...]) -> None:
    """Leftovers of a run killed while writing: checkpoint temp folders and atomic-write temp files."""
    out = Path(out)
    for name in folders:
        for p in (out / name).glob("*_temp*"):
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    for p in [*out.glob(".*.tmp*"), *out.glob("*/.*.tmp*")]:
        p.unlink(missing_ok=True)


class Checkpoints:
    """A ``tf.train.CheckpointManager`` over named objects, chief-aware, numbered by training step."""

    def __init__(self, objects: dict, folder: Path, rt, keep: int = 2):
        import tensorflow as tf

        self.folder = Path(folder)
        self.chief = rt.is_chief
        self.ckpt = tf.train.Checkpoint(**objects)
        target = self.folder if self.chief else _scratch(self.folder)
        self.manager = tf.train.CheckpointManager(self.ckpt, str(target), max_to_keep=keep, checkpoint_name="ckpt")

    def save(self, step: int) -> None:
        self.manager.save(checkpoint_number=int(step))

    def latest(self) -> str | None:
        import tensorflow as tf

        return tf.train.latest_checkpoint(str(self.folder))

    def saved_step(self) -> int | None:
        """The step of the latest checkpoint (they are numbered by step), None if there is none."""
        path = self.latest()
        return None if path is None else int(path.rsplit("-", 1)[1])

    def restore(self) -> None:
        """Restore the chief's latest checkpoint (every worker reads it); all objects must match."""
        import tensorflow as tf

        path = self.latest()
        if path is None:
            raise UserError(self.folder, "holds no readable checkpoint to resume")
        try:
            # restore(), not read(): it also sets the manager's save counter, which read() leaves behind
            # for TensorFlow to warn about; optimizer slots created later are restored when they appear.
            status = self.ckpt.restore(path)
            status.assert_existing_objects_matched()
            status.expect_partial()
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            raise UserError(path, f"checkpoint does not match this model ({str(e).splitlines()[0]})") from None

    def resume(self, out: Path, folders: tuple[str, ...]) -> None:
        """Continue a run: the chief clears what a killed run half-wrote, then every worker restores."""
        if self.chief:
            remove_partial_files(out, folders)
        self.restore()

    def close(self) -> None:
        if not self.chief:
            shutil.rmtree(self.manager.directory, ignore_errors=True)


def restore_objects(path_or_folder: Path, objects: dict, where: Path | None = None) -> str:
    """Read some objects (an inference model) out of a checkpoint that holds more; returns the path."""
    import tensorflow as tf

    p = Path(path_or_folder)
    path = tf.train.latest_checkpoint(str(p)) if p.is_dir() else str(p)
    if path is None:
        raise UserError(where or p, "holds no readable checkpoint")
    try:
        status = tf.train.Checkpoint(**objects).read(path)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (tf.errors.OpError, ValueError, AssertionError) as e:
        raise UserError(path, f"checkpoint does not match the model description ({str(e).splitlines()[0]})") from None
    return path
