"""The export edge: every file a run writes, atomically and byte-identical on rerun.

A run's layers are declared tables (``pipeline.export.layers``); ``run_outputs.export_run`` hands
them to the writers here and in ``gpkg`` (``sitewatch.gpkg``)."""

from pipeline.export.atomic import atomic_path, atomic_write_bytes, atomic_write_text
from pipeline.export.geojson import write_feature_collection
from pipeline.export.manifest import (
    canonical_json,
    file_checksums,
    sha256_file,
    software_versions,
    write_manifest,
)
from pipeline.export.rasters import write_cog
from pipeline.export.tables import format_float, write_csv, write_parquet

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "canonical_json",
    "file_checksums",
    "format_float",
    "sha256_file",
    "software_versions",
    "write_cog",
    "write_csv",
    "write_feature_collection",
    "write_manifest",
    "write_parquet",
]
