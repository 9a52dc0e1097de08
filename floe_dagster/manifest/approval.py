"""Compute approval of assignment rules: a rule may only assign a compute its level approves.

The models a rule selects come from the plan layer (it evaluates dbt selectors); here they are
only named in the problem when given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from floe_dagster.manifest.errors import Problem

if TYPE_CHECKING:
    from floe_dagster.manifest.loader import LoadedManifest

__all__ = ["abbreviated", "not_approved", "unapproved_rule_problems"]


def not_approved(loaded: LoadedManifest) -> str:
    m = loaded.manifest
    return f"which is not approved at level {m.metadata.level}; allowed: [{', '.join(m.computes.approved)}]"


def unapproved_rule_problems(loaded: LoadedManifest, models: Mapping[int, list[str]] | None) -> list[Problem]:
    """One problem per rule naming an unapproved compute, with the models it selects when known
    (``models``: rule index -> model names; None when no parsed dbt project is at hand)."""
    problems = []
    for index, rule in enumerate(loaded.manifest.transforms.assignments):
        if rule.compute in loaded.manifest.computes.approved:
            continue
        selected = None if models is None else models.get(index)
        what = f"compute '{rule.compute}'"
        if selected is not None:
            what = f"model(s) [{abbreviated(selected) or 'none'}] to {what}"
        path = ("transforms", "assignments", index, "compute")
        problems.append(
            Problem(
                loaded.source_map.position(path),
                path,
                f"rule {index + 1} ({rule.select!r}) assigns {what}, {not_approved(loaded)}",
            )
        )
    return problems


def abbreviated(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
