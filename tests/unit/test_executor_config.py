"""The manifest's executor: per environment, what Dagster executor the definitions get, and a
clear error (what, where, how to fix) for every bad executor config."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import in_process_executor

from floe_dagster.dagster_stage.executors import executor_definition, k8s_executor_config
from floe_dagster.manifest import ManifestError, load_manifest
from floe_dagster.manifest.executor import executor_of
from tests.helpers import VALID, run_floe

K8S = """\
executor: multiprocess
environments:
  dev: {}
  prod:
    executor:
      type: k8s
      image: registry.example.com/lakehouse:2.0.0
      namespace: data
      service_account: floe-steps
      env_secrets: [warehouse-credentials]
      secret_env:
        SNOWFLAKE_PASSWORD: {secret: snowflake, key: password}
      env: {DBT_LOG_FORMAT: json}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: t\nprofile: t\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOE_ENV", raising=False)
    return tmp_path


def write(workdir: Path, extra: str) -> Path:
    path = workdir / "manifest.yaml"
    path.write_text(VALID + extra)
    return path


def problems_of(path: Path, environment: str | None = None) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifest(path, environment=environment)
    return [str(p) for p in info.value.problems]


def test_in_process_is_the_default(workdir: Path) -> None:
    loaded = load_manifest(write(workdir, ""))
    assert executor_of(loaded.manifest, loaded.environment).type == "in_process"
    assert executor_definition(loaded) is in_process_executor


def test_each_environment_picks_its_executor(workdir: Path) -> None:
    path = write(workdir, K8S)
    dev = load_manifest(path, environment="dev")
    assert executor_of(dev.manifest, "dev").type == "multiprocess"  # the top-level default
    assert executor_definition(dev).name == "multiprocess"
    prod = load_manifest(path, environment="prod")
    assert executor_of(prod.manifest, "prod").type == "k8s"
    k8s = executor_definition(prod)
    assert k8s.name == "k8s"
    config = k8s_executor_config(executor_of(prod.manifest, "prod"), "prod")
    assert config["job_image"] == "registry.example.com/lakehouse:2.0.0"
    assert config["job_namespace"] == "data"
    assert config["service_account_name"] == "floe-steps"
    assert config["env_secrets"] == ["warehouse-credentials"]
    assert "FLOE_ENV=prod" in config["env_vars"] and "DBT_LOG_FORMAT=json" in config["env_vars"]
    assert config["step_k8s_config"]["container_config"]["env"] == [
        {
            "name": "SNOWFLAKE_PASSWORD",
            "value_from": {"secret_key_ref": {"name": "snowflake", "key": "password"}},
        }
    ]


def test_the_k8s_config_passes_dagster_k8s_own_schema(workdir: Path) -> None:
    """What floe hands k8s_job_executor is valid for dagster-k8s itself (its config schema)."""
    from dagster._config import process_config, resolve_to_config_type
    from dagster_k8s.executor import _K8S_EXECUTOR_CONFIG_SCHEMA

    prod = load_manifest(write(workdir, K8S), environment="prod")
    result = process_config(
        resolve_to_config_type(_K8S_EXECUTOR_CONFIG_SCHEMA),
        k8s_executor_config(executor_of(prod.manifest, "prod"), "prod"),
    )
    assert result.success, result.errors


def test_max_concurrent_sizes_the_multiprocess_executor(workdir: Path) -> None:
    loaded = load_manifest(write(workdir, "executor: {type: multiprocess, max_concurrent: 2}\n"))
    assert executor_of(loaded.manifest, loaded.environment).max_concurrent == 2
    assert executor_definition(loaded).name == "multiprocess"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "executor: k8ss\n",
            "manifest.yaml:31:11: executor.type: Input should be 'in_process', 'multiprocess' or 'k8s'"
            " (got 'k8ss')",
        ),
        (
            "executor: {type: k8s}\n",
            "manifest.yaml:31:18: executor.type: the k8s executor needs image: the user code image every"
            " step pod runs (the image of your code location, e.g. image:"
            " registry.example.com/my-project:1.0.0)",
        ),
        (
            "executor: {type: multiprocess, image: x/y:1}\n",
            "manifest.yaml:31:39: executor.image: only the k8s executor reads image; set type: k8s,"
            " or remove it for the multiprocess executor",
        ),
        (
            "executor: {type: in_process, max_concurrent: 4}\n",
            "manifest.yaml:31:46: executor.max_concurrent: the in_process executor runs one step at a"
            " time; use type: multiprocess (or k8s) to run steps in parallel, or remove max_concurrent",
        ),
        (
            "executor: {type: k8s, image: x/y:1, namespace: Data_Team}\n",
            "manifest.yaml:31:48: executor.namespace: namespace 'Data_Team' is not a valid"
            " Kubernetes name: lower-case letters, digits and '-' (at most 63 characters), starting and"
            " ending with a letter or digit",
        ),
        (
            "executor: {type: k8s, image: x/y:1, imagee: z}\n",
            "manifest.yaml:31:37: executor.imagee: unknown key 'imagee' in executor (did you mean"
            " 'image'?); remove it or check its spelling",
        ),
    ],
)
def test_bad_executor_config_is_a_positioned_error_saying_how_to_fix_it(
    workdir: Path, extra: str, expected: str
) -> None:
    assert problems_of(write(workdir, extra)) == [expected]


def test_a_secret_value_in_env_is_refused_without_echoing_it(workdir: Path) -> None:
    extra = "environments:\n  prod:\n    executor:\n      type: k8s\n      image: x/y:1\n"
    extra += "      env: {WAREHOUSE_PASSWORD: hunter2-canary}\n"
    [problem] = problems_of(write(workdir, extra), environment="prod")
    assert problem.startswith("manifest.yaml:36:33: environments.prod.executor.env.WAREHOUSE_PASSWORD: ")
    assert "env 'WAREHOUSE_PASSWORD' looks like a credential" in problem
    assert "secret_env: {WAREHOUSE_PASSWORD: {secret: <secret name>, key: <key>}}" in problem
    assert "hunter2-canary" not in problem


def test_floe_run_refuses_the_k8s_executor_with_the_way_out(workdir: Path) -> None:
    path = write(workdir, "executor: {type: k8s, image: registry.example.com/lakehouse:1}\n")
    result = run_floe(["run", str(path)], cwd=workdir)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "floe: [dagster:executor] environment 'dev' runs its steps as Kubernetes Jobs (executor: k8s),"
        " which a Dagster deployment on Kubernetes launches (docs/deploy.md); `floe run` runs on this"
        " machine: pick an environment whose executor is in_process or multiprocess"
        " (FLOE_ENV=<environment> or --env), or launch the job from that deployment"
    )


def test_one_executor_config_is_one_definition_so_two_platforms_merge(workdir: Path) -> None:
    """Dagster merges Definitions (two floe components in one code location) only when their
    executors are the same object."""
    from dagster import Definitions

    path = write(workdir, K8S)
    for environment in ("dev", "prod"):
        first = executor_definition(load_manifest(path, environment=environment))
        second = executor_definition(load_manifest(path, environment=environment))
        assert first is second
        merged = Definitions.merge(Definitions(executor=first), Definitions(executor=second))
        assert merged.executor is first


def test_the_editors_schema_takes_both_spellings_and_refuses_a_wrong_one() -> None:
    """manifests/manifest.schema.json (what an editor checks with): `executor: multiprocess` and the
    mapping are both valid; an unknown type or key is not."""
    import jsonschema

    from floe_dagster.manifest.schema import manifest_json_schema

    validator = jsonschema.Draft202012Validator(manifest_json_schema())
    base = {"apiVersion": "floe.dev/v1", "kind": "Manifest", "metadata": {"name": "t"}}
    good = [
        {"executor": "multiprocess"},
        {"environments": {"prod": {"executor": {"type": "k8s", "image": "x/y:1", "namespace": "data"}}}},
    ]
    for extra in good:
        assert list(validator.iter_errors({**base, **extra})) == [], extra
    for extra in ({"executor": "k8ss"}, {"executor": {"type": "k8s", "imagee": "x/y:1"}}):
        assert list(validator.iter_errors({**base, **extra})), extra
