"""``SyntheticSource``: the scenario as a ``SceneSource``, built once per parameters and cached."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import IO

from pipeline.errors import SiteError, SourceError
from pipeline.sites import Site
from pipeline.sources.base import Scene
from pipeline.sources.catalog import StaticCatalogSource
from pipeline.sources.synthetic.build import Progress, build_scenario
from pipeline.sources.synthetic.params import ScenarioParams
from pipeline.sources.synthetic.sites import demo_sites
from pipeline.sources.synthetic.truth import SiteTruth, read_truth

logger = logging.getLogger(__name__)


class SyntheticSource:
    """A ``SceneSource`` over the synthetic scenario, built on first use and cached.

    The build goes to ``cache_dir/synthetic-<key>/``, where the key hashes the parameters and
    ``GENERATOR_VERSION``. It is written in a temporary folder beside it and renamed into place,
    so a killed build never leaves a half cache; later sources with the same parameters reuse it.
    """

    name = "synthetic"

    def __init__(
        self,
        params: ScenarioParams,
        cache_dir: Path,
        *,
        workers: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.params = params
        self.cache_dir = Path(cache_dir).resolve()
        self._workers = workers
        self._progress = progress
        self._catalog: StaticCatalogSource | None = None
        self._truth: dict[str, dict[int, SiteTruth]] = {}

    @property
    def root(self) -> Path:
        """The scenario folder (built now if absent)."""
        path = self.cache_dir / f"synthetic-{self.params.cache_key()}"
        if not (path / "catalog.json").is_file():
            self._build(path)
        return path

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.json"

    def sites(self) -> list[Site]:
        """The demo sites this scenario covers."""
        return demo_sites(self.params.sites)

    def search(self, site: Site, start: date, end: date) -> list[Scene]:
        """Scenes over ``site`` in [start, end], sorted by datetime then id."""
        if self._catalog is None:
            self._catalog = StaticCatalogSource(self.catalog_path)
        return self._catalog.search(site, start, end)

    def truth(self, site_id: str) -> dict[int, SiteTruth]:
        """The truth of ``site_id`` per year (start_year..end_year)."""
        if site_id not in self.params.sites:
            raise SiteError(
                f"site {site_id!r} is not in this synthetic scenario; it has {list(self.params.sites)}"
            )
        if site_id not in self._truth:
            self._truth[site_id] = read_truth(self.root / "truth" / f"{site_id}.geojson")
        return self._truth[site_id]

    def _build(self, path: Path) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # One builder at a time per key: others wait here, then find the finished build.
        with _exclusive(self.cache_dir / f".{path.name}.lock"):
            if (path / "catalog.json").is_file():
                return
            if path.exists():
                raise SourceError(
                    f"{path}: exists but holds no catalog.json; it is not a finished build of "
                    "this generator. Delete it to rebuild"
                )
            prefix = f".{path.name}.tmp-"
            for orphan in self.cache_dir.glob(f"{prefix}*"):
                # Under the lock nobody else is building this key: this is a killed build's.
                logger.info("removing %s, left by a build that did not finish", orphan)
                shutil.rmtree(orphan, ignore_errors=True)
            # Not mkdtemp: its 0700 mode would stick to the cache; the lock makes the name unique.
            tmp = self.cache_dir / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
            tmp.mkdir()
            try:
                build_scenario(self.params, tmp, self._progress, workers=self._workers)
                os.replace(tmp, path)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an advisory lock on ``lock_path`` (released by the OS if the process dies)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock; the atomic rename still keeps the cache whole
        yield
        return
    handle: IO[str]
    with open(lock_path, "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
