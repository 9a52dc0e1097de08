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
import gc
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
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
    """The unique ids each assignment rule selects, as ``dbt build --select/--exclude`` would."""
    rules = loaded.manifest.transforms.assignments
    if not rules:
        return []
    # dbt resolves `path:` selectors against the working directory, which is the project's own
    # when dbt runs; evaluate them from there too.
    with contextlib.chdir(loaded.dbt_project_dir), gc_paused():
        select = rule_selector(dbt_manifest)
        matches, problems = [], []
        for index, rule in enumerate(rules):
            try:
                matches.append(set(select(rule.select, rule.exclude or "")))
            except Exception as exc:  # dbt's InvalidSelectorError and kin: a bad rule, not a crash
                path = ("transforms", "assignments", index, "select")
                detail = " ".join(str(exc).split())
                problems.append(
                    Problem(
                        loaded.source_map.position(path),
                        path,
                        f"rule {index + 1}: dbt cannot use selector {rule.select!r}"
                        f"{f' / exclude {rule.exclude!r}' if rule.exclude else ''}: {detail}",
                    )
                )
        if problems:
            raise ManifestError(problems)
        return matches


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while dbt selects: the selection allocates millions of
    short-lived objects (freed by reference counting), and every collection they trigger
    also walks the whole parsed manifest.json. Collection resumes afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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
        root_handlers = list(logging.getLogger().handlers)
        try:
            import dbt.graph.cli as graph_cli
            import dbt.graph.selector as graph_selector
            from dbt.contracts.graph.manifest import Manifest
            from dbt.contracts.graph.nodes import SavedQuery, SemanticModel
            from dbt.flags import get_flag_dict, set_flags
            from dbt.graph.selector_spec import IndirectSelection
            from networkx import DiGraph
        finally:
            # importing dbt adds a handler to the root logger; dagster-dbt removes it too
            logging.getLogger().handlers = root_handlers

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
            from dbt.contracts.graph.nodes import UnitTestDefinition

            extra.update(parsed("unit_tests", UnitTestDefinition))
        with contextlib.suppress(ImportError):  # dbt >= 1.11
            from dbt.contracts.graph.nodes import FunctionNode

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

    class CriterionCachingNodeSelector(node_selector_class):
        def __init__(self, graph: Any, manifest: Any) -> None:
            super().__init__(graph, manifest)
            self.by_criterion: dict[tuple[str, str, str | None], tuple[frozenset[str], frozenset[str]]] = {}

        def get_nodes_from_criteria(self, spec: Any) -> tuple[set[str], set[str]]:
            from dbt_common.events.contextvars import get_project_root

            key = (repr(spec), os.getcwd(), get_project_root())
            if key not in self.by_criterion:
                direct, indirect = super().get_nodes_from_criteria(spec)
                self.by_criterion[key] = (frozenset(direct), frozenset(indirect))
            direct, indirect = self.by_criterion[key]
            return set(direct), set(indirect)

    return CriterionCachingNodeSelector


def compile_plan(
    loaded: LoadedManifest, dbt_manifest: Mapping[str, Any], environment: str | None = None
) -> Plan:
    m = loaded.manifest
    approved = m.computes.approved
    compute_types = {name: loaded.target(name).type for name in approved}
    resources = {name: compute_resources(loaded, name) for name in approved}
    rule_matches = select_rule_matches(loaded, dbt_manifest)
    problems = unapproved_rule_problems(loaded, dbt_manifest, rule_matches)
    first_rule = first_matching_rule(rule_matches)
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


def first_matching_rule(rule_matches: list[set[str]]) -> dict[str, int]:
    """unique id -> index of the first rule that selects it (one pass over the matches)."""
    first: dict[str, int] = {}
    for index in reversed(range(len(rule_matches))):
        first.update(dict.fromkeys(rule_matches[index], index))
    return first


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
