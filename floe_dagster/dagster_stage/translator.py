"""The source translator: a metastore table -> the ``AssetSpec`` of its observable source asset.

Like dagster-dbt's ``DagsterDbtTranslator`` and dagster-fivetran's ``DagsterFivetranTranslator``:
one overridable class, ``FloeSourceTranslator``, whose ``get_asset_spec(table)`` every source
asset's spec comes from. The manifest's ``asset_key_prefix`` / ``asset_keys`` reach it as
``table.manifest_key`` (the default key); whatever key it returns is the one the dbt models
depend on, the observation job and sensor report, the freshness checks check and the ingest
assets depend on: they read it from the translated specs, never recompute it.

```python
class MyTranslator(FloeSourceTranslator):
    def get_asset_spec(self, table: SourceTable) -> dg.AssetSpec:
        spec = super().get_asset_spec(table)
        return spec.replace_attributes(key=spec.key.with_prefix("bronze"), group_name="raw")

defs = floe_dagster.build_definitions("manifests/manifest.yaml", translator=MyTranslator())
```
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from dagster import AssetKey, AssetSpec

from floe_dagster.core.errors import ConfigurationError

if TYPE_CHECKING:
    from dagster import FreshnessPolicy

    from floe_dagster.metastores.state import TableRecord

__all__ = ["FloeSourceTranslator", "SourceTable", "TranslatedSources", "check_distinct", "translate_sources"]


@dataclass(frozen=True)
class SourceTable:
    """A metastore table as the translator sees it: where it is and what floe knows of it.

    ``metastore_type`` is its metastore's type (``iceberg``, ``hive``, ``glue``, ``s3``...);
    ``record`` is the table as the defs state keeps it (format, location, columns, partition
    keys...; None for a table only a dbt source names so far); ``dbt_source`` is the dbt
    manifest's node of the dbt source that reads it, if any; ``manifest_key`` is its key as the
    manifest maps it (``asset_key_prefix`` / ``asset_keys``; empty: ``<metastore>/<namespace
    parts>/<table>``); ``metadata`` and ``freshness_policy`` are floe's defaults for its spec
    (the manifest's freshness window for its namespace).
    """

    metastore: str
    namespace: str
    name: str
    metastore_type: str = ""
    manifest_key: tuple[str, ...] = ()
    record: TableRecord | None = None
    dbt_source: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    freshness_policy: FreshnessPolicy | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.namespace}.{self.name}"

    @property
    def format(self) -> str | None:
        """The table's storage format (``iceberg``, ``parquet``, ...) when the defs state has it."""
        return None if self.record is None else self.record["format"]

    def describe(self) -> str:
        return f"table {self.qualified_name} of metastore '{self.metastore}'"


class FloeSourceTranslator:
    """How metastore tables become source asset specs; subclass it and override any method.

    ``get_asset_spec`` builds the spec from the other methods (``get_asset_key``,
    ``get_group_name``, ``get_description``, ``get_metadata``, ``get_tags``, ``get_kinds``);
    override it to change everything at once, or one of them to change one attribute.
    """

    def get_asset_spec(self, table: SourceTable) -> AssetSpec:
        return AssetSpec(
            self.get_asset_key(table),
            group_name=self.get_group_name(table),
            kinds=self.get_kinds(table),
            description=self.get_description(table),
            metadata=self.get_metadata(table),
            tags=self.get_tags(table),
            freshness_policy=table.freshness_policy,
        )

    def get_asset_key(self, table: SourceTable) -> AssetKey:
        """Default: the manifest's key (``asset_key_prefix`` / ``asset_keys``)."""
        return AssetKey(
            list(table.manifest_key or (table.metastore, *table.namespace.split("."), table.name))
        )

    def get_group_name(self, table: SourceTable) -> str | None:
        """Default: the metastore's name."""
        return table.metastore

    def get_kinds(self, table: SourceTable) -> set[str]:
        """Default: the metastore's type and the table's format."""
        return {kind for kind in (table.metastore_type, table.format) if kind}

    def get_description(self, table: SourceTable) -> str | None:
        read_by = " (read by dbt)" if table.record is None else ""
        return f"{table.qualified_name} in metastore '{table.metastore}'{read_by}"

    def get_metadata(self, table: SourceTable) -> Mapping[str, Any]:
        """Default: what the defs state says of the table (location, format, columns...)."""
        return table.metadata

    def get_tags(self, table: SourceTable) -> Mapping[str, str]:
        return {}


@dataclass(frozen=True)
class TranslatedSources:
    """The translated specs of one metastore's tables, and which table each key is."""

    metastore: str
    specs: dict[AssetKey, AssetSpec]
    tables: dict[AssetKey, SourceTable]

    @cached_property
    def keys_by_table(self) -> dict[tuple[str, str], AssetKey]:
        """(namespace, table) -> its asset key."""
        return {(t.namespace, t.name): key for key, t in self.tables.items()}

    def __iter__(self) -> Iterator[AssetKey]:
        return iter(self.specs)


def translate_sources(
    metastore: str, tables: Iterable[SourceTable], translator: FloeSourceTranslator | None = None
) -> TranslatedSources:
    """Each table's spec from ``translator`` (default ``FloeSourceTranslator()``); two tables
    given one key are a ConfigurationError naming both."""
    translator = translator or FloeSourceTranslator()
    specs: dict[AssetKey, AssetSpec] = {}
    by_key: dict[AssetKey, SourceTable] = {}
    for table in tables:
        spec = translator.get_asset_spec(table)
        if not isinstance(spec, AssetSpec):
            name = type(getattr(translator, "base", translator)).__name__
            raise ConfigurationError(
                f"floe: {name}.get_asset_spec returned {type(spec).__name__} for"
                f" {table.describe()}; return a dagster AssetSpec (e.g. super().get_asset_spec(table)"
                " .replace_attributes(...))",
                provider="floe",
                operation="translate_sources",
            )
        if spec.key in by_key:
            raise collision(translator, spec.key, by_key[spec.key], table)
        specs[spec.key] = spec
        by_key[spec.key] = table
    return TranslatedSources(metastore, specs, by_key)


def collision(
    translator: FloeSourceTranslator, key: AssetKey, first: SourceTable, second: SourceTable | str
) -> ConfigurationError:
    other = second.describe() if isinstance(second, SourceTable) else second
    name = type(getattr(translator, "base", translator)).__name__  # the component's wraps its own
    return ConfigurationError(
        f"floe: {name} gives {first.describe()} and {other} the same asset key"
        f" {key.to_user_string()}; give each its own key (get_asset_spec / get_asset_key, or the"
        " manifest's asset_key_prefix / asset_keys)",
        provider="floe",
        operation="translate_sources",
    )


def check_distinct(
    translated: Iterable[TranslatedSources],
    translator: FloeSourceTranslator | None = None,
    other_assets: Mapping[AssetKey, str] | None = None,
) -> None:
    """No key is given to two tables (of any metastores) or to a table and another asset
    (``other_assets``: key -> what it is, e.g. ``dbt model model.shop.orders``)."""
    translator = translator or FloeSourceTranslator()
    seen: dict[AssetKey, SourceTable] = {}
    for sources in translated:
        for key, table in sources.tables.items():
            if key in seen:
                raise collision(translator, key, seen[key], table)
            seen[key] = table
    for key, what in (other_assets or {}).items():
        if key in seen:
            raise collision(translator, key, seen[key], what)
