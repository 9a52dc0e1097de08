"""Schema evolution of an upstream Iceberg table, through real dbt builds on the DuckDB and the
PostgreSQL computes: an added column, a widened type (int -> long, float -> double) and a renamed
column, each handled as docs/engines-postgres-snowflake.md documents:

- rows written before the change are read under the *current* schema (columns matched by Iceberg
  field id): the renamed column under its new name, widened columns as the wider type, the added
  column NULL for the old rows;
- a model still selecting a renamed column's old name fails with the engine's error naming that
  column (no silent NULLs).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from floe_dagster.manifest import load_manifest
from floe_dagster.plan.builders import build_catalog, build_compute
from floe_dagster.transforms.profiles import profile_context, write_profiles
from tests.fixtures.postgres import PostgresServer

pytestmark = pytest.mark.server

DBT = Path(sys.executable).parent / "dbt"

MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {{name: evolution}}
catalogs:
  lakehouse:
    type: sql
    config: {{uri: "sqlite:///catalog.db", warehouse: warehouse}}
computes:
  approved: [{compute}]
  default: {compute}
  targets:
{target}
transforms:
  dbt_project: dbt
  catalog: lakehouse
"""

DUCKDB_TARGET = """\
    duck:
      type: duckdb
      config: {path: engine.duckdb}
"""

POSTGRES_TARGET = """\
    pg:
      type: postgres
      config:
        host: 127.0.0.1
        port: {port}
        user: {user}
        password: ${{env:FLOE_TEST_EVO_PASSWORD}}
        dbname: {dbname}
        schema: models
        iceberg_io: true
        connect_timeout: 5
"""

OLD_MODEL = "select id, amount, name from {{ source('raw', 'orders') }}\n"
NEW_MODEL = "select id, amount, customer, note from {{ source('raw', 'orders') }}\n"


def write_project(root: Path, compute: str, target: str) -> Path:
    project = root / "dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: evo\nversion: '1.0'\nconfig-version: 2\nprofile: evo\nmodel-paths: [models]\n"
        "models:\n  evo:\n    +materialized: table\n"
    )
    # DuckDB reads the catalog as the database `lakehouse`; dbt-postgres has no cross-database
    # references, so there the source is the schema floe copied the table into.
    (project / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: raw\n"
        "    database: \"{{ '' if target.type == 'postgres' else 'lakehouse' }}\"\n"
        "    schema: raw\n    tables: [{name: orders}]\n"
    )
    (project / "models" / "order_lines.sql").write_text(OLD_MODEL)
    manifest = root / "manifest.yaml"
    manifest.write_text(MANIFEST.format(compute=compute, target=target))
    return manifest


def evolve(catalog: Any) -> None:
    """v1 (id int, amount float, name string) with 2 rows; then add `note`, widen `id` and `amount`,
    rename `name` -> `customer`, and append one row in the new schema."""
    from pyiceberg.types import DoubleType, LongType, StringType

    table = catalog.load_table(("raw", "orders"))
    with table.update_schema() as update:
        update.add_column("note", StringType())
        update.update_column("id", LongType())
        update.update_column("amount", DoubleType())
        update.rename_column("name", "customer")
    table = catalog.load_table(("raw", "orders"))
    table.append(
        pa.table(
            {
                "id": pa.array([3_000_000_000], pa.int64()),  # needs the widened type
                "amount": pa.array([3.25], pa.float64()),
                "customer": ["cy"],
                "note": ["after the change"],
            }
        )
    )


def seed(catalog: Any) -> None:
    catalog.ensure_namespace(("raw",))
    v1 = pa.table(
        {
            "id": pa.array([1, 2], pa.int32()),
            "amount": pa.array([1.5, 2.5], pa.float32()),
            "name": ["ada", "bo"],
        }
    )
    catalog.create_table(("raw", "orders"), schema=v1.schema).append(v1)


class Run:
    """`dbt build` on one compute the way floe runs it: profile, prepare, dbt, finish."""

    def __init__(self, manifest: Path, compute: str) -> None:
        self.loaded = load_manifest(manifest)
        self.compute = compute
        self.plugin, self.config = build_compute(self.loaded, compute)
        self.context = profile_context(self.loaded, compute)
        self.profiles = write_profiles(self.loaded)

    def build(self) -> subprocess.CompletedProcess[str]:
        extra = self.plugin.prepare_dbt_run(self.config, self.context)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(self.plugin.dbt_env(self.config, self.compute), **extra)
        env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1")
        project = self.loaded.dbt_project_dir
        run = subprocess.run(
            [str(DBT), "build", "--project-dir", str(project), "--profiles-dir", str(self.profiles)],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if run.returncode == 0:
            self.plugin.finish_dbt_run(self.config, self.context)
        return run


def check_evolution(run: Run, read_output: Any, old_name_error: str) -> None:
    catalog = build_catalog(run.loaded, "lakehouse")
    seed(catalog)
    first = run.build()
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-1000:]
    assert sorted(read_output(["id", "amount", "name"])) == [(1, 1.5, "ada"), (2, 2.5, "bo")]

    evolve(catalog)
    # the renamed column: a model selecting its old name fails, naming it
    failed = run.build()
    assert failed.returncode != 0
    assert old_name_error in failed.stdout, failed.stdout[-3000:]

    # the model updated to the current schema reads every row under it
    (run.loaded.dbt_project_dir / "models" / "order_lines.sql").write_text(NEW_MODEL)
    fixed = run.build()
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-1000:]
    assert sorted(read_output(["id", "amount", "customer", "note"])) == [
        (1, 1.5, "ada", None),
        (2, 2.5, "bo", None),
        (3_000_000_000, 3.25, "cy", "after the change"),
    ]


def test_schema_evolution_on_duckdb(tmp_path: Path) -> None:
    run = Run(write_project(tmp_path, "duck", DUCKDB_TARGET), "duck")

    def read_output(columns: list[str]) -> list[tuple[Any, ...]]:
        import duckdb

        con = duckdb.connect(str(tmp_path / "engine.duckdb"), read_only=True)
        try:
            types = dict(
                con.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_name = 'order_lines'"
                ).fetchall()
            )
            if "customer" in columns:
                assert (types["id"], types["amount"]) == ("BIGINT", "DOUBLE")  # widened
            return [tuple(r) for r in con.execute(f"select {', '.join(columns)} from order_lines").fetchall()]
        finally:
            con.close()

    check_evolution(run, read_output, 'Referenced column "name" not found')


def test_schema_evolution_on_postgres(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOE_TEST_EVO_PASSWORD", postgres_server.password)
    dbname = postgres_server.create_database()
    target = POSTGRES_TARGET.format(port=postgres_server.port, user=postgres_server.user, dbname=dbname)
    run = Run(write_project(tmp_path, "pg", target), "pg")

    def read_output(columns: list[str]) -> list[tuple[Any, ...]]:
        # what floe committed back to the catalog (models.order_lines), read through PyIceberg
        table = build_catalog(run.loaded, "lakehouse").load_table(("models", "order_lines"))
        data = table.scan().to_arrow()
        if "customer" in columns:
            assert (str(data.schema.field("id").type), str(data.schema.field("amount").type)) == (
                "int64",
                "double",
            )
        return [tuple(row[c] for c in columns) for row in data.to_pylist()]

    check_evolution(run, read_output, 'column "name" does not exist')
    con = postgres_server.connect(dbname)
    try:
        with con.cursor() as cur:
            cur.execute(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = 'raw' and table_name = 'orders' order by ordinal_position"
            )
            assert cur.fetchall() == [
                ("id", "bigint"),
                ("amount", "double precision"),
                ("customer", "text"),
                ("note", "text"),
            ]
    finally:
        con.close()
