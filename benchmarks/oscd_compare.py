"""Score `sitewatch compare` on real labelled Sentinel-2 city pairs (OSCD, Daudt et al. 2018) and
on the Taizhou Landsat 7 pair (Wu, Du & Zhang 2014).

OSCD (``../shared/real-data/oscd-dev``, L1C top-of-atmosphere, EPSG:4326): each city's
``imgs_1`` vs ``imgs_2`` goes through :func:`pipeline.compare.compare` (read onto the UTM zone
of BEFORE's centre at 10 m), and ``change.tif`` and ``expansion.tif`` are carried back onto the
label's grid, the 10 m band grid of ``imgs_1`` (nearest neighbour; compare's no data and pixels
outside its grid count as "no change predicted"). Scored against ``cm.tif`` (1 no change,
2 change) over all its pixels; pooled scores sum TP, FP and FN over the cities, then F1, as the
OSCD papers do. The labels mark urban construction only: other real change (fields, water,
tides) counts as false positives.

``--alpha P [P ...]`` scores compare's ``--alpha`` (the false-alarm rate of each change test)
at each value and prints one line per value: what a stricter test trades on each dataset.

Run: .venv/bin/python benchmarks/oscd_compare.py [--out DIR] [--cities bordeaux,nantes]
     [--alpha 1e-3 1e-6 1e-10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.errors
from rasterio.warp import Resampling, reproject

sys.path.insert(0, str(Path(__file__).resolve().parent))

from taizhou_compare import score as taizhou_score

from pipeline.accuracy import binary_scores
from pipeline.compare import compare
from pipeline.pairwise import ALPHA

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "real-data" / "oscd-dev"
CITIES = ("bordeaux", "hongkong", "mumbai", "nantes")
NODATA = 255


def on_label_grid(path: Path, like: Path) -> np.ndarray:
    """A compare output (0/1, 255 no data) resampled (nearest) onto the grid of ``like``;
    no data and pixels outside the output read as 0 (no change predicted)."""
    with rasterio.open(like) as ref:
        shape, transform, crs = ref.shape, ref.transform, ref.crs
    out = np.full(shape, NODATA, np.uint8)
    with rasterio.open(path) as src:
        reproject(
            source=src.read(1),
            destination=out,
            src_transform=src.transform,
            src_crs=src.crs,
            src_nodata=NODATA,
            dst_transform=transform,
            dst_crs=crs,
            dst_nodata=NODATA,
            resampling=Resampling.nearest,
        )
    return out == 1


def _counts(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    s = binary_scores(pred, truth, np.ones(truth.shape, bool))
    return {
        "tp": s.tp,
        "fp": s.fp,
        "fn": s.fn,
        "precision": round(s.precision, 4),
        "recall": round(s.recall, 4),
        "f1": round(s.f1, 4),
    }


def _pool(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    tp = sum(r["tp"] for r in rows)
    fp = sum(r["fp"] for r in rows)
    fn = sum(r["fn"] for r in rows)
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(p, 4), "recall": round(r, 4),
            "f1": round(f1, 4)}  # fmt: skip


def score_city(city: str, out: Path, data: Path = DATA, alpha: float = ALPHA) -> dict[str, Any]:
    """Change and expansion scores of one OSCD city (counts, precision, recall, F1)."""
    folder = data / city
    t0 = time.perf_counter()
    summary = compare(folder / "imgs_1", folder / "imgs_2", out, scale=1e-4, alpha=alpha)
    seconds = time.perf_counter() - t0
    with warnings.catch_warnings():  # cm.tif has no georeference, by design
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(folder / "cm.tif") as src:
            truth = src.read(1) == 2
    like = folder / "imgs_1" / "B02.tif"
    result: dict[str, Any] = {"seconds": round(seconds, 2)}
    for name in ("change", "expansion"):
        result[name] = _counts(on_label_grid(out / f"{name}.tif", like), truth)
    result["changed_fraction"] = round(summary["changed_pixels"] / summary["valid_pixels"], 4)
    return result


def score_all(
    out: Path, cities: Sequence[str] = CITIES, data: Path = DATA, alpha: float = ALPHA
) -> dict[str, Any]:
    """Per city and pooled OSCD scores."""
    per = {c: score_city(c, out / c, data, alpha) for c in cities}
    pooled = {k: _pool([per[c][k] for c in cities]) for k in ("change", "expansion")}
    return {"cities": per, "pooled": pooled}


def _report(out: Path, cities: Sequence[str], taizhou: bool, alpha: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    report = score_all(out, cities, alpha=alpha)
    report["alpha"] = alpha
    report["oscd_seconds"] = round(time.perf_counter() - t0, 2)
    if taizhou:
        t1 = time.perf_counter()
        report["taizhou"] = taizhou_score(out / "taizhou", alpha)
        report["taizhou"]["seconds"] = round(time.perf_counter() - t1, 2)
    return report


def _print_one(report: dict[str, Any]) -> None:
    for city, r in report["cities"].items():
        for k in ("change", "expansion"):
            s = r[k]
            print(
                f"{city:9s} {k:9s} P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f}"
                f"  ({r['seconds']:.1f} s)"
            )
    for k in ("change", "expansion"):
        s = report["pooled"][k]
        print(f"{'pooled':9s} {k:9s} P {s['precision']:.3f} R {s['recall']:.3f} F1 {s['f1']:.3f}")
    print(f"OSCD: {report['oscd_seconds']:.1f} s")
    if "taizhou" in report:
        t = report["taizhou"]
        print(
            f"taizhou   change    P {t['precision']:.3f} R {t['recall']:.3f} F1 {t['f1']:.3f} "
            f"kappa {t['kappa']:.3f}  ({t['seconds']:.1f} s)"
        )


def _print_sweep(reports: Sequence[dict[str, Any]]) -> None:
    print("alpha    OSCD change P/R/F1     OSCD expansion P/R/F1  Taizhou P/R/kappa")
    for r in reports:
        c, e = r["pooled"]["change"], r["pooled"]["expansion"]
        t = r.get("taizhou")
        tz = f"{t['precision']:.3f} {t['recall']:.3f} {t['kappa']:.3f}" if t else "-"
        print(
            f"{r['alpha']:<8g} {c['precision']:.3f} {c['recall']:.3f} {c['f1']:.3f}    "
            f"{e['precision']:.3f} {e['recall']:.3f} {e['f1']:.3f}    {tz}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="keep outputs here (default: a temp folder)")
    parser.add_argument("--cities", default=",".join(CITIES), help="comma-separated cities")
    parser.add_argument("--no-taizhou", action="store_true", help="skip the Taizhou pair")
    parser.add_argument(
        "--alpha", type=float, nargs="+", default=[ALPHA], metavar="P",
        help=f"compare's --alpha, one run per value (default {ALPHA:g})",
    )  # fmt: skip
    args = parser.parse_args()
    cities = [c for c in args.cities.split(",") if c]
    reports = []
    with tempfile.TemporaryDirectory() as tmp:
        for alpha in args.alpha:
            out = (args.out or Path(tmp)) / (f"alpha-{alpha:g}" if len(args.alpha) > 1 else "")
            reports.append(_report(out, cities, not args.no_taizhou, alpha))
    if len(reports) == 1:
        _print_one(reports[0])
        print(json.dumps(reports[0], indent=2))
    else:
        _print_sweep(reports)
        print(json.dumps(reports, indent=2))


if __name__ == "__main__":
    main()
