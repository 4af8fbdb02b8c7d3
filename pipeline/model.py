"""Bottom-layer base classes for validated, frozen config models (pydantic).

Source configs live with their sources (``pipeline.sources.*``) and are registered in
``pipeline.sources.registry``; the run config (``pipeline.config``) builds its ``source`` union
from that registry. Both derive from these bases, which import nothing of the package.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict


class FrozenModel(BaseModel):
    """Unknown keys rejected, instances immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceConfigBase(FrozenModel):
    """A scene source's config. ``path_fields`` resolve against the config file's folder;
    ``hash_data`` is what enters the run's config hash (override to hash files by content)."""

    path_fields: ClassVar[tuple[str, ...]] = ()
    kind: str

    def hash_data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.model_dump(mode="json")
        for name in self.path_fields:
            value = getattr(self, name)
            if isinstance(value, Path) and value.is_file():
                data[name] = content_hash(value)
        return data


def content_hash(path: Path) -> str:
    """SHA-256 of a file's bytes; the path itself when it cannot be read (reported on load)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return str(path)
