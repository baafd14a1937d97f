"""The process of one cell: ``python -m landaug.grid.child`` with the cell's description on stdin.

It gives TensorFlow the cell's thread budget through ``tf.config.threading`` the moment TensorFlow is
imported, before any op can start its thread pools (the environment carries the same budget for
TensorFlow and OpenMP code); ends itself when the process that started it is gone (a stopped worker
must not leave trainings behind); calls the cell's function; and, only when it returned, writes the
cell's marker atomically: ``{"stage": name, "seconds": ..., **result, "ran_on": {host, threads, inter_op,
machine}}`` (the machine as ``runtime.machine_description`` gives it, GPUs included when the cell imported
TensorFlow).
A UserError becomes one line in the cell's log and exit code 2, any other error a traceback.

Usage: started by ``landaug.grid.worker.CellProcess``, never by hand.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import socket
import sys
import threading
import time

from ..errors import cli_main
from ..files import write_json
from ..runtime import machine_description
from ..tfquiet import quiet_tensorflow, skip_unused_imports
from .cells import resolve_function


class _AfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Runs ``then(module)`` right after the first import of one top-level package, whichever finder
    (TensorFlow's quiet import included) loads it."""

    def __init__(self, name: str, then):
        self.name, self.then, self.inner = name, then, None

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            self.inner, spec.loader = spec.loader, self
        return spec

    def __getattr__(self, name):   # is_package, get_resource_reader, ... of the real loader
        return getattr(self.inner, name)

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        module.__spec__.loader = module.__loader__ = self.inner
        self.inner.exec_module(module)
        self.then(module)


def thread_budget_on_import(threads: int, inter_op: int) -> None:
    def apply(tf):
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)

    if "tensorflow" in sys.modules:
        apply(sys.modules["tensorflow"])
    else:
        sys.meta_path.insert(0, _AfterImport("tensorflow", apply))


def _end_with_parent() -> None:
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        print("the process that started this cell is gone: stopping", file=sys.stderr, flush=True)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def run(spec: dict) -> None:
    fn = resolve_function(spec["fn"])
    t0 = time.monotonic()
    result = fn(**spec["args"])
    result = result if isinstance(result, dict) else ({} if result is None else {"result": result})
    write_json(spec["marker"], {"stage": spec["name"], "seconds": round(time.monotonic() - t0, 1), **result,
                                "ran_on": {"host": socket.gethostname(), "threads": spec["threads"],
                                           "inter_op": spec["inter_op"], "machine": machine_description()}})


def main() -> int:
    spec = json.loads(sys.stdin.read())
    _end_with_parent()
    skip_unused_imports()
    quiet_tensorflow()
    thread_budget_on_import(spec["threads"], spec["inter_op"])
    return cli_main(lambda _argv: run(spec), [], prog=f"cell {spec['name']}")


if __name__ == "__main__":
    sys.exit(main())
