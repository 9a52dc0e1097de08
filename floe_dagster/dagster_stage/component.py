"""``floe_dagster.FloeComponent``: the whole manifest as one state-backed Dagster Component.

```yaml
# defs.yaml (dg scaffold defs floe_dagster.FloeComponent platform)
type: floe_dagster.FloeComponent
attributes:
  manifest: manifest.yaml      # relative to this file
  environment: dev             # optional; default FLOE_ENV, else dev
  name_scope: auto             # optional; auto (the manifest's name), none, or a name
  translation:                 # optional; per dbt model, with {{ node }} (its dbt node)
    owners: [team:analytics]
  translator: my_project.translators.MyTranslator  # optional; a FloeSourceTranslator subclass
  source_translation:          # optional; per metastore table, with {{ table }} (a SourceTable)
    group_name: raw
post_processing:               # Dagster's usual hooks, applied to every asset
  assets:
    - target: "*"
      attributes: {tags: {platform: floe}}
```

The split is Dagster's ``StateBackedComponent``:

- ``write_state_to_path`` (``dg utils refresh-defs-state``, or ``dagster dev``/``dg`` when
  ``defs_state.refresh_if_dev``) prepares the dbt manifest (``dbt parse`` when stale) and lists
  every metastore of the manifest through floe's state module (``defs/state.py``): the only
  subprocess and network calls. The state file holds both: the metastore listings and the
  parsed dbt manifest (``ComponentState``), so it is complete wherever Dagster keeps it;
- ``build_defs_from_state`` builds the same definitions as ``build_definitions`` (it ends in the
  same ``definitions_from_plan``) from that file alone: no ``dbt parse``, no subprocess, no
  network call, even when the dbt project changed since (the next refresh picks that up). With
  no state yet it reads the dbt project's ``target/manifest.json`` as it is (metastore tables:
  the sources dbt names only), and says to refresh when there is none.

The state key is ``FloeSources[<manifest name>@<environment>]`` (as ``floe refresh``'s), so two
platforms never share state (dagster-io/dagster#32844). Resource keys, job, sensor and op names
and floe's own asset keys are scoped by the manifest's name (``name_scope: auto``, the default:
``jaffle_lakehouse__floe_main``, ``jaffle_lakehouse__dbt``, ``jaffle_lakehouse/floe_compute/duckdb``;
see defs/names.py), so two platforms load side by side in one code location, as Dagster's own
integration components name their ops after what they load. ``name_scope: none`` keeps the names
of ``definitions.py`` (``floe_main``, ``dbt``, ...); any other value is the scope itself. The
keys of metastore tables and dbt models are never scoped: two platforms whose tables or models
have the same keys map them apart (the manifest's ``asset_key_prefix``, ``translation``).

Subclass and override ``get_asset_spec`` (each dbt model's spec, given its dbt node: rename,
add owners, change groups) or ``execute`` (each compute group's step; call ``dbt_build()`` for
the default ``dbt build --target <compute>``). Metastore tables' source asset specs go through
one ``FloeSourceTranslator`` (dagster_stage/translator.py), as in ``build_definitions``:
``translator`` (an instance, or in YAML the dotted path of a subclass), then
``source_translation`` and ``get_source_asset_spec``; the dbt models' upstream keys, the
observation job and sensor, the freshness checks and the ingest assets follow its keys.
"""

import importlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
from dagster.components import (
    DefsStateConfig,
    DefsStateConfigArgs,
    ResolvedDefsStateConfig,
    Resolver,
    Scaffolder,
    ScaffoldRequest,
    StateBackedComponent,
    scaffold_component,
    scaffold_with,
)
from pydantic import BaseModel

from floe_dagster.core.compat import TranslationFn, TranslationFnResolver
from floe_dagster.core.errors import ConfigurationError
from floe_dagster.dagster_stage.definitions import definitions_from_plan
from floe_dagster.dagster_stage.names import DefinitionNames, is_dagster_name, scope_of_name
from floe_dagster.dagster_stage.resources import FloeDbtCliResource
from floe_dagster.dagster_stage.translator import FloeSourceTranslator, SourceTable
from floe_dagster.manifest.loader import LoadedManifest, load_manifest
from floe_dagster.metastores.state import (
    SourcesState,
    defs_state_key,
    write_state,
)
from floe_dagster.plan.compile import compile_plan
from floe_dagster.plan.dbt_project import dbt_target_dir, read_dbt_manifest
from floe_dagster.transforms.dbt_manifest import prepare_dbt_manifest
from floe_dagster.transforms.profiles import write_profiles

__all__ = [
    "FloeComponent",
    "FloeComponentScaffolder",
    "FloeScaffoldParams",
]

logger = logging.getLogger("floe_dagster.dagster_stage.component")

COMPONENT_STATE_FORMAT = "floe-component-state"
COMPONENT_STATE_VERSION = 1
AUTO_SCOPE = "auto"  # name_scope: the manifest's name
NO_SCOPE = "none"  # name_scope: the names of definitions.py


@dataclass(frozen=True)
class ComponentState:
    """The component's defs state: the metastore listings and the dbt manifest they go with."""

    sources: SourcesState
    dbt_manifest: dict[str, Any]

    def to_json(self) -> str:
        document = {
            "format": COMPONENT_STATE_FORMAT,
            "version": COMPONENT_STATE_VERSION,
            "sources": json.loads(self.sources.to_json()),
            "dbt_manifest": self.dbt_manifest,
        }
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "ComponentState":
        document = json.loads(text)
        if (
            document.get("format") != COMPONENT_STATE_FORMAT
            or document.get("version") != COMPONENT_STATE_VERSION
        ):
            raise ValueError(f"not a {COMPONENT_STATE_FORMAT} v{COMPONENT_STATE_VERSION} document")
        return cls(SourcesState.from_json(json.dumps(document["sources"])), dict(document["dbt_manifest"]))

    def save(self, path: Path) -> None:
        """Written atomically: a code location loading at the same moment reads old or new."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(self.to_json(), encoding="utf-8")
        os.replace(partial, path)


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
                # parsed once now, so the new definitions load before the first state refresh
                prepare_dbt_manifest(load_manifest(manifest, check_assignments=False))
        scaffold_component(request, {"manifest": request.params.manifest})


def _resolve_translator(value: FloeSourceTranslator | str | None) -> FloeSourceTranslator | None:
    """A translator instance, or one of the class a dotted path (``module.Class``) names."""
    if value is None or isinstance(value, FloeSourceTranslator):
        return value
    module_name, _, class_name = str(value).rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), class_name) if module_name else None
    except (ImportError, AttributeError) as exc:
        found, reason = None, f"{type(exc).__name__}: {exc}"
    else:
        reason = "not a FloeSourceTranslator subclass" if found is not None else "not a dotted path"
    if not (isinstance(found, type) and issubclass(found, FloeSourceTranslator)):
        raise ConfigurationError(
            f"floe: translator '{value}' of the FloeComponent is not a FloeSourceTranslator subclass"
            f" ({reason}); give the dotted path of one, e.g. my_project.translators.MyTranslator",
            provider="floe",
            operation="translator",
        )
    return found()


class _ComponentSourceTranslator(FloeSourceTranslator):
    """The component's translator: its ``translator``'s spec, then ``get_source_asset_spec``."""

    def __init__(
        self, base: FloeSourceTranslator, hook: Callable[[dg.AssetSpec, SourceTable], dg.AssetSpec]
    ) -> None:
        self.base = base
        self.hook = hook

    def get_asset_spec(self, table: SourceTable) -> dg.AssetSpec:
        return self.hook(self.base.get_asset_spec(table), table)


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
    name_scope: Annotated[
        str,
        Resolver.default(
            description=(
                "Prefix of this platform's resource keys, job, sensor and op names and floe's own"
                " asset keys, so several platforms share a code location: 'auto' (default) scopes"
                " by the manifest's name (jaffle_lakehouse__floe_main), 'none' keeps the names of"
                " definitions.py (floe_main), anything else (letters, digits, _) is the scope."
            )
        ),
    ] = AUTO_SCOPE
    translation: Annotated[
        TranslationFn[Mapping[str, Any]] | None,
        TranslationFnResolver(template_vars_for_translation_fn=lambda data: {"node": data}),
    ] = None
    translator: Annotated[
        FloeSourceTranslator | str | None,
        Resolver(
            lambda context, value: _resolve_translator(context.resolve_value(value)),
            model_field_type=str | None,
            description=(
                "The source translator of the metastore tables: the dotted path of a"
                " floe_dagster.FloeSourceTranslator subclass (module.Class), made with no argument."
            ),
        ),
    ] = None
    source_translation: Annotated[
        TranslationFn[SourceTable] | None,
        TranslationFnResolver(template_vars_for_translation_fn=lambda table: {"table": table}),
    ] = None
    defs_state: ResolvedDefsStateConfig = field(default_factory=DefsStateConfigArgs.local_filesystem)

    # --- the manifest --------------------------------------------------------------------------

    def load_manifest(self) -> LoadedManifest:
        """The manifest (its extends chain merged) in this component's environment; no network."""
        return load_manifest(Path(self.manifest), environment=self.environment, check_assignments=False)

    def definition_names(self, loaded: LoadedManifest | None = None) -> DefinitionNames:
        """The names this component's definitions take (``name_scope``; see defs/names.py)."""
        if self.name_scope == NO_SCOPE:
            return DefinitionNames()
        if self.name_scope != AUTO_SCOPE:
            if not is_dagster_name(self.name_scope):
                raise ConfigurationError(
                    f"floe: name_scope '{self.name_scope}' of the FloeComponent for {self.manifest} is"
                    " not a Dagster name; use letters, digits and _ (e.g."
                    f" {scope_of_name(self.name_scope) or 'platform_one'}), '{AUTO_SCOPE}' (the"
                    f" manifest's name) or '{NO_SCOPE}' (the names of definitions.py)",
                    provider="floe",
                    operation="name_scope",
                )
            return DefinitionNames(self.name_scope)
        name = (loaded or self.load_manifest()).name
        scope = scope_of_name(name)
        if not scope:
            raise ConfigurationError(
                f"floe: the manifest name '{name}' ({self.manifest}) has no letter or digit to scope"
                " the component's definitions by; set name_scope in defs.yaml (letters, digits, _)",
                provider="floe",
                operation="name_scope",
            )
        return DefinitionNames(scope)

    @property
    def defs_state_config(self) -> DefsStateConfig:
        return DefsStateConfig.from_args(self.defs_state, default_key=defs_state_key(self.load_manifest()))

    # --- StateBackedComponent ------------------------------------------------------------------

    def write_state_to_path(self, state_path: Path) -> None:
        loaded = self.load_manifest()
        dbt_manifest = prepare_dbt_manifest(loaded)  # dbt parse, when manifest.json is missing or stale
        with tempfile.TemporaryDirectory() as folder:
            result = write_state(loaded, Path(folder) / "sources")
        if result.failed:
            problems = "; ".join(f"{name}: {exc}" for name, exc in sorted(result.failed.items()))
            raise RuntimeError(f"floe: could not list metastore(s) of {loaded.path.name}: {problems}")
        ComponentState(result.state, dbt_manifest).save(state_path)

    def build_defs_from_state(
        self, context: dg.ComponentLoadContext, state_path: Path | None
    ) -> dg.Definitions:
        loaded = self.load_manifest()
        state = self.read_component_state(loaded, state_path)
        # dbt's profiles.yml, derived from the manifest (a local file; the dbt resource needs it)
        write_profiles(loaded)
        plan = compile_plan(loaded, state.dbt_manifest)
        return definitions_from_plan(
            plan,
            state.dbt_manifest,
            state.sources,
            spec_hook=self.get_asset_spec,
            execute=self.execute,
            names=self.definition_names(loaded),
            translator=self.source_translator(),
        )

    def read_component_state(self, loaded: LoadedManifest, state_path: Path | None) -> "ComponentState":
        """The state at ``state_path``; with none yet, the dbt project's manifest.json as it is.

        Reads files only: no ``dbt parse``, no subprocess, no network call.
        """
        if state_path is not None and state_path.exists():
            try:
                return ComponentState.from_json(state_path.read_text(encoding="utf-8"))
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning(
                    "floe: ignoring the defs state at %s (%s); run `dg utils refresh-defs-state`",
                    state_path,
                    exc,
                )
        sources = SourcesState(manifest=loaded.name, environment=loaded.environment)
        dbt_manifest = read_dbt_manifest(loaded)
        if dbt_manifest is None:
            raise ConfigurationError(
                f"floe: no defs state for {self.defs_state_config.key} yet and no dbt manifest at"
                f" {dbt_target_dir(loaded) / 'manifest.json'}; run `dg utils refresh-defs-state`"
                " (lists the metastores and parses the dbt project), or `dg dev`",
                provider="floe",
                operation="build_defs_from_state",
            )
        return ComponentState(sources, dbt_manifest)

    # --- overridable ---------------------------------------------------------------------------

    def get_asset_spec(self, spec: dg.AssetSpec, node: Mapping[str, Any]) -> dg.AssetSpec:
        """The spec of one dbt model (``node``: its dbt manifest node); default: ``translation``."""
        return spec if self.translation is None else self.translation(spec, node)

    def get_source_asset_spec(self, spec: dg.AssetSpec, table: SourceTable) -> dg.AssetSpec:
        """The spec of one metastore table, given the ``translator``'s; default:
        ``source_translation``."""
        return spec if self.source_translation is None else self.source_translation(spec, table)

    def source_translator(self) -> FloeSourceTranslator:
        """The one translator every source asset spec of this component comes from."""
        base = _resolve_translator(self.translator) or FloeSourceTranslator()
        return _ComponentSourceTranslator(base, self.get_source_asset_spec)

    def execute(
        self,
        context: dg.AssetExecutionContext,
        dbt: FloeDbtCliResource,
        compute: str,
        dbt_build: Callable[[], Iterator[Any]],
    ) -> Iterator[Any]:
        """One compute group's step; default: ``dbt build --target <compute>`` (``dbt_build()``)."""
        yield from dbt_build()
