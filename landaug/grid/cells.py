"""A grid's cells and their order: what each one runs, what it needs, and the checks made before any runs.

A cell names an importable function (``"package.module:function"``) and keyword arguments that survive
JSON, so it can run in a fresh process on another machine; ``needs`` names the cells that must have
finished first. Duplicate names, unknown dependencies, cycles, functions that cannot be imported by name
and arguments that are not JSON are refused with one line before any cell runs.

A finished cell leaves a marker, ``<root>/.stages/<name with / as __>.json``, the same file the
pipeline's ``Run.stage`` writes, so ``--resume`` skips it.

Usage: ``cells = [Cell("seed0/split", "landaug.x:split", {"seed": 0}),
Cell("seed0/baseline", train_arm, {"seed": 0}, needs=("seed0/split",))]``; ``order = check_grid(cells)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import UserError
from ..files import json_default

STAGES_DIR = ".stages"
LANDAUG_ROOT = Path(__file__).resolve().parents[2]   # the folder a cell's process imports this landaug from
_NAME = re.compile(r"[A-Za-z0-9_.+=-]+(/[A-Za-z0-9_.+=-]+)*")


def function_ref(fn: Callable | str) -> str:
    """``"module:qualname"`` of a function another process can import by name."""
    if isinstance(fn, str):
        return fn
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        raise UserError(f"{qualname or fn!r} cannot run in another process: give a function defined at the top "
                        f"of an importable module, not a lambda, a local function or one of __main__")
    return f"{module}:{qualname}"


def resolve_function(ref: str) -> Callable:
    """The function ``ref`` names; ImportError, AttributeError or TypeError when it cannot be had."""
    module, _, qualname = ref.partition(":")
    if not module or not qualname:
        raise TypeError(f"{ref!r} is not of the form 'package.module:function'")
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{ref} is not callable")
    return obj


def import_root(ref: str) -> Path:
    """The folder on ``sys.path`` the function's top-level package (or module) was found in."""
    spec = importlib.util.find_spec(ref.partition(":")[0].split(".")[0])
    where = Path(spec.origin) if spec and spec.origin else Path(next(iter(spec.submodule_search_locations)))
    return where.parent.parent if where.name == "__init__.py" else where.parent


@dataclass
class Cell:
    """One unit of the grid: ``fn(**args)`` in a fresh process, after every cell in ``needs`` finished.

    ``fn`` may be a function or its ``"module:qualname"``; ``args`` are stored as their JSON form (paths
    become strings), which is what the function receives; its return value (a dict, or anything JSON) goes
    into the cell's marker. ``log`` defaults to ``<root>/logs/<name>.log``."""
    name: str
    fn: Callable | str
    args: dict = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    log: Path | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name) or \
                any(part in (".", "..") for part in self.name.split("/")):
            raise UserError(f"cell name {self.name!r}: use letters, digits and . _ + = - in parts joined by /, "
                            f"e.g. fold0/seed1/budget12/masksynth")
        self.fn = function_ref(self.fn)
        self.needs = tuple(self.needs)
        try:
            self.args = json.loads(json.dumps(self.args, default=json_default))
        except (TypeError, ValueError) as e:
            raise UserError(f"cell {self.name}: its arguments must be JSON ({e})") from None
        if not isinstance(self.args, dict):
            raise UserError(f"cell {self.name}: args must be a dict of keyword arguments")


def marker_path(root: Path, name: str) -> Path:
    return Path(root) / STAGES_DIR / f"{name.replace('/', '__')}.json"


def log_path(root: Path, cell: Cell) -> Path:
    return Path(cell.log) if cell.log is not None else Path(root) / "logs" / f"{cell.name}.log"


def _cycle(cells: dict[str, Cell]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    state: dict[str, int] = {}   # 1: on the current path, 2: explored
    for start in cells:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(cells[start].needs))]
        while stack:
            node, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                state[node] = 2
                stack.pop()
            elif state.get(dep) == 1:
                path = [n for n, _ in stack]
                return path[path.index(dep):] + [dep]
            elif dep not in state:
                state[dep] = 1
                stack.append((dep, iter(cells[dep].needs)))
    return None


def check_grid(cells: list[Cell]) -> list[Cell]:
    """The cells in an order that runs every cell after the cells it needs and otherwise keeps the given
    order, after every check; each function is imported once here, so a typo fails before anything runs."""
    by_name: dict[str, Cell] = {}
    for c in cells:
        if c.name in by_name:
            raise UserError(f"cell {c.name} is defined twice")
        by_name[c.name] = c
    for c in cells:
        unknown = [d for d in c.needs if d not in by_name]
        if unknown:
            raise UserError(f"cell {c.name} needs {unknown[0]}, which is not a cell of this grid")
    cycle = _cycle(by_name)
    if cycle:
        raise UserError(f"cells need each other in a cycle: {' -> '.join(cycle)}")
    for ref in sorted({c.fn for c in cells}):
        try:
            resolve_function(ref)
        except (ImportError, AttributeError, TypeError) as e:
            who = next(c.name for c in cells if c.fn == ref)
            raise UserError(f"cell {who}: cannot import {ref} ({type(e).__name__}: {e})") from None
    order: list[Cell] = []
    placed: set[str] = set()
    remaining = list(cells)
    while remaining:
        i = next(i for i, c in enumerate(remaining) if all(d in placed for d in c.needs))
        order.append(remaining.pop(i))
        placed.add(order[-1].name)
    return order


def dependants(cells: list[Cell], name: str) -> list[str]:
    """Every cell that needs ``name``, directly or through other cells, in the given order."""
    found = {name}
    for c in cells:   # cells are in an order that puts every cell after the ones it needs
        if any(d in found for d in c.needs):
            found.add(c.name)
    return [c.name for c in cells if c.name in found and c.name != name]
