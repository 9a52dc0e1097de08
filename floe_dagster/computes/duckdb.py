"""DuckDB: the reference compute plugin and the embedded default (dbt-duckdb target).

Catalogs become DuckDB databases named after the catalog (see ``get_catalog_attachment_sql``):

- an **Iceberg REST** catalog (``rest``, ``polaris``) is attached natively by DuckDB's iceberg
  extension: ``CREATE OR REPLACE TEMPORARY SECRET`` (``TYPE iceberg`` with the catalog's OAuth2
  client id/secret, token endpoint and scope) and ``ATTACH '<warehouse>' AS <catalog> (TYPE
  iceberg, ENDPOINT '<uri>', SECRET ...)``. Endpoint and credentials come from the catalog
  plugin (``RestCatalogPlugin.iceberg_rest_endpoint``), never from the compute's config. These
  statements carry the client secret by necessity: nothing logs them, and errors raised while
  running them go through :func:`redact_sql` / :func:`scrub_secrets` first.
- any other catalog (the local SQL catalog) becomes an in-memory database of views over
  ``iceberg_scan`` of each table's current metadata file.

Connection check (``validate_connection``), what dbt-duckdb will do, without writing anything:
the database file is opened read-only when it exists; when it does not, floe checks that its
folder exists or can be created and is writable (the file is created by the first dbt run, not
by a check) and uses an in-memory database. Then the extensions are loaded from the offline
folder, ``threads``, ``memory_limit`` (also compared with this machine's memory: DuckDB accepts
any size, and a limit above what the machine has is never reached before the process is killed)
and each of ``settings`` are applied with ``SET``, and every ``attach`` file is attached read-only
(a missing file must be creatable, and a ``read_only`` attachment must exist). Each failure is a
failed result naming the field (``settings.<key>``, ``attach[<i>]`` ...).

Credentials never go in ``settings``: profiles.yml holds them in clear text. A setting whose
name looks like a credential (``s3_secret_access_key``, ``..._token``, ``..._password`` ...) is
rejected; DuckDB's httpfs reads ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN`` from the environment of the dbt process, and catalogs bring their own
credentials (``get_catalog_attachment_sql``).

Timeouts: DuckDB has no statement timeout setting, so floe does not pretend to set one.
``timeout_seconds`` bounds floe's own connection check (``validate_connection``: open, load the
extensions, ``SELECT 1``), enforced with DuckDB's interrupt; dbt queries on this compute are not
interrupted (bound a whole run with Dagster's ``dagster/max_runtime`` run tag, which the run
monitoring daemon enforces).
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
import time
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import duckdb
from pydantic import Field, ValidationInfo, field_validator

from floe_dagster.computes.duckdb_extensions import (
    available_extensions,
    connection_config,
    extension_directory,
    extension_installed,
    prepare_extension_directory,
    shared_extension_directory,
)
from floe_dagster.computes.duckdb_lock import wait_for_file_lock
from floe_dagster.core.compat import close_dbt_duckdb_environment
from floe_dagster.core.paths import resolve_local_path
from floe_dagster.plugins.azure import blob_path
from floe_dagster.plugins.base import PluginConfig, located_error
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.compute import (
    ComputePlugin,
    ConnectionResult,
    DbtProfileContext,
    ResourceSpec,
    pick_preset,
    secret_like_keys,
)

if TYPE_CHECKING:
    from floe_dagster.catalogs.rest import IcebergRestEndpoint

__all__ = [
    "DuckDBAttachment",
    "DuckDBComputePlugin",
    "DuckDBConfig",
    "redact_sql",
    "scrub_secrets",
]

MEMORY_LIMIT = re.compile(r"^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)
# DuckDB's units: KB/MB/... are powers of 1000, KiB/MiB/... powers of 1024.
MEMORY_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DBT_PLUGIN_MODULE = "floe_dagster.transforms.dbt_duckdb_plugin"
DBT_PLUGIN_ALIAS = "floe"

PRESETS: dict[str, ResourceSpec] = {
    "small": ResourceSpec("500m", "1", "1Gi", "2Gi"),
    "medium": ResourceSpec("1", "2", "4Gi", "8Gi"),
    "large": ResourceSpec("2", "4", "8Gi", "16Gi"),
}


class DuckDBAttachment(PluginConfig):
    path: str
    alias: str
    read_only: bool = True

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        return resolve_local_path(value, info)


class DuckDBConfig(PluginConfig):
    path: str = Field(".floe/duckdb/lakehouse.duckdb", description="Database file, or ':memory:'.")
    threads: int | None = Field(None, ge=1, description="Worker threads (DuckDB's default: all cores).")
    memory_limit: str | None = Field(None, description="e.g. '4GB' or '512MB'.")
    extensions: list[str] = Field(default_factory=lambda: ["iceberg"], description="Loaded offline.")
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    attach: list[DuckDBAttachment] = Field(default_factory=list)
    timeout_seconds: int | None = Field(
        None,
        ge=1,
        description=(
            "Longest floe's connection check may take (open, load extensions, SELECT 1), enforced"
            " with DuckDB's interrupt. DuckDB has no statement timeout: dbt queries are not bounded"
            " by it (use Dagster's dagster/max_runtime run tag for a whole run)."
        ),
    )
    dbt_threads: int = Field(1, ge=1, description="dbt's own thread count for this target.")
    lock_wait_seconds: float = Field(
        60,
        ge=0,
        le=86400,
        description=(
            "How long dbt waits, before it starts, for another process (another Dagster instance's"
            " run) to release the database file's write lock; then it fails naming that process."
        ),
    )

    @field_validator("path")
    @classmethod
    def _resolve_path(cls, value: str, info: ValidationInfo) -> str:
        return resolve_local_path(value, info)

    @field_validator("memory_limit")
    @classmethod
    def _check_memory_limit(cls, value: str | None) -> str | None:
        if value is not None and not MEMORY_LIMIT.match(value.strip()):
            raise ValueError(f"'{value}' is not a memory size; write it like '4GB' or '512MB'")
        return value

    @field_validator("settings")
    @classmethod
    def _check_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not SETTING_NAME.match(key):
                raise located_error(
                    "DuckDBConfig", (key,), f"'{key}' is not a DuckDB setting name (letters, digits, _)"
                )
        for key in secret_like_keys(value):
            raise located_error(
                "DuckDBConfig",
                (key,),
                f"'{key}' holds a credential, and settings are written to profiles.yml in clear text;"
                " remove it: for S3 give the dbt process AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /"
                " AWS_SESSION_TOKEN (DuckDB's httpfs reads them from the environment), for a catalog"
                " use the catalog's own credentials (client_secret: ${env:NAME})",
                "secret_in_settings",
            )
        return value

    @field_validator("extensions")
    @classmethod
    def _check_extensions(cls, value: list[str]) -> list[str]:
        unknown = [e for e in value if not extension_installed(e)]
        if unknown:
            known = available_extensions()  # a scan of every installed module: only for the error
            raise ValueError(
                f"unknown DuckDB extension(s) {unknown}; installed offline extensions: {known}"
                " (add the matching duckdb-extension-<name> package)"
            )
        return value


class DuckDBComputePlugin(ComputePlugin):
    type_name: ClassVar[str] = "duckdb"
    config_model = DuckDBConfig
    dbt_adapter_type = "duckdb"

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        assert isinstance(config, DuckDBConfig)
        if config.path != ":memory:":
            Path(config.path).parent.mkdir(parents=True, exist_ok=True)
        extension_dir = extension_directory(Path(context.state_dir) / "duckdb_extensions")
        external_root = Path(context.state_dir) / "dbt_external" / context.compute_name
        external_root.mkdir(parents=True, exist_ok=True)
        settings: dict[str, Any] = dict(config.settings)
        if config.memory_limit:
            settings["memory_limit"] = config.memory_limit
        if config.threads:
            settings["threads"] = config.threads
        output: dict[str, Any] = {
            "type": "duckdb",
            "path": config.path,
            "threads": config.dbt_threads,
            "extensions": list(config.extensions),
            "config_options": {
                "extension_directory": str(extension_dir),
                "autoinstall_known_extensions": False,
            },
            "external_root": str(external_root),
            "plugins": [
                {
                    "module": DBT_PLUGIN_MODULE,
                    "alias": DBT_PLUGIN_ALIAS,
                    "config": {
                        "manifest": context.manifest_path,
                        "environment": context.environment,
                        "compute": context.compute_name,
                        "catalogs": list(context.catalogs),
                        "write_catalog": context.write_catalog or "",
                    },
                }
            ],
        }
        if settings:
            output["settings"] = settings
        if config.attach:
            output["attach"] = [
                {"path": a.path, "alias": a.alias, "read_only": a.read_only} for a in config.attach
            ]
        return output

    def prepare_dbt_run(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, str]:
        """Wait (bounded, logged) for another process's write lock on the file to go away; fail
        naming that process otherwise (computes/duckdb_lock.py)."""
        assert isinstance(config, DuckDBConfig)
        if config.path != ":memory:":
            wait_for_file_lock(config.path, config.lock_wait_seconds, context.compute_name)
        return {}

    def max_concurrency(self, config: PluginConfig) -> int | None:
        assert isinstance(config, DuckDBConfig)
        return None if config.path == ":memory:" else 1  # DuckDB allows one writer per file

    def runs_dbt_in_process(self, config: PluginConfig) -> bool:
        """dbt-duckdb keeps nothing running between invocations but its open database (released below)."""
        return True

    def release_dbt_in_process(self, config: PluginConfig) -> None:
        """Close the database dbt-duckdb keeps open for the next invocation in the process.

        dbt-duckdb holds its last environment (and so the DuckDB file's write lock) in a class
        attribute until the process exits; another process could not write the file meanwhile.
        """
        close_dbt_duckdb_environment()  # a private attribute of dbt-duckdb: core/compat.py

    def get_required_dbt_packages(self) -> list[str]:
        return ["dbt-duckdb>=1.11,<1.12"]

    def validate_connection(self, config: PluginConfig) -> ConnectionResult:
        """Check what dbt-duckdb will do with this config, without creating or changing a file.

        See the module docstring for the steps; a failure names the field it comes from. With
        ``timeout_seconds``, a check still running after that long is interrupted and fails
        naming the field; without it, it may take as long as the extensions take to load.
        """
        assert isinstance(config, DuckDBConfig)
        checked = config
        started = time.perf_counter()
        outcome: dict[str, Any] = {}
        opened: list[duckdb.DuckDBPyConnection] = []

        def check() -> None:
            try:
                outcome["opened"] = run_connection_check(checked, check_extension_dir(), opened)
            except CheckFailed as exc:
                outcome["error"] = f"{exc.field}: {exc.detail}"
            except Exception as exc:
                outcome["error"] = one_line(exc)

        worker = threading.Thread(target=check, name="floe-duckdb-validate", daemon=True)
        worker.start()
        worker.join(config.timeout_seconds)
        if worker.is_alive():
            for con in opened:
                con.interrupt()  # DuckDB's own cancellation of the running query
            worker.join(5)
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            return ConnectionResult(
                "failed",
                elapsed,
                f"duckdb '{config.path}': no answer within timeout_seconds={config.timeout_seconds}"
                " (connection check interrupted)",
            )
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        if "error" in outcome:
            return ConnectionResult("failed", elapsed, f"duckdb '{config.path}': {outcome['error']}")
        if outcome["opened"] == ":memory:" and config.path != ":memory:":
            note = (
                f"duckdb {config.path}: not created yet (its folder is writable); the rest checked in memory"
            )
        else:
            note = f"duckdb {config.path} answered"
        return ConnectionResult("ok", elapsed, note)

    def get_resource_requirements(self, workload_size: str) -> ResourceSpec:
        return pick_preset(PRESETS, workload_size, self.type_name)

    def get_catalog_attachment_sql(self, catalog: CatalogPlugin) -> list[str] | None:
        """SQL that makes ``catalog`` the DuckDB database ``<catalog>`` (tables: catalog.namespace.table).

        An Iceberg REST catalog is attached natively (see :func:`rest_attachment_sql`; the
        statements contain its client secret: never log them, pass errors through
        :func:`scrub_secrets`). Any other catalog is listed through its plugin: DuckDB has no
        native attachment for a PyIceberg SQL catalog, so the catalog becomes an in-memory
        database of views pinned to each table's current metadata file.
        """
        endpoint = getattr(catalog, "iceberg_rest_endpoint", None)
        if callable(endpoint):
            return rest_attachment_sql(catalog.name, endpoint())
        statements = [f"ATTACH IF NOT EXISTS ':memory:' AS {quote(catalog.name)}"]
        storage = getattr(catalog, "duckdb_storage_sql", None)  # a warehouse's storage secret (ADLS)
        if callable(storage):
            statements += storage()
        for namespace in catalog.list_namespaces():
            schema = ".".join(namespace)
            statements.append(f"CREATE SCHEMA IF NOT EXISTS {quote(catalog.name)}.{quote(schema)}")
            for identifier in catalog.list_tables(namespace):
                table = catalog.load_table(identifier)
                if table.current_snapshot() is None:
                    continue  # iceberg_scan cannot read a table that has never been written
                metadata = table.metadata_location.removeprefix("file://")
                statements.append(
                    f"CREATE OR REPLACE VIEW {quote(catalog.name)}.{quote(schema)}.{quote(identifier[-1])}"
                    f" AS SELECT * FROM iceberg_scan({iceberg_scan_arguments(metadata, table.location())})"
                )
        return statements


def iceberg_scan_arguments(metadata: str, table_location: str) -> str:
    """``iceberg_scan``'s arguments for a table's current metadata file.

    A table on ADLS (``abfss://``) is read through the Blob endpoint (``az://``, see
    ``plugins.azure.blob_path``): its metadata still names ``abfss://`` files, so the table's
    root is given in ``az://`` form with ``allow_moved_paths`` (DuckDB re-roots every file under
    it) and the metadata file as ``version``."""
    root = blob_path(table_location)
    name = metadata.rsplit("/", 1)[-1]
    if root is None or not blob_path(metadata) or not name.endswith(".metadata.json") or ".gz." in name:
        return literal(metadata)
    version = name.removesuffix(".metadata.json")
    return f"{literal(root)}, allow_moved_paths = true, version = {literal(version)}"


PROBE_SQL = "SELECT 1"


class CheckFailed(Exception):
    """One step of the DuckDB connection check failed; ``field`` is the config field it checks."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


_extension_dir_lock = threading.Lock()


@cache
def check_extension_dir() -> Path:
    """An offline extension folder for connection checks: the shared one, or one per process."""
    shared = shared_extension_directory()
    if shared is not None:
        return shared
    folder = Path(tempfile.mkdtemp(prefix="floe-duckdb-check-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def run_connection_check(
    config: DuckDBConfig, extension_dir: Path, opened: list[duckdb.DuckDBPyConnection]
) -> str:
    """Open, load, apply and attach as dbt-duckdb would; raise :class:`CheckFailed` at the first problem.

    ``opened`` receives the connection as soon as it exists (so a timeout can interrupt it).
    Returns the database that was opened (``:memory:`` for a file not created yet).
    """
    database, read_only = database_to_check(config.path)
    try:
        with _extension_dir_lock:
            wanted = prepare_extension_directory(extension_dir, config.extensions)
    except Exception as exc:
        raise CheckFailed("extensions", one_line(exc)) from None
    try:
        con = duckdb.connect(database, read_only=read_only, config=connection_config(extension_dir))  # type: ignore[arg-type]
    except Exception as exc:
        raise CheckFailed("path", one_line(exc)) from None
    opened.append(con)
    try:
        for name in wanted:
            run_step(con, "extensions", f"LOAD {name}")
        if config.threads:
            run_step(con, "threads", f"SET threads = {config.threads}")
        if config.memory_limit:
            check_memory_limit(config.memory_limit)
            run_step(con, "memory_limit", f"SET memory_limit = {literal(config.memory_limit)}")
        for key, value in config.settings.items():
            run_step(con, f"settings.{key}", f"SET {key} = {literal(str(value))}")  # as dbt-duckdb does
        for index, attachment in enumerate(config.attach):
            check_attachment(con, index, attachment)
        con.execute(PROBE_SQL).fetchall()
    finally:
        con.close()
    return database


def run_step(con: duckdb.DuckDBPyConnection, field: str, statement: str) -> None:
    try:
        con.execute(statement)
    except duckdb.InterruptException:
        raise
    except duckdb.Error as exc:
        raise CheckFailed(field, one_line(exc)) from None


def has_scheme(path: str) -> bool:
    """A DuckDB path such as ``md:db`` or ``s3://bucket/db.duckdb`` (not a local file)."""
    head = path.split(":", 1)[0]
    return ":" in path and len(head) > 1 and "/" not in head


def database_to_check(path: str) -> tuple[str, bool]:
    """(database to open, read_only): the file itself when it exists, else ``:memory:`` once its
    folder is known to be creatable and writable (a check never creates the file)."""
    if path == ":memory:":
        return path, False
    if Path(path).exists() or has_scheme(path):
        return path, True
    problem = folder_problem(Path(path))
    if problem:
        raise CheckFailed("path", problem)
    return ":memory:", False


def folder_problem(path: Path) -> str | None:
    """Why ``path`` (a file that does not exist yet) could not be created, or None."""
    folder = path.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create {path}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "folder" if existing == folder else f"folder {folder} cannot be created: its parent"
        return f"cannot create {path}: {what} {existing} is not writable"
    return None


def memory_limit_bytes(value: str) -> int:
    match = MEMORY_LIMIT.match(value.strip())
    assert match is not None  # checked by the config model
    return int(float(match.group(1)) * MEMORY_UNITS[match.group(2).upper()])


def machine_memory_bytes() -> int | None:
    """Physical memory, or the cgroup's limit when lower (the process's own ceiling); None if unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def check_memory_limit(value: str) -> None:
    available = machine_memory_bytes()
    if available is not None and memory_limit_bytes(value) > available:
        raise CheckFailed(
            "memory_limit",
            f"{value} is more than this machine's memory ({available / 2**30:.1f} GiB): DuckDB accepts it"
            " but the process would be killed before reaching it; set a size DuckDB can keep to,"
            f" e.g. '{int(available * 0.8 / 10**9) or 1}GB'",
        )


def check_attachment(con: duckdb.DuckDBPyConnection, index: int, attachment: DuckDBAttachment) -> None:
    """Attach the file read-only (never written by a check); a missing file must be creatable."""
    field = f"attach[{index}] ({attachment.alias})"
    path = Path(attachment.path)
    if path.exists():
        run_step(
            con,
            field,
            f"ATTACH IF NOT EXISTS {literal(attachment.path)} AS {quote(attachment.alias)} (READ_ONLY)",
        )
        return
    if attachment.read_only:
        raise CheckFailed(
            field,
            f"{attachment.path} does not exist; a read_only attachment needs an existing DuckDB file"
            " (build it first, or set read_only: false to let dbt create it)",
        )
    problem = folder_problem(path)
    if problem:
        raise CheckFailed(field, problem)


# Options of DuckDB's CREATE SECRET whose values are secrets (TYPE iceberg / s3 ...).
SECRET_OPTIONS = ("CLIENT_SECRET", "TOKEN", "SECRET", "SESSION_TOKEN", "CONNECTION_STRING")
_SECRET_VALUE = re.compile(r"\b(" + "|".join(SECRET_OPTIONS) + r")(\s+)'((?:[^']|'')*)'", re.IGNORECASE)
REDACTED = "**********"


def secret_name(catalog_name: str) -> str:
    return f"floe_catalog_{re.sub(r'[^A-Za-z0-9_]', '_', catalog_name)}"


def rest_attachment_sql(name: str, endpoint: IcebergRestEndpoint) -> list[str]:
    """``CREATE SECRET``, a name-clash guard, then ``ATTACH (TYPE iceberg, ... READ_ONLY)`` of a REST catalog.

    The secret is TEMPORARY (this connection's memory only, never written to disk) and created
    with ``OR REPLACE`` and the attachment with ``IF NOT EXISTS``, so a connection configured
    twice stays valid. DuckDB fetches the OAuth2 token when the secret is created. Without
    client credentials the catalog is attached with ``AUTHORIZATION_TYPE 'none'``.
    """
    statements: list[str] = []
    options = [f"TYPE iceberg, ENDPOINT {literal(endpoint.uri)}"]
    if endpoint.has_credentials:
        assert endpoint.client_id is not None and endpoint.client_secret is not None
        assert endpoint.oauth2_server_uri is not None
        secret = secret_name(name)
        statements.append(
            f"CREATE OR REPLACE TEMPORARY SECRET {quote(secret)} (TYPE iceberg,"
            f" CLIENT_ID {literal(endpoint.client_id)},"
            f" CLIENT_SECRET {literal(endpoint.client_secret.get_secret_value())},"
            f" OAUTH2_SERVER_URI {literal(endpoint.oauth2_server_uri)},"
            f" OAUTH2_SCOPE {literal(endpoint.scope)})"
        )
        options.append(f"SECRET {quote(secret)}")
    else:
        options.append("AUTHORIZATION_TYPE 'none'")
    mode = "vended_credentials" if endpoint.vended_credentials else "none"
    options.append(f"ACCESS_DELEGATION_MODE '{mode}'")
    # sources are read-only: floe commits model outputs through PyIceberg, never through DuckDB
    options.append("READ_ONLY")
    # IF NOT EXISTS keeps a database of the same name (e.g. the compute's own lakehouse.duckdb):
    # fail clearly instead of reading the wrong database.
    clash = (
        f"catalog '{name}' cannot be attached: a DuckDB database named '{name}' is already attached"
        " (the compute's own file?); rename one of them"
    )
    statements.append(
        "SELECT CASE WHEN (SELECT type FROM duckdb_databases() WHERE database_name ="
        f" {literal(name)}) <> 'iceberg' THEN error({literal(clash)}) END"
    )
    # (checked before the READ_ONLY attach, which would otherwise fail first with DuckDB's own message)
    statements.append(
        f"ATTACH IF NOT EXISTS {literal(endpoint.warehouse or '')} AS {quote(name)} ({', '.join(options)})"
    )
    return statements


def redact_sql(statement: str) -> str:
    """``statement`` with the value of every secret option (CLIENT_SECRET, TOKEN ...) masked."""
    return _SECRET_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}'{REDACTED}'", statement)


def scrub_secrets(text: str, statements: list[str]) -> str:
    """``text`` (an error message) with every secret value found in ``statements`` masked."""
    for statement in statements:
        for match in _SECRET_VALUE.finditer(statement):
            value = match.group(3).replace("''", "'")
            if value:
                text = text.replace(value, REDACTED)
    return text


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
