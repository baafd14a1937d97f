"""Mask-to-photo synthesis, ``synth.py``: learn to render a satellite photo from a land-cover label map,
then write synthetic (photo, label) training pairs for new label layouts, exact by construction.

Two generators on the common harness (``--generator``):

- ``pix2pix`` (the default): the U-Net run label -> photo, PatchGAN, non-saturating loss + 100 x L1,
  dropout as its only noise.
- ``spade``: GauGAN's SPADE generator, multi-scale discriminator, hinge loss + feature matching, a
  latent per photo.

Why ``pix2pix``: trained alike on the demo's synthetic scenes (64 px, batch 8, width 0.25, 2 cores) and
scored on mosaic layouts (new to both) against held-out photos, pix2pix reaches a sliced Wasserstein
distance (x1e3, mean of 3 seeds, +-1.2-1.8) against 60 scenes of another demo seed of 30.0 after 1000
steps (50 s) and 27.8 after 5000 (173 s); SPADE 35.8 after 1000 steps (230 s), 30.5 with --beta1 0. So
at equal steps it is as good as SPADE at its best, and at equal time better; the real training
photos score 30.6. Against the 6 test-split photos the scores (pix2pix 71.1 and 71.4, SPADE 76.9 and
70.0) sit near the real training photos' 69.7 and are too noisy to rank. pix2pix's sample grids show
realistic land colour and texture, SPADE's land is uniformly green with grid artefacts at that length,
and a pix2pix step is 4.6 times cheaper. Two cautions: on a training layout pix2pix nearly reproduces the
training photo (compare the last two columns of its grids), so the new material is in the mosaic and
paste layouts; and its dropout noise is weak (mean absolute difference between photos of one layout 3.5-4.3
of 255, SPADE's 8.8), so prefer more --n-layouts to more --per-layout.

Modules: ``options`` (configurations and checks), ``layouts`` (new label layouts: flips, mosaics, pasted
rare-class regions), ``model`` (the GAN modules and rendering), ``train`` (the run on the harness),
``generate`` (generate and score), ``cli`` (the command line).

Usage: ``from landaug.synth import TrainConfig, train, GenerateConfig, generate, ScoreConfig, score``.
"""

from .cli import main
from .generate import generate, score
from .layouts import Layout, LayoutMaker, class_shares, fill_ignore
from .options import GenerateConfig, ScoreConfig, TrainConfig, validate
from .train import train

__all__ = ["GenerateConfig", "Layout", "LayoutMaker", "ScoreConfig", "TrainConfig", "class_shares", "fill_ignore",
           "generate", "main", "score", "train", "validate"]
