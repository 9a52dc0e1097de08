"""Iceberg in and out of a PostgreSQL-protocol compute (postgres and its flavours), opt-in with
``iceberg_io: true`` in the compute's config.

PostgreSQL cannot open an Iceberg catalog, so floe moves the data around dbt's process:

* **Before dbt starts** (``prepare_dbt_run``, after every upstream group of the run has
  committed): every table with a snapshot in every catalog of the manifest is read through
  PyIceberg (``table.scan().to_arrow()``, the table's *current* schema: columns are matched by
  Iceberg field id, so a renamed column is read under its new name, a widened type as the wider
  type, an added column as NULL in rows written before it existed) and copied into the database
  as ``"<namespace>"."<table>"`` (the namespace's parts joined with ``.``). A dbt source reads it
  with ``schema: <namespace>`` and no ``database`` (dbt-postgres forbids cross-database
  references). Each copy is **read-only**: a statement-level trigger rejects INSERT, UPDATE,
  DELETE and TRUNCATE with a message naming the Iceberg table, and the table's comment marks it
  as a source (``floe-source: <catalog>.<namespace>.<table> snapshot <id>``). The metastore's
  table itself is never written: PostgreSQL only ever holds a copy.
  On the next run a copy whose columns are unchanged is emptied and refilled in place, so views
  built on it survive; a copy whose schema changed is dropped with its dependent views (dbt
  re-creates the views it builds) and created anew.
* **After dbt ends** (``finish_dbt_run``): every table and view in the compute's model schema
  (``schema``, and dbt's custom schemas ``<schema>_<custom>``) that is not a source copy is read
  back and written to ``transforms.catalog`` as ``<schema>.<model>`` (contents replaced, as for
  DuckDB and Spark). Nothing is written to any other catalog.

Types (PostgreSQL <- Arrow <- Iceberg): integers, floats, boolean, text, bytea, date, time,
timestamp(tz) and decimal map one to one; other Iceberg types (lists, maps, structs, UUID,
fixed) raise ``NotSupportedError`` naming the table and column. Back to Iceberg, an
unconstrained ``numeric`` (e.g. ``sum()`` of an integer) becomes ``double``: cast in the model
(``::numeric(18,2)``) for an exact decimal. Text round-trips in whatever client encoding the
compute uses (``client_encoding``: UTF8, GBK, GB18030): the server converts, and a value the
client encoding cannot hold (e.g. CJK Extension B in GBK) stops the copy with an error naming the
table, the character and the fix (GB18030 or UTF8).

Cost: the copy is a full read of every catalog table on each run (fine for the small and
medium tables such computes are given; for large sources point the model at an engine that
reads Iceberg natively, such as DuckDB).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.catalog import CatalogPlugin, Identifier
from floe_dagster.writers.iceberg import replace_table_from_arrow

__all__ = [
    "SOURCE_COMMENT_PREFIX",
    "StagedTable",
    "commit_model_tables",
    "model_tables",
    "pg_type",
    "quote_ident",
    "stage_catalog",
]

logger = logging.getLogger("floe_dagster.dbt")

SOURCE_COMMENT_PREFIX = "floe-source: "
_TRIGGER_FUNCTION = "floe_read_only_source"
_INSERT_PAGE = 1000


@dataclass(frozen=True)
class StagedTable:
    catalog: str
    identifier: Identifier
    schema: str
    table: str
    rows: int
    snapshot_id: int


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def pg_type(data_type: pa.DataType, where: str) -> str:
    """The PostgreSQL column type for an Arrow type read from Iceberg."""
    checks: list[tuple[Callable[[pa.DataType], bool], str]] = [
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_int8, "smallint"),
        (pa.types.is_int16, "smallint"),
        (pa.types.is_int32, "integer"),
        (pa.types.is_int64, "bigint"),
        (pa.types.is_float32, "real"),
        (pa.types.is_float64, "double precision"),
        (pa.types.is_string, "text"),
        (pa.types.is_large_string, "text"),
        (pa.types.is_binary, "bytea"),
        (pa.types.is_large_binary, "bytea"),
        (pa.types.is_date, "date"),
        (pa.types.is_time, "time"),
    ]
    for check, name in checks:
        if check(data_type):
            return name
    if pa.types.is_timestamp(data_type):
        return "timestamptz" if data_type.tz else "timestamp"
    if pa.types.is_decimal(data_type):
        return f"numeric({data_type.precision},{data_type.scale})"
    raise NotSupportedError(
        f"{where} has type {data_type}, which floe does not copy into PostgreSQL (supported: numbers,"
        " boolean, text, binary, date, time, timestamp, decimal); read it on a compute that reads"
        " Iceberg natively (duckdb) or leave the column out of the table",
        provider="postgres",
        operation="stage_catalog",
    )


def stage_catalog(con: Any, catalog: CatalogPlugin) -> list[StagedTable]:
    """Copy every table of ``catalog`` with a snapshot into the database as a read-only source."""
    staged: list[StagedTable] = []
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            table = catalog.load_table(identifier)
            snapshot = table.current_snapshot()
            if snapshot is None:
                continue  # never written: nothing to read, as on DuckDB
            data = table.scan().to_arrow()
            try:
                staged.append(_copy_table(con, catalog.name, tuple(identifier), data, snapshot.snapshot_id))
            except UnicodeEncodeError as exc:
                con.rollback()
                bad = exc.object[exc.start : exc.end]
                raise NotSupportedError(
                    f"Iceberg table {catalog.name}.{'.'.join(identifier)} holds {bad!r}"
                    f" (U+{ord(bad[0]):04X}), which client encoding {con.encoding} cannot represent;"
                    " set the compute's client_encoding to GB18030 or UTF8",
                    provider="postgres",
                    operation="stage_catalog",
                ) from None
    return staged


def _copy_table(
    con: Any, catalog: str, identifier: Identifier, data: pa.Table, snapshot_id: int
) -> StagedTable:
    schema, table = ".".join(identifier[:-1]), identifier[-1]
    qualified = f"{quote_ident(schema)}.{quote_ident(table)}"
    where = f"Iceberg table {catalog}.{'.'.join(identifier)}"
    definitions = [(f.name, pg_type(f.type, f"{where}, column {f.name!r},")) for f in data.schema]
    columns = [f"{quote_ident(name)} {kind}" for name, kind in definitions]
    from psycopg2.extras import execute_values

    with con.cursor() as cur:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        cur.execute(_trigger_function_sql(schema))
        refresh = _same_source_copy(cur, schema, table, definitions)
        if refresh:  # keep the table (views built on it survive); empty it with its triggers off
            cur.execute(f"ALTER TABLE {qualified} DISABLE TRIGGER USER")
            cur.execute(f"TRUNCATE {qualified}")
        else:
            _drop_relation(cur, schema, table, qualified)
            cur.execute(f"CREATE TABLE {qualified} ({', '.join(columns)})")
        if data.num_rows:
            names = ", ".join(quote_ident(name) for name in data.schema.names)
            for batch in data.to_batches(max_chunksize=_INSERT_PAGE):
                rows = [tuple(row.values()) for row in batch.to_pylist()]
                execute_values(
                    cur, f"INSERT INTO {qualified} ({names}) VALUES %s", rows, page_size=_INSERT_PAGE
                )
        label = f"{catalog}.{'.'.join(identifier)}"
        cur.execute(
            f"COMMENT ON TABLE {qualified} IS %s", (f"{SOURCE_COMMENT_PREFIX}{label} snapshot {snapshot_id}",)
        )
        if refresh:
            cur.execute(f"ALTER TABLE {qualified} ENABLE TRIGGER USER")
        else:
            function = f"{quote_ident(schema)}.{_TRIGGER_FUNCTION}"
            for events in ("INSERT OR UPDATE OR DELETE", "TRUNCATE"):
                trigger = quote_ident(f"floe_read_only_{events.split()[0].lower()}")
                cur.execute(
                    f"CREATE TRIGGER {trigger} BEFORE {events} ON {qualified} FOR EACH STATEMENT"
                    f" EXECUTE FUNCTION {function}(%s)",
                    (label,),
                )
    con.commit()
    logger.info(
        "floe: copied %s (%d rows, snapshot %d) to %s.%s", where, data.num_rows, snapshot_id, schema, table
    )
    return StagedTable(catalog, identifier, schema, table, data.num_rows, snapshot_id)


def _same_source_copy(cur: Any, schema: str, table: str, definitions: list[tuple[str, str]]) -> bool:
    """Whether ``schema.table`` is a source copy made earlier with exactly these column definitions."""
    cur.execute(
        "SELECT obj_description(c.oid, 'pg_class'), c.relkind FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    )
    found = cur.fetchone()
    if found is None or found[1] != "r" or not str(found[0] or "").startswith(SOURCE_COMMENT_PREFIX):
        return False
    cur.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (f"{quote_ident(schema)}.{quote_ident(table)}",),
    )
    spelled = {"timestamptz": "timestamp with time zone", "timestamp": "timestamp without time zone"}
    spelled["time"] = "time without time zone"
    wanted = [(name, spelled.get(kind, kind)) for name, kind in definitions]
    return [(str(name), str(kind)) for name, kind in cur.fetchall()] == wanted


def _drop_relation(cur: Any, schema: str, table: str, qualified: str) -> None:
    """Drop whatever has the copy's name; CASCADE: views on an older copy (a changed schema) go too,
    and dbt re-creates the ones it builds."""
    cur.execute(
        "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s",
        (schema, table),
    )
    found = cur.fetchone()
    if found is None:
        return
    kind = {"v": "VIEW", "m": "MATERIALIZED VIEW"}.get(found[0], "TABLE")
    cur.execute(f"DROP {kind} {qualified} CASCADE")


def _trigger_function_sql(schema: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {quote_ident(schema)}.{_TRIGGER_FUNCTION}() RETURNS trigger"
        " LANGUAGE plpgsql AS $floe$ BEGIN RAISE EXCEPTION USING"
        " MESSAGE = format('floe: %I.%I is a read-only copy of the Iceberg source %s; a model must"
        " write its own table, not a source', TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[0]),"
        " ERRCODE = 'read_only_sql_transaction'; END $floe$"
    )


# --- after dbt: the models' tables -> transforms.catalog ---------------------------------------

# information_schema.columns.data_type -> Arrow; anything else is read as text.
_ARROW_TYPES: dict[str, pa.DataType] = {
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double precision": pa.float64(),
    "boolean": pa.bool_(),
    "text": pa.string(),
    "character varying": pa.string(),
    "character": pa.string(),
    "bytea": pa.binary(),
    "date": pa.date32(),
    "time without time zone": pa.time64("us"),
    "timestamp without time zone": pa.timestamp("us"),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
}


def model_tables(con: Any, schema: str) -> list[tuple[str, str]]:
    """``(schema, table)`` of the tables and views dbt built in ``schema`` and its custom schemas,
    source copies and dbt's test audit schema left out."""
    with con.cursor() as cur:
        cur.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'v', 'm', 'p') AND (n.nspname = %s OR n.nspname LIKE %s)"
            " AND n.nspname NOT LIKE '%%dbt_test__audit'"
            " AND coalesce(obj_description(c.oid, 'pg_class'), '') NOT LIKE %s"
            " AND c.relname NOT LIKE '%%__dbt_backup' AND c.relname NOT LIKE '%%__dbt_tmp'"
            " ORDER BY 1, 2",
            (schema, schema.replace("_", r"\_") + r"\_%", SOURCE_COMMENT_PREFIX + "%"),
        )
        return [(str(s), str(t)) for s, t in cur.fetchall()]


def _read_table(con: Any, schema: str, table: str) -> pa.Table:
    with con.cursor() as cur:
        cur.execute(
            "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (schema, table),
        )
        described = cur.fetchall()
        fields, selects = [], []
        for name, data_type, precision, scale in described:
            if data_type == "numeric":
                arrow_type = pa.decimal128(precision, scale) if precision else pa.float64()
                cast = "" if precision else "::double precision"
            else:
                arrow_type = _ARROW_TYPES.get(data_type, pa.string())
                cast = "" if data_type in _ARROW_TYPES else "::text"
            fields.append(pa.field(name, arrow_type))
            selects.append(f"{quote_ident(name)}{cast}")
        cur.execute(f"SELECT {', '.join(selects)} FROM {quote_ident(schema)}.{quote_ident(table)}")
        rows = cur.fetchall()
    arrow_schema = pa.schema(fields)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in fields]
    return pa.Table.from_arrays(
        [pa.array(list(values), type=f.type) for values, f in zip(columns, fields, strict=True)],
        schema=arrow_schema,
    )


def commit_model_tables(
    con: Any, catalog: CatalogPlugin, tables: Iterable[tuple[str, str]]
) -> dict[str, int]:
    """Write each ``(schema, table)`` to ``catalog`` as ``<schema>.<table>``; rows written per table."""
    written: dict[str, int] = {}
    for schema, table in tables:
        data = _read_table(con, schema, table)
        written[f"{schema}.{table}"] = replace_table_from_arrow(catalog, (schema, table), data)
    con.rollback()  # only reads happened; end the transaction psycopg2 opened
    return written
