"""Run a grid of cells to its end on the chosen executor: skip finished cells, start each cell once the
cells it needs have finished, carry on past a failure and report it, and say how far it got.

A failed cell is reported at once with its log; every cell that does not need it still runs; the cells
that need it are skipped and listed; at the end ``GridFailed`` names each failed cell on a line of its
own. Progress (cells done, running, failed, waiting, the time so far) is a bar on a terminal, plain
lines otherwise, and always a line per change in ``<root>/grid.log``. The executor and the thread
budget are recorded under ``"executor"`` in ``<root>/config.json``.

Usage: ``result = run_grid(cells, root, ExecutorConfig(executor="dask", workers=2), resume=False)``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..files import read_json, write_json
from ..progress import _clock, progress as progress_bar
from .backends import open_backend
from .cells import LANDAUG_ROOT, Cell, check_grid, dependants, import_root, log_path, marker_path
from .options import ExecutorConfig, inter_op_threads, validate_executor


@dataclass
class GridResult:
    done: list[str] = field(default_factory=list)              # finished, now or earlier
    earlier: list[str] = field(default_factory=list)           # finished before this run, skipped
    failed: dict[str, dict] = field(default_factory=dict)      # name -> outcome (error, log)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # name -> the failed cells it needs
    seconds: float = 0.0
    executor: dict = field(default_factory=dict)


class GridFailed(UserError):
    """Some cells failed: one line for each, then the cells skipped because they need them."""

    def __init__(self, result: GridResult):
        self.result = result
        lines = [f"{len(result.failed)} of {len(result.done) + len(result.failed) + len(result.skipped)} cells "
                 f"failed" + (f", {len(result.skipped)} that need them were skipped" if result.skipped else "")]
        lines += [f"failed: {name}: {o['error']} (log: {o['log']})" for name, o in result.failed.items()]
        if result.skipped:
            lines.append("skipped: " + ", ".join(result.skipped))
        super().__init__("\n".join(lines))


class Board:
    """The grid's progress: a bar (or plain lines) on stderr, a line per change in the grid's log."""

    def __init__(self, log: Path, state: dict[str, str], enabled: bool):
        self.t0 = time.monotonic()
        self.state = state
        self.enabled = enabled
        self.log = open(log, "a")
        done = sum(s == "done" for s in state.values())
        self.bar = progress_bar(total=len(state), desc="grid", unit="cell", initial=done, every=len(state) + 1,
                            enabled=enabled)

    def counts(self) -> str:
        n = {k: sum(s == k for s in self.state.values()) for k in ("done", "running", "failed", "waiting", "skipped")}
        self.bar.set_postfix(running=n["running"], failed=n["failed"], waiting=n["waiting"])
        skipped = f", {n['skipped']} skipped" if n["skipped"] else ""
        return (f"{n['done']}/{len(self.state)} done, {n['running']} running, {n['failed']} failed, "
                f"{n['waiting']} waiting{skipped}")

    def change(self, what: str, finished: int = 0, always: bool = False) -> None:
        """A line for a change: in the grid's log, and on stderr when progress is shown or ``always``."""
        self.bar.update(finished)
        line = f"[grid {_clock(time.monotonic() - self.t0)}] {what} · {self.counts()}"
        self.log.write(line + "\n")
        self.log.flush()
        if self.enabled or always:
            self.bar.write(line)

    def tick(self) -> None:
        """Keep a terminal bar's clock going while cells run (plain lines have their times)."""
        refresh = getattr(self.bar, "refresh", None)
        if refresh is not None:
            refresh()

    def close(self) -> None:
        self.bar.close()
        self.log.close()


def _earlier(order: list[Cell], root: Path, resume: bool) -> dict[str, dict]:
    found = {c.name: read_json(marker_path(root, c.name)) for c in order if marker_path(root, c.name).is_file()}
    if found and not resume:
        raise UserError(root, f"{len(found)} cells of this grid finished here before ({next(iter(found))}, ...): "
                              f"pass --resume to continue that run, or choose another --out")
    return found


def _budget(cfg: ExecutorConfig, earlier: dict[str, dict]) -> int | None:
    """The thread budget the finished cells were computed with, which a resumed run keeps."""
    budgets = sorted({r.get("ran_on", {}).get("threads") for r in earlier.values()} - {None})
    if cfg.threads and budgets and budgets != [cfg.threads]:
        raise UserError(f"--threads {cfg.threads} contradicts the finished cells of this run, computed with "
                        f"{budgets[0]} threads (TensorFlow's results differ in their last bits between thread "
                        f"counts): leave --threads out or give {budgets[0]}")
    return cfg.threads or (budgets[0] if budgets else None)


def record_executor(root: Path, record: dict) -> None:
    """``"executor"`` in the run's config.json (written by the run's stage before), or a config.json of
    its own for a grid run on its own."""
    path = root / "config.json"
    data = read_json(path) if path.is_file() else {"stage": "grid"}
    write_json(path, {**data, "executor": record})


def _spec(cell: Cell, index: int, root: Path, threads: int) -> dict:
    return {"name": cell.name, "index": index, "fn": cell.fn, "args": cell.args,
            "log": str(log_path(root, cell).resolve()), "marker": str(marker_path(root, cell.name)),
            "threads": threads, "inter_op": inter_op_threads(threads), "cwd": os.getcwd(),
            "pythonpath": sorted({str(LANDAUG_ROOT), str(import_root(cell.fn))})}


class _Progress:
    """The states of a run's cells (done, waiting, running, failed, skipped) as the executor reports them."""

    def __init__(self, order: list[Cell], earlier: dict, board_log: Path, enabled: bool):
        self.order = order
        self.state = {c.name: "done" if c.name in earlier else "waiting" for c in order}
        self.result = GridResult(earlier=list(earlier))
        self.submitted: set[str] = set()
        self.board = Board(board_log, self.state, enabled)

    def unfinished(self) -> bool:
        return any(s in ("waiting", "running") for s in self.state.values())

    def ready(self) -> list[Cell]:
        """Cells not yet submitted whose needs have all finished."""
        found = [c for c in self.order if self.state[c.name] == "waiting" and c.name not in self.submitted
                 and all(self.state[d] == "done" for d in c.needs)]
        self.submitted |= {c.name for c in found}
        return found

    def hear(self, kind: str, name: str, outcome: dict | None) -> None:
        if self.state[name] not in ("waiting", "running") or kind == "running" and self.state[name] == "running":
            return   # heard twice, or a start heard after the end
        if kind == "running":
            self.state[name] = "running"
            self.board.change(f"{name} started")
        elif outcome["status"] == "done":
            self.state[name] = "done"
            self.board.change(f"{name} done in {outcome['seconds']:.0f} s", finished=1)
        else:
            self.state[name] = "failed"
            self.result.failed[name] = outcome
            newly = 0
            for d in dependants(self.order, name):
                newly += self.state[d] == "waiting"
                if self.state[d] in ("waiting", "skipped"):
                    self.state[d] = "skipped"
                    self.result.skipped.setdefault(d, []).append(name)
            self.board.change(f"{name} FAILED: {outcome['error']} (log: {outcome['log']})", finished=1 + newly,
                              always=True)


def run_grid(cells: list[Cell], root: str | Path, cfg: ExecutorConfig, resume: bool = False,
             progress: bool = True) -> GridResult:
    """Run every cell not finished before; raises GridFailed when some failed (after all others ended)."""
    validate_executor(cfg)
    order = check_grid(cells)
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    earlier = _earlier(order, root, resume)
    kept = _budget(cfg, earlier)
    t0 = time.monotonic()
    with open_backend(cfg, root) as backend:
        threads = kept or backend.auto_threads
        record = {**backend.record, "threads": threads, "inter_op_threads": inter_op_threads(threads),
                  "threads_from": "--threads" if cfg.threads else "finished cells" if kept else backend.auto_from}
        record_executor(root, record)
        specs = {c.name: _spec(c, i, root, threads) for i, c in enumerate(order)}
        run = _Progress(order, earlier, root / "grid.log", progress)
        where = "serial" if record["kind"] == "serial" else f"dask, {record['workers']} workers"
        run.board.change(f"{len(order)} cells ({len(earlier)} finished before), {where}, TensorFlow threads per "
                         f"cell: {threads}")
        try:
            while run.unfinished():
                for c in run.ready():
                    backend.submit(specs[c.name])
                for event in backend.poll(1.0):
                    run.hear(*event)
                run.board.tick()
        finally:
            run.board.close()
    result = run.result
    result.done = [n for n, s in run.state.items() if s == "done"]
    result.seconds, result.executor = round(time.monotonic() - t0, 1), record
    if result.failed:
        raise GridFailed(result)
    return result
