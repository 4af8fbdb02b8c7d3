"""Input hardening (issue 6): each defect reproduced, now refused with the right error and a
message that names the input, the limit and what to do, and never echoes unbounded input."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import yaml
from shapely.geometry import MultiPolygon, box

from pipeline import sites as sites_module
from pipeline.config import (
    MAX_CONFIG_BYTES,
    LimitsConfig,
    RunConfig,
    config_from_mapping,
    load_config,
    parse_yaml,
)
from pipeline.errors import ConfigError, LimitError, SiteError, SitewatchError
from pipeline.grid import Grid, reproject_geometry, utm_crs_for
from pipeline.sites import (
    DEFAULT_MAX_GRID_PIXELS,
    DEFAULT_MAX_SITE_AREA_KM2,
    Site,
    check_site_limits,
    load_sites,
)

ROOT = Path(__file__).resolve().parents[1]
MINIMAL: dict[str, Any] = {
    "name": "t",
    "sites": "sites.geojson",
    "years": {"start": 2020, "end": 2021},
}


def write_yaml(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def write_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def site_file(tmp_path: Path, lon0: float, lat0: float, lon1: float, lat1: float) -> Path:
    ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
    feature = {
        "type": "Feature",
        "properties": {"id": "big", "name": "Big", "kind": "kwanliso", "source": "test"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    path = tmp_path / "sites.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


# ------------------------------------------------------------------------------------------
# YAML: duplicate keys, aliases, size, nesting, unsafe tags


def test_duplicate_key_names_file_line_and_key(tmp_path: Path) -> None:
    path = write_text(
        tmp_path,
        "name: t\nworkers: 2\nsites: s.geojson\nworkers: 1\nyears: {start: 2020, end: 2021}\n",
    )
    with pytest.raises(
        ConfigError, match=r"run\.yaml: line 4: duplicate key 'workers' \(first at line 2\)"
    ):
        load_config(path)
    nested = "name: t\ngrid:\n  resolution_m: 10\n  resolution_m: 20\n"
    with pytest.raises(ConfigError, match=r"line 4: duplicate key 'resolution_m'"):
        load_config(write_text(tmp_path, nested))
    with pytest.raises(ConfigError, match=r"line 1: duplicate key 'a'"):
        parse_yaml("{a: 1, a: 2}")


def test_merge_keys_may_override_and_small_aliases_are_allowed() -> None:
    data = parse_yaml("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  x: 3\nagain: *b\n")
    assert data == {"base": {"x": 1, "y": 2}, "other": {"x": 3, "y": 2}, "again": {"x": 1, "y": 2}}


def billion_laughs(levels: int = 9) -> str:
    lines = ['lol0: &lol0 ["lol"]']
    for i in range(1, levels + 1):
        refs = ", ".join([f"*lol{i - 1}"] * 10)
        lines.append(f"lol{i}: &lol{i} [{refs}]")
    return "\n".join(lines) + "\n"


def test_alias_bomb_fails_fast_in_bounded_memory_with_a_short_message(tmp_path: Path) -> None:
    # 9 levels of 10 aliases: 10^9 strings when expanded, from ~500 bytes. Before the fix the
    # error message alone was 312 MB and loading used 2 GB.
    path = write_text(tmp_path, "name: t\n" + billion_laughs(9))
    # Bounded memory is what shows the expansion stopped early (timing is not asserted: it
    # depends on the machine's load).
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match=r"run\.yaml: line \d+: YAML aliases expand to more"):
            load_config(path)
    finally:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 20_000_000
    with pytest.raises(LimitError) as err:
        load_config(path)
    assert len(str(err.value)) < 400
    assert "allowed up to 10,000 expanded nodes" in str(err.value)


def test_recursive_alias_refused() -> None:
    with pytest.raises(ConfigError, match=r"line 1: alias \*a refers to itself"):
        parse_yaml("a: &a [1, *a]\n")


def test_oversize_config_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("name: t\n" + "# padding\n" * (MAX_CONFIG_BYTES // 10 + 10))
    with pytest.raises(LimitError, match=r"huge\.yaml: config file larger than 1,000,000 bytes"):
        load_config(path)


def test_deep_nesting_and_unsafe_tags_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nested deeper than 50 levels"):
        load_config(write_text(tmp_path, "name: " + "[" * 5000 + "]" * 5000))
    with pytest.raises(ConfigError, match=r"not valid YAML: could not determine a constructor"):
        load_config(write_text(tmp_path, "name: !!python/object/apply:os.system ['true']\n"))


# ------------------------------------------------------------------------------------------
# Strict types and bounds


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"workers": True}, r"workers: Input should be a valid integer \(got True\)"),
        ({"workers": 2.0}, r"workers: Input should be a valid integer \(got 2\.0\)"),
        ({"workers": "2"}, r"workers: Input should be a valid integer \(got '2'\)"),
        ({"write_rasters": "no"}, r"write_rasters: Input should be a valid boolean \(got 'no'\)"),
        ({"offline": 0}, r"offline: Input should be a valid boolean \(got 0\)"),
        ({"trends": {"min_years": 10**9}}, r"trends\.min_years: .*less than or equal to 100"),
        ({"trends": {"min_years": 2}}, r"trends\.min_years: .*greater than or equal to 3"),
        ({"grid": {"resolution_m": True}}, r"grid\.resolution_m: Input should be a valid number"),
        ({"grid": {"buffer_m": "200"}}, r"grid\.buffer_m: Input should be a valid number"),
        ({"season": {"min_clear_observations": 10**6}}, r"less than or equal to 100"),
        ({"classify": {"coal": {"min_observations": 10**6}}}, r"less than or equal to 100"),
        ({"masking": {"scl_masked": [True]}}, r"scl_masked\.0: Input should be a valid integer"),
        ({"years": {"start": 2020.0, "end": 2021}}, r"years\.start: Input should be a valid int"),
        ({"limits": {"max_grid_pixels": 0}}, r"limits\.max_grid_pixels: .*greater than or equal"),
    ],
)
def test_loose_yaml_types_and_unbounded_numbers_refused(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write_yaml(tmp_path, {**MINIMAL, **change}))


def test_floats_still_take_ints_and_yaml_booleans_work(tmp_path: Path) -> None:
    cfg = load_config(
        write_text(
            tmp_path,
            "name: t\nsites: s.geojson\nyears: {start: 2020, end: 2021}\n"
            "grid: {resolution_m: 20, buffer_m: 0}\nwrite_rasters: false\nworkers: 3\n",
        )
    )
    assert cfg.grid.resolution_m == 20.0
    assert cfg.write_rasters is False
    assert cfg.workers == 3
    for shipped in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(shipped)


def test_limits_do_not_change_the_config_hash() -> None:
    a = config_from_mapping(MINIMAL)
    b = config_from_mapping({**MINIMAL, "limits": {"max_grid_pixels": 9_000_000}})
    assert a.hash() == b.hash()
    assert a.limits.max_grid_pixels == DEFAULT_MAX_GRID_PIXELS
    assert a.limits.max_site_area_km2 == DEFAULT_MAX_SITE_AREA_KM2


# ------------------------------------------------------------------------------------------
# Messages never echo unbounded input


def test_long_bad_value_truncated_in_message(tmp_path: Path) -> None:
    path = write_yaml(tmp_path, {**MINIMAL, "name": "x" * 100_000})
    with pytest.raises(ConfigError, match=r"name: String should match pattern") as err:
        load_config(path)
    text = str(err.value)
    assert len(text) < 600
    assert "... (100,000 characters)" in text


def test_big_nested_bad_value_abbreviated() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping({**MINIMAL, "grid": [list(range(1000))] * 1000})
    assert len(str(err.value)) < 600
    assert "(1,000 items)" in str(err.value)


def test_many_problems_listed_up_to_twenty() -> None:
    with pytest.raises(ConfigError, match=r"1000 problem\(s\)") as err:
        config_from_mapping({**MINIMAL, **{f"k{i}": i for i in range(1000)}})
    assert "... and 980 more" in str(err.value)
    assert str(err.value).count("allowed here:") == 1
    assert "k19: unknown key; allowed keys as listed above" in str(err.value)
    assert len(str(err.value).splitlines()) == 22


def test_long_key_truncated() -> None:
    with pytest.raises(ConfigError) as err:
        config_from_mapping({**MINIMAL, "k" * 50_000: 1})
    assert len(str(err.value)) < 1000


# ------------------------------------------------------------------------------------------
# Paths: names that become paths, folders that are files


@pytest.mark.parametrize("name", ["../up", "a/b", ".hidden", "x\n", "", "a" * 64, "a b"])
def test_run_name_must_be_safe_as_a_folder_name(name: str) -> None:
    with pytest.raises(ConfigError, match="name: String should match pattern"):
        config_from_mapping({**MINIMAL, "name": name})


@pytest.mark.parametrize("key", ["output_dir", "cache_dir"])
def test_folder_key_that_is_a_file_refused_at_load(tmp_path: Path, key: str) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    with pytest.raises(
        ConfigError, match=rf"(?s)run\.yaml.*{key}: Value error, the path is a file, not a folder"
    ):
        load_config(write_yaml(tmp_path, {**MINIMAL, key: str(a_file)}))
    with pytest.raises(
        ConfigError, match=rf"{key}: .*its parent '.*a-file' is a file, not a folder"
    ):
        load_config(write_yaml(tmp_path, {**MINIMAL, key: str(a_file / "sub" / "dir")}))
    with pytest.raises(ConfigError, match=rf"(?s)command-line options.*{key}: .*not a folder"):
        config_from_mapping(MINIMAL).updated(**{key: a_file})


def test_unusable_paths_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"output_dir: .* is not a usable path"):
        config_from_mapping({**MINIMAL, "output_dir": "a\x00b"}, base_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"sites: .* is not a usable path"):
        config_from_mapping({**MINIMAL, "sites": "~no-such-user-xyz/s.geojson"})


# ------------------------------------------------------------------------------------------
# Sites: size limits, UTM range


def test_huge_site_refused_before_any_search(tmp_path: Path) -> None:
    # ~49,000 km2 at 39 N (2.5 x 2.04 degrees): before the fix, a 525-megapixel grid and a
    # MemoryError hours into the run.
    (site,) = load_sites(site_file(tmp_path, 125.0, 38.0, 127.5, 40.04))
    assert 48_000 < site.area_km2 < 50_000
    grids = {site.id: site.grid(10, 200)}
    with pytest.raises(
        LimitError,
        match=r"site big: area 4[89],\d{3} km2 exceeds limits\.max_site_area_km2 = 1,500 km2.*"
        r"split it",
    ):
        check_site_limits([site], grids, LimitsConfig())
    check_site_limits([site], grids, LimitsConfig(max_site_area_km2=60_000, max_grid_pixels=10**9))


def test_grid_pixel_limit_names_site_pixels_and_the_resolution_that_fits() -> None:
    (camp16,) = load_sites(ROOT / "aoi" / "dprk_sites.geojson", only=["kwanliso-16"])
    assert 1_000 < camp16.area_km2 < DEFAULT_MAX_SITE_AREA_KM2  # the 1,025 km2 whole-camp box
    at_10 = {camp16.id: camp16.grid(10, 200)}
    # Read by chunks (the default), the whole box fits at 10 m.
    check_site_limits([camp16], at_10, LimitsConfig())
    with pytest.raises(
        LimitError,
        match=r"site kwanliso-16: its grid is 3,246 x 3,282 = 10,653,372 pixels at 10 m .*"
        r"over limits\.max_grid_pixels = 4,000,000 .*grid\.resolution_m: 20 or more fits",
    ):
        check_site_limits([camp16], at_10, LimitsConfig(max_grid_pixels=4_000_000))
    # Read whole, it does not, and the message says how to read it by chunks.
    with pytest.raises(
        LimitError,
        match=r"over a whole-grid read = 4,000,000 .*~47\.9 GB.*grid\.chunk_px: 1024",
    ):
        check_site_limits([camp16], at_10, LimitsConfig(), chunked=False)
    check_site_limits([camp16], {camp16.id: camp16.grid(20, 200)}, LimitsConfig(), chunked=False)
    focus = load_sites(ROOT / "aoi" / "dprk_sites.geojson")
    small = [s for s in focus if s.area_km2 < 10]
    check_site_limits(small, {s.id: s.grid(10, 200) for s in small}, LimitsConfig())


def test_huge_buffer_caught_by_pixel_limit(tmp_path: Path) -> None:
    (site,) = load_sites(site_file(tmp_path, 125.0, 39.0, 125.01, 39.01))
    with pytest.raises(LimitError, match="site big: its grid is"):
        check_site_limits([site], {site.id: site.grid(10, 50_000)}, LimitsConfig())


def test_polar_site_refused_at_load_naming_site_and_range(tmp_path: Path) -> None:
    with pytest.raises(
        SiteError,
        match=r"features\[0\] \(site big\): latitudes 85\.\.85\.1 reach outside the UTM range; "
        r"allowed latitudes -80\.\.84",
    ):
        load_sites(site_file(tmp_path, 10.0, 85.0, 10.1, 85.1))
    with pytest.raises(SiteError, match=r"allowed latitudes -80\.\.84"):
        load_sites(site_file(tmp_path, 10.0, -85.0, 10.1, -80.5))


def test_polar_site_built_in_code_gives_site_error_not_value_error() -> None:
    site = Site("north", "North", "other", box(10.0, 85.0, 10.1, 85.1), "test")
    with pytest.raises(SiteError, match=r"site north: centroid .*latitude -80\.\.84"):
        _ = site.utm_crs
    with pytest.raises(SiteError, match=r"site north: centroid"):
        site.grid(10, 200)
    with pytest.raises(SiteError, match=r"outside the UTM range"):
        utm_crs_for(0.0, 89.0)
    with pytest.raises(ValueError, match=r"outside the UTM range"):  # still a ValueError
        utm_crs_for(float("nan"), 0.0)


def test_grid_and_reprojection_refuse_nonsense() -> None:
    with pytest.raises(SiteError, match=r"grid bounds .* must be four finite numbers"):
        Grid.from_bounds("EPSG:32651", (0.0, 0.0, float("inf"), 1.0), 10.0)
    with pytest.raises(SiteError, match="left <= right"):
        Grid.from_bounds("EPSG:32651", (10.0, 0.0, 0.0, 1.0), 10.0)
    with pytest.raises(ConfigError, match=r"grid resolution 0\.0 must be a positive"):
        Grid.from_bounds("EPSG:32651", (0.0, 0.0, 1.0, 1.0), 0.0)
    with pytest.raises(ConfigError, match="grid snap nan"):
        Grid.from_bounds("EPSG:32651", (0.0, 0.0, 1.0, 1.0), 10.0, snap=float("nan"))
    with pytest.raises(SiteError, match="cannot reproject from 'EPSG:4326' to 'EPSG:99999999'"):
        reproject_geometry(box(0, 0, 1, 1), "EPSG:4326", "EPSG:99999999")


def test_site_across_the_antimeridian_refused(tmp_path: Path) -> None:
    # -179..179 is a valid WGS84 polygon 358 degrees wide: refused by its area.
    (site,) = load_sites(site_file(tmp_path, -179.0, 39.0, 179.0, 39.1))
    with pytest.raises(LimitError, match="site big: area"):
        check_site_limits([site], {}, LimitsConfig())
    # Found by the fuzzer: a geometry that projects to infinity in its centroid's UTM zone
    # raised shapely's GEOSException from the buffer.
    parts = [box(0, 0, 175, 1), box(-350, 0, -175, 1)]
    wide = Site("wide", "Wide", "other", MultiPolygon(parts), "test")
    with pytest.raises(SiteError, match=r"site wide: longitudes -350\.\.175 do not project"):
        wide.grid(1, 0)


def test_fuzz_findings_in_config_mapping() -> None:
    # Found by tests/test_fuzz.py: a TypeError (unhashable source kind), a RuntimeError (~user
    # without a home) and a ValueError (NUL byte) escaped config_from_mapping.
    with pytest.raises(ConfigError, match=r"source"):
        config_from_mapping({**MINIMAL, "source": {"kind": ["synthetic"]}})
    with pytest.raises(ConfigError, match=r"config>: sites: .* is not a usable path"):
        config_from_mapping({**MINIMAL, "sites": "~nobody-here-xyz/s.geojson"})
    with pytest.raises(ConfigError, match=r"top level must be a mapping"):
        config_from_mapping([1, 2])  # type: ignore[arg-type]


def test_site_file_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = site_file(tmp_path, 125.0, 39.0, 125.01, 39.01)
    monkeypatch.setattr(sites_module, "MAX_SITE_FILE_BYTES", 100)
    with pytest.raises(LimitError, match=r"sites\.geojson: site file larger than"):
        load_sites(path)
    monkeypatch.undo()
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SiteError, match="not readable as GeoJSON"):
        load_sites(path)
    path.write_text('{"type": "FeatureCollection", "features": [' + "1" * 10_000 + "]}")
    with pytest.raises(SiteError, match="not readable as GeoJSON"):
        load_sites(path)


def test_long_site_values_truncated(tmp_path: Path) -> None:
    path = site_file(tmp_path, 125.0, 39.0, 125.01, 39.01)
    doc = json.loads(path.read_text())
    doc["features"][0]["properties"]["kind"] = "k" * 100_000
    path.write_text(json.dumps(doc))
    with pytest.raises(SiteError, match=r"kind: 'k+\.\.\. \(100,000 characters\)") as err:
        load_sites(path)
    assert len(str(err.value)) < 600


def test_every_error_here_is_a_sitewatch_error() -> None:
    for cls in (ConfigError, LimitError, SiteError):
        assert issubclass(cls, SitewatchError)
    assert "limits" in RunConfig.model_fields
