"""The Dagster stage: resources, observable sources, dbt transform assets, build_definitions.

Dagster is imported only when a Dagster-facing name is used, so ``defs.state`` (the defs state
that ``floe refresh`` and ``floe observe`` use) loads without it.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from floe_dagster.defs.definitions import MAIN_JOB, build_definitions

__all__ = ["MAIN_JOB", "build_definitions"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from floe_dagster.defs import definitions

        return getattr(definitions, name)
    raise AttributeError(f"module 'floe_dagster.defs' has no attribute {name!r}")
