"""Pure array helpers of the renderer: block sums between resolutions and smooth random fields."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter

F32 = NDArray[np.float32]
U8 = NDArray[np.uint8]
U16 = NDArray[np.uint16]


def block_fractions(labels: U8, n_classes: int, factor: int) -> F32:
    """(H, W, n_classes) share of each label in every ``factor`` x ``factor`` block of ``labels``."""
    h, w = labels.shape[0] // factor, labels.shape[1] // factor
    base = np.arange(h * w, dtype=np.intp).reshape(h, 1, w, 1) * n_classes
    index = base + labels.reshape(h, factor, w, factor)
    counts = np.bincount(index.ravel(), minlength=h * w * n_classes).astype(np.float32)
    out: F32 = counts.reshape(h, w, n_classes) * np.float32(1.0 / (factor * factor))
    return out


def block_mean(a: F32, factor: int) -> F32:
    """Mean over ``factor`` x ``factor`` blocks of the first two axes (e.g. 10 m -> 20 m)."""
    # Strided sums: several times faster than reshape().mean() on these small trailing axes.
    out: F32 = np.zeros((a.shape[0] // factor, a.shape[1] // factor, *a.shape[2:]), np.float32)
    for i in range(factor):
        for j in range(factor):
            out += a[i::factor, j::factor]
    out *= np.float32(1.0 / (factor * factor))
    return out


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> F32:
    """Gaussian-smoothed white noise scaled to zero mean and unit variance."""
    f: F32 = gaussian_filter(rng.standard_normal(shape, dtype=np.float32), sigma, mode="wrap")
    out: F32 = ((f - f.mean()) / (f.std() + 1e-12)).astype(np.float32)
    return out


def cover_opacity(field: F32, cover: float, softness: float = 0.6) -> F32:
    """Opacity 0..1 where ``field`` exceeds its (1 - cover) quantile, with soft edges."""
    if cover <= 0:
        return np.zeros_like(field)
    threshold = float(np.quantile(field, 1.0 - cover))
    out: F32 = np.clip((field - threshold) / softness + 0.5, 0.0, 1.0).astype(np.float32)
    return out
