"""Label and confidence maps written strip by strip: tiled, compressed GeoTIFFs on the photo's grid, or
Cloud-Optimized GeoTIFFs with overviews.

Strips arrive top to bottom in any heights; they are written in whole rows of tiles, so GDAL never holds
more than a row of tiles. The file is written under a temporary name and renamed when it is complete
(``files.atomic_output``): a map under its own name is always whole. ``cog=True`` then copies it to a
Cloud-Optimized GeoTIFF (GDAL's COG driver: tiles, overviews by ``overviews`` resampling, the overviews
before the full resolution in the file) so GIS and web maps open it at any zoom without reading it all.
Within ``gdal_env()`` GDAL's block cache is capped (``GDAL_CACHE_MB``): reading a scene strip by strip
or writing its maps never fills memory with blocks no one reads again.

Usage: ``with StripTiff(path, georef, height, width, "uint8", nodata=255, colormap=label_colormap(colors),
overviews="mode", cog=True) as out: out.write(row, strip)``; ``out.nodata = float("nan")`` before it
closes; ``with gdal_env(): ...`` around the reading and writing of a scene.
"""

from __future__ import annotations

import os
import warnings
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from .files import atomic_output
from .geoio import GeoRef, raster_profile

TILE = 256               # tile side of the maps
GDAL_CACHE_MB = 32       # GDAL's block cache while reading photos and writing maps
OVERVIEWS = ("nearest", "mode", "average")


def gdal_env():
    """A rasterio environment with GDAL's block cache capped (it is one cache for every thread)."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB)


class StripTiff:
    """A single-band raster of ``height`` x ``width`` on ``georef``'s grid, written strip by strip."""

    def __init__(self, path: str | Path, georef: GeoRef | None, height: int, width: int, dtype: str,
                 nodata=None, colormap: dict | None = None, description: str | None = None,
                 overviews: str = "nearest", cog: bool = False):
        if overviews not in OVERVIEWS:
            raise ValueError(f"overviews must be one of {', '.join(OVERVIEWS)}, got {overviews!r}")
        self.path, self.height, self.width, self.dtype = Path(path), height, width, np.dtype(dtype)
        self.nodata, self.colormap, self.description = nodata, colormap, description
        self.overviews, self.cog = overviews, cog
        self.profile = raster_profile(georef, height, width, 1, self.dtype)
        self.profile.update(tiled=True, blockxsize=TILE, blockysize=TILE, BIGTIFF="IF_SAFER")
        self.pending: list[np.ndarray] = []
        self.row = 0            # rows written to the file
        self.received = 0       # rows given to ``write``

    def __enter__(self) -> "StripTiff":
        import rasterio
        from rasterio.errors import NotGeoreferencedWarning

        self.stack = ExitStack()
        self.tmp = self.stack.enter_context(atomic_output(self.path))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self.dst = rasterio.open(self.tmp, "w", **self.profile)
        return self

    def write(self, row: int, strip: np.ndarray) -> None:
        """Rows [row, row + len(strip)), the next ones in order."""
        if row != self.received:
            raise ValueError(f"strips must come in order: expected row {self.received}, got {row}")
        self.pending.append(np.asarray(strip, self.dtype))
        self.received += len(strip)
        whole = self.row + (self.received - self.row) // TILE * TILE
        self._flush(self.height if self.received == self.height else whole)

    def _flush(self, upto: int) -> None:
        from rasterio.windows import Window

        if upto <= self.row:
            return
        rows = np.concatenate(self.pending) if len(self.pending) > 1 else self.pending[0]
        n = upto - self.row
        self.dst.write(rows[:n], 1, window=Window(0, self.row, self.width, n))
        self.pending = [rows[n:]] if n < len(rows) else []
        self.row = upto

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.dst.close()
            self.stack.__exit__(exc_type, exc, tb)
            return
        with self.stack:
            try:
                if self.row != self.height:
                    raise ValueError(f"{self.path}: {self.row} of {self.height} rows written")
                if self.nodata is not None:
                    self.dst.nodata = self.nodata
                if self.colormap is not None:
                    self.dst.write_colormap(1, self.colormap)
                if self.description:
                    self.dst.set_band_description(1, self.description)
            finally:
                self.dst.close()
            if self.cog:
                self._to_cog()

    def _to_cog(self) -> None:
        """Replace the temporary tiled GeoTIFF by its Cloud-Optimized copy."""
        from rasterio.shutil import copy

        cog = self.tmp.with_name(self.tmp.name + ".cog")
        try:
            copy(self.tmp, cog, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=TILE,
                 OVERVIEW_RESAMPLING=self.overviews.upper(), BIGTIFF="IF_SAFER")
            os.replace(cog, self.tmp)
        finally:
            cog.unlink(missing_ok=True)
