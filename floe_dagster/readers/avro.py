"""Avro data files in Python: the Arrow schema from a file's header, its rows as Arrow batches.

DuckDB reads Avro tables of a metastore itself (``read_avro``, ``readers/duckdb_scan.py``); the
S3 source needs the schema of an object from its first bytes (the header holds the writer's
schema) and, to ingest it, its rows. Both through fastavro.

Types: Avro primitives map to their Arrow types; ``["null", T]`` is a nullable ``T``; the
logical types ``date``, ``timestamp-millis``/``-micros``, ``time-millis``/``-micros`` and
``decimal`` map to Arrow's; records, arrays, maps and enums to struct, list, map and string.
A union of two non-null types has no Arrow type: ``NotSupportedError`` naming the field.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

from floe_dagster.core.errors import NotSupportedError

_PRIMITIVES = {
    "null": "null",
    "boolean": "bool_",
    "int": "int32",
    "long": "int64",
    "float": "float32",
    "double": "float64",
    "bytes": "binary",
    "string": "string",
}


def arrow_type(avro: Any, where: str = "") -> Any:
    """The Arrow type of an Avro (parsed) schema node."""
    import pyarrow as pa

    if isinstance(avro, list):
        others = [t for t in avro if t != "null"]
        if len(others) != 1:
            raise NotSupportedError(
                f'Avro field {where}: a union of {avro} has no Arrow type (only ["null", T] unions are read)',
                provider="avro",
                operation="read_avro",
                retryable=False,
            )
        return arrow_type(others[0], where)
    if isinstance(avro, str):
        if avro in _PRIMITIVES:
            return getattr(pa, _PRIMITIVES[avro])()
        raise NotSupportedError(
            f"Avro field {where}: named type {avro!r} is not resolved",
            provider="avro",
            operation="read_avro",
            retryable=False,
        )
    kind, logical = avro.get("type"), avro.get("logicalType")
    if logical == "date":
        return pa.date32()
    if logical in ("timestamp-millis", "local-timestamp-millis"):
        return pa.timestamp("ms", tz="UTC" if logical == "timestamp-millis" else None)
    if logical in ("timestamp-micros", "local-timestamp-micros"):
        return pa.timestamp("us", tz="UTC" if logical == "timestamp-micros" else None)
    if logical == "time-millis":
        return pa.time32("ms")
    if logical == "time-micros":
        return pa.time64("us")
    if logical == "decimal":
        return pa.decimal128(int(avro["precision"]), int(avro.get("scale", 0)))
    if kind == "record":
        return pa.struct(
            [pa.field(f["name"], arrow_type(f["type"], f"{where}.{f['name']}")) for f in avro["fields"]]
        )
    if kind == "array":
        return pa.list_(arrow_type(avro["items"], f"{where}[]"))
    if kind == "map":
        return pa.map_(pa.string(), arrow_type(avro["values"], f"{where}{{}}"))
    if kind in ("enum",):
        return pa.string()
    if kind == "fixed":
        return pa.binary(int(avro["size"]))
    return arrow_type(kind, where)


def schema_of(writer_schema: Any) -> Any:
    """The Arrow schema of an Avro record schema (a file's writer schema)."""
    import pyarrow as pa

    if not isinstance(writer_schema, dict) or writer_schema.get("type") != "record":
        raise NotSupportedError(
            "an Avro data file whose schema is not a record cannot be a table",
            provider="avro",
            operation="read_avro",
            retryable=False,
        )
    return pa.schema([pa.field(f["name"], arrow_type(f["type"], f["name"])) for f in writer_schema["fields"]])


def avro_schema(head: bytes) -> tuple[Any, int]:
    """(Arrow schema, -1) from an Avro object's first bytes (its header); rows are not counted."""
    import fastavro

    reader = fastavro.reader(io.BytesIO(head))
    return schema_of(reader.writer_schema), -1


def avro_batches(data: bytes, rows: int) -> tuple[Any, Callable[[], Iterator[Any]]]:
    """(schema, batches of ``rows`` rows) of one downloaded Avro object."""
    import fastavro
    import pyarrow as pa

    reader = fastavro.reader(io.BytesIO(data))
    schema = schema_of(reader.writer_schema)

    def batches() -> Iterator[Any]:
        pending: list[dict[str, Any]] = []
        for record in reader:
            pending.append(record)  # type: ignore[arg-type]  # a record schema: dicts
            if len(pending) == rows:
                yield pa.RecordBatch.from_pylist(pending, schema=schema)
                pending = []
        if pending:
            yield pa.RecordBatch.from_pylist(pending, schema=schema)

    return schema, batches
