"""The plan: pure data, one compute for every dbt transform and why, and the manifest it was
compiled from (``Plan.loaded_manifest``). No Dagster, no dbt."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from floe_dagster.manifest.loader import (
    LoadedManifest,
    manifest_from_document,
)

# 2: manifest_path relative to the plan file, and the inputs' fingerprints (staleness check)
# 3: the manifest's merged document, so a compiled plan alone builds the definitions


PLAN_FORMAT_VERSION = 3


@dataclass(frozen=True)
class TransformAssignment:
    unique_id: str
    name: str
    compute: str
    compute_type: str
    reason: str
    workload_size: str = "small"
    resources: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    manifest_name: str
    manifest_path: str
    environment: str
    default_compute: str
    computes: dict[str, str]
    catalogs: dict[str, str]
    metastores: dict[str, str]
    transforms: tuple[TransformAssignment, ...] = field(default_factory=tuple)
    # what the plan was compiled from (see plan_inputs); a compiled plan is checked against them
    inputs: dict[str, str] = field(default_factory=dict)
    # the manifest's merged extends chain (``${env:NAME}`` unresolved): every catalog, compute and
    # metastore with its config, source key mappings, freshness windows, automation, ingest
    manifest_document: dict[str, Any] = field(default_factory=dict, repr=False)
    # the file this plan was read from (``read_plan``); not part of the plan itself
    source: str | None = field(default=None, compare=False, repr=False)

    def loaded_manifest(self) -> LoadedManifest:
        """The manifest this plan was compiled from, validated again from the plan alone (no YAML
        file is read): what the Dagster stage builds its definitions from."""
        cached: LoadedManifest | None = self.__dict__.get("_loaded")
        if cached is None:
            cached = manifest_from_document(
                self.manifest_document,
                self.manifest_path,
                self.environment,
                origin=Path(self.source) if self.source else None,
            )
            object.__setattr__(self, "_loaded", cached)
        return cached

    def by_compute(self) -> dict[str, list[TransformAssignment]]:
        groups: dict[str, list[TransformAssignment]] = {}
        for t in self.transforms:
            groups.setdefault(t.compute, []).append(t)
        return groups

    @classmethod
    def from_json(cls, text: str, relative_to: Path | None = None) -> Plan:
        """The plan of ``to_json``; a relative ``manifest_path`` is resolved against ``relative_to``.

        Raises ValueError (JSONDecodeError included) for text that is not such a plan."""
        payload = json.loads(text)
        if not isinstance(payload, dict):
            raise ValueError("not a floe plan (a JSON object written by `floe compile`)")
        version = payload.pop("plan_format_version", None)
        if version != PLAN_FORMAT_VERSION:
            raise ValueError(
                f"plan format version {version!r}; this floe-dagster reads {PLAN_FORMAT_VERSION}"
            )
        try:
            payload["transforms"] = tuple(TransformAssignment(**t) for t in payload["transforms"])
            plan = cls(**payload)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a floe plan: {exc}") from None
        if relative_to is not None and not Path(plan.manifest_path).is_absolute():
            plan = dataclasses.replace(plan, manifest_path=str((relative_to / plan.manifest_path).resolve()))
        return plan

    def to_json(self, relative_to: Path | None = None) -> str:
        """Stable JSON (sorted keys, transforms by unique id); with ``relative_to`` the manifest path
        is written relative to that folder, so the artifact moves with its project."""
        payload = {"plan_format_version": PLAN_FORMAT_VERSION, **asdict(self)}
        del payload["source"]
        if relative_to is not None:
            payload["manifest_path"] = Path(os.path.relpath(self.manifest_path, relative_to)).as_posix()
        payload["transforms"] = sorted(payload["transforms"], key=lambda t: t["unique_id"])
        # default=str: a YAML timestamp or date in the document is written as its text
        return json.dumps(payload, indent=2, sort_keys=True, default=str)


def model_nodes(dbt_manifest: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    nodes = [n for n in dbt_manifest.get("nodes", {}).values() if n.get("resource_type") == "model"]
    return sorted(nodes, key=lambda n: n["unique_id"])


def meta_compute(node: Mapping[str, Any]) -> str | None:
    for meta in (node.get("config", {}).get("meta") or {}, node.get("meta") or {}):
        floe = meta.get("floe") or {}
        if isinstance(floe, Mapping) and floe.get("compute"):
            return str(floe["compute"])
    return None
