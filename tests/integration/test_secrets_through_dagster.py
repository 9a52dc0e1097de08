"""A canary credential must never surface: not in profiles, logs, Dagster events or metadata."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import DagsterInstance

from floe_dagster import MAIN_JOB, build_definitions
from tests.fixtures.postgres import PostgresServer

pytestmark = [pytest.mark.server, pytest.mark.e2e]

MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {{name: secret-canary}}
computes:
  approved: [warehouse]
  default: warehouse
  targets:
    warehouse:
      type: postgres
      config:
        host: {host}
        port: {port}
        user: {user}
        password: ${{env:FLOE_CANARY_PG_PASSWORD}}
        dbname: {database}
        schema: analytics
        timeout_seconds: 60
transforms:
  dbt_project: dbt
"""


def write_project(root: Path, server: PostgresServer, database: str) -> Path:
    (root / "dbt" / "models").mkdir(parents=True)
    (root / "dbt" / "dbt_project.yml").write_text("name: canary\nprofile: canary\nconfig-version: 2\n")
    (root / "dbt" / "models" / "answer.sql").write_text("select 42 as answer\n")
    manifest = root / "manifest.yaml"
    manifest.write_text(
        MANIFEST.format(host=server.host, port=server.port, user=server.user, database=database)
    )
    return manifest


def every_text_under(root: Path) -> str:
    chunks = []
    for path in root.rglob("*"):
        if path.is_file() and path.stat().st_size < 20_000_000:
            chunks.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(chunks)


def test_canary_password_reaches_postgres_and_nothing_else(
    postgres_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    canary = postgres_server.password  # the real password is the canary: it must work, and never show
    monkeypatch.setenv("FLOE_CANARY_PG_PASSWORD", canary)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    database = postgres_server.create_database()
    defs = build_definitions(write_project(tmp_path, postgres_server, database))
    instance = DagsterInstance.get()
    result = defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance)
    assert result.success

    with postgres_server.connect(database) as con, con.cursor() as cur:
        cur.execute("select answer from analytics.answer")
        assert cur.fetchone() == (42,)

    records = instance.get_records_for_run(result.run_id).records
    events = "\n".join(json.dumps(r.event_log_entry.to_json()) for r in records)
    assert "answer" in events  # the events are really there
    out, err = capfd.readouterr()
    for where, text in {
        "dagster events": events,
        "stdout": out,
        "stderr": err,
        "files (profiles, dbt logs and artifacts, dagster storage)": every_text_under(tmp_path),
    }.items():
        assert canary not in text, f"the canary password leaked into {where}"
