"""Reading and writing georeferenced rasters: multi-band GeoTIFF scenes in, label GeoTIFFs out.

A scene may hold any number of bands in any GDAL data type (uint8, uint16, int16, float32...); it is
read as (H, W, N) in that type, with a validity mask from its nodata value, its internal mask and, in
float bands, any value that is not finite (NaN gaps), and its georeference (CRS and affine transform),
so outputs line up with the input in a GIS. PNG and JPEG photos stay with ``imgio``; rasterio is
imported inside the functions so option checks stay instant.

Usage: ``r = read_raster("scene.tif", bands=[4, 3, 2])``; ``label, valid = read_mask_raster("mask.tif")``;
``with RasterRows("scene.tif", [4, 3, 2]) as rows: data, valid = rows.read(0, 64)``;
``write_label_geotiff("pred.tif", label, r.georef, registry.colors.tolist())``.
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import UserError
from .files import atomic_output

RASTER_EXTS = (".tif", ".tiff")
IGNORE_COLOR = (255, 0, 255)


def is_raster(path: str | Path) -> bool:
    """True for files read with rasterio (GeoTIFFs); PNG and JPEG photos are read with PIL."""
    return Path(path).suffix.lower() in RASTER_EXTS


@contextmanager
def _open(path: str | Path):
    """The dataset open for reading; every GDAL failure becomes a one-line UserError naming the file."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError

    path = Path(path)
    if not path.exists():
        raise UserError(path, "file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
    except (RasterioError, OSError, ValueError) as e:
        raise UserError(path, f"not a readable raster ({_first_line(e)})") from None
    try:
        with src:
            yield src
    except (RasterioError, OSError, ValueError) as e:
        raise UserError(path, f"unreadable or corrupt raster ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    """GDAL's own message, which rasterio keeps as the cause behind "Read failed"."""
    while e.__cause__ is not None:
        e = e.__cause__
    text = str(e.args[-1] if e.args else e).strip() or e.__class__.__name__
    return text.splitlines()[0]


@dataclass
class GeoRef:
    """Where a raster lies on the ground: ``transform`` is the affine (a, b, c, d, e, f) of rasterio,
    x = a*col + b*row + c, y = d*col + e*row + f; ``crs`` is WKT. Both None for plain images."""

    crs: str | None
    transform: tuple[float, float, float, float, float, float] | None
    width: int
    height: int

    @property
    def is_georeferenced(self) -> bool:
        return self.crs is not None or self.transform is not None

    @classmethod
    def from_dataset(cls, src) -> "GeoRef":
        t = src.transform
        # GDAL reports the identity transform when a file has none: pixel space is not a location.
        transform = None if t.is_identity else tuple(float(v) for v in tuple(t)[:6])
        crs = src.crs.to_wkt() if src.crs else None
        return cls(crs, transform, int(src.width), int(src.height))

    @classmethod
    def of(cls, path: str | Path) -> "GeoRef":
        """From the header only; no pixel is read."""
        with _open(path) as src:
            return cls.from_dataset(src)

    def crop(self, x: int, y: int, width: int, height: int) -> "GeoRef":
        """The georeference of the window whose top-left pixel is (x, y): a tile of this raster."""
        if self.transform is None:
            return GeoRef(self.crs, None, width, height)
        a, b, c, d, e, f = self.transform
        return GeoRef(self.crs, (a, b, c + a * x + b * y, d, e, f + d * x + e * y), width, height)

    def resized(self, width: int, height: int) -> "GeoRef":
        """The same ground footprint sampled on a (height, width) grid."""
        if self.transform is None:
            return GeoRef(self.crs, None, width, height)
        sx, sy = self.width / width, self.height / height
        a, b, c, d, e, f = self.transform
        return GeoRef(self.crs, (a * sx, b * sy, c, d * sx, e * sy, f), width, height)

    def to_json(self) -> dict:
        return {"crs": self.crs, "transform": None if self.transform is None else list(self.transform),
                "width": self.width, "height": self.height}

    @classmethod
    def from_json(cls, d: dict, where: str | Path | None = None) -> "GeoRef":
        try:
            t = d["transform"]
            transform = None if t is None else tuple(float(v) for v in t)
            if transform is not None and len(transform) != 6:
                raise ValueError(f"transform needs 6 numbers, got {len(transform)}")
            crs = d["crs"]
            if crs is not None and not isinstance(crs, str):
                raise ValueError("crs must be a WKT string or null")
            return cls(crs, transform, int(d["width"]), int(d["height"]))
        except (TypeError, KeyError, ValueError) as e:
            raise UserError(where, f"expected a georeference {{crs, transform, width, height}}: {e}") from None


@dataclass
class Raster:
    """A scene as read: ``data`` (H, W, N) in the file's type, ``valid`` (H, W) False on nodata,
    ``nodata`` the file's nodata value of the first selected band (None if it has none)."""

    data: np.ndarray
    valid: np.ndarray
    georef: GeoRef
    band_names: list[str]
    nodata: float | int | None = None

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype


def check_bands(path: str | Path, bands: Sequence[int] | None, count: int) -> list[int]:
    """The 1-based band numbers to read (all when ``bands`` is None), each checked against ``count``."""
    if bands is None:
        return list(range(1, count + 1))
    wanted = [int(b) for b in bands]
    if not wanted:
        raise UserError(path, "--bands selects no band")
    for b in wanted:
        if not 1 <= b <= count:
            raise UserError(path, f"has {count} band{'s' if count != 1 else ''}; --bands {b} does not exist "
                                  f"(choose among 1..{count})")
    repeated = sorted({b for b in wanted if wanted.count(b) > 1})
    if repeated:
        raise UserError(path, f"--bands repeats band {repeated[0]} (name each band once)")
    return wanted


def _nodata_hits(data: np.ndarray, nodata) -> np.ndarray:
    if nodata is None:
        return np.zeros(data.shape, bool)
    if isinstance(nodata, float) and math.isnan(nodata):
        return np.isnan(data) if data.dtype.kind == "f" else np.zeros(data.shape, bool)
    return data == nodata


def _read_window(src, wanted: list[int], window=None) -> tuple[np.ndarray, np.ndarray]:
    """(bands (N, h, w), invalid (h, w)) of a window (None: all): the internal mask, nodata and NaN."""
    stack = src.read(wanted, window=window)                        # (N, h, w)
    invalid = (src.read_masks(wanted, window=window) == 0).any(axis=0)
    for i, b in enumerate(wanted):
        invalid |= _nodata_hits(stack[i], src.nodatavals[b - 1])
    if stack.dtype.kind == "f":
        # NaN marks gaps in float products whether or not the file names it as nodata.
        invalid |= ~np.isfinite(stack).all(axis=0)
    return stack, invalid


def read_raster(path: str | Path, bands: Sequence[int] | None = None) -> Raster:
    """The selected bands (1-based, in the order given; default all) with validity and georeference."""
    path = Path(path)
    with _open(path) as src:
        wanted = check_bands(path, bands, src.count)
        stack, invalid = _read_window(src, wanted)
        names = [src.descriptions[b - 1] or f"band{b}" for b in wanted]
        georef = GeoRef.from_dataset(src)
        nodata = src.nodatavals[wanted[0] - 1]
    return Raster(np.ascontiguousarray(np.moveaxis(stack, 0, -1)), ~invalid, georef, names, nodata)


class RasterRows:
    """A GeoTIFF's selected bands read a strip of rows at a time, with their validity as ``read_raster``
    finds it. The file is read in whole rows of its blocks (at least ``MIN_BLOCK_ROWS`` rows), so every block
    is decoded once, and strips are cut from the rows last read.

    Usage: ``with RasterRows(path, [4, 3, 2]) as rows: data, valid = rows.read(0, 64)``."""

    MIN_BLOCK_ROWS = 64

    def __init__(self, path: str | Path, bands: Sequence[int] | None = None):
        self.path = Path(path)
        self._ctx = _open(self.path)
        self.src = self._ctx.__enter__()
        self.wanted = check_bands(self.path, bands, self.src.count)
        self.height, self.width, self.channels = int(self.src.height), int(self.src.width), len(self.wanted)
        self.georef = GeoRef.from_dataset(self.src)
        block = int(self.src.block_shapes[0][0])
        self.block_rows = block * max(1, -(-self.MIN_BLOCK_ROWS // block))
        self.held, self.first = None, 0

    def read(self, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows [a, b): (data (b - a, W, N) in the file's type, valid (b - a, W))."""
        if self.held is None or not self.first <= a < b <= self.first + len(self.held[0]):
            self._load(a, b)
        data, valid = self.held
        return data[a - self.first:b - self.first], valid[a - self.first:b - self.first]

    def _load(self, a: int, b: int) -> None:
        from rasterio.errors import RasterioError
        from rasterio.windows import Window

        top = a // self.block_rows * self.block_rows
        end = min(self.height, max(b, top + self.block_rows))
        try:
            stack, invalid = _read_window(self.src, self.wanted, Window(0, top, self.width, end - top))
        except (RasterioError, OSError, ValueError) as e:
            raise UserError(self.path, f"unreadable or corrupt raster in rows {top}..{end} ({_first_line(e)})") from None
        self.held, self.first = (np.moveaxis(stack, 0, -1), ~invalid), top

    def close(self) -> None:
        self._ctx.__exit__(None, None, None)

    def __enter__(self) -> "RasterRows":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def select_bands(raster: Raster, bands: Sequence[int] | None, where: str | Path) -> Raster:
    """The given 1-based bands of a raster already in memory, checked like ``read_raster`` checks them."""
    wanted = check_bands(Path(where), bands, raster.data.shape[-1])
    if wanted == list(range(1, raster.data.shape[-1] + 1)):
        return raster
    idx = [b - 1 for b in wanted]
    return Raster(np.ascontiguousarray(raster.data[..., idx]), raster.valid, raster.georef,
                  [raster.band_names[i] for i in idx], raster.nodata)


def read_mask_raster(path: str | Path, ignore_index: int = 255) -> tuple[np.ndarray, np.ndarray]:
    """A single-band integer label map as (label uint8, valid bool); nodata pixels get ``ignore_index``."""
    path = Path(path)
    with _open(path) as src:
        if src.count != 1:
            raise UserError(path, f"a label mask needs 1 band, this file has {src.count} "
                                  "(write class indices into a single band)")
        if np.dtype(src.dtypes[0]).kind not in "ui":
            raise UserError(path, f"a label mask needs integer class indices, this file holds {src.dtypes[0]}")
        values = src.read(1)
        valid = (src.read_masks(1) != 0) & ~_nodata_hits(values, src.nodatavals[0])
    bad = valid & ((values < 0) | (values > 254))
    if bad.any():
        shown = sorted({int(v) for v in np.unique(values[bad])[:5]})
        raise UserError(path, f"class indices must be 0..254, found {shown} (set the file's nodata value "
                              "if one of them marks missing pixels)")
    label = np.where(valid, values, ignore_index).astype(np.uint8)
    return label, valid


def raster_profile(georef: GeoRef | None, height: int, width: int, count: int, dtype) -> dict:
    """The GTiff creation profile (deflate) of a raster on ``georef``'s grid."""
    from rasterio.transform import Affine

    profile = {"driver": "GTiff", "height": height, "width": width, "count": count,
               "dtype": np.dtype(dtype).name, "compress": "deflate"}
    if georef is not None:
        if (georef.width, georef.height) != (width, height):
            raise UserError(f"the raster is {width}x{height} px but its georeference is for "
                            f"{georef.width}x{georef.height} px (crop or resize the georeference too)")
        if georef.crs is not None:
            profile["crs"] = georef.crs
        if georef.transform is not None:
            profile["transform"] = Affine(*georef.transform)
    return profile


@contextmanager
def _create(path: str | Path, profile: dict):
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with atomic_output(path) as tmp:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(tmp, "w", **profile) as dst:
                yield dst


def write_label_geotiff(path: str | Path, label: np.ndarray, georef: GeoRef | None,
                        colors: Sequence[Sequence[int]], ignore_index: int = 255) -> None:
    """A single-band uint8 label GeoTIFF: class colours as its colour table, ``ignore_index`` as nodata."""
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be (H, W), got shape {label.shape}")
    profile = raster_profile(georef, label.shape[0], label.shape[1], 1, np.uint8)
    profile["nodata"] = ignore_index
    with _create(path, profile) as dst:
        dst.write(label.astype(np.uint8), 1)
        dst.write_colormap(1, label_colormap(colors, ignore_index))


def label_colormap(colors: Sequence[Sequence[int]], ignore_index: int = 255) -> dict:
    """The colour table of a label raster: the class colours, ``IGNORE_COLOR`` for no data, black elsewhere."""
    table = {i: (0, 0, 0, 255) for i in range(256)}
    for i, (r, g, b) in enumerate(colors):
        table[i] = (int(r), int(g), int(b), 255)
    table[ignore_index] = (*IGNORE_COLOR, 255)
    return table


def write_raster(path: str | Path, data: np.ndarray, georef: GeoRef | None = None, nodata=None,
                 band_names: Sequence[str] | None = None) -> None:
    """An N-band GeoTIFF of ``data`` (H, W, N) or (H, W) in data's own type."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[..., None]
    if data.ndim != 3:
        raise ValueError(f"data must be (H, W, N), got shape {data.shape}")
    h, w, n = data.shape
    if band_names is not None and len(band_names) != n:
        raise ValueError(f"{len(band_names)} band names for {n} bands")
    profile = raster_profile(georef, h, w, n, data.dtype)
    if nodata is not None:
        profile["nodata"] = nodata
    with _create(path, profile) as dst:
        dst.write(np.moveaxis(data, -1, 0))
        for i, name in enumerate(band_names or []):
            dst.set_band_description(i + 1, str(name))


def raster_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only."""
    with _open(path) as src:
        return int(src.width), int(src.height)


def raster_count(path: str | Path) -> int:
    """The number of bands, from the header only."""
    with _open(path) as src:
        return int(src.count)


def raster_bands(path: str | Path) -> tuple[int, str, list[str]]:
    """(band count, data type of band 1, band names) from the header only; unnamed bands are ``band<i>``."""
    with _open(path) as src:
        names = [d or f"band{i}" for i, d in enumerate(src.descriptions, start=1)]
        return int(src.count), str(np.dtype(src.dtypes[0])), names


def check_raster(path: str | Path) -> None:
    """The header and the last block of every band can be read: a raster cut short fails here, in
    milliseconds, rather than halfway through a stage."""
    from rasterio.windows import Window

    with _open(path) as src:
        bh, bw = src.block_shapes[0]
        top, left = (src.height - 1) // bh * bh, (src.width - 1) // bw * bw
        src.read(window=Window(left, top, src.width - left, src.height - top))
