"""core/compat.py: every private API floe uses, exercised for real against the installed libraries.

One test per seam: an upgrade of dagster, dagster-dbt, dbt-core, dbt-duckdb or PyIceberg that
moves or changes a private API floe relies on fails here, by the seam's name. Then the version
guard (an unsupported release is a clear CompatibilityError, a newer minor release a warning),
and a scan showing no other floe_dagster module imports a private name of a library.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import json
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import floe_dagster
from floe_dagster.core import compat
from floe_dagster.core.errors import CompatibilityError, ConfigurationError, MissingLibraryError

PACKAGE = Path(floe_dagster.__file__).parent
DBT = str(Path(sys.executable).with_name("dbt"))  # the dbt of this environment


@pytest.fixture
def fresh_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every seam checked again (the guard remembers the seams it already checked)."""
    monkeypatch.setattr(compat, "_checked", set())


# --- dagster -------------------------------------------------------------------------------------


def test_observation_data_version_tags_give_the_observation_its_data_version() -> None:
    """compat.DATA_VERSION_TAGS: dagster reads the data version of an observation from these tags."""
    from dagster import AssetObservation
    from dagster._core.definitions.data_version import extract_data_version_from_entry

    tags = compat.observation_data_version_tags("v42")
    observation = AssetObservation("orders", tags=tags)
    assert observation.data_version == "v42"
    assert "true" in tags.values()  # user provided, as an observation run records it
    assert extract_data_version_from_entry(_entry(observation)).value == "v42"  # type: ignore[union-attr]


def _entry(observation: Any) -> Any:
    """An event log entry of ``observation``, as the daemon records a sensor's observation."""
    from dagster import EventLogEntry
    from dagster._core.events import AssetObservationData, DagsterEvent, DagsterEventType

    event = DagsterEvent(
        DagsterEventType.ASSET_OBSERVATION.value,
        "job",
        event_specific_data=AssetObservationData(observation),
    )
    return EventLogEntry(
        error_info=None,
        level="INFO",
        user_message="",
        run_id="run",
        timestamp=0.0,
        dagster_event=event,
    )


def test_unresolved_asset_job_definition_is_what_define_asset_job_returns() -> None:
    """compat.UNRESOLVED_ASSET_JOB: the type of ComputeHealth.job (dagster exports no public name)."""
    from dagster import define_asset_job

    assert isinstance(define_asset_job("a_job", selection="*"), compat.UnresolvedAssetJobDefinition)


def test_translation_fn_resolver_resolves_a_template_translation() -> None:
    """compat.TRANSLATION_FN: the component's ``translation`` field, as dagster-dbt declares its own."""
    from dagster.components import Resolver

    resolver = compat.TranslationFnResolver(template_vars_for_translation_fn=lambda data: {"node": data})
    assert isinstance(resolver, Resolver)
    assert compat.TranslationFn[dict[str, Any]] is not None  # generic, as FloeComponent annotates it


# --- dagster-dbt ---------------------------------------------------------------------------------


@pytest.fixture
def dbt_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    (project / "target").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: p\nprofile: p\n")
    (project / "target" / "partial_parse.msgpack").write_bytes(b"the project's partial parse")
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    return project


def test_dbt_cli_resource_base_answers_dagster_dbts_start_up_hooks(dbt_project: Path) -> None:
    """compat.DBT_CLI_RESOURCE_HOOKS: no ``dbt --version`` subprocess, no adapter, the target folder."""
    from dbt.version import __version__ as dbt_version
    from packaging.version import Version

    resource = compat.DbtCliResourceBase(project_dir=str(dbt_project), dbt_executable=DBT)
    assert resource._cli_version == Version(dbt_version)
    assert resource._initialize_dbt_core_adapter(["build"]) is None
    target = resource.unique_target_path(None)
    assert target.parent == Path("target")  # dagster-dbt's own layout: target/<unique id>


def test_dbt_cli_processes_started_by_replaces_the_dbt_subprocess(dbt_project: Path) -> None:
    """compat.DBT_CLI_INVOCATION_RUN: within the block, ``DbtCliResource.cli`` runs dbt in the process
    ``start`` gives it, after seeding the partial parse as dagster-dbt does; outside, nothing changed."""
    import dagster_dbt.core.resource as dagster_dbt_resource
    from dagster_dbt import DbtCliResource
    from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

    started: list[tuple[list[str], dict[str, str], Path]] = []
    announced: list[str] = []

    def start(args: Any, env: Any, project_dir: Path) -> subprocess.Popen[bytes]:
        started.append((list(args), dict(env), project_dir))
        event = {"info": {"name": "MainReportVersion", "level": "info", "msg": "started by floe"}, "data": {}}
        code = f"print({json.dumps(json.dumps(event))})"
        return subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    resource = compat.DbtCliResourceBase(project_dir=str(dbt_project), dbt_executable=DBT)
    run_target = dbt_project / "target" / "run"
    with compat.dbt_cli_processes_started_by(start, announced.append):
        assert dagster_dbt_resource.DbtCliInvocation is compat.dbt_cli_invocation_class()
        invocation = resource.cli(["build"], target_path=run_target)
    assert dagster_dbt_resource.DbtCliInvocation is DbtCliInvocation
    assert isinstance(invocation, DbtCliInvocation)
    assert [event.raw_event["info"]["msg"] for event in invocation.stream_raw_events()] == ["started by floe"]
    assert invocation.is_successful()
    ((args, env, project_dir),) = started
    assert args[-1] == "build" and env["DBT_TARGET_PATH"] == str(run_target) and project_dir == dbt_project
    assert (run_target / "partial_parse.msgpack").read_bytes() == b"the project's partial parse"
    assert announced == [invocation.dbt_command]
    # the same signature as dagster-dbt's run, which DbtCliResource.cli still calls
    ours = inspect.signature(compat.dbt_cli_invocation_class().run).parameters
    assert list(ours) == list(inspect.signature(DbtCliInvocation.run).parameters)
    assert "DbtCliInvocation.run(" in inspect.getsource(DbtCliResource.cli)


# --- dbt-core, dbt-common, dbt-adapters, dbt-duckdb ----------------------------------------------


def test_dbt_selector_internals_select_what_dagster_dbt_selects(parsed_demo: Path) -> None:
    """compat.DBT_SELECTOR and compat.DBT_PROJECT_ROOT: dbt's node selector, built from its
    internals, selects what dagster-dbt's public ``select_unique_ids`` selects."""
    from dagster_dbt.utils import select_unique_ids

    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.plan.selection import DbtRuleSelector
    from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest

    internals = compat.dbt_selector_internals()
    assert all(value is not None for value in vars(internals).values())
    loaded = load_manifest(parsed_demo / "manifests" / "manifest.yaml")
    dbt_manifest = prepare_dbt_manifest(loaded)
    selector = DbtRuleSelector(dbt_manifest)
    with contextlib.chdir(loaded.dbt_project_dir):
        for select, exclude in [
            ("path:models/staging", ""),
            ("tag:marts,+customers", ""),
            ("*", "path:models"),
        ]:
            expected = select_unique_ids(select, exclude, "", None, dbt_manifest)
            assert set(selector.select(select, exclude)) == set(expected), (select, exclude)
    assert compat.dbt_project_root() in (None, str(loaded.dbt_project_dir))


def test_dbt_assets_preselected_is_what_dbt_assets_uses_for_its_selection(parsed_demo: Path) -> None:
    """compat.DBT_ASSETS_SELECTION: inside the block, ``@dbt_assets`` takes the given unique ids
    for its select string (dbt's selector is not asked), outside it evaluates as before."""
    from dagster_dbt import asset_utils, dbt_assets

    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest

    loaded = load_manifest(parsed_demo / "manifests" / "manifest.yaml")
    dbt_manifest = prepare_dbt_manifest(loaded)
    orders = next(u for u, n in dbt_manifest["nodes"].items() if n["name"] == "orders")
    real = asset_utils.select_unique_ids
    with (
        contextlib.chdir(loaded.dbt_project_dir),
        compat.dbt_assets_preselected(dbt_manifest, "tag:nothing_has_this_tag", frozenset({orders})),
    ):

        @dbt_assets(manifest=dbt_manifest, select="tag:nothing_has_this_tag", name="preselected")
        def preselected():  # type: ignore[no-untyped-def]  # dagster reads the annotation
            ...

    assert asset_utils.select_unique_ids is real, "the seam must put dagster-dbt back"
    assert [key.path[-1] for key in preselected.keys] == ["orders"]
    # outside, dbt's own selection of that select string: nothing has the tag
    with contextlib.chdir(loaded.dbt_project_dir):
        assert not real(
            select="tag:nothing_has_this_tag",
            exclude="",
            selector="",
            project=None,
            manifest_json=dbt_manifest,
        )


def test_dbt_invocation_flag_reads_the_running_invocations_flags() -> None:
    """compat.DBT_FLAGS: what dbt's flags hold during an invocation (floe's dbt-duckdb plugin
    reads the target path there)."""
    from argparse import Namespace

    from dbt.flags import get_flags, set_flags

    before = get_flags()
    set_flags(Namespace(TARGET_PATH="target/run_1"))
    try:
        assert compat.dbt_invocation_flag("TARGET_PATH") == "target/run_1"
        assert compat.dbt_invocation_flag("NO_SUCH_FLAG") is None
    finally:
        set_flags(before)


def test_dbt_event_json_is_the_line_the_dbt_cli_prints() -> None:
    """compat.DBT_EVENT_JSON: the JSON line of a dbt event, which dagster-dbt parses."""
    from dbt.events.types import MainReportVersion
    from dbt_common.events.base_types import msg_from_base_event

    line = json.loads(
        compat.dbt_event_json(msg_from_base_event(MainReportVersion(version="=1.11", log_version=3)))
    )
    assert line["info"]["name"] == "MainReportVersion" and line["info"]["level"] == "info"
    assert "Running with dbt=1.11" in line["info"]["msg"]
    assert set(line) == {"info", "data"} and {"ts", "invocation_id"} <= set(
        line["info"]
    )  # what dagster-dbt reads


def test_cancel_open_dbt_queries_reaches_every_registered_adapter() -> None:
    """compat.DBT_ADAPTER_FACTORY: dbt's adapter registry, and the cancel method dbt's Ctrl-C calls."""
    from dbt.adapters.duckdb import DuckDBAdapter
    from dbt.adapters.factory import FACTORY

    class Adapter:
        cancelled = 0

        def cancel_open_connections(self) -> None:
            self.cancelled += 1

    assert callable(DuckDBAdapter.cancel_open_connections)
    adapter = Adapter()
    FACTORY.adapters["floe_test"] = adapter  # type: ignore[assignment]
    try:
        compat.cancel_open_dbt_queries()
    finally:
        del FACTORY.adapters["floe_test"]
    assert adapter.cancelled == 1


def test_close_dbt_duckdb_environment_releases_the_database_file(tmp_path: Path) -> None:
    """compat.DBT_DUCKDB_ENVIRONMENT: the environment dbt-duckdb keeps for the next invocation is
    closed, so another process can write the DuckDB file."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    from dbt.adapters.duckdb.credentials import DuckDBCredentials
    from dbt.adapters.duckdb.environments import create

    database = tmp_path / "dbt.duckdb"
    environment = create(DuckDBCredentials(path=str(database)))
    environment.handle().cursor().execute("create table t (x int)")
    with DuckDBConnectionManager._LOCK:
        DuckDBConnectionManager._ENV = environment
    writer = [sys.executable, "-c", f"import duckdb; duckdb.connect({str(database)!r}).execute('select 1')"]
    assert subprocess.run(writer, capture_output=True).returncode != 0  # held: the file is locked
    compat.close_dbt_duckdb_environment()
    assert DuckDBConnectionManager._ENV is None
    assert subprocess.run(writer, capture_output=True, text=True).stderr == ""


# --- PyIceberg -----------------------------------------------------------------------------------


@pytest.fixture
def iceberg_table(tmp_path: Path) -> Any:
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import Schema
    from pyiceberg.transforms import IdentityTransform
    from pyiceberg.types import LongType, NestedField, StringType

    catalog = SqlCatalog("t", uri=f"sqlite:///{tmp_path}/catalog.db", warehouse=f"file://{tmp_path}")
    catalog.create_namespace("ns")
    schema = Schema(
        NestedField(1, "id", LongType(), required=False),
        NestedField(2, "region", StringType(), required=False),
    )
    spec = PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "region"))
    return catalog.create_table("ns.orders", schema=schema, partition_spec=spec)


ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "region": ["eu", "us", "eu"]})


def test_pyarrow_to_schema_without_ids_gives_iceberg_types() -> None:
    """compat.PYARROW_TO_SCHEMA_WITHOUT_IDS."""
    schema = compat.pyarrow_to_schema_without_ids(pa.schema([("id", pa.int64()), ("at", pa.timestamp("us"))]))
    assert {f.name: str(f.field_type) for f in schema.fields} == {"id": "long", "at": "timestamp"}


def test_check_pyarrow_schema_compatible_accepts_the_table_schema_and_refuses_another(
    iceberg_table: Any,
) -> None:
    """compat.CHECK_PYARROW_SCHEMA: the check ``Table.append`` makes."""
    version = iceberg_table.metadata.format_version
    compat.check_pyarrow_schema_compatible(iceberg_table.schema(), ROWS.schema, version)
    with pytest.raises(ValueError, match="id"):
        wrong = pa.schema([("id", pa.string()), ("region", pa.string())])
        compat.check_pyarrow_schema_compatible(iceberg_table.schema(), wrong, version)


def test_dataframe_to_data_files_writes_one_file_per_partition(iceberg_table: Any) -> None:
    """compat.DATAFRAME_TO_DATA_FILES: uncommitted data files that a snapshot can then add."""
    import itertools
    import uuid

    files = list(
        compat.dataframe_to_data_files(
            table_metadata=iceberg_table.metadata,
            df=ROWS,
            io=iceberg_table.io,
            write_uuid=uuid.uuid4(),
            counter=itertools.count(),
        )
    )
    assert sorted(f.partition[0] for f in files) == ["eu", "us"]
    assert iceberg_table.scan().to_arrow().num_rows == 0  # written, not committed
    with iceberg_table.transaction() as tx, tx.update_snapshot().fast_append() as append:
        for data_file in files:
            append.append_data_file(data_file)
    assert sorted(iceberg_table.refresh().scan().to_arrow()["id"].to_pylist()) == [1, 2, 3]


def test_to_requested_schema_adds_the_field_ids_of_the_table(iceberg_table: Any) -> None:
    """compat.TO_REQUESTED_SCHEMA: a batch as PyIceberg writes it into a data file."""
    from pyiceberg.io.fileformat import FileFormatFactory
    from pyiceberg.io.pyarrow import pyarrow_to_schema
    from pyiceberg.manifest import FileFormat

    table_schema = iceberg_table.schema()
    batch = ROWS.to_batches()[0]
    file_schema = pyarrow_to_schema(batch.schema, name_mapping=table_schema.name_mapping)
    converted = compat.to_requested_schema(
        requested_schema=table_schema,
        file_schema=file_schema,
        batch=batch,
        include_field_ids=True,
        format_model=FileFormatFactory.get(FileFormat.PARQUET),
    )
    assert [field.metadata[b"PARQUET:field_id"] for field in converted.schema] == [b"1", b"2"]
    assert converted.num_rows == 3


def test_rest_catalog_with_timeouts_fetches_and_refreshes_its_token(iceberg_rest_server: Any) -> None:
    """compat.REST_CATALOG_HOOKS: PyIceberg's REST session and OAuth2 manager, overridden: the token
    is fetched with the client credentials, refreshed before it expires, and a refused credential
    is PyIceberg's OAuthError (mapped by its ``_handle_non_200_response``)."""
    from pyiceberg.exceptions import OAuthError

    server = iceberg_rest_server
    properties = {
        "uri": server.uri,
        "credential": f"{server.client_id}:{server.client_secret}",
        "oauth2-server-uri": server.token_url,
    }
    try:
        server.configure(token_ttl_s=2)
        catalog = compat.rest_catalog_with_timeouts(
            "rest", dict(properties), timeout_s=5, refresh_margin_s=60, timeout_override=lambda: None
        )
        catalog.list_namespaces()
        fetched = len(server.requests("/v1/oauth/tokens"))
        assert fetched >= 1
        time.sleep(1.2)  # the token is due after half its 2 s life (the margin is capped at half)
        catalog.list_namespaces()
        assert len(server.requests("/v1/oauth/tokens")) == fetched + 1  # refreshed before it expired
        assert not [r for r in server.requests() if r["status"] == 401]  # never used an expired one
        with pytest.raises(OAuthError):
            compat.rest_catalog_with_timeouts(
                "rest",
                {**properties, "credential": "floe-test-client:wrong"},
                timeout_s=5,
                refresh_margin_s=60,
            )
    finally:
        server.reset()


@contextlib.contextmanager
def thrift_metastore(databases: list[str]) -> Iterator[int]:
    """A real Thrift server speaking the Hive Metastore protocol (``get_all_databases`` only)."""
    from hive_metastore import ThriftHiveMetastore
    from thrift.protocol import TBinaryProtocol
    from thrift.server import TServer
    from thrift.transport import TSocket, TTransport

    class Handler:
        def get_all_databases(self) -> list[str]:
            return databases

    server_socket = TSocket.TServerSocket(host="127.0.0.1", port=0)
    server_socket.listen()
    port = server_socket.handle.getsockname()[1]
    server_socket.listen = lambda: None  # type: ignore[method-assign]  # already listening
    server = TServer.TThreadedServer(
        ThriftHiveMetastore.Processor(Handler()),
        server_socket,
        TTransport.TBufferedTransportFactory(),
        TBinaryProtocol.TBinaryProtocolFactory(),
        daemon=True,
    )
    threading.Thread(target=server.serve, daemon=True).start()
    try:
        yield port
    finally:
        server_socket.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_hive_catalog_with_failover_moves_to_the_next_uri() -> None:
    """compat.HIVE_CLIENT: PyIceberg's private Hive client, subclassed: a refused first URI fails
    over to the next, and the catalog's calls go through."""
    with thrift_metastore(["default", "sales"]) as port:
        uris = f"thrift://127.0.0.1:{closed_port()},thrift://127.0.0.1:{port}"
        catalog = compat.hive_catalog_with_failover("hive", 5, {"uri": uris})
        assert catalog.list_namespaces() == [("default",), ("sales",)]
    from thrift.transport.TTransport import TTransportException

    dead = compat.hive_catalog_with_failover("hive", 5, {"uri": f"thrift://127.0.0.1:{closed_port()}"})
    with pytest.raises(TTransportException):
        dead.list_namespaces()


def test_every_seam_has_a_test_here() -> None:
    source = Path(__file__).read_text(encoding="utf-8")
    names = {name for name, value in vars(compat).items() if isinstance(value, compat.Seam)}
    assert {value for name, value in vars(compat).items() if name in names} == set(compat.SEAMS)
    assert sorted(name for name in names if f"compat.{name}" not in source) == []


# --- the version guard ---------------------------------------------------------------------------


def installed(monkeypatch: pytest.MonkeyPatch, distribution: str, version: str | None) -> None:
    real = compat.installed_version
    monkeypatch.setattr(
        compat, "installed_version", lambda name: version if name == distribution else real(name)
    )


@pytest.mark.parametrize("version", ["0.11.2", "1.0.0"])
def test_an_older_or_newer_major_release_is_a_clear_error(
    version: str, fresh_guard: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed(monkeypatch, "pyiceberg", version)
    with pytest.raises(CompatibilityError) as caught:
        compat.pyarrow_to_schema_without_ids(pa.schema([("id", pa.int64())]))
    error = caught.value
    assert isinstance(error, ConfigurationError)
    assert (error.seam, error.installed, error.supported) == (
        "pyiceberg.io.pyarrow._pyarrow_to_schema_without_ids",
        version,
        ">=0.12,<0.13",
    )
    message = str(error)
    for part in (
        "_pyarrow_to_schema_without_ids",
        f"pyiceberg {version} is installed",
        "pyiceberg>=0.12,<0.13",
    ):
        assert part in message


@pytest.mark.parametrize(
    ("seam", "version", "fails"),
    [
        (compat.DBT_EVENT_JSON, "2.0.0", True),  # supported <2: 2.0 is a new major
        (compat.DBT_EVENT_JSON, "1.99.0", False),
        (compat.DATA_VERSION_TAGS, "2.0.0", True),  # supported <1.14
        (compat.DATA_VERSION_TAGS, "1.12.9", True),  # older than the range
        (compat.DATA_VERSION_TAGS, "1.13.0", False),
    ],
)
def test_the_guard_by_the_numbers(
    seam: compat.Seam, version: str, fails: bool, fresh_guard: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed(monkeypatch, seam.distribution, version)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing here is a newer minor release
        if fails:
            with pytest.raises(CompatibilityError, match=f"{seam.distribution} {version} is installed"):
                compat.check(seam)
        else:
            compat.check(seam)


def test_a_newer_minor_release_warns_once_and_the_seam_is_tried(
    fresh_guard: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed(monkeypatch, "pyiceberg", "0.13.1")
    with pytest.warns(compat.CompatibilityWarning, match=r"pyiceberg 0\.13\.1 is newer"):
        schema = compat.pyarrow_to_schema_without_ids(pa.schema([("id", pa.int64())]))
    assert [f.name for f in schema.fields] == ["id"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compat.pyarrow_to_schema_without_ids(pa.schema([("id", pa.int64())]))  # once per seam


def test_a_private_api_gone_is_a_clear_error_not_an_attribute_error(
    fresh_guard: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyiceberg.io.pyarrow

    monkeypatch.delattr(pyiceberg.io.pyarrow, "_pyarrow_to_schema_without_ids")
    with pytest.raises(CompatibilityError, match="does not fit") as caught:
        compat.pyarrow_to_schema_without_ids(pa.schema([("id", pa.int64())]))
    assert caught.value.installed == compat.installed_version("pyiceberg")


def test_a_missing_library_is_also_an_import_error(
    fresh_guard: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So ``rule_selector``'s fallback without dbt-core (dbt Fusion) still takes over."""
    installed(monkeypatch, "dbt-core", None)
    compat.dbt_selector_internals.cache_clear()
    try:
        with pytest.raises(MissingLibraryError, match="dbt-core is not installed") as caught:
            compat.dbt_selector_internals()
        assert isinstance(caught.value, ImportError)
    finally:
        compat.dbt_selector_internals.cache_clear()


# --- no private API anywhere else ----------------------------------------------------------------


# internals floe once used outside compat.py whose names do not start with "_"
INTERNAL_MODULES = (
    "dagster_dbt.core.dbt_cli_invocation",
    "dagster_dbt.core.resource",
    "dagster.components.utils.translation",
    "dbt.graph",
    "dbt.contracts.graph",
    "dbt.adapters.factory",
    "dbt.adapters.duckdb.connections",
    "dbt_common.events.functions",
    "dbt_common.events.contextvars",
    "dbt.flags",
)


def private(module: str, name: str = "") -> bool:
    parts = [*module.split("."), *([name] if name else [])]
    internal = any(module == m or module.startswith(f"{m}.") for m in INTERNAL_MODULES)
    return internal or any(part.startswith("_") and not part.startswith("__") for part in parts)


def private_imports(path: Path) -> Iterator[str]:
    """``module.name`` of each import of a library's private name or internal module in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            if node.module.split(".")[0] != "floe_dagster":
                yield from (f"{node.module}.{a.name}" for a in node.names if private(node.module, a.name))
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if private(alias.name))


def test_no_module_but_compat_touches_a_private_api() -> None:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path != PACKAGE / "core" / "compat.py" and (names := list(private_imports(path))):
            found[str(path.relative_to(PACKAGE))] = names
    assert found == {}
    assert "pyiceberg.io.pyarrow._dataframe_to_data_files" in private_imports_of(
        "from pyiceberg.io.pyarrow import _dataframe_to_data_files"
    )  # the scan sees one


def private_imports_of(source: str) -> list[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.py"
        path.write_text(source)
        return list(private_imports(path))
