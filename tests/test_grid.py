"""The grid executor: cells and their checks, the serial and Dask executors, resume, failures, the thread
budget (the same bits from real trainings under both executors: test_kfold's resumed run)."""

from __future__ import annotations

import argparse
import json
import queue
from pathlib import Path
from types import SimpleNamespace

import grid_cells
import pytest

from landaug.errors import ArgumentParser, UserError, cli_main
from landaug.grid import Cell, ExecutorConfig, GridFailed, add_executor_options, check_grid, marker_path, run_grid
from landaug.grid import backends
from landaug.grid.options import local_cores, validate_executor
from landaug.grid.worker import probe

SERIAL1 = ExecutorConfig(executor="serial", threads=1)


def _write(root: Path, name: str, needs: tuple[str, ...] = (), **kw) -> Cell:
    return Cell(name, grid_cells.write, {"out": root / f"{name}.txt", "needs": [root / f"{n}.txt" for n in needs],
                                         **kw}, needs=needs)


def _runs(root: Path, name: str) -> int:
    path = root / f"{name}.runs"
    return len(path.read_text().splitlines()) if path.is_file() else 0


# ---- cells and their order --------------------------------------------------------------------------

def test_the_order_puts_every_cell_after_the_cells_it_needs_and_keeps_the_given_order_otherwise():
    f = "grid_cells:write"
    cells = [Cell("eval", f, needs=("seed0/baseline", "seed0/gan", "seed1/baseline")),
             Cell("seed0/gan", f, needs=("seed0/dcgan", "seed0/label")),
             Cell("seed0/label", f, needs=("seed0/baseline", "seed0/dcgan")),
             Cell("seed0/baseline", f, needs=("seed0/split",)),
             Cell("seed1/baseline", f, needs=("seed1/split",)),
             Cell("seed0/dcgan", f, needs=("seed0/split",)),
             Cell("seed0/split", f), Cell("seed1/split", f)]
    order = [c.name for c in check_grid(cells)]
    for c in cells:
        assert all(order.index(d) < order.index(c.name) for d in c.needs), (c.name, order)
    assert order[-1] == "eval"
    assert order.index("seed0/baseline") < order.index("seed1/baseline")


@pytest.mark.parametrize("cells, message", [
    ([Cell("a", "grid_cells:write"), Cell("a", "grid_cells:write")], "cell a is defined twice"),
    ([Cell("a", "grid_cells:write", needs=("gan",))], "cell a needs gan, which is not a cell of this grid"),
    ([Cell("a", "grid_cells:write", needs=("c",)), Cell("b", "grid_cells:write", needs=("a",)),
      Cell("c", "grid_cells:write", needs=("b",))], "cycle: a -> c -> b -> a"),
    ([Cell("a", "grid_cells:no_such_function")], "cell a: cannot import grid_cells:no_such_function"),
    ([Cell("a", "no_such_module:run")], "cell a: cannot import no_such_module:run"),
])
def test_bad_grids_are_refused_in_one_line_before_anything_runs(cells, message):
    with pytest.raises(UserError) as e:
        check_grid(cells)
    assert message in e.value.line() and "\n" not in e.value.line()


def test_a_cell_must_run_by_name_with_json_arguments():
    with pytest.raises(UserError, match="not a lambda"):
        Cell("a", lambda: None)
    with pytest.raises(UserError, match="its arguments must be JSON"):
        Cell("a", grid_cells.write, {"out": object()})
    with pytest.raises(UserError, match="cell name"):
        Cell("seed0/../x", grid_cells.write)
    cell = Cell("fold0/seed1/budget12/classic+masksynth", grid_cells.write, {"out": Path("/x/y")})
    assert cell.fn == "grid_cells:write" and cell.args == {"out": "/x/y"}


# ---- executor options -------------------------------------------------------------------------------

@pytest.mark.parametrize("cfg, message", [
    (ExecutorConfig(executor="spark"), "--executor 'spark' is not one of serial, dask"),
    (ExecutorConfig(workers=2), "--workers needs --executor dask"),
    (ExecutorConfig(scheduler="tcp://h:8786"), "--scheduler needs --executor dask"),
    (ExecutorConfig(executor="dask"), "--executor dask needs --workers N"),
    (ExecutorConfig(executor="dask", workers=2, scheduler="h:8786"), "not both"),
    (ExecutorConfig(executor="dask", workers=-1), "--workers must be at least 1"),
    (ExecutorConfig(executor="dask", scheduler="not an address"), "is not an address"),
    (ExecutorConfig(threads=-2), "--threads must be at least 1"),
])
def test_bad_executor_options_are_refused(cfg, message):
    with pytest.raises(UserError, match=message):
        validate_executor(cfg)


def test_the_options_parse_into_the_config_and_show_their_defaults():
    for default in (None, argparse.SUPPRESS):
        p = ArgumentParser(prog="x.py", argument_default=default)
        add_executor_options(p)
        assert ExecutorConfig.of(p.parse_args([])) == ExecutorConfig()
        cfg = ExecutorConfig.of(p.parse_args(["--executor", "dask", "--scheduler", "tcp://head:8786",
                                              "--threads", "4"]))
        assert (cfg.executor, cfg.workers, cfg.scheduler, cfg.threads) == ("dask", 0, "tcp://head:8786", 4)
    text = p.format_help()
    assert "serial (default)" in text and "--workers N" in text and "shared filesystem" in text
    with pytest.raises(UserError, match="--executor: invalid choice"):
        p.parse_args(["--executor", "ray"])


def test_a_cluster_whose_workers_do_not_see_the_run_folder_is_refused(tmp_path):
    blind = probe(str(tmp_path / "elsewhere" / "probe"), "token")
    assert not blind["seen"] and blind["why"] and blind["cores"] >= 1
    with pytest.raises(UserError) as e:
        backends.check_probe({"tcp://node7:4000": blind}, tmp_path, "--scheduler tcp://head:8786")
    assert "does not see the run folder" in e.value.line() and str(tmp_path) in e.value.line()
    with pytest.raises(UserError, match="cannot run landaug .ModuleNotFoundError"):
        backends.check_probe({"tcp://node7:4000": ModuleNotFoundError("No module named 'landaug'")}, tmp_path, "x")


def test_a_scheduler_that_does_not_answer_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(backends, "CONNECT_SECONDS", 1)
    with pytest.raises(UserError) as e:
        run_grid([_write(tmp_path, "a")], tmp_path, ExecutorConfig(executor="dask", scheduler="tcp://127.0.0.1:9"))
    assert "no Dask scheduler answered" in e.value.line() and "dask scheduler" in e.value.line()
    assert not (tmp_path / "a.txt").exists()


# ---- the serial executor ----------------------------------------------------------------------------

def test_serial_runs_in_order_reports_a_failure_and_finishes_the_rest(tmp_path, capsys):
    cells = [_write(tmp_path, "split"), _write(tmp_path, "gen", ("split",)),
             Cell("broken", grid_cells.fail, {"message": "no scenes left"}, needs=("split",)),
             _write(tmp_path, "arm", ("gen", "broken")), _write(tmp_path, "eval", ("arm", "gen")),
             _write(tmp_path, "other", ("gen",)), Cell("env", grid_cells.environment)]
    with pytest.raises(GridFailed) as e:
        run_grid(cells, tmp_path, SERIAL1, progress=False)
    res = e.value.result
    assert sorted(res.done) == ["env", "gen", "other", "split"] and list(res.failed) == ["broken"]
    assert res.skipped == {"arm": ["broken"], "eval": ["broken"]}
    lines = e.value.line().splitlines()
    assert lines[0] == "1 of 7 cells failed, 2 that need them were skipped"
    assert lines[1] == (f"failed: broken: exit code 1: RuntimeError: no scenes left "
                        f"(log: {tmp_path / 'logs' / 'broken.log'})")
    assert lines[2] == "skipped: arm, eval"
    assert "Traceback" in (tmp_path / "logs" / "broken.log").read_text()
    # The failure is reported as it happens, also without progress lines.
    assert "broken FAILED" in capsys.readouterr().err
    log = (tmp_path / "grid.log").read_text()
    assert "gen done in" in log and "0 failed, " in log and "1 failed" in log and "waiting" in log
    env = json.loads(marker_path(tmp_path, "env").read_text())
    assert env["TF_NUM_INTRAOP_THREADS"] == "1" and env["OMP_NUM_THREADS"] == "1" and env["ran_on"]["threads"] == 1
    executor = json.loads((tmp_path / "config.json").read_text())["executor"]
    assert executor["kind"] == "serial" and executor["threads"] == 1 and executor["threads_from"] == "--threads"
    # The run's command line ends on one line per failed cell, exit code 2.
    assert cli_main(lambda argv: run_grid(cells, tmp_path, SERIAL1, resume=True, progress=False), [], prog="x.py") == 2
    assert "x.py: error: 1 of 7 cells failed" in capsys.readouterr().err
    # Resume: finished cells are skipped, the failed one and those that need it are tried again.
    assert [_runs(tmp_path, n) for n in ("split", "gen", "other")] == [1, 1, 1]
    fixed = [c if c.name != "broken" else _write(tmp_path, "broken", ("split",)) for c in cells]
    result = run_grid(fixed, tmp_path, SERIAL1, resume=True, progress=False)
    assert sorted(result.earlier) == ["env", "gen", "other", "split"] and len(result.done) == 7
    assert [_runs(tmp_path, n) for n in ("split", "gen", "broken", "arm", "eval")] == [1, 1, 1, 1, 1]


def test_finished_cells_need_resume_and_keep_their_thread_budget(tmp_path):
    cells = [_write(tmp_path, "a")]
    run_grid(cells, tmp_path, SERIAL1, progress=False)
    with pytest.raises(UserError, match="pass --resume"):
        run_grid(cells, tmp_path, SERIAL1, progress=False)
    with pytest.raises(UserError, match="--threads 2 contradicts the finished cells .* computed with 1 threads"):
        run_grid(cells + [_write(tmp_path, "b")], tmp_path, ExecutorConfig(threads=2), resume=True, progress=False)
    run_grid(cells + [Cell("b", grid_cells.environment)], tmp_path, ExecutorConfig(), resume=True, progress=False)
    assert json.loads(marker_path(tmp_path, "b").read_text())["TF_NUM_INTRAOP_THREADS"] == "1"
    assert json.loads((tmp_path / "config.json").read_text())["executor"]["threads_from"] == "finished cells"


# ---- Dask -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_dask_runs_cells_as_soon_as_their_needs_finish_with_the_thread_budget(tmp_path):
    # "slow" waits until "late" has written its file: with a barrier per level of the graph, "late" (level 1)
    # would wait for "slow" (level 0) and "slow" would time out.
    cells = [_write(tmp_path, "slow", wait_for=str(tmp_path / "late.txt")), _write(tmp_path, "early"),
             _write(tmp_path, "late", ("early",)), Cell("broken", grid_cells.fail, {"message": "boom"}),
             _write(tmp_path, "after", ("broken",)), Cell("tf", grid_cells.tensorflow_threads, needs=("early",))]
    with pytest.raises(GridFailed) as e:
        run_grid(cells, tmp_path, ExecutorConfig(executor="dask", workers=2), progress=False)
    res = e.value.result
    assert sorted(res.done) == ["early", "late", "slow", "tf"] and list(res.failed) == ["broken"]
    assert res.skipped == {"after": ["broken"]}
    budget = max(1, local_cores() // 2)
    tf = json.loads(marker_path(tmp_path, "tf").read_text())
    assert (tf["intra"], tf["env"]["TF_NUM_INTRAOP_THREADS"]) == (budget, str(budget))
    assert tf["inter"] == min(2, budget) and tf["env"]["OPENBLAS_NUM_THREADS"] == str(budget)
    assert tf["env"]["MALLOC_TRIM_THRESHOLD_"] is None, "a cell inherited the Dask nanny's environment"
    assert not tf["sklearn_loaded"], "a cell paid for importing scikit-learn, which it never uses"
    executor = json.loads((tmp_path / "config.json").read_text())["executor"]
    assert (executor["kind"], executor["workers"], executor["threads"]) == ("dask", 2, budget)
    assert "late started" in (tmp_path / "grid.log").read_text()


class _Client:
    """What DaskBackend asks of a Dask client: its worker threads, and tasks it is handed."""

    def __init__(self, threads: int):
        self.threads, self.handed = threads, []

    def nthreads(self) -> dict:
        return {f"worker{i}": 1 for i in range(self.threads)}

    def submit(self, fn, spec, **kw):
        self.handed.append((spec["name"], kw["priority"]))
        return SimpleNamespace(add_done_callback=lambda cb: None)


def test_dask_gets_cells_only_as_worker_threads_free_up_earliest_in_the_grid_first():
    """Handed all at once, Dask queued 37 cells on one of two workers while the other idled."""
    backend = object.__new__(backends.DaskBackend)
    backend.__dict__.update(client=_Client(2), events=queue.Queue(), futures={}, pending=[], in_flight=set(),
                            token="t", topic="x")
    for i in (3, 1, 2, 0):
        backend.submit({"name": f"c{i}", "index": i})
    assert backend.poll(0.01) == [] and backend.client.handed == [("c0", 0), ("c1", -1)]
    backend.events.put(("running", "c1", None))
    backend.poll(0.01)
    assert len(backend.client.handed) == 2, "a cell that started is still running"
    # the worker's own event says the cell ended; its slot is free once the scheduler has seen the task end
    backend.events.put(("done", "c1", {}))
    assert backend.poll(0.01) == [("done", "c1", {})]
    backend.poll(0.01)
    assert len(backend.client.handed) == 2, "a slot the scheduler may still see busy took the next cell"
    backend.events.put(("freed", "c1", {}))
    assert backend.poll(0.01) == [("done", "c1", {})]
    backend.poll(0.01)
    assert backend.client.handed[2:] == [("c2", -2)] and backend.in_flight == {"c0", "c2"}


@pytest.mark.slow
def test_dask_submits_to_a_running_scheduler(tmp_path):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      dashboard_address=None) as cluster:
        cfg = ExecutorConfig(executor="dask", scheduler=cluster.scheduler_address, threads=1)
        run_grid([_write(tmp_path, "a"), _write(tmp_path, "b", ("a",))], tmp_path, cfg, progress=False)
    assert (tmp_path / "b.txt").is_file() and not list(tmp_path.glob(".grid-probe-*"))
    executor = json.loads((tmp_path / "config.json").read_text())["executor"]
    assert executor["scheduler"] == cluster.scheduler_address and executor["workers"] == 1
