"""A pydantic validation error -> a positioned manifest Problem with a fix hint."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from floe_dagster.manifest.errors import Problem, dotted
from floe_dagster.manifest.hints import did_you_mean, is_wrong_type, known_keys, wrong_type_hint
from floe_dagster.manifest.positions import NodePath, SourceMap
from floe_dagster.plugins.redaction import redact_uri, shown_value

__all__ = ["problem_from_pydantic"]


def problem_from_pydantic(
    error: Any, prefix: NodePath, source_map: SourceMap, model: type[BaseModel] | None = None
) -> Problem:
    """One pydantic error as a problem at its position; a value of the wrong type also says
    what the field expects and shows an example (from ``model``'s JSON Schema, see hints.py)."""
    own: NodePath = tuple(p for p in error["loc"] if isinstance(p, str | int))
    loc: NodePath = (*prefix, *own)
    kind = error["type"]
    if kind == "extra_forbidden":
        parent = dotted(loc[:-1]) if len(loc) > 1 else "the top level"
        known = known_keys(model, own[:-1]) if model is not None else []
        message = (
            f"unknown key '{loc[-1]}' in {parent}{did_you_mean(str(loc[-1]), known)};"
            " remove it or check its spelling"
        )
        return Problem(source_map.position(loc, prefer_key=True), loc, message)
    if kind == "missing":
        message = f"required key '{loc[-1]}' is missing; add it (here or in a parent manifest)"
        return Problem(source_map.position(loc[:-1], prefer_key=True), loc, message)
    given = error.get("input")
    hidden = bool(model is not None and model.model_config.get("hide_input_in_errors"))
    # never a credential: a URI without its user info, a secret field's value only described
    key = next((part for part in reversed(loc) if isinstance(part, str)), None)
    shown = f" (got {shown_value(given, key, hidden)})" if isinstance(given, str | int | float | bool) else ""
    if kind == "literal_error" and loc[-1:] == ("apiVersion",):
        message = f"unsupported apiVersion{shown}; this floe-dagster reads 'floe.dev/v1'"
    elif kind == "model_type":  # pydantic names the model class, which means nothing to a user
        message = f"Input should be a mapping{shown}"
    else:  # a validator's own message may quote the value: no URI user info either way
        message = f"{redact_uri(error['msg'])}{shown}"
    if model is not None and is_wrong_type(kind) and (hint := wrong_type_hint(model, own)):
        message += f"; {hint}"
    return Problem(source_map.position(loc), loc, message)
