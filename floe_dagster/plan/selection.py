"""dbt selectors evaluated by dbt's own selection machinery (as dagster-dbt does), so ``tag:``,
``path:``, ``config.materialized:``, model names and ``+`` graph operators mean exactly what they
mean to ``dbt build --select``; the dbt objects are built once and shared by every rule."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from floe_dagster.core.compat import dbt_project_root, dbt_selector_internals
from floe_dagster.core.memory import gc_paused
from floe_dagster.manifest.errors import ManifestError, Problem
from floe_dagster.manifest.loader import (
    LoadedManifest,
)

# 2: manifest_path relative to the plan file, and the inputs' fingerprints (staleness check)
# 3: the manifest's merged document, so a compiled plan alone builds the definitions


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


def models_by_rule(
    dbt_manifest: Mapping[str, Any], selected: Mapping[int, set[str] | Exception]
) -> dict[int, list[str]]:
    nodes = dbt_manifest.get("nodes", {})
    return {
        index: sorted(nodes[u]["name"] for u in found if nodes.get(u, {}).get("resource_type") == "model")
        for index, found in selected.items()
        if not isinstance(found, Exception)
    }
