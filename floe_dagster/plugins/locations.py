"""Table locations by store: which store a metastore table's location is on, and the path a
reader opens (pure; no I/O).

Hive, Glue and Dataproc tables carry Hadoop-style locations. They map to stores so:

* S3 and S3-compatible: ``s3://``, ``s3a://``, ``s3n://``, Alibaba OSS ``oss://``, Tencent COS
  ``cosn://`` -> read as ``s3://<bucket>/<key>`` (the metastore's S3 settings: endpoint, region,
  addressing style, say which server);
* Azure Blob / ADLS Gen2: ``abfss://``/``abfs://`` (``<container>@<account>.dfs.core.windows.net``),
  ``wasbs://``/``wasb://`` (``<container>@<account>.blob.core.windows.net``), ``az://`` -> read as
  DuckDB's fully qualified ``abfss://<account>.dfs.core.windows.net/<container>/<path>`` and
  ``az://<account>.blob.core.windows.net/<container>/<path>``;
* Google Cloud Storage: ``gs://`` (``gcs://`` -> ``gs://``);
* local files: ``file:`` or a bare path.

HDFS and Ozone (``hdfs://``, ``o3fs://``, ``ofs://``, ``viewfs://``) are not supported yet: a
:class:`NotSupportedError` naming the scheme and the table. Any other scheme is a
:class:`NotSupportedError` too, listing what is supported.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from floe_dagster.core.errors import NotSupportedError

__all__ = [
    "NOT_YET_SCHEMES",
    "STORE_SCHEMES",
    "reader_path",
    "store_of",
]

Store = Literal["s3", "azure", "gcs", "local", "http"]

STORE_SCHEMES: dict[str, Store] = {
    "s3": "s3",
    "s3a": "s3",
    "s3n": "s3",
    "oss": "s3",
    "cosn": "s3",
    "r2": "s3",  # DuckDB's own r2:// (an R2 secret), read as it is
    "abfss": "azure",
    "abfs": "azure",
    "wasbs": "azure",
    "wasb": "azure",
    "az": "azure",
    "azure": "azure",
    "gs": "gcs",
    "gcs": "gcs",
    "file": "local",
    "": "local",
    "http": "http",
    "https": "http",
}
NOT_YET_SCHEMES = ("hdfs", "o3fs", "ofs", "viewfs")


def _supported() -> str:
    return ", ".join(f"{s}://" for s in STORE_SCHEMES if s and s != "file") + ", file: and local paths"


def store_of(location: str, table: str, provider: str = "-", operation: str = "scan") -> Store:
    """The store ``location`` of ``table`` is on; ``NotSupportedError`` for any other scheme."""
    scheme = urlsplit(location).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter, C:\\...
        scheme = ""
    if scheme in STORE_SCHEMES:
        return STORE_SCHEMES[scheme]
    if scheme in NOT_YET_SCHEMES:
        detail = f"{scheme}:// (HDFS / Ozone) locations are not supported yet"
    else:
        detail = f"{scheme}:// locations are not supported"
    raise NotSupportedError(
        f"table {table}: {detail} ({location}); supported: {_supported()}",
        provider=provider,
        operation=operation,
        retryable=False,
    )


def reader_path(location: str, table: str = "", provider: str = "-", operation: str = "scan") -> str:
    """The path DuckDB (and fsspec) open for ``location`` (see the module docstring)."""
    store = store_of(location, table, provider, operation)
    parts = urlsplit(location)
    scheme = parts.scheme.lower()
    rest = location.split("://", 1)[1] if "://" in location else location
    if store == "local":
        path = parts.path if scheme == "file" else location
        return path.rstrip("/") or "/"
    if store == "s3" and scheme == "r2":
        return location.rstrip("/")
    if store == "s3":
        return ("s3://" + rest).rstrip("/")
    if store == "gcs":
        return ("gs://" + rest).rstrip("/")
    if store == "azure" and "@" in parts.netloc:
        container, host = parts.netloc.split("@", 1)
        target = "abfss" if scheme in ("abfss", "abfs") else "az"
        return f"{target}://{host}/{container}{parts.path}".rstrip("/")
    if store == "azure" and scheme in ("wasbs", "wasb", "azure"):
        return ("az://" + rest).rstrip("/")
    return location.rstrip("/")
