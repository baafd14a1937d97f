"""The trained labeller over whole scenes (``SceneLabeller``), and ``cgan.py label``.

Any photo, of any size and aspect, is brought to the model's scale (recorded in ``model.json`` when it was
trained: 1 for native-resolution tiles, F for tiles of scenes resampled by F; a model trained on whole
scenes each fitted to the window, ``fit``, fits each photo the same way: 128/1000 for a 1000 px scene
and a 128 px model), cut into overlapping windows of the model's size, and the windows' class
probabilities are blended and brought back to the photo's own size, strip by strip
(``landaug.blockwise``): the label map has exactly the photo's size and no seams, and a scene of any size
takes the same memory. A photo gives the model the bands it was trained on (``model.json``'s band
normalisation: by band name when the photo was written by this tool, else by the band numbers of the
training scenes). With ``tta="flips"`` (the model's own choice in ``model.json`` unless ``--tta`` says
otherwise) a photo's class probabilities are the mean over the photo and its three mirror images, each
labelled as a photo of its own and mirrored back, summed in an order that a mirror of the photo only
permutes within pairs: a mirrored photo gets exactly the mirrored labels. ``label`` pseudo-labels photos
(generated scenes, at the model's own resolution: scale 1 unless told otherwise) into ``OUT/a`` + ``OUT/b``
for ``train --extra``; ``cgan.predict`` (``landaug.cgan.archive``) writes label maps of whole archives.

Usage: ``labeller = SceneLabeller.load(model_dir)``; ``label, confidence = labeller(photo)``;
``labeller.label_rows(source, scale, sink)``; ``label(model, images, out, min_confidence=0.6)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..bands import BANDS_FILE, BandStats, normalise
from ..blockwise import label_strips, predict_scene
from ..classes import IGNORE_INDEX, ClassRegistry
from ..config import save_config
from ..errors import UserError
from ..geoio import Raster
from ..harness.checkpoints import restore_objects
from ..imgio import list_images, photo_suffix, read_model_photo, write_label, write_photo
from ..progress import progress
from ..runtime import call_inference, model_function, setup_runtime
from ..tiling import labels_and_confidence
from .model import build_labeller, decoder, weights_at_compute_precision
from .options import (MODEL_DEFAULTS, LabelConfig, checkpoint_folder, model_band_stats, read_model_json,
                      validate_inference)


def to_unit(photo: np.ndarray, stats: BandStats | None = None) -> np.ndarray:
    """A photo as the model sees it: float32 in [-1, 1] (8-bit RGB: x / 127.5 - 1)."""
    return normalise(photo, stats if stats is not None else BandStats.identity_uint8(photo.shape[-1]))


def _probabilities(gen, decode, x):
    return decode(gen(x, training=False))


class SceneLabeller:
    """A generator (trained on ``size`` px windows at ``scale``, or on whole scenes each fitted to the
    window, ``fit``) that labels whole scenes.

    ``fn`` is the forward pass and decoder as one plain graph (what ``cgan.py export`` saves and the
    benchmarks count); ``forward``, what labelling runs, computes the same with the decoder compiled by XLA:
    it fuses the cast and the softmax over the windows' few classes, a last axis too short for TensorFlow's
    own kernels to run fast on a CPU (1.04-1.13x a scene, ``bench.py --ablation inference``). The network
    itself stays uncompiled: XLA's convolutions are slower there (docs/PERFORMANCE.md)."""

    def __init__(self, gen, target: str, registry: ClassRegistry, size: int, scale: float | None = 1.0,
                 overlap: float = 0.25, batch: int = 8, stats: BandStats | None = None, fit: str | None = None,
                 tta: str = "none"):
        self.registry, self.size, self.scale, self.overlap, self.batch = registry, size, scale, overlap, batch
        self.gen, self.fit, self.tta = gen, fit, tta
        self.n_classes = len(registry)
        self.stats = stats if stats is not None else BandStats.identity_uint8(int(gen.inputs[0].shape[-1]))
        decode = decoder(target, registry.colors)
        self.fn = model_function(_probabilities, gen, decode, reduce_retracing=True)
        network = model_function(call_inference, gen, reduce_retracing=True)
        compiled = model_function(decode, jit_compile=True)
        self.forward = lambda x: compiled(network(x))

    def _run(self, x: np.ndarray) -> np.ndarray:
        # A fixed batch shape: the last, partial batch of windows must not trace the function again.
        n = len(x)
        if n < self.batch:
            x = np.concatenate([x, np.zeros((self.batch - n, *x.shape[1:]), x.dtype)])
        return np.asarray(self.forward(x))[:n]

    def scale_for(self, height: int, width: int) -> float:
        """Model px per photo px: the training scale, or a photo fitted to the window as the training scenes
        were (``crop``: its short side, ``pad``: its long side)."""
        if self.fit is None:
            return self.scale
        return self.size / (min(height, width) if self.fit == "crop" else max(height, width))

    def probabilities(self, photo: np.ndarray, scale: float | None = None) -> np.ndarray:
        """Class probabilities (H, W, K) of a photo held in memory (raw bands)."""
        scale = self.scale_for(*photo.shape[:2]) if scale is None else scale
        return predict_scene(to_unit(photo, self.stats), self._run, self.size, self.n_classes, scale=scale,
                             overlap=self.overlap, batch=self.batch, tta=self.tta)

    def label_rows(self, source, scale: float, sink) -> None:
        """Label a photo given as rows (``landaug.blockwise``: ``source.read(a, b)`` -> normalised rows,
        validity): ``sink(row, probs, valid)`` gets its class probabilities strip by strip, top to bottom."""
        label_strips(source, self._run, self.size, self.n_classes, sink, scale=scale, overlap=self.overlap,
                     batch=self.batch, tta=self.tta)

    def __call__(self, photo: np.ndarray, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(label (H, W) uint8, confidence (H, W) float32) at the photo's own size."""
        return labels_and_confidence(self.probabilities(photo, scale))

    @classmethod
    def load(cls, model_dir: Path, checkpoint: str = "best", precision: str = "auto", overlap: float = 0.25,
             batch: int = 8, tta: str | None = None, as_trained: bool = False) -> "SceneLabeller":
        """The model of ``model_dir`` built for inference, or with ``as_trained`` as training built it (float32
        logits layer, one plain graph: what ``experiments/logits_precision.py`` compares against)."""
        desc = read_model_json(model_dir)
        where = Path(model_dir) / "model.json"
        try:
            registry = ClassRegistry.from_json(desc["classes"], where=where)
            size, width, target = int(desc["size"]), float(desc["width"]), str(desc["target"])
            dropout, scale, fit = float(desc.get("dropout", 0.5)), desc.get("scale", 1.0), desc.get("fit")
            scale = None if scale is None else float(scale)
            bands = int(desc.get("bands", 3))
            if fit not in (None, "crop", "pad") or (scale is None and fit is None):
                raise ValueError(f"fit {fit!r} with scale {scale!r}: expected a scale, or fit crop or pad")
            upsample, tta = desc.get("upsample", MODEL_DEFAULTS["upsample"]), tta or desc.get("tta", "none")
        except (KeyError, TypeError, ValueError) as e:
            raise UserError(where, f"incomplete model description ({e})") from None
        stats = model_band_stats(desc, where)
        setup_runtime(precision)
        # Dropout layers hold no weights but shift the layer indices the checkpoint is keyed by. Built for
        # inference: the logits layer at the compute precision, the convolutions' weights held there.
        gen = build_labeller(size, width, target, len(registry), dropout=dropout, bands=bands, upsample=upsample,
                             inference=not as_trained)
        restore_objects(checkpoint_folder(model_dir, checkpoint), {"generator": gen}, where=model_dir)
        if as_trained:
            labeller = cls(gen, target, registry, size, scale, overlap, batch, stats, fit, tta)
            labeller.forward = labeller.fn
            return labeller
        return cls(weights_at_compute_precision(gen), target, registry, size, scale, overlap, batch, stats, fit, tta)


@dataclass
class LabelResult:
    out: Path
    written: int
    dropped: int
    ignored_fraction: float


def label_scene(labeller: SceneLabeller, photo: Raster, scale: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(label, confidence) of a photo; pixels without data are ignored (255, confidence 0)."""
    lab, conf = labeller(photo.data, scale)
    if not photo.valid.all():
        lab = np.where(photo.valid, lab, IGNORE_INDEX).astype(np.uint8)
        conf = np.where(photo.valid, conf, 0.0).astype(np.float32)
    return lab, conf


def run_label(cfg: LabelConfig) -> LabelResult:
    photos = list_images(cfg.images, "image folder")
    labeller = SceneLabeller.load(cfg.model, cfg.checkpoint, cfg.precision, cfg.overlap, cfg.batch, cfg.tta)
    out = Path(cfg.out)
    # Both folders exist even when every scene is dropped, so train --extra OUT stays valid.
    (out / "a").mkdir(parents=True, exist_ok=True)
    (out / "b").mkdir(parents=True, exist_ok=True)
    written, dropped, ignored, total = 0, [], 0, 0
    stats = labeller.stats
    for path in progress(photos, "cgan label", cfg.progress, unit="image"):
        photo = read_model_photo(path, stats)
        lab, conf = label_scene(labeller, photo, cfg.scale)
        if cfg.min_confidence is not None:
            if float(conf.mean()) < cfg.min_confidence:
                dropped.append(path.stem)
                continue
            lab = np.where(conf < cfg.min_confidence, IGNORE_INDEX, lab).astype(np.uint8)
        ignored += int((lab == IGNORE_INDEX).sum())
        total += lab.size
        suffix = photo_suffix(photo.data, photo.georef, stats.names, photo.nodata)
        write_photo(out / "a" / f"{path.stem}{suffix}", photo.data, photo.georef, photo.nodata, stats.names)
        write_label(out / "b" / f"{path.stem}.png", lab, labeller.registry)
        written += 1
    result = LabelResult(out=out, written=written, dropped=len(dropped),
                         ignored_fraction=ignored / total if total else 0.0)
    if dropped:
        print(f"cgan label: dropped {len(dropped)} of {len(photos)} scenes with mean confidence below "
              f"{cfg.min_confidence}", flush=True)
    stats.save(out / BANDS_FILE)
    model_cfg = read_model_json(cfg.model).get("train_scenes")
    save_config(out / "config.json", cfg, stage="cgan-label", written=written, dropped=dropped,
                ignored_fraction=result.ignored_fraction, model_train_scenes=model_cfg)
    return result


def label(model, images, out, min_confidence: float | None = None, checkpoint: str = "best", batch: int = 8,
          overlap: float = 0.25, precision: str = "auto", progress: bool = True, scale: float | None = 1.0,
          tta: str | None = None) -> LabelResult:
    """Pseudo-label the photos of ``images`` into ``out/a`` + ``out/b``, ready for ``train --extra``."""
    cfg = LabelConfig(Path(model), Path(images), Path(out), min_confidence, checkpoint, batch, overlap, precision,
                      progress, scale, tta)
    validate_inference(cfg)
    return run_label(cfg)
