"""The plan: one compute for every dbt transform, and why. Pure data, no Dagster.

Precedence (documented in the README): the model's own ``meta: {floe: {compute: ...}}``,
then the first assignment rule whose dbt selector matches it, then ``computes.default``.
Selectors are evaluated by dbt's own selection machinery (as dagster-dbt does), so
``tag:``, ``path:``, ``config.materialized:``, model names and ``+`` graph operators mean
exactly what they mean to ``dbt build --select``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from floe_dagster.core.memory import gc_paused
from floe_dagster.manifest import loader as manifest_loader
from floe_dagster.manifest.approval import unapproved_rule_problems
from floe_dagster.manifest.errors import ManifestError
from floe_dagster.manifest.loader import (
    DEFAULT_MANIFEST,
    LoadedManifest,
)
from floe_dagster.plan.artifact import plan_inputs
from floe_dagster.plan.builders import build_compute
from floe_dagster.plan.model import Plan, TransformAssignment, meta_compute, model_nodes
from floe_dagster.plan.read_only import read_only_problems
from floe_dagster.plan.rules import environment_parity_problems, rule_models, unapproved_meta_problem
from floe_dagster.plan.selection import models_by_rule, select_rule_matches

# 2: manifest_path relative to the plan file, and the inputs' fingerprints (staleness check)
# 3: the manifest's merged document, so a compiled plan alone builds the definitions


# Manifest collections whose nodes are in dbt's selection graph (dagster-dbt's
# _GRAPH_MEMBER_COLLECTIONS, mirroring dbt's Manifest.build_parent_and_child_maps).


def compile_plan(
    loaded: LoadedManifest, dbt_manifest: Mapping[str, Any], environment: str | None = None
) -> Plan:
    with gc_paused():  # the plan holds a record per model; see gc_paused
        return _compile_plan(loaded, dbt_manifest, environment)


def _compile_plan(loaded: LoadedManifest, dbt_manifest: Mapping[str, Any], environment: str | None) -> Plan:
    m = loaded.manifest
    approved = m.computes.approved
    compute_types = {name: loaded.target(name).type for name in approved}
    resources = {name: compute_resources(loaded, name) for name in approved}
    rule_matches = select_rule_matches(loaded, dbt_manifest)
    problems = unapproved_rule_problems(loaded, models_by_rule(dbt_manifest, dict(enumerate(rule_matches))))
    first_rule = first_matching_rule(rule_matches)
    assignments: list[TransformAssignment] = []
    for node in model_nodes(dbt_manifest):
        unique_id = node["unique_id"]
        compute, reason = m.computes.default, "default"
        from_meta = meta_compute(node)
        if from_meta is not None:
            compute, reason = from_meta, "meta (floe.compute)"
            if from_meta not in approved:
                problems.append(unapproved_meta_problem(loaded, node, from_meta))
                continue
        elif (index := first_rule.get(unique_id)) is not None:
            rule = m.transforms.assignments[index]
            compute, reason = rule.compute, f"rule {index + 1} ({rule.select})"
        if compute not in approved:
            continue  # reported by unapproved_rule_problems
        assignments.append(
            TransformAssignment(
                unique_id,
                node["name"],
                compute,
                compute_types[compute],
                reason,
                workload_size=loaded.target(compute).workload_size,
                resources=resources[compute],
            )
        )
    problems += environment_parity_problems(loaded, assignments)
    problems += read_only_problems(loaded, dbt_manifest)  # sources are read-only (plan/read_only.py)
    if problems:
        raise ManifestError(problems)
    plan = Plan(
        manifest_name=m.metadata.name,
        manifest_path=str(loaded.path),
        environment=environment or loaded.environment,
        default_compute=m.computes.default,
        computes=compute_types,
        catalogs={name: c.type for name, c in sorted(m.catalogs.items())},
        metastores={name: s.type for name, s in sorted(m.metastores.items())},
        transforms=tuple(assignments),
        inputs=plan_inputs(loaded, dbt_manifest),
        manifest_document=loaded.document,
    )
    if plan.environment == loaded.environment:  # the manifest the plan was compiled from
        object.__setattr__(plan, "_loaded", loaded)
    return plan


def first_matching_rule(rule_matches: list[set[str]]) -> dict[str, int]:
    """unique id -> index of the first rule that selects it (one pass over the matches)."""
    first: dict[str, int] = {}
    for index in reversed(range(len(rule_matches))):
        first.update(dict.fromkeys(rule_matches[index], index))
    return first


def compute_resources(loaded: LoadedManifest, name: str) -> dict[str, dict[str, str]]:
    plugin, _ = build_compute(loaded, name)
    return plugin.get_resource_requirements(loaded.target(name).workload_size).as_k8s()


# --- compute approval: rules and meta ---------------------------------------------------------


def load_manifest(
    path: str | os.PathLike[str] = DEFAULT_MANIFEST,
    environment: str | None = None,
    check_assignments: bool = True,
) -> LoadedManifest:
    """``manifest.loader.load_manifest``, with the models an unapproved assignment rule selects
    named in its problem when the dbt project's manifest.json is current (no dbt parse): what
    ``floe validate`` and ``floe_dagster.load_manifest`` report."""
    return manifest_loader.load_manifest(path, environment, check_assignments, rule_models=rule_models)


# --- the compiled plan artifact (`floe compile`) -----------------------------------------------
