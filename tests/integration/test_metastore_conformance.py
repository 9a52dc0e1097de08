"""The same conformance checks (``floe_dagster/metastores/conformance.py``) against every provider.

Providers: an Iceberg catalog (SQLite ``SqlCatalog``), the real Hive Metastore, Glue on moto,
Dataproc (the local GetService server in front of the real HMS) and, when the module exists,
the S3 prefix metastore on moto. Every (provider, check) pair is one test; the assertions are
the checker's, with no provider-specific branch. Every provider's table is one DuckDB can read
(HMS and Dataproc: the partitioned Parquet table ``events``), so ``scan_description`` really
runs the SQL it makes. ``check_unavailable`` runs against each provider pointed at a metastore
that is not there. The checker itself is tested too: a connector wrapper that tags an error
wrongly must make it fail, naming the provider and the mismatch.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.core.errors import FloeError, NotFoundError
from floe_dagster.metastores.conformance import (
    CHECKS,
    FAIL,
    PASS,
    ConformanceMismatch,
    assert_conformant,
    check_connector,
    check_unavailable,
    format_report,
    pick_table,
    run_check,
)
from floe_dagster.metastores.iceberg import IcebergMetastoreConfig, IcebergMetastoreConnector
from floe_dagster.plugins.factory import connect_metastore
from floe_dagster.plugins.metastore import MetastoreConnector
from floe_dagster.plugins.table_model import Table
from tests.fixtures.dataproc_api import LOCATION, PROJECT, SERVICE, FakeMetastoreApi
from tests.fixtures.glue_seed import glue_connector, seed_glue
from tests.fixtures.hive_metastore import SeededMetastore
from tests.fixtures.moto_server import MotoServer

pytestmark = pytest.mark.server

HAS_S3 = importlib.util.find_spec("floe_dagster.metastores.s3") is not None
PROVIDERS = ["iceberg", "hive", "glue", "dataproc", *(["s3"] if HAS_S3 else [])]
Target = tuple[MetastoreConnector, str, str]


def iceberg_target(tmp: Path) -> Target:
    config = SqlCatalogPlugin.config_model.model_validate(
        {"uri": f"sqlite:///{tmp}/catalog.db", "warehouse": str(tmp / "warehouse")}
    )
    catalog = SqlCatalogPlugin("lake", config)
    catalog.create_namespace(("raw",))
    schema = pa.schema([("id", pa.int64()), ("label", pa.string())])
    for name in ("customers", "orders"):
        catalog.create_table(("raw", name), schema=schema).append(
            pa.table({"id": pa.array([1, 2], pa.int64()), "label": ["a", "b"]})
        )
    connector = IcebergMetastoreConnector("lake", IcebergMetastoreConfig(catalog="lake"), catalog=catalog)
    return connector, "raw", "orders"


def s3_target(server: MotoServer) -> Target:
    bucket = server.create_bucket("conf")
    buffer = io.BytesIO()
    pq.write_table(pa.table({"id": pa.array([1, 2, 3], pa.int64())}), buffer)
    server.client("s3").put_object(Bucket=bucket, Key="orders/part-0.parquet", Body=buffer.getvalue())
    options = {
        "bucket": bucket,
        "region": server.region,
        "endpoint": server.endpoint,
        "access_key_id": server.access_key_id,
        "secret_access_key": server.secret_access_key,
    }
    connector = connect_metastore("s3lake", "s3", options, environ={})
    found = pick_table(connector)
    assert found is not None
    return connector, *found


@pytest.fixture(scope="module", params=PROVIDERS)
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    provider = request.param
    if provider == "iceberg":
        yield iceberg_target(tmp_path_factory.mktemp("iceberg"))
    elif provider == "hive":
        seeded: SeededMetastore = request.getfixturevalue("seeded_hive_metastore")
        with connect_metastore("lake", "hive", {"uri": seeded.metastore.uri}, environ={}) as hive:  # type: ignore[attr-defined]
            yield hive, seeded.db, seeded.partitioned
    elif provider == "glue":
        server: MotoServer = request.getfixturevalue("moto_server")
        seeded_glue = seed_glue(server)
        yield glue_connector(server), seeded_glue.db, "orders"
    elif provider == "dataproc":
        seeded = request.getfixturevalue("seeded_hive_metastore")
        api = FakeMetastoreApi()
        api.services[f"projects/{PROJECT}/locations/{LOCATION}/services/{SERVICE}"] = seeded.metastore.uri
        options = {
            "project": PROJECT,
            "location": LOCATION,
            "service": SERVICE,
            "api_endpoint": api.endpoint,
            "anonymous": True,
        }
        try:
            with connect_metastore("lake", "dataproc", options, environ={}) as dataproc:  # type: ignore[attr-defined]
                yield dataproc, seeded.db, seeded.partitioned
        finally:
            api.close()
    else:
        yield s3_target(request.getfixturevalue("moto_server"))


@pytest.mark.parametrize("check", CHECKS)
def test_conformance(target: Target, check: str) -> None:
    connector, namespace, table = target
    result = run_check(connector, check, namespace, table)
    assert result.passed, str(result)


def closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=PROVIDERS)
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MetastoreConnector]:
    """Each provider's connector pointed at a metastore that is not there (a closed port, or for
    SQLite a database path that cannot be opened)."""
    provider, dead = request.param, f"http://127.0.0.1:{closed_port()}"
    fast = {"backoff_s": 0.01, "backoff_max_s": 0.02}
    if provider == "iceberg":
        iceberg_target(tmp_path)
        database = tmp_path / "catalog.db"
        database.rename(tmp_path / "catalog.db.away")
        database.mkdir()  # SQLite cannot open a folder: the catalog is unavailable
        config = SqlCatalogPlugin.config_model.model_validate(
            {"uri": f"sqlite:///{database}", "warehouse": str(tmp_path / "warehouse")}
        )
        catalog = SqlCatalogPlugin("lake", config)
        yield IcebergMetastoreConnector("lake", IcebergMetastoreConfig(catalog="lake"), catalog=catalog)
    elif provider == "hive":
        uri = f"thrift://127.0.0.1:{closed_port()}"
        yield connect_metastore("lake", "hive", {"uri": uri, "retries": 1, **fast}, environ={})
    elif provider == "glue":
        options = {"region": "us-east-1", "endpoint": dead, "access_key_id": "k", "secret_access_key": "s"}
        yield connect_metastore("lake", "glue", {**options, "max_attempts": 2, **fast}, environ={})
    elif provider == "dataproc":
        api = FakeMetastoreApi()  # the API answers; the Thrift endpoint it hands out is closed
        api.services[f"projects/{PROJECT}/locations/{LOCATION}/services/{SERVICE}"] = (
            f"thrift://127.0.0.1:{closed_port()}"
        )
        options = {
            "project": PROJECT,
            "location": LOCATION,
            "service": SERVICE,
            "api_endpoint": api.endpoint,
            "anonymous": True,
            "retries": 1,
            **fast,
        }
        try:
            yield connect_metastore("lake", "dataproc", options, environ={})
        finally:
            api.close()
    else:
        options = {"bucket": "nowhere", "region": "us-east-1", "endpoint": dead, "access_key_id": "k"}
        yield connect_metastore(
            "lake", "s3", {**options, "secret_access_key": "s", "max_attempts": 2}, environ={}
        )


def test_an_unreachable_metastore_is_a_retryable_tagged_error(unreachable: MetastoreConnector) -> None:
    check_unavailable(unreachable)  # raises ConformanceMismatch naming the mismatch


def test_the_unavailable_check_fails_on_a_wrong_retryable_tag(tmp_path: Path) -> None:
    connector = connect_metastore(
        "lake", "hive", {"uri": f"thrift://127.0.0.1:{closed_port()}", "retries": 0}, environ={}
    )
    real = connector.list_namespaces

    def non_retryable() -> list[str]:
        try:
            return real()
        except FloeError as exc:
            exc.retryable = False
            raise

    connector.list_namespaces = non_retryable  # type: ignore[method-assign]
    with pytest.raises(ConformanceMismatch, match="error tag retryable: expected True, got False"):
        check_unavailable(connector)


# --- the checker catches inconsistencies ----------------------------------------------------------


def mistagged(connector: MetastoreConnector) -> MetastoreConnector:
    """The same connector, but its missing-table error claims another provider and operation."""
    real_get_table = connector.get_table

    def get_table(namespace: str, table: str) -> Table:
        try:
            return real_get_table(namespace, table)
        except NotFoundError as exc:
            raise NotFoundError(str(exc), provider="hive", operation="lookup", retryable=True) from None

    connector.get_table = get_table  # type: ignore[method-assign]
    return connector


def test_a_wrongly_tagged_error_fails_the_suite_naming_provider_and_mismatch(
    moto_server: MotoServer, tmp_path: Path
) -> None:
    seeded = seed_glue(moto_server)
    results = check_connector(mistagged(glue_connector(moto_server)), seeded.db, "orders")
    failed = {r.check: r for r in results if r.status == FAIL}
    assert set(failed) == {"error_tags"}, [str(r) for r in results]
    text = str(failed["error_tags"])
    assert "provider glue" in text and "error tag provider: expected 'glue', got 'hive'" in text
    with pytest.raises(AssertionError) as info:
        assert_conformant(results)
    assert "provider glue" in str(info.value) and "got 'hive'" in str(info.value)
    report = format_report(results)
    assert report.splitlines()[1].split()[:2] == ["glue", "lake"] and "FAIL" in report.splitlines()[1]

    # the same injection on another provider is caught the same way (no provider branch)
    connector, namespace, table = iceberg_target(tmp_path)
    result = run_check(mistagged(connector), "error_tags", namespace, table)
    assert result.status == FAIL and "provider iceberg" in str(result) and "got 'hive'" in str(result)


def test_unmapped_exceptions_and_bad_debug_output_fail(tmp_path: Path) -> None:
    connector, namespace, table = iceberg_target(tmp_path)

    def boom(*_: Any) -> list[str]:
        raise KeyError("raw SDK error")

    connector.list_tables = boom  # type: ignore[method-assign]
    result = run_check(connector, "list", namespace, table)
    assert result.status == FAIL and "KeyError escaped unmapped" in result.detail
    connector.debug_report = lambda: "floe metastore debug: lake\nsecret=oops\n"  # type: ignore[method-assign]
    result = run_check(connector, "debug_output", namespace, table)
    assert result.status == FAIL and "debug_report lines" in result.detail
    assert run_check(iceberg_target(tmp_path / "again")[0], "get", namespace, table).status == PASS


# --- floe conformance ------------------------------------------------------------------------------


def test_floe_conformance_prints_pass_fail_per_provider_and_check(
    moto_server: MotoServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from floe_dagster.cli import main
    from floe_dagster.demo import seed_demo
    from floe_dagster.manifest.loader import load_manifest
    from tests.helpers import copy_demo_project

    for name in ("FLOE_STATE_DIR", "FLOE_MANIFEST", "FLOE_ENV"):
        monkeypatch.delenv(name, raising=False)
    seeded = seed_glue(moto_server)
    root = copy_demo_project(tmp_path / "project")
    manifest = root / "manifests" / "manifest.yaml"
    text = manifest.read_text()
    glue_block = (
        "metastores:\n"
        "  glue_lake:\n"
        "    type: glue\n"
        "    config:\n"
        f"      region: {moto_server.region}\n"
        f"      endpoint: {moto_server.endpoint}\n"
        f"      s3_endpoint: {moto_server.endpoint}\n"
        f"      access_key_id: {moto_server.access_key_id}\n"
        f"      secret_access_key: {moto_server.secret_access_key}\n"
        f'    include: ["{seeded.db}.orders"]\n'
    )
    manifest.write_text(text.replace("metastores:\n", glue_block, 1))

    # not seeded yet: the iceberg metastore has no table -> FAIL with the reason, exit 1
    assert main(["conformance", str(manifest)]) == 1
    out = capsys.readouterr().out
    rows = {line.split()[1]: line.split()[2:] for line in out.splitlines()[1:3]}
    assert rows["glue_lake"] == [PASS] * len(CHECKS)
    assert rows["lakehouse"] == [FAIL] * len(CHECKS) and "no table to check" in out

    seed_demo(load_manifest(manifest))
    assert main(["conformance", str(manifest)]) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    lines = out.split("\n\n")[0].splitlines()  # the checks per metastore; the rows per format follow
    assert "PROVIDER/FORMAT" in out and "glue/parquet" in out and "iceberg/iceberg" in out
    assert lines[0].split() == ["PROVIDER", "METASTORE", *(c.upper() for c in CHECKS)]
    assert sorted(line.split()[0] for line in lines[1:]) == ["glue", "iceberg"]
    assert all(line.split()[2:] == [PASS] * len(CHECKS) for line in lines[1:])
    assert main(["conformance", str(manifest), "--metastore", "nope"]) == 1
    assert "unknown metastore 'nope'" in capsys.readouterr().err


def test_scan_description_runs_the_sql_and_fails_when_duckdb_cannot_read_it(tmp_path: Path) -> None:
    import dataclasses

    connector, namespace, table = iceberg_target(tmp_path)
    assert run_check(connector, "scan_description", namespace, table).status == PASS
    real = connector.describe_scan

    def stale_metadata(*args: Any, **kwargs: Any) -> Any:
        scan = real(*args, **kwargs)
        return dataclasses.replace(scan, metadata_location=str(tmp_path / "gone" / "v9.metadata.json"))

    connector.describe_scan = stale_metadata  # type: ignore[method-assign]
    result = run_check(connector, "scan_description", namespace, table)
    assert result.status == FAIL and "DuckDB reading raw.orders: expected rows" in result.detail
