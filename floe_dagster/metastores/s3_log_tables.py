"""Tables with a log under an S3 prefix (``file_type: delta`` or ``hudi``): one table per log folder.

A Delta table is the prefix that holds a ``_delta_log/`` folder, a Hudi table the prefix that
holds ``.hoodie/``: ``sales/eu/_delta_log/00000000000000000003.json`` makes the table
``sales_eu`` at ``s3://<bucket>/sales/eu`` (named like the other S3 tables, ``table_name_for_key``'s
rules). Only the log's objects are listed into the table (its data files are the format's
business); its data version is the format's log version read from those keys: the latest
Delta commit, or the latest completed Hudi instant, so no object is read to version a table.
Its columns come from the format's own reader (delta-rs, hudi-rs), read once per description;
where that reader cannot reach the store (the GCS emulator serves no XML API), the table is
still described and versioned, without columns, and a warning says why.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.metastores.object_tables import S3Object, arrow_columns, normalize_name
from floe_dagster.plugins.table_model import Column, StorageDescriptor, Table, TableStats
from floe_dagster.readers.formats import reader_for, storage_properties

LOG_FILE_TYPES = ("delta", "hudi")

logger = logging.getLogger("floe_dagster.metastores.s3_log_tables")


def log_folder(file_type: str) -> str:
    reader = reader_for(file_type)
    assert reader is not None and reader.log_folder
    return reader.log_folder


def table_prefix(key: str, file_type: str) -> str | None:
    """The prefix of the table whose log holds ``key`` ("" at the bucket root), else None."""
    folder = log_folder(file_type)
    if key.startswith(f"{folder}/"):
        return ""
    index = key.find(f"/{folder}/")
    return key[:index] if index >= 0 else None


def group_log_tables(objects: Iterable[S3Object], file_type: str) -> dict[str, list[S3Object]]:
    """Table name -> the objects of its log folder."""
    tables: dict[str, list[S3Object]] = defaultdict(list)
    for obj in objects:
        prefix = table_prefix(obj.key, file_type)
        if prefix is None:
            continue
        tables[normalize_name(prefix.replace("/", "_")) or "root"].append(obj)
    return {name: sorted(objs, key=lambda o: o.key) for name, objs in sorted(tables.items())}


def describe_log_table(connector: Any, namespace: str, table: str, objects: list[S3Object]) -> Table:
    """The table of one log folder: its location, format, columns and log version."""
    file_type = connector.config.file_type
    reader = reader_for(file_type)
    assert reader is not None
    prefix = table_prefix(objects[0].key, file_type) or ""
    location = connector.location(prefix).rstrip("/")
    version = reader.version_from_keys(o.key for o in objects)
    if version is None:
        raise NotSupportedError(
            f"metastore '{connector.name}': {location} has a {log_folder(file_type)} folder but no"
            f" completed commit; it is not a readable {file_type} table yet",
            provider=connector.type_name,
            operation="get_table",
            retryable=False,
        )
    try:
        schema = reader.arrow_schema(location, storage_properties(connector.credentials))
    except Exception as exc:  # delta-rs / hudi-rs cannot reach the store: versioned, columns unknown
        logger.warning(
            "metastore '%s': columns of %s table %s unknown: the %s reader cannot read %s (%s)",
            connector.name,
            file_type,
            table,
            file_type,
            location,
            type(exc).__name__,
        )
        schema = None
    columns = tuple(Column(n, t) for n, t in arrow_columns(schema).items()) if schema is not None else ()
    return Table(
        namespace=namespace,
        name=table,
        storage=StorageDescriptor(location=location, format=file_type, columns=columns),
        data_version=version,  # the log version itself, as for a table registered in HMS/Glue
        properties={"floe.s3.prefixes": f"{prefix}/" if prefix else "", f"floe.{file_type}.version": version},
        stats=TableStats(last_modified=max(o.last_modified for o in objects)),
    )
