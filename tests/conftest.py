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


def _one_share_of_the_cores_per_worker() -> None:
    """Under ``pytest -n N`` each worker runs on its own 1/N of the cores, before anything imports
    TensorFlow. Its trainings, and the processes they start, then size their thread pools to that share
    (landaug's thread budget and TensorFlow's follow the CPU affinity) instead of each taking every core:
    two TensorFlow processes with a full thread pool each on two cores spend much of their time spinning."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    share = cores[int(worker.removeprefix("gw")) % count::count]
    if share and len(cores) >= count:
        os.sched_setaffinity(0, share)


_one_share_of_the_cores_per_worker()


def _half_precision_kernels_capped() -> bool:
    """runtime.bfloat16_kernels_capped, and its float16 twin: a CPU with AVX512-FP16 under the same cap
    fails float16 convolutions the same way."""
    from landaug.runtime import ISAS_WITHOUT_BF16, bfloat16_kernels_capped, cpu_flags, onednn_isa_cap

    return bfloat16_kernels_capped() or (onednn_isa_cap() in ISAS_WITHOUT_BF16 and "avx512_fp16" in cpu_flags())


# For tests that compute in bfloat16 or float16 whatever the machine.
needs_half_precision_kernels = pytest.mark.skipif(
    _half_precision_kernels_capped(),
    reason="oneDNN is capped below AVX-512 on a CPU with bfloat16/float16: its half-precision kernels are missing")


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


# --- a user's own aerial data set, laid out as such sets come ---------------------------------------------

# The colours the masks use, and the Supervisely classes.json the set comes with: its classes in an order of
# its own and colours that are not the masks' (its Land sits 20 RGB units from the masks' Water).
AERIAL_MASK_COLOURS = {"Building": (60, 16, 152), "Land": (132, 41, 246), "Road": (110, 193, 228),
                       "Vegetation": (254, 221, 58), "Water": (226, 169, 41), "Unlabeled": (155, 155, 155)}
AERIAL_DECLARED = {"Water": "#50E3C2", "Land": "#EEB929", "Road": "#DE597F", "Building": "#D0021B",
                   "Vegetation": "#417505", "Unlabeled": "#9B9B9B"}
AERIAL_PHOTO = {"Building": (120, 110, 115), "Land": (160, 120, 80), "Road": (80, 80, 90), "Vegetation": (40, 120, 45),
                "Water": (30, 60, 140), "Unlabeled": (210, 210, 210), "black": (0, 0, 0)}
BLACK = (0, 0, 0)


class Aerial:
    """``root/Tile <t>/{images,masks}/image_part_00<k>.{jpg,png}`` and ``root/classes.json``: file names
    repeat in every tile; masks are RGB in odd tiles and palette PNGs with a palette order of their own in even
    ones; some pixels are the grey Unlabeled class, black borders in odd tiles are no class at all.
    ``labels[(t, k)]`` holds each mask's class names as an array of strings ("black" for the border)."""

    def __init__(self, root: Path, tiles: int = 4, parts: int = 3, shape=(40, 48), seed: int = 0):
        from PIL import Image

        self.root, self.labels = root, {}
        rng = np.random.default_rng(seed)
        names = list(AERIAL_MASK_COLOURS)
        for t in range(1, tiles + 1):
            for sub in ("images", "masks"):
                (root / f"Tile {t}" / sub).mkdir(parents=True)
            for k in range(1, parts + 1):
                blocks = rng.integers(0, len(names), (shape[0] // 8 + 1, shape[1] // 8 + 1))
                label = np.array(names, dtype=object)[np.kron(blocks, np.ones((8, 8), int))[: shape[0], : shape[1]]]
                if t % 2:
                    label[:, :2] = "black"
                self.labels[t, k] = label.astype(str)
                photo = np.array([AERIAL_PHOTO[n] for n in label.ravel()], np.int16).reshape(*shape, 3)
                photo = np.clip(photo + rng.integers(-12, 13, photo.shape), 0, 255).astype(np.uint8)
                Image.fromarray(photo).save(root / f"Tile {t}" / "images" / f"image_part_00{k}.jpg", quality=95)
                colours = {**AERIAL_MASK_COLOURS, "black": BLACK}
                mask_path = root / f"Tile {t}" / "masks" / f"image_part_00{k}.png"
                if t % 2:
                    rgb = np.array([colours[n] for n in label.ravel()], np.uint8).reshape(*shape, 3)
                    Image.fromarray(rgb).save(mask_path)
                else:
                    order = ["Unlabeled", "Water", "Building", "Land", "black", "Vegetation", "Road"]
                    im = Image.fromarray(np.vectorize(order.index)(label).astype(np.uint8), "P")
                    im.putpalette([v for n in order for v in colours[n]] + [0] * (768 - 3 * len(order)))
                    im.save(mask_path)
        self.write_classes(self.declared())

    @staticmethod
    def declared() -> dict:
        return {"classes": [{"title": n, "shape": "polygon", "color": c} for n, c in AERIAL_DECLARED.items()]}

    @staticmethod
    def fixed() -> dict:
        """The file as a user corrects it after the first error: the masks' colours, black as unlabelled."""
        classes = [{"title": n, "shape": "polygon", "color": "#%02X%02X%02X" % AERIAL_MASK_COLOURS[n]}
                   for n in AERIAL_DECLARED]
        return {"classes": classes + [{"name": "ignore", "ignore": True, "colors": [list(BLACK)]}]}

    def write_classes(self, data: dict) -> Path:
        import json

        path = self.root / "classes.json"
        path.write_text(json.dumps(data, indent=1))
        return path


@pytest.fixture
def aerial(tmp_path) -> Aerial:
    """A tiny aerial land-cover set as users get it (4 tiles x 3 parts of 40 x 48 px)."""
    return Aerial(tmp_path / "aerial")


@pytest.fixture
def float32_policy():
    """Keras's float32 policy around a test, whatever an earlier test set (model tests build in float32)."""
    import keras

    keras.mixed_precision.set_global_policy("float32")
    yield
    keras.mixed_precision.set_global_policy("float32")


# --- what a pipeline run's stages learned from --------------------------------------------------------------

def assert_learned_only_from_split(place: Path, arms: list[str], generators: list[str]) -> dict:
    """Every training stage of a pipeline place (``seed<S>/``, ``fold<F>/seed<S>/[budget<N>/]``) records the
    real scenes it learned from: exactly the training scenes of the place's split.json, none of its
    validation or test scenes; every model used the band normalisation learned beside the split. Returns
    the split."""
    import json

    from landaug.geometry import scene_of

    split = json.loads((place / "split.json").read_text())
    held_out = set(split["val"]) | set(split["test"])
    assert split["val"] and split["test"] and not set(split["train"]) & held_out
    configs = [place / g / "config.json" for g in generators]
    configs += [place / a / "models_CGAN" / "config.json" for a in arms]
    for path in configs:
        used = {scene_of(s) for s in json.loads(path.read_text())["train_scenes"]}
        assert used == set(split["train"]), (path, sorted(used), split["train"])
    bands = json.loads((place / "bands.json").read_text())
    assert bands["train_scenes"] == split["train"]
    stored = [json.loads((place / a / "models_CGAN" / "model.json").read_text())["band_stats"] for a in arms]
    stored += [json.loads((place / g / "bands.json").read_text()) for g in generators]
    assert all(s["low"] == bands["low"] and s["high"] == bands["high"] for s in stored)
    return split


# --- the order of the modules ---------------------------------------------------------------------------

# The modules with whole pipeline runs or many trainings, longest first (as `pytest --durations` ranks
# them). Under `pytest -n 2 --dist loadfile` a worker takes the next module whenever it is free, so a long
# module left for the end would run alone on one worker while the other idles. pytest.ini's
# --no-loadscope-reorder keeps this order: by default pytest-xdist sends the modules with the most tests
# first, which are the quick ones.
LONGEST_FIRST = ("test_pipeline.py", "test_kfold.py", "test_bench.py", "test_cgan.py", "test_gan.py",
                 "test_synth.py", "test_nodata.py", "test_distribute.py", "test_geotiff_stages.py", "test_grid.py",
                 "test_runtime.py", "test_predict_archive.py", "test_owndata.py", "test_spade.py", "test_estimate.py",
                 "test_segmenter.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: a module keeps its own order
