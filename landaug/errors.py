"""User-facing errors and the CLI wrapper that turns them into one line and exit code 2.

Usage: ``raise UserError(path, "is not a PNG")`` inside a stage; ``sys.exit(cli_main(main, argv))`` in a script.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Sequence

EXIT_USAGE = 2


class UserError(Exception):
    """Bad input or options: reported as one line, never as a traceback."""

    def __init__(self, where: str | Path | None, message: str | None = None):
        if message is None:
            where, message = None, str(where)
        self.where = None if where is None else str(where)
        self.message = message
        super().__init__(self.line())

    def line(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


def cli_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
             prog: str | None = None) -> int:
    """Run ``main(argv)``; a UserError becomes ``prog: error: ...`` on stderr and exit code 2."""
    prog = prog or Path(sys.argv[0]).name
    # TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) is noise on a terminal; it must
    # be silenced before TensorFlow is first imported. Users can still set TF_CPP_MIN_LOG_LEVEL=0.
    from .runtime import quiet_tensorflow

    quiet_tensorflow()
    try:
        return int(main(argv) or 0)
    except UserError as e:
        print(f"{prog}: error: {e.line()}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
