"""Is a compute's dbt adapter (and its driver) installed? Checked before any run starts.

``ComputePlugin.get_required_dbt_packages()`` names the pip requirements dbt needs to run on the
compute (``dbt-clickhouse>=1.10.3,<1.11``); ``ComputePlugin.required_drivers(config)`` the Python
drivers its ``validate_connection`` uses (import module -> pip requirement).
:func:`missing_packages` checks each one against the Python environment floe runs in:

- the distribution is installed (``importlib.metadata``) at a version the requirement allows,
  with the distributions its extras pull in (``dbt-spark[session]`` needs ``pyspark``);
- the adapter's module ``dbt.adapters.<dbt_adapter_type>`` and each driver's module can be found
  (a distribution whose files were removed, or a module hidden from the process, counts as
  missing).

Nothing is imported: the check costs milliseconds per compute (metadata reads and a module
lookup), so it runs at every code-location load (``build_definitions``), in ``floe validate`` and
before each connection check (``floe health``, the Dagster ``connection`` check). Each missing
piece is reported with the command that installs it.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Literal

from packaging.requirements import InvalidRequirement, Requirement

from floe_dagster.core.errors import ConfigurationError

if TYPE_CHECKING:
    from floe_dagster.plugins.base import PluginConfig
    from floe_dagster.plugins.compute import ComputePlugin

__all__ = [
    "MissingDbtPackageError",
    "MissingPackage",
    "describe_missing",
    "missing_packages",
]


@dataclass(frozen=True)
class MissingPackage:
    """One requirement of a compute that the Python environment does not satisfy."""

    requirement: str  # as the plugin declares it, e.g. "dbt-clickhouse>=1.10.3,<1.11"
    role: Literal["dbt adapter", "driver"]
    reason: str  # "not installed", "version 1.9.0 installed", "module dbt.adapters.x not found" ...

    @property
    def install_command(self) -> str:
        return f"pip install '{self.requirement}'"

    def describe(self) -> str:
        return (
            f"the {self.role} '{self.requirement}' is missing ({self.reason});"
            f" install it with `{self.install_command}`"
        )


def describe_missing(missing: list[MissingPackage]) -> str:
    """Every missing package with its install command, on one line."""
    return "; ".join(m.describe() for m in missing)


class MissingDbtPackageError(ConfigurationError):
    """An approved compute's dbt adapter or driver is not installed; ``missing`` lists what."""

    def __init__(
        self, message: str, *, compute: str, compute_type: str, missing: list[MissingPackage]
    ) -> None:
        super().__init__(message, provider=compute_type, operation="check_dbt_packages")
        self.compute = compute
        self.compute_type = compute_type
        self.missing = missing


def missing_packages(plugin: ComputePlugin, config: PluginConfig | None = None) -> list[MissingPackage]:
    """What the compute needs and this Python environment lacks (empty: everything is there)."""
    missing: list[MissingPackage] = []
    for requirement in plugin.get_required_dbt_packages():
        reason = _unsatisfied(requirement)
        module = f"dbt.adapters.{plugin.dbt_adapter_type}" if plugin.dbt_adapter_type else None
        if reason is None and module is not None and not _module_found(module):
            reason = f"module {module} not found"
        if reason is not None:
            missing.append(MissingPackage(requirement, "dbt adapter", reason))
            break  # the adapter module belongs to the first requirement; one report per compute
    for module, requirement in plugin.required_drivers(config).items():
        if not _module_found(module):
            missing.append(MissingPackage(requirement, "driver", f"module {module} not found"))
    return missing


def _unsatisfied(requirement: str) -> str | None:
    """Why ``requirement`` is not met here, or None when it is (read afresh every time: ~1 ms)."""
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return f"'{requirement}' is not a valid pip requirement"
    try:
        installed = metadata.version(parsed.name)
    except metadata.PackageNotFoundError:
        return "not installed"
    if parsed.specifier and not parsed.specifier.contains(installed, prereleases=True):
        return f"version {installed} installed, {parsed.specifier} needed"
    for extra in sorted(parsed.extras):
        for dependency in _extra_requirements(parsed.name, extra):
            if _unsatisfied(dependency) is not None:
                return f"its extra [{extra}] needs '{dependency}', which is not installed"
    return None


def _extra_requirements(distribution: str, extra: str) -> list[str]:
    """The requirements ``distribution[extra]`` adds (markers evaluated for this interpreter)."""
    found: list[str] = []
    for text in metadata.requires(distribution) or []:
        dependency = Requirement(text)
        if dependency.marker is None or not dependency.marker.evaluate({"extra": extra}):
            continue
        if dependency.marker.evaluate({"extra": ""}):
            continue  # not specific to the extra (a plain platform marker)
        dependency.marker = None
        found.append(str(dependency))
    return found


def _module_found(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it (a ``None`` in ``sys.modules``, the
    documented way to block an import, counts as not found)."""
    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
