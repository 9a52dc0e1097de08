"""The plan: one compute for every dbt transform, and why. Pure data, no Dagster.

Precedence (documented in the README): the model's own ``meta: {floe: {compute: ...}}``,
then the first assignment rule whose dbt selector matches it, then ``computes.default``.
Selectors are evaluated by dbt's own selection machinery (as dagster-dbt does), so
``tag:``, ``path:``, ``config.materialized:``, model names and ``+`` graph operators mean
exactly what they mean to ``dbt build --select``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from floe_dagster.core.compat import dbt_project_root, dbt_selector_internals
from floe_dagster.core.memory import gc_paused
from floe_dagster.manifest import loader as manifest_loader
from floe_dagster.manifest.approval import abbreviated, not_approved, unapproved_rule_problems
from floe_dagster.manifest.errors import ManifestError, Problem
from floe_dagster.manifest.loader import (
    DEFAULT_ENVIRONMENT,
    DEFAULT_MANIFEST,
    ENVIRONMENT_ENV,
    LoadedManifest,
    manifest_from_document,
)
from floe_dagster.manifest.positions import NodePath, Position, display_path, load_yaml_with_positions
from floe_dagster.plan.builders import build_compute
from floe_dagster.plan.dbt_project import dbt_target_dir, newest_source_mtime, profiles_dir

# 2: manifest_path relative to the plan file, and the inputs' fingerprints (staleness check)
# 3: the manifest's merged document, so a compiled plan alone builds the definitions
PLAN_FORMAT_VERSION = 3


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
    # what the plan was compiled from (see plan_inputs); a compiled plan is checked against them
    inputs: dict[str, str] = field(default_factory=dict)
    # the manifest's merged extends chain (``${env:NAME}`` unresolved): every catalog, compute and
    # metastore with its config, source key mappings, freshness windows, automation, ingest
    manifest_document: dict[str, Any] = field(default_factory=dict, repr=False)
    # the file this plan was read from (``read_plan``); not part of the plan itself
    source: str | None = field(default=None, compare=False, repr=False)

    def loaded_manifest(self) -> LoadedManifest:
        """The manifest this plan was compiled from, validated again from the plan alone (no YAML
        file is read): what the Dagster stage builds its definitions from."""
        cached: LoadedManifest | None = self.__dict__.get("_loaded")
        if cached is None:
            cached = manifest_from_document(
                self.manifest_document,
                self.manifest_path,
                self.environment,
                origin=Path(self.source) if self.source else None,
            )
            object.__setattr__(self, "_loaded", cached)
        return cached

    def by_compute(self) -> dict[str, list[TransformAssignment]]:
        groups: dict[str, list[TransformAssignment]] = {}
        for t in self.transforms:
            groups.setdefault(t.compute, []).append(t)
        return groups

    @classmethod
    def from_json(cls, text: str, relative_to: Path | None = None) -> Plan:
        """The plan of ``to_json``; a relative ``manifest_path`` is resolved against ``relative_to``.

        Raises ValueError (JSONDecodeError included) for text that is not such a plan."""
        payload = json.loads(text)
        if not isinstance(payload, dict):
            raise ValueError("not a floe plan (a JSON object written by `floe compile`)")
        version = payload.pop("plan_format_version", None)
        if version != PLAN_FORMAT_VERSION:
            raise ValueError(
                f"plan format version {version!r}; this floe-dagster reads {PLAN_FORMAT_VERSION}"
            )
        try:
            payload["transforms"] = tuple(TransformAssignment(**t) for t in payload["transforms"])
            plan = cls(**payload)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a floe plan: {exc}") from None
        if relative_to is not None and not Path(plan.manifest_path).is_absolute():
            plan = dataclasses.replace(plan, manifest_path=str((relative_to / plan.manifest_path).resolve()))
        return plan

    def to_json(self, relative_to: Path | None = None) -> str:
        """Stable JSON (sorted keys, transforms by unique id); with ``relative_to`` the manifest path
        is written relative to that folder, so the artifact moves with its project."""
        payload = {"plan_format_version": PLAN_FORMAT_VERSION, **asdict(self)}
        del payload["source"]
        if relative_to is not None:
            payload["manifest_path"] = Path(os.path.relpath(self.manifest_path, relative_to)).as_posix()
        payload["transforms"] = sorted(payload["transforms"], key=lambda t: t["unique_id"])
        # default=str: a YAML timestamp or date in the document is written as its text
        return json.dumps(payload, indent=2, sort_keys=True, default=str)


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
    """The unique ids each assignment rule selects, as ``dbt build --select/--exclude`` would."""
    rules = loaded.manifest.transforms.assignments
    selected = evaluate_rules(loaded, dbt_manifest, range(len(rules)))
    problems = [
        selector_problem(loaded, index, found)
        for index, found in selected.items()
        if isinstance(found, Exception)
    ]
    if problems:
        raise ManifestError(problems)
    return [found for found in selected.values() if not isinstance(found, Exception)]


def evaluate_rules(
    loaded: LoadedManifest, dbt_manifest: Mapping[str, Any], indices: Iterable[int]
) -> dict[int, set[str] | Exception]:
    """Rule index -> the unique ids it selects, or the error dbt raised for its selector."""
    rules = loaded.manifest.transforms.assignments
    indices = list(indices)
    if not indices:
        return {}
    # dbt resolves `path:` selectors against the working directory, which is the project's own
    # when dbt runs; evaluate them from there too.
    with contextlib.chdir(loaded.dbt_project_dir), gc_paused():
        select = rule_selector(dbt_manifest)
        selected: dict[int, set[str] | Exception] = {}
        for index in indices:
            rule = rules[index]
            try:
                selected[index] = set(select(rule.select, rule.exclude or ""))
            except Exception as exc:  # dbt's InvalidSelectorError and kin: a bad rule, not a crash
                selected[index] = exc
        return selected


def selector_problem(loaded: LoadedManifest, index: int, exc: Exception) -> Problem:
    rule = loaded.manifest.transforms.assignments[index]
    path = ("transforms", "assignments", index, "select")
    detail = " ".join(str(exc).split())
    return Problem(
        loaded.source_map.position(path),
        path,
        f"rule {index + 1}: dbt cannot use selector {rule.select!r}"
        f"{f' / exclude {rule.exclude!r}' if rule.exclude else ''}: {detail}",
    )


def rule_selector(dbt_manifest: Mapping[str, Any]) -> Callable[[str, str], AbstractSet[str]]:
    """``select(select, exclude) -> unique ids``, evaluated by dbt's own selector engine.

    Equivalent to dagster-dbt's ``select_unique_ids`` (which it mirrors), but the dbt objects
    that call builds every time (the Manifest of node shims, the networkx graph and the
    NodeSelector with its graph-member subgraph) are built once here and shared by every
    rule: with thousands of models, building them was most of the cost of each selection.
    """
    try:
        return DbtRuleSelector(dbt_manifest).select
    except ImportError:  # no dbt-core (e.g. dbt Fusion): let dagster-dbt evaluate each rule
        from dagster_dbt.utils import select_unique_ids

        def select(select: str, exclude: str) -> AbstractSet[str]:
            return select_unique_ids(
                select=select, exclude=exclude, selector="", project=None, manifest_json=dbt_manifest
            )

        return select


class _DictShim(dict[str, Any]):
    """A manifest.json node read with dbt's attribute access, like dagster-dbt's ``_DictShim``:
    a missing key reads as None and a dict value reads as a shim.

    Unlike dagster-dbt's, each attribute is looked up once: the answer (a nested dict wrapped
    once, not copied again on every access) is kept in the instance ``__dict__``, so dbt's
    selector methods, which read ``node.fqn``, ``node.tags``, ``node.config``... once per node
    per criterion, get it at plain attribute speed afterwards. ``__getattr__`` only runs for
    names the class does not have, so a kept attribute never hides a dict method. Nothing
    mutates a node during selection, so a kept value cannot go stale.
    """

    def __getattr__(self, item: str) -> Any:
        value = self.get(item)
        if isinstance(value, dict) and not isinstance(value, _DictShim):
            value = self[item] = _DictShim(value)
        if not item.startswith("__"):  # special names stay with the class (copy, pickle probe them)
            self.__dict__[item] = value
        return value


# Manifest collections whose nodes are in dbt's selection graph (dagster-dbt's
# _GRAPH_MEMBER_COLLECTIONS, mirroring dbt's Manifest.build_parent_and_child_maps).
GRAPH_MEMBER_COLLECTIONS = (
    "nodes",
    "sources",
    "exposures",
    "functions",
    "metrics",
    "semantic_models",
    "saved_queries",
    "unit_tests",
)


class DbtRuleSelector:
    """dbt's NodeSelector over one manifest.json, built the way dagster-dbt's
    ``_select_unique_ids_from_manifest`` builds it, once for any number of selections."""

    def __init__(self, dbt_manifest: Mapping[str, Any]) -> None:
        dbt = dbt_selector_internals()  # dbt-core's private selection API, version-guarded: core/compat.py
        graph_cli, graph_selector, Manifest = dbt.graph_cli, dbt.graph_selector, dbt.Manifest
        SavedQuery, SemanticModel = dbt.SavedQuery, dbt.SemanticModel
        get_flag_dict, set_flags, IndirectSelection = dbt.get_flag_dict, dbt.set_flags, dbt.IndirectSelection
        from networkx import DiGraph

        def shims(collection: str) -> dict[str, Any]:
            return {uid: _DictShim(info) for uid, info in (dbt_manifest.get(collection) or {}).items()}

        def parsed(collection: str, cls: Any) -> dict[str, Any]:
            found = dbt_manifest.get(collection)
            return {collection: {uid: cls.from_dict(info) for uid, info in found.items()}} if found else {}

        extra: dict[str, Any] = {
            **parsed("semantic_models", SemanticModel),
            **parsed("saved_queries", SavedQuery),
        }
        if dbt_manifest.get("selectors"):
            extra["selectors"] = shims("selectors")
        with contextlib.suppress(ImportError):  # dbt >= 1.8
            UnitTestDefinition = dbt.UnitTestDefinition

            extra.update(parsed("unit_tests", UnitTestDefinition))
        with contextlib.suppress(ImportError):  # dbt >= 1.11
            FunctionNode = dbt.FunctionNode

            extra.update(parsed("functions", FunctionNode))
        manifest = Manifest(
            nodes=shims("nodes"),
            sources=shims("sources"),
            metrics=shims("metrics"),
            exposures=shims("exposures"),
            **extra,
        )
        digraph = DiGraph(incoming_graph_data=dbt_manifest["child_map"])
        digraph.add_nodes_from(
            uid for collection in GRAPH_MEMBER_COLLECTIONS for uid in dbt_manifest.get(collection, {})
        )
        self._graph_cli = graph_cli
        self._node_selector = _criterion_caching(graph_selector.NodeSelector)(
            graph_selector.Graph(digraph), manifest
        )
        self._get_flag_dict, self._set_flags = get_flag_dict, set_flags
        self._eager = IndirectSelection.Eager

    def select(self, select: str, exclude: str = "") -> AbstractSet[str]:
        """The unique ids dbt selects for ``--select select --exclude exclude``."""
        graph_cli = self._graph_cli
        # the global dbt flags dagster-dbt sets before each selection
        flags = argparse.Namespace()
        for key, value in self._get_flag_dict().items():
            setattr(flags, key.upper(), value)
        flags.INDIRECT_SELECTION = self._eager
        flags.WARN_ERROR = True
        self._set_flags(flags)
        spec: Any = graph_cli.parse_union([select], True)
        if exclude:
            spec = graph_cli.SelectionDifference(components=[spec, graph_cli.parse_union([exclude], False)])
        selected: AbstractSet[str]
        selected, _ = self._node_selector.select_nodes(spec)
        return selected


def _criterion_caching(node_selector_class: Any) -> Any:
    """dbt's NodeSelector, remembering what each single selection criterion selects.

    Rules often repeat a criterion (``tag:heavy`` in one rule, ``tag:heavy,path:...`` in the
    next, ``exclude: tag:heavy`` in a third); dbt evaluates every occurrence with a pass over
    all nodes. A criterion's result depends only on the criterion itself (all of its fields
    are in its repr), the manifest and graph (fixed for one selector) and, for ``path:``,
    the directory it is resolved against, so it is computed once and copied on reuse.
    """

    class CriterionCachingNodeSelector(node_selector_class):  # type: ignore[misc]  # dbt's, untyped
        def __init__(self, graph: Any, manifest: Any) -> None:
            super().__init__(graph, manifest)
            self.by_criterion: dict[tuple[str, str, str | None], tuple[frozenset[str], frozenset[str]]] = {}

        def get_nodes_from_criteria(self, spec: Any) -> tuple[set[str], set[str]]:
            key = (repr(spec), os.getcwd(), dbt_project_root())
            if key not in self.by_criterion:
                direct, indirect = super().get_nodes_from_criteria(spec)
                self.by_criterion[key] = (frozenset(direct), frozenset(indirect))
            direct, indirect = self.by_criterion[key]
            return set(direct), set(indirect)

    return CriterionCachingNodeSelector


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


def models_by_rule(
    dbt_manifest: Mapping[str, Any], selected: Mapping[int, set[str] | Exception]
) -> dict[int, list[str]]:
    nodes = dbt_manifest.get("nodes", {})
    return {
        index: sorted(nodes[u]["name"] for u in found if nodes.get(u, {}).get("resource_type") == "model")
        for index, found in selected.items()
        if not isinstance(found, Exception)
    }


def rule_models(loaded: LoadedManifest, indices: list[int]) -> dict[int, list[str]] | None:
    """Rule index -> the models it selects, when the dbt project's manifest.json is already
    current (nothing is parsed); None otherwise. What ``load_manifest`` names in the problem of a
    rule that assigns an unapproved compute."""
    dbt_manifest = current_dbt_manifest(loaded)
    if dbt_manifest is None:
        return None
    return models_by_rule(dbt_manifest, evaluate_rules(loaded, dbt_manifest, indices))


def load_manifest(
    path: str | os.PathLike[str] = DEFAULT_MANIFEST,
    environment: str | None = None,
    check_assignments: bool = True,
) -> LoadedManifest:
    """``manifest.loader.load_manifest``, with the models an unapproved assignment rule selects
    named in its problem when the dbt project's manifest.json is current (no dbt parse): what
    ``floe validate`` and ``floe_dagster.load_manifest`` report."""
    return manifest_loader.load_manifest(path, environment, check_assignments, rule_models=rule_models)


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


# --- the compiled plan artifact (`floe compile`) -----------------------------------------------


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
