"""A Hive Metastore that is not there, or goes away, while Dagster loads and observes its tables.

* No state and a metastore that never answers: the load-time listing is one short attempt,
  its failure is remembered in the defs state, and the next load does not try again.
* The real HMS stopped: definitions load from the state (or from the dbt sources alone), the
  next observation that reaches it writes its listing into the state, and a metastore stopped
  in the middle of an observation fails it retryably, tagged, with the code location still up.

The HMS here is a private one (file-backed Derby, fixed port) that the tests stop and start.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, build_sensor_context, instance_for_test

from floe_dagster import build_definitions
from floe_dagster.core.errors import MetastoreError
from floe_dagster.dagster_stage.definitions import OBSERVE_JOB
from floe_dagster.dagster_stage.sensors import sensor_name
from floe_dagster.manifest.loader import LoadedManifest, load_manifest
from floe_dagster.metastores import state as state_module
from floe_dagster.metastores.hive import HiveMetastoreConnector
from floe_dagster.metastores.state import default_state_path, load_sources_state, read_state
from floe_dagster.transforms.profiles import write_profiles
from tests.fixtures.hive_metastore import (
    PARQUET,
    HiveMetastore,
    create_database,
    running_hive_metastore,
    thrift_table,
)
from tests.helpers import copy_demo_project

pytestmark = pytest.mark.server

DB = "outage_db"
TABLES = ("t0", "t1", "t2")
LEGACY_SOURCE = f"""version: 2
sources:
  - name: legacy
    schema: {DB}
    meta: {{floe: {{metastore: legacy}}}}
    tables:
      - name: t0
"""


def with_legacy(root: Path, uri: str, name: str) -> Path:
    """The demo manifest under ``root`` with a hive metastore ``legacy`` at ``uri`` (batches of one)."""
    manifest = root / "manifests" / "manifest.yaml"
    legacy = (
        f'metastores:\n  legacy:\n    type: hive\n    config: {{uri: "{uri}", backoff_s: 0.05}}\n'
        f'    include: ["{DB}.*"]\n    batch_size: 1\n'
    )
    text = manifest.read_text().replace("metastores:\n", legacy, 1)
    manifest.write_text(text.replace("name: jaffle-lakehouse", f"name: {name}"))
    return manifest


def no_listing(*args: object, **kwargs: object) -> None:
    raise AssertionError("this load must not list a metastore")


# --- no state, a metastore that never answers -------------------------------------------------------


class SilentServer:
    """Accepts connections and never answers: a metastore that hangs (the slow kind of unreachable)."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def uri(self) -> str:
        return f"thrift://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                self.connections.append(self.server.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.server.close()


def test_a_load_without_state_is_bounded_and_a_failed_listing_is_remembered(
    parsed_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("FLOE_STATE_DIR", "FLOE_MANIFEST", "FLOE_ENV"):
        monkeypatch.delenv(name, raising=False)
    silent = SilentServer()
    try:
        root = copy_demo_project(tmp_path / "project", parsed_from=parsed_demo)
        loaded = load_manifest(with_legacy(root, silent.uri, "silent-hms"))
        write_profiles(loaded)
        (loaded.dbt_project_dir / "target" / "manifest.json").touch()

        started = time.monotonic()
        state = load_sources_state(loaded)
        first = time.monotonic() - started
        # one attempt with the load-time read timeout (5 s), not 4 attempts of 60 s
        assert first < 10, f"first load took {first:.1f} s"
        entry = state.metastores["legacy"]
        assert entry.tables == [] and entry.failed_at is not None and "timed out" in (entry.error or "")
        assert len(silent.connections) == 1  # no retry at load time

        monkeypatch.setattr(state_module, "build_metastore", no_listing)
        started = time.monotonic()
        again = load_sources_state(loaded)  # remembered: no second attempt
        second = time.monotonic() - started
        assert second < 1 and second < first / 5, (first, second)
        assert again.metastores["legacy"].failed_at == entry.failed_at

        defs = build_definitions(loaded.path)  # the code location is up, without the metastore
        graph = defs.resolve_asset_graph()
        assert AssetKey(["lakehouse", "raw", "orders"]) in graph.get_all_asset_keys()
        print(
            f"\nload with an unreachable HMS and no state: first {first:.2f} s, then {second * 1000:.0f} ms"
        )

        # after LISTING_RETRY_AFTER_S a load tries again (one attempt)
        monkeypatch.undo()
        stored = read_state(default_state_path(loaded))
        assert stored is not None
        monkeypatch.setattr(state_module, "LISTING_RETRY_AFTER_S", 0.0)
        load_sources_state(loaded)
        assert len(silent.connections) == 2
    finally:
        silent.close()


# --- the real HMS stopped and started ---------------------------------------------------------------


class StoppableMetastore:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.context: Any = None
        self.metastore: HiveMetastore | None = None
        self.port = 0

    def start(self) -> HiveMetastore:
        self.context = running_hive_metastore(self.workdir, port=self.port, persistent=True)
        self.metastore = self.context.__enter__()
        self.port = self.metastore.port
        return self.metastore

    def stop(self) -> None:
        if self.context is not None:
            self.context.__exit__(None, None, None)
            self.context = None

    @property
    def uri(self) -> str:
        return f"thrift://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def stoppable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoppableMetastore]:
    hms = StoppableMetastore(tmp_path_factory.mktemp("hms_outage"))
    metastore = hms.start()
    client = metastore.client()
    create_database(client, DB, metastore.warehouse)
    for name in TABLES:
        client.create_table(
            thrift_table(
                DB, name, [("id", "bigint")], PARQUET, f"file://{metastore.warehouse}/{DB}.db/{name}"
            )
        )
    metastore.close_clients()
    try:
        yield hms
    finally:
        hms.stop()


@pytest.fixture(scope="module")
def legacy_project(
    stoppable: StoppableMetastore, parsed_demo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoadedManifest]:
    """The demo with the stoppable HMS as metastore ``legacy`` and a dbt source on ``outage_db.t0``."""
    root = copy_demo_project(tmp_path_factory.mktemp("outage") / "project", parsed_from=parsed_demo)
    (root / "dbt_project" / "models" / "staging" / "_legacy.yml").write_text(LEGACY_SOURCE)
    with pytest.MonkeyPatch.context() as env:
        for name in ("FLOE_STATE_DIR", "FLOE_MANIFEST", "FLOE_ENV"):
            env.delenv(name, raising=False)
        home = root / ".floe" / "dagster_home"
        home.mkdir(parents=True)
        env.setenv("DAGSTER_HOME", str(home))
        yield load_manifest(with_legacy(root, stoppable.uri, "outage"))


def legacy_keys(graph: Any) -> set[AssetKey]:
    return {k for k in graph.get_all_asset_keys() if k.path[0] == "legacy"}


def test_stopped_hms_loads_from_dbt_sources_and_the_next_observation_fills_the_state(
    stoppable: StoppableMetastore, legacy_project: LoadedManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = legacy_project
    stoppable.stop()
    defs = build_definitions(loaded.path)  # lists legacy once, quickly: refused
    state = read_state(default_state_path(loaded))
    assert state is not None and state.metastores["legacy"].failed_at is not None
    assert legacy_keys(defs.resolve_asset_graph()) == {AssetKey(["legacy", DB, "t0"])}  # from dbt

    stoppable.start()
    monkeypatch.setattr(state_module, "build_metastore", no_listing)
    defs = build_definitions(loaded.path)  # within the retry window: no listing, same assets
    assert legacy_keys(defs.resolve_asset_graph()) == {AssetKey(["legacy", DB, "t0"])}

    sensor = defs.resolve_sensor_def(sensor_name("legacy"))
    resources = {"metastore_legacy": defs.resources["metastore_legacy"]}  # type: ignore[index]
    with instance_for_test() as instance:
        data = sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources))
    assert [e.asset_key for e in data.asset_events] == [AssetKey(["legacy", DB, "t0"])]
    written = read_state(default_state_path(loaded))
    assert written is not None and written.metastores["legacy"].failed_at is None
    assert sorted(r["name"] for r in written.tables("legacy")) == list(TABLES)
    t2 = next(r for r in written.tables("legacy") if r["name"] == "t2")
    assert [c[0] for c in t2["columns"]] == ["id"]  # the column schema the observation writes

    defs = build_definitions(loaded.path)  # from the state the observation wrote, still no listing
    graph = defs.resolve_asset_graph()
    assert legacy_keys(graph) == {AssetKey(["legacy", DB, t]) for t in TABLES}
    assert graph.get(AssetKey(["legacy", DB, "t2"])).metadata["floe/table"] == f"{DB}.t2"


def test_hms_stopped_mid_observation_fails_it_retryably_and_the_code_location_stays_up(
    stoppable: StoppableMetastore, legacy_project: LoadedManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = legacy_project
    if stoppable.context is None:
        stoppable.start()
    state_module.write_state(loaded, metastores=["legacy"])
    defs = build_definitions(loaded.path)
    assert len(legacy_keys(defs.resolve_asset_graph())) == len(TABLES)

    real_get_tables = HiveMetastoreConnector.get_tables_or_errors  # each batch of the observation
    batches: list[list[str]] = []

    def stop_after_the_first_batch(self: HiveMetastoreConnector, namespace: str, names: Any) -> Any:
        result = real_get_tables(self, namespace, names)
        batches.append(list(names))
        if len(batches) == 1:
            stoppable.stop()  # the metastore goes away in the middle of the observation
        return result

    monkeypatch.setattr(HiveMetastoreConnector, "get_tables_or_errors", stop_after_the_first_batch)
    with instance_for_test() as instance:
        result = defs.resolve_job_def(OBSERVE_JOB).execute_in_process(
            instance=instance,
            raise_on_error=False,
            asset_selection=list(legacy_keys(defs.resolve_asset_graph())),
        )
        assert not result.success and len(batches) == 1  # one batch of one table, then the outage
        failure = next(e for e in result.all_events if e.is_step_failure)
        user = failure.step_failure_data.user_failure_data  # type: ignore[union-attr]
        assert user is not None
        tags = {k: v.value for k, v in user.metadata.items()}
        assert tags["provider"] == "hive" and tags["retryable"] is True and tags["metastore"] == "legacy"
        assert "retryable: yes" in failure.step_failure_data.error.message  # type: ignore[union-attr]

        # the code location loads from the state while the metastore is down
        monkeypatch.setattr(state_module, "build_metastore", no_listing)
        down = build_definitions(loaded.path)
        assert len(legacy_keys(down.resolve_asset_graph())) == len(TABLES)

        # a sensor tick fails with the cause's tags kept
        sensor = down.resolve_sensor_def(sensor_name("legacy"))
        resources = {"metastore_legacy": down.resources["metastore_legacy"]}  # type: ignore[index]
        with pytest.raises(Exception) as tick:
            sensor.evaluate_tick(build_sensor_context(instance=instance, resources=resources))
        error = find_cause(tick.value, MetastoreError)
        assert (error.provider, error.operation, error.retryable) == ("hive", "list_namespaces", True)
        assert "metastore 'legacy' could not be observed" in str(error)

        # back again: the next observation records every table
        stoppable.start()
        monkeypatch.setattr(HiveMetastoreConnector, "get_tables_or_errors", real_get_tables)
        again = down.resolve_job_def(OBSERVE_JOB).execute_in_process(
            instance=instance, asset_selection=list(legacy_keys(down.resolve_asset_graph()))
        )
        assert again.success
        for table in TABLES:
            record = instance.get_latest_data_version_record(AssetKey(["legacy", DB, table]), is_source=True)
            assert record is not None


def find_cause(error: BaseException, kind: type[MetastoreError]) -> MetastoreError:
    """The first ``kind`` in ``error``'s chain (Dagster wraps what a sensor raises)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return seen
        seen = getattr(seen, "user_exception", None) or seen.__cause__ or seen.__context__
    raise AssertionError(f"no {kind.__name__} in {error!r}")
