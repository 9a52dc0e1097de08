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


def compile_plan(loaded: LoadedManifest, dbt_manifest: Mapping[str, Any], environment: str = "dev") -> Plan:
    m = loaded.manifest
    approved = m.computes.approved
    compute_types = {name: m.computes.targets[name].type for name in approved}
    rule_matches = select_rule_matches(loaded, dbt_manifest)
    problems: list[Problem] = []
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
        assignments.append(
            TransformAssignment(unique_id, node["name"], compute, compute_types[compute], reason)
        )
    if problems:
        raise ManifestError(problems)
    return Plan(
        manifest_name=m.metadata.name,
        manifest_path=str(loaded.path),
        environment=environment,
        default_compute=m.computes.default,
        computes=compute_types,
        catalogs={name: c.type for name, c in sorted(m.catalogs.items())},
        metastores={name: s.type for name, s in sorted(m.metastores.items())},
        transforms=tuple(assignments),
    )
