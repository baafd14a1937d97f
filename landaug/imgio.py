"""Reading and writing scenes and label maps: photos, palette/RGB/grey masks, atomic writes, pairing by stem.

Photos are PNG/JPEG (8-bit RGB, read with PIL) or GeoTIFFs of any number of bands and data type (read with
rasterio, ``geoio``); ``read_photo`` returns either as a ``geoio.Raster``, and ``write_photo`` writes a
3-band 8-bit photo without georeference as PNG, anything else as GeoTIFF. Single-band GeoTIFF masks are
read with their nodata as 255 (ignore). ``read_model_photo`` reads the bands a model was trained on.

Usage: ``photo = read_image(p)``; ``label = read_label(p, registry)``; ``write_label(p, label, registry)``;
``r = read_model_photo(p, stats)``; ``write_photo(out / f"{stem}{photo_suffix(r.data, r.georef, names)}", ...)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image, UnidentifiedImageError

from .bands import BANDS_FILE, BandStats
from .classes import IGNORE_INDEX, ClassRegistry
from .colours import ColourMatch, rgb_to_label
from .errors import UserError
from .files import atomic_output, find_upward
from .geoio import (GeoRef, Raster, check_raster, is_raster, raster_bands, raster_count, raster_size,
                    read_mask_raster, read_raster, select_bands, write_raster)

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise UserError(path, "file not found")
    try:
        im = Image.open(path)
        im.load()
    except UnidentifiedImageError:
        raise UserError(path, "not an image this tool can read (png, jpg, tif)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(path, f"unreadable or truncated image ({e})") from None
    return im


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only."""
    path = Path(path)
    if is_raster(path):
        return raster_size(path)
    try:
        with Image.open(path) as im:
            return im.size
    except FileNotFoundError:
        raise UserError(path, "file not found") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(path, f"not a readable image ({e})") from None


def check_photo(path: str | Path) -> None:
    """The photo will decode, checked fast before any work: a GeoTIFF's header and last block, a JPEG decoded
    at 1/8 scale, a PNG's chunk checksums and its end (without inflating it)."""
    path = Path(path)
    if is_raster(path):
        check_raster(path)
        return
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft(im.mode, (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
            else:
                im.verify()
    except FileNotFoundError:
        raise UserError(path, "file not found") from None
    except UnidentifiedImageError:
        raise UserError(path, "not an image this tool can read (png, jpg, tif)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise UserError(path, f"unreadable or truncated image ({e})") from None


def read_image(path: str | Path) -> np.ndarray:
    """A photo as (H, W, 3) uint8 RGB; grey and RGBA inputs are converted, 16-bit scaled to 8-bit."""
    path = Path(path)
    im = _open(path)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        hi = a.max() or 1.0
        im = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8))
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def check_label_values(label: np.ndarray, registry: ClassRegistry, where: str | Path | None = None,
                       allow_ignore: bool = False) -> np.ndarray:
    """Class indices of a mask that holds class values (as ``registry.mask_values`` number them)."""
    lut = registry.value_table(allow_ignore)
    bad = [int(v) for v in np.unique(label) if lut[v] < 0]
    if bad:
        raise UserError(where, f"mask values that are no class: {bad[:10]} "
                               f"(class values: {registry.describe_values(allow_ignore)})")
    return label if not registry.mask_values and not registry.ignore_values else lut[label].astype(np.uint8)


def palette_is_registry(im: Image.Image, registry: ClassRegistry) -> bool:
    """True when the palette shows the registry's class colours at the classes' values (their indices, in
    order, for the label maps this tool writes): the mask was written with these classes, so its values are
    class values. A palette of its own means the colours are what the mask says."""
    pal = np.array(im.getpalette() or [], np.int64).reshape(-1, 3)
    values = list(registry.mask_values or range(len(registry)))
    return len(pal) > max(values) and np.array_equal(pal[values], registry.colors.astype(np.int64))


def read_label(path: str | Path, registry: ClassRegistry, allow_ignore: bool = False,
               match: ColourMatch | None = None) -> np.ndarray:
    """A label map as (H, W) uint8 class indices, from a palette, grey-index or RGB-colour mask.

    A palette mask whose palette shows the registry's colours is read by value; any other palette mask is
    read through its colours, like an RGB mask, so a palette of its own is never taken for class indices.
    Colours must be exact unless ``match`` carries a tolerance (``landaug.colours``).
    A single-band GeoTIFF holds class indices; its nodata pixels become ``IGNORE_INDEX`` (no data is not a
    class, so they are allowed whatever ``allow_ignore`` says)."""
    path = Path(path)
    if is_raster(path) and raster_count(path) == 1:
        label, valid = read_mask_raster(path, IGNORE_INDEX)
        classes = check_label_values(label[valid], registry, path, allow_ignore)
        label[valid] = classes
        return label
    im = _open(path)
    if im.mode == "P":
        label = np.asarray(im, dtype=np.uint8)
        if not palette_is_registry(im, registry):
            return rgb_to_label(np.asarray(im.convert("RGB")), registry, path, allow_ignore=allow_ignore,
                                match=match)
    elif im.mode in ("L", "1", "I", "I;16", "I;16B", "I;16L", "LA"):
        a = np.asarray(im.convert("I") if im.mode != "L" else im)
        if a.max(initial=0) > 255:
            raise UserError(path, f"mask values that are no class: max {int(a.max())}")
        label = a.astype(np.uint8)
    elif im.mode in ("RGB", "RGBA"):
        return rgb_to_label(np.asarray(im.convert("RGB")), registry, path, allow_ignore=allow_ignore, match=match)
    else:
        raise UserError(path, f"unsupported mask mode {im.mode!r} (use palette, grey index or RGB colour)")
    return check_label_values(label, registry, path, allow_ignore)


def generic_names(n: int) -> list[str]:
    return [f"band{i}" for i in range(1, n + 1)]


def photo_bands(path: str | Path) -> tuple[int, str, list[str]]:
    """(band count, data type, band names) from the header: PNG/JPEG photos are 3 8-bit bands."""
    if is_raster(path):
        return raster_bands(path)
    image_size(path)
    return 3, "uint8", generic_names(3)


def read_photo(path: str | Path, bands: list[int] | None = None) -> Raster:
    """The photo's bands (1-based, in the order given; default all) with validity and georeference."""
    path = Path(path)
    if is_raster(path):
        return read_raster(path, bands)
    rgb = read_image(path)
    h, w = rgb.shape[:2]
    whole = Raster(rgb, np.ones((h, w), bool), GeoRef(None, None, w, h), generic_names(3))
    return select_bands(whole, bands, path)


def model_bands(path: str | Path, stats: BandStats) -> list[int] | None:
    """Which bands of a photo feed a model normalised by ``stats``: all of them when the photo holds
    exactly the model's bands by name (written by a stage of this tool), else the model's band numbers
    of the original scene (``stats.bands``)."""
    count, _, names = photo_bands(path)
    if count == stats.n_bands and names == stats.names:
        return None
    if max(stats.bands) > count:
        raise UserError(path, f"has {count} band{'s' if count != 1 else ''} ({', '.join(names)}); the model "
                              f"takes bands {stats.bands} ({', '.join(stats.names)}) of its training scenes")
    return stats.bands


def check_dtype(path: str | Path, dtype, stats: BandStats) -> None:
    if np.dtype(dtype) != np.dtype(stats.dtype):
        raise UserError(path, f"holds {np.dtype(dtype)} bands but the model's normalisation ({BANDS_FILE}) is for "
                              f"{stats.dtype}: convert the photo to {stats.dtype}")


def read_model_photo(path: str | Path, stats: BandStats) -> Raster:
    """The photo's bands that the model was trained on, in its data type (checked)."""
    r = read_photo(path, model_bands(path, stats))
    check_dtype(path, r.dtype, stats)
    return r


def check_model_photo(path: str | Path, stats: BandStats) -> None:
    """``read_model_photo``'s checks from the header, and that the photo decodes (``check_photo``)."""
    check_photo(path)
    model_bands(path, stats)
    check_dtype(path, photo_bands(path)[1], stats)


def find_band_stats(folder: str | Path, up: int = 2) -> BandStats | None:
    """``bands.json`` in ``folder`` or up to ``up`` folders above it (stage 1 writes it beside its data)."""
    found = find_upward(folder, BANDS_FILE, up)
    return None if found is None else BandStats.load(found)


def band_stats_for(folder: str | Path, photo: str | Path, up: int = 2) -> BandStats:
    """The normalisation of a data folder: its ``bands.json`` (see ``find_band_stats``), or for 8-bit
    3-band photos without one (hand-made folders, older runs) x / 127.5 - 1."""
    stats = find_band_stats(folder, up)
    if stats is not None:
        return stats
    count, dtype, _ = photo_bands(photo)
    if dtype == "uint8" and count == 3:
        return BandStats.identity_uint8(3)
    raise UserError(folder, f"no {BANDS_FILE} here or above, and the photos hold {count} {dtype} bands: run "
                            f"resize_to_256.py on the scenes (it learns the band normalisation from the training "
                            f"scenes) or copy its images_CGAN/{BANDS_FILE} here")


def is_png_photo(data: np.ndarray, georef: GeoRef | None = None, names: list[str] | None = None,
                 nodata=None) -> bool:
    """A photo that PNG holds without loss: 3 8-bit bands in their own order, no place on the ground and
    no nodata value."""
    plain_names = names is None or list(names) == generic_names(3)
    return (data.ndim == 3 and data.shape[-1] == 3 and data.dtype == np.uint8 and plain_names
            and (georef is None or not georef.is_georeferenced) and nodata is None)


def png_bands(stats: BandStats) -> bool:
    """Generated photos of these bands are PNGs (3 8-bit bands in their own order), others GeoTIFFs."""
    return stats.n_bands == 3 and stats.dtype == "uint8" and stats.names == generic_names(3)


def photo_suffix(data: np.ndarray, georef: GeoRef | None = None, names: list[str] | None = None,
                 nodata=None) -> str:
    return ".png" if is_png_photo(data, georef, names, nodata) else ".tif"


def write_photo(path: str | Path, data: np.ndarray, georef: GeoRef | None = None, nodata=None,
                names: list[str] | None = None) -> None:
    """A photo by its suffix: ``.tif`` as a GeoTIFF in its own type, band names and georeference kept;
    otherwise an 8-bit RGB image (``photo_suffix`` picks the suffix)."""
    path = Path(path)
    if is_raster(path):
        write_raster(path, data, georef, nodata=nodata, band_names=names)
    else:
        write_image(path, data)


def _atomic_save(image: Image.Image, path: Path) -> None:
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".tif": "TIFF", ".tiff": "TIFF"}.get(path.suffix.lower(), "PNG")
    with atomic_output(path) as tmp:
        image.save(tmp, format=fmt)


def write_image(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 photo atomically (temporary name, then rename)."""
    _atomic_save(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB"), Path(path))


def write_label(path: str | Path, label: np.ndarray, registry: ClassRegistry) -> None:
    """Write an index map as a palette PNG whose palette is the registry's colours."""
    im = Image.fromarray(np.ascontiguousarray(label, dtype=np.uint8), "P")
    im.putpalette(registry.palette())
    _atomic_save(im, Path(path))


def list_images(folder: str | Path, what: str = "image folder") -> list[Path]:
    """Image files of a folder, sorted by name; hidden files are skipped."""
    folder = Path(folder)
    if not folder.exists():
        raise UserError(folder, f"{what} does not exist")
    if not folder.is_dir():
        raise UserError(folder, f"{what} is not a folder")
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTS)


def by_stem(paths: Iterable[Path], folder: str | Path) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise UserError(folder, f"two files share the name stem {p.stem!r}: {out[p.stem].name}, {p.name}")
        out[p.stem] = p
    return out


def pair_by_stem(a_dir: str | Path, b_dir: str | Path, a_what: str = "photo",
                 b_what: str = "mask") -> list[tuple[str, Path, Path]]:
    """Match two folders by file stem; any file without its partner is an error naming it."""
    a = by_stem(list_images(a_dir, f"{a_what} folder"), a_dir)
    b = by_stem(list_images(b_dir, f"{b_what} folder"), b_dir)
    for stem in sorted(a):
        if stem not in b:
            raise UserError(a[stem], f"{a_what} has no {b_what} with the same name in {b_dir}")
    for stem in sorted(b):
        if stem not in a:
            raise UserError(b[stem], f"{b_what} has no {a_what} with the same name in {a_dir}")
    return [(s, a[s], b[s]) for s in sorted(a)]


def folder_has_images(folder: str | Path) -> bool:
    """True when a folder (recursively) holds any image file; ``.gitkeep`` and the like do not count."""
    folder = Path(folder)
    return folder.is_dir() and any(p.is_file() and p.suffix.lower() in IMAGE_EXTS for p in folder.rglob("*"))
