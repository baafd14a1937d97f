"""Image-quality scores for generated scenes that need no download: SWD, histograms, nearest real scene.

Usage: ``report = score_sets(real, fake, seed=0)`` with uint8 arrays (N, H, W, 3);
``nearest_figure(fake, real, report_nn, "nearest.png")``; FID/KID only with
``inception_features(images, "inception_v3.weights.h5")``.

- Sliced Wasserstein distance (Karras et al. 2018, "Progressive growing of GANs", section 5): 7x7
  neighbourhoods drawn from every level of a Laplacian pyramid (full size down to 16x16), each set's
  descriptors normalised per channel, then the mean 1-D Wasserstein distance along random directions.
  Reported x 1e3 per level and averaged, like the paper. Lower is better; ~0 for the same distribution.
- Per-channel histogram distance: the 1-D Wasserstein distance between intensity distributions (in
  units of the full 0..255 range), so a colour cast shows even when textures look right.
- Nearest training scene by L2 (RMS over pixels, 0..1 units) of every sample, over the 8 flips and
  rotations of each real scene when the GAN trained on them, against the same distance between
  distinct real scenes: a ratio well below 1 means samples copy training scenes (or are blurry, which
  brings them close to everything in L2; the sample | nearest figure tells which).
Everything is deterministic for a seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SWD_MIN_RES = 16
NHOOD = 7
PATCHES_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
HIST_BINS = 256
_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], dtype=np.float32) / 16.0


# --- Laplacian pyramid -------------------------------------------------------------------------------

def _blur(x: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Separable 5-tap binomial filter over H and W of (N, H, W, C), reflected borders."""
    k = _BINOMIAL * scale
    for axis in (1, 2):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (2, 2)
        p = np.pad(x, pad, mode="reflect")
        n = x.shape[axis]
        x = sum(k[i] * np.take(p, np.arange(i, i + n), axis=axis) for i in range(5))
    return x


def _down(x: np.ndarray) -> np.ndarray:
    return _blur(x)[:, ::2, ::2]


def _up(x: np.ndarray) -> np.ndarray:
    n, h, w, c = x.shape
    z = np.zeros((n, h * 2, w * 2, c), dtype=x.dtype)
    z[:, ::2, ::2] = x
    # Zero insertion keeps a quarter of the energy: the filter makes up for it per axis.
    return _blur(z, scale=2.0)


def laplacian_pyramid(images: np.ndarray, min_res: int = SWD_MIN_RES) -> list[np.ndarray]:
    """(N, H, W, C) float -> [band-pass H, H/2, ..., low-pass min_res] levels."""
    levels = []
    x = images.astype(np.float32)
    while x.shape[1] > min_res and x.shape[1] % 2 == 0:
        small = _down(x)
        levels.append(x - _up(small))
        x = small
    levels.append(x)
    return levels


# --- sliced Wasserstein distance ---------------------------------------------------------------------

def patch_positions(count: int, height: int, width: int, rng: np.random.Generator,
                    nhood: int = NHOOD) -> tuple[np.ndarray, np.ndarray]:
    r = nhood // 2
    return rng.integers(r, height - r, size=count), rng.integers(r, width - r, size=count)


def patch_descriptors(level: np.ndarray, ys: np.ndarray, xs: np.ndarray, nhood: int = NHOOD) -> np.ndarray:
    """nhood x nhood patches centred at (ys, xs), images taken in turn: (count, nhood*nhood*C), normalised."""
    n = len(level)
    count = len(ys)
    r = nhood // 2
    img = np.arange(count) % n
    off = np.arange(-r, r + 1)
    patches = level[img[:, None, None], (ys[:, None] + off)[:, :, None], (xs[:, None] + off)[:, None, :]]
    # Per-channel normalisation of each set (as the reference code does): SWD then compares structure.
    patches = patches - patches.mean(axis=(0, 1, 2), keepdims=True)
    patches = patches / (patches.std(axis=(0, 1, 2), keepdims=True) + 1e-8)
    return patches.reshape(count, -1).astype(np.float32)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                       dir_repeats: int = DIR_REPEATS, dirs_per_repeat: int = DIRS_PER_REPEAT) -> float:
    """Mean 1-D Wasserstein distance between equally many descriptors along random unit directions."""
    results = []
    for _ in range(dir_repeats):
        dirs = rng.standard_normal((a.shape[1], dirs_per_repeat)).astype(np.float32)
        dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
        pa = np.sort(a @ dirs, axis=0)
        pb = np.sort(b @ dirs, axis=0)
        results.append(float(np.abs(pa - pb).mean()))
    return float(np.mean(results))


def swd(real: np.ndarray, fake: np.ndarray, seed: int = 0, patches_per_image: int = PATCHES_PER_IMAGE,
        min_res: int = SWD_MIN_RES) -> dict:
    """SWD x 1e3 per pyramid level ({resolution: value}) and their mean, for two (N, H, W, C) sets."""
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real {real.shape[1:]} and generated {fake.shape[1:]} scenes differ in shape")
    rng = np.random.default_rng(seed)
    count = patches_per_image * max(len(real), len(fake))
    levels = {}
    for lr, lf in zip(laplacian_pyramid(real, min_res), laplacian_pyramid(fake, min_res)):
        # The same patch positions in both sets: sampling noise cancels, identical sets score 0.
        ys, xs = patch_positions(count, lr.shape[1], lr.shape[2], rng)
        da = patch_descriptors(lr, ys, xs)
        db = patch_descriptors(lf, ys, xs)
        levels[int(lr.shape[1])] = sliced_wasserstein(da, db, rng) * 1e3
    return {"levels": levels, "mean": float(np.mean(list(levels.values())))}


# --- colour histograms -------------------------------------------------------------------------------

def histogram_distance(real: np.ndarray, fake: np.ndarray, bins: int = HIST_BINS) -> dict:
    """Per-channel 1-D Wasserstein distance of the 0..255 intensity histograms, in units of 255."""
    out = {}
    edges = np.linspace(0, 256, bins + 1)
    for ch, name in enumerate(("red", "green", "blue")[: real.shape[-1]]):
        hr, _ = np.histogram(real[..., ch], bins=edges)
        hf, _ = np.histogram(fake[..., ch], bins=edges)
        cdf_r = np.cumsum(hr) / max(hr.sum(), 1)
        cdf_f = np.cumsum(hf) / max(hf.sum(), 1)
        out[name] = float(np.abs(cdf_r - cdf_f).sum() / bins)
    out["mean"] = float(np.mean(list(out.values())))
    return out


def class_frequency_distance(real_freq: np.ndarray, fake_freq: np.ndarray) -> float:
    """Half the L1 distance between two class-frequency vectors (0 = same mix, 1 = disjoint)."""
    a = np.asarray(real_freq, np.float64) / max(np.sum(real_freq), 1e-12)
    b = np.asarray(fake_freq, np.float64) / max(np.sum(fake_freq), 1e-12)
    return float(0.5 * np.abs(a - b).sum())


# --- nearest training scene --------------------------------------------------------------------------

def dihedral_transforms() -> list:
    """The 8 flips/rotations of square (N, H, W, C) scenes as functions returning views."""
    out = []
    for t in (False, True):
        for fy in (False, True):
            for fx in (False, True):
                def fn(x, t=t, fy=fy, fx=fx):
                    x = x.transpose(0, 2, 1, 3) if t else x
                    x = x[:, ::-1] if fy else x
                    return x[:, :, ::-1] if fx else x
                out.append(fn)
    return out


def _inverse_table(ts: list) -> list[int]:
    probe = np.arange(9).reshape(1, 3, 3, 1)
    inv = []
    for f in ts:
        fp = f(probe)
        inv.append(next(j for j, g in enumerate(ts) if np.array_equal(g(fp), probe)))
    return inv


def dihedral(images: np.ndarray) -> np.ndarray:
    """All 8 orientations at once: (8, N, H, W, C)."""
    return np.stack([f(images) for f in dihedral_transforms()])


def _flat(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images).reshape(len(images), -1).astype(np.float32) / 255.0


def _min_sq_dists(a: np.ndarray, b: np.ndarray, transforms: list, chunk: int = 64):
    """Squared L2 distance of every a to every b over the orientations of a, in chunks so that memory
    stays at two chunks of scenes: (min distance (len a, len b), index of the best transform of a)."""
    best = np.full((len(a), len(b)), np.inf)
    best_t = np.zeros((len(a), len(b)), dtype=np.int64)
    for j in range(0, len(b), chunk):
        fb = _flat(b[j:j + chunk])
        nb = (fb * fb).sum(1)
        for i in range(0, len(a), chunk):
            for k, f in enumerate(transforms):
                fa = _flat(f(a[i:i + chunk]))
                d = (fa * fa).sum(1)[:, None] + nb[None, :] - 2.0 * (fa @ fb.T)
                d = np.maximum(d, 0.0)
                block = best[i:i + chunk, j:j + chunk]
                better = d < block
                block[better] = d[better]
                best_t[i:i + chunk, j:j + chunk][better] = k
    return best, best_t


def nearest_real(fake: np.ndarray, real: np.ndarray, flip_rotate: bool = True) -> dict:
    """For every sample: the nearest real scene (index, orientation of the real scene that matches, RMS
    distance), the real-real reference (median nearest distance between distinct real scenes) and the
    ratio of the two medians."""
    ts = dihedral_transforms() if flip_rotate else [lambda x: x]
    inv = _inverse_table(ts)
    d, t = _min_sq_dists(fake, real, ts)
    rows = np.arange(len(fake))
    idx = d.argmin(axis=1)
    # The sample turned by t matches the real scene: the real scene turned by t's inverse matches the sample.
    orient = [inv[k] for k in t[rows, idx]]
    pixels = float(np.prod(real.shape[1:]))
    dist = np.sqrt(d[rows, idx] / pixels)
    ref = float("nan")
    if len(real) > 1:
        rr, _ = _min_sq_dists(real, real, ts)
        np.fill_diagonal(rr, np.inf)
        ref = float(np.median(np.sqrt(rr.min(axis=1) / pixels)))
    med = float(np.median(dist))
    return {"index": idx.tolist(), "orientation": orient, "distance": dist.tolist(),
            "median_distance": med, "real_median_distance": ref,
            "ratio": med / ref if ref and np.isfinite(ref) else float("nan")}


def nearest_figure(fake: np.ndarray, real: np.ndarray, nn: dict, path: str | Path, rows: int = 8,
                   flip_rotate: bool = True) -> None:
    """A figure of ``rows`` pairs: sample | nearest real scene (in its matching orientation)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = min(rows, len(fake))
    ts = dihedral_transforms() if flip_rotate else [lambda x: x]
    fig, axes = plt.subplots(rows, 2, figsize=(4.4, 2.2 * rows), squeeze=False)
    for r in range(rows):
        j, o = nn["index"][r], nn["orientation"][r]
        axes[r, 0].imshow(fake[r])
        axes[r, 0].set_title(f"sample {r}", fontsize=8)
        axes[r, 1].imshow(ts[o](real[j:j + 1])[0])
        axes[r, 1].set_title(f"real #{j}  d={nn['distance'][r]:.3f}", fontsize=8)
        for a in axes[r]:
            a.axis("off")
    fig.suptitle(f"nearest real scene (median ratio {nn['ratio']:.2f})", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    _save_figure(fig, Path(path))
    plt.close(fig)


def _save_figure(fig, path: Path) -> None:
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


# --- optional FID / KID ------------------------------------------------------------------------------

def inception_features(images: np.ndarray, weights_file: str | Path, batch: int = 32) -> np.ndarray:
    """2048-d pool features of InceptionV3 from a local weights file (no download)."""
    import keras
    import tensorflow as tf

    model = keras.applications.InceptionV3(include_top=False, weights=None, pooling="avg",
                                           input_shape=(299, 299, 3))
    model.load_weights(str(weights_file))
    feats = []
    for i in range(0, len(images), batch):
        x = tf.image.resize(tf.cast(images[i:i + batch], tf.float32), (299, 299), method="bilinear")
        x = keras.applications.inception_v3.preprocess_input(x)
        feats.append(np.asarray(model(x, training=False), dtype=np.float64))
    return np.concatenate(feats)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between two feature sets (N, D)."""
    import warnings

    from scipy import linalg

    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Fewer samples than feature dimensions give singular covariances; the offset keeps sqrtm stable.
    eps = np.eye(len(s1)) * 1e-6
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def kernel_inception_distance(a: np.ndarray, b: np.ndarray, subsets: int = 10, subset_size: int = 100,
                              seed: int = 0) -> float:
    """KID: unbiased MMD^2 with the cubic polynomial kernel, averaged over random subsets."""
    rng = np.random.default_rng(seed)
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    vals = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                    - 2 * kxy.mean())
    return float(np.mean(vals))


# --- all together ------------------------------------------------------------------------------------

def score_sets(real: np.ndarray, fake: np.ndarray, seed: int = 0, flip_rotate: bool = True,
               nearest: bool = True, inception_weights: str | Path | None = None) -> dict:
    """The full report for uint8 photo sets (N, H, W, 3): swd, histogram, nearest, and FID/KID if asked."""
    report = {"n_real": int(len(real)), "n_generated": int(len(fake)),
              "swd": swd(real, fake, seed=seed), "histogram": histogram_distance(real, fake)}
    if nearest:
        report["nearest"] = nearest_real(fake, real, flip_rotate=flip_rotate)
    if inception_weights is not None:
        fr = inception_features(real, inception_weights)
        ff = inception_features(fake, inception_weights)
        report["fid"] = frechet_distance(fr, ff)
        report["kid"] = kernel_inception_distance(fr, ff, seed=seed)
    return report
