"""Load a manifest: the ``extends:`` chain -> governance -> schema -> environment -> plugin configs.

Every check collects problems instead of stopping at the first, so ``floe validate`` shows a
user everything that is wrong in one go.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from floe_dagster.core.errors import FloeError, PluginNotFoundError
from floe_dagster.manifest.approval import unapproved_rule_problems
from floe_dagster.manifest.errors import ManifestError, Problem
from floe_dagster.manifest.governance import (
    Layer,
    check_compute_governance,
    check_levels,
    deep_merge,
    load_chain,
    merge_chain,
    shown_path,
)
from floe_dagster.manifest.hints import did_you_mean
from floe_dagster.manifest.positions import NodePath, Position, SourceMap, load_yaml_with_positions
from floe_dagster.manifest.pydantic_problems import problem_from_pydantic
from floe_dagster.manifest.schema import ComputeTarget, Manifest
from floe_dagster.plugins.base import PluginConfig
from floe_dagster.plugins.redaction import safe_text
from floe_dagster.plugins.registry import PluginKind, get_plugin_class

# rule index list -> rule index -> the models it selects (None: unknown); see load_manifest
RuleModels = Callable[["LoadedManifest", list[int]], Mapping[int, list[str]] | None]

ENV_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")
DEFAULT_MANIFEST = Path("manifests/manifest.yaml")
STATE_DIR_ENV = "FLOE_STATE_DIR"
ENVIRONMENT_ENV = "FLOE_ENV"
DEFAULT_ENVIRONMENT = "dev"


def current_environment() -> str:
    return os.environ.get(ENVIRONMENT_ENV) or DEFAULT_ENVIRONMENT


@dataclass(frozen=True, repr=False)
class LoadedManifest:
    """A validated manifest for one environment, where it came from, and its parsed plugin configs."""

    manifest: Manifest
    path: Path
    source_map: SourceMap
    environment: str = DEFAULT_ENVIRONMENT
    chain: tuple[Layer, ...] = ()
    targets: dict[str, ComputeTarget] = field(default_factory=dict)
    plugin_configs: dict[tuple[PluginKind, str], PluginConfig] = field(default_factory=dict)
    target_types_by_environment: dict[str, dict[str, str]] = field(default_factory=dict)
    # the merged document of the extends chain (``${env:NAME}`` unresolved): what a plan carries
    document: dict[str, Any] = field(default_factory=dict, repr=False)
    # the compiled plan this manifest was read from (None: read from its YAML files)
    origin: Path | None = None

    @property
    def source_path(self) -> Path:
        """What a dbt process or a run's resource loads this manifest from again: the compiled
        plan it came from, else its own file (``load_manifest_or_plan`` reads either)."""
        return self.origin or self.path

    def __repr__(self) -> str:
        # the manifest's raw plugin configs are masked by its own repr; the source map and the
        # chain (raw YAML of each file) are left out: they are long and may hold a literal secret
        return (
            f"LoadedManifest(path={str(self.path)!r}, environment={self.environment!r},"
            f" manifest={self.manifest!r}, plugin_configs={self.plugin_configs!r})"
        )

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

    def target(self, name: str) -> ComputeTarget:
        """A compute target as the selected environment sees it."""
        return self.targets.get(name) or self.manifest.computes.targets[name]


def load_manifest(
    path: str | os.PathLike[str] = DEFAULT_MANIFEST,
    environment: str | None = None,
    check_assignments: bool = True,
    rule_models: RuleModels | None = None,
) -> LoadedManifest:
    """Load and validate a manifest and its parents; raise ``ManifestError`` listing every problem.

    A rule assigning an unapproved compute is a problem; ``rule_models(loaded, rule indices)``,
    when given, names the models each such rule selects (the plan layer passes one that reads a
    current manifest.json: ``floe_dagster.plan.load_manifest``). ``check_assignments=False``
    leaves the approval of assignment rules to ``compile_plan``, which always has the dbt manifest.

    Whatever goes wrong inside, the caller gets a ManifestError with a position: an exception
    no check foresaw (a recursion or memory limit, a bug) becomes a problem at the manifest's
    first line naming the exception, never a traceback.
    """
    try:
        return _load_manifest(path, environment, check_assignments, rule_models)
    except ManifestError:
        raise
    except (Exception, RecursionError, MemoryError) as exc:  # the last safety net
        shown = shown_path(Path(path)) if isinstance(path, str | os.PathLike) else str(path)
        detail = safe_text(" ".join(str(exc).split()), 200)
        raise ManifestError(
            [
                Problem(
                    Position(shown, 1, 1),
                    (),
                    f"the manifest could not be loaded ({type(exc).__name__}: {detail});"
                    " check the YAML at this file, and report it if the message does not say what is wrong",
                )
            ]
        ) from None


def _load_manifest(
    path: str | os.PathLike[str],
    environment: str | None,
    check_assignments: bool,
    rule_models: RuleModels | None,
) -> LoadedManifest:
    try:
        chain = load_chain(Path(path))
    except ManifestError as exc:  # a layer the schema rejects: add the references it breaks
        raise ManifestError(unique_problems([*exc.problems, *chain_reference_problems(Path(path))])) from None
    problems = check_levels(chain) + check_compute_governance(chain)
    data, source_map = merge_chain(chain)
    return _validated(
        data, chain[-1].path, source_map, environment, problems, check_assignments, rule_models, chain=chain
    )


def manifest_from_document(
    document: dict[str, Any], path: str | os.PathLike[str], environment: str, origin: Path | None = None
) -> LoadedManifest:
    """A manifest from its merged document, as a compiled plan carries it (``Plan.manifest``).

    The extends chain's governance was checked when the plan was compiled; the document is
    validated again here (plugin configs too, ``${env:NAME}`` resolved now), and relative paths
    resolve against ``path``'s folder, which need not exist any more. ``origin``: the plan file.
    """
    manifest_path = Path(path)
    source_map = SourceMap(file=(origin or manifest_path).name)
    return _validated(document, manifest_path, source_map, environment, [], True, None, origin=origin)


def _validated(
    data: dict[str, Any],
    path: Path,
    source_map: SourceMap,
    environment: str | None,
    problems: list[Problem],
    check_assignments: bool,
    rule_models: RuleModels | None,
    chain: list[Layer] | None = None,
    origin: Path | None = None,
) -> LoadedManifest:
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems += [problem_from_pydantic(e, (), source_map, Manifest) for e in exc.errors()]
        # names that point nowhere, found in the raw data: reported now, not after the rest is fixed
        problems += raw_reference_problems(data, source_map)
        raise ManifestError(unique_problems(problems)) from None
    env = environment or current_environment()
    loaded = LoadedManifest(
        manifest=manifest,
        path=path,
        source_map=source_map,
        environment=env,
        chain=tuple(chain or ()),
        document=data,
        origin=origin,
    )
    problems += _check_environment(loaded)
    _resolve_environment_targets(loaded)
    problems += _validate_plugins(loaded)
    problems += check_references(loaded, check_assignments=check_assignments, rule_models=rule_models)
    if problems:
        raise ManifestError(unique_problems(problems))
    return loaded


def unique_problems(problems: list[Problem]) -> list[Problem]:
    """One problem per place: a governance rule and a reference check may both see one mistake."""
    seen: set[tuple[Position, NodePath]] = set()
    kept = []
    for problem in problems:
        if (problem.position, problem.path) not in seen:
            seen.add((problem.position, problem.path))
            kept.append(problem)
    return kept


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
                    f"environment variable {name} is not set;"
                    " export it or remove the ${env:...} reference",
                )
            )
            return ""
        return os.environ[name]

    return ENV_REFERENCE.sub(substitute, value)


def _check_environment(loaded: LoadedManifest) -> list[Problem]:
    m = loaded.manifest
    problems = []
    if (
        m.environments
        and loaded.environment not in m.environments
        and loaded.environment != DEFAULT_ENVIRONMENT
    ):
        problems.append(
            Problem(
                loaded.source_map.position(("environments",), prefer_key=True),
                ("environments",),
                f"{ENVIRONMENT_ENV}={loaded.environment}: no such environment; defined:"
                f" [{', '.join(sorted(m.environments))}]",
            )
        )
    for env, overrides in m.environments.items():
        for name in overrides.computes:
            if name not in m.computes.targets:
                path: NodePath = ("environments", env, "computes", name)
                problems.append(
                    Problem(
                        loaded.source_map.position(path, prefer_key=True),
                        path,
                        f"environment '{env}' overrides compute '{name}', which has no entry in"
                        f" computes.targets [{', '.join(sorted(m.computes.targets))}]",
                    )
                )
        for name in overrides.catalogs:
            if name not in m.catalogs:
                path = ("environments", env, "catalogs", name)
                problems.append(
                    Problem(
                        loaded.source_map.position(path, prefer_key=True),
                        path,
                        f"environment '{env}' overrides catalog '{name}', which is not defined"
                        f" [{', '.join(sorted(m.catalogs))}]",
                    )
                )
    return problems


def environments_of(m: Manifest) -> list[str]:
    """Every environment a manifest runs in: the base (dev) and each one it defines."""
    return sorted({DEFAULT_ENVIRONMENT, *m.environments})


def target_in_environment(m: Manifest, name: str, env: str) -> ComputeTarget:
    base = m.computes.targets[name]
    override = m.environments[env].computes.get(name) if env in m.environments else None
    if override is None:
        return base
    other_engine = override.type is not None and override.type != base.type
    return base.model_copy(
        update={
            "type": override.type or base.type,
            "workload_size": override.workload_size or base.workload_size,
            # another engine's config keys mean nothing to this one: the override is the whole config
            "config": override.config if other_engine else deep_merge(base.config, override.config),
        }
    )


def _resolve_environment_targets(loaded: LoadedManifest) -> None:
    m = loaded.manifest
    for env in environments_of(m):
        loaded.target_types_by_environment[env] = {
            name: target_in_environment(m, name, env).type for name in m.computes.targets
        }
    selected = loaded.environment if loaded.environment in m.environments else DEFAULT_ENVIRONMENT
    loaded.targets.update({name: target_in_environment(m, name, selected) for name in m.computes.targets})


def _config_sources(m: Manifest, kind: PluginKind, name: str, env: str) -> list[NodePath]:
    """Where an entry's config may come from, most specific first (for error positions)."""
    base: NodePath = {
        "catalogs": ("catalogs", name),
        "computes": ("computes", "targets", name),
        "metastores": ("metastores", name),
    }[kind]
    sources = [(*base, "config")]
    if env in m.environments and kind in ("catalogs", "computes"):
        sources.insert(0, ("environments", env, kind, name, "config"))
    return sources


def _effective_entry(
    m: Manifest, kind: PluginKind, name: str, env: str
) -> tuple[str, dict[str, Any], NodePath]:
    if kind == "computes":
        target = target_in_environment(m, name, env)
        override = m.environments[env].computes.get(name) if env in m.environments else None
        type_path: NodePath = (
            ("environments", env, "computes", name, "type")
            if override and override.type
            else ("computes", "targets", name, "type")
        )
        return target.type, target.config, type_path
    if kind == "catalogs":
        catalog = m.catalogs[name]
        catalog_override = m.environments[env].catalogs.get(name) if env in m.environments else None
        config = deep_merge(catalog.config, catalog_override.config) if catalog_override else catalog.config
        return catalog.type, config, ("catalogs", name, "type")
    metastore = m.metastores[name]
    return metastore.type, metastore.config, ("metastores", name, "type")


def _entries(m: Manifest) -> list[tuple[PluginKind, str]]:
    return (
        [("catalogs", n) for n in m.catalogs]
        + [("computes", n) for n in m.computes.targets]
        + [("metastores", n) for n in m.metastores]
    )


def _validate_plugins(loaded: LoadedManifest) -> list[Problem]:
    """Parse every plugin config in every environment; keep the selected environment's."""
    m, source_map = loaded.manifest, loaded.source_map
    problems: list[Problem] = []
    seen: set[tuple[Position, str]] = set()

    def add(problem: Problem) -> None:
        if (problem.position, problem.message) not in seen:
            seen.add((problem.position, problem.message))
            problems.append(problem)

    for env in environments_of(m):
        for kind, name in _entries(m):
            type_name, raw, type_path = _effective_entry(m, kind, name, env)
            try:
                plugin_cls = get_plugin_class(kind, type_name)
            except PluginNotFoundError as exc:
                add(Problem(source_map.position(type_path), type_path, exc.message))
                continue
            sources = _config_sources(m, kind, name, env)
            env_problems: list[Problem] = []
            raw = resolve_env_references(raw, sources[-1], source_map, env_problems)
            if env == loaded.environment:
                for p in env_problems:
                    add(p)
            try:
                parsed = plugin_cls.config_model.model_validate(raw, context={"base_dir": loaded.base_dir})
            except ValidationError as exc:
                for error in exc.errors():
                    add(_config_problem(error, sources, source_map, plugin_cls.config_model))
                continue
            if kind == "computes":
                _check_workload_size(loaded, plugin_cls, name, env, add)
            if env == loaded.environment:
                loaded.plugin_configs[(kind, name)] = parsed
    return problems


def _config_problem(
    error: Any, sources: list[NodePath], source_map: SourceMap, model: type[BaseModel]
) -> Problem:
    loc = tuple(p for p in error["loc"] if isinstance(p, str | int))
    for prefix in sources:
        if (*prefix, *loc[:1]) in source_map.values or (*prefix, *loc[:1]) in source_map.keys:
            return problem_from_pydantic(error, prefix, source_map, model)
    return problem_from_pydantic(error, sources[-1], source_map, model)


def _check_workload_size(loaded: LoadedManifest, plugin_cls: Any, name: str, env: str, add: Any) -> None:
    m = loaded.manifest
    size = target_in_environment(m, name, env).workload_size
    try:
        plugin_cls().get_resource_requirements(size)
    except FloeError as exc:
        # point at the value that set the size: the environment's override when it has one
        override = m.environments[env].computes.get(name) if env in m.environments else None
        path: NodePath = (
            ("environments", env, "computes", name, "workload_size")
            if override is not None and override.workload_size
            else ("computes", "targets", name, "workload_size")
        )
        add(Problem(loaded.source_map.position(path), path, f"compute '{name}': {exc.message}"))


def check_references(
    loaded: LoadedManifest, check_assignments: bool = True, rule_models: RuleModels | None = None
) -> list[Problem]:
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
    if check_assignments:
        bad = [i for i, rule in enumerate(m.transforms.assignments) if rule.compute not in approved]
        if bad:
            models = rule_models(loaded, bad) if rule_models is not None else None
            problems += unapproved_rule_problems(loaded, models)
    if m.transforms.catalog is not None and m.transforms.catalog not in m.catalogs:
        problem(
            ("transforms", "catalog"),
            f"unknown catalog '{m.transforms.catalog}'{did_you_mean(m.transforms.catalog, list(m.catalogs))};"
            f" defined catalogs: [{', '.join(sorted(m.catalogs))}]",
        )
    for name in m.metastores:
        config = loaded.plugin_configs.get(("metastores", name))
        referenced = getattr(config, "catalog", None)
        if isinstance(referenced, str) and referenced not in m.catalogs:
            problem(
                ("metastores", name, "config", "catalog"),
                f"unknown catalog '{referenced}'{did_you_mean(referenced, list(m.catalogs))};"
                f" defined catalogs: [{', '.join(sorted(m.catalogs))}]",
            )
    try:
        project, unusable = loaded.dbt_project_dir, ""
        found = (project / "dbt_project.yml").is_file()
    except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a long name, a symlink loop
        project, found = loaded.base_dir / m.transforms.dbt_project, False
        unusable = f": {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
    if not found:
        problem(
            ("transforms", "dbt_project"),
            f"no dbt project at {shown_path(project)}{unusable} (no dbt_project.yml);"
            " the path is relative to the manifest file",
        )
    return problems


def chain_reference_problems(path: Path) -> list[Problem]:
    """``raw_reference_problems`` of every file of the chain, read as plain YAML (no schema):
    what a manifest that the schema rejected also gets wrong. Best effort: a file that cannot be
    read ends the walk (its own problem is already reported)."""
    layers: list[tuple[dict[str, Any], SourceMap]] = []
    seen: set[Path] = set()
    current: Path | None = path
    while current is not None and len(layers) < 32:
        try:
            resolved = current.resolve()
            if resolved in seen:
                break
            seen.add(resolved)
            data, source_map = load_yaml_with_positions(current)
        except Exception:  # anything wrong with this file is the schema's or the chain's to report
            break
        if not isinstance(data, dict):
            break
        layers.append((data, source_map))
        parent = data.get("extends")
        current = resolved.parent / parent if isinstance(parent, str) and parent else None
    catalogs: set[str] = set()
    for data, _ in layers:
        if isinstance(data.get("catalogs"), dict):
            catalogs.update(str(name) for name in data["catalogs"])
    return [p for data, source_map in layers for p in raw_reference_problems(data, source_map, catalogs)]


def raw_reference_problems(
    data: Any, source_map: SourceMap, catalogs: set[str] | None = None
) -> list[Problem]:
    """The catalog references of ``check_references``, checked on data the schema did not accept
    (yet), so a misspelt name shows up together with the schema errors. ``catalogs``: the names
    the whole chain defines (default: those of ``data``). Anything not shaped as expected is left
    to the schema's own errors."""
    if not isinstance(data, dict):
        return []
    if catalogs is None:
        if not isinstance(data.get("catalogs"), dict):
            return []
        catalogs = {str(name) for name in data["catalogs"]}
    if not catalogs:
        return []
    defined = sorted(catalogs)
    problems = []

    def check(path: NodePath, referenced: Any) -> None:
        if isinstance(referenced, str) and referenced not in catalogs:
            problems.append(
                Problem(
                    source_map.position(path),
                    path,
                    f"unknown catalog '{referenced}'{did_you_mean(referenced, defined)};"
                    f" defined catalogs: [{', '.join(defined)}]",
                )
            )

    transforms = data.get("transforms")
    if isinstance(transforms, dict):
        check(("transforms", "catalog"), transforms.get("catalog"))
    metastores = data.get("metastores")
    for name, entry in metastores.items() if isinstance(metastores, dict) else ():
        config = entry.get("config") if isinstance(entry, dict) else None
        if isinstance(config, dict):
            check(("metastores", str(name), "config", "catalog"), config.get("catalog"))
    return problems
