"""The README's UI command, run as written, loads the code location with the demo's assets;
plain `dagster dev` and `dg` from the project folder find the same code location.

The command is read from the README (the ```bash block after `<!-- test: ui -->`), not copied
here, and runs in a copy of the project laid out as a clone (Makefile, pyproject.toml, scripts/,
the venv linked as .venv). Only the port differs, through the environment (`DEV_PORT`), so that
the test does not need port 3000.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.helpers import REPO, VENV_BIN
from tests.project_clone import clean_environment, clone_project
from tests.readme_blocks import marked_blocks

pytestmark = [pytest.mark.e2e, pytest.mark.server]

START_TIMEOUT = 300.0
STOP_GRACE = 15.0
DEMO_KEYS = {
    "lakehouse/raw/customers",
    "lakehouse/raw/orders",
    "lakehouse/raw/payments",
    "staging/stg_customers",
    "staging/stg_orders",
    "staging/stg_payments",
    "marts/orders",
    "marts/customers",
    "floe_compute/duckdb",
    "floe_compute/duckdb_analytics",
}
DEMO_GROUPS = {"floe_health", "lakehouse", "staging", "marts"}

LOCATIONS = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""
ASSETS = "{ assetNodes { assetKey { path } groupName } }"


def ui_command() -> str:
    [block] = marked_blocks(REPO / "README.md", "ui")
    [command] = block.commands
    return command


@pytest.fixture
def clone(parsed_demo: Path, tmp_path: Path) -> Path:
    """The demo project as a fresh clone would have it, its venv installed (linked), seeded."""
    root = clone_project(tmp_path / "project", parsed_from=parsed_demo)
    seeded = subprocess.run(
        [str(VENV_BIN / "floe"), "seed"],
        cwd=root,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stderr
    return root


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to the whole process group, SIGKILL when it lingers (dagster dev ignores signals
    for 20-45 s on a busy machine)."""
    if process.poll() is not None:
        return
    pgid = os.getpgid(process.pid)
    os.killpg(pgid, signal.SIGINT)
    try:
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=STOP_GRACE)
    with contextlib.suppress(ProcessLookupError):  # children that outlived the leader
        os.killpg(pgid, signal.SIGKILL)


def graphql(base_url: str, query: str) -> dict[str, Any]:
    response = requests.post(f"{base_url}/graphql", json={"query": query}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]


def tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def loaded_locations(base_url: str) -> list[dict[str, Any]] | None:
    """The code locations once none is loading any more; None while the server is not up."""
    try:
        workspace = graphql(base_url, LOCATIONS)["workspaceOrError"]
    except requests.RequestException:
        return None
    entries = workspace.get("locationEntries") or []
    if not entries or any(e["loadStatus"] != "LOADED" for e in entries):
        return None
    return entries


def start(command: list[str] | str, cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            shell=isinstance(command, str),
            executable="/bin/bash" if isinstance(command, str) else None,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole
        )


def assert_demo_location(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    entries = None
    while entries is None:
        if process.poll() is not None:
            pytest.fail(f"the UI command exited {process.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no code location loaded within {START_TIMEOUT:.0f} s:\n{tail(log)}")
        time.sleep(2)
        entries = loaded_locations(base_url)
    assert len(entries) == 1, entries
    assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries[0]
    nodes = graphql(base_url, ASSETS)["assetNodes"]
    keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
    assert keys >= DEMO_KEYS, sorted(DEMO_KEYS - keys)
    assert {n["groupName"] for n in nodes} == DEMO_GROUPS


def test_the_readme_ui_command_loads_the_demo_code_location(clone: Path, tmp_path: Path) -> None:
    command = ui_command()
    assert command.startswith("make dev"), command  # what the README promises a newcomer
    port = free_port()
    env = {**clean_environment(), "DEV_PORT": str(port)}
    log = tmp_path / "ui.log"
    process = start(command, clone, env, log)
    try:
        assert_demo_location(process, f"http://127.0.0.1:{port}", log)
    finally:
        stop_group(process)
    # the instance of the Makefile, with the pools floe set on it
    assert (clone / ".floe" / "dagster_home" / "dagster.yaml").is_file()


def test_plain_dagster_and_dg_find_the_code_location_from_the_project_folder(clone: Path) -> None:
    """[tool.dagster] and [tool.dg] in pyproject.toml: no -f, no -m, no workspace.yaml."""
    env = {**clean_environment(), "DAGSTER_HOME": str(clone / ".floe" / "dagster_home")}
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    dagster = subprocess.run(
        [str(VENV_BIN / "dagster"), "definitions", "validate"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dagster.returncode == 0, dagster.stdout + dagster.stderr
    assert "Validation successful for code location definitions" in dagster.stdout + dagster.stderr

    (clone / "floe_dagster").symlink_to(REPO / "floe_dagster")  # dg wants the root module in the project
    dg = subprocess.run(
        [str(VENV_BIN / "dg"), "list", "defs", "--json"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert dg.returncode == 0, dg.stdout + dg.stderr
    assert '"marts/customers"' in dg.stdout or "marts/customers" in dg.stdout, dg.stdout[-2000:]
