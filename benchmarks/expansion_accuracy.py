"""Boundary-expansion accuracy on synthetic scenarios the classifier was NOT tuned on (the demo
is seed 42): per seed, the demo camp's first-last expansion against the truth's (added area,
main direction, reach, per-sector error of the maximum outward displacement), and the largest
false expansion on the control site.

Run: .venv/bin/python benchmarks/expansion_accuracy.py [SEED ...]   (default seeds 1 2 3 5 8;
about a minute per seed on 2 cores: each builds its scenario first)
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from pipeline.demo import demo_config
from pipeline.run import run

DEFAULT_SEEDS = (1, 2, 3, 5, 8)


def main(seeds: tuple[int, ...]) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for seed in seeds:
            config = demo_config(root / f"cfg{seed}", root / f"cache{seed}")
            source = config.source.model_copy(
                update={"scenario": config.source.scenario.model_copy(update={"seed": seed})}
            )
            result = run(config.updated(source=source.model_dump(), workers=2), root / f"run{seed}")
            acc = result.accuracy or {}
            camp = acc["demo-camp"]["summary"]["first_last_expansion"]
            control = acc["demo-control"]["summary"]["max_false_expansion_share"]
            rows.append({"seed": seed, "camp_first_last": camp, "control_false_expansion": control})
    print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main(tuple(int(a) for a in sys.argv[1:]) or DEFAULT_SEEDS)
