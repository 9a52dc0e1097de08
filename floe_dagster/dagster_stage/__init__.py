"""The Dagster stage: a compiled Plan (and what the edges report) -> Dagster ``Definitions``.

Resources, observable source assets, dbt transform assets, sensors, freshness, automation,
health and the ``dg`` Component. Dagster is imported only when a Dagster-facing name is used.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from floe_dagster.dagster_stage.definitions import MAIN_JOB, build_definitions
    from floe_dagster.dagster_stage.translator import FloeSourceTranslator, SourceTable

__all__ = ["MAIN_JOB", "FloeSourceTranslator", "SourceTable", "build_definitions"]


def __getattr__(name: str) -> Any:
    if name in ("FloeSourceTranslator", "SourceTable"):
        # lazy: importing the package (for a light submodule) must not import Dagster
        from floe_dagster.dagster_stage import translator

        return getattr(translator, name)
    if name in __all__:
        # lazy: importing the package (for a light submodule) must not import Dagster
        from floe_dagster.dagster_stage import definitions

        return getattr(definitions, name)
    raise AttributeError(f"module 'floe_dagster.dagster_stage' has no attribute {name!r}")
