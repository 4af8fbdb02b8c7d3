"""The sitewatch error tree.

Every error names the input it is about, the bad value and what is allowed, so that an analyst can
fix the input without reading code. Subclasses also inherit the matching builtin where one fits
(as rasterio does), so ``except ValueError`` or ``except OSError`` still works for callers.
"""

from __future__ import annotations


class SitewatchError(Exception):
    """Root of every error raised on purpose by sitewatch."""


class ConfigError(SitewatchError, ValueError):
    """A run config is missing, unreadable or invalid."""


class SiteError(SitewatchError, ValueError):
    """A site (AOI) file or feature is invalid."""


class SourceError(SitewatchError, OSError):
    """A scene source (catalog, STAC API, local folder) cannot be searched or read."""


class SceneReadError(SourceError):
    """One scene could not be read; a run skips it and records why."""

    def __init__(self, scene_id: str, reason: str) -> None:
        super().__init__(f"scene {scene_id}: {reason}")
        self.scene_id = scene_id
        self.reason = reason


class InputRasterError(SitewatchError, ValueError):
    """A raster given on the command line (``sitewatch compare``) is unusable."""


class SampleFileError(SitewatchError, ValueError):
    """A reference sample GeoPackage (``sitewatch sample``) is missing, not one sitewatch wrote,
    or badly labelled."""


class TrainingDataError(SitewatchError, ValueError):
    """A training polygon file (supervised mode) is missing, unreadable, or has a bad feature
    or field."""


class SchedulerError(SitewatchError, OSError):
    """The dask scheduler a run was sent to cannot be reached or used."""


class InsufficientDataError(SitewatchError, ValueError):
    """Too few clear observations or years to compute what was asked."""


class OutputError(SitewatchError, OSError):
    """An output or cache folder cannot be written (read-only, full, a file in the way)."""


class RunLockedError(OutputError):
    """Another run holds the output folder's lock."""


class LimitError(SitewatchError, ValueError):
    """An input exceeds a configured limit (site area, grid pixels, asset size, YAML size)."""
