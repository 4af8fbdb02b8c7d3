"""The built-in demo: the synthetic scenario with the default config, runnable with no files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.config import RunConfig, config_from_mapping
from pipeline.export.atomic import atomic_write_text
from pipeline.sources.synthetic import DEMO_SITES_GEOJSON

DEMO_YEARS = (2016, 2025)


def demo_mapping(sites_path: str) -> dict[str, Any]:
    """The demo run config as it would be written in YAML (``configs/demo.yaml`` is this)."""
    return {
        "name": "demo",
        "sites": sites_path,
        "years": {"start": DEMO_YEARS[0], "end": DEMO_YEARS[1]},
        "source": {"kind": "synthetic", "scenario": {"seed": 42}},
    }


def demo_config(out_dir: Path, cache_dir: Path | None = None) -> RunConfig:
    """The demo config, with the demo sites written next to the outputs (as provenance)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sites = out_dir / "demo_sites.geojson"
    atomic_write_text(sites, json.dumps(DEMO_SITES_GEOJSON, indent=2) + "\n")
    raw = demo_mapping(str(sites.resolve()))
    raw["output_dir"] = str(out_dir.parent.resolve())
    if cache_dir is not None:
        raw["cache_dir"] = str(cache_dir.resolve())
    return config_from_mapping(raw, origin="built-in demo config")
