"""``floe_dagster.FloeComponent``: the whole manifest as one state-backed Dagster Component.

```yaml
# defs.yaml (dg scaffold defs floe_dagster.FloeComponent platform)
type: floe_dagster.FloeComponent
attributes:
  manifest: manifest.yaml      # relative to this file
  environment: dev             # optional; default FLOE_ENV, else dev
  translation:                 # optional; per dbt model, with {{ node }} (its dbt node)
    owners: [team:analytics]
post_processing:               # Dagster's usual hooks, applied to every asset
  assets:
    - target: "*"
      attributes: {tags: {platform: floe}}
```

The split is Dagster's ``StateBackedComponent``:

- ``write_state_to_path`` (``dg utils refresh-defs-state``, or ``dagster dev``/``dg`` when
  ``defs_state.refresh_if_dev``) prepares the dbt manifest (``dbt parse`` when stale) and lists
  every metastore of the manifest through floe's state module (``defs/state.py``): the only
  network calls;
- ``build_defs_from_state`` builds the same definitions as ``build_definitions`` (it ends in the
  same ``definitions_from_state``) from that state file, with no network call: a metastore
  missing from the state loads with the sources dbt names only.

The state key is ``FloeSources[<manifest name>@<environment>]`` (as ``floe refresh``'s), so two
platforms in one code location never share state (dagster-io/dagster#32844).

Subclass and override ``get_asset_spec`` (each dbt model's spec, given its dbt node: rename,
add owners, change groups) or ``execute`` (each compute group's step; call ``dbt_build()`` for
the default ``dbt build --target <compute>``).
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
from dagster.components import (
    DefsStateConfig,
    DefsStateConfigArgs,
    ResolvedDefsStateConfig,
    Scaffolder,
    ScaffoldRequest,
    StateBackedComponent,
)
from dagster.components.component_scaffolding import scaffold_component
from dagster.components.resolved.model import Resolver
from dagster.components.scaffold.scaffold import scaffold_with
from dagster.components.utils.translation import TranslationFn, TranslationFnResolver
from pydantic import BaseModel

from floe_dagster.defs.definitions import definitions_from_state
from floe_dagster.defs.resources import FloeDbtCliResource
from floe_dagster.defs.state import SourcesState, defs_state_key, read_state, write_state
from floe_dagster.manifest.loader import LoadedManifest, load_manifest
from floe_dagster.manifest.plan import compile_plan
from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest


class FloeScaffoldParams(BaseModel):
    manifest: str = "manifest.yaml"


def _starter_manifest(name: str) -> str:
    return f"""\
# A starter floe manifest (floe-dagster): one local SQLite-backed Iceberg catalog, DuckDB as the
# compute, the catalog's tables as observable sources and the dbt project next to this file.
# `floe validate manifest.yaml` checks it; `floe plan manifest.yaml` shows where models run.
apiVersion: floe.dev/v1
kind: Manifest
metadata:
  name: {name}
  level: product
state_dir: .floe

catalogs:
  lakehouse:
    type: sql
    config:
      uri: sqlite:///.floe/catalog.db
      warehouse: .floe/warehouse

computes:
  approved: [duckdb]
  default: duckdb
  targets:
    duckdb:
      type: duckdb
      config:
        path: .floe/duckdb/lakehouse.duckdb

metastores:
  lakehouse:
    type: iceberg
    config:
      catalog: lakehouse

transforms:
  dbt_project: dbt_project
  catalog: lakehouse
  automation: on_upstream_change
"""


_STARTER_DBT = {
    "dbt_project.yml": (
        "name: floe_starter\nversion: '1.0.0'\nconfig-version: 2\nprofile: floe\nmodel-paths: [models]\n"
    ),
    "models/example.sql": "select 1 as id\n",
}


class FloeComponentScaffolder(Scaffolder[FloeScaffoldParams]):
    """defs.yaml pointing at the manifest; a starter manifest (and dbt project) when none exists."""

    @classmethod
    def get_scaffold_params(cls) -> type[FloeScaffoldParams]:
        return FloeScaffoldParams

    def scaffold(self, request: ScaffoldRequest[FloeScaffoldParams]) -> None:
        manifest = request.target_path / request.params.manifest
        if not manifest.exists():
            manifest.parent.mkdir(parents=True, exist_ok=True)
            manifest.write_text(_starter_manifest(request.target_path.name.replace("_", "-")))
            project = manifest.parent / "dbt_project"
            if not project.exists():
                for relative, text in _STARTER_DBT.items():
                    (project / relative).parent.mkdir(parents=True, exist_ok=True)
                    (project / relative).write_text(text)
        scaffold_component(request, {"manifest": request.params.manifest})


def _source_relative(context: Any, value: str) -> str:
    return str(context.resolve_source_relative_path(context.resolve_value(value, as_type=str)))


@scaffold_with(FloeComponentScaffolder)
@dataclass
class FloeComponent(StateBackedComponent, dg.Resolvable):
    """A floe manifest (catalogs, computes, metastores, dbt transforms) as Dagster definitions."""

    manifest: Annotated[
        str,
        Resolver(
            _source_relative,
            model_field_type=str,
            description="Path to the floe manifest.yaml, relative to this defs.yaml.",
        ),
    ] = "manifest.yaml"
    environment: Annotated[
        str | None,
        Resolver.default(description="Manifest environment (default: FLOE_ENV, else dev)."),
    ] = None
    translation: Annotated[
        TranslationFn[Mapping[str, Any]] | None,
        TranslationFnResolver(template_vars_for_translation_fn=lambda data: {"node": data}),
    ] = None
    defs_state: ResolvedDefsStateConfig = field(default_factory=DefsStateConfigArgs.local_filesystem)

    # --- the manifest --------------------------------------------------------------------------

    def load_manifest(self) -> LoadedManifest:
        """The manifest (its extends chain merged) in this component's environment; no network."""
        return load_manifest(Path(self.manifest), environment=self.environment, check_assignments=False)

    @property
    def defs_state_config(self) -> DefsStateConfig:
        return DefsStateConfig.from_args(self.defs_state, default_key=defs_state_key(self.load_manifest()))

    # --- StateBackedComponent ------------------------------------------------------------------

    def write_state_to_path(self, state_path: Path) -> None:
        loaded = self.load_manifest()
        prepare_dbt_manifest(loaded)  # dbt parse, when manifest.json is missing or stale
        result = write_state(loaded, state_path)
        if result.failed:
            problems = "; ".join(f"{name}: {exc}" for name, exc in sorted(result.failed.items()))
            raise RuntimeError(f"floe: could not list metastore(s) of {loaded.path.name}: {problems}")

    def build_defs_from_state(
        self, context: dg.ComponentLoadContext, state_path: Path | None
    ) -> dg.Definitions:
        loaded = self.load_manifest()
        dbt_manifest = prepare_dbt_manifest(loaded)
        plan = compile_plan(loaded, dbt_manifest)
        state = (read_state(state_path) if state_path is not None else None) or SourcesState(
            manifest=loaded.name, environment=loaded.environment
        )
        return definitions_from_state(
            loaded, dbt_manifest, plan, state, spec_hook=self.get_asset_spec, execute=self.execute
        )

    # --- overridable ---------------------------------------------------------------------------

    def get_asset_spec(self, spec: dg.AssetSpec, node: Mapping[str, Any]) -> dg.AssetSpec:
        """The spec of one dbt model (``node``: its dbt manifest node); default: ``translation``."""
        return spec if self.translation is None else self.translation(spec, node)

    def execute(
        self,
        context: dg.AssetExecutionContext,
        dbt: FloeDbtCliResource,
        compute: str,
        dbt_build: Callable[[], Iterator[Any]],
    ) -> Iterator[Any]:
        """One compute group's step; default: ``dbt build --target <compute>`` (``dbt_build()``)."""
        yield from dbt_build()
