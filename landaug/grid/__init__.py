"""A grid of cells (fold x seed x budget x stage, or scenes to label) run to its end, serially or on a Dask
cluster, with the same results under both.

A cell is an importable function with JSON arguments, the cells it needs and a log; each runs in a fresh
process with a TensorFlow thread budget and leaves a marker when it finished, so ``--resume`` skips it.
A failed cell stops only the cells that need it. Files are the hand-off: with ``--scheduler`` the
workers must see the run folder (a shared filesystem), which is checked before any cell runs.

Modules: ``cells`` (cells, their order and checks), ``options`` (``--executor``, ``--workers``,
``--scheduler``, ``--threads``), ``worker`` (one cell in its process), ``child`` (that process),
``backends`` (serial and Dask), ``run`` (the grid to its end, progress, failures).

Usage: ``run_grid([Cell("seed0/split", "pkg.mod:split", {"seed": 0}), ...], "runs/x", ExecutorConfig.of(args),
resume=args.resume)``; ``add_executor_options(parser)``.
"""

from .cells import STAGES_DIR, Cell, check_grid, marker_path
from .options import EXECUTOR_FIELDS, EXECUTORS, ExecutorConfig, add_executor_options, validate_executor
from .run import GridFailed, GridResult, run_grid

__all__ = ["EXECUTORS", "EXECUTOR_FIELDS", "STAGES_DIR", "Cell", "ExecutorConfig", "GridFailed", "GridResult",
           "add_executor_options", "check_grid", "marker_path", "run_grid", "validate_executor"]
