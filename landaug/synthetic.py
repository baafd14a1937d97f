"""Synthetic SPARCS-like scenes with exact labels: the embedded data for the demo and the tests.

Each scene is built from fractal noise fields: textured land (vegetation, soil, field patches), lakes
and rivers, flooded margins on low ground beside water, snow above a snow line, and clouds whose
shadows fall displaced in one sun direction, darkening land (cloud shadow) or water (shadow over
water). Colours imitate the SPARCS false-colour photos (SWIR/NIR/red): green vegetation, brown soil,
near-black water, white clouds, cyan snow. Deterministic for a seed; it is no substitute for real data.

Usage: ``photo, label = make_scene(seed=0, size=256)``; ``for name, photo, label in make_scenes(100, 256, 0)``.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from scipy import ndimage

from .classes import SPARCS

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


def make_scene(seed: int, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One scene: ``photo`` (size, size, 3) uint8 and ``label`` (size, size) uint8 SPARCS class indices."""
    rng = np.random.default_rng(seed)
    elev = fractal_noise(rng, size, 3.2)
    moist = fractal_noise(rng, size, 2.2)
    grain = fractal_noise(rng, size, 1.0) - 0.5

    # Land: vegetation/soil blend by a moisture field, agricultural patches in some scenes.
    veg_share = rng.uniform(0.2, 0.9)
    mix = np.clip((moist - (1 - veg_share)) * 4 + 0.5, 0, 1)[..., None]
    photo = mix * VEGETATION + (1 - mix) * SOIL
    if rng.random() < 0.5:
        cells = max(2, size // 24)
        patches = rng.random((cells, cells)) < 0.45
        patches = np.kron(patches, np.ones((size // cells + 1, size // cells + 1), bool))[:size, :size]
        photo = np.where(patches[..., None], 0.6 * photo + 0.4 * FIELD, photo)
    photo = photo * (0.85 + 0.3 * elev[..., None]) + 28 * grain[..., None]
    label = np.full((size, size), LAND, np.uint8)

    # Water: lakes in the lowest ground, a river along a level line of a smooth field.
    water = _quantile_mask(elev, rng.uniform(0.03, 0.15), above=False)
    if rng.random() < 0.7:
        course = fractal_noise(rng, size, 3.6)
        water |= np.abs(course - 0.5) < rng.uniform(0.008, 0.02) + 1.5 / size
    # Flooded margins: low ground next to water, as after a high stand.
    flooded = np.zeros_like(water)
    if water.any() and rng.random() < 0.6:
        dist = ndimage.distance_transform_edt(~water)
        margin = max(1.5, size * rng.uniform(0.015, 0.04))
        low = elev < np.quantile(elev, 0.45)
        flooded = (dist > 0) & (dist <= margin) & low
    label[water] = WATER
    label[flooded] = FLOODED
    photo[water] = WATER_RGB + 6 * grain[water, None]
    photo[flooded] = 0.55 * FLOOD_RGB + 0.45 * photo[flooded] * 0.6

    # Snow above a snow line on the highest terrain, in mountain scenes only.
    if rng.random() < 0.4:
        snow = _quantile_mask(elev, rng.uniform(0.04, 0.15), above=True) & ~water
        label[snow] = SNOW
        photo[snow] = SNOW_RGB + 20 * grain[snow, None]

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
        photo[shadow] *= 0.35
        label[cloud] = CLOUD
        photo = (1 - alpha[..., None]) * photo + alpha[..., None] * (CLOUD_RGB + 10 * grain[..., None])

    return np.clip(photo + 0.5, 0, 255).astype(np.uint8), label


def scene_name(seed: int, i: int) -> str:
    return f"synth{seed:04d}_{i:04d}"


def make_scenes(n: int, size: int = 256, seed: int = 0) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """``n`` scenes as ``(name, photo, label)``; scene ``i`` depends only on ``(seed, i)``."""
    for i in range(n):
        scene_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        photo, label = make_scene(scene_seed, size)
        yield scene_name(seed, i), photo, label
