"""`floe plan --format mermaid|dot`: the dbt models grouped and coloured by compute, the reason on
each group, dbt's edges between the models. DOT is parsed with pydot (a real DOT parser);
Mermaid gets structural checks (no Mermaid parser installs without a browser)."""

from __future__ import annotations

import re
from pathlib import Path

import pydot
import pytest

from floe_dagster.cli import main
from floe_dagster.plan.model import Plan, TransformAssignment
from floe_dagster.plan.render import model_edges, render_dot, render_mermaid

DEMO_GROUPS = {
    "duckdb": ({"stg_customers", "stg_orders", "stg_payments"}, "default"),
    "duckdb_analytics": ({"customers", "orders"}, "rule 1 (tag:marts)"),
}
DEMO_EDGES = {
    ("stg_customers", "customers"),
    ("orders", "customers"),
    ("stg_orders", "orders"),
    ("stg_payments", "orders"),
}


def run_plan(project: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["plan", str(project / "manifests" / "manifest.yaml"), "--format", fmt])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def dot_graph(text: str) -> pydot.Dot:
    graphs = pydot.graph_from_dot_data(text)
    assert graphs is not None and len(graphs) == 1, text
    return graphs[0]


def unquote(value: str | None) -> str:
    assert value is not None
    return value[1:-1].replace('\\"', '"') if value.startswith('"') else value


def dot_clusters(graph: pydot.Dot) -> dict[str, tuple[pydot.Subgraph, set[str]]]:
    """compute title -> (cluster, model labels inside it, nested clusters included)."""

    def labels(sub: pydot.Subgraph) -> set[str]:
        found = {unquote(n.get("label")) for n in sub.get_nodes() if n.get("label")}
        for inner in sub.get_subgraphs():
            found |= labels(inner)
        return found

    return {unquote(s.get("label")): (s, labels(s)) for s in graph.get_subgraphs()}


def test_dot_groups_the_demo_models_by_compute_with_reason_and_edges(
    parsed_demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = dot_graph(run_plan(parsed_demo, "dot", capsys))
    clusters = dot_clusters(graph)
    assert set(clusters) == {f"{compute} (duckdb): {reason}" for compute, (_, reason) in DEMO_GROUPS.items()}
    fills = set()
    for compute, (models, reason) in DEMO_GROUPS.items():
        cluster, inside = clusters[f"{compute} (duckdb): {reason}"]
        assert cluster.get_name().startswith("cluster_")  # Graphviz draws only cluster_* as boxes
        assert inside == models
        fills.add(cluster.get("fillcolor"))
    assert len(fills) == 2  # one colour per compute

    label_of = {}
    for cluster, _ in clusters.values():
        label_of |= {n.get_name(): unquote(n.get("label")) for n in cluster.get_nodes()}
    edges = {(label_of[e.get_source()], label_of[e.get_destination()]) for e in graph.get_edges()}
    assert edges == DEMO_EDGES


def mermaid_structure(text: str) -> tuple[dict[str, str], dict[str, set[str]], set[tuple[str, str]]]:
    """(group id -> title, group id -> node labels, edges as label pairs), checking the syntax we
    emit: front matter, `flowchart`, balanced subgraph/end, declared ids only."""
    lines = text.splitlines()
    assert lines[0] == "---" and lines[2] == "---" and lines[1].startswith("title: ")
    assert lines[3] == "flowchart LR"
    titles: dict[str, str] = {}
    members: dict[str, set[str]] = {}
    labels: dict[str, str] = {}
    stack: list[str] = []
    edges = set()
    for line in lines[4:]:
        stripped = line.strip()
        if m := re.fullmatch(r'subgraph (\w+)\["([^"]*)"\]', stripped):
            stack.append(m.group(1))
            titles[m.group(1)] = m.group(2)
            members[m.group(1)] = set()
        elif stripped == "end":
            assert stack, "an `end` without its subgraph"
            stack.pop()
        elif m := re.fullmatch(r'(\w+)\["([^"]*)"\]', stripped):
            assert stack, f"node {stripped} outside every compute group"
            labels[m.group(1)] = m.group(2)
            for group in stack:
                members[group].add(m.group(2))
        elif m := re.fullmatch(r"(\w+) --> (\w+)", stripped):
            edges.add((labels[m.group(1)], labels[m.group(2)]))  # KeyError: undeclared node
        elif m := re.fullmatch(r"(style|classDef|class) (\S+) (\S+)", stripped):
            if m.group(1) == "style":
                assert m.group(2) in titles
            if m.group(1) == "class":
                assert set(m.group(2).split(",")) <= set(labels)
        else:
            pytest.fail(f"unexpected Mermaid line: {line!r}")
    assert not stack, f"subgraph(s) {stack} not closed"
    return titles, members, edges


def test_mermaid_groups_the_demo_models_by_compute_with_reason_and_edges(
    parsed_demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = run_plan(parsed_demo, "mermaid", capsys)
    titles, members, edges = mermaid_structure(text)
    by_title = {titles[g]: members[g] for g in titles}
    assert by_title == {
        f"{compute} (duckdb): {reason}": models for compute, (models, reason) in DEMO_GROUPS.items()
    }
    assert edges == DEMO_EDGES
    fills = set(re.findall(r"style c\d+ fill:(#[0-9a-f]{6})", text))
    assert len(fills) == 2


def test_one_compute_reached_for_two_reasons_gets_a_nested_group_per_reason() -> None:
    def t(name: str, compute: str, reason: str) -> TransformAssignment:
        return TransformAssignment(f"model.p.{name}", name, compute, "duckdb", reason)

    plan = Plan(
        manifest_name='odd "name"',
        manifest_path="m.yaml",
        environment="dev",
        default_compute="a",
        computes={"a": "duckdb", "b": "duckdb"},
        catalogs={},
        metastores={},
        transforms=(
            t("x", "a", "default"),
            t("y", "a", "meta (floe.compute)"),
            t("z", "b", 'rule 1 (tag:"marts")'),
        ),
    )
    edges = model_edges(
        {
            "nodes": {
                "model.p.y": {"depends_on": {"nodes": ["model.p.x", "source.p.raw.t"]}},
                "model.p.z": {"depends_on": {"nodes": ["model.p.y"]}},
            }
        },
        [t.unique_id for t in plan.transforms],
    )
    assert edges == [("model.p.x", "model.p.y"), ("model.p.y", "model.p.z")]  # the source is no model

    graph = dot_graph(render_dot(plan, edges))
    clusters = dot_clusters(graph)
    assert set(clusters) == {"a (duckdb): 2 reasons", 'b (duckdb): rule 1 (tag:"marts")'}
    outer, _ = clusters["a (duckdb): 2 reasons"]
    nested = {
        unquote(s.get("label")): {unquote(n.get("label")) for n in s.get_nodes()}
        for s in outer.get_subgraphs()
    }
    assert nested == {"default": {"x"}, "meta (floe.compute)": {"y"}}
    assert len(graph.get_edges()) == 2

    titles, members, mermaid_edges = mermaid_structure(render_mermaid(plan, edges))
    assert sorted(titles.values()) == sorted(
        [
            "a (duckdb): 2 reasons",
            "default",
            "meta (floe.compute)",
            "b (duckdb): rule 1 (tag:#quot;marts#quot;)",
        ]
    )
    assert mermaid_edges == {("x", "y"), ("y", "z")}


def test_diff_with_a_picture_format_is_refused_in_one_line(
    parsed_demo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = str(parsed_demo / "manifests" / "manifest.yaml")
    assert main(["plan", manifest, "--format", "dot", "--diff", manifest]) == 1
    assert capsys.readouterr().err.strip() == "floe: --diff prints a table or json, not dot"
