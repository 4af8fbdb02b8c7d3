"""The chip cache: each remote asset read onto a site grid is kept as a ``.npy`` file, keyed by
(item, collection, asset, grid, sensor-profile version), so a rerun or a resumed run fetches
nothing from the network and ``--offline`` works from the cache alone.

Chips hold DN (float32, NaN = no data) before any radiometry or mask rule, so changing a rule
never invalidates them; a changed profile version (a read rule) or grid does.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from pipeline.errors import SourceError
from pipeline.export.atomic import atomic_write_bytes
from pipeline.sources.base import redact

if TYPE_CHECKING:
    from pipeline.grid import Grid
    from pipeline.sources.base import Scene


class ChipMissingError(SourceError):
    """``--offline`` and a chip is not in the cache."""

    def __init__(self, key: str, href: str, more: int = 0) -> None:
        tail = f" and {more} more" if more else ""
        super().__init__(
            f"offline: chip {key} of {redact(href)} is not in the cache{tail}; run once without "
            "--offline (with network) to fetch the missing chips"
        )
        self.key = key
        self.href = href
        self.more = more

    @classmethod
    def combined(cls, errors: list[ChipMissingError]) -> ChipMissingError:
        first = errors[0]
        return cls(first.key, first.href, more=len(errors) - 1 + sum(e.more for e in errors))


class ChipCache:
    """Chips under ``root`` (``<root>/<aa>/<key>.npy``), written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @staticmethod
    def key(scene: Scene, asset_key: str, grid: Grid, profile_version: str) -> str:
        text = json.dumps(
            [
                scene.collection, scene.id, asset_key, scene.assets[asset_key].href.split("?", 1)[0],
                grid.crs, list(grid.transform)[:6], grid.width, grid.height, profile_version,
            ],
            separators=(",", ":"),
        )  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npy"

    def get(self, key: str) -> NDArray[np.float32] | None:
        try:
            data = np.load(self._path(key), allow_pickle=False)
        except (OSError, ValueError):  # missing, or damaged: read again, never trusted
            return None
        return np.asarray(data, dtype=np.float32)

    def put(self, key: str, data: NDArray[np.float32]) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(data, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(self._path(key), buffer.getvalue())
