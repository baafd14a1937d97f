"""What ``resize_to_256.py`` can be asked to do, the test split, and the checks made before any work.

Usage: ``cfg = PrepareConfig(sparcs=Path("sparcs"), test_list=Path("docs/sparcs_test_list.txt"))``;
``validate(cfg)``; ``test, missing = choose_test(stems, cfg)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..colours import check_tolerance
from ..errors import UserError, check_writable
from ..geometry import MASK_FILTERS, PHOTO_FILTERS
from ..imgio import IMAGE_EXTS, folder_has_images

PAPER_TEST_SCENES = (
    "LC80010812013365LGN00_18", "LC80150242014146LGN00_23", "LC80940802014092LGN00_17",
    "LC81370452014073LGN00_23", "LC81480352013195LGN00_32", "LC81810592013218LGN00_05",
    "LC82010332014105LGN00_34", "LC82210662014229LGN00_18",
)
MODES = ("resize", "tile")
GROUP_BY = ("none", "folder")
FITS = ("crop", "pad")
# Training pairs (tiles or resized scenes), whole labelled scenes for validation, whole test scenes.
OUTPUT_DIRS = ("images", "images_CGAN/train/a", "images_CGAN/train/b", "images_CGAN/scenes/a",
               "images_CGAN/scenes/b", "images_CGAN/test/a", "images_CGAN/test/b")


@dataclass
class PrepareConfig:
    sparcs: Path | None = None
    images: Path | None = None
    masks: Path | None = None
    demo: int = 0
    demo_size: int | None = None
    classes: Path | None = None
    split: str | None = None
    test_list: Path | None = None
    test_fraction: float = 0.1
    seed: int = 0
    size: int = 256
    mode: str = "resize"
    photo_filter: str = "box"
    mask_filter: str = "majority"
    fit: str = "crop"                    # resize mode: a non-square scene's centred square, or mirrored to a square
    tile_scale: float = 1.0              # tile mode: scenes resampled by this factor before they are cut
    bands: str | None = None             # "4,3,2", "all" or None (all bands)
    rgb_bands: str | None = None         # the bands figures show as red, green, blue (default the first three)
    demo_bands: int = 3
    colour_tolerance: float = 0.0        # RGB units a mask colour may be from its class colour (0: exact)
    ignore_class: tuple[str, ...] = ()   # classes of --classes whose pixels are unlabelled
    group_by: str = "none"               # folder: the scenes of one sub-folder stay in one split
    out: Path = Path(".")
    overwrite: bool = False
    progress: bool = True

    @property
    def source(self) -> str:
        if self.sparcs is not None:
            return "sparcs"
        if self.demo:
            return "demo"
        return "pairs" if self.masks is not None else "unlabelled"


def normalise_stem(name: str) -> str:
    """``LC8..._18_photo.png`` -> ``LC8..._18``: a test list may name files or scenes."""
    stem = name.strip()
    for ext in IMAGE_EXTS:
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    for suffix in ("_photo", "_mask"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem


def read_test_list(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(path, "test list not found (one scene name a line)")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(path, f"test list is not readable text: {e}") from None
    names = [normalise_stem(l) for l in lines if l.strip() and not l.lstrip().startswith("#")]
    if not names:
        raise UserError(path, "test list names no scene")
    return names


def choose_test(stems: list[str], cfg: PrepareConfig,
                groups: dict[str, str] | None = None) -> tuple[set[str], list[str]]:
    """The test scenes and the listed test scenes that are missing from the input. With ``groups`` (scene ->
    group, ``--group-by folder``) whole groups are drawn, and a test list must name whole groups."""
    split = effective_split(cfg)
    if split == "none" or not stems:
        return set(), []
    if split in ("paper", "list"):
        wanted = list(PAPER_TEST_SCENES) if split == "paper" else read_test_list(cfg.test_list)
        present = set(stems)
        test = {s for s in wanted if s in present}
        for s in sorted(test):
            left = sorted(o for o in stems if groups and groups[o] == groups[s] and o not in test)
            if left:
                raise UserError(cfg.test_list, f"names {s} but not {left[0]} of the same folder "
                                               f"({groups[s]}): with --group-by folder a folder tests whole")
        return test, [s for s in wanted if s not in present]
    units = sorted(set(groups[s] for s in stems)) if groups else list(stems)
    if len(units) < 2:
        return set(), []
    n_test = min(len(units) - 1, max(1, round(cfg.test_fraction * len(units))))
    order = np.random.default_rng(cfg.seed).permutation(len(units))
    chosen = {units[i] for i in order[:n_test]}
    return {s for s in stems if (groups[s] if groups else s) in chosen}, []


def effective_split(cfg: PrepareConfig) -> str:
    if cfg.test_list is not None:
        return "list"
    if cfg.split is not None:
        return cfg.split
    if cfg.source == "unlabelled":
        return "none"
    return "paper" if cfg.source == "sparcs" else "random"



def band_list(text: str | None) -> list[int] | None:
    """``--bands``: the 1-based band numbers to keep, in order; None for all bands."""
    if text is None or str(text).strip().lower() == "all":
        return None
    from ..bands import parse_bands

    return parse_bands(text, "--bands")


def rgb_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    from ..bands import parse_bands

    rgb = parse_bands(text, "--rgb-bands")
    if len(rgb) not in (1, 3):
        raise UserError(f"--rgb-bands {text!r}: give 3 band numbers (red, green, blue) or 1 for grey")
    return rgb


def check_band_options(bands: str | None, rgb_bands: str | None, demo_bands: int, demo: bool) -> None:
    """``--bands``, ``--rgb-bands`` and ``--demo-bands`` on their own, and against the synthetic scenes'
    bands with ``demo`` (photos' headers are checked when the scenes are listed)."""
    wanted, rgb = band_list(bands), rgb_list(rgb_bands)
    if wanted is not None and rgb is not None:
        missing = [b for b in rgb if b not in wanted]
        if missing:
            raise UserError(f"--rgb-bands {rgb_bands}: band {missing[0]} is not among --bands {bands}")
    if demo:
        from ..geoio import check_bands

        used = check_bands(f"the synthetic scenes (--demo-bands {demo_bands})", wanted, demo_bands)
        missing = [b for b in rgb or [] if b not in used]
        if missing:
            raise UserError(f"--rgb-bands {rgb_bands}: the synthetic scenes have {demo_bands} bands, no band "
                            f"{missing[0]}")
    if demo_bands != 3:
        from ..synthetic import BAND_SETS

        sizes = sorted({len(v) for v in BAND_SETS.values()})
        if demo_bands not in sizes:
            raise UserError(f"--demo-bands must be one of {', '.join(map(str, sizes))}, got {demo_bands}")
        if not demo:
            raise UserError("--demo-bands sets the bands of the synthetic scenes: it needs --demo")


def check_mask_options(tolerance: float, ignore_class, group_by: str, source: str) -> None:
    """``--colour-tolerance``, ``--ignore-class`` and ``--group-by`` against the input (stage 1 and pipeline)."""
    check_tolerance(tolerance)
    if ignore_class and source == "demo":
        raise UserError("--ignore-class marks classes of masks read from files: drop it with --demo")
    if group_by not in GROUP_BY:
        raise UserError(f"--group-by must be {' or '.join(GROUP_BY)}, got {group_by!r}")
    if group_by == "folder" and source != "pairs":
        raise UserError("--group-by folder keeps the scenes of a sub-folder in one split: it needs --images "
                        "and --masks with sub-folders")


def scene_groups(scenes, cfg: PrepareConfig, need: int = 2) -> dict[str, str] | None:
    """Scene -> sub-folder with ``--group-by folder`` (at least ``need`` of them), else None."""
    if cfg.group_by != "folder":
        return None
    groups = {sc.stem: sc.group for sc in scenes}
    if len(set(groups.values())) < need:
        found = sorted(set(groups.values()))
        raise UserError(cfg.images, f"--group-by folder needs at least {need} sub-folders of scenes, found "
                                    f"{len(found)} ({', '.join(g or 'the folder itself' for g in found)})")
    return groups


def check_fit_options(mode: str, fit: str, tile_scale: float, mode_option: str = "--mode") -> None:
    """``--fit`` and ``--tile-scale`` against the geometry mode (``mode_option`` names it)."""
    if fit not in FITS:
        raise UserError(f"--fit must be crop or pad, got {fit!r}")
    if fit != "crop" and mode != "resize":
        raise UserError(f"--fit pad fits whole scenes to the window: it needs {mode_option} resize (tiles never crop)")
    if not (isinstance(tile_scale, (int, float)) and math.isfinite(tile_scale) and 0 < tile_scale <= 1):
        raise UserError(f"--tile-scale must be in (0, 1] (0.5: scenes halved before they are cut into tiles), "
                        f"got {tile_scale}")
    if tile_scale != 1 and mode != "tile":
        raise UserError(f"--tile-scale resamples scenes before they are cut into tiles: it needs {mode_option} "
                        "tile (resize mode fits each scene to the window)")


def validate(cfg: PrepareConfig) -> None:
    """Options and output folder, before any scene is read."""
    sources = [cfg.sparcs is not None, cfg.images is not None, cfg.demo != 0]
    if sum(sources) != 1:
        raise UserError("give exactly one input: --sparcs DIR, --images DIR [--masks DIR], or --demo N")
    if cfg.masks is not None and cfg.images is None:
        raise UserError("--masks needs --images (the photos matched to the masks by file name)")
    if cfg.demo < 0:
        raise UserError(f"--demo must be a positive number of scenes, got {cfg.demo}")
    if cfg.size < 16 or cfg.size & (cfg.size - 1):
        raise UserError(f"--size must be a power of two >= 16 (the GAN and pix2pix halve it repeatedly), got {cfg.size}")
    if cfg.demo_size is not None and cfg.demo_size < cfg.size:
        raise UserError(f"--demo-size must be at least --size ({cfg.size}), got {cfg.demo_size}")
    if cfg.mode not in MODES:
        raise UserError(f"--mode must be resize or tile, got {cfg.mode!r}")
    if cfg.photo_filter not in PHOTO_FILTERS:
        raise UserError(f"--photo-filter must be one of {', '.join(PHOTO_FILTERS)}, got {cfg.photo_filter!r}")
    check_fit_options(cfg.mode, cfg.fit, cfg.tile_scale)
    if cfg.mask_filter not in MASK_FILTERS:
        raise UserError(f"--mask-filter must be majority or nearest, got {cfg.mask_filter!r}")
    if not 0.0 < cfg.test_fraction < 1.0:
        raise UserError(f"--test-fraction must be between 0 and 1, got {cfg.test_fraction}")
    if cfg.split not in (None, "paper", "random", "none"):
        raise UserError(f"--split must be paper, random or none, got {cfg.split!r}")
    if cfg.test_list is not None and cfg.split not in (None,):
        raise UserError("--test-list sets the split itself: drop --split")
    if cfg.source == "unlabelled" and effective_split(cfg) != "none":
        raise UserError("unlabelled --images (no --masks) cannot be split into test pairs: drop --split/--test-list")
    if cfg.test_list is not None and not cfg.test_list.is_file():
        raise UserError(cfg.test_list, "test list not found (one scene name a line)")
    check_mask_options(cfg.colour_tolerance, cfg.ignore_class, cfg.group_by, cfg.source)
    check_band_options(cfg.bands, cfg.rgb_bands, cfg.demo_bands, cfg.demo != 0)
    check_writable(cfg.out)
    if not cfg.overwrite:
        for d in OUTPUT_DIRS:
            if folder_has_images(cfg.out / d):
                raise UserError(cfg.out / d, "already holds images; pass --overwrite to replace them, "
                                             "or choose another --out")
