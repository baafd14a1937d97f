"""landaug: GAN data augmentation for land-cover segmentation (SPARCS, Landsat 8).

The package behind the stage scripts ``resize_to_256.py``, ``gan.py``, ``cgan.py``, ``eval.py`` and
``pipeline.py``. Usage: ``python resize_to_256.py --demo 100`` (see README.md).
"""

__version__ = "0.1.0"
