"""Which metastore table each dbt source reads, and the asset key of every metastore table.

Dagster-free (the CLI and the dbt-duckdb plugin import it without Dagster).

Asset keys are ``<metastore>/<namespace parts>/<table>`` unless the manifest maps them:
``asset_key_prefix`` replaces the ``<metastore>`` part, ``asset_keys`` gives single tables
their own key (``"sales.orders": "finance/orders"``), winning over the prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from floe_dagster.manifest.loader import LoadedManifest

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class SourceKeys:
    """How one metastore's tables are keyed (hashable: it travels inside ``TableRef``)."""

    prefix: KeyPath
    overrides: tuple[tuple[str, KeyPath], ...] = ()

    @classmethod
    def of(cls, loaded: LoadedManifest, metastore: str) -> SourceKeys:
        entry = loaded.manifest.metastores[metastore]
        prefix = tuple(entry.asset_key_prefix) if entry.asset_key_prefix else (metastore,)
        overrides = tuple(sorted((table, tuple(key.split("/"))) for table, key in entry.asset_keys.items()))
        return cls(prefix, overrides)

    def path(self, namespace: str, table: str) -> KeyPath:
        qualified = f"{namespace}.{table}"
        for name, path in self.overrides:
            if name == qualified:
                return path
        return (*self.prefix, *namespace.split("."), table)

    def user_string(self, namespace: str, table: str) -> str:
        return "/".join(self.path(namespace, table))


class TableRef(NamedTuple):
    """A metastore table a dbt source reads; ``keys`` says how its metastore keys tables."""

    metastore: str
    namespace: str
    table: str
    keys: SourceKeys | None = None


@dataclass(frozen=True)
class SourceRelation:
    """A dbt source linked to a metastore table, with the relation dbt compiles it to."""

    unique_id: str
    ref: TableRef
    database: str | None
    schema: str
    identifier: str


def _metastore_of(loaded: LoadedManifest, source: Mapping[str, Any], by_catalog: Mapping[Any, str]) -> Any:
    # the table's ``floe`` keys over its source's (a table's ``as_of`` keeps the source's metastore)
    floe = {
        **((source.get("source_meta") or {}).get("floe") or {}),
        **((source.get("meta") or {}).get("floe") or {}),
    }
    return floe.get("metastore") or by_catalog.get(source.get("database"))


def dbt_source_relations(loaded: LoadedManifest, dbt_manifest: Mapping[str, Any]) -> list[SourceRelation]:
    """Every dbt source that reads a metastore table of the manifest.

    A source names its metastore with ``meta: {floe: {metastore: NAME}}``; otherwise a source
    whose ``database`` is a catalog belongs to the Iceberg metastore over that catalog. Its
    ``schema`` is the namespace, its ``identifier`` (else its name) the table.
    """
    by_catalog = {
        getattr(loaded.plugin_config("metastores", name), "catalog", None): name
        for name in loaded.manifest.metastores
    }
    keys = {name: SourceKeys.of(loaded, name) for name in loaded.manifest.metastores}
    relations = []
    for unique_id, source in dbt_manifest.get("sources", {}).items():
        metastore = _metastore_of(loaded, source, by_catalog)
        if metastore not in loaded.manifest.metastores:
            continue
        identifier = source.get("identifier") or source["name"]
        ref = TableRef(metastore, source["schema"], identifier, keys[metastore])
        relations.append(SourceRelation(unique_id, ref, source.get("database"), source["schema"], identifier))
    return relations


def dbt_source_refs(loaded: LoadedManifest, dbt_manifest: Mapping[str, Any]) -> dict[str, TableRef]:
    """dbt source unique_id -> the metastore table it reads (see ``dbt_source_relations``)."""
    return {r.unique_id: r.ref for r in dbt_source_relations(loaded, dbt_manifest)}
