"""The fast read and mask paths against the code they replaced, bit for bit.

* ``masking._dilate``: the row kernel against ``scipy.ndimage.binary_dilation`` by ``disk(r)``
  (the previous implementation), over radii, masks and the array border.
* ``sources.read``: reads in float32 without the float64 copy, plain windowed reads where the
  grid is the raster's own lattice, and the nearest upsampling of coarser pixels on that
  lattice (20 m SCL onto 10 m), against the previous float64 ``WarpedVRT`` read
  (kept here as ``reference_read``), on GeoTIFF and COG files written with rasterio.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from scipy import ndimage

from pipeline.grid import Grid
from pipeline.masking import (
    SCL_CLOUDS,
    SCL_NOT_CLEAR,
    MaskReason,
    _dilate,
    disk,
    reasons_from_qa_pixel,
    reasons_from_scl,
)
from pipeline.sources.read import (
    ReadSettings,
    _not_nodata,
    _on_lattice,
    read_asset,
    read_chip,
)

HYP = settings(max_examples=80, derandomize=True, database=None, deadline=None)
CRS = "EPSG:32652"
LEFT, TOP = 399960.0, 4500000.0  # a Sentinel-2 tile corner: 10 m and 20 m lattices


# ---- cloud dilation -----------------------------------------------------------------------------


def reference_dilate(mask: NDArray[np.bool_], radius: int) -> NDArray[np.bool_]:
    if radius <= 0 or not mask.any():
        return mask
    return np.asarray(ndimage.binary_dilation(mask, structure=disk(radius)))


def assert_same_mask(got: NDArray[np.bool_], want: NDArray[np.bool_]) -> None:
    assert got.dtype == want.dtype == np.bool_
    assert got.shape == want.shape
    assert np.array_equal(got, want)


@given(
    mask=hnp.arrays(np.bool_, hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=40)),
    radius=st.integers(0, 25),
)
@HYP
def test_dilation_equals_scipy_disk_dilation(mask: NDArray[np.bool_], radius: int) -> None:
    assert_same_mask(_dilate(mask, radius), reference_dilate(mask, radius))


@given(
    shape=st.tuples(st.integers(1, 60), st.integers(1, 60)),
    points=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 59)), min_size=1, max_size=4),
    radius=st.integers(1, 30),
)
@HYP
def test_dilation_of_sparse_points_near_the_border(
    shape: tuple[int, int], points: list[tuple[int, int]], radius: int
) -> None:
    """Single pixels, often on or near the edge: the disk is cut by the border, not wrapped or
    reflected, and its outline is the exact digital disk."""
    mask = np.zeros(shape, np.bool_)
    for y, x in points:
        mask[min(y, shape[0] - 1), min(x, shape[1] - 1)] = True
    assert_same_mask(_dilate(mask, radius), reference_dilate(mask, radius))


@pytest.mark.parametrize("radius", [1, 2, 7, 15, 16, 50])
def test_one_pixel_dilates_to_the_disk(radius: int) -> None:
    size = 2 * radius + 1
    mask = np.zeros((size + 6, size + 6), np.bool_)
    mask[radius + 3, radius + 3] = True
    got = _dilate(mask, radius)
    assert np.array_equal(got[3:-3, 3:-3], disk(radius))
    assert got.sum() == disk(radius).sum()


def test_dilation_of_block_clouds_and_views() -> None:
    """The benchmark's case (500 m blocks over ~40%, 150 m at 10 m), also from a strided and a
    Fortran-ordered view: the result does not depend on the layout."""
    rng = np.random.default_rng(3)
    mask = np.kron(rng.random((8, 8)) < 0.4, np.ones((50, 50), np.bool_))
    want = reference_dilate(mask, 15)
    assert_same_mask(_dilate(mask, 15), want)
    assert_same_mask(_dilate(np.asfortranarray(mask), 15), want)
    assert_same_mask(_dilate(mask[::2, ::3], 4), reference_dilate(mask[::2, ::3], 4))


def test_no_cloud_and_zero_radius_return_the_mask() -> None:
    empty = np.zeros((5, 6), np.bool_)
    assert _dilate(empty, 3) is empty
    full = np.ones((5, 6), np.bool_)
    assert _dilate(full, 0) is full
    assert _dilate(full, 4).all()


@given(
    scl=hnp.arrays(
        np.uint16, st.tuples(st.integers(1, 30), st.integers(1, 30)), elements=st.integers(0, 12)
    ),
    radius=st.integers(0, 12),
)
@HYP
def test_scl_reasons_unchanged(scl: NDArray[np.uint16], radius: int) -> None:
    got = reasons_from_scl(scl, SCL_NOT_CLEAR, SCL_CLOUDS, radius)
    buffer = reference_dilate(np.isin(scl, SCL_CLOUDS), radius)
    want = np.full(scl.shape, MaskReason.CLEAR, np.uint8)
    for cls, reason in {0: 1, 1: 2, 8: 3, 9: 3, 10: 5, 11: 7}.items():
        want[scl == cls] = reason
    want[buffer & (want == MaskReason.CLEAR)] = MaskReason.CLOUD_BUFFER
    assert got.dtype == np.uint8
    assert np.array_equal(got, want)


def test_qa_pixel_dilated_bits_use_the_same_dilation() -> None:
    qa = np.zeros((40, 50), np.uint16)
    qa[0, 0] = 1 << 3  # cloud in the corner
    qa[20, 25] = 1 << 3
    got = reasons_from_qa_pixel(qa, (3,), (3,), 6)
    buffer = reference_dilate((qa >> 3) & 1 == 1, 6)
    assert np.array_equal(got == MaskReason.CLOUD_BUFFER, buffer & ((qa >> 3) & 1 == 0))


# ---- reads --------------------------------------------------------------------------------------


def reference_read(
    href: str | Path, grid: Grid, resampling: Resampling, band: int = 1
) -> NDArray[np.float64]:
    """The float64 ``WarpedVRT`` read ``read_asset`` made before (overview choice included),
    with today's fixed resampling scale (``read._warp_scale``, which makes window reads agree
    with whole-grid reads for ``pipeline.chunks``)."""
    from pipeline.sources.read import _overview_level, _warp_scale

    with rasterio.open(href) as src:
        level = _overview_level(src, grid, band)
    with rasterio.open(href, **({} if level is None else {"overview_level": level})) as src:
        nodata = src.nodatavals[band - 1]
        with WarpedVRT(
            src,
            crs=grid.crs,
            transform=grid.transform,
            width=grid.width,
            height=grid.height,
            resampling=resampling,
            src_nodata=nodata,
            nodata=nodata,
            add_alpha=nodata is None,
            **_warp_scale(src, grid),
        ) as vrt:
            data = vrt.read(band).astype(np.float64)
            ok = vrt.read(vrt.count) > 0 if nodata is None else data != nodata
    return np.where(ok, data, np.nan)


def write_raster(
    path: Path,
    data: NDArray[Any],
    res: float,
    nodata: float | None,
    *,
    driver: str = "COG",
    crs: str = CRS,
) -> Path:
    profile: dict[str, Any] = {
        "driver": driver, "width": data.shape[1], "height": data.shape[0], "count": 1,
        "dtype": data.dtype.name, "crs": crs, "transform": Affine(res, 0, LEFT, 0, -res, TOP),
        "nodata": nodata,
    }  # fmt: skip
    if driver == "COG":
        profile["blocksize"] = 128
        profile["overview_resampling"] = "average"
    else:
        profile.update(tiled=True, blockxsize=32, blockysize=32)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return path


def noisy(dtype: str, shape: tuple[int, int], seed: int) -> NDArray[Any]:
    """Values over the dtype's range with no-data holes (value 0 or NaN) and sharp steps, so a
    neighbour leaking into a pixel would show."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        data = rng.normal(0.2, 0.3, shape).astype(dtype)
        data[rng.random(shape) < 0.05] = np.nan
        return data
    info = np.iinfo(dtype)
    data = rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)
    data[rng.random(shape) < 0.05] = 0
    return data


# (dtype, nodata): S2 bands (uint16, 0), SCL (uint8, 0), without nodata, signed, float
RASTERS = [
    ("uint16", 0.0),
    ("uint8", 0.0),
    ("uint16", None),
    ("uint8", None),
    ("int16", -32768.0),
    ("int8", 5.0),
    ("uint16", 65535.0),
    ("int32", -9999.0),
    ("float32", float("nan")),
    ("float32", 0.1),  # not exact in float32: the float64 test never matches
    ("float64", -1.5),
]


@pytest.fixture(scope="module")
def rasters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rasters")
    out: dict[str, Path] = {}
    for i, (dtype, nodata) in enumerate(RASTERS):
        for driver in ("COG", "GTiff"):
            key = f"{dtype}-{nodata}-{driver}"
            out[key] = write_raster(
                root / f"{i}-{driver}.tif", noisy(dtype, (96, 80), i), 10, nodata, driver=driver
            )
    out["20m"] = write_raster(root / "b11.tif", noisy("uint16", (48, 40), 99), 20, 0.0)
    out["other-crs"] = write_raster(
        root / "other.tif", noisy("uint16", (96, 80), 7), 10, 0.0, crs="EPSG:32651"
    )
    return out


def grid_at(col: float, row: float, width: int, height: int, res: float = 10.0) -> Grid:
    """A grid whose origin is (col, row) pixels of 10 m from the rasters' corner."""
    return Grid(CRS, Affine(res, 0, LEFT + col * 10.0, 0, -res, TOP - row * 10.0), width, height)


GRIDS = {
    "inside": grid_at(8, 16, 40, 30),
    "whole": grid_at(0, 0, 80, 96),
    "past the right and bottom": grid_at(60, 80, 40, 30),
    "past the left and top": grid_at(-7, -9, 30, 25),
    "around the raster": grid_at(-3, -4, 90, 110),
    "outside": grid_at(200, 200, 10, 10),
    "touching the edge": grid_at(80, 0, 5, 5),
    "half a pixel off": grid_at(8.5, 16, 40, 30),
    "20 m on the lattice": grid_at(8, 16, 20, 15, res=20.0),
    "20 m off the lattice": grid_at(9, 16, 20, 15, res=20.0),
}


def assert_same_read(got: NDArray[Any], want: NDArray[np.float64], dtype: type) -> None:
    want = want.astype(dtype)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    assert np.array_equal(got, want, equal_nan=True)


@pytest.mark.parametrize("grid_name", list(GRIDS))
@pytest.mark.parametrize(
    "raster", [f"{d}-{n}-{drv}" for d, n in RASTERS for drv in ("COG", "GTiff")]
)
@pytest.mark.parametrize("resampling", [Resampling.bilinear, Resampling.nearest, Resampling.cubic])
def test_read_asset_and_chip_equal_the_float64_warp(
    rasters: dict[str, Path], raster: str, grid_name: str, resampling: Resampling
) -> None:
    grid = GRIDS[grid_name]
    want = reference_read(rasters[raster], grid, resampling)
    assert_same_read(read_asset(rasters[raster], grid, resampling), want, np.float64)
    chip = read_chip(str(rasters[raster]), grid, resampling, ReadSettings())
    assert_same_read(chip, want, np.float32)


@pytest.mark.parametrize(
    ("raster", "grid_name", "lattice"),
    [
        ("uint16-0.0-COG", "inside", (1, 8, 16)),
        ("uint16-0.0-COG", "past the left and top", (1, -7, -9)),
        ("uint8-None-GTiff", "around the raster", (1, -3, -4)),
        ("int16--32768.0-COG", "whole", (1, 0, 0)),
        ("uint16-0.0-COG", "half a pixel off", None),
        ("uint16-0.0-COG", "20 m on the lattice", None),  # 20 m grid pixels on 10 m data: warped
        ("int32--9999.0-COG", "inside", None),  # wider integers keep the warp
        ("float32-nan-COG", "inside", None),
    ],
)
def test_lattice_path_is_taken_only_where_it_may_be(
    rasters: dict[str, Path], raster: str, grid_name: str, lattice: tuple[int, int, int] | None
) -> None:
    """The identity tests above only prove the fast path where it runs: these say where."""
    with rasterio.open(rasters[raster]) as src:
        assert _on_lattice(src, GRIDS[grid_name], 1) == lattice


def test_20m_band_on_its_own_lattice_and_upsampled(rasters: dict[str, Path]) -> None:
    """A 20 m band (SWIR, SCL) on a 20 m grid reads by window; onto the 10 m grid nearest is
    upsampled and bilinear warped, as before."""
    on_lattice = grid_at(8, 16, 20, 15, res=20.0)
    with rasterio.open(rasters["20m"]) as src:
        assert _on_lattice(src, on_lattice, 1) == (1, 4, 8)
        assert _on_lattice(src, GRIDS["inside"], 1) == (2, 8, 16)  # upsampled: nearest only
    for grid in (on_lattice, GRIDS["inside"], GRIDS["around the raster"]):
        for resampling in (Resampling.bilinear, Resampling.nearest):
            want = reference_read(rasters["20m"], grid, resampling)
            assert_same_read(read_asset(rasters["20m"], grid, resampling), want, np.float64)
            chip = read_chip(str(rasters["20m"]), grid, resampling, ReadSettings())
            assert_same_read(chip, want, np.float32)


# (dtype, nodata) of the coarse rasters: 20 m SWIR (uint16, 0) and SCL (uint8, 0), without
# nodata, signed, and int8 with nodata 5
COARSE = [("uint16", 0.0), ("uint8", 0.0), ("uint16", None), ("int16", -32768.0), ("int8", 5.0)]


@pytest.fixture(scope="module")
def coarse(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("coarse")
    out: dict[str, Path] = {}
    for i, (dtype, nodata) in enumerate(COARSE):
        for res in (20, 30):
            data = noisy(dtype, (48, 40), 100 + i)
            if nodata is not None:
                data[:, 7] = nodata  # a no-data column and a no-data block
                data[20:26, 10:18] = nodata
            out[f"{dtype}-{nodata}-{res}"] = write_raster(
                root / f"{i}-{res}.tif", data, res, nodata, driver="GTiff"
            )
    return out


@given(
    col=st.integers(-12, 90),
    row=st.integers(-12, 100),
    width=st.integers(1, 50),
    height=st.integers(1, 50),
    raster=st.sampled_from([f"{d}-{n}" for d, n in COARSE]),
    res=st.sampled_from([20, 30]),
    resampling=st.sampled_from([Resampling.bilinear, Resampling.nearest]),
)
@settings(max_examples=150, derandomize=True, database=None, deadline=None)
def test_coarse_pixels_on_the_lattice_equal_the_warp(
    coarse: dict[str, Path],
    col: int,
    row: int,
    width: int,
    height: int,
    raster: str,
    res: int,
    resampling: Resampling,
) -> None:
    """20 m and 30 m rasters onto 10 m grids anywhere on the 10 m lattice (partly or wholly
    outside included): nearest upsampled without the warp, bilinear warped, the arrays equal
    the float64 warp's."""
    path = coarse[f"{raster}-{res}"]
    grid = grid_at(col, row, width, height)
    with rasterio.open(path) as src:
        assert _on_lattice(src, grid, 1) == (res // 10, col, row)
    want = reference_read(path, grid, resampling)
    assert_same_read(read_asset(path, grid, resampling), want, np.float64)
    assert_same_read(read_chip(str(path), grid, resampling, ReadSettings()), want, np.float32)


def test_tiny_grids_are_warped_and_equal(coarse: dict[str, Path]) -> None:
    """Below 16 px a side the read goes through the warp, whose kernel changes there."""
    path = coarse["uint16-0.0-20"]
    for width, height in ((1, 1), (3, 40), (40, 4), (15, 15), (16, 16)):
        grid = grid_at(0, 0, width, height)
        for resampling in (Resampling.bilinear, Resampling.nearest):
            want = reference_read(path, grid, resampling)
            assert_same_read(read_asset(path, grid, resampling), want, np.float64)


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("name", "resampling", "factor"),
    [
        ("B02", Resampling.bilinear, 1),
        ("B11", Resampling.bilinear, 2),
        ("B12", Resampling.bilinear, 2),
        ("SCL", Resampling.nearest, 2),
        ("B01", Resampling.nearest, 6),
        ("B01", Resampling.bilinear, 6),  # warped, as bilinear upsampling always is
    ],
)
def test_real_sentinel2_cogs_read_as_the_warp(
    real_data: Path, name: str, resampling: Resampling, factor: int
) -> None:
    """The real 29RKH L2A COGs (B02 at 100 m, B11, B12 and SCL at 200 m, B01 at 600 m, nodata 0)
    on grids of B02's lattice: the whole tile, a window, a window over
    the tile's corner, and a 200 m grid (B02 from its overview)."""
    folder = real_data / "sentinel2-l2a-29RKH-20200219"
    path = folder / f"{name}.tif"
    with rasterio.open(folder / "B02.tif") as b02:
        crs, t = b02.crs.to_string(), b02.transform
    grids = [
        Grid(crs, t, 1098, 1098),
        Grid(crs, t @ Affine.translation(301, 455), 300, 250),
        Grid(crs, t @ Affine.translation(-40, 1000), 120, 130),
        Grid(crs, Affine(200, 0, t.c + 2000, 0, -200, t.f - 4000), 200, 180),
    ]
    with rasterio.open(path) as src:
        assert _on_lattice(src, grids[1], 1) == (factor, 301, 455)
    for grid in grids:
        want = reference_read(path, grid, resampling)
        assert np.isfinite(want).any()
        assert_same_read(read_asset(path, grid, resampling), want, np.float64)
        assert_same_read(read_chip(str(path), grid, resampling, ReadSettings()), want, np.float32)


def test_other_crs_is_warped(rasters: dict[str, Path]) -> None:
    grid = GRIDS["inside"]
    with rasterio.open(rasters["other-crs"]) as src:
        assert _on_lattice(src, grid, 1) is None


def test_coarse_grid_reads_the_overview_as_before(tmp_path: Path) -> None:
    """A grid at the overview's pixel size reads the overview (by window when on its lattice)."""
    path = write_raster(tmp_path / "big.tif", noisy("uint16", (512, 512), 11), 10, 0.0)
    with rasterio.open(path) as src:
        assert src.overviews(1)
    for grid in (grid_at(32, 64, 100, 90, res=20.0), grid_at(30, 60, 60, 50, res=40.0)):
        want = reference_read(path, grid, Resampling.bilinear)
        assert np.isfinite(want).any()
        assert_same_read(read_asset(path, grid, Resampling.bilinear), want, np.float64)


@given(
    col=st.integers(-40, 100),
    row=st.integers(-40, 110),
    width=st.integers(1, 60),
    height=st.integers(1, 60),
    raster=st.sampled_from(["uint16-0.0-COG", "uint8-None-COG", "int16--32768.0-GTiff"]),
)
@settings(max_examples=40, derandomize=True, database=None, deadline=None)
def test_any_window_on_the_lattice_equals_the_warp(
    rasters: dict[str, Path], col: int, row: int, width: int, height: int, raster: str
) -> None:
    grid = grid_at(col, row, width, height)
    want = reference_read(rasters[raster], grid, Resampling.bilinear)
    chip = read_chip(str(rasters[raster]), grid, Resampling.bilinear, ReadSettings())
    assert_same_read(chip, want, np.float32)


_NODATA = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-70000, 70000).map(float),
    st.sampled_from([0.0, -0.0, 0.1, 255.0, 256.0, -128.0, 65535.0, 3.4028234663852886e38]),
)


@given(
    data=st.sampled_from(
        ["int8", "uint8", "int16", "uint16", "int32", "uint32", "float32", "float64", "int64"]
    ).flatmap(lambda dtype: hnp.arrays(np.dtype(dtype), 20)),
    nodata=_NODATA,
    pick=st.integers(-1, 19),
)
@HYP
def test_nodata_test_equals_the_float64_test(data: NDArray[Any], nodata: float, pick: int) -> None:
    if pick >= 0:  # often the nodata value is one of the values
        nodata = float(data[pick])
    with np.errstate(invalid="ignore"):
        want = data.astype(np.float64) != nodata
    assert np.array_equal(_not_nodata(data, nodata), want)
