"""Sources are read-only: plan problems for a dbt model that would write a source or a catalog
other than ``transforms.catalog``.

A compute never writes into a metastore-registered table: a model whose output relation is the
relation a dbt source linked to a metastore compiles to (same schema and table, and the same
database where both name one), or whose output floe would commit over that metastore table
(an ``iceberg`` metastore over ``transforms.catalog``, same namespace and table), is a plan
error naming the model, the source and the fix. So is a model whose ``database`` is a catalog of
the manifest other than ``transforms.catalog`` (when one is set: without it, nothing is committed
to any catalog). Engines enforce the same at run time where they
can (DuckDB attaches REST catalogs ``READ_ONLY``; the PostgreSQL family's source copies reject
writes): docs/engines-postgres-snowflake.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from floe_dagster.manifest.errors import Problem
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.manifest.positions import Position, display_path
from floe_dagster.plan.model import model_nodes
from floe_dagster.plan.source_refs import SourceRelation, dbt_source_relations

__all__ = ["read_only_problems"]


def _lower(value: Any) -> str:
    return str(value or "").lower()


def _model_position(loaded: LoadedManifest, node: Mapping[str, Any]) -> Position:
    sql = node.get("original_file_path") or ""
    return Position(display_path(loaded.dbt_project_dir / sql if sql else loaded.dbt_project_dir), 1, 1)


def _catalog_of(loaded: LoadedManifest, metastore: str) -> str | None:
    if loaded.manifest.metastores[metastore].type != "iceberg":
        return None
    catalog = getattr(loaded.plugin_config("metastores", metastore), "catalog", None)
    return str(catalog) if catalog else None


def _writes_source(
    loaded: LoadedManifest, node: Mapping[str, Any], source: SourceRelation, write_catalog: str | None
) -> bool:
    schema, table = _lower(node.get("schema")), _lower(node.get("alias") or node.get("name"))
    same_relation = (schema, table) == (_lower(source.schema), _lower(source.identifier)) and (
        not node.get("database") or not source.database or _lower(node["database"]) == _lower(source.database)
    )
    catalog = _catalog_of(loaded, source.ref.metastore)
    committed_over = (
        catalog is not None
        and catalog == write_catalog
        and (schema, table) == (_lower(source.ref.namespace), _lower(source.ref.table))
    )
    return same_relation or committed_over


def read_only_problems(loaded: LoadedManifest, dbt_manifest: Mapping[str, Any]) -> list[Problem]:
    """One problem per model that would write a metastore table or a catalog not ``transforms.catalog``."""
    write_catalog = loaded.manifest.transforms.catalog
    sources = dbt_source_relations(loaded, dbt_manifest)
    other_catalogs = {name.lower(): name for name in loaded.manifest.catalogs if name != write_catalog}
    problems: list[Problem] = []
    for node in model_nodes(dbt_manifest):
        relation = ".".join(
            str(part) for part in (node.get("schema"), node.get("alias") or node.get("name")) if part
        )
        for source in sources:
            if not _writes_source(loaded, node, source, write_catalog):
                continue
            dbt_source = source.unique_id.removeprefix("source.").split(".", 1)[-1]
            table = f"{source.ref.namespace}.{source.ref.table}"
            problems.append(
                Problem(
                    _model_position(loaded, node),
                    (),
                    f"model '{node['name']}' would write {relation}, which is the source '{dbt_source}'"
                    f" (table {table} of metastore '{source.ref.metastore}');"
                    " sources are read-only: give the model another name (or alias / schema) and read"
                    f" the source with {{{{ source('{dbt_source.split('.')[0]}', '{source.identifier}') }}}}",
                )
            )
        database = _lower(node.get("database"))
        if write_catalog and database in other_catalogs:
            problems.append(
                Problem(
                    _model_position(loaded, node),
                    (),
                    f"model '{node['name']}' would write into catalog '{other_catalogs[database]}' (its"
                    f" database); models write only to transforms.catalog ('{write_catalog}'): remove the"
                    " model's database config or set transforms.catalog",
                )
            )
    return problems
