"""Default QGIS styles of the vector outputs, and what a style promises.

Owns the QML files shipped in ``pipeline/data/qml`` (one per layer, named after it: QGIS 3.22
format, written by PyQGIS) and a reading of a QML into the few things a loaded layer can be
checked against: its renderer, the field it classifies on, its category values and its colours.

========================  ====================================================================
``sites``                 outline only, categorised by ``kind`` (every ``sites.SITE_KINDS``)
``adjacent_zones``        dashed outline with a light hatch
``footprints``            semi-transparent fill with a strong outline
``expansion``             categorised by ``change``: ``added`` red, ``removed`` blue
``stockpiles``            dark grey fill, black outline
``samples``               the reference sample's labels (``pipeline.sampling``)
========================  ====================================================================
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from importlib import resources

__all__ = ["StyleSummary", "style_for", "style_names", "summarize_qml"]

_QML_DIR = ("data", "qml")
# Symbol layer properties that hold a colour, as QGIS names them in a QML.
_COLOR_PROPERTIES = ("color", "outline_color", "line_color")

Rgba = tuple[int, int, int, int]


def style_names() -> tuple[str, ...]:
    """The layers that have a packaged style, sorted."""
    folder = resources.files("pipeline").joinpath(*_QML_DIR)
    return tuple(
        sorted(p.name[: -len(".qml")] for p in folder.iterdir() if p.name.endswith(".qml"))
    )


def style_for(layer: str) -> str:
    """The packaged QML of ``layer`` (``pipeline/data/qml/<layer>.qml``); ``KeyError`` naming
    the layers that have one."""
    names = style_names()
    if layer not in names:
        raise KeyError(f"no packaged QGIS style for layer {layer!r}; styled layers: {names}")
    qml = resources.files("pipeline").joinpath(*_QML_DIR, f"{layer}.qml")
    return qml.read_text(encoding="utf-8")


@dataclass(frozen=True)
class StyleSummary:
    """What a QML's renderer draws: its type (``singleSymbol``, ``categorizedSymbol``, ...), the
    field it classifies on, its category values in order and every colour of its symbols'
    layers (fill, stroke, line) as RGBA."""

    renderer: str
    attribute: str | None
    categories: tuple[str, ...]
    colors: frozenset[Rgba]


def summarize_qml(qml: str) -> StyleSummary:
    """The :class:`StyleSummary` of a QML document; ``ValueError`` when it has no renderer."""
    root = ET.fromstring(qml)
    renderer = root.find("renderer-v2")
    if renderer is None:
        raise ValueError("the QML has no <renderer-v2> element")
    colors: set[Rgba] = set()
    for symbol_layer in renderer.iter("layer"):
        for name, value in _properties(symbol_layer).items():
            if name in _COLOR_PROPERTIES:
                colors.add(parse_color(value))
    return StyleSummary(
        renderer=renderer.get("type", ""),
        attribute=renderer.get("attr"),
        categories=tuple(c.get("value", "") for c in renderer.iter("category")),
        colors=frozenset(colors),
    )


def parse_color(value: str) -> Rgba:
    """``"r,g,b,a"`` (QGIS 3.22; later versions append ``,rgb:...``) as a tuple of ints."""
    parts = value.split(",")
    if len(parts) < 4:
        raise ValueError(f"QML colour {value!r}: expected r,g,b,a")
    r, g, b, a = (int(p) for p in parts[:4])
    return r, g, b, a


def _properties(symbol_layer: ET.Element) -> dict[str, str]:
    """A symbol layer's properties: QGIS 3.22 writes them as ``<Option>`` maps and, for older
    readers, as ``<prop k v>``; either is read."""
    found: dict[str, str] = {}
    for prop in symbol_layer.findall("prop"):
        found[prop.get("k", "")] = prop.get("v", "")
    for option in symbol_layer.findall("Option/Option"):
        name, value = option.get("name"), option.get("value")
        if name is not None and value is not None:
            found[name] = value
    return found
