"""What the object-store source tests share (S3 and S3-compatible, Azure Blob, GCS): the Parquet
objects they seed, the SQL catalog they ingest into, the ingest of a discovered table and the ids
read back from Iceberg, and the DuckDB views of a dbt source over a discovered table."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.ingest.table import ingest_table
from floe_dagster.metastores.s3 import S3MetastoreConnector
from floe_dagster.readers.metastore_views import ResolvedViews


def parquet_bytes(ids: range, *, extra: str | None = None, int_labels: bool = False) -> bytes:
    """A Parquet object of ``id`` (int64) and ``label`` (string, or int64 with ``int_labels``),
    plus a float column named ``extra`` (a file whose schema drifted)."""
    labels = pa.array(list(ids), pa.int64()) if int_labels else pa.array([str(i) for i in ids], pa.string())
    columns: dict[str, Any] = {"id": pa.array(list(ids), pa.int64()), "label": labels}
    if extra:
        columns[extra] = pa.array([1.5] * len(ids), pa.float64())
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    return buffer.getvalue()


def sql_catalog(folder: Path) -> SqlCatalogPlugin:
    """A SQLite-backed Iceberg catalog ``lake`` with its warehouse in ``folder``."""
    config = SqlCatalogPlugin.config_model.model_validate(
        {"uri": f"sqlite:///{folder}/catalog.db", "warehouse": str(folder / "warehouse")}
    )
    return SqlCatalogPlugin("lake", config)


def ingest_discovered(
    conn: S3MetastoreConnector, catalog: SqlCatalogPlugin, table: str, namespace: str, commit_bytes: int
) -> Any:
    """Ingest ``table`` as a fresh listing finds it into ``<namespace>.<table>``."""
    return ingest_table(
        conn,
        catalog,
        table,
        conn.discover(refresh=True).get(table, []),
        namespace=namespace,
        commit_bytes=commit_bytes,
    )


def iceberg_ids(catalog: SqlCatalogPlugin, namespace: str, table: str) -> list[int]:
    loaded = catalog.load_table((namespace, table))
    return sorted(loaded.scan(selected_fields=("id",)).to_arrow().column("id").to_pylist())


def source_views(
    root: Path, metastore: str, store: str, config: dict[str, Any], namespace: str, table: str
) -> ResolvedViews:
    """The source views (``readers/metastore_views.py``) of a dbt project whose one source,
    ``src.<table>`` in schema ``namespace``, reads ``table`` of a ``store`` metastore with
    ``config``: the project is parsed by dbt, as a run would."""
    from floe_dagster.manifest.loader import load_manifest
    from floe_dagster.readers.metastore_views import resolve_source_views
    from floe_dagster.transforms.dbt_manifest import run_dbt
    from floe_dagster.transforms.profiles import write_profiles

    (root / "dbt" / "models").mkdir(parents=True)
    (root / "dbt" / "dbt_project.yml").write_text(
        "name: objects\nversion: '1.0.0'\nconfig-version: 2\nprofile: objects\nmodel-paths: [models]\n"
    )
    (root / "dbt" / "models" / "_sources.yml").write_text(
        f"version: 2\nsources:\n  - name: src\n    schema: {namespace}\n"
        f"    meta: {{floe: {{metastore: {metastore}}}}}\n    tables:\n      - name: {table}\n"
    )
    manifest = root / "manifest.yaml"
    manifest.write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: objects}\nstate_dir: .floe\n"
        "computes:\n  approved: [duckdb]\n  default: duckdb\n"
        "  targets: {duckdb: {type: duckdb, config: {path: .floe/warehouse.duckdb}}}\n"
        f"metastores:\n  {metastore}:\n    type: {store}\n    config: {json.dumps(config)}\n"
        "transforms:\n  dbt_project: dbt\n"
    )
    loaded = load_manifest(manifest)
    run_dbt(loaded, ["parse"], write_profiles(loaded))
    parsed = json.loads((loaded.dbt_project_dir / "target" / "manifest.json").read_text())
    return resolve_source_views(loaded, parsed)
