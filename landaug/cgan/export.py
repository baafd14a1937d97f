"""``cgan.py export``: a trained labeller as a TensorFlow SavedModel, for runtimes other than this tool.

The SavedModel's serving signature (``serving_default``) takes a batch of windows as the network sees them,
``windows``: float32 (None, S, S, bands), each band already normalised to [-1, 1] as ``landaug.bands``
does (``normalisation`` below), and returns ``probabilities``: float32 (None, S, S, classes), the softmax
of the class logits (for a ``--target rgb`` model, the class weights from the colour distances). The
generator is built and restored exactly as ``cgan.py predict`` builds it (``SceneLabeller.load``: the
labeller options in ``model.json``), and the signature is predict's own per-window function, so an option
that changes how a window is labelled is followed without a change here.

Beside it, ``DIR/landaug.json`` says how to feed it and read it back, from ``model.json``: ``size`` (S),
``bands`` (their numbers and names in the photos), ``normalisation`` (per band: ``x = clip((raw - low) /
(high - low) * 2 - 1, -1, 1)``, NaN as -1; 8-bit RGB models: ``raw / 127.5 - 1``), ``scale`` (model px
per photo px: resample photos by it first) or ``fit`` (the whole photo fitted to one window: ``crop`` its
centred square, ``pad`` mirrored to a square), ``classes`` (index, name, colour), ``tta`` (flip averaging
``predict`` applies to whole scenes, not part of the signature), and the signature's names and shapes.
Whole scenes are labelled by cutting overlapping windows, as README describes for ``predict``.

Usage: ``export(ExportConfig(model=Path("models_CGAN"), out=Path("labeller_savedmodel")))``;
``python cgan.py export --model models_CGAN --format savedmodel --out labeller_savedmodel``.
"""

from __future__ import annotations

from pathlib import Path

from ..files import write_json
from .infer import SceneLabeller
from .options import ExportConfig, read_model_json, validate_export

SIDECAR = "landaug.json"
SIGNATURE = "serving_default"
INPUT_NAME = "windows"
OUTPUT_NAME = "probabilities"


def _description(cfg: ExportConfig, labeller: SceneLabeller, desc: dict, precision: str) -> dict:
    stats = labeller.stats
    size, bands, classes = labeller.size, stats.n_bands, len(labeller.registry)
    normalisation = {"kind": "x / 127.5 - 1" if stats.is_identity_uint8 else
                     "clip((raw - low) / (high - low) * 2 - 1, -1, 1), NaN -> -1",
                     "low": stats.low, "high": stats.high, "dtype": stats.dtype}
    return {"format": "savedmodel", "source": str(Path(cfg.model).resolve()), "checkpoint": cfg.checkpoint,
            "precision": precision, "size": size,
            "bands": {"numbers": stats.bands, "names": stats.names, "count": bands},
            "normalisation": normalisation, "band_stats": stats.to_json(),
            "scale": desc.get("scale", 1.0), "fit": desc.get("fit"), "tta": labeller.tta,
            "classes": desc["classes"],
            "labeller": {k: desc.get(k) for k in ("labeller", "target", "width", "upsample", "loss")},
            "signature": {"name": SIGNATURE,
                          "input": {"name": INPUT_NAME, "dtype": "float32", "shape": [None, size, size, bands]},
                          "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [None, size, size, classes]}}}


def export(cfg: ExportConfig) -> Path:
    """Write the SavedModel and ``landaug.json`` into ``cfg.out``; returns the folder."""
    validate_export(cfg)
    import tensorflow as tf

    labeller = SceneLabeller.load(cfg.model, cfg.checkpoint, cfg.precision)
    spec = tf.TensorSpec([None, labeller.size, labeller.size, labeller.stats.n_bands], tf.float32, name=INPUT_NAME)
    window_probabilities = labeller.fn

    @tf.function(input_signature=[spec])
    def serve(windows):
        return {OUTPUT_NAME: tf.cast(window_probabilities(windows), tf.float32)}

    module = tf.Module()
    module.generator = labeller.gen       # tracked, so the weights are saved
    module.serve = serve
    out = Path(cfg.out)
    tf.saved_model.save(module, str(out), signatures={SIGNATURE: serve})
    import keras

    precision = keras.mixed_precision.global_policy().name
    write_json(out / SIDECAR, _description(cfg, labeller, read_model_json(cfg.model), precision))
    return out
