"""Approval and environment-parity rules of a plan, and where a model's ``meta.floe.compute``
is written (its .sql config, a .yml patch or dbt_project.yml) so a problem points there."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from floe_dagster.manifest.approval import abbreviated, not_approved
from floe_dagster.manifest.errors import Problem
from floe_dagster.manifest.loader import (
    LoadedManifest,
)
from floe_dagster.manifest.positions import NodePath, Position, display_path, load_yaml_with_positions
from floe_dagster.plan.dbt_project import dbt_target_dir, newest_source_mtime, profiles_dir
from floe_dagster.plan.model import TransformAssignment
from floe_dagster.plan.selection import evaluate_rules, models_by_rule

# 2: manifest_path relative to the plan file, and the inputs' fingerprints (staleness check)
# 3: the manifest's merged document, so a compiled plan alone builds the definitions


def rule_models(loaded: LoadedManifest, indices: list[int]) -> dict[int, list[str]] | None:
    """Rule index -> the models it selects, when the dbt project's manifest.json is already
    current (nothing is parsed); None otherwise. What ``load_manifest`` names in the problem of a
    rule that assigns an unapproved compute."""
    dbt_manifest = current_dbt_manifest(loaded)
    if dbt_manifest is None:
        return None
    return models_by_rule(dbt_manifest, evaluate_rules(loaded, dbt_manifest, indices))


def current_dbt_manifest(loaded: LoadedManifest) -> dict[str, Any] | None:
    """target/manifest.json when it is newer than the dbt project (read only: nothing is parsed
    or written), else None."""
    manifest_json = dbt_target_dir(loaded) / "manifest.json"
    try:
        newest = newest_source_mtime(loaded.dbt_project_dir, [profiles_dir(loaded) / "profiles.yml"])
        if not manifest_json.is_file() or manifest_json.stat().st_mtime < newest:
            return None
        found = json.loads(manifest_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) and "child_map" in found else None


def unapproved_meta_problem(loaded: LoadedManifest, node: Mapping[str, Any], compute: str) -> Problem:
    position, path = meta_compute_position(loaded, node, compute)
    return Problem(
        position,
        path,
        f"model '{node['name']}' sets meta.floe.compute '{compute}', {not_approved(loaded)};"
        " use one of those or remove the meta",
    )


_PATCH_PREFIX = re.compile(r"^[^:/]+://")


def meta_compute_position(
    loaded: LoadedManifest, node: Mapping[str, Any], compute: str
) -> tuple[Position, NodePath]:
    """Where a model's ``meta.floe.compute`` is set: its .sql ``config()``, its properties .yml,
    or dbt_project.yml; the model's .sql file (line 1) when none of them shows that value."""
    project = loaded.dbt_project_dir
    sql = node.get("original_file_path") or ""
    found = _position_in_sql(project / sql, compute) if sql else None
    if found is not None:
        return found, ()
    patch = _PATCH_PREFIX.sub("", node.get("patch_path") or "")
    candidates: list[tuple[Path, list[NodePath]]] = []
    if patch:
        candidates.append((project / patch, _yml_meta_paths(project / patch, node["name"])))
    candidates.append((project / "dbt_project.yml", _project_meta_paths(node)))
    for file, paths in candidates:
        with contextlib.suppress(Exception):  # an unreadable file: keep looking
            data, source_map = load_yaml_with_positions(file)
            for path in paths:
                if _value_at(data, path) == compute:
                    return source_map.position(path), path
    return Position(display_path(project / sql) if sql else display_path(project), 1, 1), ()


def _position_in_sql(file: Path, compute: str) -> Position | None:
    pattern = re.compile(r"""['"]?compute['"]?\s*[:=]\s*(['"])""" + re.escape(compute) + r"\1")
    with contextlib.suppress(OSError, ValueError):
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            if match := pattern.search(line):
                return Position(display_path(file), number, match.start(1) + 1)
    return None


def _yml_meta_paths(file: Path, model: str) -> list[NodePath]:
    with contextlib.suppress(Exception):
        data, _ = load_yaml_with_positions(file)
        for index, entry in enumerate(data.get("models") or []):
            if isinstance(entry, dict) and entry.get("name") == model:
                return [
                    ("models", index, "config", "meta", "floe", "compute"),
                    ("models", index, "meta", "floe", "compute"),
                ]
    return []


def _project_meta_paths(node: Mapping[str, Any]) -> list[NodePath]:
    """``models: <project>: <folder>...: +meta: {floe: {compute}}`` paths for the node's fqn,
    the most specific (deepest folder) first."""
    fqn = list(node.get("fqn") or [])
    paths: list[NodePath] = []
    for depth in range(len(fqn), 0, -1):
        for key in ("+meta", "meta"):
            paths.append(("models", *fqn[:depth], key, "floe", "compute"))
    return paths


def _value_at(data: Any, path: NodePath) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(data, list) or part >= len(data):
                return None
        elif not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


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
