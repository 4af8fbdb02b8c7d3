"""How each registered source kind opens (``registry.SOURCE_KINDS``); heavy parts imported on
first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.sources.catalog import StaticCatalogSource

if TYPE_CHECKING:
    from pipeline.model import SourceConfigBase
    from pipeline.sources.registry import OpenedSource, SourceContext


def open_synthetic(config: SourceConfigBase, context: SourceContext) -> OpenedSource:
    """Build the scenario (or find it in the cache), with progress, and search it through its
    static catalog, which is what worker processes receive."""
    from pipeline.sources.registry import OpenedSource, SyntheticSourceConfig
    from pipeline.sources.synthetic import SyntheticSource

    assert isinstance(config, SyntheticSourceConfig)
    scenario = SyntheticSource(
        config.scenario, context.cache_dir, workers=context.workers, progress=context.progress
    )
    return OpenedSource(StaticCatalogSource(scenario.catalog_path), scenario.truth)


def open_static_catalog(config: SourceConfigBase, context: SourceContext) -> OpenedSource:
    from pipeline.sources.catalog import StaticCatalogSourceConfig
    from pipeline.sources.registry import OpenedSource

    assert isinstance(config, StaticCatalogSourceConfig)
    return OpenedSource(StaticCatalogSource(config.catalog, config.search_filter()))


def open_stac_api(config: SourceConfigBase, context: SourceContext) -> OpenedSource:
    from pipeline.sources.registry import OpenedSource
    from pipeline.sources.stac_api import StacApiSource, StacApiSourceConfig

    assert isinstance(config, StacApiSourceConfig)
    return OpenedSource(StacApiSource(config, context.cache_dir, offline=context.offline))


def open_folder(config: SourceConfigBase, context: SourceContext) -> OpenedSource:
    from pipeline.sources.folder import FolderSourceConfig, open_folder
    from pipeline.sources.registry import OpenedSource

    assert isinstance(config, FolderSourceConfig)
    return OpenedSource(open_folder(config))
