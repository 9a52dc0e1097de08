"""Every private API of dagster, dagster-dbt, dbt-core, dbt-duckdb and PyIceberg floe uses, in one place.

The rest of floe_dagster uses these libraries' public APIs plus this module. Each *seam* (one
use of a private name: an import of ``_something``, a module under ``dagster._core``, a method
overridden or a class attribute swapped) is a small function or class here, whose docstring
names the private API and the release it was written for, and a :class:`Seam` record (the
library and the range of its releases the seam was written and tested for). Before a seam
touches the private API it checks the installed version (``importlib.metadata``):

* inside the supported range: nothing to say;
* older than the range, or a newer **major** release: :class:`~floe_dagster.core.errors.CompatibilityError`
  naming the seam, the installed version and the supported range (install a supported version);
* a newer **minor** release of the same major (pyiceberg 0.13 for a seam written for 0.12,
  dagster 1.14 for 1.13): a :class:`CompatibilityWarning`, once per seam and process, and the
  seam is tried. floe's pins keep an install in range; a user who moves a pin forward is not
  blocked while the private API still fits, and when it does not (a name gone), the seam raises
  the same ``CompatibilityError`` rather than an ``AttributeError`` deep inside the library.

``tests/unit/test_compat.py`` exercises every seam against the installed library, so an upgrade
that breaks one fails there, loudly, by name. Importing this module stays cheap: the libraries
are imported inside the seams (``# lazy``), where they are already loaded by the caller.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib
import logging
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from floe_dagster.core.errors import CompatibilityError, MissingLibraryError

if TYPE_CHECKING:
    import requests
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition as UnresolvedAssetJobDefinition,
    )
    from dagster.components.utils.translation import TranslationFn as TranslationFn
    from dagster.components.utils.translation import TranslationFnResolver as TranslationFnResolver
    from dagster_dbt import DbtCliResource
    from pyiceberg.catalog import Catalog

    class DbtCliResourceBase(DbtCliResource):
        def unique_target_path(self, context: Any) -> Path: ...


__all__ = [
    "SEAMS",
    "CompatibilityWarning",
    "DbtCliResourceBase",
    "DbtSelectorInternals",
    "Seam",
    "TranslationFn",
    "TranslationFnResolver",
    "UnresolvedAssetJobDefinition",
    "cancel_open_dbt_queries",
    "check",
    "check_pyarrow_schema_compatible",
    "close_dbt_duckdb_environment",
    "dataframe_to_data_files",
    "dbt_assets_preselected",
    "dbt_cli_invocation_class",
    "dbt_cli_processes_started_by",
    "dbt_event_json",
    "dbt_invocation_flag",
    "dbt_project_root",
    "dbt_selector_internals",
    "hive_catalog_thrift",
    "hive_catalog_with_failover",
    "installed_version",
    "observation_data_version_tags",
    "pyarrow_to_schema_without_ids",
    "rest_catalog_with_timeouts",
    "to_requested_schema",
]


class CompatibilityWarning(UserWarning):
    """A seam runs against a newer minor release than the one it was written for."""


@dataclass(frozen=True)
class Seam:
    """One private API floe relies on: ``name``, the ``distribution`` it belongs to and the
    release series it was written for (``minimum`` included, ``below`` excluded)."""

    name: str
    distribution: str
    minimum: str
    below: str

    @property
    def supported(self) -> str:
        return f">={self.minimum},<{self.below}"


# dagster 1.13.27, dagster-dbt 0.29.27, dbt-core 1.11.16, dbt-adapters 1.24, dbt-common 1.39,
# dbt-duckdb 1.11.1 and pyiceberg 0.12.0 are the releases the seams were written and tested for.
DATA_VERSION_TAGS = Seam("dagster._core.definitions.data_version.DATA_VERSION_TAG", "dagster", "1.13", "1.14")
UNRESOLVED_ASSET_JOB = Seam(
    "dagster._core.definitions.unresolved_asset_job_definition.UnresolvedAssetJobDefinition",
    "dagster",
    "1.13",
    "1.14",
)
TRANSLATION_FN = Seam(
    "dagster.components.utils.translation.TranslationFn(Resolver)", "dagster", "1.13", "1.14"
)
DBT_CLI_INVOCATION_RUN = Seam(
    "dagster_dbt.core.resource.DbtCliInvocation.run (starts the dbt process)", "dagster-dbt", "0.29", "0.30"
)
DBT_CLI_RESOURCE_HOOKS = Seam(
    "DbtCliResource._cli_version / _initialize_dbt_core_adapter / _get_unique_target_path",
    "dagster-dbt",
    "0.29",
    "0.30",
)
DBT_ASSETS_SELECTION = Seam(
    "dagster_dbt.asset_utils.select_unique_ids (what @dbt_assets selects)", "dagster-dbt", "0.29", "0.30"
)
DBT_SELECTOR = Seam(
    "dbt.graph.cli / dbt.graph.selector / dbt.contracts.graph / dbt.flags.set_flags (node selection)",
    "dbt-core",
    "1.11",
    "1.12",
)
DBT_FLAGS = Seam("dbt.flags.get_flags", "dbt-core", "1.11", "1.12")
DBT_PROJECT_ROOT = Seam("dbt_common.events.contextvars.get_project_root", "dbt-common", "1.37", "2")
DBT_EVENT_JSON = Seam("dbt_common.events.functions.msg_to_json", "dbt-common", "1.37", "2")
DBT_ADAPTER_FACTORY = Seam("dbt.adapters.factory.FACTORY", "dbt-adapters", "1.16", "2")
DBT_DUCKDB_ENVIRONMENT = Seam(
    "dbt.adapters.duckdb.connections.DuckDBConnectionManager._LOCK / _ENV", "dbt-duckdb", "1.11", "1.12"
)
PYARROW = "pyiceberg.io.pyarrow"
PYARROW_TO_SCHEMA_WITHOUT_IDS = Seam(
    "pyiceberg.io.pyarrow._pyarrow_to_schema_without_ids", "pyiceberg", "0.12", "0.13"
)
CHECK_PYARROW_SCHEMA = Seam(
    "pyiceberg.io.pyarrow._check_pyarrow_schema_compatible", "pyiceberg", "0.12", "0.13"
)
DATAFRAME_TO_DATA_FILES = Seam("pyiceberg.io.pyarrow._dataframe_to_data_files", "pyiceberg", "0.12", "0.13")
TO_REQUESTED_SCHEMA = Seam("pyiceberg.io.pyarrow._to_requested_schema", "pyiceberg", "0.12", "0.13")
REST_CATALOG_HOOKS = Seam(
    "pyiceberg.catalog.rest: RestCatalog._create_session / _create_legacy_oauth2_auth_manager, "
    "LegacyOAuth2AuthManager._fetch_access_token / _refresh_token, response._handle_non_200_response",
    "pyiceberg",
    "0.12",
    "0.13",
)
HIVE_CLIENT = Seam(
    "pyiceberg.catalog.hive._HiveClient / HiveCatalog._create_hive_client", "pyiceberg", "0.12", "0.13"
)

SEAMS: tuple[Seam, ...] = (
    DATA_VERSION_TAGS,
    UNRESOLVED_ASSET_JOB,
    TRANSLATION_FN,
    DBT_CLI_INVOCATION_RUN,
    DBT_CLI_RESOURCE_HOOKS,
    DBT_ASSETS_SELECTION,
    DBT_SELECTOR,
    DBT_FLAGS,
    DBT_PROJECT_ROOT,
    DBT_EVENT_JSON,
    DBT_ADAPTER_FACTORY,
    DBT_DUCKDB_ENVIRONMENT,
    PYARROW_TO_SCHEMA_WITHOUT_IDS,
    CHECK_PYARROW_SCHEMA,
    DATAFRAME_TO_DATA_FILES,
    TO_REQUESTED_SCHEMA,
    REST_CATALOG_HOOKS,
    HIVE_CLIENT,
)


# --- the version guard ---------------------------------------------------------------------------


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


_checked: set[str] = set()  # seams whose installed version was checked in this process


def check(seam: Seam) -> None:
    """Raise :class:`CompatibilityError` unless ``seam`` was written for the installed release
    (a newer minor release warns once instead; see the module docstring). Cheap after the first call."""
    if seam.name in _checked:
        return
    # lazy: packaging is only needed the first time a seam is used
    from packaging.version import InvalidVersion, Version

    installed = installed_version(seam.distribution)
    if installed is None:
        raise _error(seam, "is not installed", "not installed", MissingLibraryError)
    try:
        found, minimum, below = Version(installed), Version(seam.minimum), Version(seam.below)
    except InvalidVersion:
        raise _error(seam, f"has a version floe cannot read ({installed})", installed) from None
    # the major release of the newest supported ones: 1 for "<1.14" and for "<2", 0 for "<0.13"
    last_major = below.major if (below.minor, below.micro) != (0, 0) else below.major - 1
    if found < minimum or (found >= below and found.major != last_major):
        raise _error(seam, f"{installed} is installed", installed)
    if found >= below:
        warnings.warn(
            f"floe: {seam.distribution} {installed} is newer than the releases floe's use of its private API"
            f" {seam.name} was written for ({seam.distribution}{seam.supported}); it is tried as is."
            " If it fails, install a supported release.",
            CompatibilityWarning,
            stacklevel=3,
        )
    _checked.add(seam.name)


def _error(
    seam: Seam, what: str, installed: str, kind: type[CompatibilityError] = CompatibilityError
) -> CompatibilityError:
    return kind(
        f"floe uses a private API of {seam.distribution} ({seam.name}) written for {seam.distribution}"
        f"{seam.supported}, but {seam.distribution} {what}: install a supported release"
        f" (pip install '{seam.distribution}{seam.supported}')",
        seam=seam.name,
        distribution=seam.distribution,
        installed=installed,
        supported=seam.supported,
    )


def _broken(seam: Seam, detail: str) -> CompatibilityError:
    installed = installed_version(seam.distribution) or "not installed"
    return CompatibilityError(
        f"floe uses a private API of {seam.distribution} ({seam.name}) written for {seam.distribution}"
        f"{seam.supported}; with {seam.distribution} {installed} it does not fit ({detail}):"
        f" install a supported release (pip install '{seam.distribution}{seam.supported}')",
        seam=seam.name,
        distribution=seam.distribution,
        installed=installed,
        supported=seam.supported,
    )


def _private(seam: Seam, module: str, name: str) -> Any:
    """``module.name`` after checking ``seam``'s version; a missing one is a CompatibilityError."""
    check(seam)
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise _broken(seam, f"{module}.{name}: {exc}") from None


def _require_attributes(seam: Seam, owner: Any, names: Sequence[str]) -> None:
    missing = [name for name in names if not hasattr(owner, name)]
    if missing:
        raise _broken(seam, f"{owner.__qualname__} has no {', '.join(missing)}")


# --- dagster -------------------------------------------------------------------------------------


def observation_data_version_tags(data_version: str) -> dict[str, str]:
    """The tags that give an ``AssetObservation`` a user-provided data version, exactly as an
    observation run records it (``AssetObservation.data_version`` reads the first).

    Written for dagster 1.13: ``DATA_VERSION_TAG`` and ``DATA_VERSION_IS_USER_PROVIDED_TAG`` of
    ``dagster._core.definitions.data_version``; dagster has no public way to put a data version on
    an observation reported by a sensor.
    """
    tag, user_provided = _data_version_tag_names()
    return {tag: data_version, user_provided: "true"}


@functools.cache
def _data_version_tag_names() -> tuple[str, str]:  # once: a sensor tick tags every changed table
    module = "dagster._core.definitions.data_version"
    tag = _private(DATA_VERSION_TAGS, module, "DATA_VERSION_TAG")
    return tag, _private(DATA_VERSION_TAGS, module, "DATA_VERSION_IS_USER_PROVIDED_TAG")


def _unresolved_asset_job_definition() -> Any:
    """What ``define_asset_job`` returns (dagster 1.13 exports no public name for the type)."""
    return _private(
        UNRESOLVED_ASSET_JOB,
        "dagster._core.definitions.unresolved_asset_job_definition",
        "UnresolvedAssetJobDefinition",
    )


def _translation_fn(name: str) -> Callable[[], Any]:
    """dagster 1.13's ``TranslationFn`` / ``TranslationFnResolver`` (dagster.components.utils.translation,
    not exported by ``dagster.components``): the ``translation`` field of a component, as
    dagster-dbt's own DbtProjectComponent declares it."""
    return lambda: _private(TRANSLATION_FN, "dagster.components.utils.translation", name)


# --- dagster-dbt ---------------------------------------------------------------------------------


def _dbt_cli_resource_base() -> Any:
    """dagster-dbt's ``DbtCliResource`` without two start-up costs, and its target folder by name.

    Written for dagster-dbt 0.29, whose ``DbtCliResource`` learns dbt's version from the cached
    property ``_cli_version`` (a ``dbt --version`` subprocess: a full dbt import, 4-10 s here)
    and opens an adapter in process in ``_initialize_dbt_core_adapter`` (used only by optional
    metadata fetchers); here the version comes from the dbt-core installed beside floe and no
    adapter is opened. ``unique_target_path(context)`` is its ``_get_unique_target_path``.
    """
    check(DBT_CLI_RESOURCE_HOOKS)
    # lazy: dagster-dbt is heavy, and only the Dagster stage's resource needs it
    from dagster_dbt import DbtCliResource
    from packaging import version

    hooks = ("_cli_version", "_initialize_dbt_core_adapter", "_get_unique_target_path")
    _require_attributes(DBT_CLI_RESOURCE_HOOKS, DbtCliResource, hooks)

    class DbtCliResourceBase(DbtCliResource):
        @functools.cached_property
        def _cli_version(self) -> version.Version:
            # lazy: dbt-core is imported by the dbt run anyway
            from dbt.version import __version__ as dbt_version

            return version.parse(dbt_version)

        def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
            return None

        def unique_target_path(self, context: Any) -> Path:
            return Path(self._get_unique_target_path(context=context))

    DbtCliResourceBase.__qualname__ = "DbtCliResourceBase"
    return DbtCliResourceBase


@dataclass(frozen=True)
class _ProcessStarter:
    start: Callable[[Sequence[str], dict[str, str], Path], Any]
    announce: Callable[[str], None] | None


_swap_lock = threading.Lock()
_starter: _ProcessStarter | None = None


@functools.cache
def dbt_cli_invocation_class() -> Any:
    """dagster-dbt's ``DbtCliInvocation`` whose ``run`` starts the process that
    :func:`dbt_cli_processes_started_by` gives it (outside that block: dagster-dbt's own ``run``).

    Written for dagster-dbt 0.29: ``DbtCliResource.cli`` calls
    ``dagster_dbt.core.resource.DbtCliInvocation.run(args, env, manifest, ...)``, which seeds the
    new target folder's partial parse (``_get_dbt_target_path``, ``PARTIAL_PARSE_FILE_NAME`` of
    ``dagster_dbt.core.dbt_cli_invocation``) and starts ``subprocess.Popen``; this ``run`` keeps its
    signature and does the same with the given process.
    """
    check(DBT_CLI_INVOCATION_RUN)
    module = "dagster_dbt.core.dbt_cli_invocation"
    invocation_class = _private(DBT_CLI_INVOCATION_RUN, module, "DbtCliInvocation")
    target_path_of_project = _private(DBT_CLI_INVOCATION_RUN, module, "_get_dbt_target_path")
    partial_parse_file = _private(DBT_CLI_INVOCATION_RUN, module, "PARTIAL_PARSE_FILE_NAME")

    def seed_partial_parse(project_dir: Path, target_path: Path) -> None:
        source = target_path_of_project()
        source = (source if source.is_absolute() else project_dir / source) / partial_parse_file
        destination = target_path / partial_parse_file
        if source.exists() and not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            # lazy: only when a partial parse is seeded
            import shutil

            shutil.copy(source, destination)

    class StartedDbtCliInvocation(invocation_class):  # type: ignore[misc,valid-type]
        @classmethod
        def run(
            cls,
            args: Sequence[str],
            env: dict[str, str],
            manifest: Mapping[str, Any],
            dagster_dbt_translator: Any,
            project_dir: Path,
            target_path: Path,
            raise_on_error: bool,
            context: Any,
            adapter: Any,
            cli_version: Any,
            dbt_project: Any = None,
        ) -> Any:
            starter = _starter
            if starter is None:
                return invocation_class.run(
                    args, env, manifest, dagster_dbt_translator, project_dir, target_path,
                    raise_on_error, context, adapter, cli_version, dbt_project,
                )  # fmt: skip
            seed_partial_parse(project_dir, target_path)
            invocation = cls(
                process=starter.start(args, env, project_dir),
                manifest=manifest,
                project=dbt_project,
                dagster_dbt_translator=dagster_dbt_translator,
                project_dir=project_dir,
                target_path=target_path,
                raise_on_error=raise_on_error,
                context=context,
                adapter=adapter,
                cli_version=cli_version,
            )
            if starter.announce is not None:
                starter.announce(invocation.dbt_command)
            return invocation

    StartedDbtCliInvocation.__qualname__ = "StartedDbtCliInvocation"
    return StartedDbtCliInvocation


@contextlib.contextmanager
def dbt_cli_processes_started_by(
    start: Callable[[Sequence[str], dict[str, str], Path], Any],
    announce: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Within the block, dagster-dbt's ``DbtCliResource.cli`` runs dbt in ``start(args, env, project_dir)``
    (an object with the part of ``subprocess.Popen`` dagster-dbt uses) instead of a subprocess;
    ``announce(dbt_command)`` is told of each invocation.

    dagster-dbt 0.29 has no hook for how the dbt process is started, so for the length of the
    block ``dagster_dbt.core.resource.DbtCliInvocation`` is :func:`dbt_cli_invocation_class`
    (one block at a time in the process).
    """
    invocation_class = dbt_cli_invocation_class()
    resource_module = importlib.import_module("dagster_dbt.core.resource")
    if not hasattr(resource_module, "DbtCliInvocation"):
        raise _broken(DBT_CLI_INVOCATION_RUN, "dagster_dbt.core.resource has no DbtCliInvocation")
    global _starter
    with _swap_lock:
        original = getattr(resource_module, "DbtCliInvocation")  # noqa: B009
        setattr(resource_module, "DbtCliInvocation", invocation_class)  # noqa: B010
        _starter = _ProcessStarter(start, announce)
        try:
            yield
        finally:
            setattr(resource_module, "DbtCliInvocation", original)  # noqa: B010
            _starter = None


# --- dbt-core, dbt-common, dbt-adapters, dbt-duckdb ----------------------------------------------


@contextlib.contextmanager
def dbt_assets_preselected(
    dbt_manifest: Mapping[str, Any], select: str, unique_ids: AbstractSet[str]
) -> Iterator[None]:
    """Inside, ``@dbt_assets(manifest=dbt_manifest, select=select)`` takes ``unique_ids`` as what
    ``select`` selects instead of evaluating it with dbt's selector; any other selection (another
    manifest, select, exclude or selector) is evaluated as before.

    Written for dagster-dbt 0.29.27, whose ``asset_utils.build_dbt_specs`` (called by
    ``@dbt_assets``) evaluates its selection with the module's ``select_unique_ids``. Without it
    (a release that moved it), the definitions are the same, built at dbt's selection speed. The
    op keeps ``select`` as its dbt selection, so runs select with dbt exactly as before.
    """
    check(DBT_ASSETS_SELECTION)
    # lazy (heavy): dagster-dbt, for the Dagster stage only
    from dagster_dbt import asset_utils

    evaluate = getattr(asset_utils, "select_unique_ids", None)
    if evaluate is None:
        yield
        return

    def select_unique_ids(*args: Any, **kwargs: Any) -> AbstractSet[str]:
        if (
            not args
            and kwargs.get("manifest_json") is dbt_manifest
            and kwargs.get("select") == select
            and not kwargs.get("exclude")
            and not kwargs.get("selector")
        ):
            return unique_ids
        found: AbstractSet[str] = evaluate(*args, **kwargs)
        return found

    asset_utils.select_unique_ids = select_unique_ids  # type: ignore[attr-defined]
    try:
        yield
    finally:
        asset_utils.select_unique_ids = evaluate  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DbtSelectorInternals:
    """The dbt-core 1.11 objects its node selector is built from (what dagster-dbt 0.29's
    ``_select_unique_ids_from_manifest`` builds, outside a dbt invocation)."""

    graph_cli: Any  # dbt.graph.cli: parse_union, SelectionDifference
    graph_selector: Any  # dbt.graph.selector: NodeSelector, Graph
    Manifest: Any  # dbt.contracts.graph.manifest.Manifest
    SemanticModel: Any  # dbt.contracts.graph.nodes
    SavedQuery: Any
    UnitTestDefinition: Any
    FunctionNode: Any
    get_flag_dict: Callable[[], dict[str, Any]]  # dbt.flags
    set_flags: Callable[[Any], None]
    IndirectSelection: Any  # dbt.graph.selector_spec.IndirectSelection


@functools.cache
def dbt_selector_internals() -> DbtSelectorInternals:
    """dbt-core's selection internals (written for dbt-core 1.11): ``dbt.graph.cli``,
    ``dbt.graph.selector``, ``dbt.contracts.graph.manifest.Manifest`` and the node classes of
    ``dbt.contracts.graph.nodes``, ``dbt.flags.get_flag_dict`` / ``set_flags`` and
    ``dbt.graph.selector_spec.IndirectSelection``. Importing dbt adds a handler to the root
    logger; it is taken off again, as dagster-dbt does."""
    check(DBT_SELECTOR)
    root_handlers = list(logging.getLogger().handlers)
    try:
        graph_cli = importlib.import_module("dbt.graph.cli")
        graph_selector = importlib.import_module("dbt.graph.selector")
        nodes = "dbt.contracts.graph.nodes"
        return DbtSelectorInternals(
            graph_cli=graph_cli,
            graph_selector=graph_selector,
            Manifest=_private(DBT_SELECTOR, "dbt.contracts.graph.manifest", "Manifest"),
            SemanticModel=_private(DBT_SELECTOR, nodes, "SemanticModel"),
            SavedQuery=_private(DBT_SELECTOR, nodes, "SavedQuery"),
            UnitTestDefinition=_private(DBT_SELECTOR, nodes, "UnitTestDefinition"),
            FunctionNode=_private(DBT_SELECTOR, nodes, "FunctionNode"),
            get_flag_dict=_private(DBT_SELECTOR, "dbt.flags", "get_flag_dict"),
            set_flags=_private(DBT_SELECTOR, "dbt.flags", "set_flags"),
            IndirectSelection=_private(DBT_SELECTOR, "dbt.graph.selector_spec", "IndirectSelection"),
        )
    except ImportError as exc:
        raise _broken(DBT_SELECTOR, str(exc)) from None
    finally:
        logging.getLogger().handlers = root_handlers


def dbt_invocation_flag(name: str) -> Any:
    """The value of dbt's global flag ``name`` (e.g. ``TARGET_PATH``) in the running invocation,
    None when it has none: ``dbt.flags.get_flags()`` of dbt-core 1.11 (dbt's process-global flags)."""
    get_flags: Callable[[], Any] = _private(DBT_FLAGS, "dbt.flags", "get_flags")
    return getattr(get_flags(), name, None)


def dbt_project_root() -> str | None:
    """The project root dbt resolves ``path:`` selectors against (dbt-common 1.37+:
    ``dbt_common.events.contextvars.get_project_root``)."""
    project_root: Callable[[], str | None] = _private(
        DBT_PROJECT_ROOT, "dbt_common.events.contextvars", "get_project_root"
    )
    return project_root()


def dbt_event_json(message: Any) -> str:
    """A dbt event as the JSON line the ``dbt`` CLI prints with ``--log-format json`` (what
    dagster-dbt parses): dbt-common 1.37+'s ``dbt_common.events.functions.msg_to_json``."""
    to_json: Callable[[Any], str] = _private(DBT_EVENT_JSON, "dbt_common.events.functions", "msg_to_json")
    return to_json(message)


def cancel_open_dbt_queries() -> None:
    """Cancel every query dbt's adapters have in flight in this process (dbt's own Ctrl-C path):
    ``cancel_open_connections`` of each adapter registered in dbt-adapters 1.x's
    ``dbt.adapters.factory.FACTORY``."""
    factory = _private(DBT_ADAPTER_FACTORY, "dbt.adapters.factory", "FACTORY")
    for adapter in list(factory.adapters.values()):
        with contextlib.suppress(Exception):  # an adapter that cannot cancel just finishes its query
            adapter.cancel_open_connections()


def close_dbt_duckdb_environment() -> None:
    """Close the database dbt-duckdb keeps open for the next invocation in the process.

    Written for dbt-duckdb 1.11, which holds its last environment (and so the DuckDB file's
    write lock) in ``DuckDBConnectionManager._ENV`` (guarded by ``_LOCK``) until the process exits.
    """
    manager = _private(DBT_DUCKDB_ENVIRONMENT, "dbt.adapters.duckdb.connections", "DuckDBConnectionManager")
    _require_attributes(DBT_DUCKDB_ENVIRONMENT, manager, ("_LOCK", "_ENV"))
    with manager._LOCK:
        environment, manager._ENV = manager._ENV, None
        if environment is not None:
            environment.close()


# --- PyIceberg -----------------------------------------------------------------------------------


def pyarrow_to_schema_without_ids(arrow_schema: Any) -> Any:
    """The Iceberg schema of an Arrow schema, without field ids (pyiceberg 0.12's
    ``pyiceberg.io.pyarrow._pyarrow_to_schema_without_ids``)."""
    convert = _private(PYARROW_TO_SCHEMA_WITHOUT_IDS, PYARROW, "_pyarrow_to_schema_without_ids")
    return convert(arrow_schema)


def check_pyarrow_schema_compatible(requested_schema: Any, provided_schema: Any, format_version: int) -> None:
    """Raise ValueError unless Arrow data of ``provided_schema`` can be written to a table of
    ``requested_schema`` (pyiceberg 0.12's ``pyiceberg.io.pyarrow._check_pyarrow_schema_compatible``,
    the check ``Table.append`` makes)."""
    compatible = _private(CHECK_PYARROW_SCHEMA, "pyiceberg.io.pyarrow", "_check_pyarrow_schema_compatible")
    compatible(requested_schema, provided_schema=provided_schema, format_version=format_version)


def dataframe_to_data_files(*, table_metadata: Any, df: Any, io: Any, write_uuid: Any, counter: Any) -> Any:
    """The data files ``Table.append`` would write for ``df``, split by partition (pyiceberg 0.12's
    ``pyiceberg.io.pyarrow._dataframe_to_data_files``), not committed."""
    write = _private(DATAFRAME_TO_DATA_FILES, "pyiceberg.io.pyarrow", "_dataframe_to_data_files")
    return write(table_metadata=table_metadata, df=df, io=io, write_uuid=write_uuid, counter=counter)


def to_requested_schema(
    *, requested_schema: Any, file_schema: Any, batch: Any, include_field_ids: bool, format_model: Any
) -> Any:
    """``batch`` (of ``file_schema``) as a record batch of ``requested_schema`` with field ids, as
    PyIceberg writes it into a data file (pyiceberg 0.12's ``pyiceberg.io.pyarrow._to_requested_schema``)."""
    convert = _private(TO_REQUESTED_SCHEMA, "pyiceberg.io.pyarrow", "_to_requested_schema")
    return convert(
        requested_schema=requested_schema,
        file_schema=file_schema,
        batch=batch,
        include_field_ids=include_field_ids,
        format_model=format_model,
    )


def rest_catalog_with_timeouts(
    name: str,
    properties: dict[str, str],
    *,
    timeout_s: float,
    refresh_margin_s: float,
    timeout_override: Callable[[], float | None] = lambda: None,
) -> Catalog:
    """A PyIceberg ``RestCatalog`` whose HTTP requests time out and whose OAuth2 client-credentials
    token is refreshed before its announced expiry, not only after a 401.

    Written for pyiceberg 0.12: ``RestCatalog._create_session`` and
    ``_create_legacy_oauth2_auth_manager`` (and ``_extract_optional_oauth_params``) are overridden,
    ``LegacyOAuth2AuthManager._fetch_access_token`` / ``_refresh_token`` too (with its
    ``_session``, ``_auth_url``, ``_optional_oauth_params``), and token errors are mapped by
    ``pyiceberg.catalog.rest.response._handle_non_200_response``. Each request without a timeout
    gets ``timeout_override()`` or ``timeout_s``.
    """
    check(REST_CATALOG_HOOKS)
    # lazy: PyIceberg's REST client and requests are imported only for a REST catalog
    import requests
    from pyiceberg import exceptions as ice
    from pyiceberg.catalog.rest import RestCatalog
    from pyiceberg.catalog.rest.auth import AuthManager, LegacyOAuth2AuthManager
    from pyiceberg.catalog.rest.response import TokenResponse
    from requests.adapters import HTTPAdapter

    response_module = "pyiceberg.catalog.rest.response"
    handle_non_200_response = _private(REST_CATALOG_HOOKS, response_module, "_handle_non_200_response")
    _require_attributes(
        REST_CATALOG_HOOKS,
        RestCatalog,
        ("_create_session", "_create_legacy_oauth2_auth_manager", "_extract_optional_oauth_params"),
    )
    _require_attributes(
        REST_CATALOG_HOOKS, LegacyOAuth2AuthManager, ("_fetch_access_token", "_refresh_token")
    )
    logger = logging.getLogger("floe_dagster.catalogs.rest")

    class TimeoutAdapter(HTTPAdapter):
        def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout_override() or timeout_s
            return super().send(request, **kwargs)

    def mount_timeouts(session: requests.Session) -> None:
        if not isinstance(session.get_adapter("http://"), TimeoutAdapter):
            session.mount("http://", TimeoutAdapter())
            session.mount("https://", TimeoutAdapter())

    class RefreshingOAuth2Manager(LegacyOAuth2AuthManager):
        """PyIceberg's client-credentials flow, also refreshing before the announced expiry."""

        def __init__(self, **kwargs: Any) -> None:
            self._lock = threading.RLock()
            self._refresh_at: float | None = None
            super().__init__(**kwargs)  # fetches the first token

        def _fetch_access_token(self, credential: str) -> str:
            client_id, _, client_secret = credential.partition(":")
            data = {"grant_type": "client_credentials", "client_id": client_id}
            data["client_secret"] = client_secret
            data.update(self._optional_oauth_params or {})
            if self._auth_url is None:
                raise ValueError("Cannot fetch access token from undefined auth_url")
            response = self._session.post(
                url=self._auth_url,
                data=data,
                headers={**self._session.headers, "Content-type": "application/x-www-form-urlencoded"},
                auth=lambda request: request,  # not the session's bearer auth (that is us)
            )
            try:
                response.raise_for_status()
            except requests.HTTPError as exc:
                handle_non_200_response(exc, {400: ice.OAuthError, 401: ice.OAuthError})
            token = TokenResponse.model_validate_json(response.text)
            if token.expires_in:
                early = min(refresh_margin_s, token.expires_in / 2)
                self._refresh_at = time.monotonic() + token.expires_in - early
            else:
                self._refresh_at = None
            return token.access_token

        def _refresh_token(self) -> None:  # also PyIceberg's hook after a 401
            with self._lock:
                super()._refresh_token()

        def _due(self) -> bool:
            return self._refresh_at is not None and time.monotonic() >= self._refresh_at

        def auth_header(self) -> str:
            if self._due():
                with self._lock:
                    if self._due():
                        logger.debug("catalog '%s': refreshing the OAuth2 token before it expires", name)
                        super()._refresh_token()
            return super().auth_header()

    class FloeRestCatalog(RestCatalog):
        def _create_session(self) -> requests.Session:
            session = super()._create_session()
            mount_timeouts(session)
            return session

        def _create_legacy_oauth2_auth_manager(self, session: requests.Session) -> AuthManager:
            mount_timeouts(session)  # before the first token request
            credential = self.properties.get("credential")
            if credential is None:
                return super()._create_legacy_oauth2_auth_manager(session)
            return RefreshingOAuth2Manager(
                session=session,
                auth_url=self.auth_url,
                credential=credential,
                initial_token=None,
                optional_oauth_params=self._extract_optional_oauth_params(),
            )

    return FloeRestCatalog(name, **properties)


def hive_catalog_with_failover(name: str, timeout_s: float, properties: dict[str, str]) -> Catalog:
    """A PyIceberg ``HiveCatalog`` whose Thrift client times out after ``timeout_s`` and fails over
    between the comma-separated URIs of ``properties["uri"]``.

    Written for pyiceberg 0.12: a subclass of ``pyiceberg.catalog.hive._HiveClient`` (overriding
    ``_init_thrift_transport`` and ``__enter__``, reading ``_uri``, ``_kerberos_auth``,
    ``_kerberos_service_name``, setting ``_transport`` / ``_was_opened``, calling ``_client()``),
    returned by an override of ``HiveCatalog._create_hive_client``.
    """
    # lazy: PyIceberg's Hive client and Thrift are imported only for a Hive catalog
    from pyiceberg.catalog.hive import HiveCatalog
    from pyiceberg.utils.properties import property_as_bool
    from thrift.transport import TSocket, TTransport

    hive_client = _private(HIVE_CLIENT, "pyiceberg.catalog.hive", "_HiveClient")
    _require_attributes(HIVE_CLIENT, hive_client, ("_init_thrift_transport", "_client"))
    _require_attributes(HIVE_CLIENT, HiveCatalog, ("_create_hive_client",))

    class FloeHiveClient(hive_client):  # type: ignore[misc,valid-type]
        _uri: str

        def __init__(self, uris: list[str], **kwargs: Any) -> None:
            self._uris = uris
            super().__init__(uris[0], **kwargs)

        def _init_thrift_transport(self) -> TTransport.TTransportBase:
            parts = urlsplit(self._uri)
            sock = TSocket.TSocket(parts.hostname, parts.port)
            sock.setTimeout(timeout_s * 1000)
            if not self._kerberos_auth:
                return TTransport.TBufferedTransport(sock)
            return TTransport.TSaslClientTransport(
                sock, host=parts.hostname, service=self._kerberos_service_name
            )

        def __enter__(self) -> Any:
            last: TTransport.TTransportException | None = None
            for uri in [self._uri, *(u for u in self._uris if u != self._uri)]:
                self._uri = uri
                self._transport = self._init_thrift_transport()
                try:
                    self._transport.open()
                except TTransport.TTransportException as exc:
                    last = exc
                    continue
                self._was_opened = True
                return self._client()
            assert last is not None
            raise last

    class FloeHiveCatalog(HiveCatalog):
        @staticmethod
        def _create_hive_client(properties: dict[str, str]) -> Any:
            return FloeHiveClient(
                properties["uri"].split(","),
                ugi=properties.get("ugi"),
                kerberos_auth=property_as_bool(properties, "hive.kerberos-authentication", False),
                kerberos_service_name=properties.get("hive.kerberos-service-name", "hive"),
            )

    return FloeHiveCatalog(name, **properties)


def hive_catalog_thrift(catalog: Any) -> Any:
    """The Thrift client context of a PyIceberg ``HiveCatalog`` (``with ... as client``).

    Written for pyiceberg 0.12: ``HiveCatalog._client`` (a ``_HiveClient``, a context manager
    opening the transport and giving the ``ThriftHiveMetastore.Client``). For batched reads of
    table parameters (metastores/iceberg_feed.py), which PyIceberg's public API has no call for.
    """
    check(HIVE_CLIENT)
    _require_attributes(HIVE_CLIENT, catalog, ("_client",))
    return catalog._client


# --- names built on first use (PEP 562): their classes live in heavy libraries ---------------------

_LAZY_NAMES: dict[str, Callable[[], Any]] = {
    "UnresolvedAssetJobDefinition": _unresolved_asset_job_definition,
    "TranslationFn": _translation_fn("TranslationFn"),
    "TranslationFnResolver": _translation_fn("TranslationFnResolver"),
    "DbtCliResourceBase": _dbt_cli_resource_base,
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_NAMES:
        value = _LAZY_NAMES[name]()
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# CPython before 3.11.9 (and 3.12.0-3.12.2) keeps the AST constructor's recursion counter in
# state shared by every thread (python/cpython#106905): two threads inside ``ast.parse`` at once
# can fail one of them with "SystemError: AST constructor recursion depth mismatch". dbt renders
# Jinja on its model threads and calls ``ast.literal_eval`` there; run in-process (beside
# Dagster's own threads) that failed models at random (measured: 127 of 800 calls under a
# 4-thread stress, 0 with this guard: tests/unit/test_ast_guard.py).
AST_RACE_VERSIONS = ((3, 0, 0), (3, 11, 9)), ((3, 12, 0), (3, 12, 3))
_ast_guard_lock = threading.Lock()


def python_has_ast_thread_race(version: tuple[int, int, int] | None = None) -> bool:
    current = version or tuple(sys.version_info[:3])
    return any(low <= current < high for low, high in AST_RACE_VERSIONS)


def serialize_ast_parsing() -> bool:
    """On a Python with the race, let one thread at a time into ``ast.parse`` (and so
    ``ast.literal_eval``); once per process. Returns whether the guard is in place."""
    if not python_has_ast_thread_race():
        return False
    with _ast_guard_lock:
        if getattr(ast.parse, "_floe_serialized", False):
            return True
        unguarded = ast.parse
        lock = threading.RLock()  # re-entrant: a parse inside a parse (a finaliser) must not deadlock

        @functools.wraps(unguarded)
        def parse(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return unguarded(*args, **kwargs)

        parse._floe_serialized = True  # type: ignore[attr-defined]
        ast.parse = parse  # type: ignore[assignment]  # ast.literal_eval looks ``parse`` up in the module: guarded too
        return True


def widen_session_pool(session: Any, size: int) -> None:
    """``size`` pooled connections per host for a ``requests`` session: its adapters mounted again,
    of the same class with the same retries (requests keeps 10 by default, and past them opens a
    connection per request, then discards it with a "Connection pool is full" warning)."""
    for prefix in ("https://", "http://"):
        current = session.get_adapter(prefix)
        adapter = type(current)(pool_connections=size, pool_maxsize=size, max_retries=current.max_retries)
        session.mount(prefix, adapter)


def widen_connection_pool(google_client: Any, size: int) -> None:
    """``size`` pooled connections per host for a google-cloud client's requests session (its
    ``_http``, created on first use; the client takes no pool size of its own)."""
    widen_session_pool(google_client._http, size)


def pooled_azure_transport(size: int, **options: Any) -> Any:
    """An azure-core ``RequestsTransport`` (``options``: its timeouts) whose session keeps ``size``
    pooled connections per host; the Azure SDK clients take no pool size of their own. The
    session is still azure-core's (its ``_init_session``: retries left to the SDK's policy)."""
    from azure.core.pipeline.transport import RequestsTransport

    class PooledRequestsTransport(RequestsTransport):  # type: ignore[misc]
        def _init_session(self, session: Any) -> None:
            super()._init_session(session)
            widen_session_pool(session, size)

    return PooledRequestsTransport(**options)
