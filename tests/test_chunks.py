"""A site-year read and composited by chunks equals the whole-grid site-year, array for array
and record for record (``pipeline.chunks``), on COG scenes written here: clouds across chunk
borders, a wrong BOA offset caught by the per-scene check and one caught by the season's, a
scene with data in part of the grid, one with none, one with a missing file; also when the
chunks run as the executor's steps through a work folder (``pipeline.tasks``), and when a
scene's file goes missing between the passes."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from scipy import ndimage
from shapely.geometry import box

from pipeline.chunks import Chunk, halo_px, needs_chunks, plan_chunks, window_grid
from pipeline.classify import RELIGHT_REACH_PX
from pipeline.grid import Grid, reproject_geometry
from pipeline.haze import HazeRule
from pipeline.look_registration import LookRegistrationParams
from pipeline.masking import MaskReason, MaskRules
from pipeline.radiometry import (
    BoaEvidence,
    Radiometry,
    offset_outliers,
    settle_boa_offset,
    verify_boa_offset,
)
from pipeline.recipe import RecipeParams
from pipeline.results import SiteYear, site_year_arrays, site_year_record
from pipeline.sites import Site
from pipeline.sources.base import Asset, Scene
from pipeline.sources.read import ReadSettings, read_pixels, read_scene
from pipeline.tasks import SiteYearTask, Step, chunk_count, load_stored, observe, run_step

CRS = "EPSG:32651"
LEFT, TOP = 500_000.0, 4_400_000.0  # the scenes' corner, on the 60 m lattice
# The site grid: 4 px (40 m) inside the scenes' corner, 36 x 40 px at 10 m.
GRID = Grid(CRS, Affine(10, 0, LEFT + 40, 0, -10, TOP - 40), 40, 36)
SCENE_PX = (48, 52)  # (rows, cols) at 10 m; the 20 m assets are half that
RULES = MaskRules(cloud_dilation_m=30.0)  # 3 px: the halo matters on grids this small
YEAR = 2023

# Reflectance per surface: blue green red nir swir16 swir22.
BACKGROUND = (0.06, 0.08, 0.10, 0.20, 0.25, 0.18)
BUILT = (0.12, 0.13, 0.15, 0.20, 0.28, 0.24)
COAL = (0.04, 0.04, 0.045, 0.05, 0.055, 0.05)
WATER = (0.08, 0.07, 0.05, 0.03, 0.012, 0.011)
FIELD_GREEN = (0.04, 0.07, 0.04, 0.40, 0.22, 0.12)
FIELD_BARE = (0.09, 0.11, 0.13, 0.18, 0.27, 0.21)


def surface(day: date, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Reflectance (band, y, x) and SCL over the scene extent on ``day``."""
    rows, cols = SCENE_PX
    refl = np.empty((6, rows, cols), np.float64)
    refl[:] = np.array(BACKGROUND)[:, None, None]
    scl = np.full((rows, cols), 5, np.uint8)
    y, x = np.mgrid[:rows, :cols]
    built = (y >= 8) & (y < 24) & (x >= 10) & (x < 30)
    refl[:, built] = np.array(BUILT)[:, None]
    coal = (y >= 14) & (y < 22) & (x >= 30) & (x < 40)
    refl[:, coal] = np.array(COAL)[:, None]
    water = (y >= 34) & (x >= 36)
    refl[:, water] = np.array(WATER)[:, None]
    scl[water] = 6
    field = (y >= 30) & (y < 46) & (x >= 6) & (x < 30)
    crop = FIELD_GREEN if day < date(YEAR, 9, 5) else FIELD_BARE
    refl[:, field] = np.array(crop)[:, None]
    refl += rng.normal(0, 0.004, refl.shape)
    return refl, scl


def write_cog(path: Path, data: np.ndarray, res: float) -> str:
    profile = {
        "driver": "COG", "width": data.shape[1], "height": data.shape[0], "count": 1,
        "dtype": data.dtype.name, "crs": CRS, "transform": Affine(res, 0, LEFT, 0, -res, TOP),
        "nodata": 0,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
    return str(path)


def coarsen(a: np.ndarray) -> np.ndarray:
    r, c = a.shape
    return np.asarray(a.reshape(r // 2, 2, c // 2, 2).mean(axis=(1, 3)))


def make_scene(
    folder: Path,
    name: str,
    day: date,
    *,
    clouds: tuple[tuple[int, int, int, int], ...] = (),
    shadows: tuple[tuple[int, int, int, int], ...] = (),
    coal_label: int | None = None,
    dn_offset: int = 1000,
    baseline: str = "05.09",
    data_cols: int | None = None,
    break_asset: str | None = None,
) -> Scene:
    """A Sentinel-2 L2A scene: 10 m bands at 10 m, SWIR and SCL at 20 m. ``clouds``: (row0,
    row1, col0, col1) blocks of SCL 9 (20 m pixels); ``shadows``: blocks of SCL 3, a third as
    bright (their clouds' shadows, under a sun 60 degrees high in the south); ``coal_label``: the
    SCL class of the coal; ``dn_offset``: what the data hold
    (1000: the BOA offset, as baselines >= 04.00 say); ``data_cols``: only the first ones
    hold data (20 m pixels); ``break_asset``: that asset's file does not exist."""
    rng = np.random.default_rng(zlib.crc32(f"{name} {day}".encode()))
    refl, scl10 = surface(day, rng)
    scl = scl10[::2, ::2].copy()
    for r0, r1, c0, c1 in shadows:
        scl[r0:r1, c0:c1] = 3
        refl[:, 2 * r0 : 2 * r1, 2 * c0 : 2 * c1] *= 0.35
    if coal_label is not None:
        scl[7:11, 15:20] = coal_label
    for r0, r1, c0, c1 in clouds:
        scl[r0:r1, c0:c1] = 9
    cloud10 = np.kron(scl == 9, np.ones((2, 2), bool))
    refl[:, cloud10] = 0.45
    assets: dict[str, Asset] = {}
    folder.mkdir(parents=True, exist_ok=True)
    for b, band in enumerate(("blue", "green", "red", "nir", "swir16", "swir22")):
        values = refl[b] if b < 4 else coarsen(refl[b])
        dn = np.clip(np.round(values * 1e4 + dn_offset), 1, 65535).astype(np.uint16)
        if data_cols is not None:
            dn[:, (data_cols * 2 if b < 4 else data_cols) :] = 0
        res = 10.0 if b < 4 else 20.0
        href = write_cog(folder / f"{name}_{band}.tif", dn, res)
        if band == break_asset:
            href = str(folder / f"{name}_{band}_gone.tif")
        assets[band] = Asset(href)
    if data_cols is not None:
        scl[:, data_cols:] = 0
    assets["scl"] = Asset(write_cog(folder / f"{name}_scl.tif", scl, 20.0))
    props = {
        "s2:processing_baseline": baseline,
        "earthsearch:boa_offset_applied": False,
        "view:sun_elevation": 60.0,
        "view:sun_azimuth": 180.0,
    }
    when = datetime(day.year, day.month, day.day, 2, 30, tzinfo=UTC)
    return Scene(name, "sentinel-2-l2a", when, assets, props, crs=CRS)


def scenes(folder: Path) -> tuple[Scene, ...]:
    d = date
    return (
        make_scene(folder, "S01", d(YEAR, 6, 20), clouds=((3, 9, 8, 20),)),
        make_scene(folder, "S02", d(YEAR, 7, 25)),
        make_scene(folder, "S03", d(YEAR, 8, 20), clouds=((10, 14, 0, 26),)),
        make_scene(folder, "S04", d(YEAR, 9, 10), clouds=((6, 18, 12, 16),)),
        # The metadata say "offset", the data hold none: many SWIR2 DN < 800 (per-scene check).
        make_scene(folder, "S05", d(YEAR, 9, 25), dn_offset=0, clouds=((15, 24, 18, 22),)),
        # The metadata say "no offset", the data hold one: the season's check (no dark pixel
        # under clear sky, so the per-scene check is inconclusive).
        make_scene(folder, "S06", d(YEAR, 10, 10), baseline="03.01", clouds=((16, 26, 17, 26),)),
        make_scene(folder, "S07", d(YEAR, 10, 25), data_cols=13),
        make_scene(folder, "S08", d(YEAR, 10, 30), clouds=((0, 26, 0, 11),)),
        make_scene(folder, "S09", d(YEAR, 11, 5), break_asset="red"),
        make_scene(folder, "S10", d(YEAR, 11, 10), data_cols=1),  # no data over the grid
        make_scene(folder, "S11", d(YEAR, 11, 25)),  # only in the widened window
        # A cloud 416 m up casts its shadow 240 m north (12 px at 20 m), across chunk borders;
        # the coal is called shadow too, and stays clear.
        make_scene(
            folder,
            "S12",
            d(YEAR, 10, 5),
            clouds=((14, 20, 6, 14),),
            shadows=((2, 8, 6, 14),),
            coal_label=3,
        ),
    )


def make_task(folder: Path, grid: Grid = GRID, params: RecipeParams | None = None) -> SiteYearTask:
    left, bottom, right, top = grid.bounds
    inner = box(left + 25, bottom + 25, right - 35, top - 45)
    site = Site("s", "Site", "mine", reproject_geometry(inner, CRS, "EPSG:4326"), "test")
    return SiteYearTask(
        site, YEAR, grid, scenes(folder), params or RecipeParams(), RULES,
        ReadSettings(retries=1), 20.0, None,
    )  # fmt: skip


def assert_same(a: SiteYear, b: SiteYear) -> None:
    assert site_year_record(a) == site_year_record(b)
    arrays_a, arrays_b = site_year_arrays(a), site_year_arrays(b)
    assert arrays_a.keys() == arrays_b.keys()
    for name, value in arrays_a.items():
        assert value.dtype == arrays_b[name].dtype, name
        assert np.array_equal(value, arrays_b[name], equal_nan=True), name


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chunk-scenes")


@pytest.fixture(scope="module")
def whole(folder: Path) -> SiteYear:
    return observe(make_task(folder))


def test_the_scenario_exercises_every_decision(whole: SiteYear) -> None:
    """The whole-grid site-year the chunked ones must equal has each case in it."""
    by_id = {r.scene_id: r for r in whole.scenes}
    assert by_id["S05"].offset_check.startswith("contradicted")  # the per-scene check
    assert by_id["S05"].offset_dn == 0.0
    assert "overridden by the season's series" in by_id["S06"].radiometry  # the season's
    assert by_id["S06"].offset_dn == -1000.0
    assert by_id["S02"].offset_check.startswith("confirmed")  # dark water pixels: p5 in range
    assert by_id["S09"].skipped is not None
    assert "asset red" in by_id["S09"].skipped
    assert by_id["S10"].skipped == "no data over the site grid"
    assert by_id["S12"].mask["cast_shadow"] > 0  # the cloud's shadow, matched
    assert by_id["S12"].role == "season"
    assert 0 < by_id["S07"].mask["nodata"] < 1
    assert by_id["S08"].mask["cloud_buffer"] > 0
    assert whole.footprint.any()
    assert whole.coal_mask.any()
    assert whole.evidence is not None
    assert whole.evidence.vegetated.any()


@pytest.mark.parametrize("chunk", [(9, 11), (16, 16), (5, 40), (36, 7), (13, 39), (35, 40)])
def test_chunked_site_year_equals_whole_grid(
    folder: Path, whole: SiteYear, chunk: tuple[int, int]
) -> None:
    task = replace(make_task(folder), chunk_px=chunk)
    assert needs_chunks(task.grid, task.chunk_px)
    assert_same(observe(task), whole)


@pytest.mark.parametrize("chunk", [(9, 11), (16, 16), (5, 40), (36, 7)])
def test_footprint_regions_cross_chunk_borders(whole: SiteYear, chunk: tuple[int, int]) -> None:
    """The whole-site stage's connected regions (minimum mapping unit, thin parts, rims) span
    chunks in the cases above: a footprint region lies in more than one chunk."""
    owner = np.zeros(GRID.shape, int)
    for n, c in enumerate(plan_chunks(GRID.shape, chunk, 0)):
        owner[c.rows, c.cols] = n
    labels, count = ndimage.label(whole.footprint)
    assert any(len(np.unique(owner[labels == k])) > 1 for k in range(1, count + 1))


def test_haze_field_across_chunks_equals_the_whole_grid(folder: Path) -> None:
    """Haze estimated on 120 m blocks (a field that varies over the grid, bilinear between
    block centres): each look's estimate is settled from the surveys, so the chunked site-year
    removes the same haze as the whole grid's, and records it the same."""
    # The scene has no vegetation: its bare background stands in for it (ratio 1.39).
    params = RecipeParams(haze=HazeRule(block_m=120.0, vegetation_swir_ratio=1.3, min_pixels=20))
    base = observe(make_task(folder, params=params))
    removed = [r.haze_blue_max for r in base.scenes if r.haze_blue_max]
    assert removed, "the scenario must exercise the haze removal"
    assert any(r.haze_blue_max != r.haze_blue for r in base.scenes if r.haze_blue_max)
    for chunk in ((9, 11), (13, 39)):
        assert_same(observe(replace(make_task(folder, params=params), chunk_px=chunk)), base)


def test_widened_window_and_tiny_chunks(folder: Path) -> None:
    """Needing 6 clear looks widens the window (S11 joins); 1 x 1 and 2 x 3 chunks on a
    small grid still give the whole grid's site-year."""
    grid = window_grid(GRID, slice(10, 18), slice(26, 33))
    task = make_task(folder, grid, RecipeParams(min_clear_observations=6))
    base = observe(task)
    assert base.widened
    assert any(r.scene_id == "S11" and r.role == "season" for r in base.scenes)
    for chunk in ((1, 1), (2, 3), (8, 1)):
        assert_same(observe(replace(task, chunk_px=chunk)), base)


def test_square_chunk_side_below_the_grid_chunks(folder: Path, whole: SiteYear) -> None:
    task = replace(make_task(folder), chunk_px=24)
    assert needs_chunks(GRID, 24)
    assert not needs_chunks(GRID, 40)
    assert_same(observe(task), whole)


def test_a_cloud_shadow_is_masked_where_its_cloud_casts_it_and_the_coal_kept(
    folder: Path,
) -> None:
    """S12: its cloud's shadow (SCL 3) is found as cast by that cloud, in the whole grid and
    in every window read for a chunk, and stays a clear look but for coal; the coal that SCL
    also calls shadow is plain clear. With the match off (``cloud_heights_m`` None) the shadow
    is plain clear too, as SCL 3 was before."""
    scene = scenes(folder)[-1]
    whole = read_scene(scene, GRID, RULES)
    shadow = (slice(0, 12), slice(8, 24))  # site-grid pixels of the shadow block
    coal = (slice(10, 18), slice(26, 36))
    assert (whole.reasons[shadow] == MaskReason.CAST_SHADOW).all()
    assert whole.clear[shadow].all()
    assert whole.shaded.sum() == 12 * 16
    assert (whole.reasons[coal] == MaskReason.CLEAR).all()
    off = read_scene(scene, GRID, replace(RULES, cloud_heights_m=None))
    assert (off.reasons[shadow] == MaskReason.CLEAR).all()
    for rows, cols in ((slice(3, 20), slice(5, 31)), (slice(0, 9), slice(17, 40))):
        part = read_pixels(scene, window_grid(GRID, rows, cols), RULES, ReadSettings(), None, GRID)
        assert np.array_equal(part.reasons(), whole.reasons[rows, cols])


def _window_reads_match(folder: Path, grid: Grid, windows: list[tuple[slice, slice]]) -> None:
    scene = scenes(folder)[3]
    whole = read_scene(scene, grid, RULES)
    for rows, cols in windows:
        part = read_scene(scene, window_grid(grid, rows, cols), RULES)
        assert np.array_equal(part.reflectance, whole.reflectance[:, rows, cols], equal_nan=True)


def test_window_read_equals_whole_read_sliced(folder: Path) -> None:
    """Reading a window of the grid gives the whole-grid read's pixels there: the 10 m bands
    on their lattice and the 20 m bands resampled bilinearly alike (windows 5 px across or
    more, ``chunks.MIN_HALO_PX``)."""
    windows = [
        (slice(3, 20), slice(5, 31)),
        (slice(0, 36), slice(17, 22)),
        (slice(31, 36), slice(0, 40)),
    ]
    _window_reads_match(folder, GRID, windows)


@pytest.mark.parametrize("grid_case", ["30 m grid", "other UTM zone"])
def test_window_read_equals_whole_read_sliced_when_resampled(folder: Path, grid_case: str) -> None:
    """On a 30 m grid (20 m data downsampled) or on a grid in another CRS (a site across a UTM
    zone border), every window must read the whole grid's pixels too."""
    if grid_case == "30 m grid":
        grid = Grid(CRS, Affine(30, 0, LEFT + 60, 0, -30, TOP - 60), 14, 12)
    else:
        x, y = Transformer.from_crs(CRS, "EPSG:32652", always_xy=True).transform(
            LEFT + 60, TOP - 60
        )
        grid = Grid("EPSG:32652", Affine(10, 0, round(x, -1), 0, -10, round(y, -1)), 30, 30)
    _window_reads_match(folder, grid, [(slice(2, 9), slice(3, 12)), (slice(0, 12), slice(5, 10))])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    size=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    halo=st.integers(0, 5),
)
def test_chunks_tile_the_grid(shape: tuple[int, int], size: tuple[int, int], halo: int) -> None:
    plan = plan_chunks(shape, size, halo)
    seen = np.zeros(shape, int)
    for chunk in plan:
        seen[chunk.rows, chunk.cols] += 1
        rows, cols = chunk.inner
        read = np.arange(shape[0] * shape[1]).reshape(shape)[chunk.read_rows, chunk.read_cols]
        whole = np.arange(shape[0] * shape[1]).reshape(shape)[chunk.rows, chunk.cols]
        assert np.array_equal(read[rows, cols], whole)
        assert chunk.read_rows.start == max(chunk.rows.start - halo, 0)
        assert chunk.read_cols.stop == min(chunk.cols.stop + halo, shape[1])
    assert (seen == 1).all()


def test_window_grid_keeps_the_lattice() -> None:
    sub = window_grid(GRID, slice(3, 10), slice(5, 9))
    assert sub.shape == (7, 4)
    assert sub.transform == Affine(10, 0, GRID.transform.c + 50, 0, -10, GRID.transform.f - 30)
    assert Chunk(slice(3, 10), slice(5, 9), slice(0, 13), slice(2, 12)).inner == (
        slice(3, 10),
        slice(3, 7),
    )
    # 3 px dilation + the reach of the light measured under cloud shadows (greenness's 1 without)
    assert halo_px(RULES, GRID) == 3 + RELIGHT_REACH_PX
    assert halo_px(replace(RULES, cloud_heights_m=None), GRID) == 4
    assert halo_px(MaskRules(cloud_dilation_m=0.0, cloud_heights_m=None), GRID) == 4  # MIN_HALO_PX
    assert halo_px(MaskRules(), GRID) == 15 + RELIGHT_REACH_PX  # the 150 m buffer
    with pytest.raises(ValueError, match="chunk size"):
        plan_chunks((4, 4), 0, 1)


def test_boa_evidence_of_parts_is_that_of_the_whole() -> None:
    rng = np.random.default_rng(3)
    swir = rng.uniform(900, 2500, (30, 20)).astype(np.float32)
    swir[rng.random((30, 20)) < 0.1] = np.nan
    scl = rng.choice(np.array([2, 4, 6], np.uint16), (30, 20))
    clear = rng.random((30, 20)) < 0.8
    decided = Radiometry(1e-4, -1000.0, "meta")
    whole = verify_boa_offset(swir, scl, decided, clear)
    parts = [BoaEvidence.of(swir[r], scl[r], clear[r]) for r in (slice(0, 7), slice(7, 30))]
    assert settle_boa_offset(decided, BoaEvidence.combined(parts)) == whole
    assert whole.check.startswith("confirmed")


def test_offset_outliers_unchanged_for_the_whole() -> None:
    rng = np.random.default_rng(5)
    looks = [np.full((2, 20, 20), 0.2, np.float32)
             + rng.normal(0, 0.002, (2, 20, 20)).astype(np.float32) for _ in range(4)]  # fmt: skip
    looks[2] = looks[2] + np.float32(0.1)
    clear = [np.ones((20, 20), bool)] * 4
    assert [(o.index, o.shift) for o in offset_outliers(looks, clear)] == [(2, -0.1)]


def run_steps(
    task: SiteYearTask, work: Path, after_settle: Callable[[], None] = lambda: None
) -> SiteYear:
    """The site-year of ``task`` computed as the executor's steps (``tasks.run_step``), one
    after another in this process, through step files in ``work``."""
    work.mkdir(exist_ok=True)
    key = task.key()
    for c in range(chunk_count(task)):
        assert run_step(work, key, task, Step("survey", c)) is None
    assert run_step(work, key, task, Step("settle")) is None
    after_settle()
    for c in range(chunk_count(task)):
        assert run_step(work, key, task, Step("part", c)) is None
    record = run_step(work, key, task, Step("finish"))
    assert record is not None
    assert not record.reused
    assert not list(work.glob("*.pkl"))  # the step files are gone once the site-year is stored
    stored = load_stored(work, key, task)
    assert stored is not None
    return stored


@pytest.mark.parametrize("chunk", [(9, 11), (36, 7)])
def test_steps_through_a_work_folder_equal_the_whole_grid(
    folder: Path, whole: SiteYear, chunk: tuple[int, int], tmp_path: Path
) -> None:
    task = replace(make_task(folder), chunk_px=chunk)
    assert_same(run_steps(task, tmp_path / "work"), whole)


def test_a_scene_failing_between_the_passes_is_skipped_as_if_it_never_read(
    tmp_path: Path,
) -> None:
    """S04 reads in pass 1 and its NIR file is gone by pass 2: the finish settles again without
    it, and the site-year equals the whole-grid one of scenes where that file never existed."""
    task = replace(make_task(tmp_path / "scenes"), chunk_px=(16, 16))
    nir = Path(next(s for s in task.scenes if s.id == "S04").assets["nir"].href)
    stepped = run_steps(task, tmp_path / "work", after_settle=nir.unlink)
    reference = observe(replace(task, chunk_px=None))
    assert "asset nir" in (next(r for r in reference.scenes if r.scene_id == "S04").skipped or "")
    assert_same(stepped, reference)


def test_registered_looks_across_chunks_equal_the_whole_grid(folder: Path) -> None:
    """Looks registered onto their season's consensus (``look_registration``, every look
    placed moved, however little): the chunked site-year matches on the band its surveys kept
    and resamples each chunk with the registration's reach in its halo, so it equals the
    whole grid's, records included."""
    params = RecipeParams(registration=LookRegistrationParams(min_overlap_px=64, min_shift_px=0))
    base = observe(make_task(folder, params=params))
    moved = [r.registered_px for r in base.scenes if r.registered_px is not None]
    assert len(moved) >= 3, "the scenario must exercise the registration"
    assert any(east or north for east, north in moved)
    for chunk in ((9, 11), (13, 39)):
        assert_same(observe(replace(make_task(folder, params=params), chunk_px=chunk)), base)


@pytest.mark.parametrize("registration", [True, False], ids=["with-looks", "alone"])
def test_a_year_resampled_onto_its_site_across_chunks_equals_the_whole_grid(
    folder: Path, registration: bool
) -> None:
    """A year made again onto its site's frame (``RecipeParams.year_shift``, 1.6 px, beyond
    the looks' own reach): every look the season uses moves by it, on top of its own shift,
    and a chunk's halo reaches as far, so the chunked site-year equals the whole grid's."""
    looks = LookRegistrationParams(min_overlap_px=64) if registration else None
    unshifted = RecipeParams(registration=looks)
    params = replace(unshifted, year_shift=(1.6, -0.45))
    # Bilinear from the whole pixels around the look's own shift (up to 2 px) plus the year's.
    assert params.reach_px == (4 if registration else 2)
    assert unshifted.reach_px == (3 if registration else 0)
    base = observe(make_task(folder, params=params))
    plain = observe(make_task(folder, params=unshifted))
    used = [r for r in base.scenes if r.registered_px is not None]
    assert used, "every look the season uses is resampled"
    own = {r.scene_id: r.registered_px or (0.0, 0.0) for r in plain.scenes}
    for r in used:  # the year's shift on top of each look's own (pixels east, north)
        assert r.registered_px is not None
        east, north = own[r.scene_id]
        assert r.registered_px == pytest.approx((east + 0.45, north + 1.6), abs=1e-3)
    assert base.composite is not None
    assert plain.composite is not None
    assert not np.array_equal(base.footprint, plain.footprint)
    for chunk in ((9, 11), (13, 39)):
        assert_same(observe(replace(make_task(folder, params=params), chunk_px=chunk)), base)
