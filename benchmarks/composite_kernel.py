"""Time the compositing kernel (issue 11, benchmark 1) against the numpy sort path it replaced
and bottleneck.nanmedian, on 24 scenes x 6 bands x 1000 x 1000 float32 with 40% of each scene
masked in 50 x 50 px blocks (500 m at 10 m), and print a table. Goals: median <= 0.4 s, the
full composite (median, MAD, count) <= 0.8 s. Also the numba compile time in a fresh process
with an empty cache, and the load time in a second process from that cache.

Run: .venv/bin/python benchmarks/composite_kernel.py [--repeat 3] [--size 1000]

bottleneck is not a dependency of the project: ``.venv/bin/pip install bottleneck`` to include it.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from pipeline.composite import (
    Composite,
    masked_stack,
    median_composite,
    median_only,
    nan_percentile,
)

SCENES, BANDS, BLOCK, MASKED = 24, 6, 50, 0.4
T = TypeVar("T")

_FIRST_CALL = """
import time, numpy as np
t0 = time.perf_counter()
from pipeline.composite import median_composite
t1 = time.perf_counter()
median_composite(np.ones((3, 2, 4, 4), np.float32), np.ones((3, 4, 4), bool))
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f}")
"""


def make_stack(size: int, seed: int = 0) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Reflectance-like values and a clear mask with cloud in BLOCK-pixel blocks."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.02, 0.4, (1, BANDS, size, size)).astype(np.float32)
    stack = base + rng.normal(0, 0.02, (SCENES, BANDS, size, size)).astype(np.float32)
    blocks = -(-size // BLOCK)
    cloudy = rng.random((SCENES, blocks, blocks)) < MASKED
    cloudy = cloudy.repeat(BLOCK, axis=1).repeat(BLOCK, axis=2)[:, :size, :size]
    return stack, ~cloudy


def numpy_median(stack: NDArray[np.float32], clear: NDArray[np.bool_]) -> NDArray[np.float32]:
    return nan_percentile(masked_stack(stack, clear & np.isfinite(stack).all(axis=1)), 50.0)


Arrays = tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.int16]]


def numpy_full(stack: NDArray[np.float32], clear: NDArray[np.bool_]) -> Arrays:
    data = masked_stack(stack, clear & np.isfinite(stack).all(axis=1))
    med = nan_percentile(data, 50.0)
    mad = nan_percentile(np.abs(data - med[None]), 50.0)
    count = np.isfinite(data[:, 0]).sum(axis=0).astype(np.int16)
    return med, mad, count


def best_of(repeat: int, fn: Callable[[], T]) -> tuple[float, T]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def first_call_times() -> list[tuple[str, float, float]]:
    """(label, import s, first call s) in fresh processes: empty cache, then warm cache."""
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("empty cache (compile)", "from cache"):
            out = subprocess.run(
                [sys.executable, "-c", _FIRST_CALL], env=env, check=True, capture_output=True
            )
            imp, call = (float(v) for v in out.stdout.split())
            rows.append((label, imp, call))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=1000)
    args = parser.parse_args()

    import numba

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}, "
        f"{len(os.sched_getaffinity(0))} cores, {platform.processor() or platform.machine()}"
    )
    for label, imp, call in first_call_times():
        print(f"first call in a fresh process, {label}: import {imp:.2f} s, call {call:.2f} s")

    stack, clear = make_stack(args.size)
    print(
        f"stack {stack.shape} float32, {1 - clear.mean():.0%} masked in {BLOCK} px blocks; "
        f"best of {args.repeat}"
    )
    median_composite(stack[:, :, :8, :8], clear[:, :8, :8])  # warm-up (loads the cached code)

    t_med, k_med = best_of(args.repeat, lambda: median_only(stack, clear))
    t_full, k_full = best_of(args.repeat, lambda: median_composite(stack, clear))
    t_med1, _ = best_of(args.repeat, lambda: median_only(stack, clear, threads=1))
    t_full1, _ = best_of(args.repeat, lambda: median_composite(stack, clear, threads=1))
    t_np_med, np_med = best_of(args.repeat, lambda: numpy_median(stack, clear))
    t_np_full, np_full = best_of(args.repeat, lambda: numpy_full(stack, clear))
    assert isinstance(k_full, Composite)
    med, mad, count = np_full
    same = (
        np.array_equal(k_med, np_med, equal_nan=True)
        and np.array_equal(k_full.reflectance, med, equal_nan=True)
        and np.array_equal(k_full.mad, mad, equal_nan=True)
        and np.array_equal(k_full.clear_count, count)
    )
    rows = [
        ("numba kernel, all cores", t_med, t_full, "yes" if same else "NO"),
        ("numba kernel, 1 thread", t_med1, t_full1, "yes (same code)"),
        ("numpy sort (nan_percentile), the definition", t_np_med, t_np_full, "reference"),
    ]
    try:
        import bottleneck as bn  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        print("bottleneck is not installed: left out")
    else:

        def bn_median() -> NDArray[np.float32]:
            data = masked_stack(stack, clear & np.isfinite(stack).all(axis=1))
            return np.asarray(bn.nanmedian(data, axis=0), np.float32)

        def bn_full() -> Arrays:
            data = masked_stack(stack, clear & np.isfinite(stack).all(axis=1))
            m = np.asarray(bn.nanmedian(data, axis=0), np.float32)
            d = np.asarray(bn.nanmedian(np.abs(data - m[None]), axis=0), np.float32)
            return m, d, np.isfinite(data[:, 0]).sum(axis=0).astype(np.int16)

        t_bn_med, _ = best_of(args.repeat, bn_median)
        t_bn_full, bn_out = best_of(args.repeat, bn_full)
        differ = [
            float(np.nanmax(np.abs(got.astype(np.float64) - want)))
            for got, want in ((bn_out[0], med), (bn_out[1], mad))
        ]
        bn_same = max(differ) == 0 and np.array_equal(bn_out[2], count)
        rows.append(
            (
                f"bottleneck {bn.__version__} nanmedian",
                t_bn_med,
                t_bn_full,
                "yes" if bn_same else f"no: up to {differ[0]:.1e} (median), {differ[1]:.1e} (MAD)",
            )
        )

    print()
    print("| method | median (s) | median + MAD + count (s) | identical to reference |")
    print("|---|---:|---:|---|")
    for name, a, b, ok in rows:
        print(f"| {name} | {a:.3f} | {b:.3f} | {ok} |")
    print()
    print(f"goals: median <= 0.4 s ({t_med:.3f}), full <= 0.8 s ({t_full:.3f})")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
