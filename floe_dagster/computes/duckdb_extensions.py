"""Offline DuckDB extensions: installed from the PyPI ``duckdb-extension-*`` packages, never the network.

DuckDB's own extension repository is not reachable everywhere floe runs, so an extension
folder is filled once from the wheels (``duckdb_extensions.import_extension``) and every
connection points ``extension_directory`` at it with auto-install switched off.

The folder is the project's ``.floe/duckdb_extensions`` unless ``FLOE_DUCKDB_EXTENSION_DIR``
names one folder for every project and process on the machine (the extensions are about 85 MB
a copy). Installing into it is safe from several processes at once: a file lock, and each
extension written beside its place and renamed into it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

import duckdb

# One offline extension folder for every project and process (instead of one per project).
EXTENSION_DIR_ENV = "FLOE_DUCKDB_EXTENSION_DIR"

# An extension whose LOAD needs another one installed first.
EXTENSION_DEPENDENCIES: dict[str, tuple[str, ...]] = {"iceberg": ("avro",)}
# Installed beside an extension but not loaded: DuckDB autoloads them from the offline folder when
# they are used (iceberg's REST catalog client and s3:// paths need httpfs; LOAD does not).
EXTENSION_COMPANIONS: dict[str, tuple[str, ...]] = {"iceberg": ("httpfs",)}


def available_extensions() -> list[str]:
    """Extensions shipped by installed ``duckdb-extension-<name>`` packages."""
    import pkgutil

    return sorted(
        m.name.removeprefix("duckdb_extension_")
        for m in pkgutil.iter_modules()
        if m.name.startswith("duckdb_extension_")
    )


def extension_installed(name: str) -> bool:
    """Whether the ``duckdb-extension-<name>`` package is installed (one module lookup, no scan)."""
    return importlib.util.find_spec(f"duckdb_extension_{name}") is not None


def with_dependencies(names: Iterable[str]) -> list[str]:
    ordered: list[str] = []
    for name in names:
        for dep in (*EXTENSION_DEPENDENCIES.get(name, ()), name):
            if dep not in ordered:
                ordered.append(dep)
    return ordered


def shared_extension_directory() -> Path | None:
    """``$FLOE_DUCKDB_EXTENSION_DIR``, or None when it is not set."""
    shared = os.environ.get(EXTENSION_DIR_ENV, "").strip()
    return Path(shared).expanduser() if shared else None


def extension_directory(default: Path) -> Path:
    """``$FLOE_DUCKDB_EXTENSION_DIR`` when set, else ``default``."""
    return shared_extension_directory() or default


def connection_config(extension_dir: Path) -> dict[str, str | bool]:
    return {"extension_directory": str(extension_dir), "autoinstall_known_extensions": False}


def prepare_extension_directory(extension_dir: Path, names: Iterable[str]) -> list[str]:
    """Install ``names`` (and what they need) into ``extension_dir``; cheap when already there.

    Returns the extensions to LOAD (``names`` and their dependencies, not the companions).
    """
    wanted = with_dependencies(names)
    companions = [  # optional: skipped when their package is not installed
        c
        for n in wanted
        for c in EXTENSION_COMPANIONS.get(n, ())
        if c not in wanted and extension_installed(c)
    ]
    extension_dir.mkdir(parents=True, exist_ok=True)
    missing = [n for n in [*wanted, *companions] if not _installed_file(extension_dir, n)]
    if missing:
        for name in missing:
            if not extension_installed(name):
                raise ValueError(
                    f"DuckDB extension '{name}' is not installed; available: {available_extensions()}"
                    f" (pip install duckdb-extension-{name}=={duckdb.__version__})"
                )
        _install(extension_dir, missing)
    return wanted


def _install(extension_dir: Path, names: list[str]) -> None:
    """Install the missing ``names``, one process at a time, each file renamed into place whole."""
    from duckdb_extensions import import_extension
    from filelock import FileLock

    with FileLock(str(extension_dir / ".floe-install.lock")):
        missing = [n for n in names if not _installed_file(extension_dir, n)]
        if not missing:
            return  # another process installed them while this one waited
        staging = Path(tempfile.mkdtemp(prefix=".floe-staging-", dir=extension_dir))
        try:
            con = duckdb.connect(":memory:", config=connection_config(staging))  # type: ignore[arg-type]
            try:
                for name in missing:
                    import_extension(name, con=con)
            finally:
                con.close()
            # metadata files first, the extension itself last: its presence means "installed"
            staged_files = sorted(
                (f for f in staging.rglob("*") if f.is_file()),
                key=lambda f: f.name.endswith(".duckdb_extension"),
            )
            for staged in staged_files:
                target = extension_dir / staged.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def _installed_file(extension_dir: Path, name: str) -> bool:
    """Whether ``name`` is in the folder for this DuckDB version (``v<version>/<platform>/``)."""
    return any(extension_dir.glob(f"v{duckdb.__version__}/*/{name}.duckdb_extension"))


def connect_with_extensions(
    database: str, extension_dir: Path, names: Iterable[str], read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with ``names`` loaded from the offline folder."""
    wanted = prepare_extension_directory(extension_dir, names)
    con = duckdb.connect(database, read_only=read_only, config=connection_config(extension_dir))  # type: ignore[arg-type]
    for name in wanted:
        con.load_extension(name)
    return con
