"""Progress bars for long work: shown on a terminal, silent in logs and pipes, off with ``--quiet``.

Usage: ``for x in progress(items, "scenes", enabled=cfg.progress): ...``
"""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(iterable=None, desc: str = "", enabled: bool = True, **kwargs) -> tqdm:
    """A tqdm bar on stderr; ``disable=None`` lets tqdm hide it when stderr is not a terminal."""
    return tqdm(iterable, desc=desc, disable=None if enabled else True, file=sys.stderr,
                dynamic_ncols=True, **kwargs)
