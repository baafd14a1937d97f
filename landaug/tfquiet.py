"""Silence TensorFlow's C++ start-up chatter before its first import, and spare a process of landaug's own
the imports Keras makes for features landaug never uses. Imports nothing of the project.

Usage: ``quiet_tensorflow()`` before anything imports TensorFlow (every CLI does it in ``cli_main``);
``skip_unused_imports()`` first thing in a process that runs landaug's code only (scripts, grid cells).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import tempfile


class _QuietFirstImport(importlib.abc.MetaPathFinder):
    """Runs the first import of the named top-level packages with file descriptor 2 sent to a temporary file.

    TensorFlow 2.19+ writes its start-up notices (oneDNN, CUDA probing) through absl before it reads
    TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#100442). What the import wrote is thrown away when it
    succeeds and written back to stderr when it fails, so a broken installation still explains itself."""

    def __init__(self, names: tuple[str, ...]):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name not in self.names:
            return None
        self.names.discard(name)
        if not self.names:
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


class _QuietLoader(importlib.abc.Loader):
    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):   # is_package, get_resource_reader, ... of the real loader
        return getattr(self.inner, name)

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = self.inner
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                self.inner.exec_module(module)
            except BaseException:
                os.dup2(saved, 2)
                sink.seek(0)
                sys.stderr.write(sink.read().decode(errors="replace"))
                raise
            finally:
                os.dup2(saved, 2)
                os.close(saved)


def quiet_tensorflow(packages: tuple[str, ...] = ("tensorflow",)) -> None:
    """Silence TensorFlow's C++ start-up chatter unless the user asked for it (TF_CPP_MIN_LOG_LEVEL=0)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] in ("", "0"):
        return
    pending = tuple(n for n in packages if n not in sys.modules)
    if pending and not any(isinstance(f, _QuietFirstImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietFirstImport(pending))


def skip_unused_imports() -> None:
    """Keras imports scikit-learn, when it is installed, for its scikit-learn wrappers: 0.6 CPU s of every
    process's start (a fifth of importing TensorFlow and Keras), for nothing landaug calls. Never in a
    process that may use scikit-learn itself: a library user's, a test's."""
    sys.modules.setdefault("sklearn", None)
