"""Where a grid's cells run: ``--executor serial|dask``, ``--workers``, ``--scheduler``, ``--threads``, and
their checks before any work.

Every cell runs in a fresh process with a TensorFlow thread budget: ``--threads`` intra-op threads (and
at most 2 inter-op threads). TensorFlow's float results differ in their last bits between thread counts
(also with op determinism), so the budget is part of the cell: the same budget gives bitwise the same
cell under every executor, and a resumed run keeps the budget its finished cells were computed with.
By default it is the cores each cell slot gets: all cores in serial, cores // N with ``--workers N``.

Usage: ``add_executor_options(parser)``; ``cfg = ExecutorConfig.of(namespace_or_config)``;
``validate_executor(cfg)``.
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import dataclass, fields

from ..errors import UserError, warn

EXECUTORS = ("serial", "dask")
EXECUTOR_FIELDS = ("executor", "workers", "scheduler", "threads")
_ADDRESS = re.compile(r"([a-z][a-z0-9+]*://)?[^\s/:]+(:\d{1,5})?")


@dataclass
class ExecutorConfig:
    executor: str = "serial"          # serial | dask
    workers: int = 0                  # dask: start a local cluster of this many single-threaded workers
    scheduler: str | None = None      # dask: the address of a running scheduler instead
    threads: int = 0                  # TensorFlow intra-op threads per cell; 0: cores // cell slots

    @classmethod
    def of(cls, source) -> "ExecutorConfig":
        """The executor options of a parsed command line or of any configuration that carries them
        under the same names (absent or None: the defaults)."""
        values = vars(source) if isinstance(source, argparse.Namespace) else (
            source if isinstance(source, dict) else {f.name: getattr(source, f.name, None) for f in fields(cls)})
        return cls(**{k: values[k] for k in EXECUTOR_FIELDS if values.get(k) is not None})


def local_cores() -> int:
    """Cores this process may run on (its CPU affinity: a Slurm allocation or a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def inter_op_threads(threads: int) -> int:
    """Inter-op threads beside ``threads`` intra-op ones: these networks are chains of large ops, so a
    second inter-op thread is all that ever helps."""
    return min(2, threads)


def add_executor_options(p: argparse.ArgumentParser) -> None:
    """--executor, --workers, --scheduler and --threads with their help texts; their defaults come from
    the parser's ``argument_default`` (None or SUPPRESS), so ``ExecutorConfig.of`` fills them in."""
    g = p.add_argument_group("where the cells run (on --resume: where they ran before unless given; --threads cannot change)")
    g.add_argument("--executor", choices=EXECUTORS,
                   help="serial (default): one cell after another, each in a fresh process; dask: every cell as "
                        "soon as the cells it needs have finished, on a Dask cluster (--workers or --scheduler)")
    g.add_argument("--workers", type=int, metavar="N",
                   help="with --executor dask: start a local Dask cluster of N single-threaded workers")
    g.add_argument("--scheduler", metavar="ADDRESS",
                   help="with --executor dask: submit to the running Dask scheduler at ADDRESS (e.g. "
                        "tcp://head:8786); its workers must see the run folder at the same path (shared "
                        "filesystem) and import this landaug")
    g.add_argument("--threads", type=int, metavar="T",
                   help="TensorFlow intra-op threads of every cell (default: the cores // the cells that run at "
                        "once, so workers never oversubscribe the cores; a resumed run keeps its value, as "
                        "results differ in their last bits between thread counts)")


def validate_executor(cfg: ExecutorConfig) -> None:
    """Checked before any work; each message says how to fix the option."""
    if cfg.executor not in EXECUTORS:
        raise UserError(f"--executor {cfg.executor!r} is not one of {', '.join(EXECUTORS)}")
    if cfg.executor == "serial":
        for flag, value in (("--workers", cfg.workers), ("--scheduler", cfg.scheduler)):
            if value:
                raise UserError(f"{flag} needs --executor dask (the serial executor runs one cell at a time)")
    else:
        if cfg.workers < 0:
            raise UserError(f"--workers must be at least 1, got {cfg.workers}")
        if cfg.workers and cfg.scheduler:
            raise UserError("give --workers N (a local Dask cluster) or --scheduler ADDRESS (a running one), "
                            "not both")
        if not cfg.workers and not cfg.scheduler:
            raise UserError("--executor dask needs --workers N (a local Dask cluster) or --scheduler ADDRESS "
                            "(a running one)")
        if cfg.scheduler and not _ADDRESS.fullmatch(cfg.scheduler):
            raise UserError(f"--scheduler {cfg.scheduler!r} is not an address: give HOST:PORT or tcp://HOST:PORT "
                            f"(what 'dask scheduler' prints)")
        if cfg.workers > local_cores():
            warn(f"--workers {cfg.workers} on {local_cores()} cores: the cells will share the cores and each "
                 f"run slower")
    if cfg.threads < 0:
        raise UserError(f"--threads must be at least 1 (or 0: the cores // the cells that run at once), "
                        f"got {cfg.threads}")
