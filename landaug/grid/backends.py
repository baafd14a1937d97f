"""The two executors behind one interface: ``submit(spec)`` a cell whose needs are met, ``poll(timeout)``
for what happened since (``("running", name, None)``, ``("done", name, outcome)``, possibly twice for one
cell), ``close()``.

Serial runs the submitted cells one after another in the grid's order (``spec["index"]``), each in a
fresh process. Dask turns each submitted cell into a future on a ``LocalCluster`` of single-threaded
workers (``--workers``) or on a running scheduler (``--scheduler``); a cell is handed to Dask as soon as
the last cell it needs has finished and a worker thread is free, earliest in the grid's order first, so
nothing waits for a whole level of the graph and no worker idles while cells wait; the workers announce
each start as an event. Before any cell, the workers must show that they see the run folder
(they read a file the client wrote there), else one line refuses the cluster.

Usage: ``with open_backend(cfg, root) as backend: backend.submit(spec); events = backend.poll(1.0)``;
``backend.auto_threads`` is the default thread budget (``auto_from`` says whence), ``backend.record`` what
config.json records.
"""

from __future__ import annotations

import heapq
import logging
import queue
import uuid
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError
from .cells import LANDAUG_ROOT
from .options import ExecutorConfig, local_cores
from .worker import CellProcess, probe

CONNECT_SECONDS = 20
WORKERS_SECONDS = 60
ENVIRONMENT = (f"with this project's Python environment and PYTHONPATH={LANDAUG_ROOT} "
               f"(the path this machine sees, on a shared filesystem)")


class SerialBackend:
    def __init__(self):
        self.waiting: list[tuple[int, dict]] = []
        self.current: CellProcess | None = None
        self.auto_threads = local_cores()
        self.auto_from = "cores"
        self.record = {"kind": "serial", "cores": local_cores()}

    def submit(self, spec: dict) -> None:
        heapq.heappush(self.waiting, (spec["index"], spec))

    def poll(self, timeout: float) -> list[tuple]:
        if self.current is None:
            if not self.waiting:
                return []
            self.current = CellProcess(heapq.heappop(self.waiting)[1])
            return [("running", self.current.spec["name"], None)]
        if not self.current.wait(timeout):
            return []
        done, self.current = self.current, None
        return [("done", done.spec["name"], done.outcome())]

    def close(self) -> None:
        if self.current is not None:
            self.current.stop()


class DaskBackend:
    def __init__(self, cfg: ExecutorConfig, root: Path):
        import dask
        from distributed import Client, LocalCluster

        self.events: queue.Queue = queue.Queue()
        self.futures: dict[str, object] = {}
        self.pending: list[tuple[int, dict]] = []
        self.in_flight: set[str] = set()
        self.token = uuid.uuid4().hex[:12]
        self.topic = f"landaug-grid-{self.token}"
        self.cluster = None
        self.subscribed = False
        if cfg.workers:
            # Processes, one thread each: a worker holds one cell at a time. Memory is the cells' own
            # processes', which a worker's memory limit would not see, so none is set. The workers only wait
            # for their cells: sampling their threads every 10 ms and the system every 0.5 s would take a few
            # per cent of a core from the cells (three times the idle cost of a cluster without them).
            with dask.config.set({"distributed.worker.profile.enabled": False,
                                  "distributed.admin.system-monitor.interval": "5s",
                                  "distributed.admin.tick.interval": "200ms"}):
                self.cluster = LocalCluster(n_workers=cfg.workers, threads_per_worker=1, processes=True,
                                            dashboard_address=None, memory_limit=0, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)
        else:
            try:
                self.client = Client(cfg.scheduler, timeout=CONNECT_SECONDS)
            except (OSError, TimeoutError) as e:
                raise UserError(f"--scheduler {cfg.scheduler}: no Dask scheduler answered within "
                                f"{CONNECT_SECONDS} s ({e}): start one with 'dask scheduler'") from None
        try:
            seen = self._probe(cfg, root)
        except BaseException:
            self.close()
            raise
        self.client.subscribe_topic(self.topic, self._event)
        self.subscribed = True
        hosts: dict[str, dict] = {}
        for addr, w in self.client.scheduler_info()["workers"].items():
            if addr not in seen:   # joined after the probe; its cells fail with their reason if it is blind
                continue
            h = hosts.setdefault(w["host"], {"cores": seen[addr]["cores"], "slots": 0, "env": set()})
            h["slots"] += w["nthreads"]
            h["env"].add(seen[addr]["env_threads"])
        # The fewest cores a running cell gets on any host, unless the workers' environment sets a budget.
        per_host = [min(h["env"]) if None not in h["env"] else max(1, h["cores"] // h["slots"])
                    for h in hosts.values()]
        self.auto_threads = min(per_host)
        self.auto_from = "cores" if all(None in h["env"] for h in hosts.values()) else "workers' TF_NUM_INTRAOP_THREADS"
        self.record = {"kind": "dask", "workers": sum(h["slots"] for h in hosts.values()),
                       "hosts": len(hosts), "scheduler": None if self.cluster else cfg.scheduler,
                       "cores": {host: h["cores"] for host, h in hosts.items()}}

    def _probe(self, cfg: ExecutorConfig, root: Path) -> dict[str, dict]:
        """Every connected worker reads a file the client wrote in the run folder, or the run is refused."""
        where = "the local cluster" if self.cluster else f"--scheduler {cfg.scheduler}"
        try:
            self.client.wait_for_workers(1, timeout=WORKERS_SECONDS)
        except TimeoutError:
            raise UserError(f"{where}: no Dask worker joined within {WORKERS_SECONDS} s: start workers with "
                            f"'dask worker {cfg.scheduler} --nthreads 1' first") from None
        path = root / f".grid-probe-{self.token}"
        path.write_text(self.token)
        try:
            seen = self.client.run(probe, str(path), self.token, on_error="return")
            check_probe(seen, root, where)
            # A task, unlike client.run, passes through the scheduler, which must unpickle it too.
            try:
                self.client.submit(probe, str(path), self.token, pure=False).result(timeout=WORKERS_SECONDS)
            except Exception as e:
                raise UserError(f"{where}: the Dask scheduler cannot hand landaug's cells to its workers "
                                f"({one_line(e)}): start it {ENVIRONMENT}") from None
        finally:
            path.unlink(missing_ok=True)
        return seen

    def _event(self, event: tuple) -> None:
        msg = event[1]
        self.events.put(("done", msg["cell"], msg["outcome"]) if "outcome" in msg else ("running", msg["cell"], None))

    def submit(self, spec: dict) -> None:
        heapq.heappush(self.pending, (spec["index"], spec))

    def _hand_out(self) -> None:
        """Cells go to Dask only as its worker threads free up, earliest in the grid's order first. Handed
        over all at once, the scheduler places them in the workers' own queues by its guess of their length
        (unknown for a cell's first run): seen on two workers, one idle while 37 cells queued on the other."""
        if not self.pending:
            return
        from .worker import run_cell

        slots = max(1, sum(self.client.nthreads().values()))
        while self.pending and len(self.in_flight) < slots:
            spec = heapq.heappop(self.pending)[1]
            name = spec["name"]
            future = self.client.submit(run_cell, {**spec, "topic": self.topic}, key=f"{name}-{self.token}",
                                        pure=False, priority=-spec["index"])
            # The future alone knows of a task that never ran to its end, and only once it is done has the
            # scheduler seen the worker free: a slot counted free at the worker's own "done" event took the
            # next cell before that, and the scheduler could queue it behind a running cell on the same
            # worker while the other idled (seen for 5 s of a 65 s grid on two workers).
            future.add_done_callback(lambda f, name=name, spec=spec: self.events.put(("freed", name, _outcome(f, spec))))
            self.futures[name] = future
            self.in_flight.add(name)

    def poll(self, timeout: float) -> list[tuple]:
        self._hand_out()
        try:
            got = [self.events.get(timeout=timeout)]
        except queue.Empty:
            return []
        while not self.events.empty():
            got.append(self.events.get_nowait())
        self.in_flight -= {name for kind, name, _ in got if kind == "freed"}
        return [("done" if kind == "freed" else kind, name, outcome) for kind, name, outcome in got]

    def close(self) -> None:
        pending = [f for f in self.futures.values() if not f.done()]
        if pending:
            self.client.cancel(pending)
        if self.subscribed:
            self.client.unsubscribe_topic(self.topic)
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def one_line(error: BaseException) -> str:
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def check_probe(answers: dict[str, object], root: Path, where: str) -> None:
    """Refuse a cluster one of whose workers cannot import landaug or does not see the run folder."""
    for addr, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            raise UserError(f"{where}: worker {addr} cannot run landaug ({one_line(answer)}): start the "
                            f"workers {ENVIRONMENT}")
        if not answer["seen"]:
            raise UserError(root, f"the Dask worker {addr} on {answer['host']} does not see the run folder "
                                  f"({answer['why']}): the workers need a shared filesystem, mounted at the same "
                                  f"path as here")


def _outcome(future, spec: dict) -> dict:
    """A finished future's outcome; a task that raised (a worker lost three times) is a failed cell."""
    if future.status == "finished":
        return future.result()
    error = one_line(future.exception()) if future.status == "error" else future.status
    return {"name": spec["name"], "status": "failed", "log": spec["log"], "seconds": None,
            "error": f"the Dask task ended: {error}"}


@contextmanager
def open_backend(cfg: ExecutorConfig, root: Path):
    backend = SerialBackend() if cfg.executor == "serial" else DaskBackend(cfg, root)
    try:
        yield backend
    finally:
        backend.close()
