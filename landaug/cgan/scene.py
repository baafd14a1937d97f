"""One photo to its label map (and confidence map), strip by strip: what ``cgan.py predict`` does per scene.

A GeoTIFF photo is read a block row at a time (``geoio.RasterRows``), its model bands normalised as the
model saw them in training, labelled by ``SceneLabeller.label_rows`` and written as it comes
(``rasterout.StripTiff``), so the memory a scene takes does not grow with it. A georeferenced photo gets a
label GeoTIFF with its CRS, transform and size, the class colours as colour table and 255 as nodata
where the photo has no data. A GeoTIFF without a georeference gets one only if it has pixels without data
(known once it is read: its labels, one byte a pixel, are kept until then), else a palette PNG, as does a
PNG or JPEG photo (read whole: they are small). ``confidence`` writes the top class probability, float32,
NaN where the photo has no data, on the photo's grid. Every map is written under a temporary name and
renamed when complete; ``cog`` makes the GeoTIFFs Cloud-Optimized, with overviews (the most frequent
class for labels, the mean for confidence).

Usage: ``record = predict_photo(labeller, Path("s.tif"), "s", Path("out"), scale=None, confidence=True)``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..blockwise import STRIP_ROWS, ArrayRows
from ..classes import IGNORE_INDEX
from ..geoio import RasterRows, label_colormap
from ..imgio import check_dtype, is_raster, model_bands, read_model_photo, write_label
from ..rasterout import StripTiff, gdal_env
from ..tiling import labels_and_confidence
from .infer import SceneLabeller, to_unit
from .options import CONFIDENCE_DIR


class UnitRows:
    """A GeoTIFF photo's model bands as the model sees them, a strip of rows at a time, with validity."""

    def __init__(self, rows: RasterRows, labeller: SceneLabeller):
        self.rows, self.stats = rows, labeller.stats
        self.height, self.width, self.channels = rows.height, rows.width, rows.channels
        self.chunk = STRIP_ROWS

    def read(self, a: int, b: int):
        data, valid = self.rows.read(a, b)
        return to_unit(data, self.stats), valid


def label_path(out: Path, scene: str, tiff: bool) -> Path:
    return Path(out) / f"{scene}{'.tif' if tiff else '.png'}"


def confidence_path(out: Path, scene: str) -> Path:
    return Path(out) / CONFIDENCE_DIR / f"{scene}_confidence.tif"


class _Maps:
    """Where a scene's strips go: the label map (streamed, or kept for the end) and the confidence map."""

    def __init__(self, labeller: SceneLabeller, out: Path, scene: str, georef, height: int, width: int,
                 streamed: bool, confidence: bool, cog: bool):
        self.registry = labeller.registry
        self.colors = labeller.registry.colors.tolist()
        self.georef, self.height, self.width, self.cog = georef, height, width, cog
        self.out, self.scene, self.gaps = out, scene, False
        self.label = (StripTiff(label_path(out, scene, True), georef, height, width, "uint8", IGNORE_INDEX,
                                label_colormap(self.colors, IGNORE_INDEX), overviews="mode", cog=cog)
                      if streamed else None)
        self.kept = None if streamed else np.empty((height, width), np.uint8)
        self.conf = (StripTiff(confidence_path(out, scene), georef, height, width, "float32",
                               description="confidence", overviews="average", cog=cog) if confidence else None)

    def __enter__(self):
        for m in (self.conf, self.label):
            if m is not None:
                m.__enter__()
        return self

    def write(self, a: int, probs: np.ndarray, valid) -> None:
        lab, conf = labels_and_confidence(probs)
        if valid is not None and not valid.all():
            self.gaps = True
            lab = np.where(valid, lab, IGNORE_INDEX).astype(np.uint8)
            conf = np.where(valid, conf, np.nan).astype(np.float32)
        if self.label is not None:
            self.label.write(a, lab)
        else:
            self.kept[a:a + len(lab)] = lab
        if self.conf is not None:
            self.conf.write(a, conf)

    def __exit__(self, *exc) -> None:
        if self.conf is not None:
            if exc[0] is None and self.gaps:
                self.conf.nodata = float("nan")
            self.conf.__exit__(*exc)
        if self.label is not None:
            self.label.__exit__(*exc)

    def finish(self, tiff_if_gaps: bool) -> Path:
        """The label map's path, writing a kept one: a label GeoTIFF if the photo has gaps, else a PNG."""
        if self.label is not None:
            return self.label.path
        if tiff_if_gaps and self.gaps:
            with StripTiff(label_path(self.out, self.scene, True), self.georef, self.height, self.width, "uint8",
                           IGNORE_INDEX, label_colormap(self.colors, IGNORE_INDEX), overviews="mode",
                           cog=self.cog) as t:
                t.write(0, self.kept)
            return t.path
        path = label_path(self.out, self.scene, False)
        write_label(path, self.kept, self.registry)
        return path


def predict_photo(labeller: SceneLabeller, photo: Path, scene: str, out: Path, scale: float | None,
                  confidence: bool = False, cog: bool = False) -> dict:
    """Label one photo into ``out``; returns its record: size, seconds, the maps written."""
    t0 = time.perf_counter()
    stats = labeller.stats
    with gdal_env():
        if is_raster(photo):
            bands = model_bands(photo, stats)
            with RasterRows(photo, bands) as rows:
                check_dtype(photo, rows.src.dtypes[rows.wanted[0] - 1], stats)
                source, georef = UnitRows(rows, labeller), rows.georef
                maps = _label(labeller, source, georef, out, scene, scale, confidence, cog,
                              streamed=georef.is_georeferenced)
        else:
            r = read_model_photo(photo, stats)
            source = ArrayRows(to_unit(r.data, stats))
            maps = _label(labeller, source, r.georef, out, scene, scale, confidence, cog, streamed=False)
        label = maps.finish(tiff_if_gaps=is_raster(photo))
    return {"scene": scene, "photo": str(photo), "height": source.height, "width": source.width,
            "seconds": round(time.perf_counter() - t0, 2), "label": str(label),
            "confidence": str(confidence_path(out, scene)) if confidence else None}


def _label(labeller: SceneLabeller, source, georef, out: Path, scene: str, scale, confidence: bool, cog: bool,
           streamed: bool) -> _Maps:
    scale = labeller.scale_for(source.height, source.width) if scale is None else scale
    with _Maps(labeller, out, scene, georef, source.height, source.width, streamed, confidence, cog) as maps:
        labeller.label_rows(source, scale, maps.write)
    return maps
