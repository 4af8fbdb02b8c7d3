"""Time the demo: building the synthetic scenario from an empty cache, then the pipeline run with
1 and 2 workers; print the accuracy summary. Goal (issue 2): scenario build < 60 s on 2 cores.

Run: .venv/bin/python benchmarks/demo_timing.py
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from pipeline.api import demo
from pipeline.demo import demo_config
from pipeline.sources.registry import SyntheticSourceConfig
from pipeline.sources.synthetic import SyntheticSource


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = demo_config(root / "cfg", root / "cache")
        assert isinstance(config.source, SyntheticSourceConfig)
        t0 = time.perf_counter()
        catalog = SyntheticSource(config.source.scenario, root / "cache", workers=2).catalog_path
        build = time.perf_counter() - t0
        assert catalog.is_file()
        timings = {"scenario_build_s": round(build, 1)}
        for workers in (1, 2):
            t0 = time.perf_counter()
            result = demo(root / f"run{workers}", workers=workers, cache_dir=root / "cache")
            timings[f"run_workers_{workers}_s"] = round(time.perf_counter() - t0, 1)
        acc = result.accuracy or {}
        # accuracy.json's summary scores years with enough clear observations; also show the
        # worst coal error over every year, flagged ones included.
        summary = {
            site: {
                **a["summary"],
                "max_abs_coal_area_error_all_years": max(
                    abs(y["coal_area_error"] or 0) for y in a["years"].values()
                ),
            }
            for site, a in acc.items()
        }
        print(json.dumps({"timings": timings, "accuracy": summary}, indent=2))


if __name__ == "__main__":
    main()
