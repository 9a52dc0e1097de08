"""Sources are read-only: a model targeting a source table (or another catalog than
``transforms.catalog``) is a plan error, and engines refuse writes to sources where they can
(DuckDB attaches REST catalogs READ_ONLY; the PostgreSQL family's source copies reject writes)."""

from __future__ import annotations

import uuid
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from floe_dagster.catalogs.rest import RestCatalogConfig, RestCatalogPlugin
from floe_dagster.computes.duckdb import DuckDBComputePlugin
from floe_dagster.computes.duckdb_extensions import connect_with_extensions
from floe_dagster.computes.postgres_iceberg import stage_catalog
from floe_dagster.manifest import ManifestError, load_manifest
from floe_dagster.plan.compile import compile_plan
from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest
from tests.fixtures.iceberg_rest_server import IcebergRestServer
from tests.fixtures.postgres import PostgresServer
from tests.helpers import run_floe

pytestmark = pytest.mark.server


# --- the plan ---------------------------------------------------------------------------------


def test_a_model_whose_target_is_a_source_table_is_a_plan_error(demo_project: Path) -> None:
    models = demo_project / "dbt_project" / "models" / "staging"
    clash = models / "payments_fixed.sql"
    clash.write_text("{{ config(schema='raw', alias='payments') }}\nselect 1 as id\n")
    result = run_floe(["validate", "manifests/manifest.yaml"], cwd=demo_project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    messages = [line for line in result.stderr.splitlines() if "would write" in line]
    assert len(messages) == 1, result.stderr
    message = messages[0]
    assert message.split(": ", 1)[0].endswith("models/staging/payments_fixed.sql:1:1"), message
    assert "model 'payments_fixed' would write raw.payments, which is the source 'raw.payments'" in message
    assert "(table raw.payments of metastore 'lakehouse')" in message
    assert "sources are read-only: give the model another name (or alias / schema)" in message
    assert "{{ source('raw', 'payments') }}" in message

    # the fix the message gives: another alias, and the plan compiles
    clash.write_text("{{ config(schema='raw', alias='payments_fixed') }}\nselect 1 as id\n")
    loaded = load_manifest(demo_project / "manifests" / "manifest.yaml")
    plan = compile_plan(loaded, prepare_dbt_manifest(loaded))
    assert "payments_fixed" in {t.name for t in plan.transforms}


def test_a_model_writing_into_another_catalog_is_a_plan_error(demo_project: Path) -> None:
    manifest = demo_project / "manifests" / "manifest.yaml"
    text = manifest.read_text()
    extra = (
        "  archive:\n    type: sql\n"
        "    config: {uri: 'sqlite:///../.floe/archive.db', warehouse: ../.floe/archive}\n"
    )
    if "catalogs:\n" in text:
        text = text.replace("catalogs:\n", "catalogs:\n" + extra, 1)
    else:
        text = text.replace("computes:", "catalogs:\n" + extra + "computes:", 1)
    manifest.write_text(text)
    model = demo_project / "dbt_project" / "models" / "marts" / "to_archive.sql"
    model.write_text("{{ config(database='archive') }}\nselect 1 as id\n")
    loaded = load_manifest(manifest)
    assert "archive" in loaded.manifest.catalogs
    with pytest.raises(ManifestError) as info:
        compile_plan(loaded, prepare_dbt_manifest(loaded))
    (problem,) = info.value.problems
    assert str(problem.position).endswith("models/marts/to_archive.sql:1:1"), problem
    assert (
        "model 'to_archive' would write into catalog 'archive' (its database); models write only to"
        " transforms.catalog ('lakehouse')"
    ) in problem.message


# --- the engines ------------------------------------------------------------------------------


def test_duckdb_attaches_a_rest_catalog_read_only(
    iceberg_rest_server: IcebergRestServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    iceberg_rest_server.reset()
    catalog = RestCatalogPlugin(
        "lake",
        RestCatalogConfig.model_validate(
            {
                "uri": iceberg_rest_server.uri,
                "warehouse": "floe_duckdb",
                "client_id": iceberg_rest_server.client_id,
                "client_secret": iceberg_rest_server.client_secret,
            }
        ),
    )
    namespace = f"raw_{uuid.uuid4().hex[:8]}"
    catalog.create_namespace((namespace,))
    data = pa.table({"id": pa.array([1, 2], pa.int64())})
    catalog.create_table((namespace, "events"), schema=data.schema).append(data)
    statements = DuckDBComputePlugin().get_catalog_attachment_sql(catalog) or []
    attach = next(s for s in statements if s.startswith("ATTACH"))
    assert attach.endswith("READ_ONLY)")
    con = connect_with_extensions(":memory:", tmp_path_factory.mktemp("ext"), ["iceberg"])
    try:
        for statement in statements:
            con.execute(statement)
        assert con.execute(f'SELECT count(*) FROM lake."{namespace}".events').fetchone() == (2,)
        with pytest.raises(duckdb.Error, match="(?i)read.only"):
            con.execute(f'INSERT INTO lake."{namespace}".events VALUES (3)')
    finally:
        con.close()
    assert catalog.load_table((namespace, "events")).scan().to_arrow().num_rows == 2


def test_postgres_source_copies_reject_writes(postgres_server: PostgresServer, tmp_path: Path) -> None:
    from floe_dagster.catalogs.sql import SqlCatalogConfig, SqlCatalogPlugin

    catalog = SqlCatalogPlugin(
        "lake",
        SqlCatalogConfig.model_validate(
            {"uri": "sqlite:///catalog.db", "warehouse": "warehouse"}, context={"base_dir": tmp_path}
        ),
    )
    catalog.ensure_namespace(("raw",))
    data = pa.table({"id": pa.array([1, 2], pa.int64())})
    catalog.create_table(("raw", "events"), schema=data.schema).append(data)
    con = postgres_server.connect(postgres_server.create_database())
    try:
        (staged,) = stage_catalog(con, catalog)
        assert (staged.schema, staged.table, staged.rows) == ("raw", "events", 2)
        writes = ("INSERT INTO raw.events VALUES (3)", "UPDATE raw.events SET id = 0", "TRUNCATE raw.events")
        for statement in writes:
            with con.cursor() as cur, pytest.raises(Exception) as info:
                cur.execute(statement)
            con.rollback()
            expected = "floe: raw.events is a read-only copy of the Iceberg source lake.raw.events"
            assert expected in str(info.value)
        with con.cursor() as cur:
            cur.execute(
                "SELECT count(*), obj_description('raw.events'::regclass, 'pg_class')" " FROM raw.events"
            )
            count, comment = cur.fetchone()
        assert count == 2 and comment.startswith("floe-source: lake.raw.events snapshot ")

        # the next run: same columns -> refilled in place (a view on the copy survives, writes still
        # rejected); a changed schema -> re-created, the view on the old copy dropped
        with con.cursor() as cur:
            cur.execute("CREATE VIEW raw.events_v AS SELECT id FROM raw.events")
        con.commit()
        catalog.load_table(("raw", "events")).append(pa.table({"id": pa.array([3], pa.int64())}))
        stage_catalog(con, catalog)
        with con.cursor() as cur:
            cur.execute("SELECT count(*) FROM raw.events_v")
            assert cur.fetchone() == (3,)
            with pytest.raises(Exception, match="read-only copy of the Iceberg source"):
                cur.execute("DELETE FROM raw.events")
        con.rollback()
        from pyiceberg.types import StringType

        with catalog.load_table(("raw", "events")).update_schema() as update:
            update.add_column("note", StringType())
        stage_catalog(con, catalog)
        with con.cursor() as cur:
            cur.execute("SELECT count(*), count(note) FROM raw.events")
            assert cur.fetchone() == (3, 0)
            cur.execute("SELECT to_regclass('raw.events_v')")
            assert cur.fetchone() == (None,)
            with pytest.raises(Exception, match="read-only copy of the Iceberg source"):
                cur.execute("DELETE FROM raw.events")
        con.rollback()
    finally:
        con.close()
