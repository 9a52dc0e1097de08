"""The plan's JSON artifact (``floe compile``): written and read, checked against the manifest
and the dbt project it was compiled from (staleness), and loaded alone (``FLOE_PLAN``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from floe_dagster.manifest import loader as manifest_loader
from floe_dagster.manifest.approval import abbreviated
from floe_dagster.manifest.errors import ManifestError, Problem
from floe_dagster.manifest.loader import (
    DEFAULT_ENVIRONMENT,
    ENVIRONMENT_ENV,
    LoadedManifest,
)
from floe_dagster.manifest.positions import Position, display_path
from floe_dagster.plan.model import Plan, meta_compute, model_nodes

# 2: manifest_path relative to the plan file, and the inputs' fingerprints (staleness check)
# 3: the manifest's merged document, so a compiled plan alone builds the definitions


def load_manifest_or_plan(path: str | os.PathLike[str], environment: str | None = None) -> LoadedManifest:
    """The manifest at ``path``: a manifest YAML file, or a plan of ``floe compile`` (a ``.json``
    file), whose manifest is read from the plan alone. What a dbt process and a run's resources
    are handed (``LoadedManifest.source_path``), so a deployment may ship the plan alone."""
    if Path(path).suffix == ".json":
        plan = read_plan(path)
        if environment is not None and environment != plan.environment:
            raise ManifestError(
                [
                    Problem(
                        Position(display_path(Path(path)), 1, 1),
                        (),
                        f"the plan was compiled for environment '{plan.environment}', not '{environment}'",
                    )
                ]
            )
        return plan.loaded_manifest()
    return manifest_loader.load_manifest(path, environment, check_assignments=False)


def plan_inputs(loaded: LoadedManifest, dbt_manifest: Mapping[str, Any]) -> dict[str, str]:
    """Fingerprints of what decides the plan: the effective manifest (the merged extends chain,
    whatever the file layout, comments or machine) and what dbt selectors and meta read of each
    model. Paths in them are relative, so a project moved elsewhere keeps its fingerprints."""
    models = [
        [
            node["unique_id"],
            node.get("fqn"),
            node.get("original_file_path"),
            node.get("patch_path"),
            sorted(node.get("tags") or []),
            (node.get("config") or {}).get("materialized"),
            meta_compute(node),
            sorted((node.get("depends_on") or {}).get("nodes") or []),
        ]
        for node in model_nodes(dbt_manifest)
    ]
    return {
        "manifest_sha256": _sha256(loaded.manifest.model_dump_json(by_alias=True)),
        "dbt_models_sha256": _sha256(json.dumps(models, sort_keys=True)),
    }


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_plan(plan: Plan, path: Path) -> None:
    """The plan as JSON at ``path``, its manifest path relative to the file's folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(plan.to_json(relative_to=path.parent.resolve()) + "\n", encoding="utf-8")


def read_plan(path: str | os.PathLike[str]) -> Plan:
    """A plan written by ``floe compile``; anything else is a problem at the file's position."""
    path = Path(path)
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ManifestError(
            [
                Problem(
                    Position(shown, 1, 1),
                    (),
                    f"cannot read the compiled plan ({reason}); run `floe compile --out {shown}`",
                )
            ]
        ) from None
    try:
        plan = Plan.from_json(text, relative_to=path.parent.resolve())
        return dataclasses.replace(plan, source=str(path.resolve()))
    except json.JSONDecodeError as exc:
        position, reason = Position(shown, exc.lineno, exc.colno), f"not JSON ({exc.msg})"
    except ValueError as exc:
        position, reason = Position(shown, 1, 1), str(exc)
    raise ManifestError(
        [Problem(position, (), f"{reason}; write the plan again with `floe compile --out {shown}`")]
    )


def check_plan_environment(plan: Plan, path: str | os.PathLike[str]) -> str:
    """The environment to load the manifest in for ``plan``: its own, unless FLOE_ENV asks for another."""
    wanted = os.environ.get(ENVIRONMENT_ENV)
    if wanted and wanted != plan.environment:
        shown = display_path(Path(path))
        raise ManifestError(
            [
                Problem(
                    Position(shown, 1, 1),
                    (),
                    f"the plan was compiled for environment '{plan.environment}', but"
                    f" {ENVIRONMENT_ENV}={wanted}; compile one for it with"
                    f" `floe compile --env {wanted} --out {shown}` or unset {ENVIRONMENT_ENV}",
                )
            ]
        )
    return plan.environment


def current_plan(
    plan: Plan, loaded: LoadedManifest, dbt_manifest: Mapping[str, Any], path: str | os.PathLike[str]
) -> Plan:
    """``plan`` (read from ``path``) bound to ``loaded``, or a ManifestError when it no longer
    matches the manifest and the dbt project it was compiled from (a stale plan)."""
    shown = display_path(Path(path))
    env = "" if plan.environment == DEFAULT_ENVIRONMENT else f" --env {plan.environment}"
    again = f"re-run `floe compile {display_path(loaded.path)}{env} --out {shown}`"
    stale = _staleness(plan, loaded, dbt_manifest)
    if stale:
        raise ManifestError([Problem(Position(shown, 1, 1), (), f"stale plan: {stale}; {again}")])
    return dataclasses.replace(plan, manifest_path=str(loaded.path))


def _staleness(plan: Plan, loaded: LoadedManifest, dbt_manifest: Mapping[str, Any]) -> str:
    planned = {t.unique_id for t in plan.transforms}
    models = {node["unique_id"]: node["name"] for node in model_nodes(dbt_manifest)}
    unplanned = sorted(models[u] for u in set(models) - planned)
    gone = sorted(t.name for t in plan.transforms if t.unique_id not in models)
    if unplanned or gone:
        parts = []
        if unplanned:
            parts.append(f"the dbt project has model(s) [{abbreviated(unplanned)}] the plan does not assign")
        if gone:
            parts.append(f"the plan assigns model(s) [{abbreviated(gone)}] the dbt project no longer has")
        return " and ".join(parts)
    inputs = plan_inputs(loaded, dbt_manifest)
    if plan.inputs.get("manifest_sha256") != inputs["manifest_sha256"]:
        return (
            f"the manifest {display_path(loaded.path)} (or a parent it extends) changed since it was compiled"
        )
    if plan.inputs.get("dbt_models_sha256") != inputs["dbt_models_sha256"]:
        return (
            "the dbt models changed since it was compiled (their tags, paths, materializations,"
            " meta.floe.compute or dependencies)"
        )
    return ""
