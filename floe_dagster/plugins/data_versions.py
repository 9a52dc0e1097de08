"""Which signal a Hive or Glue table's data version follows (``data_version`` in the manifest).

- ``metadata``: what the metastore reports (statistics parameters, else the last DDL time;
  partitions' names, locations and statistics). No storage call.
- ``storage``: that, plus a fingerprint of the data files at the table's and its partitions'
  registered locations (file count, total bytes, newest modification time), so a writer that adds
  files without updating statistics still changes the version. One bounded, batched listing.
- ``auto`` (default): ``storage`` only for tables whose parameters carry no statistics (nothing
  else would see an append), ``metadata`` for the others.

Transactional (ACID) tables always add their storage fingerprint (the ``base_``/``delta_``
folders it lists carry the write ids), whatever the mode.

Per metastore ``data_version: auto``, or per namespace glob ``data_version: {"raw_*": storage,
"*": metadata}`` (the first matching glob wins; a namespace no glob matches uses ``auto``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DEFAULT_MODE", "STATS_PARAMETERS", "DataVersionMode", "DataVersionPolicy"]

DataVersionMode = Literal["metadata", "storage", "auto"]
DEFAULT_MODE: DataVersionMode = "auto"
# Parameters that are statistics of the data (Hive's fast and basic stats, the Glue crawler's).
STATS_PARAMETERS = ("numFiles", "totalSize", "numRows", "recordCount", "sizeKey", "objectCount")


@dataclass(frozen=True)
class DataVersionPolicy:
    default: DataVersionMode = DEFAULT_MODE
    namespaces: Mapping[str, DataVersionMode] = field(default_factory=dict)

    @classmethod
    def of(cls, setting: Any) -> DataVersionPolicy:
        """The policy for a manifest's ``data_version`` value: a mode, namespace glob -> mode, or
        an object with ``default`` and ``namespaces``."""
        if setting is None:
            return cls()
        if isinstance(setting, str):
            return cls(default=setting)  # type: ignore[arg-type]  # the manifest schema checked it
        if isinstance(setting, Mapping):
            return cls(namespaces=dict(setting))
        return cls(default=setting.default, namespaces=dict(setting.namespaces))

    def mode_for(self, namespace: str) -> DataVersionMode:
        for pattern, mode in self.namespaces.items():
            if fnmatch.fnmatchcase(namespace, pattern):
                return mode
        return self.default

    def lists_storage(
        self,
        namespace: str,
        params: Mapping[str, str],
        partition_params: list[Mapping[str, str]] | None = None,
    ) -> bool:
        """Whether a table's version adds its storage fingerprint under this policy.

        ``partition_params``: None for an unpartitioned table (its own parameters count), else
        its partitions' parameters (where Hive keeps a partitioned table's statistics).
        """
        mode = self.mode_for(namespace)
        if mode != "auto":
            return mode == "storage"
        sources = [params] if partition_params is None else partition_params
        return any(not has_statistics(p) for p in sources)


def has_statistics(params: Mapping[str, str] | None) -> bool:
    return any((params or {}).get(k) is not None for k in STATS_PARAMETERS)
