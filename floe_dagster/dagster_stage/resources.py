"""Dagster resources for the manifest's catalogs, computes and metastores.

A resource holds the manifest path and an entry name, never the entry's config: config may
carry credentials, and Dagster shows resource config in the UI. The plugin is built from the
manifest when a step needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from floe_dagster.core.compat import DbtCliResourceBase
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plan.artifact import load_manifest_or_plan
from floe_dagster.plan.builders import build_catalog, build_compute, build_metastore, table_filter
from floe_dagster.plugins.catalog import MAX_HEALTH_TIMEOUT_S, CatalogPlugin, HealthStatus
from floe_dagster.plugins.compute import ComputePlugin, ConnectionResult
from floe_dagster.plugins.metastore import MetastoreConnector
from floe_dagster.plugins.table_model import TableFilter
from floe_dagster.plugins.telemetry import failed_validation, validate_compute
from floe_dagster.transforms.dbt_in_process import in_process_invocations

__all__ = [
    "CatalogResource",
    "ComputeResource",
    "FloeDbtCliResource",
    "MetastoreResource",
]


class _ManifestEntryResource(ConfigurableResource):  # type: ignore[type-arg]  # dagster's own use
    manifest_path: str
    environment: str
    name: str
    plugin_type: str

    _loaded: LoadedManifest | None = PrivateAttr(default=None)

    def loaded(self) -> LoadedManifest:
        if self._loaded is None:
            self._loaded = load_manifest_or_plan(self.manifest_path, self.environment)
        return self._loaded


class CatalogResource(_ManifestEntryResource):
    """An Iceberg catalog of the manifest's ``catalogs`` section, as a Dagster resource.

    ``build_definitions`` adds one per catalog as ``catalog_<name>``. Its config is the manifest
    path, the environment and the entry name, never the entry's config (which may hold a client
    secret that Dagster would show in the UI); ``plugin()`` builds the catalog plugin from the
    manifest through ``plugins.factory.build_catalog`` -- the same function, and so the same
    secret resolution and validation, that every other user of a catalog goes through.

    Who uses what, and why:

    * Assets that run in the Dagster process take this resource: the S3 ingest commits through
      ``plugin()``, and a user's own asset can ask for ``catalog_<name>`` the same way.
    * The dbt transforms do not: the catalogs are used inside the ``dbt`` process that
      dagster-dbt starts (DuckDB attaches them in floe's dbt-duckdb plugin; Spark reads and
      commits them before and after the run), where no Dagster resource exists. That process is
      given the manifest path and the catalog names, and calls ``build_catalog`` itself.
    * Metastore connectors of type ``iceberg`` (the observable sources) list a catalog's tables
      also outside any run -- when definitions load, in ``floe observe`` and ``floe refresh`` --
      so ``build_metastore`` builds their catalog with ``build_catalog`` too.

    One manifest entry, one factory: the resource is Dagster's handle on it, not a second path.
    """

    _plugin: CatalogPlugin | None = PrivateAttr(default=None)

    def plugin(self) -> CatalogPlugin:
        """The catalog plugin (built once per resource instance, so one connection per step)."""
        if self._plugin is None:
            self._plugin = build_catalog(self.loaded(), self.name)
        return self._plugin

    def health_check(self, timeout: float = MAX_HEALTH_TIMEOUT_S) -> HealthStatus:
        """The plugin's health check: one namespace listing within ``timeout`` (at most 10 s)."""
        return self.plugin().health_check(timeout)


class ComputeResource(_ManifestEntryResource):
    """A compute engine (one dbt target) from the manifest's ``computes.targets``."""

    @classmethod
    def for_manifest(cls, loaded: LoadedManifest, name: str) -> ComputeResource:
        """The resource of compute ``name``, reusing an already loaded manifest (``floe health``)."""
        resource = cls(
            manifest_path=str(loaded.source_path),
            environment=loaded.environment,
            name=name,
            plugin_type=loaded.target(name).type,
        )
        resource._loaded = loaded
        return resource

    def plugin(self) -> tuple[ComputePlugin, Any]:
        return build_compute(self.loaded(), self.name)

    # pydantic's BaseModel.validate is the deprecated v1 alias of model_validate (a classmethod
    # nothing here or in Dagster calls); the issue names this check `validate()`.
    def validate(self) -> ConnectionResult:  # type: ignore[override]
        """The compute's connection check, as ``floe health`` and the Dagster ``connection`` check
        run it: through :func:`floe_dagster.plugins.telemetry.validate_compute` (span, metrics, compute
        named, correlation id). A plugin that cannot even be built here (the manifest cannot be
        loaded at run time, an ``${env:...}`` is unset) is a failed result with the reason."""

        try:
            plugin, config = self.plugin()
        except Exception as exc:
            failed: ConnectionResult = failed_validation(self.name, self.plugin_type, exc)
            return failed
        result: ConnectionResult = validate_compute(plugin, config, self.name)
        return result


class MetastoreResource(_ManifestEntryResource):
    """A metastore whose tables are observable source assets."""

    def connector(self) -> MetastoreConnector:
        return build_metastore(self.loaded(), self.name)

    def table_filter(self) -> TableFilter:
        return table_filter(self.loaded(), self.name)

    def batch_size(self) -> int:
        return self.loaded().manifest.metastores[self.name].batch_size


class FloeDbtCliResource(DbtCliResourceBase):
    """dagster-dbt's resource, minus start-up, parse and shut-down work that costs seconds a run.

    - dagster-dbt runs ``dbt --version`` in a subprocess (a full dbt import, 4-10 s here) to learn
      a version that the dbt-core installed beside floe already tells us, and opens an adapter in
      process that only its optional metadata fetchers use (both private hooks of dagster-dbt,
      answered by ``core/compat.py``'s ``DbtCliResourceBase``).
    - Every invocation gets its own target folder, seeded with the project's
      ``target/partial_parse.msgpack``; but dbt keeps a partial parse only for the ``--target``
      (and connection) it was written with, so each compute but the default re-parsed the whole
      project on every run. This keeps one partial parse per ``--target`` under
      ``target/floe_partial_parse/`` instead.
    - A process that ran dbt steps holds dagster's and dbt-core's whole object graph: its final
      garbage collection at exit took 1.2-1.4 s of `dagster asset materialize` here.

    See benchmarks/materialize_overhead.py.
    """

    run_dbt_in_process: bool = Field(
        default=True,
        description=(
            "Run dbt inside the step's process for computes that allow it (DuckDB), instead of a"
            " `dbt` subprocess that pays Python's and dbt's start-up again. Off: always a subprocess."
        ),
    )

    _invocations: list[Any] = PrivateAttr(default_factory=list)  # (invocation, cache file)

    def setup_for_execution(self, context: Any) -> None:
        super().setup_for_execution(context)
        self._skip_garbage_collection_at_exit()

    def teardown_after_execution(self, context: Any) -> None:
        self._keep_partial_parses()
        super().teardown_after_execution(context)

    def cli(
        self,
        args: Any,
        *,
        context: Any = None,
        target_path: Any = None,
        in_process: bool = False,
        release: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """dagster-dbt's ``cli``, its target folder seeded with this ``--target``'s partial parse.

        ``in_process``: run dbt in this process rather than a ``dbt`` subprocess (for computes
        whose plugin allows it; see defs/dbt_in_process.py), unless ``run_dbt_in_process`` is off;
        ``release`` then runs after the invocation (what the subprocess's exit would release).
        """
        import contextlib
        import shutil
        from pathlib import Path

        target_path = Path(target_path or self.unique_target_path(context))
        cache = self._partial_parse_cache(self._dbt_target(args))
        if cache.exists():
            folder = target_path if target_path.is_absolute() else Path(self.project_dir, target_path)
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(cache, folder / "partial_parse.msgpack")
        in_this_process = in_process and self.run_dbt_in_process
        with in_process_invocations(release) if in_this_process else contextlib.nullcontext():
            invocation = super().cli(args, context=context, target_path=target_path, **kwargs)
        self._invocations.append((invocation, cache))
        return invocation

    def _dbt_target(self, args: Any) -> str:
        args = list(args)
        for index, arg in enumerate(args):
            if arg in ("--target", "-t") and index + 1 < len(args):
                return str(args[index + 1])
            if arg.startswith("--target="):
                return str(arg.split("=", 1)[1])
        return self.target or ""

    def _partial_parse_cache(self, dbt_target: str) -> Any:
        import os
        from pathlib import Path

        # The folder dagster-dbt reads the project's partial_parse.msgpack from.
        target_dir = Path(self.project_dir, os.environ.get("DBT_TARGET_PATH") or "target")
        return target_dir / "floe_partial_parse" / f"{dbt_target or '_default'}.msgpack"

    def _keep_partial_parses(self) -> None:
        """Save each finished invocation's partial parse as the latest one of its ``--target``."""
        import os
        import shutil

        for invocation, cache in self._invocations:
            written = invocation.target_path / "partial_parse.msgpack"
            if invocation.process.poll() is None or not written.exists():
                continue
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            shutil.copyfile(written, partial)
            os.replace(partial, cache)  # atomic: concurrent runs never read half a file
        self._invocations.clear()

    @staticmethod
    def _skip_garbage_collection_at_exit() -> None:
        """Freeze every object at interpreter exit, so the final collection has nothing to scan.

        Only objects in reference cycles are left to the OS instead of being finalised, and
        Python never promised to finalise those at exit; objects freed by reference counting,
        and atexit handlers registered before this one (logging's flush), still run.
        """
        import atexit
        import gc

        atexit.unregister(gc.freeze)  # once per process, however many steps set the resource up
        atexit.register(gc.freeze)
