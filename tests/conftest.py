"""Shared fixtures: small synthetic data sets in the hand-off layout, and the SPARCS folder when present."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPARCS_DIR = ROOT.parent / "shared" / "sparcs"


def _write_layout(root: Path, n: int, size: int, seed: int) -> Path:
    """``images/`` + ``images_CGAN/{train,test}/{a,b}`` + ``classes.json`` of synthetic scenes."""
    from landaug.prepare import PrepareConfig, run

    run(PrepareConfig(demo=n, size=size, out=root, seed=seed, progress=False))
    return root


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """A read-only 32 px demo data set (12 scenes: 10 train, 2 test). Copy it before writing into it."""
    return _write_layout(tmp_path_factory.mktemp("demo32"), n=12, size=32, seed=0)


@pytest.fixture(scope="session")
def demo_root64(tmp_path_factory) -> Path:
    """A read-only 64 px demo data set (12 scenes)."""
    return _write_layout(tmp_path_factory.mktemp("demo64"), n=12, size=64, seed=1)


@pytest.fixture
def sparcs_dir() -> Path:
    if not SPARCS_DIR.is_dir() or not any(SPARCS_DIR.glob("*_photo.png")):
        pytest.skip(f"SPARCS scenes not found at {SPARCS_DIR}")
    return SPARCS_DIR


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
