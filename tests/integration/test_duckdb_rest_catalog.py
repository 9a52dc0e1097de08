"""DuckDB attaches an Iceberg REST catalog natively (iceberg extension), against the REST fixture.

The endpoint and OAuth2 client come from the catalog plugin, never from the compute config. The
attachment SQL holds the client secret by necessity; the fixture's client secret is the canary:
it must work, and never appear in errors, logs, Dagster events, check metadata or files.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from floe_dagster.catalogs.rest import (
    PolarisCatalogConfig,
    PolarisCatalogPlugin,
    RestCatalogConfig,
    RestCatalogPlugin,
)
from floe_dagster.computes.duckdb import DuckDBComputePlugin
from floe_dagster.computes.duckdb_extensions import connect_with_extensions
from floe_dagster.transforms.dbt_duckdb_plugin import Plugin as DbtDuckDBPlugin
from tests.fixtures.iceberg_rest_server import IcebergRestServer

pytestmark = pytest.mark.server

WAREHOUSE = "floe_duckdb"


def rest_catalog(server: IcebergRestServer, name: str = "lake", **overrides: Any) -> RestCatalogPlugin:
    raw = {
        "uri": server.uri,
        "warehouse": WAREHOUSE,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "request_timeout_s": 10,
        **overrides,
    }
    return RestCatalogPlugin(name, RestCatalogConfig.model_validate(raw))


def seed_table(catalog: RestCatalogPlugin) -> str:
    """A namespace of its own with ``customers`` (3 rows); returns the namespace."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    namespace = f"raw_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace((namespace,))
    table = catalog.create_table(
        (namespace, "customers"),
        Schema(
            NestedField(1, "id", LongType(), required=False),
            NestedField(2, "name", StringType(), required=False),
        ),
    )
    table.append(pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["ada", "bo", "cy"]}))
    return namespace


@pytest.fixture
def rest_server(iceberg_rest_server: IcebergRestServer) -> IcebergRestServer:
    iceberg_rest_server.reset()
    return iceberg_rest_server


@pytest.fixture(scope="module")
def extension_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("duckdb_extensions")


@pytest.mark.parametrize("kind", ["rest", "polaris"])
def test_duckdb_reads_a_rest_catalog_table_through_attach(
    rest_server: IcebergRestServer, extension_dir: Path, kind: str
) -> None:
    catalog = rest_catalog(rest_server)
    namespace = seed_table(catalog)
    if kind == "polaris":
        config = PolarisCatalogConfig.model_validate(
            {
                "uri": rest_server.uri,
                "warehouse": WAREHOUSE,
                "client_id": rest_server.client_id,
                "client_secret": rest_server.client_secret,
            }
        )
        catalog = PolarisCatalogPlugin("lake", config)
    statements = DuckDBComputePlugin().get_catalog_attachment_sql(catalog)
    assert statements is not None
    attach = next(s for s in statements if s.startswith("ATTACH"))
    assert f"ENDPOINT '{rest_server.uri}'" in attach and "TYPE iceberg" in attach
    assert f"'{WAREHOUSE}'" in attach
    con = connect_with_extensions(":memory:", extension_dir, ["iceberg"])  # httpfs is autoloaded
    try:
        for statement in statements * 2:  # configuring a connection twice is harmless
            con.execute(statement)
        rows = con.execute(f'SELECT id, name FROM lake."{namespace}".customers ORDER BY id').fetchall()
    finally:
        con.close()
    assert rows == [(1, "ada"), (2, "bo"), (3, "cy")]
    tokens = rest_server.requests("/v1/oauth/tokens", "POST")
    assert tokens and all(r["status"] == 200 for r in tokens)
    if kind == "polaris":
        scoped = next(s for s in statements if "OAUTH2_SCOPE" in s)
        assert "OAUTH2_SCOPE 'PRINCIPAL_ROLE:ALL'" in scoped


def test_a_database_of_the_same_name_fails_instead_of_shadowing_the_catalog(
    rest_server: IcebergRestServer, extension_dir: Path, tmp_path: Path
) -> None:
    catalog = rest_catalog(rest_server, name="lakehouse")
    statements = DuckDBComputePlugin().get_catalog_attachment_sql(catalog) or []
    con = connect_with_extensions(str(tmp_path / "lakehouse.duckdb"), extension_dir, ["iceberg"])
    try:
        with pytest.raises(Exception, match="catalog 'lakehouse' cannot be attached"):
            for statement in statements:
                con.execute(statement)
    finally:
        con.close()


def test_a_refused_client_secret_fails_without_showing_it(
    rest_server: IcebergRestServer, extension_dir: Path
) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    catalog = rest_catalog(rest_server, client_secret=canary)
    plugin = DbtDuckDBPlugin("floe", {"manifest": "unused.yaml", "catalogs": ["lake"]})
    plugin._catalog = lambda name: catalog  # type: ignore[method-assign]
    con = connect_with_extensions(":memory:", extension_dir, ["iceberg"])
    try:
        with pytest.raises(RuntimeError) as info:
            plugin.configure_connection(con)
    finally:
        con.close()
    message = str(info.value)
    assert "attaching catalog 'lake' failed" in message
    assert "CLIENT_SECRET '**********'" in message  # the statement is named, its secret masked
    assert "401" in message or "invalid_client" in message
    assert canary not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_an_engine_error_echoing_the_statement_is_scrubbed() -> None:
    """DuckDB parser errors quote the statement ('LINE 1: ...'): the secret is masked there too."""
    canary = "CANARY-echo-0b1f"

    class EchoingConnection:
        def execute(self, statement: str) -> None:
            raise ValueError(f"Parser Error: syntax error\nLINE 1: {statement}")

    class Catalog:
        name = "lake"

        def iceberg_rest_endpoint(self) -> Any:
            from pydantic import SecretStr

            from floe_dagster.catalogs.rest import IcebergRestEndpoint

            return IcebergRestEndpoint(
                uri="http://127.0.0.1:9",
                warehouse="w",
                client_id="id",
                client_secret=SecretStr(canary),
                oauth2_server_uri="http://127.0.0.1:9/v1/oauth/tokens",
                scope="catalog",
                vended_credentials=True,
            )

    plugin = DbtDuckDBPlugin("floe", {"manifest": "unused.yaml", "catalogs": ["lake"]})
    plugin._catalog = lambda name: Catalog()  # type: ignore[method-assign,assignment,return-value]
    with pytest.raises(RuntimeError) as info:
        plugin.configure_connection(EchoingConnection())
    assert "LINE 1: CREATE OR REPLACE TEMPORARY SECRET" in str(info.value)
    assert canary not in str(info.value)


MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {{name: duckdb-rest}}
state_dir: state
catalogs:
  lakehouse:
    type: rest
    config:
      uri: {uri}
      warehouse: {warehouse}
      client_id: {client_id}
      client_secret: ${{env:FLOE_CANARY_REST_SECRET}}
computes:
  approved: [duckdb]
  default: duckdb
  targets:
    duckdb:
      type: duckdb
      config:
        path: state/engine.duckdb
        timeout_seconds: 60
metastores:
  lakehouse:
    type: iceberg
    config: {{catalog: lakehouse}}
    include: ["{namespace}.*"]
transforms:
  dbt_project: dbt
"""


def write_project(root: Path, server: IcebergRestServer, namespace: str) -> Path:
    (root / "dbt" / "models").mkdir(parents=True)
    (root / "dbt" / "dbt_project.yml").write_text(
        "name: rest_canary\nprofile: rest_canary\nconfig-version: 2\n"
    )
    (root / "dbt" / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: lakehouse\n    database: lakehouse\n"
        f"    schema: {namespace}\n    tables: [{{name: customers}}]\n"
    )
    (root / "dbt" / "models" / "customer_count.sql").write_text(
        "{{ config(materialized='table') }}\n"
        "select count(*) as n, sum(id) as total from {{ source('lakehouse', 'customers') }}\n"
    )
    manifest = root / "manifest.yaml"
    manifest.write_text(
        MANIFEST.format(uri=server.uri, warehouse=WAREHOUSE, client_id=server.client_id, namespace=namespace)
    )
    return manifest


def every_text_under(root: Path) -> str:
    chunks = []
    for path in root.rglob("*"):
        if path.is_file() and path.stat().st_size < 20_000_000 and path.suffix != ".duckdb_extension":
            chunks.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(chunks)


@pytest.mark.e2e
def test_dbt_on_duckdb_reads_the_rest_catalog_through_dagster_and_the_secret_stays_hidden(
    rest_server: IcebergRestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import duckdb
    from dagster import DagsterInstance

    from floe_dagster import MAIN_JOB, build_definitions
    from floe_dagster.dagster_stage.health import HEALTH_JOB

    canary = rest_server.client_secret  # the real secret is the canary: it must work, and never show
    monkeypatch.setenv("FLOE_CANARY_REST_SECRET", canary)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    namespace = seed_table(rest_catalog(rest_server))
    defs = build_definitions(write_project(tmp_path, rest_server, namespace))
    instance = DagsterInstance.get()
    result = defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance)
    assert result.success
    health = defs.resolve_job_def(HEALTH_JOB).execute_in_process(instance=instance)
    assert health.success
    [evaluation] = health.get_asset_check_evaluations()
    assert evaluation.passed

    con = duckdb.connect(str(tmp_path / "state" / "engine.duckdb"), read_only=True)
    try:
        assert con.execute("select n, total from main.customer_count").fetchall() == [(3, 6)]
    finally:
        con.close()

    events = "\n".join(
        json.dumps(r.event_log_entry.to_json())
        for run in (result, health)
        for r in instance.get_records_for_run(run.run_id).records
    )
    assert "customer_count" in events
    out, err = capfd.readouterr()
    for where, text in {
        "dagster events": events,
        "stdout": out,
        "stderr": err,
        "files (profiles, dbt logs and artifacts, dagster storage)": every_text_under(tmp_path),
    }.items():
        assert canary not in text, f"the REST client secret leaked into {where}"
