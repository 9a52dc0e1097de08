"""The plan: one compute for every dbt transform, and why. Pure data, no Dagster.

Precedence (documented in the README): the model's own ``meta: {floe: {compute: ...}}``,
then the first assignment rule whose dbt selector matches it, then ``computes.default``.
Selectors are evaluated by dbt's own selection machinery (through dagster-dbt), so
``tag:``, ``path:``, ``config.materialized:``, model names and ``+`` graph operators mean
exactly what they mean to ``dbt build --select``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from floe_dagster.manifest.errors import ManifestError, Problem
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.manifest.positions import Position

PLAN_FORMAT_VERSION = 1


@dataclass(frozen=True)
class TransformAssignment:
    unique_id: str
    name: str
    compute: str
    compute_type: str
    reason: str
    workload_size: str = "small"
    resources: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    manifest_name: str
    manifest_path: str
    environment: str
    default_compute: str
    computes: dict[str, str]
    catalogs: dict[str, str]
    metastores: dict[str, str]
    transforms: tuple[TransformAssignment, ...] = field(default_factory=tuple)

    def by_compute(self) -> dict[str, list[TransformAssignment]]:
        groups: dict[str, list[TransformAssignment]] = {}
        for t in self.transforms:
            groups.setdefault(t.compute, []).append(t)
        return groups

    def compute_of(self, unique_id: str) -> str:
        for t in self.transforms:
            if t.unique_id == unique_id:
                return t.compute
        return self.default_compute

    @classmethod
    def from_json(cls, text: str) -> Plan:
        payload = json.loads(text)
        version = payload.pop("plan_format_version", None)
        if version != PLAN_FORMAT_VERSION:
            raise ValueError(
                f"plan format version {version!r}; this floe-dagster reads {PLAN_FORMAT_VERSION}"
            )
        payload["transforms"] = tuple(TransformAssignment(**t) for t in payload["transforms"])
        return cls(**payload)

    def to_json(self) -> str:
        payload = {"plan_format_version": PLAN_FORMAT_VERSION, **asdict(self)}
        payload["transforms"] = sorted(payload["transforms"], key=lambda t: t["unique_id"])
        return json.dumps(payload, indent=2, sort_keys=True)


def model_nodes(dbt_manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    nodes = [n for n in dbt_manifest.get("nodes", {}).values() if n.get("resource_type") == "model"]
    return sorted(nodes, key=lambda n: n["unique_id"])


def meta_compute(node: Mapping[str, Any]) -> str | None:
    for meta in (node.get("config", {}).get("meta") or {}, node.get("meta") or {}):
        floe = meta.get("floe") or {}
        if isinstance(floe, Mapping) and floe.get("compute"):
            return str(floe["compute"])
    return None


def select_rule_matches(loaded: LoadedManifest, dbt_manifest: Mapping[str, Any]) -> list[set[str]]:
    from dagster_dbt.utils import select_unique_ids

    matches: list[set[str]] = []
    # dbt resolves `path:` selectors against the working directory, which is the project's own
    # when dbt runs; evaluate them from there too.
    with contextlib.chdir(loaded.dbt_project_dir):
        for rule in loaded.manifest.transforms.assignments:
            matches.append(
                set(
                    select_unique_ids(
                        select=rule.select,
                        exclude=rule.exclude or "",
                        selector="",
                        project=None,
                        manifest_json=dbt_manifest,
                    )
                )
            )
    return matches


def compile_plan(
    loaded: LoadedManifest, dbt_manifest: Mapping[str, Any], environment: str | None = None
) -> Plan:
    m = loaded.manifest
    approved = m.computes.approved
    compute_types = {name: loaded.target(name).type for name in approved}
    resources = {name: compute_resources(loaded, name) for name in approved}
    rule_matches = select_rule_matches(loaded, dbt_manifest)
    problems = unapproved_rule_problems(loaded, dbt_manifest, rule_matches)
    assignments: list[TransformAssignment] = []
    for node in model_nodes(dbt_manifest):
        unique_id = node["unique_id"]
        compute, reason = m.computes.default, "default"
        from_meta = meta_compute(node)
        if from_meta is not None:
            compute, reason = from_meta, "meta (floe.compute)"
            if from_meta not in approved:
                problems.append(
                    Problem(
                        Position(
                            str(Path(loaded.dbt_project_dir.name) / node.get("original_file_path", "")), 1, 1
                        ),
                        (),
                        f"model '{node['name']}' sets meta.floe.compute '{from_meta}', which is not in"
                        f" computes.approved [{', '.join(approved)}]; use one of those",
                    )
                )
                continue
        else:
            for index, matched in enumerate(rule_matches):
                if unique_id in matched:
                    rule = m.transforms.assignments[index]
                    compute, reason = rule.compute, f"rule {index + 1} ({rule.select})"
                    break
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
    if problems:
        raise ManifestError(problems)
    return Plan(
        manifest_name=m.metadata.name,
        manifest_path=str(loaded.path),
        environment=environment or loaded.environment,
        default_compute=m.computes.default,
        computes=compute_types,
        catalogs={name: c.type for name, c in sorted(m.catalogs.items())},
        metastores={name: s.type for name, s in sorted(m.metastores.items())},
        transforms=tuple(assignments),
    )


def compute_resources(loaded: LoadedManifest, name: str) -> dict[str, dict[str, str]]:
    from floe_dagster.plugins.factory import build_compute

    plugin, _ = build_compute(loaded, name)
    return plugin.get_resource_requirements(loaded.target(name).workload_size).as_k8s()


def unapproved_rule_problems(
    loaded: LoadedManifest, dbt_manifest: Mapping[str, Any], rule_matches: list[set[str]]
) -> list[Problem]:
    m = loaded.manifest
    approved = m.computes.approved
    nodes = dbt_manifest.get("nodes", {})
    problems = []
    for index, rule in enumerate(m.transforms.assignments):
        if rule.compute in approved:
            continue
        models = sorted(
            nodes[u]["name"] for u in rule_matches[index] if nodes.get(u, {}).get("resource_type") == "model"
        )
        path = ("transforms", "assignments", index, "compute")
        problems.append(
            Problem(
                loaded.source_map.position(path),
                path,
                f"rule {index + 1} ({rule.select!r}) assigns model(s) [{abbreviated(models) or 'none'}]"
                f" to compute '{rule.compute}', which is not approved at level {m.metadata.level};"
                f" allowed: [{', '.join(approved)}]",
            )
        )
    return problems


def abbreviated(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def environment_parity_problems(
    loaded: LoadedManifest, assignments: list[TransformAssignment]
) -> list[Problem]:
    """A transform's compute type must be the same in every environment."""
    problems = []
    by_compute: dict[str, list[str]] = {}
    for t in assignments:
        by_compute.setdefault(t.compute, []).append(t.name)
    environments = loaded.manifest.environments
    for compute, models in sorted(by_compute.items()):
        types: dict[str, list[str]] = {}
        for env, env_types in sorted(loaded.target_types_by_environment.items()):
            types.setdefault(env_types[compute], []).append(env)
        if len(types) < 2:
            continue
        differing = "; ".join(f"{t} in [{', '.join(envs)}]" for t, envs in sorted(types.items()))
        overriding = next(
            env
            for env in sorted(environments)
            if (o := environments[env].computes.get(compute)) is not None and o.type
        )
        path = ("environments", overriding, "computes", compute, "type")
        problems.append(
            Problem(
                loaded.source_map.position(path),
                path,
                f"environment parity: transform(s) [{abbreviated(models)}] run on compute '{compute}',"
                f" whose type differs by environment: {differing};"
                " a transform must run on the same engine type everywhere",
            )
        )
    return problems
