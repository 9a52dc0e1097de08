"""Metastore listings cached as Dagster defs state, so a code location loads without the metastore.

The split follows Dagster's ``StateBackedComponent``:

- ``write_state(loaded, state_path)`` lists every metastore of the manifest (the only network
  calls) and writes what the source assets are built from: per table its columns, location,
  format, partition keys and count, and last DDL time;
- ``read_state(state_path)`` + ``defs/sources.py`` build the observable source assets and the
  observation sensors from that file with no network call (``build_definitions`` does that).

Where: the manifest's ``state_dir`` holds ``defs_state/<key>/state``, the layout (and key
sanitising) Dagster uses for ``LOCAL_FILESYSTEM`` defs state, keyed by the manifest's name and
environment so two platforms in one code location never share a file. ``floe refresh``
rewrites it; a metastore missing from it (or whose manifest entry changed since) is listed once
when definitions load, and written back.

A load-time listing is one short attempt (``build_metastore(quick=True)``: no retries, a
2 s connect and 5 s read timeout). When it fails, the failure is written to the state too
(``failed_at``, the fingerprint it was for, the error), and loads within
``LISTING_RETRY_AFTER_S`` do not try again: the metastore's dbt-named sources load without
metadata at once. ``floe refresh``, a later load, or the next observation (the sensor writes its
listing back, ``record_listing``) fills the state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypedDict

import orjson

from floe_dagster.core.errors import ConfigurationError, FloeError, NotSupportedError
from floe_dagster.core.memory import gc_paused
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plan.builders import build_metastore, table_filter
from floe_dagster.plan.source_refs import SourceKeys
from floe_dagster.plugins.metastore import Capability, MetastoreConnector
from floe_dagster.plugins.table_model import Table

logger = logging.getLogger("floe_dagster")

STATE_FORMAT = "floe-sources-state"
STATE_VERSION = 1
STATE_DIR_NAME = "defs_state"
DDL_TIME_PROPERTY = "transient_lastDdlTime"  # Hive's, in epoch seconds
# After a failed load-time listing, loads do not list that metastore again for this long.
LISTING_RETRY_AFTER_S = 120.0


class TableRecord(TypedDict):
    """One table as the state file keeps it (everything an ``AssetSpec`` needs)."""

    namespace: str
    name: str
    format: str
    location: str
    columns: list[list[str | None]]  # [name, type, comment]
    partition_keys: list[list[str]]  # [name, type]
    partition_count: int | None
    last_ddl_time: float | None  # epoch seconds
    table_type: str
    unreadable_reason: NotRequired[str]  # only for a table no reader can read (a view ...)


@dataclass
class MetastoreState:
    type: str
    fingerprint: str  # of the manifest entry the tables were listed for ("" if never listed)
    refreshed_at: float
    tables: list[TableRecord] = field(default_factory=list)
    failed_at: float | None = None  # the last listing that failed, if it failed after the last success
    failed_fingerprint: str | None = None
    error: str | None = None

    def recently_failed(self, fingerprint: str, now: float | None = None) -> bool:
        """A listing for ``fingerprint`` failed less than ``LISTING_RETRY_AFTER_S`` ago."""
        if self.failed_at is None or self.failed_fingerprint != fingerprint:
            return False
        return (time.time() if now is None else now) - self.failed_at < LISTING_RETRY_AFTER_S


@dataclass
class SourcesState:
    manifest: str
    environment: str
    metastores: dict[str, MetastoreState] = field(default_factory=dict)

    def tables(self, metastore: str) -> list[TableRecord]:
        entry = self.metastores.get(metastore)
        return entry.tables if entry is not None else []

    def to_json(self) -> str:
        document = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "manifest": self.manifest,
            "environment": self.environment,
            "metastores": {
                name: {
                    "type": m.type,
                    "fingerprint": m.fingerprint,
                    "refreshed_at": m.refreshed_at,
                    "tables": m.tables,
                    **(
                        {
                            "failed_at": m.failed_at,
                            "failed_fingerprint": m.failed_fingerprint,
                            "error": m.error,
                        }
                        if m.failed_at is not None
                        else {}
                    ),
                }
                for name, m in sorted(self.metastores.items())
            },
        }
        return json.dumps(document, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SourcesState:
        # a record per table (10,000s): orjson, with no collection walking them while they are read
        with gc_paused():
            document = orjson.loads(text)
        if document.get("format") != STATE_FORMAT or document.get("version") != STATE_VERSION:
            raise ValueError(f"not a {STATE_FORMAT} v{STATE_VERSION} document")
        return cls(
            manifest=document["manifest"],
            environment=document["environment"],
            metastores={
                name: MetastoreState(
                    type=m["type"],
                    fingerprint=m["fingerprint"],
                    refreshed_at=m["refreshed_at"],
                    tables=m["tables"],
                    failed_at=m.get("failed_at"),
                    failed_fingerprint=m.get("failed_fingerprint"),
                    error=m.get("error"),
                )
                for name, m in document["metastores"].items()
            },
        )


def defs_state_key(loaded: LoadedManifest) -> str:
    """The defs state key: one per manifest name and environment."""
    return f"FloeSources[{loaded.name}@{loaded.environment}]"


def sanitize_state_key(key: str) -> str:
    """Dagster's own sanitising of a defs state key into a folder name."""
    return re.sub(r"[^A-Za-z0-9._-]", "__", key)


def default_state_path(loaded: LoadedManifest) -> Path:
    return loaded.state_dir / STATE_DIR_NAME / sanitize_state_key(defs_state_key(loaded)) / "state"


def metastore_fingerprint(loaded: LoadedManifest, metastore: str) -> str:
    """Changes when what a listing depends on changes in the manifest (secrets masked out)."""
    entry = loaded.manifest.metastores[metastore]
    config = loaded.plugin_config("metastores", metastore).model_dump(mode="json")
    described = {
        "type": entry.type,
        "config": config,
        "include": entry.include,
        "exclude": entry.exclude,
        "environment": loaded.environment,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()[:16]


# --- building records from a metastore (the network side) -------------------------------------


def last_ddl_time(table: Table) -> float | None:
    """The table's last DDL time in epoch seconds: Hive's property, else its last metadata change."""
    raw = table.properties.get(DDL_TIME_PROPERTY)
    if raw is not None:
        try:
            return float(raw)
        except ValueError:
            pass
    if table.stats.last_modified is not None:
        return table.stats.last_modified.timestamp()
    return None


def known_partition_count(table: Table) -> int | None:
    """The partition count the table's description already holds (None: unknown without a call)."""
    if table.stats.partition_count is not None:
        return int(table.stats.partition_count)
    return None if table.partition_keys else 0


def partition_count(connector: MetastoreConnector, table: Table) -> int | None:
    """How many partitions the table has (None when the metastore cannot tell)."""
    known = known_partition_count(table)
    if known is not None:
        return known
    if Capability.LIST_PARTITIONS not in connector.capabilities:
        return None
    try:
        return len(connector.list_partitions(table.namespace, table.name))
    except NotSupportedError:
        return None


def table_record(table: Table, partitions: int | None) -> TableRecord:
    record = _table_record(table, partitions)
    if table.unreadable_reason is not None:
        record["unreadable_reason"] = table.unreadable_reason
    return record


def _table_record(table: Table, partitions: int | None) -> TableRecord:
    return {
        "namespace": table.namespace,
        "name": table.name,
        "format": table.storage.format,
        "location": table.storage.location,
        "columns": [[c.name, c.type, c.comment] for c in table.storage.columns],
        "partition_keys": [[c.name, c.type] for c in table.partition_keys],
        "partition_count": partitions,
        "last_ddl_time": last_ddl_time(table),
        "table_type": table.table_type,
    }


def list_metastore(loaded: LoadedManifest, metastore: str, quick: bool = False) -> MetastoreState:
    """List one metastore in batches; raises the connector's ``FloeError`` when it fails.

    ``quick``: one short attempt (a load-time listing), see ``build_metastore``.
    """
    started = time.monotonic()
    connector = build_metastore(loaded, metastore, quick=quick)
    batch = loaded.manifest.metastores[metastore].batch_size
    tables = [
        table_record(t, partition_count(connector, t))
        for t in connector.scan(table_filter(loaded, metastore), batch_size=batch)
    ]
    logger.info(
        "floe: listed %d table(s) of metastore '%s' in %.2f s",
        len(tables),
        metastore,
        time.monotonic() - started,
    )
    return MetastoreState(
        type=loaded.manifest.metastores[metastore].type,
        fingerprint=metastore_fingerprint(loaded, metastore),
        refreshed_at=time.time(),
        tables=tables,
    )


# --- reading and writing the state file --------------------------------------------------------


def read_state(state_path: str | os.PathLike[str]) -> SourcesState | None:
    """The state at ``state_path``; None when there is none (or it is unreadable, logged)."""
    path = Path(state_path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return SourcesState.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        logger.warning("floe: ignoring unreadable defs state %s (%s); it will be rewritten", path, exc)
        return None


def save_state(state: SourcesState, state_path: str | os.PathLike[str]) -> Path:
    """Write atomically: a code location loading at the same moment reads the old or the new file."""
    path = Path(state_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    partial.write_text(state.to_json(), encoding="utf-8")
    os.replace(partial, path)
    return path


@dataclass(frozen=True)
class RefreshResult:
    path: Path
    state: SourcesState
    failed: dict[str, FloeError]


def write_state(
    loaded: LoadedManifest,
    state_path: str | os.PathLike[str] | None = None,
    metastores: Sequence[str] | None = None,
    quick: bool = False,
) -> RefreshResult:
    """List ``metastores`` (default: all of the manifest) and write the state file.

    A metastore that fails keeps its previous entry (if any) with the failure recorded on it,
    and is reported in ``failed``; the others are written. ``quick``: one short attempt each.
    """
    path = Path(state_path) if state_path is not None else default_state_path(loaded)
    names = list(metastores) if metastores is not None else list(loaded.manifest.metastores)
    previous = read_state(path)
    state = SourcesState(manifest=loaded.name, environment=loaded.environment)
    if previous is not None:
        state.metastores = {n: m for n, m in previous.metastores.items() if n in loaded.manifest.metastores}
    failed: dict[str, FloeError] = {}
    for name in names:
        try:
            state.metastores[name] = list_metastore(loaded, name, quick=quick)
        except FloeError as exc:
            failed[name] = exc
            state.metastores[name] = with_failure(loaded, name, state.metastores.get(name), exc)
    save_state(state, path)
    return RefreshResult(path=path, state=state, failed=failed)


def with_failure(
    loaded: LoadedManifest, metastore: str, previous: MetastoreState | None, exc: FloeError
) -> MetastoreState:
    """``previous`` (or an empty, never-listed entry) with a failed listing recorded on it."""
    entry = previous or MetastoreState(
        type=loaded.manifest.metastores[metastore].type, fingerprint="", refreshed_at=0.0
    )
    entry.failed_at = time.time()
    entry.failed_fingerprint = metastore_fingerprint(loaded, metastore)
    entry.error = str(exc)
    return entry


def record_listing(
    loaded: LoadedManifest,
    metastore: str,
    records: list[TableRecord],
    state_path: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a listing made elsewhere (an observation) into the state, the rest kept as it is."""
    path = Path(state_path) if state_path is not None else default_state_path(loaded)
    state = read_state(path) or SourcesState(manifest=loaded.name, environment=loaded.environment)
    state.metastores[metastore] = MetastoreState(
        type=loaded.manifest.metastores[metastore].type,
        fingerprint=metastore_fingerprint(loaded, metastore),
        refreshed_at=time.time(),
        tables=records,
    )
    return save_state(state, path)


def has_current_listing(loaded: LoadedManifest, metastore: str, state: SourcesState | None) -> bool:
    entry = state.metastores.get(metastore) if state is not None else None
    return entry is not None and entry.fingerprint == metastore_fingerprint(loaded, metastore)


def stale_metastores(loaded: LoadedManifest, state: SourcesState | None) -> list[str]:
    """Metastores of the manifest the state lacks, or whose manifest entry changed since, except
    those whose listing failed less than ``LISTING_RETRY_AFTER_S`` ago."""
    stale = []
    for name in loaded.manifest.metastores:
        entry = state.metastores.get(name) if state is not None else None
        fingerprint = metastore_fingerprint(loaded, name)
        if entry is None or (entry.fingerprint != fingerprint and not entry.recently_failed(fingerprint)):
            stale.append(name)
    return stale


def load_sources_state(
    loaded: LoadedManifest,
    state_path: str | os.PathLike[str] | None = None,
    list_missing: bool = True,
) -> SourcesState:
    """The state definitions are built from; lists only the metastores the state lacks.

    With a current state file this makes no network call at all. A missing metastore is listed
    with one short attempt; one that cannot be listed loads with the sources dbt names only, and
    is tried again by a load after ``LISTING_RETRY_AFTER_S`` (or ``floe refresh``).
    ``list_missing=False`` never lists (for a ``StateBackedComponent``'s
    ``build_defs_from_state``): missing metastores then load with the sources dbt names only.
    """
    path = Path(state_path) if state_path is not None else default_state_path(loaded)
    state = read_state(path)
    missing = stale_metastores(loaded, state)
    if state is not None and not missing:
        return state
    if not list_missing:
        return state or SourcesState(manifest=loaded.name, environment=loaded.environment)
    result = write_state(loaded, path, missing, quick=True)
    for name, exc in result.failed.items():
        logger.warning(
            "floe: could not list metastore '%s' (%s); its sources load without metadata until"
            " `floe refresh` or an observation succeeds (loads retry after %d s)",
            name,
            exc,
            LISTING_RETRY_AFTER_S,
        )
    return result.state


# --- for the CLI (no Dagster import) ------------------------------------------------------------


def unreachable_message(metastore: str, exc: FloeError) -> str:
    retry = (
        "retryable: yes, the next observation tries again"
        if exc.retryable
        else "retryable: no, fix the cause first"
    )
    return f"metastore '{metastore}' could not be observed: {exc} ({retry})"


def select_metastores(loaded: LoadedManifest, name: str | None) -> list[str]:
    """``[name]`` if the manifest has it, every metastore when None; else a clear error."""
    names = list(loaded.manifest.metastores)
    if name is None:
        return names
    if name not in loaded.manifest.metastores:
        there = ", ".join(sorted(names)) if names else "none"
        raise ConfigurationError(f"unknown metastore '{name}'; the manifest {loaded.path.name} has: {there}")
    return [name]


@dataclass(frozen=True)
class ObservedTable:
    metastore: str
    namespace: str
    name: str
    data_version: str
    asset_key: str = ""  # as the manifest maps it (defs/source_refs.py); empty: the default key
    unreadable_reason: str | None = None  # why no reader can read it (it is still observed)

    @property
    def key(self) -> str:
        """The asset key as Dagster shows it: ``<metastore>/<namespace parts>/<table>`` unless mapped."""
        return self.asset_key or "/".join([self.metastore, *self.namespace.split("."), self.name])


def observe_metastore(loaded: LoadedManifest, metastore: str) -> list[ObservedTable]:
    """Every table of one metastore with its current data version (a full, batched pass)."""

    connector = build_metastore(loaded, metastore)
    batch = loaded.manifest.metastores[metastore].batch_size
    keys = SourceKeys.of(loaded, metastore)
    return [
        ObservedTable(
            metastore,
            t.namespace,
            t.name,
            t.data_version,
            keys.user_string(t.namespace, t.name),
            t.unreadable_reason,
        )
        for t in connector.scan(table_filter(loaded, metastore), batch_size=batch)
    ]
