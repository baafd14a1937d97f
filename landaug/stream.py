"""Three stages of a stream in step: items made in one thread, worked on in the caller's thread, their
results consumed in a third, so reading and blending overlap the network's forward passes.

Each stage takes its items in order and runs them one at a time, so the results are those of the plain
loop ``for item in items: consume(work(item))``; at most ``depth`` items wait between two stages, which
bounds the memory in flight. The first error in any stage (or an interrupt) stops all three and is raised
in the caller's thread. ``overlapped=False`` runs the plain loop (for measuring what the threads save).

Usage: ``run_staged(batches(), network, blend, depth=2)``.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable

_END = object()
_POLL = 0.1


def run_staged(items: Iterable, work: Callable, consume: Callable, depth: int = 2, overlapped: bool = True) -> None:
    if not overlapped:
        for item in items:
            consume(work(item))
        return
    stop = threading.Event()
    made, done = queue.Queue(depth), queue.Queue(depth)
    errors: list[BaseException] = []

    def fail(e: BaseException) -> None:
        errors.append(e)
        stop.set()

    def put(q: queue.Queue, item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                pass
        return False

    def get(q: queue.Queue):
        while not stop.is_set():
            try:
                return q.get(timeout=_POLL)
            except queue.Empty:
                pass
        return _END

    def produce() -> None:
        try:
            for item in items:
                if not put(made, item):
                    return
            put(made, _END)
        except BaseException as e:
            fail(e)

    def drain() -> None:
        try:
            while (item := get(done)) is not _END:
                consume(item)
            stop.set()
        except BaseException as e:
            fail(e)

    threads = [threading.Thread(target=produce, daemon=True), threading.Thread(target=drain, daemon=True)]
    for t in threads:
        t.start()
    try:
        while (item := get(made)) is not _END:
            if not put(done, work(item)):
                break
        put(done, _END)
        threads[1].join()
    except BaseException as e:
        fail(e)
    finally:
        stop.set()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
