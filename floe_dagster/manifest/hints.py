"""How to fix a value of the wrong type: the shape a field expects and an example of it.

Both are read from the JSON Schema of the pydantic model that rejected the value (the manifest
schema, or a plugin's config model), so a field's ``examples`` (else its default) in the model
is what the user is shown, and the hint can never disagree with ``floe schema``.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

JsonSchema = dict[str, Any]

# pydantic error types meaning "a value of the wrong type" (not a wrong value of the right type)
_WRONG_TYPE = re.compile(r".*_(type|parsing)$|int_from_float$")
_GENERIC_EXAMPLES = {"integer": 1, "number": 1.5, "boolean": True}
_PLAIN_SCALAR = re.compile(r"[A-Za-z0-9_./-]+")


def is_wrong_type(error_type: str) -> bool:
    return bool(_WRONG_TYPE.fullmatch(error_type))


def wrong_type_hint(model: type[BaseModel], loc: Sequence[str | int]) -> str:
    """``expected a list of strings, e.g. approved: [duckdb, spark]`` for the field at ``loc``;
    empty when the schema does not describe the field."""
    root = _schema_of(model)
    node = field_schema(root, loc)
    if node is None:
        return ""
    hint = f"expected {describe(root, node)}"
    key = next((part for part in reversed(loc) if isinstance(part, str)), None)
    example = _example(root, loc, node, key)
    if example is not None:
        shown = flow(example)
        hint += (
            f", e.g. {key}: {shown}"
            if key is not None and not isinstance(loc[-1], int)
            else f", e.g. {shown}"
        )
    return hint


def did_you_mean(word: str, options: Sequence[str]) -> str:
    """`` (did you mean 'lakehouse'?)`` for the closest of ``options``, else empty."""
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def known_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys the mapping at ``loc`` of ``model`` accepts (empty when the schema says nothing)."""
    root = _schema_of(model)
    node = field_schema(root, loc)
    return list(node.get("properties", {})) if node is not None else []


@functools.cache
def _schema_of(model: type[BaseModel]) -> JsonSchema:
    return model.model_json_schema(by_alias=True)


def field_schema(root: JsonSchema, loc: Sequence[str | int]) -> JsonSchema | None:
    node: JsonSchema | None = resolve(root, root)
    for part in loc:
        if node is None:
            return None
        if isinstance(part, int):
            node = node.get("items")
        elif part in node.get("properties", {}):
            node = node["properties"][part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
        node = resolve(root, node) if node is not None else None
    return node


def resolve(root: JsonSchema, node: JsonSchema) -> JsonSchema:
    """Follow ``$ref`` and drop the ``null`` of an optional field; the field's own keys
    (``examples``, ``default``, ``description``) win over the referenced definition's."""
    while True:
        own = {k: v for k, v in node.items() if k not in ("$ref", "anyOf")}
        if "$ref" in node:
            node = {**root["$defs"][node["$ref"].rsplit("/", 1)[-1]], **own}
        elif "anyOf" in node and len(options := [o for o in node["anyOf"] if o.get("type") != "null"]) == 1:
            node = {**options[0], **own}
        else:
            return node


def describe(root: JsonSchema, node: JsonSchema) -> str:
    if "const" in node:
        return f"'{node['const']}'"
    if "enum" in node:
        return "one of " + ", ".join(str(v) for v in node["enum"])
    kind = node.get("type")
    if kind == "array":
        items = resolve(root, node.get("items") or {})
        item_kind = items.get("type")
        return f"a list of {_plural(item_kind)}" if item_kind else "a list"
    if kind == "object":
        keys = list(node.get("properties", {}))
        return f"a mapping with the keys {', '.join(keys)}" if keys else "a mapping of names to values"
    if kind == "integer":
        low, high = node.get("minimum"), node.get("maximum")
        bounds = f" from {low} to {high}" if low is not None and high is not None else ""
        bounds = bounds or (f" of at least {low}" if low is not None else "")
        return f"a whole number{bounds}"
    return {"number": "a number", "string": "a string", "boolean": "true or false"}.get(
        str(kind), "a value of another type"
    )


def _plural(kind: str) -> str:
    return {"object": "mappings", "integer": "whole numbers", "boolean": "booleans"}.get(kind, f"{kind}s")


def _example(root: JsonSchema, loc: Sequence[str | int], node: JsonSchema, key: str | None = None) -> Any:
    if loc and isinstance(loc[-1], int):  # an item: take it from the list's example
        parent = field_schema(root, loc[:-1])
        example = _example(root, loc[:-1], parent, key) if parent is not None else None
        if isinstance(example, list) and example:
            return example[0]
    if node.get("examples"):
        return node["examples"][0]
    if node.get("default") not in (None, [], {}):
        return node["default"]
    if "const" in node:
        return node["const"]
    if node.get("enum"):
        return node["enum"][0]
    kind = node.get("type")
    if kind == "integer" and node.get("minimum") is not None:
        return node["minimum"]
    if kind == "array":
        item = _example(root, (), resolve(root, node.get("items") or {}), key)
        return [item] if item is not None else None
    if kind == "object":
        required = node.get("required") or []
        props = node.get("properties", {})
        example = {k: _example(root, (), resolve(root, props[k]), k) for k in required if k in props}
        return {k: v for k, v in example.items() if v is not None} or None
    if kind == "string":
        return f"my-{key or 'value'}".replace("_", "-")
    return _GENERIC_EXAMPLES.get(str(kind))


def flow(value: Any) -> str:
    """``value`` as YAML flow style, the way it would be written in the manifest."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in value.items()) + "}"
    text = str(value)
    plain = _PLAIN_SCALAR.fullmatch(text) and text.lower() not in ("true", "false", "null", "yes", "no")
    return text if plain and not _is_number(text) else json.dumps(text)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
