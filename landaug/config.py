"""Stage configurations on disk: ``config.json`` beside every stage's outputs.

Usage: ``save_config(out / "config.json", cfg, stage="resize")``; ``load_config(path)``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import platform
import sys
from pathlib import Path

from . import __version__
from .errors import UserError
from .files import write_json


def config_dict(cfg) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}


def save_config(path: str | Path, cfg, stage: str, **extra) -> dict:
    data = {
        "stage": stage,
        "landaug_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "python": platform.python_version(),
        "config": config_dict(cfg),
        **extra,
    }
    write_json(path, data)
    return data


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(path, "config.json not found")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(path, f"not a readable config.json: {e}") from None
