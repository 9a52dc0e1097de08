"""Shared by the scale benchmarks: a code-location load of floe's definitions from cached defs
state, side by side with a ``Definitions`` of as many bare ``AssetSpec``s.

Each load is what a code server does with a definitions module: build the ``Definitions``,
resolve the repository (asset graph, jobs, sensors) and take its snapshot
(``RepositorySnap.from_def``), which is what the webserver and daemon receive. Imports are warm
in both (one load of each before the rounds); rounds alternate floe and bare; medians compared.
"""

from __future__ import annotations

import gc
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

LOAD_TARGET = 1.5  # floe / bare


@dataclass(frozen=True)
class LoadComparison:
    floe_times: list[float]
    bare_times: list[float]
    floe_assets: int
    bare_assets: int
    observable_times: list[float]  # Dagster's own floor: the same keys as one observable multi-asset

    @property
    def observable_median(self) -> float:
        return statistics.median(self.observable_times)

    @property
    def floe_median(self) -> float:
        return statistics.median(self.floe_times)

    @property
    def bare_median(self) -> float:
        return statistics.median(self.bare_times)

    @property
    def ratio(self) -> float:
        return self.floe_median / self.bare_median


def quiet_loads() -> None:
    """Dagster's and floe's warnings and info logs would otherwise fill the output of every round."""
    warnings.simplefilter("ignore")
    logging.getLogger("floe_dagster").setLevel(logging.ERROR)


def state_asset_keys(state: Any) -> list[Any]:
    """The default asset key of every table the defs state lists, over all its metastores."""
    from dagster import AssetKey

    return [
        AssetKey([metastore, *t["namespace"].split("."), t["name"]])
        for metastore in state.metastores
        for t in state.tables(metastore)
    ]


def timed(load: Callable[[], int]) -> tuple[float, int]:
    gc.collect()
    started = time.perf_counter()
    count = load()
    return time.perf_counter() - started, count


def compare_load(manifest: Path, keys: Sequence[Any], rounds: int) -> LoadComparison:
    """Time ``build_definitions(manifest)`` (what ``definitions.py`` runs) against a ``Definitions``
    of ``AssetSpec(key)`` for ``keys``, each loaded, resolved and snapshotted, ``rounds`` times."""
    from dagster import AssetSpec, Definitions, multi_observable_source_asset
    from dagster._core.remote_representation.external_data import RepositorySnap

    from floe_dagster import build_definitions

    def floe() -> int:
        defs = build_definitions(manifest)
        repository = defs.get_repository_def()
        RepositorySnap.from_def(repository)
        return len(repository.asset_graph.get_all_asset_keys())

    def bare() -> int:
        defs = Definitions(assets=[AssetSpec(key) for key in keys])
        repository = defs.get_repository_def()
        RepositorySnap.from_def(repository)
        return len(repository.asset_graph.get_all_asset_keys())

    def observable() -> int:
        """What Dagster itself costs for observable sources: the same keys, no metadata, no job,
        as one ``multi_observable_source_asset`` (floe's sources are one per metastore)."""

        @multi_observable_source_asset(specs=[AssetSpec(key) for key in keys], can_subset=True)
        def observe(context):  # type: ignore[no-untyped-def]  # dagster rejects `context: Any`
            return None

        repository = Definitions(assets=[observe]).get_repository_def()
        RepositorySnap.from_def(repository)
        return len(repository.asset_graph.get_all_asset_keys())

    floe(), bare(), observable()  # warm imports and caches
    floe_times, bare_times, observable_times = [], [], []
    floe_assets = bare_assets = 0
    for _ in range(rounds):
        seconds, floe_assets = timed(floe)
        floe_times.append(seconds)
        seconds, bare_assets = timed(bare)
        bare_times.append(seconds)
        observable_times.append(timed(observable)[0])
    return LoadComparison(floe_times, bare_times, floe_assets, bare_assets, observable_times)


@contextmanager
def no_metastore_calls() -> Iterator[list[str]]:
    """Inside: building a metastore connector from the defs state module, or opening any Thrift
    socket, is recorded in the yielded list and fails. The caller asserts the list stays empty
    (a failure may be caught and logged by a load that falls back to dbt-named sources)."""
    from thrift.transport import TSocket

    import floe_dagster.metastores.state as state_module

    calls: list[str] = []
    original_build, original_open = state_module.build_metastore, TSocket.TSocket.open

    def no_connector(*_: object, **__: object) -> None:
        calls.append("build_metastore")
        raise AssertionError("the load built a metastore connector")

    def no_socket(sock: Any) -> None:
        calls.append(f"thrift connect {sock.host}:{sock.port}")
        raise AssertionError("the load opened a Thrift connection")

    state_module.build_metastore = no_connector  # type: ignore[assignment]
    TSocket.TSocket.open = no_socket  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        state_module.build_metastore = original_build
        TSocket.TSocket.open = original_open  # type: ignore[method-assign]


def print_load(result: LoadComparison) -> None:
    print(f"{'':6} {'assets':>7} {'median s':>9}  rounds")
    for name, assets, median, times in (
        ("floe", result.floe_assets, result.floe_median, result.floe_times),
        ("bare", result.bare_assets, result.bare_median, result.bare_times),
    ):
        print(f"{name:6} {assets:>7,} {median:>9.2f}  {' '.join(f'{t:.2f}' for t in times)}")
    holds = "yes" if result.ratio <= LOAD_TARGET else "NO"
    print(f"load ratio floe / bare: {result.ratio:.2f}x (target <= {LOAD_TARGET}x): {holds}")
    floor = result.observable_median / result.bare_median
    print(
        f"Dagster's own floor: the same keys as one multi_observable_source_asset (no metadata, no"
        f" job) / bare = {floor:.2f}x ({' '.join(f'{t:.2f}' for t in result.observable_times)} s);"
        f" floe / that = {result.floe_median / result.observable_median:.2f}x"
    )
