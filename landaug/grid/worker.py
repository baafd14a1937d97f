"""One cell in a fresh process, with its thread budget, its log and its outcome; the same code for the
serial executor and on every Dask worker, so a cell computes the same bits under both.

A fresh process per cell because TensorFlow sizes its thread pools once per process, before its first op:
only a new process can be given the cell's budget for sure. It also keeps Keras's global state (seeds,
precision policy, compiled functions) from leaking from one cell into the next, returns a training's
memory when it ends, and confines a crash or an out-of-memory kill to the cell that caused it. The cost,
importing TensorFlow again (a few seconds), is small beside a training.

Usage: ``proc = CellProcess(spec); proc.wait(timeout); outcome = proc.outcome()``; on a Dask worker
``run_cell(spec)``; ``probe(path, token)`` checks what a worker sees.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from .options import local_cores


def cell_env(spec: dict, drop: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of a cell's process: the thread budget for TensorFlow and for OpenMP/BLAS code,
    and the folders its function and this landaug are imported from; without the variables in ``drop``."""
    env = {k: v for k, v in os.environ.items() if k not in drop}
    threads = str(spec["threads"])
    env.update(TF_NUM_INTRAOP_THREADS=threads, TF_NUM_INTEROP_THREADS=str(spec["inter_op"]),
               OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    env["PYTHONPATH"] = os.pathsep.join([*spec["pythonpath"], *filter(None, [env.get("PYTHONPATH")])])
    return env


def nanny_environment() -> tuple[str, ...]:
    """The variables a Dask nanny set in this worker's environment for the worker's own sake. A cell must
    not inherit them: with MALLOC_TRIM_THRESHOLD_=65536 a pix2pix training spent six times the system
    time returning memory to the kernel and taking it back."""
    import dask

    preset = dask.config.get("distributed.nanny.pre-spawn-environ", {}) or {}
    return tuple(k for k, v in preset.items() if os.environ.get(k) == str(v))


class CellProcess:
    """``python -m landaug.grid.child`` for one cell, its output appended to the cell's log."""

    def __init__(self, spec: dict, drop_env: tuple[str, ...] = ()):
        self.spec = spec
        self.t0 = time.monotonic()
        self.proc: subprocess.Popen | None = None
        self.error: str | None = None
        log = Path(spec["log"])
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            with open(log, "a") as f:
                f.write(f"== cell {spec['name']} on {socket.gethostname()}, TensorFlow threads {spec['threads']} "
                        f"(inter-op {spec['inter_op']}), started {time.strftime('%Y-%m-%d %H:%M:%S')} ==\n")
            with open(log, "ab") as f:
                self.proc = subprocess.Popen([sys.executable, "-m", "landaug.grid.child"], stdin=subprocess.PIPE,
                                             stdout=f, stderr=subprocess.STDOUT, env=cell_env(spec, drop_env),
                                             cwd=spec["cwd"])
        except OSError as e:
            self.error = f"cannot start on {socket.gethostname()} ({e.strerror or e}: {e.filename or log})"
            return
        try:
            self.proc.stdin.write(json.dumps(spec).encode())
            self.proc.stdin.close()
        except BrokenPipeError:
            pass   # the process ended before reading its cell; its exit code and log say why

    def wait(self, timeout: float | None = None) -> bool:
        """True once the process has ended."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def outcome(self) -> dict:
        """``{"name", "status": done|failed, "seconds", "log", "error"}``; done only with a zero exit and a
        marker, which the cell's process writes last."""
        spec = self.spec
        out = {"name": spec["name"], "log": spec["log"], "seconds": round(time.monotonic() - self.t0, 1)}
        code = None if self.proc is None else self.proc.returncode
        if code == 0 and Path(spec["marker"]).is_file():
            return {**out, "status": "done"}
        if self.error is None and code < 0:
            self.error = f"killed by signal {-code}" + (" (out of memory?)" if code == -9 else "")
        elif self.error is None:
            tail = last_line(spec["log"])
            self.error = (f"exit code {code}" if code else "ended without writing its marker") + \
                (f": {tail}" if tail else "")
        return {**out, "status": "failed", "error": self.error}


def last_line(log: str | Path) -> str:
    """The last line a cell wrote (its error, when it failed), shortened for a one-line report."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 4096))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    line = lines[-1] if lines and not lines[-1].startswith("== cell ") else ""
    return line if len(line) <= 200 else line[:197] + "..."


def run_cell(spec: dict) -> dict:
    """The Dask task of one cell: runs it and returns its outcome, announcing its start and its outcome as
    events the client listens to (one ordered stream per worker, so a cell's end is heard before the start
    of the next cell on the same worker). A failing cell is an outcome, not an exception: never retried."""
    from distributed import get_worker

    worker = get_worker()
    worker.log_event(spec["topic"], {"cell": spec["name"]})
    proc = CellProcess(spec, drop_env=nanny_environment())
    proc.wait()
    outcome = proc.outcome()
    worker.log_event(spec["topic"], {"cell": spec["name"], "outcome": outcome})
    return outcome


def probe(path: str, token: str) -> dict:
    """What a Dask worker sees: whether it reads ``path`` as the client wrote it (a shared run folder), its
    host, its cores and any thread budget its environment sets."""
    try:
        seen = Path(path).read_text() == token
        why = "" if seen else "it holds other contents"
    except OSError as e:
        seen, why = False, e.strerror or str(e)
    env = os.environ.get("TF_NUM_INTRAOP_THREADS", "")
    return {"seen": seen, "why": why, "host": socket.gethostname(), "cores": local_cores(),
            "env_threads": int(env) if env.isdigit() and int(env) > 0 else None}
