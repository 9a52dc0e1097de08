"""Compute health in the Dagster UI: one asset check per approved compute, and the ``floe_health`` job.

Each approved compute appears as an asset ``floe_compute/<name>`` (group ``floe_health``, kind =
its engine). It is an external asset: it stands for the engine, nothing materialises it, so
"Materialize all" and ``floe_main`` leave it alone. Its check ``connection`` runs the compute's
``validate_connection`` through its resource (``compute_<name>``, a ``ComputeResource``):
``ComputeResource.validate``, the same call ``floe health`` makes, which goes through
:func:`floe_dagster.plugins.telemetry.validate_compute`, so every check is also a span and feeds the
``validation_duration`` / ``validation_errors`` metrics. The check's metadata carries the
status, the latency in milliseconds and the message; a failed connection is an ERROR-severity
failure. Run the checks from the asset's page, or all at once with the job ``floe_health``.

Under a name scope (``floe_dagster.FloeComponent``; defs/names.py) the keys, the resources and
the job carry the scope: ``<scope>/floe_compute/<name>``, ``<scope>__compute_<name>``,
``<scope>__floe_health``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSelection,
    AssetSpec,
    MetadataValue,
    define_asset_job,
    multi_asset_check,
)

from floe_dagster.dagster_stage.names import HEALTH_JOB as HEALTH_JOB  # the unscoped job name
from floe_dagster.dagster_stage.names import UNSCOPED, DefinitionNames
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plugins.compute import ConnectionResult
from floe_dagster.plugins.telemetry import configure_from_environment

if TYPE_CHECKING:
    from floe_dagster.core.compat import UnresolvedAssetJobDefinition

HEALTH_GROUP = "floe_health"
CHECK_NAME = "connection"


@dataclass(frozen=True)
class ComputeHealth:
    """What definitions.py adds: the compute assets, their checks and the ``floe_health`` job."""

    specs: list[AssetSpec]
    checks: AssetChecksDefinition
    job: UnresolvedAssetJobDefinition


def compute_health(loaded: LoadedManifest, names: DefinitionNames = UNSCOPED) -> ComputeHealth:
    """One external asset and one ``connection`` check per approved compute, and the health job.

    ``names`` scopes the assets' keys, the check's op, the resources and the job (defs/names.py).
    """
    computes = {
        names.compute_asset_key(name): (name, loaded.target(name).type)
        for name in loaded.manifest.computes.approved
    }
    specs = [
        AssetSpec(
            key,
            group_name=HEALTH_GROUP,
            kinds={compute_type},
            description=(
                f"Compute '{name}' ({compute_type}), the dbt target of the models assigned to it."
                f" Its '{CHECK_NAME}' check validates the connection."
            ),
            metadata={"floe/compute": name, "floe/compute_type": compute_type},
        )
        for key, (name, compute_type) in computes.items()
    ]
    check_specs = [
        AssetCheckSpec(
            CHECK_NAME,
            asset=key,
            description=f"Connects to compute '{name}' and reports status and latency.",
        )
        for key, (name, _) in computes.items()
    ]

    @multi_asset_check(
        name=names.health_checks_op,
        specs=check_specs,
        can_subset=True,
        required_resource_keys={names.compute_resource(name) for name, _ in computes.values()},
        description="Validate the connection of every approved compute.",
    )
    # no annotation on context: Dagster inspects it, and this module's annotations are strings
    def check_computes(context) -> Iterator[AssetCheckResult]:  # type: ignore[no-untyped-def]
        configure_from_environment()
        selected = context.selected_asset_check_keys
        for check_key in sorted(selected, key=lambda k: k.asset_key.to_user_string()):
            name, compute_type = computes[check_key.asset_key]
            resource = getattr(context.resources, names.compute_resource(name))
            result = resource.validate()
            if not result.ok:
                context.log.warning(result.message)
            yield check_result(check_key, result, compute_type)

    job = define_asset_job(
        names.health_job,
        selection=AssetSelection.checks_for_assets(*computes),
        description="Check the connection of every approved compute (results on each floe_compute asset).",
    )
    return ComputeHealth(specs=specs, checks=check_computes, job=job)


def check_result(check_key: AssetCheckKey, result: ConnectionResult, compute_type: str) -> AssetCheckResult:
    metadata = {
        "status": MetadataValue.text(result.status),
        "latency_ms": MetadataValue.float(float(result.latency_ms)),
        "message": MetadataValue.text(result.message),
        "compute_type": MetadataValue.text(compute_type),
    }
    if result.correlation_id:
        metadata["correlation_id"] = MetadataValue.text(result.correlation_id)
    return AssetCheckResult(
        asset_key=check_key.asset_key,
        check_name=check_key.name,
        passed=result.ok,
        severity=AssetCheckSeverity.ERROR,
        description=result.message,
        metadata=metadata,
    )
