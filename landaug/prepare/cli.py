"""``resize_to_256.py``: scenes to training pairs of one size, plus whole scenes for validation and test.

Usage: ``python resize_to_256.py --sparcs SPARCS_DIR [--test-list FILE] [--size 256] [--mode resize|tile]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ArgumentParser
from ..geometry import PHOTO_FILTERS
from .options import GROUP_BY, PrepareConfig
from .run import run

# What --help says about a data set of one's own; the pipeline shows the same.
OWN_DATA_HELP = (
    "Your own data: --images and --masks are folders searched with their sub-folders, or quoted globs of "
    "folders (--images \"data/*/images\" --masks \"data/*/masks\"); photos and masks pair by sub-folder and file "
    "stem, and scenes are named <sub-folder>--<stem> (Tile_1--image_part_001). --group-by folder keeps the scenes "
    "of a sub-folder in one split. classes.json is a list [{\"index\": 0, \"name\": \"water\", \"color\": [r, g, b]}, "
    "...] (\"colors\": [[r, g, b], ...] for more colours of a class; an entry {\"name\": \"ignore\", \"ignore\": true, "
    "\"colors\": [[r, g, b]]} for unlabelled pixels), or Supervisely's {\"classes\": [{\"title\": \"Water\", "
    "\"color\": \"#E2A929\"}, ...]}; colours may be [r, g, b] or \"#rrggbb\". Mask colours must be class colours "
    "exactly: every other colour is listed with its pixels and nearest class (--colour-tolerance N accepts "
    "colours within N RGB units). --ignore-class NAME makes a class of the file unlabelled pixels.")


def add_own_data_options(g) -> None:
    """The options of a data set of one's own, shared by stage 1 and the pipeline."""
    g.add_argument("--colour-tolerance", type=float, metavar="N",
                   help="take mask colours within N RGB units of a class colour as that class (default 0: "
                        "exact colours only; a class that takes several colours is reported)")
    g.add_argument("--ignore-class", action="append", metavar="NAME",
                   help="a class of --classes whose pixels are unlabelled, left out of training and scores "
                        "(e.g. Unlabeled); repeatable")
    g.add_argument("--group-by", choices=GROUP_BY,
                   help="folder: the scenes of one sub-folder all fall in the same split (test, validation, "
                        "training), so neighbouring parts of one large tile never train and test (default none)")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="resize_to_256.py",
        description="Stage 1: scenes to size x size training pairs (images/, images_CGAN/train/{a,b}), and every "
                    "labelled scene whole at its own size (images_CGAN/scenes for validation, images_CGAN/test).",
        epilog="Geometry: --mode resize (default, the paper's) fits each scene to one window: --fit crop takes "
               "its centred square (a warning gives the share of pixels a non-square scene loses), --fit pad "
               "mirrors it outwards to a square with the added pixels ignored; then the photo is resized with an "
               "antialiasing filter and the mask by majority vote (class values are never interpolated), and "
               "models fit each photo to their window the same way. --mode tile cuts each scene at full "
               "resolution (or resampled by --tile-scale) into the fewest size x size tiles that cover it, spread "
               "evenly so neighbours overlap by the slack (1000 px in 256 px tiles: offsets 0, 248, 496, 744, 16 "
               "tiles a scene, 8 px overlap); a scene smaller than size is mirrored outwards with the added pixels "
               "ignored, never scaled up. Tiles are named <scene>__t<row>_<col>.png, their places are in "
               "images_CGAN/tiles.json, and they always stay in their scene's split. Test scenes are never "
               "resized or tiled: models label them whole and are scored against the original masks. Masks may "
               "mark unannotated pixels with 255 or a colour classes.json maps to \"ignore\". Photos may be "
               "GeoTIFFs of any number of bands and data type (pixels without data are ignored); they are written "
               "as GeoTIFFs with their georeference unless they are 3 8-bit bands, and images_CGAN/bands.json "
               "holds the band normalisation learned from the training scenes.\n\n" + OWN_DATA_HELP + "\n\nExamples: "
               "python resize_to_256.py --sparcs sparcs_data --test-list test.txt; python resize_to_256.py --images "
               "\"data/*/images\" --masks \"data/*/masks\" --classes data/classes.json --ignore-class Unlabeled "
               "--group-by folder",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_argument_group("input (exactly one)")
    src.add_argument("--sparcs", type=Path, metavar="DIR", help="USGS SPARCS folder: <scene>_photo.png + <scene>_mask.png")
    src.add_argument("--images", type=Path, metavar="DIR",
                     help="your photos (png, jpg, tif): a folder with its sub-folders, or a quoted glob of folders; "
                          "alone: unlabelled, only images/ is written")
    src.add_argument("--masks", type=Path, metavar="DIR",
                     help="your masks (folder or quoted glob), matched to --images by sub-folder and file stem")
    src.add_argument("--demo", type=int, default=0, metavar="N", help="N synthetic SPARCS-like scenes made by this project")
    src.add_argument("--demo-size", type=int, metavar="PX", help="side of the synthetic scenes before resizing/tiling (default: --size)")
    src.add_argument("--demo-bands", type=int, default=3, metavar="N",
                     help="bands of the synthetic scenes: 3 (8-bit false colour, default), 4 (blue, green, red, NIR) "
                          "or 10 (the Landsat 8 bands of SPARCS' _data.tif), uint16 GeoTIFFs placed in UTM 33N")
    b = p.add_argument_group("bands")
    b.add_argument("--bands", metavar="LIST",
                   help="photo bands to use, in this order, e.g. 4,3,2, or all (default: all bands of the photos). "
                        "With --sparcs, any --bands reads the 10 bands of <scene>_data.tif instead of the PNG photo")
    b.add_argument("--rgb-bands", metavar="R,G,B",
                   help="bands shown as red, green, blue in figures (band numbers of the photos; default: the first "
                        "three bands used); kept in bands.json")
    own = p.add_argument_group("classes and masks")
    own.add_argument("--classes", type=Path, metavar="FILE",
                     help="classes.json of your data set, ours or Supervisely's (see below; default: the SPARCS "
                          "classes)")
    add_own_data_options(own)
    sp = p.add_argument_group("split")
    sp.add_argument("--split", choices=("paper", "random", "none"),
                    help="paper: the paper's 8 SPARCS test scenes (default for --sparcs); random: --test-fraction of "
                         "the scenes (default otherwise); none: everything trains")
    sp.add_argument("--test-list", type=Path, metavar="FILE", help="test scenes, one name a line (overrides --split)")
    sp.add_argument("--test-fraction", type=float, default=0.1, help="share of test scenes for --split random (default 0.1, at least one)")
    sp.add_argument("--seed", type=int, default=0, help="seed of the random split and of the demo scenes")
    g = p.add_argument_group("geometry")
    g.add_argument("--size", type=int, default=256, help="output side in pixels, a power of two (default 256)")
    g.add_argument("--mode", choices=("resize", "tile"), default="resize", help="resize whole scenes (default) or tile them")
    g.add_argument("--fit", choices=("crop", "pad"), default="crop",
                   help="--mode resize: a non-square scene's centred square (default crop), or the whole scene "
                        "mirrored to a square with the added pixels ignored (pad)")
    g.add_argument("--tile-scale", type=float, default=1.0, metavar="F",
                   help="--mode tile: resample every scene by F in (0, 1] before cutting tiles, so a window sees 1/F "
                        "times more ground (default 1.0: native resolution); models label new photos at scale F")
    g.add_argument("--photo-filter", choices=tuple(PHOTO_FILTERS), default="box", help="antialiasing filter for photos (default box = area average)")
    g.add_argument("--mask-filter", choices=("majority", "nearest"), default="majority", help="how masks are resized (default majority vote)")
    p.add_argument("--out", type=Path, default=Path("."), help="output root (default: the current folder)")
    p.add_argument("--overwrite", action="store_true", help="replace images already in the output folders")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def config_from_args(args: argparse.Namespace) -> PrepareConfig:
    return PrepareConfig(sparcs=args.sparcs, images=args.images, masks=args.masks, demo=args.demo,
                         demo_size=args.demo_size, classes=args.classes, split=args.split,
                         test_list=args.test_list, test_fraction=args.test_fraction, seed=args.seed,
                         size=args.size, mode=args.mode, fit=args.fit, tile_scale=args.tile_scale,
                         photo_filter=args.photo_filter, mask_filter=args.mask_filter, bands=args.bands,
                         rgb_bands=args.rgb_bands, demo_bands=args.demo_bands,
                         colour_tolerance=args.colour_tolerance or 0.0,
                         ignore_class=tuple(args.ignore_class or ()), group_by=args.group_by or "none",
                         out=args.out, overwrite=args.overwrite, progress=not args.quiet)


def main(argv=None) -> int:
    run(config_from_args(build_parser().parse_args(argv)))
    return 0
