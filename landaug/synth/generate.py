"""Using a trained mask-to-photo generator: ``synth.py generate`` writes synthetic (photo, label) pairs for
new layouts, ``synth.py score`` measures rendered photos against real ones.

``generate`` reads the training masks again (from the data folder in the model's config.json, only its
training scenes), makes ``--n-layouts`` layouts (``layouts``) and renders ``--per-layout`` photos of each
with different noise (oasis: latents and noise maps; SPADE: latents; pix2pix: dropout kept on). It
writes ``OUT/a/<name>.png`` photos, ``OUT/b/<name>.png`` palette labels (the layout, exact),
``OUT/classes.json``, ``OUT/layouts.json`` (kind, source masks and pasted regions of each layout) and
``OUT/config.json`` with the class pixel shares of the written layouts next to those of the training
masks. Names are ``synth_s<seed>_<layout:05d>_<k>``; the same seed gives the same files, and existing
files are never overwritten. Photos come in the training bands' data type (``bands.json`` of the model):
PNG for 8-bit RGB, GeoTIFF named by its bands otherwise; scores compare the composites of real and
rendered photos.

Usage: ``generate(GenerateConfig(model=Path("models_synth"), out=Path("generated_synth"), n_layouts=100))``;
``score(ScoreConfig(model=Path("models_synth")))`` (against the validation scenes of the model's split).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import quality
from ..bands import BANDS_FILE, BandStats, denormalise, to_display
from ..classes import ClassRegistry, load_registry
from ..config import load_config, save_config
from ..errors import UserError, check_writable
from ..files import write_json
from ..geometry import resize_label, resize_photo, scene_of
from ..harness.checkpoints import has_checkpoint, restore_objects
from ..harness.options import stored_run
from ..harness.figures import image_grid
from ..imgio import list_images, png_bands, read_label, read_model_photo, write_image, write_label, write_photo
from ..progress import progress as progress_bar
from ..split import read_split
from .diversity import diversity_report, real_reference, rendered_difference
from .layouts import LayoutMaker, class_shares, source_photo
from .model import RENDERED, build_generator
from .options import CKPT_DIR, STAGE, GenerateConfig, ScoreConfig, check_generate, check_score, training_pairs
from .render import Renderer, to_uint8

RENDER_CHUNK = 64   # layouts rendered and written per round
REFERENCE_PHOTOS = 256   # real training photos drawn for the diversity reference
GRID_LAYOUTS, GRID_RENDERINGS, GRID_CELL = 6, 4, 128    # samples.png of synth.py score
NOISE = {"spade": "latent per photo", "oasis": "latent and per-pixel noise map per photo",
         "pix2pix": "dropout kept on (training=True), batch norm at its moving statistics"}


@dataclass
class Model:
    folder: Path
    config: dict
    kind: str
    size: int
    registry: ClassRegistry
    data: Path
    train_scenes: list[str]
    stats: BandStats
    val_scenes: list[str]

    @property
    def suffix(self) -> str:
        return ".png" if png_bands(self.stats) else ".tif"


def check_model(folder: Path) -> Model:
    """A trained model folder: config.json of 'synth.py train', classes.json and a checkpoint."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(folder, "model folder does not exist (train one with synth.py train --out DIR)")
    if not has_checkpoint(folder / CKPT_DIR):
        raise UserError(folder, f"no checkpoint in {folder / CKPT_DIR} (train one with synth.py train --out {folder})")
    cfg, _ = stored_run(folder, STAGE)
    meta = load_config(folder / "config.json")
    # Models from before band normalisation were trained on 8-bit RGB photos.
    stats = BandStats.load(folder / BANDS_FILE) if (folder / BANDS_FILE).is_file() else BandStats.identity_uint8(3)
    val = meta.get("val_scenes")
    if val is None and cfg.get("split"):
        # Models from before val_scenes was recorded: their split file says it.
        val = read_split(Path(cfg["split"]))["val"]
    return Model(folder, cfg, cfg["generator"], int(meta["size"]), load_registry(folder / "classes.json"),
                 Path(meta.get("data_path") or cfg["data"]), list(meta.get("train_scenes") or []), stats,
                 list(val or []))


def load_generator(m: Model):
    """The generator of the newest checkpoint, in float32, and the checkpoint's path."""
    from ..runtime import setup_runtime

    setup_runtime("float32")
    g = build_generator(m.kind, m.size, len(m.registry), float(m.config["width"]), int(m.config["latent_dim"]),
                        bands=m.stats.n_bands)
    path = restore_objects(m.folder / CKPT_DIR, {RENDERED.get(m.kind, "generator"): g}, where=m.folder / CKPT_DIR)
    return Renderer(m.kind, g, int(m.config["latent_dim"])), path


def model_pairs(m: Model) -> list[tuple[str, Path, Path]]:
    """(stem, photo, label) of the model's training scenes in its data folder."""
    pairs, folder = training_pairs(m.data, None)
    keep = set(m.train_scenes)
    pairs = [p for p in pairs if scene_of(p[0]) in keep]
    if not pairs:
        raise UserError(folder, f"holds none of the {len(keep)} training scenes of {m.folder} (config.json "
                                "train_scenes); was the data folder moved or rewritten?")
    return pairs


def training_masks(m: Model) -> tuple[np.ndarray, list[str]]:
    """The label maps of the model's training scenes, at the model's size (255 = ignore kept)."""
    pairs = model_pairs(m)
    labels = np.stack([resize_label(read_label(b, m.registry, allow_ignore=True), m.size, "nearest")
                       for _, _, b in pairs])
    return labels, [p[0] for p in pairs]


def validation_photos(m: Model) -> list[Path]:
    """``score``'s default reference: the photos of the validation scenes of the model's split, at the
    model's resolution (the pairs of its data folder): held out from the generator, and no test photo."""
    if not m.val_scenes:
        raise UserError(m.folder, "was trained without a --split that holds validation scenes: pass --images DIR "
                                  "of held-out photos (validation photos, not test photos)")
    pairs, folder = training_pairs(m.data, None)
    keep = set(m.val_scenes)
    photos = [a for stem, a, _ in pairs if scene_of(stem) in keep]
    if not photos:
        raise UserError(folder, f"holds none of the {len(keep)} validation scenes of {m.folder} (config.json "
                                "val_scenes); was the data folder moved or rewritten?")
    return photos


def layout_name(seed: int, layout: int) -> str:
    return f"synth_s{seed}_{layout:05d}"


def photo_name(seed: int, layout: int, k: int) -> str:
    return f"{layout_name(seed, layout)}_{k}"


def _shares(shares: np.ndarray, registry: ClassRegistry) -> dict[str, float]:
    return {name: round(float(s), 6) for name, s in zip(registry.names, shares)}


def generate(cfg: GenerateConfig) -> list[Path]:
    """Write n_layouts x per_layout synthetic pairs; returns the photo paths in order."""
    kinds = check_generate(cfg)
    m = check_model(cfg.model)
    out = Path(cfg.out)
    for i in range(cfg.n_layouts):
        for k in range(cfg.per_layout):
            for sub, suffix in (("a", m.suffix), ("b", ".png")):
                p = out / sub / f"{photo_name(cfg.seed, i, k)}{suffix}"
                if p.exists():
                    raise UserError(p, f"exists from an earlier run with --seed {cfg.seed}; pass another --seed "
                                       "or another --out")
    labels, stems = training_masks(m)
    maker = LayoutMaker(labels, stems, len(m.registry))
    renderer, path = load_generator(m)
    written: list[Path] = []
    records = []
    counts = np.zeros(len(m.registry), np.float64)
    chunks = range(0, cfg.n_layouts, RENDER_CHUNK)
    for first in progress_bar(chunks, "generate", enabled=cfg.progress, total=len(chunks), unit="chunk"):
        index = list(range(first, min(first + RENDER_CHUNK, cfg.n_layouts)))
        lays = maker.make_many(cfg.seed, index, kinds, cfg.rare_boost)
        maps = np.stack([lay.label for lay in lays])
        keys = [(cfg.seed, i, k) for i in index for k in range(cfg.per_layout)]
        x = renderer.render_unit(np.repeat(maps, cfg.per_layout, axis=0), keys)
        photos = to_uint8(x) if m.suffix == ".png" else denormalise(x, m.stats)
        for j, ((seed, i, k), photo) in enumerate(zip(keys, photos)):
            name = photo_name(seed, i, k)
            target = out / "a" / f"{name}{m.suffix}"
            write_photo(target, photo, names=m.stats.names)
            write_label(out / "b" / f"{name}.png", maps[j // cfg.per_layout], m.registry)
            written.append(target)
        counts += np.bincount(maps.ravel(), minlength=256)[:len(m.registry)] * cfg.per_layout
        records += [lay.record(layout_name(cfg.seed, i)) for i, lay in zip(index, lays)]
    m.registry.save(out / "classes.json")
    m.stats.save(out / BANDS_FILE)
    write_json(out / "layouts.json", records)
    kinds_count = {kind: sum(r["kind"] == kind for r in records) for kind in kinds}
    save_config(out / "config.json", cfg, stage="synth generate", checkpoint=path, generator=m.kind,
                written=len(written), layouts=kinds_count, pasted=sum(r["pasted"] for r in records),
                noise=NOISE[m.kind],
                class_shares={"written": _shares(counts / max(counts.sum(), 1.0), m.registry),
                              "training_masks": _shares(class_shares(labels, len(m.registry)), m.registry)},
                model_train_scenes=m.train_scenes)
    return written


def _display(m: Model, path: Path) -> np.ndarray:
    """A photo's 8-bit composite at the model's size."""
    return to_display(resize_photo(read_model_photo(path, m.stats).data, m.size), m.stats)


def score(cfg: ScoreConfig) -> dict:
    """SWD (and the other quality scores) of rendered photos against real photos (cfg.images), their
    diversity and a sample grid.

    The photos are rendered from new layouts made of the training masks (by default mosaics, which the
    generator has never seen as a whole; flips of training masks would reward a generator that memorised
    its training photos), one photo each, no rare boost, so the real folder needs no labels. The real
    photos (by default the validation scenes' pairs, never test photos) are brought to the model's size. A
    second photo of each layout, with other noise, gives ``diversity_same_layout`` (``diversity``);
    ``samples.png`` shows ``GRID_RENDERINGS`` photos of each of ``GRID_LAYOUTS`` layouts beside the real
    training photo the layout was cut from."""
    kinds = check_score(cfg)
    m = check_model(cfg.model)
    files = list_images(Path(cfg.images)) if cfg.images is not None else validation_photos(m)
    if not files:
        raise UserError(cfg.images, "holds no photos (png, jpg, tif) to compare with")
    out = Path(cfg.out) if cfg.out is not None else m.folder / "score"
    check_writable(out)
    real = np.stack([_display(m, f) for f in files])
    labels, stems = training_masks(m)
    maker = LayoutMaker(labels, stems, len(m.registry))
    layouts = maker.make_many(cfg.seed, range(cfg.n), kinds, 0.0)
    maps = np.stack([lay.label for lay in layouts])
    renderer, path = load_generator(m)

    def render(index, k):
        return to_display(renderer.render_unit(maps[list(index)], [(cfg.seed, i, k) for i in index]), m.stats,
                          normalised=True)

    fake = render(range(cfg.n), 0)
    report = quality.score_sets(real, fake, seed=cfg.seed, flip_rotate=True)
    report["checkpoint"] = path
    report["generator"] = m.kind
    report["reference"] = ({"images": str(cfg.images)} if cfg.images is not None else
                           {"validation_scenes": m.val_scenes, "data": str(m.data)})
    photo_of = {stem: a for stem, a, _ in model_pairs(m)}
    pick = np.sort(np.random.default_rng([cfg.seed, 11]).permutation(len(stems))[:REFERENCE_PHOTOS])
    reference = real_reference(np.stack([_display(m, photo_of[stems[i]]) for i in pick]), labels[pick],
                               [scene_of(stems[i]) for i in pick], len(m.registry), cfg.seed)
    report["diversity_same_layout"] = {
        **diversity_report(rendered_difference(fake, render(range(cfg.n), 1), maps, len(m.registry)), reference,
                           m.registry.names), "n_layouts": cfg.n, "n_reference_photos": int(len(pick))}
    out.mkdir(parents=True, exist_ok=True)
    quality.nearest_figure(fake, real, report["nearest"], out / "nearest.png", flip_rotate=True)
    grid = [[m.registry.colorize(maps[i]), *[render([i], k)[0] for k in range(GRID_RENDERINGS)],
             source_photo(layouts[i], lambda stem: _display(m, photo_of[stem]))]
            for i in range(min(GRID_LAYOUTS, cfg.n))]
    write_image(out / "samples.png", image_grid(grid, cell=GRID_CELL, nearest=[True] + [False] * (GRID_RENDERINGS + 1)))
    write_json(out / "score.json", report)
    report["layouts"] = list(kinds)
    save_config(out / "config.json", cfg, stage="synth score", checkpoint=path, generator=m.kind)
    return report
