"""The manifest's executor (manifest/executor.py) as a Dagster ``ExecutorDefinition``.

- ``in_process``: Dagster's ``in_process_executor`` (dbt already runs each compute group's models
  with its own threads; one process keeps the start-up cost at one).
- ``multiprocess``: ``multiprocess_executor``, each step (a compute group's ``dbt build``) in its
  own process.
- ``k8s``: dagster-k8s's ``k8s_job_executor``, a Kubernetes Job per step. Each compute group's
  op carries the ``dagster-k8s/config`` tag with its preset's requests and limits
  (dagster_stage/dbt_assets.py), which the executor's step handler applies to that step's pod.
  Image, namespace, service account, image pull secrets and the environment come from the
  manifest; secrets only as references (``env_secrets``: whole Secrets, ``secret_env``: one key
  each, as ``valueFrom.secretKeyRef``), so no secret value is ever part of a Job spec. Every step
  pod gets ``FLOE_ENV`` (and ``FLOE_MANIFEST`` / ``FLOE_PLAN`` when the code location has them),
  so it loads the same environment as the run.

Dagster's op concurrency pools (one per compute, ``floe pools``) are claimed on the instance
before a step starts, whatever the executor: a DuckDB file keeps one writer in every mode.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from floe_dagster.manifest.executor import ExecutorConfig, executor_of
from floe_dagster.manifest.loader import ENVIRONMENT_ENV, LoadedManifest

__all__ = ["CODE_LOCATION_VARIABLES", "executor_definition", "k8s_executor_config", "manifest_executor"]

# what definitions.py reads to find the manifest / plan again (paths, never secrets)
CODE_LOCATION_VARIABLES = ("FLOE_MANIFEST", "FLOE_PLAN")


def manifest_executor(loaded: LoadedManifest) -> ExecutorConfig:
    """The executor the manifest picks for the loaded environment."""
    return executor_of(loaded.manifest, loaded.environment)


# one ExecutorDefinition per distinct config: Dagster merges the Definitions of several floe
# components (one code location) only when their executors are the same object
_CONFIGURED: dict[str, ExecutorDefinition] = {}


def executor_definition(loaded: LoadedManifest) -> ExecutorDefinition:
    """The Definitions' executor: the one the manifest picks for the loaded environment."""
    config = manifest_executor(loaded)
    if config.type == "in_process":
        return in_process_executor
    settings: dict[str, Any] = {}
    if config.type == "multiprocess":
        if config.max_concurrent is not None:
            settings["max_concurrent"] = config.max_concurrent
    else:
        settings = k8s_executor_config(config, loaded.environment)
    key = json.dumps([config.type, settings], sort_keys=True)
    if key not in _CONFIGURED:
        if config.type == "multiprocess":
            _CONFIGURED[key] = multiprocess_executor.configured(settings, name="multiprocess")
        else:
            # lazy: dagster-k8s (and the kubernetes client) only where an environment runs pods
            from dagster_k8s import k8s_job_executor

            _CONFIGURED[key] = k8s_job_executor.configured(settings, name="k8s")
    return _CONFIGURED[key]


def k8s_executor_config(config: ExecutorConfig, environment: str) -> dict[str, Any]:
    """The manifest's k8s executor as ``k8s_job_executor`` config (its own schema checks it)."""
    env_vars = [f"{ENVIRONMENT_ENV}={environment}"]
    env_vars += [f"{name}={os.environ[name]}" for name in CODE_LOCATION_VARIABLES if os.environ.get(name)]
    env_vars += [f"{name}={value}" for name, value in sorted(config.env.items())]
    settings: dict[str, Any] = {
        "job_image": config.image,
        "env_vars": env_vars,
        "env_secrets": list(config.env_secrets),
        "env_config_maps": list(config.env_config_maps),
        "image_pull_secrets": [{"name": name} for name in config.image_pull_secrets],
    }
    optional = {
        "job_namespace": config.namespace,
        "service_account_name": config.service_account,
        "image_pull_policy": config.image_pull_policy,
        "max_concurrent": config.max_concurrent,
        "load_incluster_config": config.load_incluster_config,
        "kubeconfig_file": config.kubeconfig_file,
    }
    settings.update({key: value for key, value in optional.items() if value is not None})
    if config.secret_env:
        # one key of a Secret per variable: a reference the kubelet resolves, never the value
        settings["step_k8s_config"] = {
            "container_config": {
                "env": [
                    {"name": name, "value_from": {"secret_key_ref": {"name": ref.secret, "key": ref.key}}}
                    for name, ref in sorted(config.secret_env.items())
                ]
            }
        }
    return settings
