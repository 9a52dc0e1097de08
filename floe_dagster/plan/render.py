"""A picture of the plan: `floe plan --format mermaid` and `--format dot`.

One group (Mermaid ``subgraph``, DOT ``cluster``) per compute, coloured by compute and titled
with its name, engine type and the reason(s) its models run there; when one compute's models got
there for different reasons (a rule, ``meta.floe.compute``, the default), each reason is a nested
group of its own. Edges are the dbt dependencies between the planned models. Pure text: nothing
here imports dbt or Dagster.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from floe_dagster.plan.model import Plan, TransformAssignment

# fill, stroke: light fills that keep black text readable; cycled when there are more computes
PALETTE = [
    ("#dbeafe", "#1d4ed8"),
    ("#dcfce7", "#15803d"),
    ("#fef3c7", "#b45309"),
    ("#fce7f3", "#be185d"),
    ("#ede9fe", "#6d28d9"),
    ("#ccfbf1", "#0f766e"),
    ("#fee2e2", "#b91c1c"),
    ("#e5e7eb", "#374151"),
]
FORMATS = ("mermaid", "dot")


@dataclass(frozen=True)
class Group:
    """One compute's models, split by the reason they were assigned there."""

    compute: str
    compute_type: str
    fill: str
    stroke: str
    by_reason: dict[str, list[TransformAssignment]]

    @property
    def title(self) -> str:
        reasons = list(self.by_reason)
        shown = reasons[0] if len(reasons) == 1 else f"{len(reasons)} reasons"
        return f"{self.compute} ({self.compute_type}): {shown}"


def model_edges(dbt_manifest: Mapping[str, Any], unique_ids: Iterable[str]) -> list[tuple[str, str]]:
    """(upstream, downstream) unique ids of the dbt dependencies between the given models."""
    wanted = set(unique_ids)
    nodes = dbt_manifest.get("nodes", {})
    edges = set()
    for unique_id in wanted:
        for parent in nodes.get(unique_id, {}).get("depends_on", {}).get("nodes", []) or []:
            if parent in wanted:
                edges.add((parent, unique_id))
    return sorted(edges)


def groups(plan: Plan) -> list[Group]:
    """Computes in the order the manifest approves them, then any other the plan names."""
    by_compute = plan.by_compute()
    order = [c for c in plan.computes if c in by_compute] + sorted(set(by_compute) - set(plan.computes))
    result = []
    for index, compute in enumerate(order):
        models = sorted(by_compute[compute], key=lambda t: t.unique_id)
        by_reason: dict[str, list[TransformAssignment]] = {}
        for t in sorted(models, key=lambda t: (t.reason, t.unique_id)):
            by_reason.setdefault(t.reason, []).append(t)
        fill, stroke = PALETTE[index % len(PALETTE)]
        result.append(Group(compute, models[0].compute_type, fill, stroke, by_reason))
    return result


def render_plan(plan: Plan, edges: Iterable[tuple[str, str]], fmt: str) -> str:
    if fmt == "mermaid":
        return render_mermaid(plan, edges)
    if fmt == "dot":
        return render_dot(plan, edges)
    raise ValueError(f"unknown plan format {fmt!r}; one of {', '.join(FORMATS)}")


def _ids(plan: Plan) -> dict[str, str]:
    """unique id -> a short identifier valid in both Mermaid and DOT (m0, m1, ... by unique id)."""
    return {u: f"m{i}" for i, u in enumerate(sorted(t.unique_id for t in plan.transforms))}


def _mermaid_text(text: str) -> str:
    """A Mermaid label in double quotes: quotes become the #quot; entity."""
    return '"' + text.replace('"', "#quot;") + '"'


def render_mermaid(plan: Plan, edges: Iterable[tuple[str, str]]) -> str:
    ids = _ids(plan)
    lines = [
        "---",
        f"title: {json.dumps(f'floe plan: {plan.manifest_name} ({plan.environment})')}",
        "---",
        "flowchart LR",
    ]
    styles = []
    for gi, group in enumerate(groups(plan)):
        gid = f"c{gi}"
        lines.append(f"  subgraph {gid}[{_mermaid_text(group.title)}]")
        nested = len(group.by_reason) > 1
        for ri, (reason, models) in enumerate(group.by_reason.items()):
            indent = "    "
            if nested:
                lines.append(f"    subgraph {gid}r{ri}[{_mermaid_text(reason)}]")
                indent = "      "
                styles.append(
                    f"  style {gid}r{ri} fill:{group.fill},stroke:{group.stroke},stroke-dasharray:4"
                )
            for t in models:
                lines.append(f"{indent}{ids[t.unique_id]}[{_mermaid_text(t.name)}]")
            if nested:
                lines.append("    end")
        lines.append("  end")
        styles.append(f"  style {gid} fill:{group.fill},stroke:{group.stroke},stroke-width:2px")
        styles.append(f"  classDef {gid}m fill:#ffffff,stroke:{group.stroke},stroke-width:2px")
        members = ",".join(ids[t.unique_id] for models in group.by_reason.values() for t in models)
        styles.append(f"  class {members} {gid}m")
    lines += [f"  {ids[a]} --> {ids[b]}" for a, b in edges if a in ids and b in ids]
    return "\n".join(lines + styles)


_DOT_ESCAPE = re.compile(r'(["\\])')


def _dot_text(text: str) -> str:
    return '"' + _DOT_ESCAPE.sub(r"\\\1", text).replace("\n", "\\n") + '"'


def render_dot(plan: Plan, edges: Iterable[tuple[str, str]]) -> str:
    ids = _ids(plan)
    lines = [
        "digraph floe_plan {",
        f"  label={_dot_text(f'floe plan: {plan.manifest_name} ({plan.environment})')};",
        "  labelloc=t;",
        "  rankdir=LR;",
        "  compound=true;",
        '  node [shape=box, style="rounded,filled", fillcolor="#ffffff", fontname="Helvetica"];',
        '  graph [fontname="Helvetica"];',
    ]
    for gi, group in enumerate(groups(plan)):
        lines += [
            f"  subgraph cluster_c{gi} {{",
            f"    label={_dot_text(group.title)};",
            f'    style="rounded,filled"; fillcolor="{group.fill}"; color="{group.stroke}"; penwidth=2;',
        ]
        nested = len(group.by_reason) > 1
        for ri, (reason, models) in enumerate(group.by_reason.items()):
            indent = "    "
            if nested:
                lines += [
                    f"    subgraph cluster_c{gi}r{ri} {{",
                    f"      label={_dot_text(reason)}; style=dashed; color={_dot_text(group.stroke)};",
                ]
                indent = "      "
            for t in models:
                lines.append(
                    f'{indent}{ids[t.unique_id]} [label={_dot_text(t.name)}, color="{group.stroke}",'
                    f" tooltip={_dot_text(f'{t.unique_id}: {t.reason}')}];"
                )
            if nested:
                lines.append("    }")
        lines.append("  }")
    lines += [f"  {ids[a]} -> {ids[b]};" for a, b in edges if a in ids and b in ids]
    lines.append("}")
    return "\n".join(lines)
