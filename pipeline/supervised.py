"""Supervised classification: a random forest trained on polygons an analyst labels in QGIS.

For those who label. The rule-based recipe (``recipe.classify``) needs no training data but its
thresholds were set on one scenario; a model trained on the analyst's own polygons of the
site's own imagery adapts to the place (its soils, its coal, its haze). Both give maps of the
same kind: footprint and coal masks after the same clean-up (thin regions dropped, mixed rim
pixels restored by unmixing, minimum mapping unit).

The round trip:

1. :func:`write_training_template` writes an empty GeoPackage (layer ``training``: polygons
   with ``class``, ``year``, ``site_id``, ``note``) whose default QGIS style colours polygons by
   class and offers the allowed classes as a drop-down.
2. The analyst draws a handful of small polygons per class on the season composite of a year
   (``sitewatch run`` writes it) or on the BEFORE image of a ``compare``, inside ground that is
   clearly one class, and saves. Any CRS: QGIS reprojects on the fly and so does this module.
3. :func:`read_training_polygons` reads and checks them (any GeoPackage layer or GeoJSON);
   every bad feature is a :class:`TrainingDataError` naming the file, layer, feature id, field,
   value and what is allowed.
4. :func:`train_on_site_years` (a run: each polygon on its site's composite of its ``year``) or
   :func:`train_on_image` (compare: the BEFORE image, ``year`` ignored) rasterise the polygons
   onto the grid (pixel-centre rule), take :func:`features` at those pixels and :func:`train`.
5. :func:`reclassify_site_years` (after a run observed its site-years) or :func:`predict`
   (one image) map footprint and coal with the model.

Classes (:data:`CLASSES`): ``footprint`` (built, bare or spoil ground that is not coal),
``coal``, ``other``, and the optional sub-classes of other ``water`` and ``vegetation`` (kept
apart while training, which helps the model, and "other" in the maps). Footprint is where the
model's probability of footprint or coal is at least one half; coal is footprint where coal is
the likelier of the two.

Decisions worth knowing:

- **Determinism.** A ``RandomForestClassifier`` with a fixed ``random_state`` and ``n_jobs=1``,
  pixels in a fixed order: the same polygons and imagery give identical maps on every rerun.
  Classes are balanced by weight (``class_weight="balanced"``), and each polygon contributes at
  most :data:`MAX_PIXELS_PER_POLYGON` pixels (a seeded choice), so one large polygon cannot
  drown the small ones.
- **Validation by polygon.** Pixels of one polygon are not independent (neighbours, the same
  surface): out-of-bag or pixel-wise cross-validation would flatter the model. The accuracy
  reported is a stratified k-fold cross-validation that holds out whole polygons
  (``StratifiedGroupKFold``); with fewer than 2 polygons in a class there is none, and the
  provenance says so.
- **Greenness.** One late-season composite cannot tell a harvested field from a yard: both are
  bare. When the training site-years carry the recipe's season evidence, ground the season saw
  green (``SeasonEvidence.vegetated``) is a feature (``seen_green``), so polygons on fields
  teach the model fields rather than "bare soil is other", and it is never footprint, as in
  the rules. A single image (``compare``) has neither: train and compare images of the same
  season.
- **Coal.** The model classifies the season composite; the rules count coal look by look. The
  site-year's ``coal`` frequency (the rules') is kept for the record, the masks are the model's.
- **No pickles.** The model lives in memory for the run; the manifest gets its provenance
  (:attr:`TrainedModel.provenance`: the training file's SHA-256, pixels and polygons per class,
  the grouped cross-validated accuracy, the features, the scikit-learn version), from which the
  same model is trained again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import shapely
import sklearn
from numpy.typing import NDArray
from pyproj import CRS
from pyproj.exceptions import CRSError
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon
from shapely.validation import explain_validity
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import StratifiedGroupKFold

from pipeline import boundaries, indices
from pipeline.bands import BANDS
from pipeline.classify import drop_thin_regions, grow_mixed_edges, valid_pixels
from pipeline.errors import TrainingDataError
from pipeline.export import gpkg
from pipeline.grid import Grid, reproject_geometry
from pipeline.masking import open_mask
from pipeline.recipe import RecipeParams, coal_with_rim
from pipeline.results import SeasonEvidence, SiteYear

logger = logging.getLogger(__name__)

__all__ = [
    "CLASSES",
    "FEATURE_NAMES",
    "FOOTPRINT_CLASSES",
    "GREEN_FEATURE",
    "TEMPLATE_LAYER",
    "Prediction",
    "TrainedModel",
    "TrainingDataError",
    "TrainingPolygon",
    "TrainingPolygons",
    "TrainingSet",
    "feature_names",
    "features",
    "labelled_pixels",
    "predict",
    "read_training_polygons",
    "reclassify_site_years",
    "train",
    "train_on_image",
    "train_on_site_years",
    "training_qml",
    "write_training_template",
]

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float32]

#: Allowed values of the ``class`` field, in the order classes are numbered.
CLASSES: tuple[str, ...] = ("footprint", "coal", "other", "water", "vegetation")
#: Classes that are footprint in the maps (coal is footprint too, as in the rules).
FOOTPRINT_CLASSES: frozenset[str] = frozenset({"footprint", "coal"})
_CLASS_HELP = (
    "footprint (built, bare or spoil ground that is not coal), coal, other, water or "
    "vegetation (the last two are kinds of other)"
)
TEMPLATE_LAYER = "training"
#: What :func:`features` computes per pixel from reflectance, in order (``seen_green`` follows
#: when a season's greenness is given).
FEATURE_NAMES: tuple[str, ...] = (
    *BANDS, "ndvi", "ndbi", "mndwi", "bsi", "nbr", "brightness", "swir16_minus_blue",
    "nir_texture",
)  # fmt: skip
GREEN_FEATURE = "seen_green"
#: A polygon gives at most this many (seeded, randomly chosen) pixels to the training set.
MAX_PIXELS_PER_POLYGON = 300
#: Random forest settings (judgement: 100 trees are stable to the second decimal on a few
#: thousand pixels; leaves of 2 pixels keep single noisy pixels from making their own rule).
N_ESTIMATORS = 100
MIN_SAMPLES_LEAF = 2
#: Folds of the grouped cross-validation (fewer when a class has fewer polygons).
CV_FOLDS = 5
#: Years a ``year`` field may hold (Landsat 1 to far ahead).
YEAR_RANGE = (1972, 2100)
_PREDICT_CHUNK = 262_144  # pixels per predict_proba call: bounds memory on large grids


# --- Reading polygons -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingPolygon:
    """One labelled polygon: its feature id in the file, class, year (None when the file has
    none and none is needed), site id (None: any site it lies on) and geometry in ``crs``."""

    fid: int
    label: str
    year: int | None
    site_id: str | None
    geometry: Polygon | MultiPolygon
    crs: str


@dataclass(frozen=True)
class TrainingPolygons:
    """What a training file holds: where it came from (path, layer, SHA-256 of its bytes) and
    its polygons in file order."""

    path: Path
    layer: str
    sha256: str
    polygons: tuple[TrainingPolygon, ...]

    @property
    def where(self) -> str:
        return f"{self.path}, layer {self.layer}"


def read_training_polygons(
    path: str | os.PathLike[str], *, layer: str | None = None, year_required: bool = True
) -> TrainingPolygons:
    """Read and check the training polygons of a GeoPackage layer or GeoJSON file.

    ``layer``: the layer to read; without it the file must hold one layer with geometry.
    Fields are matched ignoring case: ``class`` (required; :data:`CLASSES`, case and blanks
    ignored), ``year`` (the season composite the polygon was drawn on; required unless
    ``year_required`` is False, as for ``compare``), ``site_id`` (optional). Geometries must be
    valid, non-empty (Multi)Polygons in a layer with a CRS (GeoJSON without one is
    EPSG:4326). Anything else is a :class:`TrainingDataError` naming the file, layer, feature
    id, field, value and what is allowed.
    """
    source = Path(path)
    if not source.is_file():
        raise TrainingDataError(
            f"{source}: no such file; draw training polygons in QGIS (sitewatch "
            "training-template writes an empty GeoPackage to start from)"
        )
    try:
        listed = pyogrio.list_layers(source)
    except (pyogrio.errors.DataSourceError, OSError) as exc:
        raise TrainingDataError(
            f"{source}: not a GeoPackage or GeoJSON file GDAL can read ({exc})"
        ) from None
    names = [str(n) for n, _ in listed]
    if layer is None:
        spatial = [str(n) for n, g in listed if g is not None]
        if len(spatial) != 1:
            raise TrainingDataError(
                f"{source}: {len(spatial)} layers with geometry ({', '.join(spatial) or 'none'}); "
                "give the layer of training polygons (--training-layer)"
            )
        layer = spatial[0]
    elif layer not in names:
        raise TrainingDataError(
            f"{source}: layer {layer!r} not found; layers in the file: {', '.join(names)}"
        )
    where = f"{source}, layer {layer}"
    try:
        frame = pyogrio.read_dataframe(source, layer=layer, fid_as_index=True, force_2d=True)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError) as exc:
        raise TrainingDataError(f"{where}: cannot read ({exc})") from None
    if not isinstance(frame, gpd.GeoDataFrame):
        raise TrainingDataError(f"{where}: the layer has no geometry; draw polygons")
    if frame.empty:
        raise TrainingDataError(f"{where}: no feature; draw polygons of each class")
    crs = _layer_crs(where, frame, source)
    columns = {str(c).lower(): str(c) for c in frame.columns if c != frame.geometry.name}
    class_col = columns.get("class")
    if class_col is None:
        raise TrainingDataError(
            f"{where}: no field 'class' (fields: {', '.join(columns.values()) or 'none'}); add a "
            f"text field class holding {_CLASS_HELP}"
        )
    year_col, site_col = columns.get("year"), columns.get("site_id")
    if year_col is None and year_required:
        raise TrainingDataError(
            f"{where}: no field 'year' (fields: {', '.join(columns.values())}); add an integer "
            "field year: the year of the season composite each polygon was drawn on"
        )
    polygons = []
    for fid, row in frame.iterrows():
        at = f"{where}, feature {fid}"
        label = _text(row[class_col])
        if label is None or label.lower() not in CLASSES:
            raise TrainingDataError(
                f"{at}: field {class_col} is {_shown(row[class_col])}; allowed {_CLASS_HELP}"
            )
        year = _year(at, year_col, row[year_col] if year_col else None, year_required)
        site_id = _text(row[site_col]) if site_col else None
        geometry = _polygon(at, row[frame.geometry.name])
        polygons.append(TrainingPolygon(int(fid), label.lower(), year, site_id, geometry, crs))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    return TrainingPolygons(source, layer, digest, tuple(polygons))


def _layer_crs(where: str, frame: gpd.GeoDataFrame, source: Path) -> str:
    if frame.crs is None:
        if source.suffix.lower() in (".geojson", ".json"):
            return "EPSG:4326"  # RFC 7946
        raise TrainingDataError(
            f"{where}: the layer has no CRS; set it in QGIS (Layer Properties > Source) and "
            "save again"
        )
    try:
        crs = CRS.from_user_input(frame.crs)
    except CRSError as exc:
        raise TrainingDataError(f"{where}: unusable CRS ({exc})") from None
    authority = crs.to_authority()
    return f"{authority[0]}:{authority[1]}" if authority else str(crs.to_wkt())


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    text = str(value).strip()
    return text or None


def _shown(value: Any) -> str:
    text = _text(value)
    return "empty" if text is None else repr(text)


def _year(where: str, column: str | None, value: Any, required: bool) -> int | None:
    text = _text(value)
    if text is None:
        if required:
            raise TrainingDataError(
                f"{where}: field {column or 'year'} is empty; allowed a year "
                f"{YEAR_RANGE[0]}..{YEAR_RANGE[1]} (the season composite the polygon was drawn on)"
            )
        return None
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not (number.is_integer() and YEAR_RANGE[0] <= number <= YEAR_RANGE[1]):
        raise TrainingDataError(
            f"{where}: field {column} is {text!r}; allowed a whole year "
            f"{YEAR_RANGE[0]}..{YEAR_RANGE[1]} (the season composite the polygon was drawn on)"
        )
    return int(number)


def _polygon(where: str, geometry: Any) -> Polygon | MultiPolygon:
    if geometry is None or geometry.is_empty:
        raise TrainingDataError(f"{where}: geometry is empty; allowed a Polygon or MultiPolygon")
    if not isinstance(geometry, Polygon | MultiPolygon):
        raise TrainingDataError(
            f"{where}: geometry is a {geometry.geom_type}; allowed a Polygon or MultiPolygon "
            "(draw areas, not points or lines)"
        )
    if not geometry.is_valid:
        raise TrainingDataError(
            f"{where}: geometry is invalid ({explain_validity(geometry)}); fix it in QGIS "
            "(Vector > Geometry Tools > Check Validity, or Fix Geometries)"
        )
    return geometry


# --- Features and training pixels -----------------------------------------------------------


def feature_names(with_green: bool) -> tuple[str, ...]:
    """The names of :func:`features`' rows, with or without ``seen_green``."""
    return (*FEATURE_NAMES, GREEN_FEATURE) if with_green else FEATURE_NAMES


def features(reflectance: FloatArray, seen_green: BoolArray | None = None) -> FloatArray:
    """Per-pixel features of an image (band, y, x) in :func:`feature_names` order, shaped
    (feature, y, x), float32: the six bands, NDVI, NDBI, MNDWI, BSI, NBR, mean brightness, SWIR1
    minus blue (positive for coal, negative for shadow) and the standard deviation of NIR over
    a 3 x 3 square (texture: buildings and spoil are rough, fields and water smooth), then, when
    given, ``seen_green`` as 0/1: ground the season saw green (a late-season composite alone
    cannot tell a harvested field from a yard). NaN where the image has none (or a ratio is
    undefined) becomes 0: only valid pixels are classified."""
    r = np.asarray(reflectance, np.float32)
    nir = indices.band(r, "nir")
    finite = np.isfinite(nir)
    filled = np.where(finite, nir, 0.0).astype(np.float64)
    weight = ndimage.uniform_filter(finite.astype(np.float64), 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = ndimage.uniform_filter(filled, 3) / weight
        square = ndimage.uniform_filter(filled * filled, 3) / weight
        texture = np.sqrt(np.maximum(square - mean * mean, 0.0))
    stack = np.stack(
        [
            *r,
            indices.ndvi(r),
            indices.ndbi(r),
            indices.mndwi(r),
            indices.bsi(r),
            indices.nbr(r),
            r.mean(axis=0),
            indices.band(r, "swir16") - indices.band(r, "blue"),
            texture.astype(np.float32),
            *([] if seen_green is None else [seen_green.astype(np.float32)]),
        ]
    ).astype(np.float32)
    return np.nan_to_num(stack, nan=0.0, posinf=0.0, neginf=0.0)


@dataclass(frozen=True)
class TrainingSet:
    """Labelled pixels: ``features`` (n, feature), ``labels`` (n,) class names, ``groups`` (n,)
    the polygon each pixel came from (an index into ``polygons``), and per polygon the pixels
    it covered with data (before the per-polygon cap)."""

    features: NDArray[np.float32]
    labels: NDArray[np.str_]
    groups: NDArray[np.int64]
    polygons: tuple[TrainingPolygon, ...]
    covered: tuple[int, ...]
    feature_names: tuple[str, ...] = FEATURE_NAMES


def labelled_pixels(
    reflectance: FloatArray,
    valid: BoolArray,
    grid: Grid,
    polygons: Sequence[TrainingPolygon],
    *,
    where: str,
    seed: int = 0,
    seen_green: BoolArray | None = None,
) -> TrainingSet:
    """The training pixels of ``polygons`` on one image (band, y, x) on ``grid``: pixels whose
    centre lies in a polygon and that are ``valid`` and finite, at most
    :data:`MAX_PIXELS_PER_POLYGON` per polygon (seeded choice), with their :func:`features`
    (``seen_green`` included when given). ``where`` names the file and
    layer for errors: a polygon that covers no pixel centre of the grid, or pixels claimed by
    two polygons of different classes, is a :class:`TrainingDataError`; one whose pixels are
    all without data (clouds) is left out with a warning."""
    ok = valid & valid_pixels(reflectance)
    owner = np.full(grid.shape, -1, np.int64)
    chosen: list[tuple[int, NDArray[np.intp]]] = []
    covered = []
    rng = np.random.default_rng(seed)
    for i, poly in enumerate(polygons):
        geom = reproject_geometry(poly.geometry, poly.crs, grid.crs)
        burned = boundaries.rasterize([geom], grid.transform, grid.shape)
        if not burned.any():
            raise TrainingDataError(
                f"{where}, feature {poly.fid}: the polygon covers no pixel centre of the "
                f"{grid.resolution:g} m grid (bounds {_bounds(grid)} in {grid.crs}); draw it "
                "larger, over the imagery"
            )
        clash = burned & (owner >= 0)
        if clash.any():
            others = {polygons[j] for j in np.unique(owner[clash])}
            bad = sorted(p.fid for p in others if p.label != poly.label)
            if bad:
                raise TrainingDataError(
                    f"{where}, feature {poly.fid} ({poly.label}) overlaps feature(s) {bad} of "
                    "another class; a pixel can have one class: fix the polygons"
                )
            burned &= owner < 0
        owner[burned] = i
        flat = np.flatnonzero((burned & ok).ravel())
        covered.append(int(flat.size))
        if flat.size == 0:
            logger.warning(
                "%s, feature %d: no pixel with data (clouds?); not used", where, poly.fid
            )
            continue
        if flat.size > MAX_PIXELS_PER_POLYGON:
            flat = np.sort(rng.choice(flat, MAX_PIXELS_PER_POLYGON, replace=False))
        chosen.append((i, flat))
    names = feature_names(seen_green is not None)
    stack = features(reflectance, seen_green).reshape(len(names), -1)
    if not chosen:
        rows = np.empty((0, len(names)), np.float32)
        return TrainingSet(rows, np.empty(0, "<U10"), np.empty(0, np.int64), tuple(polygons),
                           tuple(covered), names)  # fmt: skip
    pixels = np.concatenate([flat for _, flat in chosen])
    groups = np.concatenate([np.full(flat.size, i, np.int64) for i, flat in chosen])
    labels = np.array([polygons[i].label for i in groups], dtype="<U10")
    return TrainingSet(
        np.ascontiguousarray(stack[:, pixels].T), labels, groups, tuple(polygons),
        tuple(covered), names,
    )  # fmt: skip


def _bounds(grid: Grid) -> str:
    return "(" + ", ".join(f"{v:.0f}" for v in grid.bounds) + ")"


def _concatenate(sets: Sequence[TrainingSet]) -> TrainingSet:
    """One training set of several with the same features (polygon indices renumbered into the
    joined polygons)."""
    names = sets[0].feature_names if sets else FEATURE_NAMES
    assert all(s.feature_names == names for s in sets)
    offset, groups = 0, []
    polys: list[TrainingPolygon] = []
    covered: list[int] = []
    for s in sets:
        groups.append(s.groups + offset)
        offset += len(s.polygons)
        polys += s.polygons
        covered += s.covered
    return TrainingSet(
        np.concatenate([s.features for s in sets])
        if sets
        else np.empty((0, len(names)), np.float32),
        np.concatenate([s.labels for s in sets]) if sets else np.empty(0, "<U10"),
        np.concatenate(groups) if groups else np.empty(0, np.int64),
        tuple(polys),
        tuple(covered),
        names,
    )


# --- Training -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainedModel:
    """A fitted classifier with its class names (the estimator's order), feature names and
    provenance (JSON-ready, for the manifest)."""

    estimator: RandomForestClassifier
    classes: tuple[str, ...]
    feature_names: tuple[str, ...]
    provenance: Mapping[str, Any]


def _forest(seed: int) -> RandomForestClassifier:
    return RandomForestClassifier(
        n_estimators=N_ESTIMATORS,
        min_samples_leaf=MIN_SAMPLES_LEAF,
        class_weight="balanced",
        random_state=seed,
        n_jobs=1,
    )


def train(
    training: TrainingSet, *, seed: int = 0, source: TrainingPolygons | None = None
) -> TrainedModel:
    """Fit a random forest on ``training`` and cross-validate it by polygon.

    Needs pixels of at least one footprint class (``footprint`` or ``coal``) and of at least one
    other class: a model that never saw one side cannot draw the line. ``source``, when given,
    puts the file's path, layer and SHA-256 into the provenance."""
    where = source.where if source is not None else "training polygons"
    present = [c for c in CLASSES if np.any(training.labels == c)]
    if not set(present) & FOOTPRINT_CLASSES or not set(present) - FOOTPRINT_CLASSES:
        raise TrainingDataError(
            f"{where}: pixels with data of classes {present or 'none'}; training needs at least "
            "one of footprint or coal and one of other, water or vegetation"
        )
    estimator = _forest(seed).fit(training.features, _codes(training.labels))
    classes = tuple(CLASSES[int(c)] for c in estimator.classes_)
    provenance: dict[str, Any] = {
        "mode": "supervised",
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "estimator_params": {
            "n_estimators": N_ESTIMATORS,
            "min_samples_leaf": MIN_SAMPLES_LEAF,
            "class_weight": "balanced",
            "random_state": seed,
            "n_jobs": 1,
        },
        "sklearn_version": sklearn.__version__,
        "features": list(training.feature_names),
        "max_pixels_per_polygon": MAX_PIXELS_PER_POLYGON,
        "classes": _class_counts(training, present),
        "validation": _cross_validate(training, seed),
    }
    if source is not None:
        provenance = {
            "training_file": str(source.path),
            "training_layer": source.layer,
            "training_sha256": source.sha256,
            **provenance,
        }
    return TrainedModel(estimator, classes, training.feature_names, provenance)


def _class_counts(training: TrainingSet, present: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in present:
        used = training.groups[training.labels == c]
        polys = [i for i, p in enumerate(training.polygons) if p.label == c]
        out[c] = {
            "polygons": len(polys),
            "polygons_with_data": int(np.unique(used).size),
            "pixels_covered": sum(training.covered[i] for i in polys),
            "pixels_used": int(used.size),
        }
    return out


def _codes(labels: NDArray[np.str_]) -> NDArray[np.int64]:
    """Class names as their index into :data:`CLASSES` (integer targets fit faster)."""
    index = {c: i for i, c in enumerate(CLASSES)}
    return np.array([index[str(c)] for c in labels], np.int64)


def _map_class(labels: NDArray[np.str_]) -> NDArray[np.str_]:
    """Labels as the maps know them: ``footprint``, ``coal`` or ``other``."""
    return np.where(np.isin(labels, list(FOOTPRINT_CLASSES)), labels, "other").astype(labels.dtype)


def _cross_validate(training: TrainingSet, seed: int) -> dict[str, Any]:
    """Accuracy on polygons held out whole (``StratifiedGroupKFold``, stratified by map class:
    footprint, coal, other), pooled over the folds: overall and balanced (mean recall) accuracy
    over the map classes, footprint-or-not accuracy, recall per map class."""
    truth = _map_class(training.labels)
    per_class = {str(c): np.unique(training.groups[truth == c]).size for c in np.unique(truth)}
    folds = min(CV_FOLDS, *per_class.values())
    if folds < 2:
        few = sorted(c for c, n in per_class.items() if n < 2)
        return {
            "method": None,
            "note": f"no cross-validation: classes {few} have fewer than 2 polygons with data; "
            "draw at least 2 (better 5 or more) per class",
        }
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = np.empty_like(truth)
    for fit_idx, test_idx in splitter.split(training.features, truth, training.groups):
        fold = _forest(seed).fit(training.features[fit_idx], _codes(training.labels[fit_idx]))
        names = np.array(CLASSES)[fold.predict(training.features[test_idx])]
        predicted[test_idx] = _map_class(names)
    recall = {c: round(float(np.mean(predicted[truth == c] == c)), 4) for c in per_class}
    is_fp = np.isin(truth, list(FOOTPRINT_CLASSES))
    said_fp = np.isin(predicted, list(FOOTPRINT_CLASSES))
    return {
        "method": f"StratifiedGroupKFold by polygon, {folds} folds, pooled",
        "overall_accuracy": round(float(np.mean(predicted == truth)), 4),
        "balanced_accuracy": round(float(np.mean(list(recall.values()))), 4),
        "footprint_accuracy": round(float(np.mean(is_fp == said_fp)), 4),
        "recall": recall,
        "pixels": int(truth.size),
    }


def train_on_image(
    reflectance: FloatArray,
    grid: Grid,
    polygons: TrainingPolygons,
    *,
    valid: BoolArray | None = None,
    seed: int = 0,
) -> TrainedModel:
    """A model trained on one image (band, y, x) on ``grid`` (``compare``'s BEFORE): every
    polygon of ``polygons`` regardless of its year or site."""
    ok = valid_pixels(reflectance) if valid is None else valid
    training = labelled_pixels(
        reflectance, ok, grid, polygons.polygons, where=polygons.where, seed=seed
    )
    return train(training, seed=seed, source=polygons)


def train_on_site_years(
    site_years: Iterable[SiteYear],
    polygons: TrainingPolygons,
    grids: Mapping[str, Grid],
    *,
    seed: int = 0,
) -> TrainedModel:
    """A model trained on the season composites of a run: each polygon on the composite of its
    ``year`` at its ``site_id`` (``grids``: each site's grid). A polygon without a site id
    belongs to the first site (in ``grids`` order) whose grid contains it. A polygon of an
    unknown site, of no site's grid, or of a year without a composite there is a
    :class:`TrainingDataError`."""
    by_key = {(sy.site_id, sy.year): sy for sy in site_years}
    assigned: dict[tuple[str, int], list[TrainingPolygon]] = {}
    for poly in polygons.polygons:
        at = f"{polygons.where}, feature {poly.fid}"
        if poly.year is None:
            raise TrainingDataError(
                f"{at}: field year is empty; a run needs the year of the season composite the "
                "polygon was drawn on"
            )
        site = poly.site_id or _site_containing(poly, grids)
        if site is None:
            raise TrainingDataError(
                f"{at}: the polygon lies on no site's grid (sites {', '.join(grids)}); draw it "
                "on a site's imagery or fill site_id"
            )
        if site not in grids:
            raise TrainingDataError(
                f"{at}: field site_id is {site!r}; allowed the run's sites: {', '.join(grids)}"
            )
        sy = by_key.get((site, poly.year))
        if sy is None or sy.composite is None:
            years = sorted(y for s, y in by_key if s == site and by_key[(s, y)].composite)
            raise TrainingDataError(
                f"{at}: field year is {poly.year}, but {site} has no season composite that year; "
                f"allowed {', '.join(map(str, years)) or 'none'}"
            )
        assigned.setdefault((site, poly.year), []).append(poly)
    used = [by_key[k] for k in sorted(assigned)]
    # The season's greenness is a feature only when every training site-year has it.
    with_green = all(sy.evidence is not None for sy in used)
    sets = []
    for sy, polys in zip(used, (assigned[k] for k in sorted(assigned)), strict=True):
        assert sy.composite is not None
        green = sy.evidence.vegetated if with_green and sy.evidence is not None else None
        sets.append(
            labelled_pixels(
                sy.composite.reflectance, sy.valid, grids[sy.site_id], polys,
                where=polygons.where, seed=seed, seen_green=green,
            )
        )  # fmt: skip
    model = train(_concatenate(sets), seed=seed, source=polygons)
    return replace(
        model,
        provenance={**model.provenance, "site_years": [f"{s} {y}" for s, y in sorted(assigned)]},
    )


def _site_containing(poly: TrainingPolygon, grids: Mapping[str, Grid]) -> str | None:
    for site, grid in grids.items():
        geom = reproject_geometry(poly.geometry, poly.crs, grid.crs)
        if shapely.box(*grid.bounds).contains(geom):
            return site
    return None


# --- Prediction -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """Maps of one image: ``footprint`` and ``coal_mask`` after the recipe's clean-up, and
    ``probability``, the model's probability of footprint or coal (NaN where not valid)."""

    footprint: BoolArray
    coal_mask: BoolArray
    probability: FloatArray


def class_probabilities(
    model: TrainedModel,
    reflectance: FloatArray,
    valid: BoolArray,
    seen_green: BoolArray | None = None,
) -> dict[str, FloatArray]:
    """The model's probability of each of its classes per pixel (y, x), NaN where not valid
    (``valid`` and every band finite). ``seen_green`` is used when the model was trained with
    it; without it such a model takes no pixel as seen green."""
    ok = valid & valid_pixels(reflectance)
    green = None
    if GREEN_FEATURE in model.feature_names:
        green = seen_green if seen_green is not None else np.zeros(ok.shape, bool)
    stack = features(reflectance, green).reshape(len(model.feature_names), -1)
    where = np.flatnonzero(ok.ravel())
    out = np.full((len(model.classes), ok.size), np.nan, np.float32)
    for start in range(0, where.size, _PREDICT_CHUNK):
        idx = where[start : start + _PREDICT_CHUNK]
        out[:, idx] = model.estimator.predict_proba(stack[:, idx].T).T
    return {c: out[i].reshape(ok.shape) for i, c in enumerate(model.classes)}


def predict(
    model: TrainedModel,
    reflectance: FloatArray,
    valid: BoolArray,
    *,
    pixel_area_ha: float,
    params: RecipeParams | None = None,
    seen_green: BoolArray | None = None,
) -> Prediction:
    """Footprint and coal of one image (band, y, x) by ``model``, cleaned up as
    ``recipe.classify`` cleans the rules' masks with ``params`` (default ``RecipeParams()``):
    coal regions thinner than ``coal_opening_px`` dropped, rim pixels restored by unmixing,
    the minimum mapping unit; footprint opened by ``footprint_opening_px``, its rim restored,
    joined with coal, the minimum mapping unit. ``seen_green``: ground the season saw green
    (``SeasonEvidence.vegetated``), a feature of models trained with it and never footprint,
    as in the rules."""
    params = params if params is not None else RecipeParams()
    ok = valid & valid_pixels(reflectance)
    not_footprint = seen_green
    probs = class_probabilities(model, reflectance, ok, seen_green)
    zero = np.zeros(ok.shape, np.float32)
    p_fp, p_coal = probs.get("footprint", zero), probs.get("coal", zero)
    with np.errstate(invalid="ignore"):
        p_any = np.asarray(p_fp + p_coal, np.float32)
        raw_fp = ok & (p_any >= 0.5)
        raw_coal = raw_fp & (p_coal > p_fp)
    if not_footprint is not None:
        raw_fp &= ~not_footprint
        raw_coal &= ~not_footprint
    min_px = boundaries.min_pixels_for_area(params.min_mapping_unit_ha, pixel_area_ha)
    coal_core = drop_thin_regions(raw_coal, params.coal_opening_px, pin_holes=True)
    coal_mask = boundaries.remove_small_regions(
        coal_with_rim(coal_core, reflectance, params) & ok, min_px
    )
    core = open_mask(raw_fp, params.footprint_opening_px)
    grown = grow_mixed_edges(core, reflectance, min_fraction=params.footprint_edge_fraction)
    if not_footprint is not None:
        grown &= ~not_footprint
    footprint = boundaries.remove_small_regions((grown | coal_mask) & ok, min_px)
    return Prediction(footprint, coal_mask, np.where(ok, p_any, np.nan).astype(np.float32))


def reclassify_site_years(
    site_years: Sequence[SiteYear],
    model: TrainedModel,
    pixel_area_ha: float,
    params: RecipeParams | None = None,
) -> list[SiteYear]:
    """``site_years`` with footprint and coal mask from ``model`` on each season composite
    (:func:`predict`), everything else kept; a site-year without a composite is returned as it
    is. Ground its season evidence saw green (``SeasonEvidence.vegetated``) is a feature (for a
    model trained with it) and stays out of the footprint, as in the rules; the evidence is
    brought in line with the new footprint:
    ``vegetated`` and ``field`` lose what is now footprint, ``unconfirmed`` keeps only what is
    still footprint."""
    out = []
    for sy in site_years:
        if sy.composite is None:
            out.append(sy)
            continue
        green = sy.evidence.vegetated if sy.evidence is not None else None
        pred = predict(
            model, sy.composite.reflectance, sy.valid, pixel_area_ha=pixel_area_ha,
            params=params, seen_green=green,
        )  # fmt: skip
        evidence = sy.evidence
        if evidence is not None:
            evidence = SeasonEvidence(
                vegetated=evidence.vegetated & ~pred.footprint,
                field=evidence.field & ~pred.footprint,
                ambiguous=evidence.ambiguous & ~pred.footprint,
                unconfirmed=evidence.unconfirmed & pred.footprint,
            )
        out.append(
            replace(sy, footprint=pred.footprint, coal_mask=pred.coal_mask, evidence=evidence)
        )
    return out


# --- The QGIS template ----------------------------------------------------------------------

_CLASS_COLOURS = {
    "footprint": ("230,85,13", "footprint, not coal (built, bare, spoil)"),
    "coal": ("20,20,20", "coal stockpile"),
    "other": ("120,120,120", "other"),
    "water": ("49,130,189", "other: water"),
    "vegetation": ("49,163,84", "other: vegetation, fields"),
}


def training_qml() -> str:
    """The default QGIS style of the ``training`` layer: polygons outlined in their class's
    colour (the imagery stays visible), a drop-down of :data:`CLASSES` for ``class``."""
    cats, symbols, values = [], [], []
    for i, (cls, (rgb, label)) in enumerate(_CLASS_COLOURS.items()):
        cats.append(f'      <category value="{cls}" symbol="{i}" label="{label}" render="true"/>')
        symbols.append(
            f'      <symbol type="fill" name="{i}" alpha="1" clip_to_extent="1" force_rhr="0">\n'
            '        <layer class="SimpleFill" enabled="1" locked="0" pass="0">\n'
            f'          <prop k="color" v="{rgb},60"/>\n'
            f'          <prop k="outline_color" v="{rgb},255"/>\n'
            '          <prop k="outline_style" v="solid"/>\n'
            '          <prop k="outline_width" v="0.6"/>\n'
            '          <prop k="outline_width_unit" v="MM"/>\n'
            '          <prop k="style" v="solid"/>\n'
            "        </layer>\n"
            "      </symbol>"
        )
        values.append(
            '              <Option type="Map">'
            f'<Option name="{label}" value="{cls}" type="QString"/></Option>'
        )
    n = len(_CLASS_COLOURS)
    symbols.append(
        f'      <symbol type="fill" name="{n}" alpha="1" clip_to_extent="1" force_rhr="0">\n'
        '        <layer class="SimpleFill" enabled="1" locked="0" pass="0">\n'
        '          <prop k="color" v="255,0,255,40"/>\n'
        '          <prop k="outline_color" v="255,0,255,255"/>\n'
        '          <prop k="outline_style" v="dash"/>\n'
        '          <prop k="outline_width" v="0.6"/>\n'
        '          <prop k="outline_width_unit" v="MM"/>\n'
        '          <prop k="style" v="solid"/>\n'
        "        </layer>\n"
        "      </symbol>"
    )
    text_widget = '<editWidget type="TextEdit"><config><Option/></config></editWidget>'
    nl = "\n"
    return f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- sitewatch training polygons (sitewatch training-template): outlined by class, a drop-down
     of the allowed classes. Draw small polygons inside ground that is clearly one class, on the
     season composite of the year you fill in. -->
<qgis version="3.22.16-Białowieża" styleCategories="Symbology|Fields|Forms|AttributeTable">
  <renderer-v2 type="categorizedSymbol" attr="class" forceraster="0" symbollevels="0" enableorderby="0" referencescale="-1">
    <categories>
{nl.join(cats)}
      <category value="" symbol="{n}" label="class not set" render="true"/>
    </categories>
    <symbols>
{nl.join(symbols)}
    </symbols>
  </renderer-v2>
  <fieldConfiguration>
    <field name="class" configurationFlags="None">
      <editWidget type="ValueMap">
        <config>
          <Option type="Map">
            <Option name="map" type="List">
{nl.join(values)}
            </Option>
          </Option>
        </config>
      </editWidget>
    </field>
    <field name="year" configurationFlags="None">
      <editWidget type="Range"><config><Option type="Map"><Option name="Min" value="{YEAR_RANGE[0]}" type="int"/><Option name="Max" value="{YEAR_RANGE[1]}" type="int"/><Option name="Step" value="1" type="int"/><Option name="Style" value="SpinBox" type="QString"/><Option name="AllowNull" value="true" type="bool"/></Option></config></editWidget>
    </field>
    <field name="site_id" configurationFlags="None">
      {text_widget}
    </field>
    <field name="note" configurationFlags="None">
      <editWidget type="TextEdit"><config><Option type="Map"><Option name="IsMultiline" value="true" type="bool"/></Option></config></editWidget>
    </field>
  </fieldConfiguration>
  <aliases>
    <alias field="class" index="0" name="class"/>
    <alias field="year" index="1" name="year of the composite"/>
    <alias field="site_id" index="2" name="site id (optional)"/>
    <alias field="note" index="3" name="note"/>
  </aliases>
  <constraints>
    <constraint field="class" constraints="1" notnull_strength="1" unique_strength="0" exp_strength="0"/>
  </constraints>
  <layerGeometryType>2</layerGeometryType>
</qgis>
"""


def write_training_template(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write an empty GeoPackage for training polygons (layer :data:`TEMPLATE_LAYER`, Polygon
    geometry in EPSG:4326, which QGIS reprojects onto any map; fields ``class``, ``year``,
    ``site_id``, ``note``; the default style of :func:`training_qml`) atomically; return the
    path. Every call writes the same bytes. An existing file may hold an analyst's polygons: it
    is replaced only with ``overwrite``."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise TrainingDataError(
            f"{target}: exists and may hold training polygons; choose another path, or "
            "--force to replace it"
        )
    frame = gpd.GeoDataFrame(
        {
            "class": pd.Series([], dtype=object),
            "year": pd.Series([], dtype="int32"),
            "site_id": pd.Series([], dtype=object),
            "note": pd.Series([], dtype=object),
        },
        geometry=gpd.GeoSeries([], crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    return gpkg.write_geopackage(
        target,
        {TEMPLATE_LAYER: frame},
        {TEMPLATE_LAYER: training_qml()},
        geometry_types={TEMPLATE_LAYER: "Polygon"},
    )
