"""K8s presets are real: the Kubernetes Job dagster-k8s itself launches for each compute group's step.

The demo's `prod` environment is given `executor: {type: k8s, ...}`; the job's executor is built by
dagster-k8s's ``k8s_job_executor`` from the manifest's config, on an instance whose run launcher
is the ``K8sRunLauncher`` (as the Dagster Helm chart configures it), and its step handler
launches each compute group's step. The Job bodies are taken as the kubernetes client sent them
(tests/fixtures/kube_api.py: the one API call recorded on loopback, no cluster). Checked on each
Job: the container's requests/limits are the compute's preset, image, namespace, service account
and environment come from the manifest, secrets are references only, and a canary secret value
given to the manifest's catalog and compute (``${env:...}``) appears nowhere in the Job.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, build_reconstructable_job
from dagster._core.execution.api import create_execution_plan
from dagster._core.execution.context.system import PlanData, PlanOrchestrationContext
from dagster._core.execution.context_creation_job import create_context_free_log_manager
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.init import InitExecutorContext
from dagster._core.executor.step_delegating.step_handler.base import StepHandlerContext
from dagster._core.system_config.objects import ResolvedRunConfig
from dagster._core.test_utils import create_run_for_test
from dagster._grpc.types import ExecuteStepArgs

from floe_dagster import MAIN_JOB, load_manifest
from floe_dagster.plan.builders import build_compute
from tests.fixtures.kube_api import KubeApi

IMAGE = "registry.example.com/jaffle-lakehouse:1.2.3"
CANARY = "floe-canary-9f3b7c1e-k8s-secret-value"
CANARY_VARIABLE = "FLOE_TEST_CANARY_PASSWORD"


def k8s_environment(kubeconfig: Path) -> str:
    return f"""  prod:
    executor:
      type: k8s
      image: {IMAGE}
      namespace: data-platform
      service_account: floe-steps
      image_pull_policy: IfNotPresent
      image_pull_secrets: [registry-credentials]
      env_secrets: [floe-compute-credentials]
      secret_env:
        {CANARY_VARIABLE}: {{secret: catalog-database, key: password}}
      env_config_maps: [floe-settings]
      env:
        DBT_LOG_FORMAT: json
      max_concurrent: 2
      load_incluster_config: false
      kubeconfig_file: {kubeconfig}
    catalogs:
      lakehouse:
        config:
          uri: postgresql+psycopg2://floe@catalog-db.data-platform.svc:5432/catalog
          password: ${{env:{CANARY_VARIABLE}}}
"""


@pytest.fixture
def k8s_project(demo_project: Path, kube_api: KubeApi, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    manifest = demo_project / "manifests" / "manifest.yaml"
    text = manifest.read_text()
    assert text.count("  prod:\n") == 1
    manifest.write_text(text.replace("  prod:\n", k8s_environment(kube_api.kubeconfig)))
    # the canary is a credential the prod catalog reads (${env:...}): it must never reach a Job
    monkeypatch.setenv(CANARY_VARIABLE, CANARY)
    monkeypatch.setenv("FLOE_ENV", "prod")
    yield demo_project


def k8s_instance(home: Path, kubeconfig: Path) -> DagsterInstance:
    """An instance whose run launcher is the K8sRunLauncher, as the Dagster Helm chart sets it."""
    (home / "dagster.yaml").write_text(
        json.dumps(
            {
                "telemetry": {"enabled": False},
                "run_launcher": {
                    "module": "dagster_k8s",
                    "class": "K8sRunLauncher",
                    "config": {
                        "service_account_name": "dagster",
                        "instance_config_map": "dagster-instance",
                        "postgres_password_secret": "dagster-postgresql-secret",
                        "dagster_home": "/opt/dagster/dagster_home",
                        "job_namespace": "dagster",
                        "load_incluster_config": False,
                        "kubeconfig_file": str(kubeconfig),
                    },
                },
            }
        )
    )
    return DagsterInstance.from_config(str(home))


def launched_jobs(project: Path, api: KubeApi) -> dict[str, dict[str, Any]]:
    """Each compute group's step launched by the executor the manifest configures -> its Job."""
    manifest = project / "manifests" / "manifest.yaml"
    recon = build_reconstructable_job(
        "floe_dagster.dagster_stage.run",
        "main_job_of",
        reconstructable_kwargs={"manifest_path": str(manifest), "environment_name": "prod"},
    )
    job = recon.get_definition()
    assert job.executor_def.name == "k8s"
    # the executor's config as a run resolves it (the manifest's settings, through dagster-k8s's schema)
    executor_config = ResolvedRunConfig.build(job, {}).execution.execution_engine_config
    with k8s_instance(Path(project / ".floe" / "dagster_home"), api.kubeconfig) as instance:
        executor = job.executor_def.executor_creation_fn(  # type: ignore[misc]
            InitExecutorContext(
                job=recon, executor_def=job.executor_def, executor_config=executor_config, instance=instance
            )
        )
        handler = executor._step_handler  # the K8sStepHandler dagster-k8s built
        run = create_run_for_test(instance, job_name=MAIN_JOB, job_code_origin=recon.get_python_origin())
        plan = create_execution_plan(recon)
        plan_context = PlanOrchestrationContext(
            plan_data=PlanData(
                job=recon,
                dagster_run=run,
                instance=instance,
                execution_plan=plan,
                raise_on_error=True,
                retry_mode=RetryMode.DISABLED,
            ),
            log_manager=create_context_free_log_manager(instance, run),
            executor=executor,
            output_capture=None,
        )
        jobs = {}
        for step in plan.steps:
            before = len(api.created)
            context = StepHandlerContext(
                instance=instance,
                plan_context=plan_context,
                steps=[step],
                execute_step_args=ExecuteStepArgs(recon.get_python_origin(), run.run_id, [step.key]),
            )
            list(handler.launch_step(context))
            assert len(api.created) == before + 1, f"step {step.key} launched no Job"
            namespace, body = api.created[-1]
            jobs[step.key] = {"namespace": namespace, "body": body, "job": json.loads(body)}
        return jobs


def container(job: dict[str, Any]) -> dict[str, Any]:
    [only] = job["spec"]["template"]["spec"]["containers"]
    return only


def test_each_compute_groups_step_is_a_job_sized_by_its_preset_without_secret_values(
    k8s_project: Path, kube_api: KubeApi
) -> None:
    loaded = load_manifest(k8s_project / "manifests" / "manifest.yaml", environment="prod")
    jobs = launched_jobs(k8s_project, kube_api)
    assert set(jobs) == {"dbt_duckdb", "dbt_duckdb_analytics"}
    for step, compute in (("dbt_duckdb", "duckdb"), ("dbt_duckdb_analytics", "duckdb_analytics")):
        launched = jobs[step]
        assert launched["namespace"] == "data-platform"
        job = launched["job"]
        assert job["kind"] == "Job" and job["metadata"]["labels"]["dagster/op"] == step
        # the compute's preset, from its plugin (prod: duckdb medium, duckdb_analytics large)
        plugin, _ = build_compute(loaded, compute)
        preset = plugin.get_resource_requirements(loaded.target(compute).workload_size).as_k8s()
        assert container(job)["resources"] == preset
        assert container(job)["image"] == IMAGE
        assert container(job)["imagePullPolicy"] == "IfNotPresent"
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == "floe-steps"
        assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
        env = {e["name"]: e for e in container(job)["env"]}
        assert env["FLOE_ENV"]["value"] == "prod"  # the step pod loads the same environment
        assert env["DBT_LOG_FORMAT"]["value"] == "json"
        assert env[CANARY_VARIABLE] == {
            "name": CANARY_VARIABLE,
            "valueFrom": {"secretKeyRef": {"name": "catalog-database", "key": "password"}},
        }
        env_from = container(job)["envFrom"]
        assert {"secretRef": {"name": "floe-compute-credentials"}} in env_from
        assert {"configMapRef": {"name": "floe-settings"}} in env_from
    # the two presets differ, so each Job carries its own group's, not one for the run
    sizes = {step: container(j["job"])["resources"] for step, j in jobs.items()}
    assert sizes["dbt_duckdb"] != sizes["dbt_duckdb_analytics"]

    # no secret value in any Job: the canary (the prod catalog's password) is only referenced
    for step, launched in jobs.items():
        body = launched["body"]
        assert CANARY not in body, f"the canary secret is in the Job of {step}"
        # the step's arguments travel compressed in the Job's env: look inside them too
        env = {e["name"]: e.get("value") for e in container(launched["job"])["env"]}
        args = zlib.decompress(base64.b64decode(env["DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS"])).decode()
        assert step in args
        assert CANARY not in args, f"the canary secret is in the step arguments of {step}"
