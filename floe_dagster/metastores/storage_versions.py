"""Storage fingerprints for data versions that follow the data (``data_version: storage | auto``).

A fingerprint is, per registered location of a table (its own folder, or each partition's), the
data files a reader reads there (direct children whose names do not start with ``_`` or ``.``;
every file below for a transactional table, whose rows live in ``base_``/``delta_`` folders):
their count, total bytes and newest modification time. Files in folders nobody registered do not
count, as they are not read.

Listing is batched and bounded:

- one recursive listing per table folder covers every partition inside it; a partition
  registered elsewhere adds a listing of its own folder; on S3 a listing is ``ListObjectsV2``
  pages of 1,000 keys (``calls`` counts them), and the folders of a batch that share a parent
  (the tables of one database folder) are listed once through it: 1,000 tables of 10 files
  cost about 10 calls, not 1,000;
- the listings of a batch of tables run on ``workers`` threads;
- at most ``max_files`` files are listed per table; a table with more fails with a clear error
  that says to raise the bound or use ``data_version: metadata`` for its namespace.

Locations: ``file://`` (and plain paths) and ``s3://`` (``s3a``/``s3n``). S3 clients come from
the connector's credential chokepoint (``client_factory``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from floe_dagster.core.errors import FloeError, NotSupportedError
from floe_dagster.plugins.table_model import Table

__all__ = ["FileEntry", "StorageLister", "StorageRequest", "with_storage_versions"]

logger = logging.getLogger("floe_dagster.metastores")

DEFAULT_MAX_FILES = 100_000
S3_PAGE = 1000
GROUP_MIN = 4  # S3 table folders sharing a parent listed through it from this many on


class TooManyFiles(FloeError):
    """A listing went past its bound."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # normalised: no scheme for local files, s3://bucket/key for S3
    size: int
    modified: float  # epoch seconds


@dataclass(frozen=True)
class StorageRequest:
    """What to fingerprint for one table: its folder and (partitioned) its partitions' folders."""

    table: str  # qualified name
    root: str
    partitions: tuple[str, ...] | None = None  # None: unpartitioned, the root's files
    recursive: bool = False  # every file below (transactional tables)
    required: bool = True  # False (``auto``): a failed listing keeps the metadata version, logged


def _normalise(location: str) -> str:
    parts = urlsplit(location)
    if parts.scheme in ("", "file"):
        return (parts.path if parts.scheme else location).rstrip("/") or "/"
    if parts.scheme in ("s3", "s3a", "s3n"):
        return "s3://" + location.split("://", 1)[1].rstrip("/")
    raise NotSupportedError(
        f"cannot list {parts.scheme}:// locations for a storage data version ({location});"
        " use data_version: metadata for this table's namespace",
        operation="storage_version",
        retryable=False,
    )


class StorageLister:
    """Lists table folders (local or S3) and fingerprints what a reader of them reads."""

    def __init__(
        self,
        client_factory: Callable[[], Any] | None = None,
        max_files: int = DEFAULT_MAX_FILES,
        workers: int = 8,
    ) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._lock = threading.Lock()
        self.max_files = max_files
        self.workers = workers
        self.calls = 0  # listing calls made (S3 pages, local folder scans)

    def _count(self, n: int = 1) -> None:
        with self._lock:
            self.calls += n

    def _s3(self) -> Any:
        with self._lock:
            if self._client is None:
                if self._client_factory is None:
                    raise NotSupportedError(
                        "this metastore has no S3 credentials to list files for a storage data version",
                        operation="storage_version",
                        retryable=False,
                    )
                self._client = self._client_factory()
            return self._client

    def list_files(self, folder: str, table: str, limit: int | None = None) -> list[FileEntry]:
        """Every file below ``folder`` (recursive); listing stops past ``limit`` (``max_files``)."""
        limit = limit or self.max_files
        entries: list[FileEntry] = []
        for entry in self._walk(folder):
            entries.append(entry)
            if len(entries) > limit:
                raise TooManyFiles(
                    f"table {table}: more than {limit} files under {folder}; a storage data version"
                    " lists them all: use data_version: metadata for its namespace",
                    operation="storage_version",
                    retryable=False,
                )
        return entries

    def _walk(self, folder: str) -> Iterator[FileEntry]:
        if folder.startswith("s3://"):
            bucket, _, prefix = folder[5:].partition("/")
            client = self._s3()
            token: str | None = None
            while True:
                params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix + "/", "MaxKeys": S3_PAGE}
                if token:
                    params["ContinuationToken"] = token
                self._count()
                page = client.list_objects_v2(**params)
                for item in page.get("Contents", []):
                    yield FileEntry(
                        f"s3://{bucket}/{item['Key']}", int(item["Size"]), item["LastModified"].timestamp()
                    )
                token = page.get("NextContinuationToken")
                if not page.get("IsTruncated") or not token:
                    return
        for here, _dirs, files in os.walk(folder):
            self._count()
            for name in files:
                path = os.path.join(here, name)
                try:
                    info = os.stat(path)
                except FileNotFoundError:  # removed while listing
                    continue
                yield FileEntry(path, info.st_size, info.st_mtime)

    def fingerprints(self, requests: Sequence[StorageRequest]) -> dict[str, str | FloeError]:
        """table -> fingerprint (or the error listing it met), one listing per folder to walk."""
        plans: dict[str, tuple[StorageRequest, list[str], list[str]]] = {}
        walks: set[str] = set()
        results: dict[str, str | FloeError] = {}
        for request in requests:
            try:
                root = _normalise(request.root)
                folders = (
                    [root] if request.partitions is None else [_normalise(p) for p in request.partitions]
                )
            except FloeError as exc:
                results[request.table] = exc
                continue
            own = [root] + [f for f in folders if f != root and not f.startswith(root + "/")]
            plans[request.table] = (request, folders, own)
            walks.update(own)
        listed: dict[str, list[FileEntry] | FloeError] = {}

        def walk(folder: str) -> tuple[str, list[FileEntry] | FloeError]:
            try:
                return folder, self.list_files(folder, folder)
            except FloeError as exc:
                return folder, exc
            except Exception as exc:  # an SDK error listing one folder fails that table only
                code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
                return folder, FloeError(
                    f"cannot list {folder} for a storage data version ({code}); the credentials need"
                    " to list it (s3:ListBucket), or use data_version: metadata for its namespace",
                    operation="storage_version",
                    retryable=False,
                )

        def walk_group(unit: tuple[str, list[str]]) -> list[tuple[str, list[FileEntry] | FloeError]]:
            parent, children = unit
            if len(children) == 1 and parent == children[0]:
                return [walk(parent)]
            try:  # one listing of the common parent folder serves every table below it
                files = self.list_files(parent, parent, self.max_files * len(children))
            except TooManyFiles:  # the parent holds much more than these tables: one by one
                return [walk(child) for child in children]
            except Exception:
                return [walk(child) for child in children]
            return [(c, [e for e in files if e.path.startswith(c + "/")]) for c in children]

        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(walks) or 1))) as pool:
            for found in pool.map(walk_group, _listing_units(walks)):
                listed.update(found)
        for table, (request, folders, own) in plans.items():
            errors = [listed[f] for f in own if isinstance(listed[f], FloeError)]
            if errors:
                results[table] = errors[0]  # type: ignore[assignment]
                continue
            files = [e for f in own for e in listed[f]]  # type: ignore[union-attr]
            results[table] = _fingerprint(files, folders, request.recursive)
        return results


def _listing_units(walks: set[str]) -> list[tuple[str, list[str]]]:
    """(folder to list, the table folders it serves): on S3, folders that share a parent with at
    least ``GROUP_MIN - 1`` others are listed through that parent (ListObjectsV2 pages hold 1,000
    keys, so 1,000 tables of 10 files in one database folder cost 10 calls, not 1,000)."""
    by_parent: dict[str, list[str]] = {}
    units: list[tuple[str, list[str]]] = []
    for folder in sorted(walks):
        parent = folder.rpartition("/")[0]
        if folder.startswith("s3://") and parent.count("/") >= 2:
            by_parent.setdefault(parent, []).append(folder)
        else:
            units.append((folder, [folder]))
    for parent, children in sorted(by_parent.items()):
        if len(children) >= GROUP_MIN:
            units.append((parent, children))
        else:
            units += [(c, [c]) for c in children]
    return units


def _fingerprint(files: list[FileEntry], folders: list[str], recursive: bool) -> str:
    per_folder = []
    for folder in sorted(set(folders)):
        read = []
        for entry in files:
            if not entry.path.startswith(folder + "/"):
                continue
            parts = entry.path[len(folder) + 1 :].split("/")
            if (recursive or len(parts) == 1) and not any(p.startswith(("_", ".")) for p in parts):
                read.append(entry)
        newest = max((e.modified for e in read), default=0.0)
        per_folder.append([folder, len(read), sum(e.size for e in read), newest])
    text = json.dumps(per_folder, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def take_requests(results: list[Any], pending: dict[str, StorageRequest]) -> dict[str, StorageRequest]:
    """The storage requests of the tables among ``results``, removed from ``pending`` (what a
    connector's description of each table asked for)."""
    return {
        r.qualified_name: request
        for r in results
        if isinstance(r, Table) and (request := pending.pop(r.qualified_name, None))
    }


def with_storage_versions(
    results: list[Any], requests: dict[str, StorageRequest], lister: StorageLister
) -> list[Any]:
    """``results`` (tables or errors) with each requested table's data version extended by its
    storage fingerprint. A table whose listing failed becomes that (non-retryable) error, its own
    only; under ``auto`` (``required`` False) it keeps its metadata version and the failure is logged."""
    wanted = [
        requests[r.qualified_name] for r in results if isinstance(r, Table) and r.qualified_name in requests
    ]
    if not wanted:
        return results
    prints = lister.fingerprints(wanted)
    out: list[Any] = []
    for result in results:
        found = prints.get(result.qualified_name) if isinstance(result, Table) else None
        if isinstance(found, FloeError) and not requests[result.qualified_name].required:
            logger.warning("%s: data version from metadata only (auto): %s", result.qualified_name, found)
            out.append(result)
        elif isinstance(found, FloeError):
            out.append(found)
        elif isinstance(found, str):
            prefix, _, version = result.data_version.partition(":")
            digest = hashlib.sha256(f"{version}|{found}".encode()).hexdigest()[:32]
            out.append(replace(result, data_version=f"{prefix}:{digest}"))
        else:
            out.append(result)
    return out
