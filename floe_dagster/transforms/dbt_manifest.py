"""Make sure the dbt project's manifest.json exists and is current, then load it."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from floe_dagster.core.errors import ConfigurationError
from floe_dagster.manifest.loader import LoadedManifest
from floe_dagster.plan.dbt_project import dbt_target_dir, newest_source_mtime, read_dbt_manifest
from floe_dagster.transforms.profiles import write_profiles

logger = logging.getLogger("floe_dagster")

KEPT_PARSES = 3  # parse folders kept per environment and target (see prune_parse_dirs)
PARSE_STAMP = "floe_parse.json"  # which environment, target and profiles a manifest.json is for


def dbt_executable() -> str:
    """The ``dbt`` next to the running interpreter (the venv's), else whatever PATH has."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def dbt_parse_dir(loaded: LoadedManifest, key: dict[str, str]) -> Path:
    """Where floe keeps the dbt parse of one environment, ``--target`` and generated profiles: its
    manifest.json and partial_parse.msgpack (dbt's ``--target-path``), so switching ``--env`` (or
    between manifests sharing a state folder, as ``floe plan --diff`` does) re-parses nothing."""
    name = f"{key['environment']}--{key['target']}--{key['profiles_sha256'][:12]}"
    return loaded.state_dir / "dbt_parse" / name


def prune_parse_dirs(kept: Path, keep: int = KEPT_PARSES) -> None:
    """Keep the ``keep`` most recently parsed folders of ``kept``'s environment and target (a
    profile edited over and over would otherwise leave a full parse behind each time)."""
    prefix = kept.name.rsplit("--", 1)[0] + "--"
    siblings = [p for p in kept.parent.iterdir() if p.is_dir() and p.name.startswith(prefix) and p != kept]
    siblings.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in siblings[keep - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)


def parse_key(loaded: LoadedManifest, target: str, profiles: Path) -> dict[str, str]:
    """What a dbt parse depends on besides the project's files: the environment, the target and
    the generated profiles (hashed, with the manifest's, the state folder's and the dbt project's
    paths left out: the project's path is part of the key on its own)."""
    content = (profiles / "profiles.yml").read_text(encoding="utf-8")
    folders = {
        "<state_dir>": loaded.state_dir,
        "<dbt_project>": loaded.dbt_project_dir,
        "<manifests>": loaded.base_dir,
    }
    for placeholder, folder in sorted(folders.items(), key=lambda item: -len(str(item[1]))):
        content = content.replace(str(folder), placeholder)
    return {
        "dbt_project": str(loaded.dbt_project_dir),
        "environment": loaded.environment,
        "target": target,
        "profiles_sha256": hashlib.sha256(content.encode("utf-8")).hexdigest(),
        "dbt_version": _dbt_version(),
    }


def _dbt_version() -> str:
    try:
        return importlib.metadata.version("dbt-core")
    except importlib.metadata.PackageNotFoundError:
        return ""


def _current_parse(folder: Path, key: dict[str, str], newest: float) -> bool:
    """``folder`` holds a manifest.json parsed for ``key`` after the project last changed."""
    try:
        stamp = json.loads((folder / PARSE_STAMP).read_text(encoding="utf-8"))
        manifest = (folder / "manifest.json").stat()
    except (OSError, ValueError):
        return False
    return (
        stamp.get("key") == key
        and stamp.get("manifest_mtime_ns") == manifest.st_mtime_ns
        and manifest.st_mtime >= newest
    )


def _write_stamp(folder: Path, key: dict[str, str]) -> None:
    stamp = {"key": key, "manifest_mtime_ns": (folder / "manifest.json").stat().st_mtime_ns}
    _replace(folder / PARSE_STAMP, json.dumps(stamp, sort_keys=True).encode("utf-8"))


def _replace(path: Path, content: bytes) -> None:
    """Write ``path`` atomically: a concurrent reader sees the old file or the new one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(content)
    os.replace(partial, path)


def _publish(parse_dir: Path, target_dir: Path, key: dict[str, str]) -> None:
    """Copy a parse into the project's target/, where dagster-dbt and the other readers look."""
    target_dir.mkdir(parents=True, exist_ok=True)
    (target_dir / PARSE_STAMP).unlink(missing_ok=True)  # a half-published target is never current
    for name in ("partial_parse.msgpack", "manifest.json"):
        if (parse_dir / name).exists():
            _replace(target_dir / name, (parse_dir / name).read_bytes())
    _write_stamp(target_dir, key)


def prepare_dbt_manifest(loaded: LoadedManifest, force: bool = False) -> dict[str, Any]:
    """Run ``dbt parse`` when manifest.json is missing or older than the project; return it.

    dbt keeps a partial parse (target/partial_parse.msgpack) for one ``--target`` and profile
    only, and the environments' profiles differ: so each environment, target and profile is parsed
    into its own folder under the state folder (:func:`dbt_parse_dir`), and the one in use is copied
    to the project's target/. Switching ``--env`` back and forth then parses nothing that did
    not change, and an edit re-parses only the files it touched.
    """
    profiles = write_profiles(loaded)
    # Dagster's dbt steps run `dbt build --target <compute>` from a copy of the project's
    # partial parse: parse for the default compute, whose partial parse they can reuse.
    target = loaded.manifest.computes.default
    key = parse_key(loaded, target, profiles)
    target_dir = dbt_target_dir(loaded)
    parse_dir = dbt_parse_dir(loaded, key)
    newest = newest_source_mtime(loaded.dbt_project_dir, [])
    if force or not _current_parse(target_dir, key, newest):
        if force or not _current_parse(parse_dir, key, newest):
            run_dbt(loaded, ["parse", "--target", target, "--target-path", str(parse_dir)], profiles)
            _write_stamp(parse_dir, key)
            prune_parse_dirs(parse_dir)
        _publish(parse_dir, target_dir, key)
    parsed = read_dbt_manifest(loaded)
    assert parsed is not None  # dbt parse wrote it
    return parsed


def run_dbt(loaded: LoadedManifest, args: list[str], profiles: Path) -> None:
    command = [
        dbt_executable(),
        *args,
        "--project-dir",
        str(loaded.dbt_project_dir),
        "--profiles-dir",
        str(profiles),
    ]
    logger.info("floe: running %s", " ".join(command[:2]))
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=loaded.dbt_project_dir)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ConfigurationError(
            f"`dbt {' '.join(args)}` failed in {loaded.dbt_project_dir} (exit {result.returncode}):\n{tail}",
            provider="dbt",
            operation=args[0],
        )
