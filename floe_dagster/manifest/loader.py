"""Load a manifest file: YAML with positions -> schema -> plugin configs -> references.

Every check collects problems instead of stopping at the first, so ``floe validate`` shows a
user everything that is wrong in one go.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from floe_dagster.manifest.errors import ManifestError, Problem, dotted
from floe_dagster.manifest.positions import (
    NodePath,
    Position,
    SourceMap,
    YamlSyntaxError,
    display_path,
    load_yaml_with_positions,
)
from floe_dagster.manifest.schema import Manifest
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.errors import PluginNotFoundError
from floe_dagster.plugins.registry import PluginKind, get_plugin_class

ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
DEFAULT_MANIFEST = Path("manifests/manifest.yaml")
STATE_DIR_ENV = "FLOE_STATE_DIR"


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest, where it came from, and its plugin configs parsed by their plugins."""

    manifest: Manifest
    path: Path
    source_map: SourceMap
    plugin_configs: dict[tuple[PluginKind, str], PluginConfig] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def name(self) -> str:
        return self.manifest.metadata.name

    def resolve(self, relative: str) -> Path:
        return (self.base_dir / relative).resolve()

    @property
    def dbt_project_dir(self) -> Path:
        return self.resolve(self.manifest.transforms.dbt_project)

    @property
    def state_dir(self) -> Path:
        override = os.environ.get(STATE_DIR_ENV)
        return Path(override).resolve() if override else self.resolve(self.manifest.state_dir)

    def position(self, *path: str | int) -> Position:
        return self.source_map.position(tuple(path))

    def plugin_config(self, kind: PluginKind, name: str) -> PluginConfig:
        return self.plugin_configs[(kind, name)]


def load_manifest(path: str | os.PathLike[str] = DEFAULT_MANIFEST) -> LoadedManifest:
    """Load and validate a manifest; raise ``ManifestError`` listing every problem."""
    manifest_path = Path(path)
    shown = display_path(manifest_path)
    if not manifest_path.is_file():
        what = "is a directory, not a file" if manifest_path.is_dir() else "not found"
        raise ManifestError(
            [
                Problem(
                    Position(shown, 1, 1),
                    (),
                    f"manifest file {what}; pass the path of a manifest.yaml"
                    f" (default: {DEFAULT_MANIFEST})",
                )
            ]
        )
    try:
        data, source_map = load_yaml_with_positions(manifest_path)
    except YamlSyntaxError as exc:
        raise ManifestError([Problem(exc.position, (), exc.message)]) from None
    if not isinstance(data, dict):
        raise ManifestError(
            [
                Problem(
                    Position(shown, 1, 1),
                    (),
                    "a manifest is a YAML mapping with apiVersion, kind,"
                    " metadata, computes and transforms; see manifests/manifest.yaml",
                )
            ]
        )
    manifest = _validate_schema(data, source_map)
    loaded = LoadedManifest(manifest=manifest, path=manifest_path.resolve(), source_map=source_map)
    problems = _validate_plugins(loaded, data)
    problems += check_references(loaded)
    if problems:
        raise ManifestError(problems)
    return loaded


def _validate_schema(data: dict[str, Any], source_map: SourceMap) -> Manifest:
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        raise ManifestError(
            [_problem_from_pydantic(error, (), source_map) for error in exc.errors()]
        ) from None


def _problem_from_pydantic(error: Any, prefix: NodePath, source_map: SourceMap) -> Problem:
    loc: NodePath = (*prefix, *(p for p in error["loc"] if isinstance(p, str | int)))
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = dotted(loc[:-1]) if len(loc) > 1 else "the top level"
        message = f"unknown key '{loc[-1]}' in {parent}; remove it or check its spelling"
        return Problem(source_map.position(loc, prefer_key=True), loc, message)
    if kind == "missing":
        message = f"required key '{loc[-1]}' is missing; add it"
        return Problem(source_map.position(loc[:-1], prefer_key=True), loc, message)
    given = error.get("input")
    shown = f" (got {given!r})" if isinstance(given, str | int | float | bool) else ""
    if kind == "literal_error" and loc[-1:] == ("apiVersion",):
        message = f"unsupported apiVersion{shown}; this floe-dagster reads 'floe.dev/v1'"
    else:
        message = f"{error['msg']}{shown}"
    return Problem(source_map.position(loc), loc, message)


def resolve_env_references(value: Any, path: NodePath, source_map: SourceMap, problems: list[Problem]) -> Any:
    """Replace ``${env:NAME}`` in strings; the one place manifest config reads the environment."""
    if isinstance(value, dict):
        return {k: resolve_env_references(v, (*path, k), source_map, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_env_references(v, (*path, i), source_map, problems) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            problems.append(
                Problem(
                    source_map.position(path),
                    path,
                    f"environment variable {name} is not set; export it"
                    " or remove the ${env:...} reference",
                )
            )
            return ""
        return os.environ[name]

    return ENV_REFERENCE.sub(substitute, value)


def _plugin_entries(manifest: Manifest) -> list[tuple[PluginKind, NodePath, str, str]]:
    entries: list[tuple[PluginKind, NodePath, str, str]] = []
    for name, catalog in manifest.catalogs.items():
        entries.append(("catalogs", ("catalogs", name), name, catalog.type))
    for name, target in manifest.computes.targets.items():
        entries.append(("computes", ("computes", "targets", name), name, target.type))
    for name, metastore in manifest.metastores.items():
        entries.append(("metastores", ("metastores", name), name, metastore.type))
    return entries


def _validate_plugins(loaded: LoadedManifest, data: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    source_map = loaded.source_map
    for kind, path, name, type_name in _plugin_entries(loaded.manifest):
        try:
            plugin_cls = get_plugin_class(kind, type_name)
        except PluginNotFoundError as exc:
            problems.append(Problem(source_map.position((*path, "type")), (*path, "type"), exc.message))
            continue
        raw = _lookup(data, (*path, "config")) or {}
        raw = resolve_env_references(raw, (*path, "config"), source_map, problems)
        try:
            parsed = plugin_cls.config_model.model_validate(raw, context={"base_dir": loaded.base_dir})
        except ValidationError as exc:
            problems += [_problem_from_pydantic(e, (*path, "config"), source_map) for e in exc.errors()]
            continue
        loaded.plugin_configs[(kind, name)] = parsed
    return problems


def _lookup(data: Any, path: NodePath) -> Any:
    for part in path:
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def check_references(loaded: LoadedManifest) -> list[Problem]:
    """Names that must point at something: approved computes, defaults, rules, catalogs, paths."""
    m = loaded.manifest
    problems: list[Problem] = []

    def problem(path: NodePath, message: str) -> None:
        problems.append(Problem(loaded.source_map.position(path), path, message))

    approved = m.computes.approved
    for index, name in enumerate(approved):
        if name not in m.computes.targets:
            problem(
                ("computes", "approved", index),
                f"approved compute '{name}' has no entry in computes.targets"
                f" [{', '.join(sorted(m.computes.targets))}]; add computes.targets.{name} with its type",
            )
    if m.computes.default not in approved:
        problem(
            ("computes", "default"),
            f"'{m.computes.default}' is not in computes.approved"
            f" [{', '.join(approved)}]; approve it or pick one of those",
        )
    for index, rule in enumerate(m.transforms.assignments):
        if rule.compute not in approved:
            problem(
                ("transforms", "assignments", index, "compute"),
                f"rule {index + 1} ({rule.select!r}) assigns compute '{rule.compute}', which is not in"
                f" computes.approved [{', '.join(approved)}]; use one of those",
            )
    if m.transforms.catalog is not None and m.transforms.catalog not in m.catalogs:
        problem(
            ("transforms", "catalog"),
            f"unknown catalog '{m.transforms.catalog}'; defined catalogs:"
            f" [{', '.join(sorted(m.catalogs))}]",
        )
    for name in m.metastores:
        config = loaded.plugin_configs.get(("metastores", name))
        referenced = getattr(config, "catalog", None)
        if isinstance(referenced, str) and referenced not in m.catalogs:
            problem(
                ("metastores", name, "config", "catalog"),
                f"unknown catalog '{referenced}'; defined" f" catalogs: [{', '.join(sorted(m.catalogs))}]",
            )
    project = loaded.dbt_project_dir
    if not (project / "dbt_project.yml").is_file():
        problem(
            ("transforms", "dbt_project"),
            f"no dbt project at {display_path(project)} (no dbt_project.yml);"
            " the path is relative to the manifest file",
        )
    return problems
