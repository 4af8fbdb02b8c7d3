"""Bottom-layer base classes for validated, frozen config models (pydantic).

Source configs live with their sources (``pipeline.sources.*``) and are registered in
``pipeline.sources.registry``; the run config (``pipeline.config``) builds its ``source`` union
from that registry. Both derive from these bases, which import nothing of the package.
"""

from __future__ import annotations

import hashlib
import reprlib
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


# Error messages never echo unbounded input: a value shown in a message is cut to this many
# characters, with its full length said.
MESSAGE_VALUE_CHARS = 200

_REPR = reprlib.Repr()
_REPR.maxstring = MESSAGE_VALUE_CHARS + 2
_REPR.maxother = MESSAGE_VALUE_CHARS
_REPR.maxlevel = 3
for _name in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset", "maxdeque"):
    setattr(_REPR, _name, 8)


def shorten(value: object, limit: int = MESSAGE_VALUE_CHARS) -> str:
    """``repr(value)`` for an error message, at most about ``limit`` characters: a longer string
    is cut with an ellipsis and its length, a container is abbreviated (``reprlib``, so a huge
    or deeply nested value costs no more than its first items) and its size given."""
    if isinstance(value, str | bytes):
        text = repr(value)
        if len(text) <= limit:
            return text
        return f"{text[:limit]}... ({len(value):,} characters)"
    try:
        text = _REPR.repr(value)
    except Exception:  # a broken __repr__ must not hide the error being reported
        text = f"<{type(value).__name__}>"
    size = ""
    if isinstance(value, list | tuple | dict | set | frozenset):
        size = f" ({len(value):,} items)"
    if len(text) > limit:
        return f"{text[:limit]}...{size or f' ({len(text):,} characters)'}"
    return text + size if "..." in text else text


def shorten_text(text: str, limit: int = 4 * MESSAGE_VALUE_CHARS) -> str:
    """A message fragment (e.g. a library's error text) cut to ``limit`` characters."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def content_hash(path: Path) -> str:
    """SHA-256 of a file's bytes; the path itself when it cannot be read (reported on load)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return str(path)
