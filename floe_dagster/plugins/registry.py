"""Finds plugins through entry points: built-in ones are registered exactly like third-party ones."""

from __future__ import annotations

import difflib
from functools import cache
from importlib.metadata import entry_points
from typing import Literal

from floe_dagster.core.errors import PluginApiVersionError, PluginNotFoundError
from floe_dagster.plugins.base import PLUGIN_API_VERSION, Plugin
from floe_dagster.plugins.unsupported import UNSUPPORTED_COMPUTES

__all__ = [
    "KINDS",
    "PluginKind",
    "available_types",
    "get_plugin_class",
    "installed_plugins",
]

PluginKind = Literal["catalogs", "computes", "metastores"]
KINDS: tuple[PluginKind, ...] = ("catalogs", "computes", "metastores")


def entry_point_group(kind: PluginKind) -> str:
    return f"floe.{kind}"


@cache
def installed_plugins(kind: PluginKind) -> dict[str, object]:
    """Entry points of one kind, by name (not yet imported)."""
    return {ep.name: ep for ep in entry_points(group=entry_point_group(kind))}


def available_types(kind: PluginKind) -> list[str]:
    return sorted(installed_plugins(kind))


@cache
def get_plugin_class(kind: PluginKind, type_name: str) -> type[Plugin]:
    eps = installed_plugins(kind)
    if type_name not in eps and kind == "computes" and type_name in UNSUPPORTED_COMPUTES:
        raise PluginNotFoundError(
            f"compute type '{type_name}' is not supported: {UNSUPPORTED_COMPUTES[type_name]}",
            provider=type_name,
            operation="load_plugin",
        )
    if type_name not in eps:
        choices = ", ".join(available_types(kind)) or "none installed"
        close = difflib.get_close_matches(type_name, available_types(kind), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise PluginNotFoundError(
            f"unknown {kind[:-1]} type '{type_name}'{hint}; installed: [{choices}]"
            f" (install the package that provides it, or register an entry point in group"
            f" '{entry_point_group(kind)}')",
            provider=type_name,
            operation="load_plugin",
        )
    try:
        cls = eps[type_name].load()  # type: ignore[attr-defined]
    except ImportError as exc:
        raise PluginNotFoundError(
            f"{kind[:-1]} type '{type_name}' is registered but cannot be imported ({exc});"
            " install the package it needs",
            provider=type_name,
            operation="load_plugin",
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Plugin)):
        raise PluginNotFoundError(
            f"entry point '{type_name}' in '{entry_point_group(kind)}' is {cls!r}, not a Plugin class",
            provider=type_name,
            operation="load_plugin",
        )
    check_api_version(kind, type_name, cls)
    return cls


def api_major(version: object) -> int | None:
    head = str(version).split(".", 1)[0]
    return int(head) if head.isdigit() else None


def check_api_version(kind: PluginKind, type_name: str, cls: type[Plugin]) -> None:
    """Refuse a plugin written for another major version of the plugin API (semver: the major
    changes when a contract method changes); any minor version of ours is accepted."""
    ours = api_major(PLUGIN_API_VERSION)
    theirs = getattr(cls, "plugin_api_version", None)
    if api_major(theirs) == ours:
        return
    raise PluginApiVersionError(
        f"{kind[:-1]} type '{type_name}' ({cls.__module__}.{cls.__qualname__}) implements plugin API"
        f" {theirs!r}, but this floe-dagster implements plugin API {PLUGIN_API_VERSION} (major"
        f" {ours}); install a version of the plugin built for plugin API {ours}.x, or a floe-dagster"
        f" that implements API {theirs}",
        provider=type_name,
        operation="load_plugin",
    )
