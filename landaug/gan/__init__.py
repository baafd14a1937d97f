"""Stage 2, ``gan.py``: train the paper's DCGAN on the training scenes, generate synthetic scenes, score them.

With ``--with-labels DIR`` (a folder with ``a/`` photos and ``b/`` masks) the generator also outputs one
softmax channel per class and ``generate`` writes ``a/`` photos plus ``b/`` palette labels.

Modules: ``options`` (configurations and checks), ``data`` (scenes, step batches, latents), ``model`` (the
GAN module: losses, DiffAugment, EMA), ``train`` (the run on the common harness), ``generate`` (generate
and score), ``cli`` (the command line).

Usage: ``from landaug.gan import TrainConfig, train, GenerateConfig, generate``.
"""

from .cli import main
from .data import latents, load_scenes
from .generate import format_score, generate, score
from .options import GenerateConfig, ScoreConfig, TrainConfig, validate
from .train import build_trainer, train, trainer_batches

__all__ = ["GenerateConfig", "ScoreConfig", "TrainConfig", "build_trainer", "format_score", "generate", "latents",
           "load_scenes", "main", "score", "train", "trainer_batches", "validate"]
