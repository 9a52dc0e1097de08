"""floe-dagster: a governed Iceberg lakehouse, run from Dagster.

The flow (see the README): ``manifest`` (load + govern) -> ``Plan`` -> ``defs.build_definitions``.
Dagster is imported only when a Dagster-facing name is used, so ``floe validate`` starts fast.
"""

from typing import TYPE_CHECKING, Any

from floe_dagster.manifest import LoadedManifest, ManifestError, load_manifest
from floe_dagster.manifest.plan import Plan, compile_plan

if TYPE_CHECKING:
    from floe_dagster.component import FloeComponent
    from floe_dagster.defs.definitions import MAIN_JOB, build_definitions
    from floe_dagster.defs.resources import CatalogResource

__all__ = [
    "MAIN_JOB",
    "CatalogResource",
    "FloeComponent",
    "LoadedManifest",
    "ManifestError",
    "Plan",
    "build_definitions",
    "compile_plan",
    "load_manifest",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("MAIN_JOB", "build_definitions"):
        from floe_dagster.defs import definitions

        return getattr(definitions, name)
    if name == "CatalogResource":  # a manifest catalog as a Dagster resource
        from floe_dagster.defs.resources import CatalogResource

        return CatalogResource
    if name == "FloeComponent":  # the dg Component (floe_dagster/component.py)
        from floe_dagster.component import FloeComponent

        return FloeComponent
    raise AttributeError(f"module 'floe_dagster' has no attribute {name!r}")


def __dir__() -> list[str]:
    # dg's component registry lists a module's members with dir(): include the lazy names
    return sorted({*globals(), *__all__})
