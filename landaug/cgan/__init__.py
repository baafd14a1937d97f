"""Stage 3, ``cgan.py``: the labeller (pix2pix, or its U-Net alone). Train on photo/label pairs, label whole
scenes, pseudo-label.

Modules: ``options`` (configurations and checks), ``data`` (pairs, validation scenes), ``augment``
(on-the-fly augmentations), ``losses`` (the per-pixel losses), ``model`` (the training modules: networks,
train step), ``train`` (the run on the common harness), ``infer`` (the labeller over whole scenes, flip
TTA, label), ``scene`` (one photo to its maps, strip by strip), ``archive`` (predict: every photo of a folder
tree, resumable, serially or on Dask), ``export`` (a SavedModel for other runtimes), ``cli`` (the command
line).

Usage: ``from landaug.cgan import TrainConfig, train, predict, label``;
``result = train(TrainConfig(data="images_CGAN", out="models_CGAN/before", epochs=30, width=0.5))``.
"""

from .archive import predict, run_predict
from .cli import main
from .data import train_folder
from .export import export
from .infer import LabelResult, SceneLabeller, label, run_label
from .model import Pix2Pix, UNet, build_module
from .options import (ExportConfig, LabelConfig, PredictConfig, TrainConfig, has_checkpoint, resolve, validate,
                      validate_inference)
from .train import TrainResult, run_train, train

__all__ = ["ExportConfig", "LabelConfig", "LabelResult", "Pix2Pix", "PredictConfig", "SceneLabeller", "TrainConfig",
           "TrainResult", "UNet", "build_module", "export", "has_checkpoint", "label", "main", "predict", "resolve",
           "run_label", "run_predict", "run_train", "train", "train_folder", "validate", "validate_inference"]

