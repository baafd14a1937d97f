"""Stage 1, ``resize_to_256.py``: SPARCS scenes, a user's image+mask pairs, unlabelled images or synthetic
demo scenes to training pairs of one size, with every labelled scene also kept whole at its own size.

Writes under ``--out``: ``images/`` (training photos, for the GAN), ``images_CGAN/train/{a,b}`` (training
pairs: resized scenes or native-resolution tiles), ``images_CGAN/scenes/{a,b}`` (every labelled non-test
scene whole, for validation), ``images_CGAN/test/{a,b}`` (test scenes whole), ``images_CGAN/classes.json``,
``images_CGAN/bands.json`` and ``images/bands.json`` (the band normalisation learned from the training
scenes), ``images_CGAN/config.json`` (split, scale, fit) and, for tiles, ``images_CGAN/tiles.json``. Photos
keep their bands (``--bands``) and data type: PNG for 8-bit RGB, GeoTIFF with the georeference otherwise.

Modules: ``options`` (configuration, test split, checks), ``inputs`` (where scenes come from, their bands),
``pairs`` (a scene's training pairs and their scale: tiles, ``--tile-scale``, ``--fit``), ``run`` (the
writing), ``cli``.

Usage: ``python resize_to_256.py --sparcs SPARCS_DIR`` or ``python resize_to_256.py --demo 100``.
"""

from .cli import main
from .options import PAPER_TEST_SCENES, PrepareConfig, choose_test, validate
from .run import run

__all__ = ["PAPER_TEST_SCENES", "PrepareConfig", "choose_test", "main", "run", "validate"]
