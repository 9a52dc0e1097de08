"""The names a platform's definitions take in a Dagster code location, under one scope.

Dagster wants resource keys, job, sensor and op names unique in a code location, and floe names
them after the manifest's parts (``compute_duckdb``, ``observe_lakehouse_sensor``, the job
``floe_main``...). ``build_definitions`` (``definitions.py``: one platform per code location)
uses them as they are (``UNSCOPED``); ``floe_dagster.FloeComponent`` scopes them by the
manifest's name by default, so two platforms load side by side in one code location:
``jaffle_lakehouse__floe_main``, ``jaffle_lakehouse__dbt``, ``jaffle_lakehouse__compute_duckdb``.

floe's own assets (the compute health assets ``floe_compute/<name>``) get the scope as the first
part of their key (``jaffle_lakehouse/floe_compute/duckdb``). The keys of metastore tables and
dbt models are the user's (the manifest's ``asset_key_prefix`` / ``asset_keys``, the source translator, the
component's ``translation`` / ``get_asset_spec``) and are never scoped here.

Dagster-free (Dagster is imported only to build an asset key), like ``floe_dagster.dagster_stage.freshness``,
which takes its sensor's name from here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import AssetKey

MAIN_JOB = "floe_main"
OBSERVE_JOB = "floe_observe_sources"
HEALTH_JOB = "floe_health"
FRESHNESS_SENSOR = "floe_freshness_checks"
HEALTH_CHECKS = "floe_compute_health"
HEALTH_KEY_PREFIX = "floe_compute"
SEPARATOR = "__"

_DAGSTER_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def scope_of_name(name: str) -> str:
    """A manifest name as a scope: lower case, each run of other characters than letters,
    digits and ``_`` one ``_`` (``jaffle-lakehouse`` -> ``jaffle_lakehouse``); may be empty."""
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_")


def is_dagster_name(text: str) -> bool:
    return bool(_DAGSTER_NAME.match(text))


@dataclass(frozen=True)
class DefinitionNames:
    """Every name one platform's definitions take; ``scope`` ("" = none) prefixes each one."""

    scope: str = ""

    def __post_init__(self) -> None:
        if self.scope and not is_dagster_name(self.scope):
            raise ValueError(f"name scope {self.scope!r} is not a Dagster name (letters, digits, _)")

    def name(self, base: str) -> str:
        return f"{self.scope}{SEPARATOR}{base}" if self.scope else base

    # resources
    @property
    def dbt_resource(self) -> str:
        return self.name("dbt")

    def catalog_resource(self, catalog: str) -> str:
        return self.name(f"catalog_{catalog}")

    def compute_resource(self, compute: str) -> str:
        return self.name(f"compute_{compute}")

    def metastore_resource(self, metastore: str) -> str:
        return self.name(f"metastore_{metastore}")

    # jobs and sensors
    @property
    def main_job(self) -> str:
        return self.name(MAIN_JOB)

    @property
    def observe_job(self) -> str:
        return self.name(OBSERVE_JOB)

    @property
    def health_job(self) -> str:
        return self.name(HEALTH_JOB)

    def observation_sensor(self, metastore: str) -> str:
        return self.name(f"observe_{metastore}_sensor")

    @property
    def freshness_sensor(self) -> str:
        return self.name(FRESHNESS_SENSOR)

    # ops (Dagster wants op names unique in a code location too)
    def dbt_op(self, compute: str) -> str:
        return self.name(f"dbt_{compute}")

    def observe_op(self, metastore: str) -> str:
        return self.name(f"observe_{metastore}")

    def ingest_op(self, metastore: str) -> str:
        return self.name(f"ingest_{metastore}")

    @property
    def health_checks_op(self) -> str:
        return self.name(HEALTH_CHECKS)

    # floe's own assets
    def compute_asset_key(self, compute: str) -> AssetKey:
        from dagster import AssetKey

        return AssetKey([*([self.scope] if self.scope else []), HEALTH_KEY_PREFIX, compute])


UNSCOPED = DefinitionNames()


# spec metadata: <namespace>.<table>, what a (possibly mapped) source asset key stands for
TABLE_METADATA = "floe/table"
