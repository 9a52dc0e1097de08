"""`floe health`: every catalog and compute in a table, exit 1 when one fails, no secret shown."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
from pathlib import Path

from tests.helpers import VENV_BIN, run_floe

FLOE = str(VENV_BIN / "floe")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_health_reports_each_catalog_and_compute(demo_project: Path, subprocess_env: dict[str, str]) -> None:
    result = run_floe(["health"], cwd=demo_project, env=subprocess_env)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {tuple(line.split()[:4]) for line in result.stdout.splitlines()[1:]}
    assert ("catalog", "lakehouse", "sql", "healthy") in rows
    assert ("compute", "duckdb", "duckdb", "ok") in rows
    assert ("compute", "duckdb_analytics", "duckdb", "ok") in rows


def test_health_fails_for_an_unreachable_catalog_without_leaking(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    manifest = demo_project / "manifests" / "manifest.yaml"
    manifest.write_text(
        manifest.read_text().replace(
            "computes:\n",
            f"""catalogs:
  remote:
    type: rest
    config:
      uri: http://127.0.0.1:{closed_port()}
      client_id: floe
      client_secret: ${{env:FLOE_TEST_REST_SECRET}}
      max_retries: 0
computes:
""",
            1,
        )
    )
    env = {**subprocess_env, "FLOE_TEST_REST_SECRET": "CANARY-health-secret"}
    result = run_floe(["health", "--timeout", "3"], cwd=demo_project, env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split()[1]: line.split()[3] for line in result.stdout.splitlines()[1:] if line.strip()}
    assert rows["remote"] == "unhealthy" and rows["lakehouse"] == "healthy"
    assert "1 check(s) failed" in result.stderr
    assert "CANARY-health-secret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


CANARY = "CANARY-health-pg-91f3"

FAILING_COMPUTES = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {{name: health}}
state_dir: state
computes:
  approved: [fast, broken, warehouse]
  default: fast
  targets:
    fast:
      type: duckdb
      config: {{path: ":memory:", extensions: []}}
    broken:
      type: duckdb
      config: {{path: ":memory:", extensions: [], settings: {{no_such_setting: 1}}}}
    warehouse:
      type: postgres
      config:
        host: 127.0.0.1
        port: {port}
        user: floe
        password: ${{env:FLOE_HEALTH_PG_PASSWORD}}
        dbname: floe
        connect_timeout: 3
transforms:
  dbt_project: dbt
"""


def failing_computes_project(root: Path) -> tuple[Path, int]:
    (root / "dbt").mkdir(parents=True)
    (root / "dbt" / "dbt_project.yml").write_text("name: t\nprofile: t\n")
    port = closed_port()
    (root / "manifest.yaml").write_text(FAILING_COMPUTES.format(port=port))
    return root / "manifest.yaml", port


def health_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The table's rows by NAME (columns are separated by two or more spaces)."""
    lines = [line for line in stdout.splitlines() if line.startswith(("KIND ", "catalog ", "compute "))]
    header = re.split(r"\s{2,}", lines[0].strip())
    assert header == ["KIND", "NAME", "TYPE", "STATUS", "MS", "MESSAGE"], lines[0]
    rows = [
        dict(zip(header, re.split(r"\s{2,}", line.strip(), maxsplit=5), strict=True)) for line in lines[1:]
    ]
    return {row["NAME"]: row for row in rows}


def run_health(manifest: Path, in_process: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    """`floe health MANIFEST` in process (see ``run_floe``), or as a `floe` subprocess."""
    environment = {**os.environ, "FLOE_HEALTH_PG_PASSWORD": CANARY, **env}
    if in_process:
        return run_floe(["health", str(manifest)], cwd=manifest.parent, env=environment)
    return subprocess.run(
        [FLOE, "health", str(manifest)],
        cwd=manifest.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_health_fails_for_a_failing_compute_with_status_and_milliseconds(tmp_path: Path) -> None:
    manifest, port = failing_computes_project(tmp_path)
    result = run_health(manifest)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = health_rows(result.stdout)
    assert {name: row["STATUS"] for name, row in rows.items()} == {
        "fast": "ok",
        "broken": "failed",
        "warehouse": "failed",
    }
    for row in rows.values():
        assert row["KIND"] == "compute" and float(row["MS"]) >= 0, row
    assert float(rows["fast"]["MS"]) > 0
    broken = rows["broken"]["MESSAGE"]
    assert broken.startswith("compute 'broken' (duckdb): duckdb ':memory:': settings.no_such_setting: ")
    assert re.search(r"\(correlation id [0-9a-f]{12}\)$", broken)
    warehouse = rows["warehouse"]["MESSAGE"]
    assert warehouse.startswith("compute 'warehouse' (postgres): ") and f"127.0.0.1:{port}" in warehouse
    assert "2 check(s) failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert CANARY not in result.stdout + result.stderr


def json_documents(text: str) -> list[dict]:
    """Every JSON object printed from the start of a line (the console exporters' output)."""
    decoder = json.JSONDecoder()
    return [decoder.raw_decode(text, match.start())[0] for match in re.finditer(r"^\{", text, re.MULTILINE)]


def test_otel_console_exporters_print_the_validation_spans_and_metrics(tmp_path: Path) -> None:
    manifest, _ = failing_computes_project(tmp_path)
    # a process of its own: the exporters are process-wide (OpenTelemetry's global providers)
    result = run_health(
        manifest, in_process=False, OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="console"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    documents = json_documents(result.stdout)
    spans = {
        d["attributes"]["floe.compute"]: d
        for d in documents
        if d.get("name") == "floe.compute.validate_connection"
    }
    assert set(spans) == {"fast", "broken", "warehouse"}
    assert spans["fast"]["attributes"]["floe.status"] == "ok"
    assert spans["fast"]["attributes"]["floe.outcome"] == "ok"
    broken = spans["broken"]
    assert broken["attributes"]["floe.status"] == "failed" and broken["status"]["status_code"] == "ERROR"
    assert broken["attributes"]["floe.outcome"] == "error"
    assert broken["attributes"]["floe.correlation_id"] in health_rows(result.stdout)["broken"]["MESSAGE"]

    metrics = {
        metric["name"]: metric["data"]["data_points"]
        for document in documents
        for resource in document.get("resource_metrics", [])
        for scope in resource["scope_metrics"]
        for metric in scope["metrics"]
    }
    durations = {p["attributes"]["compute"]: p for p in metrics["validation_duration"]}
    assert set(durations) == {"fast", "broken", "warehouse"}
    assert all(p["count"] == 1 and p["sum"] > 0 for p in durations.values())
    errors = {p["attributes"]["compute"]: p["value"] for p in metrics["validation_errors"]}
    assert errors == {"broken": 1, "warehouse": 1}
    assert all(
        p["attributes"]["plugin_type"] in ("duckdb", "postgres") for p in metrics["validation_duration"]
    )
    assert CANARY not in result.stdout + result.stderr


def test_health_times_each_catalog_and_caps_its_timeout_at_10_s(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    started = time.perf_counter()
    result = run_floe(["health", "--timeout", "30"], cwd=demo_project, env=subprocess_env)
    wall_ms = (time.perf_counter() - started) * 1000
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].split() == ["KIND", "NAME", "TYPE", "STATUS", "MS", "MESSAGE"]
    [row] = [
        line.split() for line in result.stdout.splitlines() if line.split()[:2] == ["catalog", "lakehouse"]
    ]
    _, _, plugin_type, status, ms, *message = row
    assert (plugin_type, status) == ("sql", "healthy")
    assert ms.isdigit() and int(ms) < min(wall_ms, 10_000)  # measured, and within the command's own time
    assert "(timeout 10s)" in " ".join(message)  # --timeout 30 became the contract's 10 s bound
