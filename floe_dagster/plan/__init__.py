"""Stage 2 of the flow: a loaded Manifest + the parsed dbt project -> a Plan (pure data).

One compute for every dbt transform and why, with the approval and environment-parity rules,
the JSON artifact of ``floe compile`` and its staleness check. No Dagster here.
"""

from floe_dagster.plan.artifact import read_plan, write_plan
from floe_dagster.plan.compile import compile_plan, load_manifest
from floe_dagster.plan.model import Plan, TransformAssignment

__all__ = ["Plan", "TransformAssignment", "compile_plan", "load_manifest", "read_plan", "write_plan"]
