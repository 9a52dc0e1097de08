"""Tables made of objects under a key prefix, whatever the store: how a key names its table, how
objects group into tables, a table's data version from its objects, and Arrow schemas compared
and widened across the files of one table (with the errors reading such files gives).

Pure: no client, no network. The S3 connector (``metastores/s3.py``) and the ingest use it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from floe_dagster.core.errors import (
    MetastoreError,
)

__all__ = [
    "EXTENSIONS",
    "FileType",
    "ObjectSkipped",
    "S3Object",
    "SchemaMismatchError",
    "ValueConversionError",
    "arrow_columns",
    "column_differences",
    "data_version",
    "group_objects",
    "normalize_name",
    "table_name_for_key",
    "widen_schemas",
    "widen_type",
]

logger = logging.getLogger("floe_dagster.metastores.s3")

FileType = Literal["parquet", "csv", "json", "orc", "avro", "delta", "hudi"]
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet",),
    "csv": (".csv",),
    "json": (".json", ".jsonl", ".ndjson"),
    "orc": (".orc",),
    "avro": (".avro",),
    "delta": (),  # tables of a log folder: metastores/s3_log_tables.py
    "hudi": (),
}
# file types whose files declare their column types (compared, not widened, across files)
DECLARED_TYPES = ("parquet", "orc", "avro")

_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")


def normalize_name(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9]`` as one ``_``, trimmed."""
    return _NOT_WORD.sub("_", text).strip("_")


def table_name_for_key(key: str, extensions: Sequence[str] = EXTENSIONS["parquet"]) -> str:
    """The table an object key belongs to ("" when nothing usable is left of the key).

    Root file -> its name without extension; nested key -> its prefix segments joined by ``_``.
    """
    segments = [s for s in key.split("/") if s]
    if not segments:
        return ""
    if len(segments) == 1:
        base = segments[0]
        lowered = base.lower()
        for extension in sorted(extensions, key=len, reverse=True):
            if lowered.endswith(extension):
                base = base[: -len(extension)]
                break
        return normalize_name(base)
    return normalize_name("_".join(segments[:-1]))


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    etag: str
    last_modified: datetime  # UTC


def group_objects(
    objects: Iterable[S3Object], extensions: Sequence[str] = EXTENSIONS["parquet"]
) -> dict[str, list[S3Object]]:
    """Table name -> its objects (sorted by key); keys that give no usable name are logged and left out."""
    tables: dict[str, list[S3Object]] = defaultdict(list)
    for obj in objects:
        name = table_name_for_key(obj.key, extensions)
        if not name:
            logger.warning("s3: key %r gives no usable table name; ignored", obj.key)
            continue
        tables[name].append(obj)
    return {name: sorted(objs, key=lambda o: o.key) for name, objs in sorted(tables.items())}


def data_version(objects: Iterable[S3Object]) -> str:
    """Digest of the objects' keys, sizes and ETags (order-independent)."""
    digest = hashlib.sha256()
    for obj in sorted(objects, key=lambda o: o.key):
        digest.update(f"{obj.key}\0{obj.size}\0{obj.etag}\n".encode())
    return digest.hexdigest()[:32]


def column_differences(first: dict[str, str], second: dict[str, str]) -> list[str]:
    """How two ``column -> type`` maps differ, one phrase per difference (empty when equal)."""
    differences = [f"column '{c}' only in the first" for c in first if c not in second]
    differences += [f"column '{c}' only in the second" for c in second if c not in first]
    differences += [
        f"column '{c}' is {first[c]} in the first and {second[c]} in the second"
        for c in first
        if c in second and first[c] != second[c]
    ]
    if not differences and list(first) != list(second):
        differences.append(f"column order differs: {list(first)} vs {list(second)}")
    return differences


def arrow_columns(schema: Any) -> dict[str, str]:
    return {field.name: str(field.type) for field in schema}


def widen_type(first: Any, second: Any) -> Any:
    """The type both inferred types fit in (CSV/JSON), or None when there is none.

    ``null`` (a column with no value) takes the other type; integers and floats become
    ``double`` (int64 when both are integers); timestamps of one time zone take the finer unit.
    """
    import pyarrow as pa

    if first == second:
        return first
    if pa.types.is_null(first) or pa.types.is_null(second):
        return second if pa.types.is_null(first) else first
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(first) for f in numeric) and any(f(second) for f in numeric):
        return pa.float64() if pa.types.is_floating(first) or pa.types.is_floating(second) else pa.int64()
    if pa.types.is_timestamp(first) and pa.types.is_timestamp(second) and first.tz == second.tz:
        units = ["s", "ms", "us", "ns"]
        return first if units.index(first.unit) >= units.index(second.unit) else second
    return None


def widen_schemas(first: Any, second: Any) -> tuple[Any, list[str]]:
    """(``first`` with each column widened to fit ``second``'s, the differences that remain)."""
    import pyarrow as pa

    def widened(schema: Any) -> Any:
        fields = []
        for field in schema:
            other = first if schema is second else second
            index = other.get_field_index(field.name)
            common = widen_type(field.type, other.field(index).type) if index >= 0 else None
            fields.append(field.with_type(common) if common is not None else field)
        return pa.schema(fields)

    one, two = widened(first), widened(second)
    return one, column_differences(arrow_columns(one), arrow_columns(two))


class SchemaMismatchError(MetastoreError):
    """Two files of one table have different schemas; the message names both and the columns."""

    def __init__(self, table: str, first: str, second: str, differences: list[str], **kwargs: Any) -> None:
        super().__init__(
            f"table '{table}': {first} (first) and {second} (second) have different schemas: "
            + "; ".join(differences),
            **kwargs,
        )
        self.table, self.first, self.second, self.differences = table, first, second, differences


class ObjectSkipped(MetastoreError):
    """An object that cannot be read and is skipped: gone, changed since listing, or malformed."""

    def __init__(
        self,
        key: str,
        reason: str,
        *,
        changed: bool = False,
        provider: str = "s3",
        operation: str = "read_object",
    ) -> None:
        super().__init__(f"{key}: {reason}", provider=provider, operation=operation)
        self.key, self.reason = key, reason
        self.changed = changed  # replaced since listing: its new version is read on the next run


class ValueConversionError(MetastoreError):
    """A CSV/JSON value that does not fit the type its column has in the table (stops the table)."""

    def __init__(
        self, key: str, detail: str, *, provider: str = "s3", operation: str = "read_object"
    ) -> None:
        super().__init__(f"{key}: {detail}", provider=provider, operation=operation)
        self.key, self.detail = key, detail
