"""Trend charts (pipeline.export.charts) and report.html (pipeline.export.report).

Fast tests on hand-made rows and arrays; slow tests on a real demo run (one per module): a PNG
per site, byte-identical reruns, a self-contained page, and the page opened in headless
Chromium (tests/support/chromium.py), which must render it with every image and no error.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import io
import re
import struct
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import markupsafe
import matplotlib
import numpy as np
import pytest
from affine import Affine
from PIL import Image
from scipy import stats
from shapely.geometry import Polygon
from support.chromium import MISSING_REASON, Chromium, find_chromium

from pipeline.api import demo
from pipeline.export.atomic import TEMP_GLOB
from pipeline.export.charts import (
    caption,
    chart_events,
    chart_png,
    decimal_year,
    point_style,
    season_position,
    theil_sen_points,
    write_charts,
)
from pipeline.export.layers import event_rows, summary_rows, trend_rows
from pipeline.export.report import (
    REPORT_NAME,
    Stretch,
    flag_glossary,
    thumbnail_png,
    true_colour,
    true_colour_stretch,
    write_report,
)
from pipeline.grid import Grid
from pipeline.results import RunResult
from pipeline.trends import FLAG_MEANINGS, KNOWN_FLAGS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunks(data: bytes) -> list[bytes]:
    """The chunk types of a PNG, in order."""
    assert data.startswith(PNG_SIGNATURE)
    kinds, pos = [], len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return kinds


# ---- hand-made rows ---------------------------------------------------------------------------


def _row(year: int, footprint: float | None, flags: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "site_id": "s1",
        "year": year,
        "footprint_ha": footprint,
        "footprint_pm_ha": None if footprint is None else 1.0,
        "coal_ha": None if footprint is None else footprint / 10,
        "coal_pm_ha": None if footprint is None else 0.2,
        "added_ha": 1.0 if year > 2016 and footprint is not None else None,
        "removed_ha": 0.5 if year > 2016 and footprint is not None else None,
        "added_pm_ha": 0.2 if year > 2016 and footprint is not None else None,
        "removed_pm_ha": 0.1 if year > 2016 and footprint is not None else None,
        "net_change_ha": 0.5 if year > 2016 and footprint is not None else None,
        "net_change_pm_ha": 0.3 if year > 2016 and footprint is not None else None,
        "net_change_significant": year == 2018,
        "window_start": f"{year}-09-01",
        "window_end": f"{year}-11-15",
        "flags": flags,
        **extra,
    }


ROWS = [
    _row(2016, 10.0, "few-clear-observations;widened-window"),
    _row(2017, 12.0),
    _row(2018, 13.0),
    _row(2019, None, "no-data"),
    _row(2020, 17.0, "radiometry-break"),
    _row(2021, 18.5),
    _row(2022, 21.0, "partial-coverage"),
]
USED = [(2017, 12.0), (2018, 13.0), (2020, 17.0), (2021, 18.5)]


def _summary(metric: str, n: int, **extra: Any) -> dict[str, Any]:
    return {
        "site_id": "s1",
        "metric": metric,
        "n_years": n,
        "n_years_left_out": 3,
        "years_left_out": "2016:few-clear-observations;2019:no-data;2022:partial-coverage",
        "slope_per_year": 1.6,
        "slope_low": 1.0,
        "slope_high": 2.0,
        "hr_p": float("nan"),
        "trend_hr": "insufficient",
        **extra,
    }


SUMMARIES = [_summary("footprint_ha", 4), _summary("coal_ha", 4, slope_per_year=0.16)]
EVENTS = [
    {"site_id": "s1", "metric": m, "event": name, "event_date": day}
    for m in ("footprint_ha", "coal_ha")
    for name, day in (("Summit", "2018-06-12"), ("UNSCR 2321", "2016-11-30"))
]


def test_point_style_marks_low_data_years_hollow() -> None:
    assert point_style("") == point_style(None) == point_style("widened-window;scenes-skipped")
    assert point_style("").filled
    assert point_style("").label == ""
    low = point_style("few-clear-observations;widened-window")
    assert not low.filled
    assert low.label == "few clear looks"
    assert not point_style(["partial-coverage"]).filled
    assert not point_style("no-data").filled
    both = point_style("partial-coverage;few-clear-observations")
    assert both.label == "few clear looks, partial coverage"
    # A radiometry break keeps the year (filled) but is labelled.
    noted = point_style("radiometry-break")
    assert noted.filled
    assert noted.label == "radiometry break"


def test_season_position_and_events_fall_between_the_right_years() -> None:
    assert decimal_year(dt.date(2016, 1, 1)) == 2016.0
    p2016, p2017 = season_position(ROWS[0]), season_position(ROWS[1])
    assert 2016.6 < p2016 < 2016.9 < p2017
    events = chart_events(EVENTS, "s1")
    assert [e.name for e in events] == ["UNSCR 2321", "Summit"]  # by date, once per event
    # UNSCR 2321 (30 Nov 2016) came after the 2016 season (Sep-Nov 15) and before 2017's.
    assert p2016 < events[0].position < p2017
    assert chart_events(EVENTS, "other") == ()


def test_theil_sen_line_is_scipys_over_the_years_used() -> None:
    summary = _summary(
        "footprint_ha",
        4,
        slope_per_year=stats.theilslopes([v for _, v in USED], [y for y, _ in USED]).slope,
    )
    points = theil_sen_points(ROWS, summary)
    assert points is not None
    expected = stats.theilslopes([v for _, v in USED], [y for y, _ in USED])
    by_year = dict(zip([y for y, _ in USED], points, strict=True))
    for year, (x, y) in by_year.items():
        assert y == pytest.approx(expected.intercept + expected.slope * year)
        assert x == pytest.approx(season_position(next(r for r in ROWS if r["year"] == year)))
    # A summary that does not fit the rows draws no line rather than a wrong one.
    assert theil_sen_points(ROWS, {**summary, "n_years": 5}) is None
    assert theil_sen_points(ROWS, {**summary, "slope_per_year": None}) is None


def test_caption_says_p_or_insufficient_and_years_left_out() -> None:
    short = caption(_summary("footprint_ha", 4), min_years=5)
    assert "insufficient (n = 4 < 5)" in short
    assert "3 left out (2016, 2019, 2022)" in short
    assert "Theil-Sen +1.60 ha/yr [+1.00, +2.00]" in short
    tested = caption(
        _summary("footprint_ha", 9, hr_p=0.0123, trend_hr="increasing", n_years_left_out=0,
                 years_left_out=""),
        min_years=5,
    )  # fmt: skip
    assert "Mann-Kendall (Hamed-Rao) p = 0.012, increasing" in tested
    assert "9 years used, 0 left out" in tested
    # A year left out for two reasons (its flags ','-joined, as the trend summary writes them).
    two = caption(
        _summary("footprint_ha", 8, n_years_left_out=2,
                 years_left_out="2016:few-clear-observations,partial-coverage;2019:no-data"),
        min_years=5,
    )  # fmt: skip
    assert "2 left out (2016, 2019)" in two


def test_chart_png_is_reproducible_without_metadata() -> None:
    first = chart_png(ROWS, SUMMARIES, EVENTS, "s1", min_years=5)
    assert first == chart_png(ROWS, SUMMARIES, EVENTS, "s1", min_years=5)
    kinds = png_chunks(first)
    assert kinds[0] == b"IHDR"
    assert kinds[-1] == b"IEND"
    assert not {b"tEXt", b"iTXt", b"zTXt", b"tIME"} & set(kinds), kinds
    assert b"matplotlib" not in first.lower()
    with Image.open(io.BytesIO(first)) as image:
        assert image.size == (900, 950)
    # The rows drive the picture: another value, other bytes.
    changed = [dict(r, footprint_ha=30.0) if r["year"] == 2021 else r for r in ROWS]
    assert chart_png(changed, SUMMARIES, EVENTS, "s1") != first


def test_chart_ignores_the_users_matplotlib_settings() -> None:
    plain = chart_png(ROWS, SUMMARIES, EVENTS, "s1")
    rc = {"savefig.bbox": "tight", "font.size": 20.0, "lines.linewidth": 5.0, "figure.dpi": 300}
    with matplotlib.rc_context(rc):
        assert chart_png(ROWS, SUMMARIES, EVENTS, "s1") == plain
        assert matplotlib.rcParams["font.size"] == 20.0  # and leaves them as they were


def test_chart_of_an_unknown_site_names_the_sites_present() -> None:
    with pytest.raises(ValueError, match=r"no trend rows for site 'nope'.*\['s1'\]"):
        chart_png(ROWS, SUMMARIES, EVENTS, "nope")


def test_write_charts_one_png_per_site_atomically(tmp_path: Path) -> None:
    rows = ROWS + [dict(r, site_id="s0") for r in ROWS]
    written = write_charts(tmp_path, rows, SUMMARIES, EVENTS, titles={"s1": "Site <one>"})
    assert list(written) == ["s1", "s0"]  # the rows' site order
    assert written["s1"] == tmp_path / "charts" / "s1.png"
    for path in written.values():
        assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == ["s0.png", "s1.png"]
    assert not list((tmp_path / "charts").glob(TEMP_GLOB))


# ---- thumbnails and the glossary ----------------------------------------------------------------


def _grid(height: int, width: int) -> Grid:
    return Grid("EPSG:32652", Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4500000.0), width, height)


def test_one_stretch_for_all_years_and_no_data_transparent() -> None:
    dark = np.full((6, 4, 5), 0.05, np.float32)
    bright = np.full((6, 4, 5), 0.25, np.float32)
    bright[:, 0, 0] = np.nan
    stretch = true_colour_stretch([dark, bright])
    assert stretch.low == pytest.approx((0.05,) * 3)
    assert stretch.high == pytest.approx((0.25,) * 3)
    # Shared stretch: the dark year shows dark, the bright one bright (not each its own).
    assert true_colour(dark, stretch)[..., :3].max() == 0.0
    shown = true_colour(bright, stretch)
    assert shown[1, 1, :3].tolist() == [1.0, 1.0, 1.0]
    assert shown[0, 0, 3] == 0.0
    assert shown[1, 1, 3] == 1.0
    empty = true_colour_stretch([np.full((6, 2, 2), np.nan, np.float32)])
    assert (empty.low, empty.high) == ((0.0,) * 3, (0.3,) * 3)


def test_thumbnail_draws_the_footprint_outline_reproducibly() -> None:
    grid = _grid(60, 120)
    refl = np.full((6, 60, 120), 0.1, np.float32)
    left, top = 500000.0, 4500000.0
    square = Polygon([(left + 400, top - 100), (left + 800, top - 100),
                      (left + 800, top - 500), (left + 400, top - 500)])  # fmt: skip
    stretch = true_colour_stretch([refl])
    png = thumbnail_png(refl, stretch, grid, [square], size=240)
    assert png == thumbnail_png(refl, stretch, grid, [square], size=240)
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (240, 120)
        rgb = np.asarray(image.convert("RGBA"))[..., :3].astype(int)  # a palette PNG
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 120)
    rows, cols = np.nonzero(yellow)
    # The square spans pixels 40-80 (x) and 10-50 (y) of the grid: 80-160 and 20-100 at 2x.
    assert cols.min() == pytest.approx(80, abs=3)
    assert cols.max() == pytest.approx(160, abs=3)
    assert rows.min() == pytest.approx(20, abs=3)
    assert rows.max() == pytest.approx(100, abs=3)
    assert not yellow[60, 120]  # the inside is not filled
    assert thumbnail_png(refl, stretch, grid, [], size=240) != png


def test_every_flag_is_explained_in_words() -> None:
    assert set(FLAG_MEANINGS) >= KNOWN_FLAGS
    assert all(len(sentence) > 40 and sentence.endswith(".") for sentence in FLAG_MEANINGS.values())
    glossary = flag_glossary(ROWS)
    by_flag = {g["flag"]: g for g in glossary}
    assert by_flag["no-data"]["where"] == "s1 2019"
    assert by_flag["scenes-skipped"]["where"] == "none"
    made_up = flag_glossary([_row(2016, 1.0, "made-up")])
    assert made_up[-1] == {"flag": "made-up", "meaning": "(not described yet)", "where": "s1 2016"}


# ---- the demo run: charts and report.html -------------------------------------------------------


@dataclasses.dataclass
class DemoReport:
    result: RunResult
    trends: list[dict[str, Any]]
    summaries: list[dict[str, Any]]
    events: list[dict[str, Any]]
    charts: dict[str, Path]
    report: Path


def _write_outputs(
    folder: Path, result: RunResult, rows: tuple[list[Any], list[Any], list[Any]]
) -> tuple[dict[str, Path], Path]:
    trends, summaries, events = rows
    charts = write_charts(
        folder, trends, summaries, events,
        titles={a.site.id: a.site.name for a in result.sites},
        min_years=result.config.trends.min_years,
    )  # fmt: skip
    return charts, write_report(folder, result, trends, summaries, events, charts)


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory: pytest.TempPathFactory) -> DemoReport:
    work = tmp_path_factory.mktemp("report")
    result = demo(work / "run", workers=2, cache_dir=work / "cache")
    cfg = result.config
    trends: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for a in result.sites:
        rows = trend_rows(a, cfg.season.min_clear_observations)
        trends.extend(rows)
        summaries.extend(summary_rows(a, rows, cfg.trends))
        events.extend(event_rows(a, rows, cfg.trends))
    charts, report = _write_outputs(work / "out", result, (trends, summaries, events))
    return DemoReport(result, trends, summaries, events, charts, report)


def _images(html: str) -> list[str]:
    return re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", html)


@pytest.mark.slow
def test_demo_one_chart_per_site(demo_report: DemoReport) -> None:
    ids = [a.site.id for a in demo_report.result.sites]
    assert list(demo_report.charts) == ids
    for site_id, path in demo_report.charts.items():
        assert path.name == f"{site_id}.png"
        with Image.open(path) as image:
            image.verify()


@pytest.mark.slow
def test_demo_low_data_year_is_marked(demo_report: DemoReport) -> None:
    # Demo camp 2016 has too few clear looks (README): hollow in the chart, shaded in the table.
    camp_2016 = next(
        r for r in demo_report.trends if r["site_id"] == "demo-camp" and r["year"] == 2016
    )
    assert "few-clear-observations" in camp_2016["flags"]
    assert not point_style(camp_2016["flags"]).filled
    html = demo_report.report.read_text(encoding="utf-8")
    section = html.split('id="site-demo-camp"', 1)[1].split("</section>", 1)[0]
    assert re.search(r'<tr class="low-data">\s*<td class="num">2016</td>', section)
    assert "1: 2016:few-clear-observations" in section  # left out of the statistics, and said so
    # Its clouds left part of the piles too few looks to count: said beside the coal area.
    undecided = camp_2016["coal_undecided_ha"]
    assert undecided > camp_2016["coal_pm_ha"]
    row_2016 = section.split('<td class="num">2016</td>', 1)[1].split("</tr>", 1)[0]
    assert f"(+{undecided:.2f} undecided)" in row_2016


@pytest.mark.slow
def test_demo_outputs_byte_identical_on_rerun(demo_report: DemoReport, tmp_path: Path) -> None:
    rows = (demo_report.trends, demo_report.summaries, demo_report.events)
    charts, report = _write_outputs(tmp_path, demo_report.result, rows)
    for site_id, path in charts.items():
        assert path.read_bytes() == demo_report.charts[site_id].read_bytes(), site_id
    assert report.read_bytes() == demo_report.report.read_bytes()
    assert not list(tmp_path.glob(TEMP_GLOB))


@pytest.mark.slow
def test_demo_report_is_self_contained(demo_report: DemoReport) -> None:
    assert demo_report.report.name == REPORT_NAME
    html = demo_report.report.read_text(encoding="utf-8")
    assert not re.search(r"\b(src|href)\s*=\s*\"(?!data:|#)", html), "external reference"
    assert "<script" not in html
    assert "<link" not in html
    assert "url(" not in html
    assert "http://" not in html
    assert "https://" not in html
    sources = _images(html)
    years_seen = sum(sy.composite is not None for a in demo_report.result.sites for sy in a.years)
    assert len(sources) == len(demo_report.result.sites) + years_seen  # charts + thumbnails
    for src in sources:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        png = base64.b64decode(src[len(prefix) :], validate=True)
        with Image.open(io.BytesIO(png)) as image:
            image.verify()
            assert image.format == "PNG"


@pytest.mark.slow
def test_demo_report_covers_every_site_and_its_provenance(demo_report: DemoReport) -> None:
    html = demo_report.report.read_text(encoding="utf-8")
    result = demo_report.result
    assert f"<title>sitewatch report: {result.config.name}</title>" in html
    assert result.config.hash() in html
    for a in result.sites:
        assert f'<section id="site-{a.site.id}" class="site">' in html
        for sy in a.years:
            for scene in sy.scenes:
                assert f"<code>{scene.scene_id}</code>" in html
    assert "Hamed-Rao" in html
    assert "Pettitt" in html
    assert "UNSCR 2321" in html
    assert "built-in method" not in html  # a key shadowed by a dict method in the template
    for sentence in FLAG_MEANINGS.values():
        assert str(markupsafe.escape(sentence)) in html


@pytest.mark.slow
def test_demo_report_escapes_values(demo_report: DemoReport, tmp_path: Path) -> None:
    a = demo_report.result.sites[0]
    hostile = dataclasses.replace(a, site=dataclasses.replace(a.site, name='<b onclick="x">&'))
    result = dataclasses.replace(demo_report.result, sites=[hostile])
    path = write_report(
        tmp_path, result, demo_report.trends, demo_report.summaries, demo_report.events, {}
    )
    html = path.read_text(encoding="utf-8")
    assert '<b onclick="x">' not in html
    assert "&lt;b onclick=&#34;x&#34;&gt;&amp;" in html


# ---- headless Chromium --------------------------------------------------------------------------

_IMAGES_JS = """Array.from(document.images).map(i => ({
    ok: i.complete && i.naturalWidth > 0, alt: i.alt}))"""


@pytest.fixture
def chromium(tmp_path: Path) -> Generator[Chromium]:
    """A headless Chromium started for the test (its process group ended after it), or a skip
    naming the Debian package."""
    if find_chromium() is None:
        pytest.skip(MISSING_REASON)
    browser = Chromium.start(tmp_path / "profile")
    try:
        yield browser
    finally:
        browser.close()


def test_chromium_checks_catch_a_broken_page(chromium: Chromium, tmp_path: Path) -> None:
    # The checks the report must pass do fail on a page with a console error and a broken image.
    png = chart_png(ROWS, SUMMARIES, EVENTS, "s1")
    page_file = tmp_path / "broken.html"
    page_file.write_text(
        "<!DOCTYPE html><html><head><title>t</title></head><body>"
        f'<img alt="good" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        '<img alt="broken" src="data:image/png;base64,AAAA">'
        "<script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    page = chromium.new_page()
    page.navigate(page_file.as_uri())
    images = page.evaluate(_IMAGES_JS)
    assert [i["alt"] for i in images if not i["ok"]] == ["broken"]
    assert any("boom" in e for e in page.errors()), page.errors()


@pytest.mark.slow
def test_demo_report_renders_in_headless_chromium(
    demo_report: DemoReport, chromium: Chromium
) -> None:
    page = chromium.new_page()
    page.navigate(demo_report.report.resolve().as_uri())
    assert page.evaluate("document.readyState") == "complete"
    images: list[Mapping[str, Any]] = page.evaluate(_IMAGES_JS)
    assert len(images) == len(_images(demo_report.report.read_text(encoding="utf-8")))
    assert [i["alt"] for i in images if not i["ok"]] == []
    assert page.evaluate("document.title") == f"sitewatch report: {demo_report.result.config.name}"
    headings = page.evaluate(
        "Array.from(document.querySelectorAll('section.site h2'), h => h.textContent)"
    )
    assert len(headings) == len(demo_report.result.sites)
    for a in demo_report.result.sites:
        assert any(a.site.name in h for h in headings), (a.site.name, headings)
    assert page.errors() == []
    with Image.open(io.BytesIO(page.screenshot())) as shot:
        pixels = np.asarray(shot.convert("RGB"))
    assert pixels.shape[0] > 100
    assert pixels.shape[1] > 100
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 50, "the screenshot is blank"


def test_thumbnail_of_a_large_grid_is_thinned_but_shows_the_same_scene() -> None:
    """A 2,000 px grid drawn into a 240 px thumbnail: thinned first (every 4th pixel), the
    picture still has the grid's proportions, the left half's dark ground and the right half's
    bright ground where they are, and the outline drawn where the polygon is."""
    n = 2000
    grid = Grid("EPSG:32652", Affine(10, 0, 400_000, 0, -10, 4_300_000), n, n // 2)
    refl = np.full((6, n // 2, n), 0.25, np.float32)
    refl[:, :, : n // 2] = 0.02  # dark west half
    square = Polygon([(405_000, 4_297_500), (415_000, 4_297_500), (415_000, 4_292_500),
                      (405_000, 4_292_500)])  # fmt: skip
    png = thumbnail_png(refl, Stretch((0.0,) * 3, (0.3,) * 3), grid, [square])
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (240, 120)
        rgb = np.asarray(image.convert("RGBA"))[..., :3].astype(int)
    assert rgb[60, 20].sum() < rgb[60, 220].sum()  # west dark, east bright
    yellow = (rgb[..., 0] > 200) & (rgb[..., 1] > 200) & (rgb[..., 2] < 120)
    rows, cols = np.nonzero(yellow)
    assert rows.size > 0
    # The outline sits on the square: columns 60..180 and rows 30..90 of the 240 x 120 picture.
    assert cols.min() >= 55
    assert cols.max() <= 185
    assert rows.min() >= 25
    assert rows.max() <= 95
