"""The source registry: each kind of scene source brings its config model and how it opens.

The run config's ``source`` union, its reference docs and ``open_source`` are all built from
``SOURCE_KINDS``; adding a source is one entry here. The openers (``sources.openers``) import a
source's heavy parts (the synthetic generator, pystac-client) only when called, so loading a
config never loads them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import Field

from pipeline.model import SourceConfigBase
from pipeline.sources import openers
from pipeline.sources.base import SceneSource
from pipeline.sources.catalog import StaticCatalogSourceConfig
from pipeline.sources.folder import FolderSourceConfig
from pipeline.sources.stac_api import StacApiSourceConfig
from pipeline.sources.synthetic.params import ScenarioParams

TruthLookup = Callable[[str], dict[int, Any]]


class SyntheticSourceConfig(SourceConfigBase):
    kind: Literal["synthetic"] = Field("synthetic", description="the built-in synthetic scenario")
    scenario: ScenarioParams = ScenarioParams()


@dataclass(frozen=True)
class SourceContext:
    """What opening a source may use: the cache folder, worker count, offline mode, progress."""

    cache_dir: Path
    workers: int = 1
    offline: bool = False
    progress: Callable[[int, int], None] | None = None


@dataclass(frozen=True)
class OpenedSource:
    """A source ready to search, and the truth lookup when the source has truth."""

    source: SceneSource
    truth: TruthLookup | None = None


@dataclass(frozen=True)
class SourceKind:
    config: type[SourceConfigBase]
    open: Callable[[SourceConfigBase, SourceContext], OpenedSource]


SOURCE_KINDS: Mapping[str, SourceKind] = {
    "synthetic": SourceKind(SyntheticSourceConfig, openers.open_synthetic),
    "stac-static": SourceKind(StaticCatalogSourceConfig, openers.open_static_catalog),
    "stac-api": SourceKind(StacApiSourceConfig, openers.open_stac_api),
    "folder": SourceKind(FolderSourceConfig, openers.open_folder),
}

if TYPE_CHECKING:
    SourceConfig = SourceConfigBase
else:  # the discriminated union of every registered kind, built from the registry
    SourceConfig = Annotated[
        Union[tuple(k.config for k in SOURCE_KINDS.values())],  # noqa: UP007
        Field(discriminator="kind"),
    ]


def open_source(config: SourceConfigBase, context: SourceContext) -> OpenedSource:
    """The configured source, indexed and ready to search."""
    return SOURCE_KINDS[config.kind].open(config, context)
