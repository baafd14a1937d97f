"""User-facing errors, the one-line CLI wrapper, and the output-folder check every entry point makes.

Usage: ``raise UserError(path, "is not a PNG")`` inside a stage; ``parser = ArgumentParser(prog=...)`` for
every CLI; ``check_writable(out, "--out")`` before any compute; ``sys.exit(script_main(main))`` in a
script, ``cli_main(main, argv)`` in a test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from .tfquiet import quiet_tensorflow, skip_unused_imports

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


class ArgumentParser(argparse.ArgumentParser):
    """argparse with usage errors as one line (through UserError), like every other bad input."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


def warn(message: str) -> None:
    """One warning line on stderr: something the user should know that does not stop the run."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def check_writable(folder: str | Path, option: str = "--out") -> None:
    """An output folder that exists and is writable, or can be created: checked before any compute by
    writing (and removing) a probe, which also catches read-only mounts and root-owned system folders."""
    import tempfile

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(folder, f"{option} is a file, not a folder")
    parent = folder
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(folder, f"{option} cannot be created: {parent} is a file, not a folder")
    try:
        probe = Path(tempfile.mkdtemp(prefix=".write-probe-", dir=parent))
        probe.rmdir()
    except OSError as e:
        what = "is not writable" if parent == folder else f"cannot be created in {parent}"
        raise UserError(folder, f"{option} {what} ({e.strerror or e}): choose another folder") from None


def script_main(main: Callable[[Sequence[str] | None], int | None], prog: str | None = None) -> int:
    """``cli_main(main)`` for a script run as a program, whose process runs landaug's code only."""
    skip_unused_imports()
    return cli_main(main, prog=prog)


def cli_main(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None,
             prog: str | None = None) -> int:
    """Run ``main(argv)``; a UserError becomes ``prog: error: ...`` on stderr and exit code 2."""
    prog = prog or Path(sys.argv[0]).name
    # TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notices) is noise on a terminal; it must
    # be silenced before TensorFlow is first imported. Users can still set TF_CPP_MIN_LOG_LEVEL=0.
    quiet_tensorflow()
    try:
        return int(main(argv) or 0)
    except UserError as e:
        print(f"{prog}: error: {e.line()}", file=sys.stderr)
        return EXIT_USAGE
    except (PermissionError, IsADirectoryError, NotADirectoryError) as e:
        # An output that became unwritable after the checks (another process, a full quota).
        where = e.filename or ""
        print(f"{prog}: error: {where}{': ' if where else ''}{e.strerror or e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
