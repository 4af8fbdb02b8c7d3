"""Everything a run directory holds, assembled from a ``RunResult``: orchestration only.

The tables are built once (``layers.build_tables``); each format writes what it takes of them
and returns its paths, which the manifest lists. Tables (CSV, ``trends.parquet``), GeoJSON and
``sitewatch.gpkg`` are byte-identical for identical inputs (and library versions): sites in
run order, years ascending, fixed decimals, no timestamps.

The files of each table are in :data:`TABLE_FILES`; ``sitewatch.gpkg`` holds the vector layers
with their default QGIS styles and the trend tables; charts, the report, rasters, ``accuracy.json``
and the manifest come from the result and the trend rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pipeline.bands import BANDS
from pipeline.config import EXECUTION_FIELDS, RunConfig
from pipeline.export.atomic import atomic_write_text
from pipeline.export.charts import write_charts
from pipeline.export.evidence import write_evidence, write_evidence_index
from pipeline.export.geojson import write_feature_collection
from pipeline.export.gpkg import table_layer, write_geopackage
from pipeline.export.layers import (
    OutputTables,
    SampleAreas,
    Table,
    TableOptions,
    build_tables,
)
from pipeline.export.manifest import canonical_json, sha256_file, software_versions, write_manifest
from pipeline.export.project import project_spec_for_run, write_project
from pipeline.export.rasters import write_cog
from pipeline.export.report import write_report
from pipeline.export.site_rasters import write_qgis_rasters
from pipeline.export.styles import style_for
from pipeline.export.tables import write_csv, write_parquet
from pipeline.results import RunResult, SiteAnalysis
from pipeline.sources.base import SceneSource

__all__ = [
    "GEOPACKAGE",
    "TABLE_FILES",
    "ExportOptions",
    "build_manifest",
    "export_options",
    "export_run",
    "write_geojson",
    "write_site_rasters",
    "write_table_csv",
    "write_tables",
]

#: The run's GeoPackage.
GEOPACKAGE = "sitewatch.gpkg"
Format = Literal["geojson", "csv", "parquet"]
#: The files of the tables besides the GeoPackage: (file, table, format), in the order written
#: and listed in the manifest.
TABLE_FILES: tuple[tuple[str, str, Format], ...] = (
    ("footprints.geojson", "footprints", "geojson"),
    ("expansion.geojson", "expansion", "geojson"),
    ("stockpiles.geojson", "stockpiles", "geojson"),
    ("trends.csv", "trends", "csv"),
    ("trends.parquet", "trends", "parquet"),
    ("trend_summary.csv", "trend_summary", "csv"),
    ("trend_events.csv", "trend_events", "csv"),
    ("expansion.csv", "expansion_pairs", "csv"),
    ("expansion_sectors.csv", "expansion_sectors", "csv"),
)


@dataclass(frozen=True)
class ExportOptions:
    """What export needs of a run's config (:func:`export_options` builds it): the run's name
    and config hash (GeoJSON metadata), the tables' options, and whether to write rasters."""

    run_name: str
    config_hash: str
    tables: TableOptions
    write_rasters: bool = True


def export_options(config: RunConfig, sample_areas: SampleAreas | None = None) -> ExportOptions:
    """The :class:`ExportOptions` of ``config``; ``sample_areas``: the sample-based estimates
    read from ``trends.reference_samples`` (``sampling.sample_based_areas``), if any."""
    return ExportOptions(
        run_name=config.name,
        config_hash=config.hash(),
        tables=TableOptions(
            min_clear_observations=config.season.min_clear_observations,
            trends=config.trends,
            sample_areas=sample_areas,
        ),
        write_rasters=config.write_rasters,
    )


def write_geojson(path: Path, table: Table, metadata: Mapping[str, Any]) -> Path:
    """A spatial ``table`` as an RFC 7946 FeatureCollection named after it, floats at its
    columns' decimals (6 where a column declares none), ``metadata`` as the ``sitewatch``
    member."""
    return write_feature_collection(
        path, table.features(), str(table.crs), name=table.name, metadata=metadata,
        float_digits=table.float_digits(),
    )  # fmt: skip


def write_table_csv(path: Path, table: Table) -> Path:
    """``table`` as a CSV file (``tables.write_csv``), floats at its columns' decimals (4 where
    a column declares none), ``json`` cells as JSON text."""
    return write_csv(path, table.flat_rows(), table.column_names, table.float_digits())


def write_tables(out: Path, tables: OutputTables, metadata: Mapping[str, Any]) -> list[Path]:
    """Every file of ``tables`` in ``out``: those of :data:`TABLE_FILES`, then
    ``sitewatch.gpkg`` (the vector layers styled with their packaged QML, the trend tables as
    attribute tables). Return the paths, in that order."""
    writers: dict[Format, Callable[[Path, Table], Path]] = {
        "geojson": lambda path, table: write_geojson(path, table, metadata),
        "csv": write_table_csv,
        "parquet": write_parquet,
    }
    by_name = tables.by_name()
    written = [writers[fmt](out / file, by_name[name]) for file, name, fmt in TABLE_FILES]
    layers = (*tables.vector_layers, *tables.attribute_tables)
    written.append(
        write_geopackage(
            out / GEOPACKAGE,
            {t.name: table_layer(t) for t in layers},
            {t.name: style_for(t.name) for t in tables.vector_layers},
            geometry_types={t.name: "MultiPolygon" for t in tables.vector_layers},
        )
    )
    return written


def export_run(
    result: RunResult,
    source: SceneSource,
    options: ExportOptions,
    progress: Callable[[str, int, int], None],
    folder: Path | None = None,
    carried: Sequence[Path] = (),
) -> None:
    """Write every output of ``result`` into ``folder`` (default ``result.out_dir``; ``run``
    gives its staging folder), then the manifest, which lists paths relative to ``folder``.
    ``carried``: files already in ``folder`` that the manifest lists too (inputs kept with the
    run, such as the demo's sites file)."""
    out = result.out_dir if folder is None else folder
    tables = build_tables(result.sites, options.tables)
    written = write_tables(
        out, tables, {"run": options.run_name, "config_hash": options.config_hash}
    )
    trends, summaries, events = (list(t.rows) for t in tables.attribute_tables)
    charts = write_charts(
        out, trends, summaries, events,
        titles=dict(tables.titles), min_years=options.tables.trends.min_years,
    )  # fmt: skip
    written.extend(charts.values())
    written.append(write_report(out, result, trends, summaries, events, charts))
    if result.accuracy is not None:
        path = out / "accuracy.json"
        atomic_write_text(path, canonical_json(result.accuracy))
        written.append(path)
    total = len(result.sites)
    for n, a in enumerate(result.sites, start=1):
        if options.write_rasters:
            written.extend(write_site_rasters(out, a))
            written.extend(write_qgis_rasters(out, a))
            written.extend(write_evidence(out, a))  # hashes the rasters just written
        progress("writing outputs", n, total)
    if options.write_rasters:
        written.append(write_evidence_index(out, result.sites))
    # Last but the manifest: it opens what is on disk (the GeoPackage's styles, the rasters').
    written.append(
        write_project(
            out / "project.qgs",
            project_spec_for_run(out, [a.site.id for a in result.sites], title=options.run_name),
        )
    )
    write_manifest(
        out / "manifest.json",
        build_manifest(result, source, [*written, *carried], root=out),
    )


def write_site_rasters(out: Path, a: SiteAnalysis) -> list[Path]:
    """Per site-year COGs: footprint, coal frequency, clear count, the composite and its spread
    (median absolute deviation of the clear observations, per band)."""
    paths = []
    folder = out / "rasters" / a.site.id
    for sy in a.years:
        if sy.composite is None or sy.coal is None:
            continue
        stem = folder / f"{a.site.id}_{sy.year}"
        tags = {"site_id": a.site.id, "year": str(sy.year), "window": "/".join(sy.window)}
        outside = ~sy.valid
        # The footprint the areas count: with ground never seen carried from another year.
        unseen = outside if sy.gap_filled is None else outside & ~sy.gap_filled
        fp = np.where(unseen, 255, sy.footprint.astype(np.uint8)).astype(np.uint8)
        freq = np.where(
            outside | ~np.isfinite(sy.coal.frequency), 255, np.round(sy.coal.frequency * 100)
        ).astype(np.uint8)
        refl, mad = sy.composite.reflectance, sy.composite.mad
        # Reflectance x 10000 as Sentinel-2 delivers it; 0 is nodata, so real values start at 1.
        comp = np.where(np.isfinite(refl), np.clip(np.round(refl * 10000), 1, 65535), 0)
        spread = np.where(np.isfinite(mad), np.clip(np.round(mad * 10000), 0, 65534), 65535)
        items: list[tuple[str, np.ndarray[Any, Any], int, list[str]]] = [
            (f"{stem}_footprint.tif", fp, 255, ["footprint"]),
            (f"{stem}_coal_frequency.tif", freq, 255, ["coal_frequency_percent"]),
            (
                f"{stem}_clear_count.tif",
                sy.composite.clear_count.astype(np.int16),
                -1,
                ["clear_count"],
            ),
            (f"{stem}_composite.tif", comp.astype(np.uint16), 0, list(BANDS)),
            (f"{stem}_spread.tif", spread.astype(np.uint16), 65535, [f"{b}_mad" for b in BANDS]),
        ]
        for path, data, nodata, names in items:
            write_cog(Path(path), data, a.grid, nodata=nodata, band_names=names, tags=tags)
            paths.append(Path(path))
    return paths


def build_manifest(
    result: RunResult, source: SceneSource, outputs: Sequence[Path], root: Path | None = None
) -> dict[str, Any]:
    """The manifest of a run; output paths relative to ``root`` (default ``result.out_dir``)."""
    cfg = result.config
    base = result.out_dir if root is None else root
    sites = []
    for a in result.sites:
        sites.append(
            {
                "id": a.site.id,
                "name": a.site.name,
                "source": a.site.source,
                "grid": {
                    "crs": a.grid.crs,
                    "transform": list(a.grid.transform)[:6],
                    "width": a.grid.width,
                    "height": a.grid.height,
                },
                "analysis_area_ha": a.area_ha,
                "years": [
                    {
                        "year": sy.year,
                        "window": list(sy.window),
                        "widened": sy.widened,
                        "median_clear_obs": sy.median_clear,
                        "coverage": sy.coverage,
                        "scenes": [asdict(s) for s in sy.scenes],
                        "registration": (
                            None if sy.registration is None else asdict(sy.registration)
                        ),
                    }
                    for sy in a.years
                ],
            }
        )
    return {
        "sitewatch_manifest": 1,
        "run": cfg.name,
        "config_hash": cfg.hash(),
        "config": json.loads(cfg.model_dump_json(exclude=set(EXECUTION_FIELDS))),
        "sites_file": {"path": str(cfg.sites), "sha256": sha256_file(cfg.sites)},
        "reference_samples": (
            None
            if cfg.trends.reference_samples is None
            else {
                "path": str(cfg.trends.reference_samples),
                "sha256": sha256_file(cfg.trends.reference_samples),
            }
        ),
        "source": {"kind": cfg.source.kind, "name": source.name},
        "classification": result.classification,
        "masks": {
            "scl_masked": list(cfg.masking.scl_masked),
            "scl_dilated": list(cfg.masking.scl_dilated),
            "qa_pixel_masked_bits": list(cfg.masking.qa_pixel_masked_bits),
            "qa_pixel_dilated_bits": list(cfg.masking.qa_pixel_dilated_bits),
            "qa_radsat": cfg.masking.qa_radsat,
            "cloud_dilation_m": cfg.masking.cloud_dilation_m,
            "reasons": "per scene, `mask` gives the share of the site grid per MaskReason",
        },
        "harmonize": cfg.harmonize.to,
        "versions": software_versions(),
        "sites": sites,
        "outputs": [
            {"path": p.relative_to(base).as_posix(), "sha256": sha256_file(p)} for p in outputs
        ],
    }
