"""The version of each source a dbt model read, on every materialisation; snapshot-consistent runs.

* ``transforms.read_sources_at: observed``: before dbt starts, each dbt source's latest
  observation is looked up in the instance (``fetch_observations``, one per source) and handed to
  the dbt process as ``FLOE_SOURCE_PINS`` (``readers/formats.py``): every view over an
  Iceberg/Delta/Hudi table then reads the version that observation recorded, so the upstream data
  version Dagster stores on the materialisation is the data that was read, whatever a writer
  commits during the run. ``latest`` (default): the views pin the version current when dbt
  started (one version per source for the whole invocation).
* In either mode the views write the versions they read to a file of the step
  (``FLOE_SOURCE_VERSIONS_FILE``), and each model's materialisation carries
  ``floe/source_versions``: ``{source asset key: version}`` for the sources the model reads.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetKey, AssetMaterialization, MetadataValue, Output

from floe_dagster.readers.formats import PINS_ENV, VERSIONS_FILE_ENV
from floe_dagster.transforms.dbt_in_process import environment

METADATA_KEY = "floe/source_versions"


def observed_pins(instance: Any, source_keys: Mapping[str, AssetKey]) -> dict[str, str]:
    """dbt source unique_id -> the data version of its latest observation (sources never observed
    are left out: they are read at their current version)."""
    pins: dict[str, str] = {}
    for unique_id, key in sorted(source_keys.items()):
        records = instance.fetch_observations(key, limit=1).records
        observation = records[0].asset_observation if records else None
        version = observation.data_version if observation is not None else None
        if version:
            pins[unique_id] = str(version)
    return pins


@contextlib.contextmanager
def source_versions_environment(
    read_at: str, instance: Any, source_keys: Mapping[str, AssetKey]
) -> Iterator[Path]:
    """The environment of one dbt invocation: the pins (observed mode) and the file the views
    write the versions they read to (yielded; removed afterwards)."""
    with tempfile.TemporaryDirectory(prefix="floe-source-versions-") as folder:
        path = Path(folder) / "versions.json"
        variables = {VERSIONS_FILE_ENV: str(path)}
        if read_at == "observed":
            variables[PINS_ENV] = json.dumps(observed_pins(instance, source_keys))
        with environment(variables):
            yield path


def with_source_versions(
    events: Iterable[Any],
    versions_file: Path,
    dbt_manifest: Mapping[str, Any],
    source_keys: Mapping[str, AssetKey],
) -> Iterator[Any]:
    """``events`` with ``floe/source_versions`` on each model's materialisation (its direct sources)."""
    nodes = dbt_manifest.get("nodes") or {}
    read: dict[str, str] | None = None
    for event in events:
        if isinstance(event, Output | AssetMaterialization):
            unique_id = _unique_id(event)
            sources = [
                n
                for n in ((nodes.get(unique_id) or {}).get("depends_on") or {}).get("nodes", [])
                if n in source_keys
            ]
            if sources:
                if read is None:
                    read = _read_versions(versions_file)
                versions = {source_keys[s].to_user_string(): read.get(s, "") for s in sorted(sources)}
                metadata = {**event.metadata, METADATA_KEY: MetadataValue.json(versions)}
                event = event.with_metadata(metadata)
        yield event


def _unique_id(event: Any) -> str:
    value = event.metadata.get("unique_id")
    return str(getattr(value, "text", value) or "")


def _read_versions(path: Path) -> dict[str, str]:
    try:
        return {str(k): str(v) for k, v in json.loads(path.read_text(encoding="utf-8")).items()}
    except (OSError, ValueError):
        return {}
