"""Run the accuracy suite (issue 8) and print its table and timings: the synthetic hard cases on
seeds never used while tuning, and compare on the real labelled data.

Run: .venv/bin/python benchmarks/accuracy_suite.py [--suite synthetic|real|all] [--seeds 1 7 2024]
     [--cases haze,burn-scar] [--workdir DIR] [--json FILE] [--workers 2]

Without --workdir the scenarios are built in a temporary folder (a few minutes per seed on 2
cores); with it they are cached there and a second run only re-runs the pipeline.
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

from pipeline.accuracy_suite import CASES, DEFAULT_SEEDS, format_table, run_suite


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--suite", choices=("synthetic", "real", "all"), default="all")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--cases", help=f"comma-separated, of: {', '.join(c.name for c in CASES)}")
    parser.add_argument("--workdir", type=Path, help="cache and outputs here (default: temporary)")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    cases = [c for c in args.cases.split(",") if c] if args.cases else None

    def progress(task: str, done: int, total: int) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {task} ({done}/{total})", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        t0, cpu0 = time.perf_counter(), _cpu_s()
        report = run_suite(args.suite, args.seeds, workdir, cases, progress, workers=args.workers)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    print(format_table(report))
    print(f"wall {wall:.0f} s, CPU {cpu:.0f} s (this process and its workers)")
    if args.json:
        args.json.write_text(report.to_json(), encoding="utf-8")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
