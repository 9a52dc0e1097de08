"""What the object-store source tests share (S3 and S3-compatible, Azure Blob, GCS): the Parquet
objects they seed, the SQL catalog they ingest into, the ingest of a discovered table and the ids
read back from Iceberg."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from floe_dagster.catalogs.sql import SqlCatalogPlugin
from floe_dagster.ingest.table import ingest_table
from floe_dagster.metastores.s3 import S3MetastoreConnector


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
