"""An Iceberg catalog's metadata locations as a change feed (plugins/change_feed.py).

Every commit to an Iceberg table writes a new metadata file and swaps the catalog's pointer to
it, so a table whose metadata location did not change did not change at all. A tick reads each
table's metadata location, in one batched call per namespace where the catalog has one, and
describes (loads) only the tables whose location moved; it reads nothing else for the others:

* SQL catalog: one ``SELECT table_name, metadata_location FROM iceberg_tables`` per namespace;
* Hive catalog: ``get_all_tables`` + ``get_table_objects_by_name`` per namespace (the
  ``metadata_location`` table parameter);
* Glue catalog: ``GetTables`` pages per database (the ``metadata_location`` parameter);
* other catalogs (REST, ...): the REST API has no batched call, so one ``loadTable`` per table
  (its answer carries the metadata location; no metadata file is read by floe).

The position is the map of (namespace, table) -> a short digest of its metadata location; the
next tick compares against it. A table that disappeared is named too, and found gone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from floe_dagster.core.compat import hive_catalog_thrift
from floe_dagster.plugins.change_feed import ChangeFeed, FeedChanges

if TYPE_CHECKING:
    from floe_dagster.metastores.iceberg import IcebergMetastoreConnector

__all__ = ["IcebergMetadataFeed", "metadata_locations"]

SEPARATOR = "\t"  # namespaces may hold dots; table names never hold a tab


def _digest(location: str | None) -> str:
    return hashlib.blake2b((location or "").encode(), digest_size=6).hexdigest()


class IcebergMetadataFeed(ChangeFeed):
    kind = "Iceberg metadata locations"

    def __init__(self, connector: IcebergMetastoreConnector) -> None:
        self.connector = connector

    def _snapshot(self) -> dict[str, str]:
        found: dict[str, str] = {}
        catalog = self.connector.catalog.connect()
        for namespace in self.connector.list_namespaces():
            for name, location in metadata_locations(self.connector, catalog, namespace).items():
                found[f"{namespace}{SEPARATOR}{name}"] = _digest(location)
        return found

    def position(self) -> str:
        return json.dumps(self._snapshot(), separators=(",", ":"), sort_keys=True)

    def changes_since(self, position: str, page_size: int) -> FeedChanges:
        try:
            before = json.loads(position)
        except ValueError:
            before = None
        now = self._snapshot()
        encoded = json.dumps(now, separators=(",", ":"), sort_keys=True)
        if not isinstance(before, dict):
            return FeedChanges(position=encoded, rescan="the cursor holds no metadata locations")
        moved = {k for k, v in now.items() if before.get(k) != v} | (set(before) - set(now))
        tables = {tuple(k.split(SEPARATOR, 1)) for k in moved}
        return FeedChanges(
            position=encoded,
            tables={(ns, name) for ns, name in tables},
            events=len(moved),
        )


def metadata_locations(connector: IcebergMetastoreConnector, catalog: Any, namespace: str) -> dict[str, str]:
    """Table name -> metadata location of every Iceberg table in ``namespace`` (batched where
    the catalog allows; see the module docstring). Calls are counted on ``connector``."""
    from pyiceberg.catalog.glue import GlueCatalog
    from pyiceberg.catalog.hive import HiveCatalog
    from pyiceberg.catalog.sql import IcebergTables, SqlCatalog

    parts = tuple(namespace.split("."))
    counts = connector.call_counts
    if isinstance(catalog, SqlCatalog):
        from sqlalchemy import select
        from sqlalchemy.orm import Session

        counts["select_metadata_locations"] += 1
        query = select(IcebergTables.table_name, IcebergTables.metadata_location).where(
            IcebergTables.catalog_name == catalog.name,
            IcebergTables.table_namespace == namespace,
        )
        with Session(catalog.engine) as session:
            return {name: location for name, location in session.execute(query) if location}
    if isinstance(catalog, HiveCatalog):
        with hive_catalog_thrift(catalog) as client:
            counts["get_all_tables"] += 1
            names = client.get_all_tables(db_name=namespace)
            found: dict[str, str] = {}
            for start in range(0, len(names), 500):
                counts["get_table_objects_by_name"] += 1
                chunk = names[start : start + 500]
                for table in client.get_table_objects_by_name(dbname=namespace, tbl_names=chunk):
                    params = table.parameters or {}
                    if params.get("table_type", "").upper() == "ICEBERG" and params.get("metadata_location"):
                        found[table.tableName] = params["metadata_location"]
            return found
    if isinstance(catalog, GlueCatalog):
        found = {}
        for page in catalog.glue.get_paginator("get_tables").paginate(DatabaseName=namespace):
            counts["get_tables"] += 1
            for table in page.get("TableList", []):
                params = table.get("Parameters") or {}
                if params.get("table_type", "").upper() == "ICEBERG" and params.get("metadata_location"):
                    found[table["Name"]] = params["metadata_location"]
        return found
    return dict(_one_by_one(connector, catalog, parts))


def _one_by_one(
    connector: IcebergMetastoreConnector, catalog: Any, parts: tuple[str, ...]
) -> Iterable[tuple[str, str]]:
    counts = connector.call_counts
    counts["list_tables"] += 1
    for identifier in catalog.list_tables(parts):
        counts["load_table"] += 1
        yield identifier[-1], catalog.load_table(identifier).metadata_location
