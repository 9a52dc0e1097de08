"""The Spark compute's attachment: each catalog table's current snapshot as a Spark view over its
data files (what the dbt macro `floe_spark_attach` creates before a run)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.catalog import CatalogPlugin

__all__ = ["attachment_items", "quote", "snapshot_select", "spark_type"]

if TYPE_CHECKING:
    from pyiceberg.table import Table


def attachment_items(catalog: CatalogPlugin) -> list[dict[str, Any]]:
    """One item per table with a snapshot: ``{"relation": "ns.table", "sql": [statements]}``."""
    items: list[dict[str, Any]] = []
    for namespace in catalog.list_namespaces():
        schema = ".".join(namespace)
        for identifier in catalog.list_tables(namespace):
            table = catalog.load_table(identifier)
            if table.current_snapshot() is None:
                continue  # never written: like DuckDB's attachment, no view
            relation = f"{quote(schema)}.{quote(identifier[-1])}"
            items.append(
                {
                    "relation": f"{schema}.{identifier[-1]}".lower(),
                    "sql": [
                        f"CREATE DATABASE IF NOT EXISTS {quote(schema)}",
                        f"CREATE OR REPLACE VIEW {relation} AS {snapshot_select(table, catalog.type_name)}",
                    ],
                }
            )
    return items


def snapshot_select(table: Table, provider: str = "spark") -> str:
    """A Spark SELECT over exactly the data files of ``table``'s current snapshot."""
    name = ".".join(table.name())
    if len(table.metadata.schemas) > 1:
        raise NotSupportedError(
            f"table {name} has an evolved schema; its data files may use old column names, which only"
            " the Iceberg Spark runtime maps (floe's Spark compute reads data files directly)",
            provider=provider,
            operation="spark_attach",
        )
    schema = table.schema()
    columns = ", ".join(quote(field.name) for field in schema.fields)
    files: list[str] = []
    for task in table.scan().plan_files():
        if task.delete_files:
            raise NotSupportedError(
                f"table {name}: its current snapshot has delete files (merge-on-read), which floe's Spark"
                " compute cannot apply; compact the table (rewrite data files) first",
                provider=provider,
                operation="spark_attach",
            )
        if task.file.file_format.name != "PARQUET":
            raise NotSupportedError(
                f"table {name}: data file format {task.file.file_format.name} is not read by floe's Spark"
                " compute (Parquet only)",
                provider=provider,
                operation="spark_attach",
            )
        files.append(task.file.file_path)
    if not files:
        typed = ", ".join(
            f"CAST(NULL AS {spark_type(f.field_type, name)}) AS {quote(f.name)}" for f in schema.fields
        )
        return f"SELECT {typed} WHERE 1 = 0"
    return " UNION ALL ".join(f"SELECT {columns} FROM parquet.{quote(path)}" for path in sorted(files))


def spark_type(field_type: Any, table: str) -> str:
    """The Spark SQL type of an Iceberg primitive type (for typed empty views)."""
    from pyiceberg import types as t

    simple = {
        t.BooleanType: "boolean",
        t.IntegerType: "int",
        t.LongType: "bigint",
        t.FloatType: "float",
        t.DoubleType: "double",
        t.DateType: "date",
        t.TimestampType: "timestamp_ntz",
        t.TimestamptzType: "timestamp",
        t.StringType: "string",
        t.UUIDType: "string",
        t.BinaryType: "binary",
        t.FixedType: "binary",
    }
    for cls, name in simple.items():
        if isinstance(field_type, cls):
            return name
    if isinstance(field_type, t.DecimalType):
        return f"decimal({field_type.precision},{field_type.scale})"
    raise NotSupportedError(
        f"table {table}: type {field_type} of an empty table has no Spark view here",
        provider="spark",
        operation="spark_attach",
    )


def quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"
