"""DuckDB SQL that reads a metastore table through its storage location.

``relation_sql(scan)`` turns a ``ScanDescription`` (plugins/metastore.py) into a relation for a
``FROM`` clause: ``read_parquet`` / ``read_csv`` / ``read_json`` / ``read_avro`` over the table's
files, or ``iceberg_scan`` of its metadata file. Partitioned tables:

* every partition (``scan.partitions is None``): one glob per partition level under the
  location, with ``hive_partitioning`` and the partition columns typed from the partition spec;
* the partitions the metastore registers (``scan.partitions``, pruned by the connector or
  not): only those partitions' registered folders are read, never a folder nobody registered,
  and DuckDB never opens a file of a partition a filter rules out. Folders named ``k=v`` are
  read by one reader with ``hive_partitioning``; partitions registered elsewhere (outside the
  table folder) one by one with their registered values as constant columns (``UNION ALL BY
  NAME``, a filter on them folds to a constant); no partition left gives an empty relation with
  the table's columns. ``partitions_with_files`` drops registered partitions with no file.

Hidden files (``_SUCCESS``, ``.crc``) are skipped by the glob ``[!_.]*``. ORC has no reader in
DuckDB and an HDFS location none either: both raise ``NotSupportedError``.
``create_view`` registers a scan as a view, which is how a dbt source backed by a metastore
table becomes readable on DuckDB (``computes/dbt_duckdb_plugin.py``); ``storage_secret_sql``
gives DuckDB the credentials the metastore's chokepoint resolved (scoped to the tables'
buckets), and ``scan_connection`` opens a connection ready to run a scan.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from floe_dagster.computes.duckdb_extensions import connect_with_extensions, extension_directory
from floe_dagster.core.errors import NotSupportedError
from floe_dagster.plugins.locations import reader_path
from floe_dagster.plugins.table_model import Column, Partition, ScanDescription
from floe_dagster.readers.stores import azure, gcs, s3

PROVIDER = "duckdb"
FILES = "[!_.]*"  # data files only: not _SUCCESS, _committed_*, .crc, ...
EXTENSIONS = {"iceberg": ("avro", "iceberg"), "avro": ("avro",)}
REMOTE_SCHEMES = (*s3.SCHEMES, *gcs.SCHEMES, *azure.SCHEMES, "http", "https", "r2")
S3_SCHEMES = s3.SCHEMES
AZURE_SCHEMES = azure.SCHEMES
FSSPEC_SCHEMES = gcs.SCHEMES  # read through a registered fsspec filesystem when one is given
# the DuckDB extension that reads a remote scheme (httpfs for the rest)
_STORE_EXTENSIONS = {scheme: "azure" for scheme in AZURE_SCHEMES}
_READERS = {"parquet": "read_parquet", "csv": "read_csv", "json": "read_json", "avro": "read_avro"}
_HIVE_PARTITIONING = {"parquet", "csv", "json"}

_SIMPLE_TYPES = {
    "string": "VARCHAR",
    "varchar": "VARCHAR",
    "char": "VARCHAR",
    "tinyint": "TINYINT",
    "smallint": "SMALLINT",
    "int": "INTEGER",
    "integer": "INTEGER",
    "bigint": "BIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "double precision": "DOUBLE",
    "boolean": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "binary": "BLOB",
}
# the Arrow type names an object-store source's CSV/JSON columns carry (int64, date32[day], ...)
_ARROW_TYPES = {
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "bool": "BOOLEAN",
    "large_string": "VARCHAR",
    "date32": "DATE",
}


def duckdb_type(hive_type: str) -> str:
    """The DuckDB type for a Hive (or Arrow) column type (complex types read as VARCHAR from text)."""
    text = hive_type.strip().lower()
    decimal = re.fullmatch(r"decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)", text)
    if decimal:
        return f"DECIMAL({decimal.group(1)},{decimal.group(2)})"
    if text == "decimal":
        return "DECIMAL(10,0)"
    base = re.split(r"[(\[]", text, maxsplit=1)[0].strip()
    if base == "timestamp" and "tz=" in text:  # Arrow's timestamp[us, tz=UTC]
        return "TIMESTAMPTZ"
    return _SIMPLE_TYPES.get(base, _ARROW_TYPES.get(base, "VARCHAR"))


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def duckdb_path(location: str, table: str = "") -> str:
    """A path DuckDB can open (``plugins/locations.py``): ``file:/x`` -> ``/x``; ``s3a://``,
    ``oss://``, ``cosn://`` -> ``s3://``; ``abfss://c@a.dfs...`` / ``wasbs://c@a.blob...`` -> DuckDB's
    fully qualified Azure paths; ``gs://`` as it is; HDFS/Ozone and unknown schemes are a
    ``NotSupportedError`` naming the scheme and the table."""
    return reader_path(location, table, PROVIDER, "scan")


def required_extensions(scan: ScanDescription) -> tuple[str, ...]:
    """DuckDB extensions the relation needs (load them before running it): the format's reader,
    and httpfs for files on object storage."""
    needed = EXTENSIONS.get(scan.format, ())
    scheme = urlsplit(scan.metadata_location or scan.location).scheme
    if scheme in REMOTE_SCHEMES:
        needed = (*needed, store_extension(scheme))
    return needed


def store_extension(scheme: str) -> str:
    """The DuckDB extension that reads files of a remote scheme: azure for Azure's, else httpfs."""
    return _STORE_EXTENSIONS.get(scheme, "httpfs")


def storage_secret_sql(credentials: Any, name: str, scans: Iterable[ScanDescription]) -> str | None:
    """The DuckDB secret for the S3 (or Azure) files of ``scans``, scoped to their buckets, or None.

    ``credentials`` are a connector's (``connector.credentials``, from the metastore chokepoint);
    only credentials that can make a DuckDB secret (AWS) give one. The statement holds the
    secret: run it, never log it.
    """
    make = getattr(credentials, "duckdb_secret_sql", None)
    # the schemes the credentials serve: S3's (scoped as s3://bucket), or their own (Azure's az://)
    schemes = tuple(getattr(credentials, "duckdb_schemes", S3_SCHEMES))
    buckets = sorted(
        {
            _scope(duckdb_path(location, scan.table))
            for scan in scans
            for location in (scan.location, scan.metadata_location)
            if location and urlsplit(location).scheme in schemes
        }
    )
    if make is None or not buckets:
        return None
    made = make(name, scopes=buckets)
    return str(made) if made else None


def _scope(path: str) -> str:
    """The secret scope of a DuckDB path: its bucket or container (``s3://b``, ``az://c``)."""
    parts = urlsplit(path)
    return f"{parts.scheme}://{parts.netloc}"


def storage_filesystem(credentials: Any, scans: Iterable[ScanDescription]) -> Any:
    """An fsspec filesystem for DuckDB to register where no DuckDB extension serves the
    credentials (GCS without HMAC keys: gcsfs), or None."""
    make = getattr(credentials, "duckdb_filesystem", None)
    if make is None or not any(
        urlsplit(location).scheme in FSSPEC_SCHEMES
        for scan in scans
        for location in (scan.location, scan.metadata_location)
        if location
    ):
        return None
    try:
        return make()
    except ImportError:  # gcsfs not installed (the gcs extra): DuckDB's httpfs alone
        return None


def default_extension_dir() -> Path:
    import duckdb

    return extension_directory(Path(tempfile.gettempdir()) / "floe-duckdb-extensions" / duckdb.__version__)


def scan_connection(
    scans: Sequence[ScanDescription], credentials: Any = None, extension_dir: Path | None = None
) -> Any:
    """An in-memory DuckDB connection with what ``scans`` need loaded (offline) and their secret set."""

    names = {name for scan in scans for name in required_extensions(scan)}
    filesystem = storage_filesystem(credentials, scans)
    if filesystem is not None and all(
        urlsplit(scan.metadata_location or scan.location).scheme in FSSPEC_SCHEMES for scan in scans
    ):
        names.discard("httpfs")  # gs:// goes to the registered filesystem, not to httpfs
    con = connect_with_extensions(":memory:", extension_dir or default_extension_dir(), sorted(names))
    if filesystem is not None:
        con.register_filesystem(filesystem)
    secret = storage_secret_sql(credentials, "floe_scan", scans)
    if secret is not None:
        con.execute(secret)
    return con


def relation_sql(scan: ScanDescription) -> str:
    """A DuckDB relation (for a FROM clause) reading ``scan``."""
    if scan.format == "iceberg":
        if not scan.metadata_location:
            raise NotSupportedError(
                f"table {scan.table}: an Iceberg scan needs the metadata location",
                provider=PROVIDER,
                operation="scan",
            )
        return f"iceberg_scan({quote_literal(duckdb_path(scan.metadata_location, scan.table))})"
    if scan.format not in _READERS:
        raise NotSupportedError(
            f"table {scan.table}: DuckDB has no reader for format {scan.format!r}"
            f" (readable: {', '.join(sorted([*_READERS, 'iceberg']))})",
            provider=PROVIDER,
            operation=f"read_{scan.format}",
            retryable=False,
        )
    location = duckdb_path(scan.location, scan.table)
    keys = scan.partition_columns
    if not keys:
        # a location that is a glob already (an S3 prefix metastore's ``prefix/*.parquet``) is the
        # pattern; an object-store table may need more than one (MORE_LOCATIONS)
        paths = [duckdb_path(loc, scan.table) for loc in scan.locations]
        patterns = [p if any(c in p for c in "*?[") else f"{p}/{FILES}" for p in paths]
        return _reader(scan, patterns, hive=False)
    if scan.partitions is None:
        levels = "/".join(["*"] * len(keys))
        return _reader(scan, [f"{location}/{levels}/{FILES}"], hive=True)
    if not scan.partitions:
        return _empty(scan)
    names = [c.name for c in keys]
    folders = [
        (p, duckdb_path(p.location or _default_location(location, names, p), scan.table))
        for p in scan.partitions
    ]
    hive_named = scan.format in _HIVE_PARTITIONING
    named = [f for p, f in folders if hive_named and _is_hive_folder(f, names, p)]
    elsewhere = [(p, f) for p, f in folders if not (hive_named and _is_hive_folder(f, names, p))]
    if not elsewhere:
        return _reader(scan, [f"{folder}/{FILES}" for folder in named], hive=True)
    # partitions registered at folders not named k=v (outside the table folder, say): each read
    # with its registered values as constants, beside one reader for the k=v folders
    selects = [f"SELECT * FROM {_reader(scan, [f'{f}/{FILES}' for f in named], hive=True)}"] if named else []
    selects += [
        "SELECT *, "
        + ", ".join(
            f"CAST({quote_literal(v)} AS {duckdb_type(c.type)}) AS {quote_ident(c.name)}"
            for c, v in p.pairs(keys)
        )
        + f" FROM {_reader(scan, [f'{folder}/{FILES}'], hive=False)}"
        for p, folder in elsewhere
    ]
    return "(" + " UNION ALL BY NAME ".join(selects) + ")"


def partitions_with_files(con: Any, scan: ScanDescription) -> ScanDescription:
    """``scan`` without the registered partitions whose folder holds no data file (a reader fails
    on a folder pattern that matches nothing; an empty partition has no rows to give).

    One recursive ``glob`` of the table folder (one paged listing on object storage) finds the
    partitions inside it; a partition registered elsewhere costs a ``glob`` of its own folder.
    ``con`` needs the scan's extensions and storage secret (``scan_connection``).
    """
    if not scan.partitions or not scan.partition_columns or scan.format == "iceberg":
        return scan
    root = duckdb_path(scan.location, scan.table)
    names = [c.name for c in scan.partition_columns]
    folders = [
        duckdb_path(p.location or _default_location(root, names, p), scan.table) for p in scan.partitions
    ]
    filled: set[str] = set()
    outside = sorted({f for f in folders if not f.startswith(root + "/")})
    for pattern in [f"{root}/**", *(f"{folder}/*" for folder in outside)]:
        for (path,) in con.execute("SELECT file FROM glob(?)", [pattern]).fetchall():
            folder, _, name = str(path).rpartition("/")
            if name and name[0] not in "_.":
                filled.add(folder)
    kept = tuple(p for p, folder in zip(scan.partitions, folders, strict=True) if folder in filled)
    return scan if len(kept) == len(scan.partitions) else replace(scan, partitions=kept)


def select_sql(scan: ScanDescription, columns: Sequence[str] | None = None) -> str:
    projection = ", ".join(quote_ident(c) for c in columns) if columns else "*"
    return f"SELECT {projection} FROM {relation_sql(scan)}"


def create_view(
    con: Any, view: str, scan: ScanDescription, schema: str | None = None, database: str | None = None
) -> str:
    """``CREATE OR REPLACE VIEW [[database.]schema.]view`` over ``scan``; returns the SQL.

    The extensions the scan needs must be loaded on ``con`` (``required_extensions``).
    """
    qualifier = ".".join(quote_ident(part) for part in (database, schema) if part is not None)
    name = f"{qualifier}.{quote_ident(view)}" if qualifier else quote_ident(view)
    if schema is not None:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {qualifier}")
    sql = f"CREATE OR REPLACE VIEW {name} AS {select_sql(scan)}"
    con.execute(sql)
    return sql


def _reader(scan: ScanDescription, paths: list[str], hive: bool) -> str:
    args = ["[" + ", ".join(quote_literal(p) for p in paths) + "]"]
    options = scan.options
    if scan.format == "csv":
        all_varchar = options.get("all_varchar") == "true"
        args += [
            f"delim={quote_literal(options.get('delimiter', ','))}",
            f"quote={quote_literal(options.get('quote', ''))}",
            f"escape={quote_literal(options.get('escape', ''))}",
            f"header={'true' if int(options.get('header') or 0) > 0 else 'false'}",
            f"columns={_struct(scan.columns, all_varchar)}",
        ]
        if "null" in options:
            args.append(f"nullstr={quote_literal(options['null'])}")
    elif scan.format == "json":
        args += ["format='newline_delimited'", f"columns={_struct(scan.columns)}"]
    elif scan.format == "parquet":
        args.append("union_by_name=true")
    if hive and scan.format in _HIVE_PARTITIONING:
        hive_types = {c.name: duckdb_type(c.type) for c in scan.partition_columns}
        args += ["hive_partitioning=true", f"hive_types={_struct_literal(hive_types)}"]
    elif scan.format in _HIVE_PARTITIONING:
        args.append("hive_partitioning=false")
    return f"{_READERS[scan.format]}({', '.join(args)})"


def _struct(columns: Sequence[Column], all_varchar: bool = False) -> str:
    return _struct_literal({c.name: "VARCHAR" if all_varchar else duckdb_type(c.type) for c in columns})


def _struct_literal(items: dict[str, str]) -> str:
    return "{" + ", ".join(f"{quote_literal(k)}: {quote_literal(v)}" for k, v in items.items()) + "}"


def _empty(scan: ScanDescription) -> str:
    columns = [*scan.columns, *scan.partition_columns]
    body = ", ".join(f"CAST(NULL AS {duckdb_type(c.type)}) AS {quote_ident(c.name)}" for c in columns)
    return f"(SELECT {body or 'NULL AS _'} WHERE false)"


def _default_location(location: str, names: list[str], partition: Partition) -> str:
    return f"{location}/{partition.name(names)}"


def _is_hive_folder(folder: str, names: list[str], partition: Partition) -> bool:
    return folder.endswith("/" + partition.name(names))
