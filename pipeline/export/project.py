"""The QGIS project of a run (``project.qgs``): every layer with its style, grouped by site,
the temporal controller set up for the yearly layers and a map theme per site.

Owns two things:

- :class:`ProjectSpec`, a plain description of a project (layers in tree order with their
  source, style, group and time; the CRS; the themes; the years of the temporal controller),
  and :func:`write_project`, which writes it as the XML that QGIS 3.22 (Debian bookworm) reads
  without a warning. The element names are those QGIS 3.22 itself writes (``maplayer``,
  ``layer-tree-group``, ``temporal``, ``visibility-presets``, ``ProjectTimeSettings``), checked
  in tests/test_project.py by opening the file in real QGIS.
- :func:`project_spec_for_run`, which builds the spec of a run folder from the files in it:
  the layers of ``sitewatch.gpkg`` with the default styles stored in its ``layer_styles`` table,
  and ``rasters/<site>/*.tif`` that have a QML beside them.

Paths in the file are relative to it (``./sitewatch.gpkg|layername=footprints``), so the run
folder can be moved or zipped whole. The same spec gives the same bytes: layer ids are derived
from group and name, attributes keep a fixed order and nothing records when or by whom the file
was written.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import pyogrio
import rasterio
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

from pipeline.export.atomic import atomic_write_text

__all__ = [
    "FeatureTime",
    "FixedTime",
    "MapTheme",
    "ProjectLayer",
    "ProjectSpec",
    "project_spec_for_run",
    "project_xml",
    "write_project",
]

#: The QGIS version the file claims: the one of Debian bookworm, which the tests open it with.
QGIS_VERSION = "3.22.16-Białowieża"
_DOCTYPE = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
#: Elements of the ``maplayer`` that the writer sets itself and never copies from a QML.
_OWN_ELEMENTS = frozenset({"id", "datasource", "layername", "srs", "provider"})
#: Attributes of a QML's root element that are not layer settings.
_QML_ROOT_SKIP = frozenset({"version", "styleCategories"})
#: Drawing order of the vector layers of ``sitewatch.gpkg`` (top first); others follow by name.
VECTOR_ORDER = ("sites", "expansion", "stockpiles", "footprints", "adjacent_zones")
#: Drawing order of the raster kinds of a site-year (top first); others follow by name.
RASTER_ORDER = ("truecolour", "classes", "change")
#: Fallback project CRS when the rasters do not share one.
FALLBACK_CRS = "EPSG:3857"

LayerKind = Literal["vector", "raster"]
Extent = tuple[float, float, float, float]


@dataclass(frozen=True)
class FeatureTime:
    """A vector layer whose features are dated by a start and an end field (QGIS: "Feature has
    start and end date/time fields"); a feature shows while its [start, end) overlaps the
    controller's frame."""

    start_field: str
    end_field: str


@dataclass(frozen=True)
class FixedTime:
    """A layer shown from ``start`` to ``end``, both days inclusive (QGIS: "Fixed time
    range")."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"fixed time range ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True)
class ProjectLayer:
    """One layer of a project.

    ``path`` is relative to the project file, POSIX style; ``layer_name`` names the layer inside
    a GeoPackage (``None`` for a file that is one layer). ``kind`` picks the provider: ``ogr``
    for vectors (and attribute tables), ``gdal`` for rasters. ``crs`` is an authority id
    (``EPSG:32651``) or WKT, ``None`` for an attribute table. ``qml`` is the style (a QML
    document, whose renderer and related elements are embedded), ``group`` the slash-separated
    group path in the layer tree (``""``: top level), ``time`` its temporal setting, ``visible``
    whether it is ticked in the tree."""

    path: str
    name: str
    kind: LayerKind
    group: str = ""
    layer_name: str | None = None
    crs: str | None = None
    qml: str | None = None
    time: FeatureTime | FixedTime | None = None
    visible: bool = True

    @property
    def id(self) -> str:
        """The layer's id in the project: derived from group and name, so stable."""
        return re.sub(r"[^0-9A-Za-z]+", "_", f"{self.group}/{self.name}").strip("_")

    @property
    def datasource(self) -> str:
        """The source as QGIS writes it with relative paths."""
        source = f"./{self.path}"
        return source if self.layer_name is None else f"{source}|layername={self.layer_name}"


@dataclass(frozen=True)
class MapTheme:
    """A map theme: its name and the ids of the layers visible in it (others are hidden)."""

    name: str
    layers: tuple[str, ...]


@dataclass(frozen=True)
class ProjectSpec:
    """A QGIS project: layers in tree order (the first is drawn on top), the project CRS, map
    themes, the years the temporal controller runs over (first and last, inclusive; 1-year
    steps), the initial view extent in the project CRS and a title."""

    crs: str
    layers: tuple[ProjectLayer, ...]
    themes: tuple[MapTheme, ...] = ()
    years: tuple[int, int] | None = None
    extent: Extent | None = None
    title: str = ""

    def __post_init__(self) -> None:
        _check_crs("project", self.crs)
        ids: dict[str, ProjectLayer] = {}
        for layer in self.layers:
            _check_layer(layer)
            if layer.id in ids:
                raise ValueError(
                    f"project layers {ids[layer.id].name!r} and {layer.name!r} in group "
                    f"{layer.group!r} get the same id {layer.id!r}; give them distinct names"
                )
            ids[layer.id] = layer
        for theme in self.themes:
            unknown = sorted(set(theme.layers) - set(ids))
            if unknown:
                raise ValueError(
                    f"map theme {theme.name!r} shows layers {unknown} that the project does not "
                    f"have; its layer ids are {sorted(ids)}"
                )
        if len({t.name for t in self.themes}) != len(self.themes):
            raise ValueError(f"map theme names repeat: {[t.name for t in self.themes]}")
        if self.years is not None and self.years[1] < self.years[0]:
            raise ValueError(f"project years {self.years}: the last is before the first")


def _check_layer(layer: ProjectLayer) -> None:
    path = PurePosixPath(layer.path)
    if (
        not layer.path
        or path.is_absolute()
        or "\\" in layer.path
        or re.match(r"^[A-Za-z]:", layer.path)
    ):
        raise ValueError(
            f"project layer {layer.name!r}: path {layer.path!r} must be relative to the project "
            "file, with '/' separators"
        )
    if not layer.name.strip():
        raise ValueError(f"project layer from {layer.path!r} has an empty name")
    if layer.crs is not None:
        _check_crs(f"project layer {layer.name!r}", layer.crs)
    if isinstance(layer.time, FeatureTime) and layer.kind != "vector":
        raise ValueError(
            f"project layer {layer.name!r}: start and end fields need a vector layer, "
            f"it is a {layer.kind}"
        )


def _check_crs(what: str, crs: str) -> None:
    try:
        CRS.from_user_input(crs)
    except CRSError as exc:
        raise ValueError(
            f"{what}: CRS {crs!r} is not one PROJ knows; give an authority id such as "
            f"'EPSG:32651' or WKT ({exc})"
        ) from None


# --- writing --------------------------------------------------------------------------------------


def write_project(path: str | os.PathLike[str], spec: ProjectSpec) -> Path:
    """Write ``spec`` as the QGIS project ``path`` (``.qgs``) atomically; return the path."""
    return atomic_write_text(path, project_xml(spec))


def project_xml(spec: ProjectSpec) -> str:
    """The text of the ``.qgs`` file of ``spec``."""
    root = ET.Element("qgis", {"projectname": spec.title, "version": QGIS_VERSION})
    ET.SubElement(root, "homePath", {"path": ""})
    _text(root, "title", spec.title)
    _srs(ET.SubElement(root, "projectCrs"), spec.crs)
    root.append(_layer_tree(spec.layers))
    project_layers = ET.SubElement(root, "projectlayers")
    for layer in spec.layers:
        project_layers.append(_map_layer(layer))
    order = ET.SubElement(root, "layerorder")
    for layer in spec.layers:
        ET.SubElement(order, "layer", {"id": layer.id})
    properties = ET.SubElement(root, "properties")
    paths = ET.SubElement(properties, "Paths")
    _text(paths, "Absolute", "false", type="bool")
    # Without this QGIS ignores projectCrs and keeps its default CRS.
    srs = ET.SubElement(properties, "SpatialRefSys")
    _text(srs, "ProjectionsEnabled", "1", type="int")
    root.append(_themes(spec))
    if spec.extent is not None:
        root.append(_map_canvas(spec.crs, spec.extent))
    view = ET.SubElement(root, "ProjectViewSettings", {"UseProjectScales": "0", "rotation": "0"})
    ET.SubElement(view, "Scales")
    if spec.extent is not None:
        xmin, ymin, xmax, ymax = (_number(v) for v in spec.extent)
        default = ET.SubElement(
            view, "DefaultViewExtent", {"xmin": xmin, "ymin": ymin, "xmax": xmax, "ymax": ymax}
        )
        _srs(default, spec.crs)
    root.append(_time_settings(spec.years))
    ET.indent(root, space="  ")
    return f"{_DOCTYPE}\n{ET.tostring(root, encoding='unicode')}\n"


def _text(parent: ET.Element, tag: str, text: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def _number(value: float) -> str:
    return repr(float(value))


def _srs(parent: ET.Element, crs: str) -> None:
    """A ``spatialrefsys`` under ``parent``: the CRS as WKT and, when it has one, its authority
    id. QGIS 3.22 prefers the id, but a project CRS given by the id alone reads as no CRS."""
    srs = ET.SubElement(parent, "spatialrefsys")
    parsed = CRS.from_user_input(crs)
    _text(srs, "wkt", parsed.to_wkt())
    authority = parsed.to_authority()
    if authority is not None:
        _text(srs, "authid", f"{authority[0]}:{authority[1]}")


def _layer_tree(layers: Sequence[ProjectLayer]) -> ET.Element:
    """The ``layer-tree-group`` root: groups created in the order layers first name them."""
    root = ET.Element("layer-tree-group")
    groups: dict[str, ET.Element] = {"": root}
    visible_groups = _groups_of(layers)

    def group(path: str) -> ET.Element:
        if path not in groups:
            parent_path, _, name = path.rpartition("/")
            depth = path.count("/")
            groups[path] = ET.SubElement(
                group(parent_path),
                "layer-tree-group",
                {
                    "name": name,
                    "checked": "Qt::Checked" if path in visible_groups else "Qt::Unchecked",
                    "expanded": "1" if depth < 2 else "0",
                },
            )
        return groups[path]

    for layer in layers:
        ET.SubElement(
            group(layer.group),
            "layer-tree-layer",
            {
                "id": layer.id,
                "name": layer.name,
                "source": layer.datasource,
                "providerKey": _provider(layer),
                "checked": "Qt::Checked" if layer.visible else "Qt::Unchecked",
                "expanded": "1" if layer.kind == "vector" else "0",
            },
        )
    return root


def _groups_of(layers: Iterable[ProjectLayer]) -> set[str]:
    """Every group path that holds a visible layer, with its ancestors."""
    return _ancestors(layer.group for layer in layers if layer.visible)


def _ancestors(groups: Iterable[str]) -> set[str]:
    """The group paths with all their ancestors (``"a/b"`` -> ``{"a", "a/b"}``)."""
    found: set[str] = set()
    for group in groups:
        if group:
            parts = group.split("/")
            found.update("/".join(parts[: n + 1]) for n in range(len(parts)))
    return found


def _provider(layer: ProjectLayer) -> str:
    return "ogr" if layer.kind == "vector" else "gdal"


def _map_layer(layer: ProjectLayer) -> ET.Element:
    """A ``maplayer``: source, CRS, provider, the style's elements and the temporal setting."""
    style = _parse_qml(layer)
    attributes: dict[str, str] = {"type": layer.kind}
    if style is not None:
        attributes.update((k, v) for k, v in style.attrib.items() if k not in _QML_ROOT_SKIP)
    element = ET.Element("maplayer", attributes)
    _text(element, "id", layer.id)
    _text(element, "datasource", layer.datasource)
    _text(element, "layername", layer.name)
    if layer.crs is not None:
        _srs(ET.SubElement(element, "srs"), layer.crs)
    provider = _text(element, "provider", _provider(layer))
    if layer.kind == "vector":
        provider.set("encoding", "UTF-8")
    for child in style if style is not None else ():
        if child.tag in _OWN_ELEMENTS or (child.tag == "temporal" and layer.time is not None):
            continue
        element.append(child)
    if layer.time is not None:
        element.append(_temporal(layer.time))
    return element


def _parse_qml(layer: ProjectLayer) -> ET.Element | None:
    if layer.qml is None:
        return None
    try:
        root = ET.fromstring(layer.qml)
    except ET.ParseError as exc:
        raise ValueError(f"project layer {layer.name!r}: its QML is not XML ({exc})") from exc
    if root.tag != "qgis":
        raise ValueError(
            f"project layer {layer.name!r}: its QML's root element is <{root.tag}>, "
            "a QGIS style has <qgis>"
        )
    return root


def _timestamp(day: dt.date, *, end: bool = False) -> str:
    clock = "23:59:59" if end else "00:00:00"
    return f"{day.isoformat()}T{clock}Z"


def _temporal(time: FeatureTime | FixedTime) -> ET.Element:
    """The ``temporal`` element as QGIS 3.22 writes it: for vectors mode 2 (start and end
    fields), limit mode 0 (start included, end excluded); for fixed ranges mode 0."""
    if isinstance(time, FeatureTime):
        element = ET.Element(
            "temporal",
            {
                "enabled": "1",
                "mode": "2",
                "startField": time.start_field,
                "endField": time.end_field,
                "limitMode": "0",
                "accumulate": "0",
                "fixedDuration": "0",
                "durationField": "",
                "durationUnit": "min",
                "startExpression": "",
                "endExpression": "",
            },
        )
        start, end = "", ""
    else:
        element = ET.Element("temporal", {"enabled": "1", "mode": "0", "fetchMode": "0"})
        start, end = _timestamp(time.start), _timestamp(time.end, end=True)
    fixed = ET.SubElement(element, "fixedRange")
    _text(fixed, "start", start)
    _text(fixed, "end", end)
    return element


def _themes(spec: ProjectSpec) -> ET.Element:
    """``visibility-presets``: per theme its visible layers and the groups ticked for them."""
    presets = ET.Element("visibility-presets")
    by_id = {layer.id: layer for layer in spec.layers}
    for theme in spec.themes:
        preset = ET.SubElement(
            presets,
            "visibility-preset",
            {"name": theme.name, "has-checked-group-info": "1", "has-expanded-info": "0"},
        )
        shown = set(theme.layers)
        for layer in spec.layers:  # tree order, whatever order the theme lists them in
            if layer.id in shown:
                ET.SubElement(preset, "layer", {"id": layer.id, "visible": "1"})
        checked = ET.SubElement(preset, "checked-group-nodes")
        groups = {by_id[i].group for i in shown}
        for group in sorted(_ancestors(groups)):
            ET.SubElement(checked, "checked-group-node", {"id": group})
    return presets


def _map_canvas(crs: str, extent: Extent) -> ET.Element:
    """The desktop map canvas's view, so QGIS opens the project looking at the sites."""
    canvas = ET.Element("mapcanvas", {"name": "theMapCanvas", "annotationsVisible": "1"})
    box = ET.SubElement(canvas, "extent")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), extent, strict=True):
        _text(box, tag, _number(value))
    _text(canvas, "rotation", "0")
    _srs(ET.SubElement(canvas, "destinationsrs"), crs)
    return canvas


def _time_settings(years: tuple[int, int] | None) -> ET.Element:
    """``ProjectTimeSettings``: from 1 January of the first year to 31 December of the last,
    in steps of one year, so that frame N is the calendar year first + N.

    The range ends on 31 December, not on 1 January after: QGIS counts frames as the range's
    length over a 365.25-day year, rounded up, so a range of whole calendar years with a leap
    day in it would get an extra, empty frame. Each frame is still a whole calendar year."""
    settings = ET.Element(
        "ProjectTimeSettings",
        {"timeStep": "1", "timeStepUnit": "y", "frameRate": "1", "cumulativeTemporalRange": "0"},
    )
    if years is not None:
        span = ET.SubElement(settings, "TemporalRange")
        _text(span, "start", _timestamp(dt.date(years[0], 1, 1)))
        _text(span, "end", _timestamp(dt.date(years[1], 12, 31)))
    return settings


# --- the spec of a run folder -------------------------------------------------------------------

GPKG_NAME = "sitewatch.gpkg"
RASTER_DIR = "rasters"
_YEARLY = re.compile(r"(?P<year>\d{4})_(?P<kind>\w+)")
_PERIOD = re.compile(r"(?P<first>\d{4})-(?P<last>\d{4})_(?P<kind>\w+)")


def project_spec_for_run(
    run_dir: str | os.PathLike[str],
    sites: Sequence[str] | None = None,
    *,
    visible_kinds: Sequence[str] = ("truecolour",),
    title: str = "sitewatch",
) -> ProjectSpec:
    """The project of the run folder ``run_dir`` from the files in it.

    - Group "All sites": the spatial layers of ``sitewatch.gpkg`` (in :data:`VECTOR_ORDER`)
      with the default styles of its ``layer_styles`` table; a layer with ``date_start`` and
      ``date_end`` fields is dated by them. Group "Tables": its attribute tables.
    - Group "Sites/<site>/<year>": ``rasters/<site>/<site>_<year>_<kind>.tif``, and
      "Sites/<site>/change": ``<site>_<y0>-<y1>_<kind>.tif``, each only when a QML of the same
      name lies beside it. A yearly raster shows during its season window (the GeoTIFF tag
      ``window``, "start/end") or else its calendar year; a period raster during its last
      year. Only kinds in ``visible_kinds`` are ticked; newest year first.
    - A map theme per site: the "All sites" layers and the site's ticked rasters.
    - The CRS of the rasters when they share one (else :data:`FALLBACK_CRS`), the years of the
      dated layers, and the extent of every layer.

    ``sites`` (ids, in order) defaults to the folders under ``rasters/``, sorted.
    """
    run = Path(run_dir)
    if sites is None:
        raster_root = run / RASTER_DIR
        found = raster_root.iterdir() if raster_root.is_dir() else iter(())
        sites = sorted(p.name for p in found if p.is_dir())
    vectors, tables, vector_extent = _gpkg_layers(run)
    rasters, raster_crs, raster_extents = _site_rasters(run, sites, frozenset(visible_kinds))
    crs = raster_crs or FALLBACK_CRS
    themes = tuple(
        MapTheme(
            site,
            tuple(v.id for v in vectors if v.visible)
            + tuple(r.id for r in rasters if r.visible and r.group.split("/")[1] == site),
        )
        for site in sites
    )
    extents = [_to_crs(e, c, crs) for e, c in [*raster_extents, *vector_extent]]
    extent = None
    if extents:
        extent = (
            min(e[0] for e in extents),
            min(e[1] for e in extents),
            max(e[2] for e in extents),
            max(e[3] for e in extents),
        )
    layers = (*vectors, *rasters, *tables)
    return ProjectSpec(
        crs=crs,
        layers=layers,
        themes=themes,
        years=_years(layers, run),
        extent=extent,
        title=title,
    )


def _gpkg_layers(
    run: Path,
) -> tuple[list[ProjectLayer], list[ProjectLayer], list[tuple[Extent, str]]]:
    path = run / GPKG_NAME
    if not path.is_file():
        return [], [], []
    styles = _stored_styles(path)
    vectors: list[ProjectLayer] = []
    tables: list[ProjectLayer] = []
    extents: list[tuple[Extent, str]] = []
    listed = [(str(name), kind) for name, kind in pyogrio.list_layers(path)]
    rank = {name: n for n, name in enumerate(VECTOR_ORDER)}
    for name, geometry in sorted(listed, key=lambda x: (rank.get(x[0], len(rank)), x[0])):
        if name == "layer_styles":
            continue
        info = pyogrio.read_info(path, layer=name)
        fields = set(info["fields"])
        time = (
            FeatureTime("date_start", "date_end") if {"date_start", "date_end"} <= fields else None
        )
        label = name.replace("_", " ")
        if geometry is None:
            tables.append(
                ProjectLayer(GPKG_NAME, label, "vector", "Tables", name, qml=styles.get(name))
            )
            continue
        crs = _authid(CRS.from_user_input(info["crs"]))
        layer = ProjectLayer(
            GPKG_NAME, label, "vector", "All sites", name, crs, styles.get(name), time
        )
        vectors.append(layer)
        bounds = info.get("total_bounds")
        if info["features"] and bounds is not None:
            xmin, ymin, xmax, ymax = (float(b) for b in bounds)
            extents.append(((xmin, ymin, xmax, ymax), crs))
    return vectors, tables, extents


def _stored_styles(path: Path) -> dict[str, str]:
    """The default style of each layer in a GeoPackage's ``layer_styles`` table."""
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        has = con.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'layer_styles'"
        ).fetchone()
        if has is None:
            return {}
        rows = con.execute(
            "SELECT f_table_name, styleQML FROM layer_styles WHERE useAsDefault ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    return {str(name): str(qml) for name, qml in rows}


def _site_rasters(
    run: Path, sites: Sequence[str], visible_kinds: frozenset[str]
) -> tuple[list[ProjectLayer], str | None, list[tuple[Extent, str]]]:
    layers: list[tuple[tuple[int, int, int, str], ProjectLayer]] = []
    crs_seen: set[str] = set()
    extents: list[tuple[Extent, str]] = []
    rank = {kind: n for n, kind in enumerate(RASTER_ORDER)}
    for site_rank, site in enumerate(sites):
        folder = run / RASTER_DIR / site
        for tif in sorted(folder.glob(f"{site}_*.tif")) if folder.is_dir() else ():
            qml_path = tif.with_suffix(".qml")
            if not qml_path.is_file():
                continue
            rest = tif.stem[len(site) + 1 :]
            with rasterio.open(tif) as dataset:
                crs = _authid(CRS.from_user_input(dataset.crs.to_wkt()))
                left, bottom, right, top = dataset.bounds
                extents.append(((left, bottom, right, top), crs))
                tags = dataset.tags()
                window = tags.get("window")
            crs_seen.add(crs)
            relative = tif.relative_to(run).as_posix()
            qml = qml_path.read_text(encoding="utf-8")
            if (m := _PERIOD.fullmatch(rest)) is not None:
                first, last, kind = int(m["first"]), int(m["last"]), m["kind"]
                group, name = f"Sites/{site}/change", f"{kind} {first}-{last}"
                # Shown in the later year's season window, where its ground is first seen.
                time = _season(tags.get("window_to"), last)
                key = (site_rank, 1, -last, f"{rank.get(kind, len(rank))}{kind}")
            elif (m := _YEARLY.fullmatch(rest)) is not None:
                year, kind = int(m["year"]), m["kind"]
                group, name = f"Sites/{site}/{year}", f"{kind} {year}"
                time = _season(window, year)
                key = (site_rank, 0, -year, f"{rank.get(kind, len(rank))}{kind}")
            else:
                kind, group, name, time = rest, f"Sites/{site}", rest, None
                key = (site_rank, 2, 0, rest)
            layer = ProjectLayer(
                relative, name, "raster", group, None, crs, qml, time, kind in visible_kinds
            )
            layers.append((key, layer))
    common = crs_seen.pop() if len(crs_seen) == 1 else None
    return [layer for _, layer in sorted(layers, key=lambda x: x[0])], common, extents


def _season(window: str | None, year: int) -> FixedTime:
    """The raster's season window from its ``window`` tag ("YYYY-MM-DD/YYYY-MM-DD"), else the
    calendar year."""
    if window is not None:
        try:
            start, end = (dt.date.fromisoformat(part) for part in window.split("/"))
            return FixedTime(start, end)
        except ValueError:
            pass
    return FixedTime(dt.date(year, 1, 1), dt.date(year, 12, 31))


def _authid(crs: CRS) -> str:
    authority = crs.to_authority()
    return f"{authority[0]}:{authority[1]}" if authority else crs.to_wkt()


def _to_crs(extent: Extent, source: str, target: str) -> Extent:
    if source == target:
        return extent
    transformer = Transformer.from_crs(source, target, always_xy=True)
    xmin, ymin, xmax, ymax = transformer.transform_bounds(*extent)
    return (float(xmin), float(ymin), float(xmax), float(ymax))


def _years(layers: Sequence[ProjectLayer], run: Path) -> tuple[int, int] | None:
    """The first and last year of the dated layers: fixed ranges directly, start/end fields
    from the values in the GeoPackage."""
    years: set[int] = set()
    for layer in layers:
        if isinstance(layer.time, FixedTime):
            years.update((layer.time.start.year, layer.time.end.year))
        elif isinstance(layer.time, FeatureTime) and layer.layer_name is not None:
            years.update(_field_years(run / layer.path, layer.layer_name, layer.time))
    return (min(years), max(years)) if years else None


def _field_years(path: Path, layer: str, time: FeatureTime) -> set[int]:
    frame = pyogrio.read_dataframe(
        path, layer=layer, columns=[time.start_field, time.end_field], read_geometry=False
    )
    found: set[int] = set()
    for column in (time.start_field, time.end_field):
        for value in frame[column].dropna():
            found.add(int(str(value)[:4]))
    return found
