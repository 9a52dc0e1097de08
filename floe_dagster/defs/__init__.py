"""The Dagster stage: resources, observable sources, dbt transform assets, build_definitions."""

from floe_dagster.defs.definitions import MAIN_JOB, build_definitions

__all__ = ["MAIN_JOB", "build_definitions"]
