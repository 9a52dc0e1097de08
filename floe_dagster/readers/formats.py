"""Which reader reads a table format on DuckDB, and how a metastore recognises that format.

DuckDB's own SQL readers (Parquet, CSV, JSON, Avro, Iceberg: ``readers/duckdb_scan.py``) need
nothing here. Every other format is one module of this package with a ``READER`` object
(a :class:`FormatReader`), named in ``FORMAT_MODULES``:

* ``orc`` (``readers/orc.py``): a PyArrow dataset registered on the DuckDB connection
  (projection and filter pushdown, partition pruning);
* ``delta`` (``readers/delta.py``): DuckDB's delta extension, data version = the Delta log version;
* ``hudi`` (``readers/hudi.py``): the base files of a copy-on-write table's latest file slices
  (hudi-rs), data version = the latest completed instant.

``detect_table_format`` recognises the table formats that engines register in a Hive Metastore
or Glue under another serde (Delta, Hudi): a metastore asks it before it maps the serde.
Unsupported things raise ``NotSupportedError`` naming the table and the reason.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import os
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.table_model import ScanDescription

# format -> the module holding its reader (a new format: a new module and one line here)
FORMAT_MODULES: dict[str, str] = {
    "orc": "floe_dagster.readers.orc",
    "delta": "floe_dagster.readers.delta",
    "hudi": "floe_dagster.readers.hudi",
}
# formats whose data version comes from the table's own log (not the metastore's parameters)
LOG_VERSIONED = ("delta", "hudi")


class FormatReader:
    """How DuckDB reads one table format: a SQL relation, or a PyArrow dataset registered on it."""

    name: ClassVar[str] = ""
    duckdb_extensions: ClassVar[tuple[str, ...]] = ()

    def check(self, scan: ScanDescription) -> None:
        """Raise ``NotSupportedError`` (naming the table and why) when the scan cannot be read."""

    def relation_sql(self, scan: ScanDescription, storage: Mapping[str, str]) -> str | None:
        """A DuckDB relation for a FROM clause, or None when the format is read as Arrow."""
        return None

    def arrow_dataset(self, scan: ScanDescription, storage: Mapping[str, str]) -> Any:
        raise NotSupportedError(
            f"table {scan.table}: format {scan.format} has no Arrow reader",
            provider="duckdb",
            operation=f"read_{scan.format}",
            retryable=False,
        )

    # the folder of a table's log, for formats versioned by one (``_delta_log``, ``.hoodie``)
    log_folder: ClassVar[str | None] = None

    def version_from_keys(self, keys: Iterable[str]) -> str | None:
        """The data version from the paths of the log folder's files (None: no completed commit)."""
        return None

    def arrow_schema(self, location: str, storage: Mapping[str, str]) -> Any:
        """The table's Arrow schema (None when the format cannot tell it cheaply)."""
        return None

    def data_version(self, location: str, storage: Mapping[str, str], table: str = "") -> str:
        raise NotSupportedError(
            f"table {table}: format {self.name} keeps no log to version it",
            provider="storage",
            operation="data_version",
            retryable=False,
        )


def reader_for(fmt: str) -> FormatReader | None:
    """The reader of a format that DuckDB's SQL readers do not cover, else None."""
    module = FORMAT_MODULES.get(fmt)
    if module is None:
        return None
    reader = importlib.import_module(module).READER
    assert isinstance(reader, FormatReader)
    return reader


def log_data_version(fmt: str, location: str, storage: Mapping[str, str], table: str = "") -> str:
    """The data version of a Delta/Hudi table from its own log (one listing of the log folder)."""
    reader = reader_for(fmt)
    if reader is None:
        raise NotSupportedError(
            f"table {table}: format {fmt} is not versioned from a log",
            provider="storage",
            operation="data_version",
            retryable=False,
        )
    return reader.data_version(location, storage, table)


def detect_table_format(
    table_params: Mapping[str, str],
    serde: str | None,
    input_format: str | None,
    serde_params: Mapping[str, str],
    storage_handler: str | None = None,
) -> tuple[str, dict[str, str]] | None:
    """(format, reader options) for a Delta or Hudi table however an engine registered it, else None.

    Delta: ``spark.sql.sources.provider=delta`` (Spark, Databricks, Trino's ``DELTA``), Athena's
    ``table_type=DELTA``, Glue crawlers' ``classification=delta``, the Hive connector's
    ``io.delta.hive.DeltaStorageHandler``. Hudi: ``spark.sql.sources.provider=hudi``, Hudi's
    Hive sync input formats (``org.apache.hudi.hadoop.HoodieParquetInputFormat``,
    ``...realtime.HoodieParquetRealtimeInputFormat`` for merge-on-read views), Glue's
    ``classification=hudi``. Spark keeps a data source table's real location in the serde
    parameter ``path`` (its storage location may be a placeholder): it is passed on as ``path``.
    """
    lowered = {k.lower(): str(v).lower() for k, v in table_params.items()}
    provider = lowered.get("spark.sql.sources.provider", "")
    handler = (storage_handler or table_params.get("storage_handler") or "").lower()
    options = {"path": serde_params["path"]} if serde_params.get("path") else {}
    inputs = (input_format or "").lower()
    if (
        provider == "delta"
        or lowered.get("table_type") == "delta"
        or lowered.get("classification") == "delta"
        or "deltastoragehandler" in handler
        or "io.delta." in inputs
    ):
        return "delta", options
    if (
        provider == "hudi"
        or lowered.get("classification") == "hudi"
        or "org.apache.hudi." in inputs
        or "com.uber.hoodie." in inputs
    ):
        if "realtime" in inputs:
            options["hudi_query_type"] = "realtime"
        return "hudi", options
    return None


def create_view(
    con: Any,
    view: str,
    scan: ScanDescription,
    schema: str | None,
    database: str | None,
    storage: Mapping[str, str],
    registered: MutableMapping[str, Any],
) -> str:
    """``CREATE OR REPLACE VIEW`` over ``scan`` in any readable format; returns the SQL.

    A format read as Arrow is registered on ``con`` under a name kept in ``registered``; a
    DuckDB cursor made later from ``con`` must register it again (dbt-duckdb's
    ``configure_cursor``: ``register_all``), since registrations belong to one connection.
    """
    # lazy: duckdb_scan imports this module (one SQL path for the formats DuckDB reads itself)
    from floe_dagster.readers.duckdb_scan import create_view as sql_view
    from floe_dagster.readers.duckdb_scan import quote_ident, required_extensions, store_extension

    reader = reader_for(scan.format)
    relation = iceberg_as_of_sql(scan)
    if reader is None and relation is None:
        load_extensions(con, required_extensions(scan))  # e.g. avro: not among the compute's own
        return sql_view(con, view, scan, schema, database)
    if reader is None:
        load_extensions(con, required_extensions(scan))
    else:
        reader.check(scan)
        scheme = urlsplit(scan.options.get("path") or scan.location).scheme
        store = (store_extension(scheme),) if scheme not in ("", "file") else ()  # httpfs, azure
        load_extensions(con, (*reader.duckdb_extensions, *store))
        relation = reader.relation_sql(scan, storage)
    if relation is None and reader is not None:
        name = "__floe_" + hashlib.sha256(f"{database}.{schema}.{view}".encode()).hexdigest()[:16]
        registered[name] = reader.arrow_dataset(scan, storage)
        con.register(name, registered[name])
        relation = quote_ident(name)
    qualifier = ".".join(quote_ident(part) for part in (database, schema) if part is not None)
    target = f"{qualifier}.{quote_ident(view)}" if qualifier else quote_ident(view)
    if schema is not None:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {qualifier}")
    sql = f"CREATE OR REPLACE VIEW {target} AS SELECT * FROM {relation}"
    con.execute(sql)
    return sql


AS_OF_VAR = "floe_as_of"  # dbt var: {"<source name>.<table name>" or a source unique_id: version}


def dbt_var_pins() -> Mapping[str, Any]:
    """The ``floe_as_of`` dbt var of the running dbt invocation (``--vars``), or {} outside one."""
    try:
        # lazy: dbt's flags exist only inside a dbt invocation (the dbt-duckdb plugin's process)
        from floe_dagster.core.compat import dbt_invocation_flag

        variables = dbt_invocation_flag("VARS") or {}
    except Exception:
        return {}
    pins = variables.get(AS_OF_VAR) if isinstance(variables, Mapping) else None
    return pins if isinstance(pins, Mapping) else {}


def source_as_of(dbt_manifest: Mapping[str, Any], unique_id: str) -> str | None:
    """The version a dbt source pins: ``meta: {floe: {as_of: ...}}`` on the table or its source,
    else the ``floe_as_of`` dbt var (``--vars '{floe_as_of: {lake.orders: 41}}'``)."""
    node = (dbt_manifest.get("sources") or {}).get(unique_id) or {}
    pins = dbt_var_pins()
    by_name = f"{node.get('source_name')}.{node.get('name')}"
    var_value = pins.get(unique_id, pins.get(by_name))
    floe = {
        **((node.get("source_meta") or {}).get("floe") or {}),
        **((node.get("meta") or {}).get("floe") or {}),
    }
    value = floe.get("as_of", var_value)
    return None if value is None else str(value)


# Set by a Dagster run with ``transforms.read_sources_at: observed``: JSON {dbt source unique_id:
# the data version of the source's latest observation}. Read by the views of that run's dbt.
PINS_ENV = "FLOE_SOURCE_PINS"
# Where the views write {dbt source unique_id: the version they read} (JSON), for the run's metadata.
VERSIONS_FILE_ENV = "FLOE_SOURCE_VERSIONS_FILE"
VERSIONED = ("iceberg", *LOG_VERSIONED)


def observed_version(fmt: str, data_version: str) -> str | None:
    """The version to read for an observed data version, or None when it names none: Delta log
    versions and Hudi instants as observed (a ``delta:``/``hudi:`` prefix is dropped),
    Iceberg snapshot ids (not ``metadata:`` digests or the no-snapshot marker)."""
    value = data_version.split(":", 1)[1] if data_version.startswith(f"{fmt}:") else data_version
    return value if value.isdigit() else None


def pinned(result: Any, dbt_manifest: Mapping[str, Any], unique_id: str) -> Any:
    """``result`` (a scan, or the error describing it gave) read at the version its dbt source pins
    (``meta.floe.as_of``), else at its observed version when the run reads sources as observed
    (``PINS_ENV``).

    A pin on a format that keeps no versions (Parquet, ORC, ... files) is a ``NotSupportedError``
    naming the table: reading the current files instead would be a silent guess. An observed
    version only pins the formats that have versions; the others are read as they are.
    """
    as_of = source_as_of(dbt_manifest, unique_id)
    if as_of is None and isinstance(result, ScanDescription) and result.format in VERSIONED:
        observed = json.loads(os.environ.get(PINS_ENV) or "{}").get(unique_id)
        as_of = observed_version(result.format, str(observed)) if observed is not None else None
    if as_of is None or not isinstance(result, ScanDescription):
        return result
    if result.format not in ("iceberg", *LOG_VERSIONED):
        return NotSupportedError(
            f"table {result.table}: dbt source {unique_id} pins as_of {as_of!r}, but {result.format}"
            " files keep no versions to read; only Iceberg, Delta and Hudi tables have versions",
            provider="duckdb",
            operation="time_travel",
            retryable=False,
        )
    return dataclasses.replace(result, options={**result.options, "as_of": as_of})


def iceberg_as_of_sql(scan: ScanDescription) -> str | None:
    """``iceberg_scan`` of ``scan`` at its pinned snapshot id (or timestamp), or None without a pin."""
    as_of = scan.options.get("as_of")
    if scan.format != "iceberg" or as_of is None or not scan.metadata_location:
        return None
    # lazy: duckdb_scan imports this module
    from floe_dagster.readers.duckdb_scan import duckdb_path, quote_literal

    path = quote_literal(duckdb_path(scan.metadata_location, scan.table))
    if as_of.isdigit():
        return f"iceberg_scan({path}, snapshot_from_id => {int(as_of)})"
    return f"iceberg_scan({path}, snapshot_from_timestamp => CAST({quote_literal(as_of)} AS TIMESTAMP))"


def pin_current(scan: ScanDescription, storage: Mapping[str, str]) -> tuple[ScanDescription, str | None]:
    """(the scan pinned to the version it reads, that version): a pinned scan as it is; a Delta or
    Hudi scan pinned to the table's current version (so a commit between now and the query is not
    read); an Iceberg scan's metadata file is one snapshot already (its current one); other
    formats have no version (None)."""
    if scan.options.get("as_of") is not None:
        return scan, str(scan.options["as_of"])
    if scan.format in LOG_VERSIONED:
        reader = reader_for(scan.format)
        assert reader is not None
        version = reader.data_version(scan.options.get("path") or scan.location, storage, scan.table)
        return dataclasses.replace(scan, options={**scan.options, "as_of": version}), version
    if scan.format == "iceberg" and scan.metadata_location:
        from pyiceberg.io import load_file_io
        from pyiceberg.serializers import FromInputFile

        try:
            io = load_file_io(dict(storage), scan.metadata_location)
            snapshot = FromInputFile.table_metadata(io.new_input(scan.metadata_location)).current_snapshot_id
        except Exception:  # the view still reads it (DuckDB's own credentials); no version recorded
            return scan, None
        return scan, None if snapshot is None else str(snapshot)
    return scan, None


def write_versions_read(versions: Mapping[str, str]) -> None:
    """Write {dbt source unique_id: version read} where the run asked for it (``VERSIONS_FILE_ENV``)."""
    target = os.environ.get(VERSIONS_FILE_ENV)
    if target:
        with open(target, "w", encoding="utf-8") as handle:
            json.dump(dict(versions), handle)


def check_readable(scan: ScanDescription) -> None:
    """Raise the ``NotSupportedError`` that reading ``scan`` on DuckDB would give, if any."""
    reader = reader_for(scan.format)
    if reader is None:
        # lazy: duckdb_scan imports this module
        from floe_dagster.readers.duckdb_scan import relation_sql

        relation_sql(scan)
    else:
        reader.check(scan)


def needs_storage(scan: ScanDescription) -> bool:
    """Whether reading ``scan`` needs the storage properties (a format read in Python)."""
    return reader_for(scan.format) is not None


def storage_properties(credentials: Any) -> dict[str, str]:
    """PyIceberg-style ``s3.*`` properties of a metastore's credentials (hold secrets: never log)."""
    for name in ("storage_properties", "file_io_properties"):
        method = getattr(credentials, name, None)
        if callable(method):
            return {str(k): str(v) for k, v in method().items()}
    return {}


def register_all(con: Any, registered: Mapping[str, Any]) -> None:
    """Register the Arrow datasets of the views on another connection or cursor."""
    for name, dataset in registered.items():
        con.register(name, dataset)


def load_extensions(con: Any, names: tuple[str, ...]) -> None:
    """Install (offline, from the ``duckdb-extension-*`` packages) and load ``names`` on ``con``."""
    if not names:
        return
    from pathlib import Path

    # lazy: computes and readers are siblings; only formats with an extension need it
    from floe_dagster.computes.duckdb_extensions import prepare_extension_directory

    row = con.execute("SELECT current_setting('extension_directory')").fetchone()
    folder = Path(row[0]) if row and row[0] else None
    if folder is None:
        # lazy: the default offline folder of floe's own scans
        from floe_dagster.readers.duckdb_scan import default_extension_dir

        folder = default_extension_dir()
        con.execute(f"SET extension_directory = '{folder}'")
    for name in prepare_extension_directory(folder, names):
        con.load_extension(name)
