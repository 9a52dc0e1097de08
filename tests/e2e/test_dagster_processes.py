"""The demo through real Dagster processes: `dagster asset materialize` and `dagster dev`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter

from floe_dagster import MAIN_JOB, load_manifest
from floe_dagster.dagster_stage.definitions import OBSERVE_JOB
from floe_dagster.plan.builders import build_catalog
from tests.helpers import VENV_BIN

pytestmark = [pytest.mark.e2e, pytest.mark.server]

RAW_KEYS = {"lakehouse/raw/customers", "lakehouse/raw/orders", "lakehouse/raw/payments"}
MODEL_KEYS = {
    "staging/stg_customers",
    "staging/stg_orders",
    "staging/stg_payments",
    "marts/orders",
    "marts/customers",
}
RESOURCES = {"dbt", "catalog_lakehouse", "compute_duckdb", "metastore_lakehouse"}
DEMO_CUSTOMERS = 100

SERVER_START_TIMEOUT = 180.0
RUN_TIMEOUT = 300.0
STOP_TIMEOUT = 20.0


def run_cli(args: list[str], project: Path, env: dict[str, str], timeout: float) -> None:
    """Run a venv command in ``project``; fail with the output's tail unless it exits 0."""
    result = subprocess.run(
        [str(VENV_BIN / args[0]), *args[1:]],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = tail(result.stdout + result.stderr)
    assert result.returncode == 0, f"{' '.join(args)} exited {result.returncode}:\n{output}"


def seed(project: Path, env: dict[str, str]) -> None:
    run_cli(["floe", "seed", "manifests/manifest.yaml"], project, env, timeout=120)


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def read_marts_customers(project: Path) -> Any:
    loaded = load_manifest(project / "manifests" / "manifest.yaml")
    return build_catalog(loaded, "lakehouse").load_table(("marts", "customers")).scan().to_arrow()


def test_dagster_asset_materialize_subprocess(demo_project: Path, subprocess_env: dict[str, str]) -> None:
    seed(demo_project, subprocess_env)
    run_cli(
        ["dagster", "asset", "materialize", "-f", "definitions.py", "--select", "*"],
        demo_project,
        subprocess_env,
        timeout=RUN_TIMEOUT,
    )

    customers = read_marts_customers(demo_project)
    assert customers.num_rows == DEMO_CUSTOMERS
    assert {"customer_id", "lifetime_value"} <= set(customers.column_names)

    # the CLI recorded its run in the copy's DAGSTER_HOME (the fixture points DAGSTER_HOME there)
    with DagsterInstance.get() as instance:
        runs = instance.get_run_records(filters=RunsFilter(statuses=[DagsterRunStatus.SUCCESS]))
        assert len(runs) == 1, [record.dagster_run.status for record in instance.get_run_records()]
        materialization = instance.get_latest_materialization_event(AssetKey(["marts", "customers"]))
        assert materialization is not None
        assert materialization.run_id == runs[0].dagster_run.run_id


# --- dagster dev -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGINT to the whole group (dagster dev ignores a lone SIGTERM), SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    pgid = os.getpgid(process.pid)
    os.killpg(pgid, signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(pgid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


def wait_for_server(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited {process.returncode}:\n{tail(log.read_text())}")
        try:
            if requests.get(f"{base_url}/server_info", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(1)
    pytest.fail(f"dagster dev did not answer within {SERVER_START_TIMEOUT:.0f} s:\n{tail(log.read_text())}")


@contextmanager
def dagster_dev(project: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """`dagster dev` on ``project`` in its own process group; yields its base URL once it answers."""
    port = free_port()
    command = [str(VENV_BIN / "dagster"), "dev", "-f", "definitions.py", "-h", "127.0.0.1", "-p", str(port)]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=project, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_for_server(process, base_url, log)
            yield base_url
        finally:
            stop_process_group(process)


def graphql(base_url: str, query: str, **variables: Any) -> dict[str, Any]:
    response = requests.post(f"{base_url}/graphql", json={"query": query, "variables": variables}, timeout=60)
    response.raise_for_status()
    body = response.json()
    assert not body.get("errors"), body["errors"]
    return body["data"]


def key_of(node: dict[str, Any]) -> str:
    return "/".join(node["path"])


REPOSITORIES_QUERY = """
query {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection {
      nodes { name location { name } allTopLevelResourceDetails { name } }
    }
    ... on PythonError { message }
  }
}
"""

ASSET_NODES_QUERY = """
query {
  assetNodes {
    assetKey { path }
    isObservable
    dependencyKeys { path }
    dataVersion
    assetMaterializations(limit: 1) { runId }
  }
}
"""

LAUNCH_RUN_MUTATION = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

RUN_STATUS_QUERY = """
query Status($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}
"""

FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


def only_repository(base_url: str) -> dict[str, Any]:
    repositories = graphql(base_url, REPOSITORIES_QUERY)["repositoriesOrError"]
    assert repositories["__typename"] == "RepositoryConnection", repositories
    [repository] = repositories["nodes"]
    return repository


def asset_nodes(base_url: str) -> dict[str, dict[str, Any]]:
    return {key_of(node["assetKey"]): node for node in graphql(base_url, ASSET_NODES_QUERY)["assetNodes"]}


def launch_job(base_url: str, repository: dict[str, Any], job: str) -> str:
    selector = {
        "repositoryLocationName": repository["location"]["name"],
        "repositoryName": repository["name"],
        "jobName": job,
    }
    launched = graphql(base_url, LAUNCH_RUN_MUTATION, executionParams={"selector": selector})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def wait_for_run(base_url: str, run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        run = graphql(base_url, RUN_STATUS_QUERY, runId=run_id)["runOrError"]
        assert run["__typename"] == "Run", run
        if run["status"] in FINISHED:
            return run["status"]
        time.sleep(1)
    pytest.fail(f"run {run_id} did not finish within {RUN_TIMEOUT:.0f} s")


def test_dagster_dev_serves_asset_graph(
    demo_project: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    seed(demo_project, subprocess_env)
    log = tmp_path / "dagster_dev.log"
    with dagster_dev(demo_project, subprocess_env, log) as base_url:
        repository = only_repository(base_url)
        assert {resource["name"] for resource in repository["allTopLevelResourceDetails"]} >= RESOURCES

        nodes = asset_nodes(base_url)
        assert set(nodes) >= RAW_KEYS | MODEL_KEYS
        observable = {key: nodes[key]["isObservable"] for key in RAW_KEYS | MODEL_KEYS}
        assert observable == {**dict.fromkeys(RAW_KEYS, True), **dict.fromkeys(MODEL_KEYS, False)}
        dependencies = {key: {key_of(dep) for dep in node["dependencyKeys"]} for key, node in nodes.items()}
        assert "lakehouse/raw/orders" in dependencies["staging/stg_orders"]
        assert {"staging/stg_customers", "marts/orders"} <= dependencies["marts/customers"]

        # what the UI's "Observe sources" and "Materialize all" buttons do
        observe_run = launch_job(base_url, repository, OBSERVE_JOB)
        assert wait_for_run(base_url, observe_run) == "SUCCESS", tail(log.read_text())
        observed = asset_nodes(base_url)
        versions = {key: observed[key]["dataVersion"] for key in RAW_KEYS}
        # Dagster reports "INITIAL" for a source without an observed data version
        assert not {None, "INITIAL"} & set(versions.values()), versions

        main_run = launch_job(base_url, repository, MAIN_JOB)
        assert wait_for_run(base_url, main_run) == "SUCCESS", tail(log.read_text())
        materialized = asset_nodes(base_url)
        latest_runs = {
            key: [m["runId"] for m in materialized[key]["assetMaterializations"]] for key in MODEL_KEYS
        }
        assert latest_runs == {key: [main_run] for key in MODEL_KEYS}
        # dbt's source tests must not overwrite the observed data versions of the sources
        assert {key: materialized[key]["dataVersion"] for key in RAW_KEYS} == versions

    assert read_marts_customers(demo_project).num_rows == DEMO_CUSTOMERS
