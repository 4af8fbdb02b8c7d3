"""Score `sitewatch compare` on the real Taizhou Landsat 7 pair (2000 vs 2003) against its
partial change labels (Wu, Du & Zhang 2014): precision, recall, F1 and kappa on labelled pixels.

Run: .venv/bin/python benchmarks/taizhou_compare.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

import rasterio
import rasterio.errors

from pipeline.accuracy import binary_scores
from pipeline.compare import compare
from pipeline.pairwise import ALPHA

DATA = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "real-data"
    / "taizhou-landsat-2000-2003"
)
BANDS = ["blue", "green", "red", "nir", "swir16", "swir22"]  # ETM+ bands 1, 2, 3, 4, 5, 7


def score(out: Path, alpha: float = ALPHA) -> dict[str, object]:
    summary = compare(DATA / "2000TM", DATA / "2003TM", out, bands=BANDS, alpha=alpha)
    with rasterio.open(out / "change.tif") as src:
        pred = src.read(1) == 1
    with warnings.catch_warnings():  # the label bitmaps have no georeference, by design
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(DATA / "change.bmp") as src:
            changed = src.read(1) == 255
        with rasterio.open(DATA / "unchanged.bmp") as src:
            unchanged = src.read(1) == 255
    s = binary_scores(pred, changed, changed | unchanged)
    return {
        "labelled_pixels": int((changed | unchanged).sum()),
        "precision": round(s.precision, 4),
        "recall": round(s.recall, 4),
        "f1": round(s.f1, 4),
        "kappa": round(s.kappa, 4),
        "overall_accuracy": round(s.overall, 4),
        "threshold_sigma": summary["change_threshold_sigma"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, help="keep outputs here (default: a temp folder)")
    args = parser.parse_args()
    if args.out:
        print(json.dumps(score(args.out), indent=2))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(score(Path(tmp)), indent=2))


if __name__ == "__main__":
    main()
