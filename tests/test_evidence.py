"""Evidence packages (``pipeline.export.evidence``) on the hand-built analysis of
``test_site_rasters``: which changes get one, the chips, the record and its checksums."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from test_site_rasters import ADDED, GRID, PILE_GROWN, SITE, build_analysis, site_year

from pipeline.analysis import analyse_site
from pipeline.export.evidence import (
    CHIP_PX,
    EVIDENCE_DIR,
    chip_window,
    evidence_cases,
    write_evidence,
    write_evidence_index,
)
from pipeline.export.manifest import canonical_json, sha256_file
from pipeline.export.report import true_colour
from pipeline.export.site_rasters import site_stretch, write_qgis_rasters
from pipeline.results import SiteAnalysis

PAIRS = ("2020-2021", "2021-2022")


@pytest.fixture(scope="module")
def analysis() -> SiteAnalysis:
    return build_analysis()


def _write(out: Path, analysis: SiteAnalysis) -> list[Path]:
    write_qgis_rasters(out, analysis)
    return [*write_evidence(out, analysis), write_evidence_index(out, [analysis])]


@pytest.fixture(scope="module")
def run(
    analysis: SiteAnalysis, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("run")
    return out, _write(out, analysis)


def _record(out: Path, pair: str) -> dict[str, Any]:
    return json.loads((out / EVIDENCE_DIR / "camp" / pair / "evidence.json").read_text("utf-8"))


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        return np.asarray(image)


def test_a_package_per_ring_or_coal_change_and_an_index(run: tuple[Path, list[Path]]) -> None:
    out, written = run
    # 2020-2021: 4 ha of footprint added; 2021-2022: 4 ha of coal added on the footprint;
    # 2022-2024: nothing moved (no package); 2020-2024 is not a consecutive pair.
    expected = [out / EVIDENCE_DIR / "camp" / p / n for p in PAIRS
                for n in ("before.png", "after.png", "evidence.json")]  # fmt: skip
    assert written == [*expected, out / EVIDENCE_DIR / "index.json"]
    assert sorted(p for p in (out / EVIDENCE_DIR).rglob("*") if p.is_file()) == sorted(written)
    index = json.loads((out / EVIDENCE_DIR / "index.json").read_text("utf-8"))
    assert [(p["site_id"], p["year_from"], p["year_to"]) for p in index["packages"]] == [
        ("camp", 2020, 2021), ("camp", 2021, 2022),
    ]  # fmt: skip
    for package in index["packages"]:
        assert package["sha256"] == sha256_file(out / package["path"])
    assert index["packages"][0]["added_ha"] == pytest.approx(4.0)
    assert index["packages"][1]["coal_added_ha"] == pytest.approx(4.0)
    assert (out / EVIDENCE_DIR / "index.json").read_text("utf-8") == canonical_json(index)


def test_chips_share_size_and_stretch(run: tuple[Path, list[Path]], analysis: SiteAnalysis) -> None:
    out, _ = run
    stretch = site_stretch(analysis)
    for pair in PAIRS:
        folder = out / EVIDENCE_DIR / "camp" / pair
        before, after = _png(folder / "before.png"), _png(folder / "after.png")
        assert before.shape == after.shape
        record = _record(out, pair)
        window = record["chip"]["pixel_window"]
        height, width = window["height"], window["width"]
        scale = CHIP_PX // max(height, width)
        assert before.shape[:2] == (height * scale, width * scale)
        assert record["stretch"] == {"bands": ["red", "green", "blue"],
                                     "low": list(stretch.low), "high": list(stretch.high)}  # fmt: skip
    # Each chip shows its composite through the site's stretch, pixel for pixel.
    folder = out / EVIDENCE_DIR / "camp" / "2020-2021"
    window = _record(out, "2020-2021")["chip"]["pixel_window"]
    scale = CHIP_PX // max(window["height"], window["width"])
    years = {sy.year: sy for sy in analysis.years}
    for name, year in (("before.png", 2020), ("after.png", 2021)):
        chip = _png(folder / name)
        composite = years[year].composite
        assert composite is not None
        # A pixel in the chip's bottom-left corner, away from every outline.
        row, col = window["row_off"] + window["height"] - 2, window["col_off"] + 1
        shown = chip[(row - window["row_off"]) * scale + scale // 2,
                     (col - window["col_off"]) * scale + scale // 2]  # fmt: skip
        expected = np.round(true_colour(composite.reflectance[:, row:row + 1, col:col + 1],
                                        stretch)[0, 0] * 255)  # fmt: skip
        np.testing.assert_allclose(shown, expected, atol=1)


def test_chip_outlines_the_change(run: tuple[Path, list[Path]]) -> None:
    out, _ = run
    record = _record(out, "2020-2021")
    window = record["chip"]["pixel_window"]
    scale = CHIP_PX // max(window["height"], window["width"])
    after = _png(out / EVIDENCE_DIR / "camp" / "2020-2021" / "after.png")
    # The added ring's north edge, drawn in vermillion (#D55E00) across the chip's pixels.
    top = (ADDED[0].start - window["row_off"]) * scale
    left = (ADDED[1].start - window["col_off"]) * scale
    right = (ADDED[1].stop - window["col_off"]) * scale
    edge = after[top - 1 : top + 2, left + scale : right - scale, :3].reshape(-1, 3)
    vermillion = np.abs(edge.astype(int) - (213, 94, 0)).sum(axis=1) < 30
    assert vermillion.mean() > 0.3


def test_record_boxes_areas_and_scenes(
    run: tuple[Path, list[Path]], analysis: SiteAnalysis
) -> None:
    out, _ = run
    record = _record(out, "2020-2021")
    assert (record["site_id"], record["year_from"], record["year_to"]) == ("camp", 2020, 2021)
    change = record["change"]
    assert change["added_ha"] == pytest.approx(4.0)
    assert (change["removed_ha"], change["added_rings"], change["kind"]) == (0.0, 1, "expansion")
    # The box is the added ring's (rows 20-60, columns 100-110 of the grid).
    left, top = GRID.transform @ (ADDED[1].start, ADDED[0].start)
    right, bottom = GRID.transform @ (ADDED[1].stop, ADDED[0].stop)
    assert record["bbox"]["bounds"] == [left, bottom, right, top]
    assert record["bbox"]["crs"] == GRID.crs
    west, south, east, north = record["bbox"]["wgs84"]
    site_w, site_s, site_e, site_n = SITE.geometry.bounds
    assert site_w <= west < east <= site_e
    assert site_s <= south < north <= site_n
    assert chip_window(tuple(record["bbox"]["bounds"]), GRID) == tuple(
        record["chip"]["pixel_window"][k] for k in ("row_off", "col_off", "height", "width")
    )
    before, after = record["before"], record["after"]
    assert (before["year"], after["year"]) == (2020, 2021)
    assert after["window"] == ["2021-09-01", "2021-11-15"]
    assert [s["scene_id"] for s in before["scenes"]] == ["S2B_51SVD_20200910", "S2A_51SVD_20201005"]
    assert [(s["processing_baseline"], s["offset_dn"]) for s in before["scenes"]] == [
        ("04.00", -1000.0), ("02.09", 0.0),
    ]  # fmt: skip
    assert before["scenes"][0]["radiometry"] == "baseline 04.00 >= 04.00: DN - 1000"
    assert [(s["scene_id"], s["reason"]) for s in before["skipped"]] == [
        ("LC08_116032_20201012", "read failed: 503"),
    ]  # fmt: skip
    assert [s["scene_id"] for s in before["greenness_scenes"]] == ["S2A_51SVD_20200612"]
    assert before["median_clear_obs_in_bbox"] == 6.0
    # The coal package: its box is the ground the pile grew onto.
    coal = _record(out, "2021-2022")
    assert coal["change"]["coal_added_ha"] == pytest.approx(4.0)
    assert coal["change"]["added_rings"] == 0
    left, top = GRID.transform @ (PILE_GROWN[1].start, PILE_GROWN[0].start)
    right, bottom = GRID.transform @ (PILE_GROWN[1].stop, PILE_GROWN[0].stop)
    assert coal["bbox"]["bounds"] == [left, bottom, right, top]


def test_hashes_match_the_files(run: tuple[Path, list[Path]]) -> None:
    out, _ = run
    for pair in PAIRS:
        folder = out / EVIDENCE_DIR / "camp" / pair
        record = _record(out, pair)
        assert record["sha256"] == {n: sha256_file(folder / n) for n in ("after.png", "before.png")}
        y0, y1 = pair.split("-")
        assert sorted(record["rasters_sha256"]) == sorted([
            f"rasters/camp/camp_{y}_{k}.tif" for y in (y0, y1) for k in ("classes", "truecolour")
        ] + [f"rasters/camp/camp_{pair}_change.tif"])  # fmt: skip
        for relative, digest in record["rasters_sha256"].items():
            assert digest == sha256_file(out / relative), relative


def test_rerun_writes_identical_bytes(
    run: tuple[Path, list[Path]], analysis: SiteAnalysis, tmp_path: Path
) -> None:
    out, written = run
    again = _write(tmp_path, analysis)
    assert [p.relative_to(tmp_path) for p in again] == [p.relative_to(out) for p in written]
    for first, second in zip(written, again, strict=True):
        assert first.read_bytes() == second.read_bytes(), first.name


def test_evidence_needs_the_rasters_first(analysis: SiteAnalysis, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"camp 2020-2021 rests on .*camp_2020_truecolour"
                       r"\.tif, which does not exist: write the site's rasters"):  # fmt: skip
        write_evidence(tmp_path, analysis)


def test_no_change_no_package(analysis: SiteAnalysis) -> None:
    assert [c.folder_name for c in evidence_cases(analysis)] == list(PAIRS)


def test_a_site_without_data_writes_nothing(tmp_path: Path) -> None:
    empty = analyse_site(
        SITE, GRID, [site_year(2020, None), site_year(2021, None)], buffer_m=0.0,
        min_mapping_unit_ha=0.25, change_opening_px=1,
    )  # fmt: skip
    assert write_qgis_rasters(tmp_path, empty) == []
    assert write_evidence(tmp_path, empty) == []
    index = write_evidence_index(tmp_path, [empty])
    assert json.loads(index.read_text("utf-8")) == {"packages": [], "sitewatch_evidence_index": 1}
