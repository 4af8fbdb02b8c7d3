"""A catalogue of bad inputs and environment faults (issue 6), each run through the command line
(exit code, one ``error:`` line naming the file, key or value and what to do, no traceback) and,
where the fault is raised, through the library (the error type).

Every case is one ``pytest.param(setup, code, fragments, error, covered, id=...)``: ``setup``
builds the inputs in a fresh folder and returns the CLI arguments (and optionally a check run
after the command, e.g. "the previous run is intact"); ``covered`` names an existing test of
``test_run``, ``test_transactions``, ``test_limits``, ``test_compare_inputs`` or ``test_fuzz``
that already covers the same fault (at the library level), so that the count of new cases in
``docs/reliability.md`` is honest: ``test_catalogue_size`` counts the cases with no such test.

Real file systems: a read-only and a full disk are small tmpfs mounts (``mount -t tmpfs``, root
only); without the permission those cases skip, naming why.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_compare_inputs import BANDS, X0, Y0, flat_image
from test_run import TABLES, small_config

from pipeline import cli
from pipeline import run as run_module
from pipeline.errors import (
    ConfigError,
    InputRasterError,
    LimitError,
    OutputError,
    RunLockedError,
    SiteError,
    SitewatchError,
    SourceError,
)
from pipeline.export.manifest import sha256_file

ROOT = Path(__file__).resolve().parents[1]


# ---- the environment of one case -----------------------------------------------------------


@dataclass
class Case:
    """What a setup returns: the CLI arguments (``-q`` is added) and an optional check."""

    argv: list[str]
    check: Callable[[], None] | None = None


@dataclass
class Env:
    tmp: Path
    cache: Path
    reference: Path  # a complete run of the small config (no rasters)
    last_err: str = ""  # the CLI's stderr of the case, for checks
    mounts: list[Path] = field(default_factory=list)
    holders: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return self.tmp / "out"

    def config(self, text: str | None = None, **changes: Any) -> Path:
        """The small synthetic config (1 site, 2 years) with ``changes`` (``a__b=1`` sets
        ``a.b``), or ``text`` verbatim."""
        folder = self.tmp / "cfg"
        folder.mkdir(exist_ok=True)
        path = small_config(folder, self.cache)
        if text is not None:
            path.write_text(text)
            return path
        data = yaml.safe_load(path.read_text())
        for key, value in changes.items():
            parts = key.split("__")
            node = data
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            if value is _DELETE:
                node.pop(parts[-1], None)
            else:
                node[parts[-1]] = value
        path.write_text(yaml.safe_dump(data))
        return path

    def run(self, config: Path | None = None, *extra: str, out: Path | None = None) -> list[str]:
        return ["run", str(config or self.config()), "--out", str(out or self.out), *extra]

    def sites(self, doc: Any) -> list[str]:
        """A run whose site file is ``doc`` (JSON-dumped unless bytes or str)."""
        config = self.config(site_ids=_DELETE)
        path = config.parent / "sites.geojson"
        if isinstance(doc, bytes):
            path.write_bytes(doc)
        else:
            path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return self.run(config)

    def mount(self, size: str, name: str = "mnt") -> Path:
        """A fresh tmpfs of ``size`` (unmounted at teardown)."""
        point = self.tmp / name
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs (root needed): {done.stderr.strip()}")
        self.mounts.append(point)
        return point

    def read_only(self, point: Path) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)

    def previous_run(self, out: Path) -> Callable[[], None]:
        """Put a complete run in ``out``; return a check that it is still there, untouched."""
        shutil.copytree(self.reference, out)
        before = snapshot(out)

        def intact() -> None:
            assert snapshot(out) == before, "the previous complete run was changed"
            assert_manifest_consistent(out)

        return intact


_DELETE = object()


def snapshot(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_manifest_consistent(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    listed = {o["path"]: o["sha256"] for o in manifest["outputs"]}
    files = snapshot(out)
    files.pop("manifest.json")
    files.pop("sitewatch.log")  # the run's log: in the folder, not in the manifest
    assert files == listed


def feature(**overrides: Any) -> dict[str, Any]:
    ring = [[125.0, 39.0], [125.01, 39.0], [125.01, 39.01], [125.0, 39.01], [125.0, 39.0]]
    props = {"id": "camp-1", "name": "Camp 1", "kind": "kwanliso", "source": "test"}
    geometry = overrides.pop("geometry", {"type": "Polygon", "coordinates": [ring]})
    props.update(overrides)
    return {"type": "Feature", "properties": props, "geometry": geometry}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def box_ring(lon0: float, lat0: float, lon1: float, lat1: float) -> dict[str, Any]:
    ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
    return {"type": "Polygon", "coordinates": [ring]}


def static_catalog(env: Env, item: dict[str, Any] | str | None) -> Case:
    """A static catalog with one item (a dict, raw text, or no item file at all)."""
    folder = env.tmp / "stac"
    folder.mkdir()
    catalog = {
        "type": "Catalog",
        "id": "c",
        "stac_version": "1.0.0",
        "description": "test",
        "links": [{"rel": "item", "href": "./item.json"}],
    }
    (folder / "catalog.json").write_text(json.dumps(catalog))
    if isinstance(item, str):
        (folder / "item.json").write_text(item)
    elif item is not None:
        (folder / "item.json").write_text(json.dumps(item))
    return Case(
        env.run(env.config(source={"kind": "stac-static", "catalog": str(folder / "catalog.json")}))
    )


def stac_item(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "S2A_TEST",
        "collection": "sentinel-2-l2a",
        "geometry": box_ring(126.2, 39.0, 126.4, 39.2),
        "properties": {"datetime": "2021-09-10T02:00:00Z", "platform": "sentinel-2a"},
        "assets": {"blue": {"href": "./B02.tif"}},
        "links": [],
    }
    item.update(changes)
    return item


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- setups ----------------------------------------------------------------------------------


def not_utf8(env: Env) -> Case:
    path = env.config()
    path.write_bytes(b"name: caf\xe9\n")
    return Case(env.run(path))


def lock_held(env: Env) -> Case:
    holder = subprocess.Popen(["sleep", "60"])
    env.holders.append(holder)  # killed at teardown
    (env.tmp / "out.lock").write_text(f"{holder.pid}\n")
    intact = env.previous_run(env.out)

    def check() -> None:
        intact()
        assert f"PID {holder.pid}" in env.last_err
        assert (env.tmp / "out.lock").read_text() == f"{holder.pid}\n"  # left to its owner

    return Case(env.run(), check)


def read_only_new(env: Env) -> Case:
    point = env.mount("2m")
    env.read_only(point)
    return Case(env.run(out=point / "out"))


def read_only_previous(env: Env) -> Case:
    point = env.mount("2m")
    intact = env.previous_run(point / "out")
    env.read_only(point)
    return Case(env.run(out=point / "out"), intact)


def full_resume_files(env: Env) -> Case:
    # 2 MB: the previous run (50 kB) fits, the new run's resume files (~2.7 MB per site-year)
    # do not.
    point = env.mount("2m")
    intact = env.previous_run(point / "out")
    return Case(env.run(out=point / "out"), intact)


def full_rasters(env: Env) -> Case:
    # 11 MB: the previous run and the resume files (with a year made again resampled onto the
    # other) fit, the rasters written into staging then do not (measured: 9 MB fails on the
    # resume files, 10 MB in the GeoPackage, 12 MB holds the whole run).
    point = env.mount("11000k")
    intact = env.previous_run(point / "out")

    def check() -> None:
        intact()
        assert not list(point.glob("out.staging-*")), "staging folder left behind"
        assert (point / "out.work").is_dir()  # kept: the rerun resumes from it

    return Case(env.run(env.config(write_rasters=True), out=point / "out"), check)


def full_geopackage(env: Env) -> Case:
    """The disk fills while the GeoPackage is written (GDAL then reports a missing table, not a
    full disk): an error that says where and what to check; the previous run is kept."""
    point = env.mount("10000k")
    intact = env.previous_run(point / "out")

    def check() -> None:
        intact()
        assert not list(point.glob("out.staging-*")), "staging folder left behind"

    return Case(env.run(env.config(write_rasters=True), out=point / "out"), check)


def cache_on_full_disk(env: Env) -> Case:
    point = env.mount("1m")

    def check() -> None:  # the half-built scenario is removed: only the builder's lock is left
        assert [p.suffix for p in (point / "cache").iterdir()] == [".lock"]

    return Case(env.run(env.config(cache_dir=str(point / "cache"))), check)


def cache_read_only(env: Env) -> Case:
    point = env.mount("1m")
    env.read_only(point)
    return Case(env.run(env.config(cache_dir=str(point / "cache"))))


def out_mount_point(env: Env) -> Case:
    point = env.mount("1m")
    return Case(env.run(out=point))


def out_is_file(env: Env) -> Case:
    env.out.write_text("notes")

    def check() -> None:
        assert env.out.read_text() == "notes"  # the file is left alone

    return Case(env.run(), check)


def corrupt_resume_record(env: Env) -> Case:
    """A kill leaves resume files; one record is damaged: it is recomputed, not trusted."""
    config = env.config()
    from test_run import interrupted_run

    from pipeline.config import load_config

    interrupted_run(load_config(config), env.out)
    records = list(run_module.work_dir(env.out).glob("*-2022-*.json"))
    assert records
    for record in records:
        record.write_text('{"format": 1, "key": "')  # cut short

    def check() -> None:
        for name in TABLES:
            assert (env.out / name).read_bytes() == (env.reference / name).read_bytes(), name
        assert_manifest_consistent(env.out)

    return Case(env.run(config), check)


def compare_pair(env: Env, *extra: str, after: Path | None = None) -> list[str]:
    a = flat_image(env.tmp / "a.tif", X0, Y0)
    b = after or a
    return [
        "compare",
        str(a),
        str(b),
        "--out",
        str(env.tmp / "cmp"),
        "--bands",
        ",".join(BANDS),
        *extra,
    ]


def compare_junk_band(env: Env) -> Case:
    folder = env.tmp / "bands"
    folder.mkdir()
    for band in BANDS:
        (folder / f"T51_{band}.tif").write_bytes(b"")
    shutil.copy(flat_image(env.tmp / "a.tif", X0, Y0), folder / "T51_B02.tif")
    (folder / "T51_B03.tif").write_text("not a raster")
    return Case(["compare", str(folder), str(folder), "--out", str(env.tmp / "cmp")])


# ---- the catalogue ---------------------------------------------------------------------------

IN, ENV = 2, 3  # exit codes: an input to fix, the environment
CASES = [
    # -- config file
    pytest.param(lambda e: Case(e.run(e.tmp / "nope.yaml")), IN, ["nope.yaml", "config file not found"], ConfigError, "", id="config-missing"),
    pytest.param(lambda e: Case(e.run(e.tmp)), IN, [" cannot read config", "Is a directory"], ConfigError, "", id="config-is-a-directory"),
    pytest.param(not_utf8, IN, ["small.yaml", "not UTF-8"], ConfigError, "", id="config-not-utf8"),
    pytest.param(lambda e: Case(e.run(e.config(""))), IN, ["small.yaml", "top level must be a mapping"], ConfigError, "", id="config-empty"),
    pytest.param(lambda e: Case(e.run(e.config("- name: x\n- years: 2020\n"))), IN, ["top level must be a mapping", "list"], ConfigError, "", id="config-list-top-level"),
    pytest.param(lambda e: Case(e.run(e.config("name: [unclosed\n"))), IN, ["small.yaml", "not valid YAML"], ConfigError, "", id="config-yaml-syntax"),
    pytest.param(lambda e: Case(e.run(e.config(output_folder="x"))), IN, ["output_folder: unknown key", "allowed here: name, sites"], ConfigError, "test_run.py::test_cli_config_show_and_errors", id="config-unknown-key-top"),
    pytest.param(lambda e: Case(e.run(e.config(grid__resolutoin_m=10))), IN, ["grid.resolutoin_m: unknown key", "allowed here: resolution_m, buffer_m"], ConfigError, "", id="config-unknown-key-level-2"),
    pytest.param(lambda e: Case(e.run(e.config(classify__coal__min_freq=0.5))), IN, ["classify.coal.min_freq: unknown key", "min_frequency"], ConfigError, "", id="config-unknown-key-level-3"),
    pytest.param(lambda e: Case(e.run(e.config(source__scenario__sed=1))), IN, ["source.synthetic.scenario.sed: unknown key", "seed"], ConfigError, "", id="config-unknown-key-level-4"),
    pytest.param(lambda e: Case(e.run(e.config(source={"kind": "stac-api", "colections": ["x"]}))), IN, ["source.stac-api.colections: unknown key", "collections"], ConfigError, "", id="config-unknown-key-stac-api"),
    pytest.param(lambda e: Case(e.run(e.config(workers="many"))), IN, ["workers: Input should be a valid integer", "'many'"], ConfigError, "", id="config-wrong-type-int"),
    pytest.param(lambda e: Case(e.run(e.config(grid__resolution_m="ten"))), IN, ["grid.resolution_m: Input should be a valid number", "'ten'"], ConfigError, "", id="config-wrong-type-number"),
    pytest.param(lambda e: Case(e.run(e.config(grid={"resolution_m": -5}))), IN, ["grid.resolution_m", "greater than 0", "-5"], ConfigError, "", id="config-out-of-range"),
    pytest.param(lambda e: Case(e.run(e.config(season={"min_clear_observations": 0}))), IN, ["season.min_clear_observations", "greater than or equal to 1"], ConfigError, "", id="config-out-of-range-int"),
    pytest.param(lambda e: Case(e.run(e.config(season={"start": "13-01"}))), IN, ["season.start", "'13-01' is not a month-day"], ConfigError, "", id="config-bad-month"),
    pytest.param(lambda e: Case(e.run(e.config(season={"end": "09-31"}))), IN, ["season.end", "'09-31' is not a month-day"], ConfigError, "", id="config-bad-day"),
    pytest.param(lambda e: Case(e.run(e.config(years={"start": 2023, "end": 2021}))), IN, ["years", "start 2023 is after end 2021"], ConfigError, "", id="config-years-start-after-end"),
    pytest.param(lambda e: Case(e.run(e.config(season={"start": "11-20", "end": "09-01"}))), IN, ["season", "start 11-20 is after end 09-01"], ConfigError, "", id="config-season-start-after-end"),
    pytest.param(lambda e: Case(e.run(e.config(season={"fallback_start": "09-15"}))), IN, ["season", "fallback window must contain the season window"], ConfigError, "", id="config-fallback-narrower"),
    pytest.param(lambda e: Case(e.run(e.config(years=_DELETE))), IN, ["years: Field required"], ConfigError, "", id="config-required-key-missing"),
    pytest.param(lambda e: Case(e.run(e.config(source={"kind": "ftp"}))), IN, ["source", "'ftp'", "synthetic"], ConfigError, "", id="config-unknown-source-kind"),
    pytest.param(lambda e: Case(e.run(e.config(source={"kind": "stac-api", "url": "https://alice:hunter2@stac.example/v1"}))), IN, ["source.stac-api.url", "carries credentials", "put credentials in the environment"], ConfigError, "", id="config-stac-url-with-credentials"),
    pytest.param(lambda e: Case(e.run(e.config(source={"kind": "stac-api", "url": "https://stac.example/v1?token=hunter2"}))), IN, ["source.stac-api.url", "query string"], ConfigError, "", id="config-stac-url-with-token"),
    pytest.param(lambda e: Case(e.run(e.config(source={"kind": "stac-api", "url": "ftp://stac.example/v1"}))), IN, ["source.stac-api.url", "is not an http(s) URL"], ConfigError, "", id="config-stac-url-ftp"),
    pytest.param(lambda e: Case(e.run(e.config(source={"kind": "folder", "path": "no-such-folder"}))), ENV, ["no-such-folder", "scene folder not found"], SourceError, "", id="config-folder-source-missing"),
    pytest.param(lambda e: Case(e.run(e.config(source={"kind": "stac-static", "catalog": "none.json"}))), ENV, ["none.json", "STAC catalog file not found"], SourceError, "", id="catalog-missing"),
    pytest.param(lambda e: static_catalog(e, '{"type": "Feature", '), ENV, ["item.json", "STAC item not readable as JSON"], SourceError, "", id="catalog-item-invalid-json"),
    pytest.param(lambda e: static_catalog(e, None), ENV, ["item.json", "STAC item file not found"], SourceError, "", id="catalog-item-file-missing"),
    pytest.param(lambda e: static_catalog(e, stac_item(properties={"platform": "sentinel-2a"})), ENV, ["item.json", "neither 'datetime' nor 'start_datetime'"], SourceError, "", id="catalog-item-without-datetime"),
    pytest.param(lambda e: static_catalog(e, stac_item(properties={"datetime": "last tuesday"})), ENV, ["item.json", "'last tuesday' is not ISO 8601"], SourceError, "", id="catalog-item-bad-datetime"),
    pytest.param(lambda e: static_catalog(e, stac_item(assets={"blue": {"href": "ftp://host/B02.tif"}})), ENV, ["item.json", "asset 'blue'", "scheme 'ftp' not allowed"], SourceError, "", id="catalog-asset-ftp-scheme"),
    pytest.param(lambda e: static_catalog(e, stac_item(assets={"blue": {"href": "/vsizip//tmp/x.zip/B02.tif"}})), ENV, ["asset 'blue'", "GDAL virtual paths are not allowed"], SourceError, "", id="catalog-asset-gdal-vsi-path"),
    pytest.param(lambda e: static_catalog(e, stac_item(type="Collection")), ENV, ["item.json", "linked as an item but its type is 'Collection'"], SourceError, "", id="catalog-item-wrong-type"),
    # -- sites
    pytest.param(lambda e: Case(e.run(e.config(sites="no-sites.geojson"))), IN, ["no-sites.geojson", "site file not found"], SiteError, "", id="sites-missing"),
    pytest.param(lambda e: Case(e.run(e.config(sites=str(e.tmp)))), IN, ["cannot read the site file", "Is a directory"], SiteError, "", id="sites-is-a-directory"),
    pytest.param(lambda e: Case(e.sites('{"type": "FeatureCollection", "features": [')), IN, ["sites.geojson", "not readable as GeoJSON"], SiteError, "", id="sites-invalid-json"),
    pytest.param(lambda e: Case(e.sites(b'{"type": "FeatureCollection", "name": "caf\xe9"}')), IN, ["sites.geojson", "not readable as GeoJSON"], SiteError, "", id="sites-not-utf8"),
    pytest.param(lambda e: Case(e.sites(feature())), IN, ["sites.geojson", "top level must be a GeoJSON FeatureCollection"], SiteError, "", id="sites-bare-feature"),
    pytest.param(lambda e: Case(e.sites(collection())), IN, ["sites.geojson", "'features' must be a non-empty list"], SiteError, "", id="sites-no-features"),
    pytest.param(lambda e: Case(e.sites(collection(feature(), feature()))), IN, ["features[1].properties.id 'camp-1' repeats features[0]", "must be unique"], SiteError, "", id="sites-duplicate-ids"),
    pytest.param(lambda e: Case(e.sites(collection(feature(id="../../etc/passwd")))), IN, ["features[0].properties.id", "not safe as a file name"], SiteError, "", id="sites-unsafe-id"),
    pytest.param(lambda e: Case(e.sites(collection(feature(kind="prison")))), IN, ["features[0].properties.kind", "'prison' is not one of"], SiteError, "", id="sites-wrong-kind"),
    pytest.param(lambda e: Case(e.sites(collection(feature(name=None)))), IN, ["features[0].properties.name", "required non-empty string"], SiteError, "", id="sites-name-missing"),
    pytest.param(lambda e: Case(e.sites(collection(feature(geometry={"type": "Point", "coordinates": [125.0, 39.0]})))), IN, ["features[0].geometry", "type Point not allowed", "Polygon or MultiPolygon"], SiteError, "", id="sites-point-geometry"),
    pytest.param(lambda e: Case(e.sites(collection(feature(geometry={"type": "Polygon", "coordinates": [[[125, 39], [125.1, 39.1], [125.1, 39], [125, 39.1], [125, 39]]]})))), IN, ["features[0].geometry", "invalid polygon", "Self-intersection", "Fix geometries"], SiteError, "", id="sites-self-intersecting"),
    pytest.param(lambda e: Case(e.sites(collection(feature(geometry=box_ring(39.0, 125.0, 39.01, 125.01))))), IN, ["features[0].geometry", "outside WGS84", "longitude, latitude"], SiteError, "", id="sites-lon-lat-swapped"),
    pytest.param(lambda e: Case(e.sites(collection(feature(geometry=box_ring(10.0, 84.5, 10.1, 84.6))))), IN, ["site camp-1", "outside the UTM range", "-80..84"], SiteError, "test_limits.py::test_polar_site_refused_at_load_naming_site_and_range", id="sites-near-pole"),
    pytest.param(lambda e: Case(e.sites(collection(feature(geometry=box_ring(125.0, 38.0, 127.5, 40.04))))), IN, ["site camp-1: area", "exceeds limits.max_site_area_km2 = 1,500 km2", "split it"], LimitError, "test_limits.py::test_huge_site_refused_before_any_search", id="sites-huge-area"),
    pytest.param(lambda e: Case(e.run(e.config(limits={"max_grid_pixels": 100}))), IN, ["site demo-control: its grid is", "over limits.max_grid_pixels = 100", "grid.resolution_m: 170 or more fits"], LimitError, "test_limits.py::test_grid_pixel_limit_names_site_pixels_and_the_resolution_that_fits", id="sites-grid-over-pixel-limit"),
    pytest.param(lambda e: Case(e.run(e.config(site_ids=["kwanliso-99"]))), IN, ["sites.geojson", "site id(s) ['kwanliso-99'] not found", "available (3): demo-camp, demo-control, demo-port"], SiteError, "", id="config-site-ids-unknown"),
    # -- run options
    pytest.param(lambda e: Case(e.run(None, "--years", "2019", "2021")), IN, ["years [2019] outside the config's years 2021..2022"], SitewatchError, "test_run.py::test_cli_run_prints_report", id="option-years-outside-config"),
    pytest.param(lambda e: Case(e.run(None, "--sites", "nope")), IN, ["site id(s) ['nope'] not found", "available"], SiteError, "", id="option-sites-unknown"),
    pytest.param(lambda e: Case(e.run(None, "--workers", "0")), IN, ["command-line options", "workers: Input should be greater than or equal to 1 (got 0)"], ConfigError, "", id="option-workers-0"),
    pytest.param(lambda e: Case(e.run(None, "--workers", "65")), IN, ["command-line options", "workers", "less than or equal to 64"], ConfigError, "", id="option-workers-too-many"),
    # -- compare
    pytest.param(lambda e: Case(["compare", str(e.tmp / "no.tif"), str(e.tmp / "no2.tif"), "--out", str(e.tmp / "cmp")]), IN, ["no.tif", "no such file or folder"], InputRasterError, "", id="compare-missing-input"),
    pytest.param(lambda e: Case(["compare", str(e.tmp), str(e.tmp), "--out", str(e.tmp / "cmp")]), IN, ["band files for", "not found", "B02.tif"], InputRasterError, "", id="compare-folder-without-bands"),
    pytest.param(compare_junk_band, IN, ["T51_B03.tif", "not a readable raster"], InputRasterError, "test_compare_inputs.py::test_unreadable_file_in_band_folder_refused", id="compare-junk-band-file"),
    pytest.param(lambda e: Case(compare_pair(e, "--scale", "0")), IN, ["--scale 0.0 not allowed", "finite number > 0"], InputRasterError, "test_compare_inputs.py::test_bad_scale_refused", id="compare-scale-0"),
    pytest.param(lambda e: Case(compare_pair(e, after=flat_image(e.tmp / "far.tif", X0 + 5000, Y0))), IN, ["do not overlap", "give two images of the same place"], InputRasterError, "test_compare_inputs.py::test_non_overlapping_pair_refused", id="compare-no-overlap"),
    # -- environment: folders, disks, lock, caches, network
    pytest.param(out_is_file, ENV, ["output folder", "is a file", "choose another --out"], OutputError, "test_transactions.py::test_folder_errors_are_output_errors", id="out-is-a-file"),
    pytest.param(lambda e: (e.previous_run(e.out), Case(e.run(out=e.out / "trends.csv" / "run")))[1], ENV, ["trends.csv", "creating the parent folder", "a file is in the way"], OutputError, "test_transactions.py::test_folder_errors_are_output_errors", id="out-parent-is-a-file"),
    pytest.param(out_mount_point, ENV, ["is a mount point", "give a folder inside it"], OutputError, "", id="out-is-a-mount-point"),
    pytest.param(read_only_new, ENV, ["out.lock", "Read-only file system", "writable or choose another --out"], OutputError, "", id="out-read-only-fs"),
    pytest.param(read_only_previous, ENV, ["out.lock", "Read-only file system"], OutputError, "", id="out-read-only-fs-previous-run-kept"),
    pytest.param(full_resume_files, ENV, ["out.work", "No space left on device", "free space on the disk holding"], OutputError, "", id="disk-full-resume-files-previous-run-kept"),
    pytest.param(full_rasters, ENV, [".tif", "No space left on device", "free space on the disk holding"], OutputError, "", id="disk-full-rasters-previous-run-kept"),
    pytest.param(full_geopackage, ENV, ["writing the run to", "sitewatch.gpkg", "has free space"], OutputError, "", id="disk-full-geopackage-previous-run-kept"),
    pytest.param(cache_on_full_disk, ENV, ["cache", ".tif", "No space left on device", "cache_dir"], OSError, "", id="cache-dir-on-full-disk"),
    pytest.param(cache_read_only, ENV, ["cache", "Read-only file system"], OSError, "", id="cache-dir-read-only"),
    pytest.param(lambda e: Case(e.run(e.config(cache_dir=str(e.reference / "trends.csv" / "c")))), IN, ["cache_dir", "is a file, not a folder"], ConfigError, "test_limits.py::test_folder_key_that_is_a_file_refused_at_load", id="cache-dir-under-a-file"),
    pytest.param(lock_held, ENV, ["is in use by the run with PID", "wait for it to finish"], RunLockedError, "test_transactions.py::test_a_second_run_is_refused_naming_the_pid", id="lock-held-by-live-process"),
    pytest.param(lambda e: Case(e.run(e.config(source={"kind": "stac-api", "url": f"http://127.0.0.1:{closed_port()}/v1"}, read={"retries": 1}))), ENV, ["STAC API http://127.0.0.1:", "cannot open", "check the URL and the network"], SourceError, "", id="network-stac-api-refused"),
    pytest.param(lambda e: Case(e.run(e.config(source={"kind": "stac-api", "url": "http://127.0.0.1:9/v1"}), "--offline")), ENV, ["offline: no cached search", "site demo-control", "run once without --offline"], SourceError, "", id="network-offline-without-cache"),
    pytest.param(corrupt_resume_record, 0, [], None, "", id="corrupt-resume-record-recomputed"),
]  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, cache: Path) -> Path:
    """An uninterrupted run of the small config: what a previous complete run looks like."""
    tmp = tmp_path_factory.mktemp("reference")
    out = tmp / "out"
    assert cli.main(["-q", "run", str(small_config(tmp, cache)), "--out", str(out)]) == 0
    return out


@pytest.fixture
def env(tmp_path: Path, cache: Path, reference: Path) -> Generator[Env]:
    environment = Env(tmp_path, cache, reference)
    try:
        yield environment
    finally:
        for holder in environment.holders:
            holder.kill()
            holder.wait()
        for point in reversed(environment.mounts):
            subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.mark.parametrize(("setup", "code", "fragments", "error", "covered"), CASES)
def test_fault(
    env: Env,
    capsys: pytest.CaptureFixture[str],
    setup: Callable[[Env], Case],
    code: int,
    fragments: Sequence[str],
    error: type[BaseException] | None,
    covered: str,
) -> None:
    case = setup(env)
    capsys.readouterr()
    got = cli.main(["-q", *case.argv])
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())  # rich may wrap long lines
    assert got == code, captured.err
    assert "Traceback" not in captured.err
    assert "internal error" not in captured.err
    if code:
        assert err.count("error: ") == 1, captured.err
    for fragment in fragments:
        assert fragment in err, (fragment, captured.err)
    env.last_err = err
    for secret in ("hunter2",):
        assert secret not in captured.err + captured.out
    if code == IN and case.argv[0] == "run":
        assert not env.out.exists(), "a refused run created its output folder"
    if case.check is not None:
        case.check()
    if error is not None:  # the same call through the library, without the CLI's boundary
        args = cli.build_parser().parse_args(case.argv)
        with pytest.raises(error) as info:
            cli._dispatch(args)
        assert cli.describe_failure(info.value)[1] == code
        if case.check is not None:
            case.check()


# ---- cases that need a server or a subprocess ------------------------------------------------


def test_corrupt_chip_is_read_again(
    tmp_path: Path, cache: Path, reference: Path, range_server: Any
) -> None:
    """A chip damaged in the chip cache is fetched again, never trusted: same outputs, one
    request more, and the chip repaired."""
    catalog = served_catalog(tmp_path, cache)
    server = range_server(catalog.parent)
    rewrite_hrefs(catalog.parent, lambda rel: f"{server.url}/{rel}")
    chip_cache = tmp_path / "cache"
    shutil.copytree(cache, chip_cache)
    config = small_config(tmp_path, chip_cache)
    data = yaml.safe_load(config.read_text())
    data["source"] = {"kind": "stac-static", "catalog": str(catalog)}
    config.write_text(yaml.safe_dump(data))
    assert cli.main(["-q", "run", str(config), "--out", str(tmp_path / "first")]) == 0
    chips = sorted((chip_cache / "chips").rglob("*.npy"))
    assert chips
    good = chips[0].read_bytes()
    chips[0].write_bytes(good[: len(good) // 2])  # a chip cut short (disk full, kill)
    chips[1].write_bytes(b"junk")
    server.reset()
    # a new process: GDAL's in-process /vsicurl/ cache would answer from memory
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "-q", "run", str(config), "--out",
         str(tmp_path / "second")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert len(server.stats()["requests"]) >= 2  # the two damaged chips read again
    assert chips[0].read_bytes() == good  # and repaired
    for name in TABLES:
        first = (tmp_path / "first" / name).read_bytes()
        assert (tmp_path / "second" / name).read_bytes() == first, name


def served_catalog(tmp_path: Path, cache: Path) -> Path:
    """A copy of the small scenario's static catalog (built in ``cache`` by ``reference``)."""
    (built,) = [p for p in cache.glob("synthetic-*") if (p / "catalog.json").is_file()]
    root = tmp_path / "served"
    shutil.copytree(built, root)
    return root / "catalog.json"


def rewrite_hrefs(root: Path, make: Callable[[str], str]) -> None:
    """Point every item asset at ``make(path relative to root)``."""
    for item in root.rglob("*.json"):
        doc = json.loads(item.read_text())
        if doc.get("type") != "Feature":
            continue
        for asset in doc.get("assets", {}).values():
            href = Path(asset["href"])
            local = href if href.is_absolute() else (item.parent / href).resolve()
            asset["href"] = make(local.relative_to(root.resolve()).as_posix())
        item.write_text(json.dumps(doc))


SECRET_ENV = "planted-SECRET-123"
SECRET_SIG = "planted-SECRET-456"


def test_planted_credentials_never_leave_the_process(
    tmp_path: Path, cache: Path, reference: Path
) -> None:
    """AWS_SECRET_ACCESS_KEY in the environment and signed asset URLs (``?sig=``) pointing at a
    closed port: every scene fails and is recorded, and neither secret appears in the manifest,
    the outputs, stderr or the debug log."""
    catalog = served_catalog(tmp_path, cache)
    port = closed_port()
    rewrite_hrefs(
        catalog.parent, lambda rel: f"http://127.0.0.1:{port}/{rel}?sig={SECRET_SIG}&se=2030"
    )
    config = small_config(tmp_path, tmp_path / "cache")
    data = yaml.safe_load(config.read_text())
    data["source"] = {"kind": "stac-static", "catalog": str(catalog)}
    data["read"] = {"retries": 2, "backoff_s": 0, "timeout_s": 2}
    data["write_rasters"] = True
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": SECRET_ENV, "AWS_ACCESS_KEY_ID": "AKIAPLANTED"}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "-v", "-v", "run", str(config), "--out", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert f"127.0.0.1:{port}" in done.stderr  # the failures are logged, naming the host
    manifest = json.loads((out / "manifest.json").read_text())
    skipped = [s for site in manifest["sites"] for y in site["years"] for s in y["scenes"]]
    assert skipped
    assert all(s["skipped"] for s in skipped)
    assert "?<redacted>" in json.dumps(manifest) or "read failed" in json.dumps(manifest)
    texts = {"stderr": done.stderr, "stdout": done.stdout}
    for path in out.rglob("*"):
        if path.is_file():
            texts[str(path)] = path.read_bytes().decode("latin-1")
    for where, text in texts.items():
        for secret in (SECRET_ENV, SECRET_SIG):
            assert secret not in text, f"{secret} found in {where}"


# A worker that dies abruptly (the OOM killer, kill -9): here it kills itself in the composite.
WORKER_DEATH = """
import os, runpy, signal, sys
import pipeline.recipe as recipe
recipe.median_composite = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
sys.argv = ["sitewatch", *sys.argv[1:]]
runpy.run_module("pipeline.cli", run_name="__main__", alter_sys=True)
"""


def test_worker_death_is_an_environment_fault(tmp_path: Path, cache: Path, reference: Path) -> None:
    config = small_config(tmp_path, cache)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", WORKER_DEATH, "-q", "run", str(config), "--out", str(out),
         "--workers", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "a worker process died abruptly" in done.stderr
    assert "use fewer --workers" in " ".join(done.stderr.split())
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("out")) == ["out.work"]


def test_catalogue_size() -> None:
    """At least 40 cases that no earlier test covers (the doc gives the counts)."""
    new = [p for p in CASES if not p.values[4]]
    extra = 3  # test_corrupt_chip_is_read_again, test_planted_..., test_worker_death_...
    assert len(new) + extra >= 40, len(new)
    assert len({p.id for p in CASES}) == len(CASES)
