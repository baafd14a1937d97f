"""Mask-to-photo synthesis, ``synth.py``: learn to render a satellite photo from a land-cover label map,
then write synthetic (photo, label) training pairs for new label layouts, exact by construction.

Three generators on the common harness (``--generator``):

- ``pix2pix`` (the default): the U-Net run label -> photo, PatchGAN, non-saturating loss + 100 x L1,
  dropout as its only noise.
- ``oasis``: a U-Net with a latent and a noise map at every decoder scale and a resize-convolution
  decoder, a segmentation discriminator with N + 1 classes, no pixel loss (``--l1`` adds one),
  optionally the mode-seeking term (``--diversity``) and DiffAugment (``--diffaugment``).
- ``spade``: GauGAN's SPADE generator, multi-scale discriminator, hinge loss + feature matching, a
  latent per photo.

Why ``pix2pix`` over ``spade``: trained alike on the demo's synthetic scenes (64 px, batch 8, width 0.25,
2 cores) and scored on mosaic layouts (new to both) against held-out photos, pix2pix reaches a sliced
Wasserstein distance (x1e3, mean of 3 seeds, +-1.2-1.8) against 60 scenes of another demo seed of 30.0
after 1000 steps (50 s) and 27.8 after 5000 (173 s); SPADE 35.8 after 1000 steps (230 s), 30.5 with
--beta1 0. So at equal steps it is as good as SPADE at its best, and at equal time better; the real
training photos score 30.6. Against the 6 test-split photos the scores (pix2pix 71.1 and 71.4, SPADE 76.9
and 70.0) sit near the real training photos' 69.7 and are too noisy to rank. pix2pix's sample grids show
realistic land colour and texture, SPADE's land is uniformly green with grid artefacts at that length,
and a pix2pix step is 4.6 times cheaper. On a training layout pix2pix nearly reproduces the training
photo (compare the last two columns of its grids), so the new material is in the mosaic and paste layouts.

Why ``pix2pix`` over ``oasis``: ``experiments/synth_choice.sh`` (two seeds' splits of 100 demo scenes at
64 px, 1200 steps of each generator, a segmenter trained 520 steps with 60 rendered pairs at share 0.25,
scored by its validation mIoU over the last five evaluations) puts every candidate level with the
baseline that has no rendered pairs: pix2pix 0.447, oasis 0.444, oasis --diversity 1 0.443, oasis
--diffaugment color,translation 0.442, baseline 0.444. oasis renders as real (SWD x1e3 against the
validation photos 51.1, pix2pix 50.4) and its two photos of one layout differ by 0.036 against pix2pix's
0.013 (``synth.py score``'s ``diversity_same_layout``; real photos of one class: 0.085 between scenes),
but a step costs 2.6 times as much. With ``--diversity 1`` two photos differ by 0.103: land by 0.12 where
real scenes differ by 0.11, but water by 0.07 where real water differs by 0.02.

Modules: ``options`` (configurations and checks), ``layouts`` (new label layouts: flips, mosaics, pasted
rare-class regions), ``model`` (the GAN modules), ``render`` (photos for layouts from a trained generator),
``train`` (the run on the harness), ``generate`` (generate and score), ``diversity`` (how different two
photos of one layout are, against real photos of one class), ``cli`` (the command line).

Usage: ``from landaug.synth import TrainConfig, train, GenerateConfig, generate, ScoreConfig, score``.
"""

from .cli import main
from .generate import generate, score
from .layouts import Layout, LayoutMaker, class_shares, fill_ignore
from .options import GenerateConfig, ScoreConfig, TrainConfig, validate
from .train import train

__all__ = ["GenerateConfig", "Layout", "LayoutMaker", "ScoreConfig", "TrainConfig", "class_shares", "fill_ignore",
           "generate", "main", "score", "train", "validate"]
