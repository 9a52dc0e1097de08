"""floe-dagster: a governed Iceberg lakehouse, run from Dagster.

The flow (see the README): ``manifest`` (load + govern) -> ``Plan`` -> ``defs.build_definitions``.
"""

from floe_dagster.defs.definitions import MAIN_JOB, build_definitions
from floe_dagster.manifest import LoadedManifest, ManifestError, load_manifest
from floe_dagster.manifest.plan import Plan, compile_plan

__all__ = ["MAIN_JOB", "LoadedManifest", "ManifestError", "Plan", "build_definitions", "compile_plan", "load_manifest"]
__version__ = "0.1.0"
