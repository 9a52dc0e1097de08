"""floe-dagster: a governed Iceberg lakehouse, run from Dagster.

The flow (see docs/flow.md): ``manifest`` (load + govern) -> ``plan`` (compile) ->
``dagster_stage`` (``build_definitions``). Dagster is imported only when a Dagster-facing name is
used, so ``floe validate`` starts fast.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from floe_dagster.dagster_stage.component import FloeComponent
    from floe_dagster.dagster_stage.definitions import MAIN_JOB, build_definitions
    from floe_dagster.dagster_stage.resources import CatalogResource
    from floe_dagster.dagster_stage.translator import FloeSourceTranslator, SourceTable
    from floe_dagster.manifest import LoadedManifest, ManifestError
    from floe_dagster.plan import Plan, compile_plan, load_manifest

__all__ = [
    "MAIN_JOB",
    "CatalogResource",
    "FloeComponent",
    "FloeSourceTranslator",
    "LoadedManifest",
    "ManifestError",
    "Plan",
    "SourceTable",
    "build_definitions",
    "compile_plan",
    "load_manifest",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("LoadedManifest", "ManifestError"):
        # A process that only ingests or reads a source (a run worker) needs no manifest loader:
        # lazy (about 0.1 s of imports)
        from floe_dagster import manifest

        return getattr(manifest, name)
    if name in ("Plan", "compile_plan", "load_manifest"):
        # lazy: as above, the plan stage
        from floe_dagster import plan

        return getattr(plan, name)
    if name in ("MAIN_JOB", "build_definitions"):
        # lazy (heavy): the Dagster stage imports dagster, dagster-dbt and dbt
        from floe_dagster.dagster_stage import definitions

        return getattr(definitions, name)
    if name == "CatalogResource":  # a manifest catalog as a Dagster resource
        # lazy (heavy): dagster
        from floe_dagster.dagster_stage.resources import CatalogResource

        return CatalogResource
    if name == "FloeComponent":  # the dg Component (floe_dagster/dagster_stage/component.py)
        # lazy (heavy): dagster and dagster-dbt
        from floe_dagster.dagster_stage.component import FloeComponent

        return FloeComponent
    if name in ("FloeSourceTranslator", "SourceTable"):  # the source translator and what it is given
        # lazy (heavy): dagster
        from floe_dagster.dagster_stage import translator

        return getattr(translator, name)
    raise AttributeError(f"module 'floe_dagster' has no attribute {name!r}")


def __dir__() -> list[str]:
    # dg's component registry lists a module's members with dir(): include the lazy names
    return sorted({*globals(), *__all__})
