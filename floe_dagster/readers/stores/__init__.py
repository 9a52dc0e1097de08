"""The object stores floe's Python readers reach, one module per store.

The readers that do not go through DuckDB's own file readers (ORC through a PyArrow dataset, the
Delta log listing, Hudi through hudi-rs) open a table's files with the storage properties a
metastore's credential chokepoint resolved (``readers/formats.py`` ``storage_properties``). Each
module here turns those properties into what its store's readers take:

* ``s3``: S3 and the stores that speak its API (``s3://``, ``s3a://``, ``s3n://``, Alibaba OSS
  ``oss://``, Tencent COS ``cosn://``; MinIO, R2 and the rest through the endpoint);
* ``azure``: Azure Blob Storage and ADLS Gen2 (``az://``, ``abfss://``, ``wasbs://`` ...);
* ``gcs``: Google Cloud Storage (``gs://``), through gcsfs.

Each module's ``STORE`` (``stores/store.py`` ``ReaderStore``) has its name, the URL schemes it
serves, ``missing(storage)`` (why the properties cannot open its files, or None),
``filesystem(location, storage)`` and ``path(location)`` (a
PyArrow filesystem and the path inside it), ``object_store_options(storage)`` (the
``object_store`` crate's keys, for delta-rs and hudi-rs) and ``uri(location)`` (the URL those
Rust readers open). ``readers/storage.py`` picks the module by scheme; a new store is a new module
here, added to ``STORES``. The properties and what is made of them hold secrets: never log them.
"""

from __future__ import annotations

from floe_dagster.readers.stores import azure, gcs, s3
from floe_dagster.readers.stores.store import ReaderStore

STORES: tuple[ReaderStore, ...] = (s3.STORE, azure.STORE, gcs.STORE)
BY_SCHEME: dict[str, ReaderStore] = {scheme: store for store in STORES for scheme in store.schemes}

__all__ = ["BY_SCHEME", "STORES", "ReaderStore"]
