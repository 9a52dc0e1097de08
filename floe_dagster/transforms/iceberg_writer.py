"""Commit a model's output to an Iceberg table through PyIceberg."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from floe_dagster.core.errors import NotFoundError
from floe_dagster.plugins.catalog import CatalogPlugin, Identifier


def replace_table_from_parquet(catalog: CatalogPlugin, identifier: Identifier, parquet_path: str) -> int:
    """Replace the contents of ``identifier`` with the Parquet file; create or re-create as needed.

    A changed schema re-creates the table: a dbt table model is a full rebuild, and keeping
    old columns alive through schema evolution would surprise its readers.
    """
    return replace_table_from_arrow(catalog, identifier, pq.read_table(parquet_path))


def replace_table_from_arrow(catalog: CatalogPlugin, identifier: Identifier, data: pa.Table) -> int:
    """Replace the contents of ``identifier`` with ``data`` (see :func:`replace_table_from_parquet`)."""
    catalog.ensure_namespace(identifier[:-1])
    try:
        table = catalog.load_table(identifier)
    except NotFoundError:
        table = None
    if table is not None and table.schema().column_names != data.schema.names:
        catalog.drop_table(identifier)
        table = None
    if table is not None:
        try:
            # an empty table has nothing to replace: an overwrite's delete would only warn
            # "Delete operation did not match any records"
            (table.append if holds_no_rows(table) else table.overwrite)(data)
            return int(data.num_rows)
        except ValueError:  # PyIceberg's answer to an incompatible column type
            catalog.drop_table(identifier)
    catalog.create_table(identifier, schema=data.schema).append(data)
    return int(data.num_rows)


def holds_no_rows(table: Any) -> bool:
    """No snapshot yet, or its summary counts 0 records."""
    snapshot = table.current_snapshot()
    if snapshot is None:
        return True
    summary = snapshot.summary
    return summary is not None and summary.get("total-records") == "0"
