"""sitewatch: satellite change detection for camps, coal mines and coal ports.

The public API; heavy modules are imported on first use, so ``import pipeline`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "compare": "pipeline.compare",
    "demo": "pipeline.api",
    "report": "pipeline.api",
    "run_config": "pipeline.api",
    "run": "pipeline.run",
    "load_config": "pipeline.config",
    "RunConfig": "pipeline.config",
    "load_sites": "pipeline.sites",
    "Site": "pipeline.sites",
    "Grid": "pipeline.grid",
    "SyntheticSource": "pipeline.sources.synthetic",
    "ScenarioParams": "pipeline.sources.synthetic",
    "StaticCatalogSource": "pipeline.sources.catalog",
    "StacApiSource": "pipeline.sources.stac_api",
    "FolderSource": "pipeline.sources.folder",
    "SitewatchError": "pipeline.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
