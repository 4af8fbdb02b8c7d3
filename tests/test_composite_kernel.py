"""The numba compositing kernels against the numpy definition they replaced, bit for bit."""

from __future__ import annotations

import itertools
import math
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from pipeline.composite import (
    Composite,
    masked_stack,
    median_composite,
    median_only,
    medoid_composite,
    nan_percentile,
    sorting_network,
)
from pipeline.errors import InsufficientDataError

HYP = settings(max_examples=60, derandomize=True, database=None, deadline=None)


def reference(stack: NDArray[np.float32], clear: NDArray[np.bool_]) -> Composite:
    """The definition: the numpy sort path ``median_composite`` used before the kernel."""
    with np.errstate(all="ignore"):  # |x - median| may overflow float32 on extreme values
        data = masked_stack(stack, clear & np.isfinite(stack).all(axis=1))
        med = nan_percentile(data, 50.0)
        mad = nan_percentile(np.abs(data - med[None]), 50.0)
    count = np.isfinite(data[:, 0]).sum(axis=0).astype(np.int16)
    return Composite(med, count, mad)


def assert_identical(got: Composite, want: Composite) -> None:
    for name in ("reflectance", "clear_count", "mad"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype, name
        assert a.shape == b.shape, name
        # Equal as numbers, NaN where NaN. A sort may order -0.0 and 0.0 either way, in numpy
        # as here, so the sign of a zero is the one bit this does not hold fixed.
        assert np.array_equal(a, b, equal_nan=True), name


def random_case(
    seed: int, n_time: int, *, levels: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Reflectance-like stack with NaN bands, 40% cloud, and fully masked rows; ``levels`` > 0
    quantises the values so that ties are common."""
    rng = np.random.default_rng(seed)
    stack = rng.uniform(0.0, 0.5, (n_time, 4, 9, 11)).astype(np.float32)
    if levels:
        stack = (np.round(stack * levels) / levels).astype(np.float32)
    stack[rng.random(stack.shape) < 0.05] = np.nan
    clear = rng.random((n_time, 9, 11)) > 0.4
    clear[:, 0, :] = False  # no observation at all
    clear[:, 1, :] = False
    clear[0, 1, :] = True  # exactly one
    return stack, clear


@pytest.mark.parametrize("n_time", [1, 2, 3, 4, 5, 8, 13, 24, 31, 32, 33, 40])
@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_matches_reference_on_random_stacks(seed: int, n_time: int) -> None:
    stack, clear = random_case(seed, n_time)
    got = median_composite(stack, clear)
    assert_identical(got, reference(stack, clear))
    assert (got.clear_count[0] == 0).all()
    assert np.isnan(got.reflectance[:, 0]).all()
    assert np.isnan(got.mad[:, 0]).all()
    assert got.clear_count[1].max() <= 1


@pytest.mark.parametrize("n_time", [2, 6, 7, 24])
def test_kernel_matches_reference_with_many_ties(n_time: int) -> None:
    stack, clear = random_case(7, n_time, levels=3)
    assert_identical(median_composite(stack, clear), reference(stack, clear))


def test_known_median_and_mad() -> None:
    values = [0.01, 0.02, 0.03, 0.04, 1.0]  # one bright outlier (residual cloud)
    stack = np.array(values, np.float32).reshape(5, 1, 1, 1)
    c = median_composite(stack, np.ones((5, 1, 1), bool))
    assert c.reflectance[0, 0, 0] == np.float32(0.03)
    assert c.mad[0, 0, 0] == pytest.approx(0.01, abs=1e-7)
    assert c.clear_count[0, 0] == 5
    even = median_composite(stack[:4], np.ones((4, 1, 1), bool))
    assert even.reflectance[0, 0, 0] == pytest.approx(0.025, abs=1e-7)


def test_an_observation_with_a_non_finite_band_does_not_count() -> None:
    stack = np.array([[0.1, 0.1], [0.2, np.inf], [0.3, 0.3]], np.float32).reshape(3, 2, 1, 1)
    c = median_composite(stack, np.ones((3, 1, 1), bool))
    assert c.clear_count[0, 0] == 2
    assert c.reflectance[:, 0, 0] == pytest.approx([0.2, 0.2])


def test_median_only_is_the_composite_reflectance() -> None:
    stack, clear = random_case(3, 17)
    np.testing.assert_array_equal(
        median_only(stack, clear), median_composite(stack, clear).reflectance
    )


def test_any_memory_layout_gives_the_same_composite() -> None:
    stack, clear = random_case(4, 9)
    flipped = stack[:, :, ::-1, :]  # a non-contiguous view
    got = median_composite(flipped, clear[:, ::-1, :])
    assert_identical(got, reference(np.ascontiguousarray(flipped), clear[:, ::-1, :].copy()))


def test_bad_shapes_and_no_observations_are_refused() -> None:
    stack, clear = random_case(0, 3)
    with pytest.raises(ValueError, match=r"stack must be \(time, band, y, x\)"):
        median_composite(stack[0], clear[0])
    with pytest.raises(ValueError, match="clear"):
        median_composite(stack, clear[:, :, :3])
    with pytest.raises(InsufficientDataError, match="no observations"):
        median_composite(stack[:0], clear[:0])
    with pytest.raises(InsufficientDataError, match="no observations"):
        medoid_composite(stack[:0], clear[:0])


any_float32 = st.floats(width=32, allow_nan=True, allow_infinity=True)
small_floats = st.one_of(
    st.just(np.nan), st.sampled_from([0.0, 0.1, 0.25, 1.0]), st.floats(0, 1, width=32)
)


@st.composite
def stacks(draw: st.DrawFn, elements: st.SearchStrategy[float]) -> tuple[np.ndarray, np.ndarray]:
    n_time = draw(st.integers(1, 12))
    n_band = draw(st.integers(1, 3))
    stack = draw(hnp.arrays(np.float32, (n_time, n_band, 3, 4), elements=elements))
    clear = draw(hnp.arrays(np.bool_, (n_time, 3, 4)))
    return stack, clear


@HYP
@given(stacks(small_floats))
def test_kernel_matches_reference_on_generated_stacks(case: tuple[np.ndarray, np.ndarray]) -> None:
    assert_identical(median_composite(*case), reference(*case))


@HYP
@given(stacks(any_float32))
def test_kernel_matches_reference_on_extreme_values(case: tuple[np.ndarray, np.ndarray]) -> None:
    """Values up to float32's limits: differences and deviations overflow to inf."""
    assert_identical(median_composite(*case), reference(*case))


@pytest.mark.parametrize("n", range(1, 15))
def test_sorting_network_sorts_every_zero_one_sequence(n: int) -> None:
    """The 0-1 principle: a comparator network that sorts all 2**n sequences of zeros and ones
    sorts every sequence of length n."""
    seqs = np.array(list(itertools.product((0, 1), repeat=n)), np.int8).T.copy()  # (n, 2**n)
    for i, j in sorting_network(n):
        lo, hi = np.minimum(seqs[i], seqs[j]), np.maximum(seqs[i], seqs[j])
        seqs[i], seqs[j] = lo, hi
    assert (np.diff(seqs, axis=0) >= 0).all()


@pytest.mark.parametrize("n", [15, 24, 33, 64, 100])
def test_sorting_network_sorts_random_sequences(n: int) -> None:
    seqs = np.random.default_rng(n).random((n, 500))
    for i, j in sorting_network(n):
        lo, hi = np.minimum(seqs[i], seqs[j]), np.maximum(seqs[i], seqs[j])
        seqs[i], seqs[j] = lo, hi
    np.testing.assert_array_equal(seqs, np.sort(seqs, axis=0))


def medoid_reference(stack: np.ndarray, clear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, in plain Python: the time index and values of the medoid."""
    n_time, n_band, height, width = stack.shape
    out = np.full((n_band, height, width), np.nan, np.float32)
    index = np.full((height, width), -1, np.int16)
    for y, x in itertools.product(range(height), range(width)):
        px = stack[:, :, y, x].astype(np.float64)
        times = [t for t in range(n_time) if clear[t, y, x] and np.isfinite(px[t]).all()]
        best, best_total = -1, math.inf
        for i in times:
            total = 0.0
            for j in times:
                if j != i:
                    total += math.sqrt(sum((px[i, b] - px[j, b]) ** 2 for b in range(n_band)))
            if total < best_total:
                best, best_total = i, total
        if best >= 0:
            index[y, x] = best
            out[:, y, x] = stack[best, :, y, x]
    return out, index


@pytest.mark.parametrize(
    ("seed", "n_time", "levels"), [(0, 1, 0), (1, 5, 0), (2, 12, 0), (3, 9, 2)]
)
def test_medoid_matches_reference(seed: int, n_time: int, levels: int) -> None:
    stack, clear = random_case(seed, n_time, levels=levels)
    got = medoid_composite(stack, clear)
    out, index = medoid_reference(stack, clear)
    np.testing.assert_array_equal(got.time_index, index)
    assert np.array_equal(got.reflectance, out, equal_nan=True)
    np.testing.assert_array_equal(got.clear_count, reference(stack, clear).clear_count)


def test_medoid_is_a_real_observation_and_ties_go_to_the_earliest() -> None:
    # Pixel 0: points 0, 1, 2 and 10 on a line; 1 and 2 both have the least summed distance
    # (1 + 1 + 9 = 2 + 1 + 8 = 11): the earlier, 1, wins. Pixel 1: nothing clear.
    values = np.array([0.0, 1.0, 2.0, 10.0], np.float32)
    stack = np.stack([values, values * 2], axis=1).reshape(4, 2, 1, 1).repeat(2, axis=3)
    clear = np.ones((4, 1, 2), bool)
    clear[:, 0, 1] = False
    m = medoid_composite(stack, clear)
    assert m.time_index.tolist() == [[1, -1]]
    assert m.reflectance[:, 0, 0].tolist() == [1.0, 2.0]
    assert np.isnan(m.reflectance[:, 0, 1]).all()
    assert m.clear_count.tolist() == [[4, 0]]


def _composite_in_worker(seed: int) -> Composite:
    return median_composite(*random_case(seed, 24))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_kernel_runs_in_worker_processes(method: str) -> None:
    """The run composites in a process pool (fork by default on Linux) after the parent may have
    used the kernel's threads; spawned workers load the compiled kernel from the cache."""
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method} is not available on this platform")
    in_parent = [_composite_in_worker(seed) for seed in (0, 1)]
    context = multiprocessing.get_context(method)
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        in_workers = list(pool.map(_composite_in_worker, (0, 1)))
    for got, want in zip(in_workers, in_parent, strict=True):
        assert_identical(got, want)


@pytest.mark.slow
def test_compiled_kernels_are_cached_on_disk(tmp_path: Path) -> None:
    """A fresh process compiles and writes the cache; the next loads it without compiling."""
    code = (
        "import numpy as np\n"
        "from pipeline.composite import median_composite, _median_kernel\n"
        "median_composite(np.ones((3, 2, 4, 4), np.float32), np.ones((3, 4, 4), bool))\n"
        "stats = _median_kernel.stats\n"
        "print(stats.cache_hits.total(), stats.cache_misses.total())\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}

    def hits_and_misses() -> list[int]:
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
        )
        return [int(v) for v in done.stdout.split()]

    assert hits_and_misses() == [0, 1]
    assert list(tmp_path.rglob("*_median_kernel*.nbi"))
    assert hits_and_misses() == [1, 0]


@pytest.mark.parametrize("threads", [1, 2, 3, 16])
def test_thread_count_does_not_change_the_result(threads: int) -> None:
    stack, clear = random_case(5, 11)
    assert_identical(median_composite(stack, clear, threads=threads), reference(stack, clear))
    one = medoid_composite(stack, clear, threads=1)
    many = medoid_composite(stack, clear, threads=threads)
    np.testing.assert_array_equal(many.time_index, one.time_index)


def test_zero_threads_is_refused() -> None:
    stack, clear = random_case(0, 3)
    with pytest.raises(ValueError, match="threads must be at least 1; got 0"):
        median_composite(stack, clear, threads=0)
