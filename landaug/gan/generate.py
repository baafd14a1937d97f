"""Using a trained DCGAN: ``gan.py generate`` writes synthetic scenes, ``gan.py score`` measures them.

Generated photos are brought back to the training bands' data type (``bands.json`` of the model): 8-bit
RGB scenes are PNGs as always, other band sets GeoTIFFs named by their bands. Scores compare the
composites of real and generated scenes (``bands.json``'s ``rgb``).

Usage: ``generate(GenerateConfig(model=Path("models_GAN"), n=200, out=Path("generated_images")))``;
``print(format_score(score(ScoreConfig(model=Path("models_GAN"), images=Path("images")))))``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import quality
from ..bands import BANDS_FILE, BandStats, denormalise, to_display
from ..classes import ClassRegistry, load_registry
from ..config import load_config, save_config
from ..errors import UserError, check_writable
from ..files import write_json
from ..geometry import resize_photo
from ..harness.checkpoints import has_checkpoint, restore_objects
from ..harness.options import stored_run
from ..imgio import list_images, png_bands, read_model_photo, write_label, write_photo
from ..models import dcgan
from ..progress import progress as progress_bar
from ..runtime import call_inference, model_function, setup_runtime
from .data import label_frequencies, latents, to_label, to_uint8_photo
from .options import CKPT_DIR, STAGE, GenerateConfig, ScoreConfig, scan_scenes


@dataclass
class Model:
    folder: Path
    config: dict
    size: int
    n_classes: int
    registry: ClassRegistry | None
    train_scenes: list[str] | None = None
    stats: BandStats | None = None

    @property
    def bands(self) -> int:
        return self.stats.n_bands


def check_model(folder: Path) -> Model:
    """A trained model folder: config.json of 'gan.py train' and at least one checkpoint."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(folder, "model folder does not exist (train one with gan.py train --out DIR)")
    if not has_checkpoint(folder / CKPT_DIR):
        raise UserError(folder, f"no checkpoint in {folder / CKPT_DIR} (train one with gan.py train --out "
                                f"{folder})")
    cfg, _ = stored_run(folder, STAGE)
    registry = load_registry(folder / "classes.json") if cfg.get("with_labels") else None
    scenes = load_config(folder / "config.json").get("train_scenes")
    # Models from before band normalisation were trained on 8-bit RGB photos.
    stats = BandStats.load(folder / BANDS_FILE) if (folder / BANDS_FILE).is_file() else BandStats.identity_uint8(3)
    return Model(folder, cfg, int(cfg["size"]), len(registry) if registry else 0, registry, scenes, stats)


def load_generator(m: Model):
    """The EMA generator of the newest checkpoint, in float32."""
    setup_runtime("float32")
    g = dcgan.build_generator(m.size, int(m.config["width"]), int(m.config["latent_dim"]), m.n_classes,
                              name="generator_ema", bands=m.bands)
    path = restore_objects(m.folder / CKPT_DIR, {"generator_ema": g}, where=m.folder / CKPT_DIR)
    return g, path


def run_generator(g, z: np.ndarray, batch: int, progress: bool, desc: str) -> np.ndarray:
    fn = model_function(call_inference, g)
    outs = [np.asarray(fn(z[i:i + batch])) for i in progress_bar(range(0, len(z), batch), desc, enabled=progress,
                                                                  leave=False)]
    return np.concatenate(outs) if outs else np.zeros((0,))


def scene_name(seed: int, index: int) -> str:
    return f"gan_s{seed}_{index:05d}"


def photos_out(m: Model, x: np.ndarray) -> np.ndarray:
    """Generated photos in the training bands' type."""
    return to_uint8_photo(x, m.bands) if png_bands(m.stats) else denormalise(x[..., :m.bands], m.stats)


def check_generate(cfg: GenerateConfig) -> None:
    if cfg.n <= 0:
        raise UserError(f"--n must be > 0, got {cfg.n}")
    if cfg.batch <= 0:
        raise UserError(f"--batch must be > 0, got {cfg.batch}")
    if cfg.truncation is not None and cfg.truncation <= 0:
        raise UserError(f"--truncation must be > 0, got {cfg.truncation}")
    if cfg.seed < 0:
        raise UserError(f"--seed must be >= 0, got {cfg.seed}")
def generate(cfg: GenerateConfig) -> list[Path]:
    """Write cfg.n scenes (photos, or a/ photos + b/ labels for a paired model); returns the photo paths."""
    check_generate(cfg)
    m = check_model(cfg.model)
    out = Path(cfg.out)
    check_writable(out)
    paired = m.n_classes > 0
    photo_dir = out / "a" if paired else out
    suffix = ".png" if png_bands(m.stats) else ".tif"
    names = [scene_name(cfg.seed, i) for i in range(cfg.n)]
    todo = []
    for i, name in enumerate(names):
        exists = (photo_dir / f"{name}{suffix}").exists() or (paired and (out / "b" / f"{name}.png").exists())
        if exists and not cfg.skip_existing:
            raise UserError(photo_dir / f"{name}{suffix}", "exists from an earlier run with --seed "
                                                        f"{cfg.seed}; pass another --seed, another --out, or "
                                                        "--skip-existing to add only the missing scenes")
        if not exists:
            todo.append(i)
    z = latents(cfg.seed, todo, int(m.config["latent_dim"]), cfg.truncation)
    written: list[Path] = []
    if todo:
        g, path = load_generator(m)
        x = run_generator(g, z, cfg.batch, cfg.progress, "generate")
        photos = photos_out(m, x)
        labels = to_label(x, m.bands) if paired else None
        for row, i in enumerate(progress_bar(todo, "write", enabled=cfg.progress, leave=False)):
            p = photo_dir / f"{names[i]}{suffix}"
            write_photo(p, photos[row], names=m.stats.names)
            if paired:
                write_label(out / "b" / f"{names[i]}.png", labels[row], m.registry)
            written.append(p)
    else:
        path = None
    if paired:
        m.registry.save(out / "classes.json")
    m.stats.save(out / BANDS_FILE)
    previous = []
    if (out / "config.json").is_file():
        try:
            old = json.loads((out / "config.json").read_text())
            previous = old.get("previous_runs", []) + [{k: old.get(k) for k in ("created", "command", "config")}]
        except (OSError, json.JSONDecodeError):
            previous = []
    save_config(out / "config.json", cfg, stage="gan generate", checkpoint=path, written=len(written),
                paired=paired, model_train_scenes=m.train_scenes, previous_runs=previous)
    return written


def score(cfg: ScoreConfig) -> dict:
    """Score a trained model against real scenes; writes score.json and nearest.png; returns the report."""
    if cfg.n <= 1:
        raise UserError(f"--n must be > 1, got {cfg.n}")
    if cfg.truncation is not None and cfg.truncation <= 0:
        raise UserError(f"--truncation must be > 0, got {cfg.truncation}")
    if cfg.inception_weights is not None and not Path(cfg.inception_weights).is_file():
        raise UserError(cfg.inception_weights, "InceptionV3 weights file not found")
    m = check_model(cfg.model)
    files = list_images(Path(cfg.images))
    scan_scenes(files, Path(cfg.images))
    out = Path(cfg.out) if cfg.out is not None else m.folder / "score"
    check_writable(out)
    real = np.stack([to_display(resize_photo(read_model_photo(f, m.stats).data, m.size), m.stats)
                     for f in progress_bar(files, "decode", enabled=cfg.progress, leave=False)])
    g, path = load_generator(m)
    z = latents(cfg.seed, range(cfg.n), int(m.config["latent_dim"]), cfg.truncation)
    x = run_generator(g, z, 32, cfg.progress, "generate")
    fake = to_display(x[..., :m.bands], m.stats, normalised=True)
    flip = bool(m.config.get("flip_rotate", True))
    report = quality.score_sets(real, fake, seed=cfg.seed, flip_rotate=flip,
                                inception_weights=cfg.inception_weights)
    if m.n_classes and (m.folder / "label_frequencies.json").is_file():
        freq = json.loads((m.folder / "label_frequencies.json").read_text())["frequencies"]
        report["class_mix"] = quality.class_frequency_distance(freq, label_frequencies(to_label(x, m.bands),
                                                                                      m.n_classes))
    report["checkpoint"] = path
    out.mkdir(parents=True, exist_ok=True)
    quality.nearest_figure(fake, real, report["nearest"], out / "nearest.png", flip_rotate=flip)
    write_json(out / "score.json", report)
    save_config(out / "config.json", cfg, stage="gan score", checkpoint=path)
    return report


COPY_RATIO = 0.5


def format_score(report: dict) -> str:
    swd = report["swd"]
    near = report["nearest"]
    # Only a ratio well below 1 is a finding (copies, or blur that sits close to everything in L2).
    verdict = ("; well below 1: samples copy training scenes or are blurry, see nearest.png"
               if near["ratio"] < COPY_RATIO else "")
    lines = [f"SWD x1e3: mean {swd['mean']:.2f} | " + ", ".join(f"{r}px {v:.2f}" for r, v in swd["levels"].items()),
             f"histogram distance: {report['histogram']['mean']:.4f} (r {report['histogram']['red']:.4f}, "
             f"g {report['histogram']['green']:.4f}, b {report['histogram']['blue']:.4f})",
             f"nearest real scene: median RMS {near['median_distance']:.4f} vs "
             f"{near['real_median_distance']:.4f} between real scenes (ratio {near['ratio']:.2f}{verdict})"]
    if "class_mix" in report:
        lines.append(f"class mix distance: {report['class_mix']:.4f}")
    if "fid" in report:
        lines.append(f"FID {report['fid']:.2f}, KID {report['kid']:.4f}")
    return "\n".join(lines)
