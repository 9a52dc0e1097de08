"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


def copy_demo_project(destination: Path, parsed_from: Path | None = None) -> Path:
    """manifests/, dbt_project/ and definitions.py copied to ``destination`` (no local state).

    With ``parsed_from`` (an earlier copy whose dbt project was parsed), its dbt manifest is
    reused with paths rewritten, which saves a `dbt parse` per test.
    """
    shutil.copytree(REPO / "manifests", destination / "manifests")
    shutil.copytree(
        REPO / "dbt_project", destination / "dbt_project", ignore=shutil.ignore_patterns("target", "logs")
    )
    shutil.copy(REPO / "definitions.py", destination / "definitions.py")
    if parsed_from is not None:
        source = parsed_from / "dbt_project" / "target" / "manifest.json"
        target = destination / "dbt_project" / "target" / "manifest.json"
        target.parent.mkdir(parents=True)
        target.write_text(source.read_text().replace(str(parsed_from), str(destination)))
        from floe_dagster.transforms.dbt_manifest import PARSE_STAMP

        stamp = source.with_name(PARSE_STAMP)
        if stamp.exists():  # which environment and profiles it was parsed for: still current here
            carried = json.loads(stamp.read_text().replace(str(parsed_from), str(destination)))
            carried["manifest_mtime_ns"] = target.stat().st_mtime_ns
            target.with_name(PARSE_STAMP).write_text(json.dumps(carried))
    return destination


@functools.cache
def bronze_translator() -> type:
    """A ``FloeSourceTranslator`` subclass that re-keys, regroups, tags and describes every
    metastore table (``bronze/<metastore>/<table>``); tests and defs.yaml
    (``translator: tests.helpers.BronzeTranslator``) use it."""
    from floe_dagster import FloeSourceTranslator, SourceTable

    class BronzeTranslator(FloeSourceTranslator):
        def get_asset_spec(self, table: SourceTable) -> Any:
            from dagster import AssetKey

            spec = super().get_asset_spec(table)
            return spec.replace_attributes(
                key=AssetKey(["bronze", table.metastore, table.name]),
                group_name="bronze",
                description=f"Bronze copy of {table.qualified_name}",
            ).merge_attributes(
                tags={"layer": "bronze"},
                metadata={
                    "owner_team": "data-eng",
                    "read_by_dbt": table.dbt_source["unique_id"] if table.dbt_source else "-",
                },
            )

    return BronzeTranslator


def __getattr__(name: str) -> Any:
    if name == "BronzeTranslator":  # built on first use: importing helpers must not import dagster
        return bronze_translator()
    raise AttributeError(name)


def run_floe(
    args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``floe ARGS`` in this process: ``floe_dagster.cli.main`` run as the ``floe`` script runs it
    (working folder, environment, stdout and stderr, root logging unset so its ``basicConfig``
    writes to that stderr), without paying Python's, Dagster's and dbt's imports per command.

    The entry point itself keeps its own subprocess tests (tests/cli: usage errors, schema,
    bytes of ``floe compile`` across hash seeds).
    """
    import contextlib
    import io
    import logging
    import os

    from floe_dagster.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    saved_env = dict(os.environ)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        if env is not None:
            os.environ.clear()
            os.environ.update(env)
        with contextlib.chdir(cwd), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["floe", *args], code, stdout.getvalue(), stderr.getvalue())


# A valid single-file manifest (no extends), for tests that load or break one.
VALID = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata:
  name: test-platform
catalogs:
  lakehouse:
    type: sql
    config:
      uri: sqlite:///state/catalog.db
      warehouse: state/warehouse
computes:
  approved: [duckdb]
  default: duckdb
  targets:
    duckdb:
      type: duckdb
      config:
        path: state/db.duckdb
        threads: 2
metastores:
  lakehouse:
    type: iceberg
    config:
      catalog: lakehouse
transforms:
  dbt_project: dbt
  catalog: lakehouse
  assignments:
    - select: "tag:marts"
      compute: duckdb
"""
