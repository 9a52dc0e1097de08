"""Generate dbt's profiles.yml from the manifest: one output per approved compute."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plan.builders import build_compute
from floe_dagster.plan.dbt_project import profiles_dir
from floe_dagster.plugins.compute import DbtProfileContext


def dbt_profile_name(project_dir: Path) -> str:
    with (project_dir / "dbt_project.yml").open(encoding="utf-8") as handle:
        project = yaml.safe_load(handle) or {}
    return str(project.get("profile") or project.get("name") or "floe")


def profile_context(loaded: LoadedManifest, compute_name: str) -> DbtProfileContext:
    m = loaded.manifest
    return DbtProfileContext(
        compute_name=compute_name,
        manifest_path=str(loaded.source_path),
        environment=loaded.environment,
        state_dir=str(loaded.state_dir),
        catalogs=tuple(sorted(m.catalogs)),
        write_catalog=m.transforms.catalog,
        workload_size=loaded.target(compute_name).workload_size,
        hive_metastores=hive_metastore_uris(loaded),
    )


def hive_metastore_uris(loaded: LoadedManifest) -> tuple[tuple[str, str], ...]:
    """``(name, uris)`` of every ``hive`` metastore whose Thrift URI the manifest sets, with auth
    ``none``: an engine's own Hive client is given only the URI (a metastore behind SASL is read
    through views over its storage instead)."""
    found = []
    for name, entry in sorted(loaded.manifest.metastores.items()):
        config = loaded.plugin_configs.get(("metastores", name))
        uri = getattr(config, "uri", None)
        if entry.type == "hive" and uri and getattr(config, "auth", "none") == "none":
            found.append((name, str(uri)))
    return tuple(found)


def build_profiles(loaded: LoadedManifest) -> dict[str, Any]:
    m = loaded.manifest
    outputs: dict[str, Any] = {}
    for compute_name in m.computes.approved:
        plugin, config = build_compute(loaded, compute_name)
        outputs[compute_name] = plugin.generate_dbt_profile(config, profile_context(loaded, compute_name))
    profile = dbt_profile_name(loaded.dbt_project_dir)
    return {profile: {"target": m.computes.default, "outputs": outputs}}


def write_profiles(loaded: LoadedManifest) -> Path:
    """Write profiles.yml (only when its content changes, so dbt's partial parsing survives)."""
    content = yaml.safe_dump(build_profiles(loaded), sort_keys=True)
    directory = profiles_dir(loaded)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "profiles.yml"
    if not target.exists() or target.read_text(encoding="utf-8") != content:
        target.write_text(content, encoding="utf-8")
    _prepare_offline_extensions(loaded)
    return directory


def _prepare_offline_extensions(loaded: LoadedManifest) -> None:
    """Fill the extension folder every DuckDB output points at, so dbt never downloads one."""
    names: set[str] = set()
    for compute_name in loaded.manifest.computes.approved:
        config = loaded.plugin_config("computes", compute_name)
        names.update(getattr(config, "extensions", []) or [])
    if names:
        # lazy: duckdb (about 0.15 s to import) only when profiles are written, not at every load
        from floe_dagster.computes.duckdb_extensions import (
            extension_directory,
            prepare_extension_directory,
        )

        prepare_extension_directory(
            extension_directory(loaded.state_dir / "duckdb_extensions"), sorted(names)
        )
