"""The documented path of floe's automation condition (``floe_dagster.dagster_stage.automation``); it lives in
the Dagster stage, ``floe_dagster/dagster_stage/automation.py``."""

from floe_dagster.dagster_stage.automation import *  # noqa: F403
from floe_dagster.dagster_stage.automation import __all__ as __all__
