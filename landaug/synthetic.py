"""Synthetic SPARCS-like scenes with exact labels: the embedded data for the demo and the tests.

Each scene is built from fractal noise fields: textured land (vegetation, soil, field patches), lakes
and rivers, flooded margins on low ground beside water, snow above a snow line, and clouds whose
shadows fall displaced in one sun direction, darkening land (cloud shadow) or water (shadow over
water). Colours imitate the SPARCS false-colour photos (SWIR/NIR/red): green vegetation, brown soil,
near-black water, white clouds, cyan snow. Deterministic for a seed; it is no substitute for real data.

With ``bands`` (4, 10 or a name in ``BAND_SETS``) the same scene, label for label, comes as uint16
Landsat-like bands: reflectance x 10000, and the thermal bands as brightness temperature in
hundredths of a kelvin. Each class has a typical spectrum (vegetation bright in NIR, water dark in NIR
and SWIR, snow dark in SWIR, cold clouds bright in cirrus), mixed and textured per pixel by the fields
that make the RGB scene. The 10-band set is the band list of SPARCS' ``<scene>_data.tif``.

Usage: ``photo, label = make_scene(seed=0, size=256)``; ``for name, photo, label in make_scenes(100, 256, 0)``;
``photo, label = make_scene(0, 64, bands=10)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from .classes import SPARCS
from .errors import UserError

# Class indices of the SPARCS registry, which the synthetic scenes use.
SHADOW, SHADOW_WATER, WATER, SNOW, LAND, CLOUD, FLOODED = range(7)
assert len(SPARCS) == 7

VEGETATION = np.array([38, 105, 42], np.float32)
SOIL = np.array([150, 100, 72], np.float32)
FIELD = np.array([70, 140, 55], np.float32)
WATER_RGB = np.array([14, 20, 48], np.float32)
FLOOD_RGB = np.array([38, 62, 70], np.float32)
SNOW_RGB = np.array([70, 205, 240], np.float32)
CLOUD_RGB = np.array([232, 236, 240], np.float32)

# Landsat 8 OLI/TIRS bands 1-7, 9, 10, 11: what SPARCS' <scene>_data.tif holds.
LANDSAT8 = ("coastal", "blue", "green", "red", "nir", "swir1", "swir2", "cirrus", "tir1", "tir2")
BAND_SETS = {
    "false_color": ("swir1", "nir", "red"),
    "bgrn": ("blue", "green", "red", "nir"),
    "landsat8": LANDSAT8,
}
# Typical spectra, reflectance x 10000 (thermal: kelvin x 100), in LANDSAT8 order.
SPECTRA = {
    "vegetation": (300, 350, 700, 400, 3500, 1700, 800, 20, 29800, 29700),
    "soil": (800, 1000, 1400, 1900, 2500, 3300, 2800, 30, 30800, 30600),
    "field": (300, 400, 900, 500, 4200, 2000, 1000, 20, 29600, 29500),
    "water": (600, 500, 400, 250, 100, 50, 30, 10, 29000, 28900),
    "flood": (700, 700, 800, 700, 1000, 500, 300, 10, 29200, 29100),
    "snow": (8500, 8500, 8200, 7800, 6500, 800, 500, 100, 26800, 26700),
    "cloud": (5500, 5500, 5600, 5700, 5800, 4500, 3000, 1200, 24500, 24400),
}
THERMAL = ("tir1", "tir2")
# Thermal bands are shaded and mixed as the difference to this temperature (250 K), so the relief
# shading and the shadow factor change a surface by kelvins, not by a third of its temperature.
THERMAL_BASE = 25000.0


@dataclass(frozen=True)
class _Look:
    """How classes look in one band set: a colour or spectrum per class, texture amplitudes, the
    shadow factor, and the offset added back before the cast to ``dtype``."""

    vegetation: np.ndarray
    soil: np.ndarray
    field: np.ndarray
    water: np.ndarray
    flood: np.ndarray
    snow: np.ndarray
    cloud: np.ndarray
    land_grain: float | np.ndarray = 28
    water_grain: float | np.ndarray = 6
    snow_grain: float | np.ndarray = 20
    cloud_grain: float | np.ndarray = 10
    shadow: float | np.ndarray = 0.35
    offset: float | np.ndarray = 0.0
    dtype: type = np.uint8


RGB_LOOK = _Look(VEGETATION, SOIL, FIELD, WATER_RGB, FLOOD_RGB, SNOW_RGB, CLOUD_RGB)


def band_set(bands: int | str) -> tuple[str, ...]:
    """The band names of a set given by its size (3, 4, 10) or its name in ``BAND_SETS``."""
    if isinstance(bands, str) and bands in BAND_SETS:
        return BAND_SETS[bands]
    by_size = {len(v): v for v in BAND_SETS.values()}
    if not isinstance(bands, str) and bands in by_size:
        return by_size[bands]
    raise UserError(f"synthetic scenes have {', '.join(map(str, sorted(by_size)))} bands "
                    f"or a set named {', '.join(BAND_SETS)}; got {bands!r}")


def _spectral_look(names: tuple[str, ...]) -> _Look:
    idx = [LANDSAT8.index(n) for n in names]
    thermal = np.array([n in THERMAL for n in names])
    offset = np.where(thermal, THERMAL_BASE, 0.0).astype(np.float32)
    spec = {k: np.asarray(v, np.float32)[idx] - offset for k, v in SPECTRA.items()}
    land = (spec["vegetation"] + spec["soil"]) / 2
    # Texture as a share of each band's level, like the RGB scene's grain; thermal grain in kelvins.
    f32 = np.float32
    return _Look(spec["vegetation"], spec["soil"], spec["field"], spec["water"], spec["flood"], spec["snow"],
                 spec["cloud"],
                 land_grain=np.where(thermal, 400, 0.3 * land).astype(f32),
                 water_grain=np.where(thermal, 100, 0.2 * spec["water"]).astype(f32),
                 snow_grain=np.where(thermal, 150, 0.1 * spec["snow"]).astype(f32),
                 cloud_grain=np.where(thermal, 150, 0.04 * spec["cloud"]).astype(f32),
                 shadow=np.where(thermal, 0.9, 0.35).astype(f32), offset=offset, dtype=np.uint16)


def fractal_noise(rng: np.random.Generator, size: int, beta: float) -> np.ndarray:
    """Noise with a 1/f^beta power spectrum in [0, 1]: larger beta, smoother relief."""
    freq = np.fft.fftfreq(size)
    k = np.hypot(freq[:, None], freq[None, :])
    k[0, 0] = 1.0
    spectrum = np.fft.fft2(rng.standard_normal((size, size))) / k ** (beta / 2.0)
    spectrum[0, 0] = 0.0
    field = np.real(np.fft.ifft2(spectrum))
    lo, hi = field.min(), field.max()
    return ((field - lo) / (hi - lo + 1e-12)).astype(np.float32)


def _quantile_mask(field: np.ndarray, fraction: float, above: bool) -> np.ndarray:
    if fraction <= 0:
        return np.zeros(field.shape, bool)
    t = np.quantile(field, 1.0 - fraction if above else fraction)
    return field > t if above else field < t


def make_scene(seed: int, size: int = 256, bands: int | str = 3) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``photo`` (size, size, 3) uint8 false colour, or (size, size, N) uint16 for a
    multi-band set, and ``label`` (size, size) uint8 SPARCS class indices, the same for every set."""
    names = band_set(bands)
    look = RGB_LOOK if names == BAND_SETS["false_color"] else _spectral_look(names)
    rng = np.random.default_rng(seed)
    elev = fractal_noise(rng, size, 3.2)
    moist = fractal_noise(rng, size, 2.2)
    grain = fractal_noise(rng, size, 1.0) - 0.5

    # Land: vegetation/soil blend by a moisture field, agricultural patches in some scenes.
    veg_share = rng.uniform(0.2, 0.9)
    mix = np.clip((moist - (1 - veg_share)) * 4 + 0.5, 0, 1)[..., None]
    photo = mix * look.vegetation + (1 - mix) * look.soil
    if rng.random() < 0.5:
        cells = max(2, size // 24)
        patches = rng.random((cells, cells)) < 0.45
        patches = np.kron(patches, np.ones((size // cells + 1, size // cells + 1), bool))[:size, :size]
        photo = np.where(patches[..., None], 0.6 * photo + 0.4 * look.field, photo)
    photo = photo * (0.85 + 0.3 * elev[..., None]) + look.land_grain * grain[..., None]
    label = np.full((size, size), LAND, np.uint8)

    # Water: lakes in the lowest ground, a river along a level line of a smooth field.
    water = _quantile_mask(elev, rng.uniform(0.03, 0.15), above=False)
    if rng.random() < 0.7:
        course = fractal_noise(rng, size, 3.6)
        water |= np.abs(course - 0.5) < rng.uniform(0.008, 0.02) + 1.5 / size
    # Flooded margins: low ground next to water, as after a high stand.
    flooded = np.zeros_like(water)
    if water.any() and rng.random() < 0.6:
        from scipy import ndimage   # here, not at import: most processes that import this never draw a scene

        dist = ndimage.distance_transform_edt(~water)
        margin = max(1.5, size * rng.uniform(0.015, 0.04))
        low = elev < np.quantile(elev, 0.45)
        flooded = (dist > 0) & (dist <= margin) & low
    label[water] = WATER
    label[flooded] = FLOODED
    photo[water] = look.water + look.water_grain * grain[water, None]
    photo[flooded] = 0.55 * look.flood + 0.45 * photo[flooded] * 0.6

    # Snow above a snow line on the highest terrain, in mountain scenes only.
    if rng.random() < 0.4:
        snow = _quantile_mask(elev, rng.uniform(0.04, 0.15), above=True) & ~water
        label[snow] = SNOW
        photo[snow] = look.snow + look.snow_grain * grain[snow, None]

    # Clouds with soft edges, their shadows cast along one sun direction.
    if rng.random() < 0.85:
        cover = rng.uniform(0.05, 0.35)
        cloudiness = fractal_noise(rng, size, 3.0)
        thresh = np.quantile(cloudiness, 1.0 - cover)
        alpha = np.clip((cloudiness - thresh) / 0.06 + 0.5, 0, 1)
        cloud = alpha > 0.5
        angle = rng.uniform(0, 2 * np.pi)
        reach = size * rng.uniform(0.04, 0.1)
        dy, dx = int(round(reach * np.sin(angle))), int(round(reach * np.cos(angle)))
        cast = np.zeros_like(cloud)
        ys = slice(max(dy, 0), size + min(dy, 0))
        xs = slice(max(dx, 0), size + min(dx, 0))
        ys_src = slice(max(-dy, 0), size + min(-dy, 0))
        xs_src = slice(max(-dx, 0), size + min(-dx, 0))
        cast[ys, xs] = cloud[ys_src, xs_src]
        shadow = cast & ~cloud
        over_water = shadow & ((label == WATER) | (label == FLOODED))
        label[shadow] = SHADOW
        label[over_water] = SHADOW_WATER
        photo[shadow] *= look.shadow
        label[cloud] = CLOUD
        cloud_top = look.cloud + look.cloud_grain * grain[..., None]
        photo = (1 - alpha[..., None]) * photo + alpha[..., None] * cloud_top

    top = np.iinfo(look.dtype).max
    return np.clip(photo + look.offset + 0.5, 0, top).astype(look.dtype), label


def scene_name(seed: int, i: int) -> str:
    return f"synth{seed:04d}_{i:04d}"


def make_scenes(n: int, size: int = 256, seed: int = 0,
                bands: int | str = 3) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``n`` scenes as ``(name, photo, label)``; scene ``i`` depends only on ``(seed, i)``."""
    for i in range(n):
        scene_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        photo, label = make_scene(scene_seed, size, bands)
        yield scene_name(seed, i), photo, label
