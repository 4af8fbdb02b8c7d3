"""Per site-year composites of clear observations.

The definition, which the tests hold the kernels to bit for bit against the numpy sort path they
replaced: an observation counts at a pixel when it is clear and every band is finite; the median
interpolates linearly between the two middle values, as numpy's default percentile, with
``nan_percentile``'s arithmetic (the difference of the middle values in float32, the
interpolation in float64, the result rounded to float32); MAD is that median of |x - median|
over the same observations; NaN where none counts.

The per-pixel work runs in numba kernels compiled once and cached on disk (``cache=True``), so
worker processes load machine code from ``__pycache__`` instead of compiling again. The kernels
release the GIL and run over bands of rows on a thread pool that lives for one call, not on
numba's parallel threading layer: the one it picks from the pip wheels on Linux, GNU OpenMP,
aborts a process that forks after using it, and the run forks its process pool.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numba  # type: ignore[import-untyped,unused-ignore]
import numpy as np
from numpy.typing import NDArray

from pipeline.errors import InsufficientDataError

FloatArray = NDArray[np.float32]


@dataclass(frozen=True)
class Composite:
    """``reflectance`` (band, y, x), NaN where no clear observation; ``clear_count`` (y, x);
    ``mad`` (band, y, x): median absolute deviation of the clear observations, the spread."""

    reflectance: FloatArray
    clear_count: NDArray[np.int16]
    mad: FloatArray


@dataclass(frozen=True)
class Medoid:
    """``reflectance`` (band, y, x): the clear observation nearest all the others, NaN where
    none; ``clear_count`` (y, x); ``time_index`` (y, x): its index on the time axis, -1 where
    none. Unlike a per-band median, every pixel is one real observation from one date."""

    reflectance: FloatArray
    clear_count: NDArray[np.int16]
    time_index: NDArray[np.int16]


def masked_stack(stack: FloatArray, clear: NDArray[np.bool_]) -> FloatArray:
    """``stack`` (time, band, y, x) with NaN where ``clear`` (time, y, x) is False."""
    return np.where(clear[:, None, :, :], stack, np.float32(np.nan)).astype(np.float32)


def median_composite(
    stack: FloatArray, clear: NDArray[np.bool_], *, threads: int | None = None
) -> Composite:
    """Per-band median of clear observations with clear count and MAD.

    Pixels with no clear observation are NaN. A per-band median can mix dates (DOMAIN.md); it is
    robust to residual cloud and shadow, which matters more for the footprint rule. ``threads``:
    how many to use, by default one per core available to the process.
    """
    stack, clear = _normalise(stack, clear)
    med, mad, count = _median_arrays(stack, clear, spread=True, threads=threads)
    return Composite(med, count, mad)


def median_only(
    stack: FloatArray, clear: NDArray[np.bool_], *, threads: int | None = None
) -> FloatArray:
    """The ``reflectance`` of :func:`median_composite` without computing the spread."""
    stack, clear = _normalise(stack, clear)
    return _median_arrays(stack, clear, spread=False, threads=threads)[0]


def medoid_composite(
    stack: FloatArray, clear: NDArray[np.bool_], *, threads: int | None = None
) -> Medoid:
    """Per pixel, the counted observation whose summed Euclidean distance over bands to the
    other counted observations is least; ties go to the earliest on the time axis."""
    stack, clear = _normalise(stack, clear)
    _, bands, height, width = stack.shape
    out = np.empty((bands, height, width), np.float32)
    count = np.empty((height, width), np.int16)
    index = np.empty((height, width), np.int16)
    _over_rows(
        lambda y0, y1: _medoid_kernel(stack, clear, y0, y1, out, count, index), height, threads
    )
    return Medoid(out, count, index)


def nan_percentile(data: FloatArray, q: float) -> FloatArray:
    """Percentile ``q`` along axis 0 ignoring NaN (linear interpolation, as numpy's default);
    NaN where a pixel has no value.

    Same result as ``np.nanpercentile(data, q, axis=0)``, which loops in Python per pixel on
    stacks this shape and takes seconds; sorting once (NaN sorts last) takes milliseconds.
    """
    ordered = np.sort(data, axis=0)
    n = np.isfinite(ordered).sum(axis=0)
    pos = (np.maximum(n, 1) - 1) * (q / 100.0)
    lo = np.floor(pos).astype(np.intp)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    below = np.take_along_axis(ordered, lo[None], axis=0)[0]
    above = np.take_along_axis(ordered, hi[None], axis=0)[0]
    out = below + (above - below) * (pos - lo)
    return np.where(n > 0, out, np.nan).astype(np.float32)


def _normalise(stack: FloatArray, clear: NDArray[np.bool_]) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Check shapes and return C-contiguous float32 and bool arrays, the one layout the kernels
    are compiled for (another layout would compile, and cache, a second specialisation)."""
    if stack.ndim != 4 or clear.shape != (stack.shape[0], *stack.shape[2:]):
        raise ValueError(
            f"stack must be (time, band, y, x) and clear (time, y, x); got {stack.shape}, {clear.shape}"
        )
    if stack.shape[0] == 0:
        raise InsufficientDataError("no observations to composite")
    if stack.shape[0] > np.iinfo(np.int16).max:
        raise ValueError(f"at most 32767 observations per pixel; got {stack.shape[0]}")
    return (
        np.ascontiguousarray(stack, dtype=np.float32),
        np.ascontiguousarray(clear, dtype=np.bool_),
    )


def _median_arrays(
    stack: FloatArray, clear: NDArray[np.bool_], *, spread: bool, threads: int | None
) -> tuple[FloatArray, FloatArray, NDArray[np.int16]]:
    _, bands, height, width = stack.shape
    med = np.empty((bands, height, width), np.float32)
    mad = np.full((bands, height, width) if spread else (0, 0, 0), np.nan, np.float32)
    count = np.empty((height, width), np.int16)
    network = sorting_network(stack.shape[0])
    _over_rows(
        lambda y0, y1: _median_kernel(stack, clear, network, spread, y0, y1, med, mad, count),
        height,
        threads,
    )
    return med, mad, count


_default_threads: int | None = None


def set_default_threads(threads: int | None) -> None:
    """The threads a kernel call uses when it names none (None: every core this process may
    use). A local process pool's workers each take their share of the cores
    (``executors.open_executor``), so that N workers do not run N x cores threads."""
    global _default_threads
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1; got {threads}")
    _default_threads = threads


def _over_rows(run: Callable[[int, int], None], height: int, threads: int | None) -> None:
    """Call ``run(y0, y1)`` over bands of rows covering ``range(height)``, on ``threads``
    threads (default: ``set_default_threads``, else the cores this process may use). The pool
    is joined before returning, so no thread outlives the call (a fork later copies none)."""
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1; got {threads}")
    workers = threads or _default_threads or len(os.sched_getaffinity(0))
    # A few bands per thread even out the rows that have more observations than others.
    edges = np.linspace(0, height, min(height, 4 * workers) + 1).astype(int).tolist()
    if workers == 1 or len(edges) <= 2:
        run(0, height)
        return
    with ThreadPoolExecutor(workers) as pool:
        for _ in pool.map(run, edges[:-1], edges[1:]):
            pass


# Kernels: plain Python over plain arrays, compiled at the end of the module, each over the rows
# [y0, y1) of its output. The median kernel sorts every pixel of a row at once with a sorting network, so
# that each compare-exchange is a vectorised min/max over the row; observations that do not count
# are +inf and sort last (counted values are finite by definition).


@functools.cache
def sorting_network(n: int) -> NDArray[np.intp]:
    """Compare-exchange pairs (i, j), i < j, of Batcher's odd-even merge sort on ``n`` items,
    in order: applying ``a[i], a[j] = min, max`` for each sorts any sequence of length ``n``."""
    pairs: list[tuple[int, int]] = []
    p = 1
    while p < n:
        k = p
        while k >= 1:
            for j in range(k % p, n - k, 2 * k):
                for i in range(min(k, n - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p):
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return np.array(pairs, np.intp).reshape(-1, 2)


def _sort_columns(work: FloatArray, network: NDArray[np.intp]) -> None:
    """Sort each column of ``work`` (item, pixel) in place (no NaN in it)."""
    for p in range(network.shape[0]):
        i = network[p, 0]
        j = network[p, 1]
        for x in range(work.shape[1]):
            a = work[i, x]
            b = work[j, x]
            work[i, x] = min(a, b)
            work[j, x] = max(a, b)


def _column_median(work: FloatArray, x: int, n: int) -> np.float32:
    """Median of sorted ``work[:n, x]``, n >= 1, with ``nan_percentile``'s arithmetic."""
    pos = (n - 1) * 0.5
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    below = work[lo, x]
    step = np.float32(work[hi, x] - below)
    return np.float32(np.float64(below) + np.float64(step) * (pos - lo))


def _counted_times(
    stack: FloatArray, clear: NDArray[np.bool_], y: int, x: int, times: NDArray[np.intp]
) -> int:
    """Write into ``times`` the indices of the observations counted at (y, x); return how many."""
    n = 0
    for t in range(stack.shape[0]):
        if not clear[t, y, x]:
            continue
        finite = True
        for b in range(stack.shape[1]):
            if not np.isfinite(stack[t, b, y, x]):
                finite = False
                break
        if finite:
            times[n] = t
            n += 1
    return n


def _median_kernel(
    stack: FloatArray,
    clear: NDArray[np.bool_],
    network: NDArray[np.intp],
    spread: bool,
    y0: int,
    y1: int,
    med: FloatArray,
    mad: FloatArray,
    count: NDArray[np.int16],
) -> None:
    n_time, n_band, _, width = stack.shape
    work = np.empty((n_time, width), np.float32)
    counted = np.empty((n_time, width), np.bool_)
    n = np.empty(width, np.intp)
    k = np.empty(width, np.intp)
    for y in range(y0, y1):
        n[:] = 0
        for t in range(n_time):
            for x in range(width):
                counted[t, x] = clear[t, y, x]
            for b in range(n_band):
                for x in range(width):
                    counted[t, x] &= np.isfinite(stack[t, b, y, x])
            for x in range(width):
                n[x] += counted[t, x]
        for x in range(width):
            count[y, x] = n[x]
        for b in range(n_band):
            for t in range(n_time):
                for x in range(width):
                    work[t, x] = stack[t, b, y, x] if counted[t, x] else np.inf
            _sort_columns(work, network)
            for x in range(width):
                med[b, y, x] = _column_median(work, x, n[x]) if n[x] > 0 else np.nan
            if not spread:
                continue
            # A deviation can overflow float32 to inf: nan_percentile leaves it out, and so
            # does this (inf sorts with the observations that do not count).
            k[:] = 0
            for t in range(n_time):
                for x in range(width):
                    d = np.float32(abs(np.float32(stack[t, b, y, x] - med[b, y, x])))
                    keep = counted[t, x] and np.isfinite(d)
                    work[t, x] = d if keep else np.inf
                    k[x] += keep
            _sort_columns(work, network)
            for x in range(width):
                mad[b, y, x] = _column_median(work, x, k[x]) if k[x] > 0 else np.nan


def _medoid_kernel(
    stack: FloatArray,
    clear: NDArray[np.bool_],
    y0: int,
    y1: int,
    out: FloatArray,
    count: NDArray[np.int16],
    index: NDArray[np.int16],
) -> None:
    n_time, n_band, _, width = stack.shape
    times = np.empty(n_time, np.intp)
    for y in range(y0, y1):
        for x in range(width):
            n = _counted_times(stack, clear, y, x, times)
            count[y, x] = n
            best = -1
            best_total = np.inf
            for i in range(n):
                total = 0.0
                for j in range(n):
                    if j == i:
                        continue
                    squared = 0.0
                    for b in range(n_band):
                        d = np.float64(stack[times[i], b, y, x]) - np.float64(
                            stack[times[j], b, y, x]
                        )
                        squared += d * d
                    total += np.sqrt(squared)
                if total < best_total:
                    best_total = total
                    best = i
            if best < 0:
                index[y, x] = -1
                for b in range(n_band):
                    out[b, y, x] = np.nan
            else:
                index[y, x] = times[best]
                for b in range(n_band):
                    out[b, y, x] = stack[times[best], b, y, x]


_sort_columns = numba.njit(cache=True, nogil=True)(_sort_columns)
_column_median = numba.njit(cache=True, nogil=True)(_column_median)
_counted_times = numba.njit(cache=True, nogil=True)(_counted_times)
_median_kernel = numba.njit(cache=True, nogil=True)(_median_kernel)
_medoid_kernel = numba.njit(cache=True, nogil=True)(_medoid_kernel)
