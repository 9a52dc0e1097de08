"""`floe health`: every catalog and compute in a table, exit 1 when one fails, no secret shown."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from tests.helpers import VENV_BIN

FLOE = str(VENV_BIN / "floe")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_health_reports_each_catalog_and_compute(demo_project: Path, subprocess_env: dict[str, str]) -> None:
    result = subprocess.run(
        [FLOE, "health"], cwd=demo_project, env=subprocess_env, capture_output=True, text=True, timeout=300
    )
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
    result = subprocess.run(
        [FLOE, "health", "--timeout", "3"],
        cwd=demo_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split()[1]: line.split()[3] for line in result.stdout.splitlines()[1:] if line.strip()}
    assert rows["remote"] == "unhealthy" and rows["lakehouse"] == "healthy"
    assert "1 check(s) failed" in result.stderr
    assert "CANARY-health-secret" not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_health_times_each_catalog_and_caps_its_timeout_at_10_s(
    demo_project: Path, subprocess_env: dict[str, str]
) -> None:
    started = time.perf_counter()
    result = subprocess.run(
        [FLOE, "health", "--timeout", "30"],
        cwd=demo_project,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
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
