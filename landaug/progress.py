"""Progress of long work: a bar on a terminal, plain lines in a log file or pipe, nothing with ``--quiet``.

On a terminal a tqdm bar is drawn on stderr. Without one (``nohup``, ``> log``, a pipeline's log) no
carriage-return bar is written: a long stage prints a start line, a line every ``every`` units (a tenth
of the total by default) and an end line, so a log file shows how far a run got and how fast. Work that
ends within ``quiet_seconds`` prints nothing, and transient bars (``leave=False``: decoding, inner
loops) never do.

Usage: ``for x in progress(items, "scenes", enabled=cfg.progress): ...`` or
``with progress(total=steps, desc="cgan train") as bar: bar.update(1); bar.set_postfix(loss=...)``.
"""

from __future__ import annotations

import sys
import time

from tqdm import tqdm


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class LineProgress:
    """tqdm's interface, written as plain lines: start, every ``every`` units, end."""

    def __init__(self, iterable=None, desc: str = "", total: int | None = None, initial: int = 0,
                 unit: str = "it", every: int | None = None, stream=None, quiet_seconds: float = 3.0, **_):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.desc, self.total, self.n, self.unit = desc, total, initial, unit
        self.every = every or max(1, (total or 10) // 10)
        self.stream = stream or sys.stderr
        self.postfix = ""
        self.t0 = time.monotonic()
        self.start_n = initial
        self.next_line = initial + self.every - initial % self.every
        self.closed = False
        self.quiet_seconds = quiet_seconds
        self.started = False

    def _print(self, what: str) -> None:
        if not self.started:
            if time.monotonic() - self.t0 < self.quiet_seconds:
                return
            self.started = True
            of = f" of {self.total}" if self.total is not None else ""
            at = time.strftime("%H:%M:%S", time.localtime(time.time() - (time.monotonic() - self.t0)))
            print(f"{self.desc}: started {at} at {self.start_n}{of} {self.unit}s", file=self.stream, flush=True)
        print(f"{self.desc}: {what}", file=self.stream, flush=True)

    def _status(self) -> str:
        elapsed = time.monotonic() - self.t0
        rate = (self.n - self.start_n) / elapsed if elapsed > 0 else 0.0
        of = f"/{self.total}" if self.total is not None else ""
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        post = f", {self.postfix}" if self.postfix else ""
        return f"{self.n}{of} {self.unit}s{pct}, {rate:.3g} {self.unit}/s, {_clock(elapsed)} elapsed{post}"

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n >= self.next_line and (self.total is None or self.n < self.total):
            self._print(self._status())
            self.next_line = self.n + self.every - self.n % self.every

    def set_postfix(self, ordered_dict=None, refresh: bool = True, **kwargs) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = " ".join(f"{k}={v}" for k, v in items.items())

    def set_description(self, desc: str) -> None:
        self.desc = desc

    def write(self, message: str) -> None:
        print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._print("done, " + self._status())

    def __iter__(self):
        for item in self.iterable:
            yield item
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Silent(LineProgress):
    def __init__(self, iterable=None, total=None, initial: int = 0, **_):
        self.iterable, self.total, self.n, self.closed = iterable, total, initial, False

    def _print(self, what: str) -> None:
        pass

    def update(self, n: int = 1) -> None:
        self.n += n

    def write(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def close(self) -> None:
        self.closed = True


def progress(iterable=None, desc: str = "", enabled: bool = True, **kwargs):
    """A tqdm bar on a terminal, plain progress lines otherwise, nothing when ``enabled`` is False."""
    if not enabled:
        return _Silent(iterable, **kwargs)
    if sys.stderr.isatty():
        kwargs.pop("every", None)
        return tqdm(iterable, desc=desc, file=sys.stderr, dynamic_ncols=True, **kwargs)
    if not kwargs.get("leave", True):
        return _Silent(iterable, **kwargs)
    return LineProgress(iterable, desc=desc, **kwargs)
