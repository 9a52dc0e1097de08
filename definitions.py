"""The Dagster code location that `dagster dev` loads from this folder (see [tool.dagster]).

FLOE_MANIFEST points it at another manifest; FLOE_ENV picks the environment; FLOE_PLAN loads
the plan `floe compile --out PATH` wrote instead of compiling it (a stale plan fails the load).
"""

import os
from pathlib import Path

from floe_dagster import build_definitions

defs = build_definitions(
    os.environ.get("FLOE_MANIFEST") or Path(__file__).parent / "manifests" / "manifest.yaml",
    compiled_plan=os.environ.get("FLOE_PLAN") or None,
)
