"""The manifest's ``executor:``: how Dagster runs the steps of floe's jobs, per environment.

A deployment choice, not governance: ``executor:`` at the top level is the default of every
environment, ``environments.<env>.executor`` replaces it in that environment.

- ``in_process`` (the default): every step in the run's process, one at a time (local runs).
- ``multiprocess``: each step (one dbt build per compute group) in its own process.
- ``k8s``: dagster-k8s's ``k8s_job_executor``, one Kubernetes Job (pod) per step, each compute
  group's pod sized by its preset (the ``dagster-k8s/config`` op tag). The image, namespace,
  service account and the *references* to Kubernetes secrets come from here; a secret's value
  never does: ``env`` takes plain values only, and a name that looks like a credential there is
  refused with the way to reference a Kubernetes secret instead.

``executor: multiprocess`` is short for ``executor: {type: multiprocess}``. Pure: no Dagster.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, field_validator, model_validator
from pydantic.json_schema import JsonSchemaValue

from floe_dagster.plugins.base import located_error
from floe_dagster.plugins.redaction import is_secret_key

if TYPE_CHECKING:  # schema.py imports this module
    from floe_dagster.manifest.schema import Manifest

__all__ = ["EXECUTOR_TYPES", "ExecutorConfig", "SecretKeyRef", "executor_of"]

ExecutorType = Literal["in_process", "multiprocess", "k8s"]
EXECUTOR_TYPES: tuple[str, ...] = ("in_process", "multiprocess", "k8s")

# Kubernetes object names (RFC 1123 subdomain: secrets, config maps, service accounts) and
# namespaces (RFC 1123 label); environment variable names as Kubernetes accepts them
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_SECRET_KEY_NAME = re.compile(r"^[-._a-zA-Z0-9]+$")

# the fields only the k8s executor reads
K8S_FIELDS = (
    "image",
    "namespace",
    "service_account",
    "image_pull_policy",
    "image_pull_secrets",
    "env_secrets",
    "secret_env",
    "env_config_maps",
    "env",
    "load_incluster_config",
    "kubeconfig_file",
)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _k8s_name(value: str, what: str, pattern: re.Pattern[str] = _SUBDOMAIN, limit: int = 253) -> str:
    if len(value) > limit or not pattern.match(value):
        raise _error(
            (),
            f"{what} '{value}' is not a valid Kubernetes name: lower-case letters, digits and '-'"
            f" (at most {limit} characters), starting and ending with a letter or digit",
        )
    return value


class SecretKeyRef(StrictModel):
    """One key of a Kubernetes Secret, given to the step pods as an environment variable."""

    secret: str = Field(description="Name of the Kubernetes Secret.", examples=["snowflake-credentials"])
    key: str = Field(description="Key inside the Secret.", examples=["password"])

    @field_validator("secret")
    @classmethod
    def _secret_name(cls, value: str) -> str:
        return _k8s_name(value, "secret")

    @field_validator("key")
    @classmethod
    def _key_name(cls, value: str) -> str:
        if not _SECRET_KEY_NAME.match(value):
            raise _error(
                (), f"secret key '{value}' is not a valid key of a Kubernetes Secret ([-._a-zA-Z0-9]+)"
            )
        return value


class ExecutorConfig(StrictModel):
    """How Dagster runs the steps of floe's jobs in one environment."""

    type: ExecutorType = Field(
        "in_process",
        description=(
            "in_process (default: every step in the run's process), multiprocess (a process per"
            " step) or k8s (dagster-k8s's k8s_job_executor: a Kubernetes Job per step, sized by"
            " its compute's workload_size preset)."
        ),
        examples=["k8s"],
    )
    max_concurrent: int | None = Field(
        None, ge=1, description="multiprocess / k8s: at most this many steps at once in one run."
    )
    image: str | None = Field(
        None,
        min_length=1,
        description="k8s: the user code image the step pods run (required for k8s).",
        examples=["registry.example.com/jaffle-lakehouse:1.0.0"],
    )
    namespace: str | None = Field(
        None, description="k8s: namespace of the step Jobs (default: the run launcher's).", examples=["data"]
    )
    service_account: str | None = Field(
        None, description="k8s: service account of the step pods.", examples=["floe-steps"]
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    image_pull_secrets: list[str] = Field(
        default_factory=list, description="k8s: names of docker-registry Secrets to pull the image."
    )
    env_secrets: list[str] = Field(
        default_factory=list,
        description="k8s: Kubernetes Secrets whose every key becomes an environment variable of the pods.",
        examples=[["floe-compute-credentials"]],
    )
    secret_env: dict[str, SecretKeyRef] = Field(
        default_factory=dict,
        description=(
            "k8s: environment variables of the step pods read from one key of a Kubernetes Secret"
            " (what a compute's ${env:NAME} then reads)."
        ),
        examples=[{"SNOWFLAKE_PASSWORD": {"secret": "snowflake-credentials", "key": "password"}}],
    )
    env_config_maps: list[str] = Field(
        default_factory=list, description="k8s: ConfigMaps whose keys become environment variables."
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="k8s: plain (non-secret) environment variables of the step pods.",
        examples=[{"DBT_LOG_FORMAT": "json"}],
    )
    load_incluster_config: bool | None = Field(
        None,
        description=(
            "k8s: read the cluster credentials of the pod the run executes in (default, as the"
            " run launcher does); false: a kubeconfig file (kubeconfig_file, else the default one)."
        ),
    )
    kubeconfig_file: str | None = Field(
        None, description="k8s: path of a kubeconfig file (with load_incluster_config: false)."
    )

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: Any, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # editors accept the shorthand too (`executor: multiprocess`): a string must be one of the
        # types (``pattern`` applies to strings only), a mapping has the properties below
        schema = handler(core_schema)
        schema["type"] = ["object", "string"]
        schema["pattern"] = f"^({'|'.join(EXECUTOR_TYPES)})$"
        return schema

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `executor: multiprocess` means `executor: {type: multiprocess}`
        return {"type": data} if isinstance(data, str) else data

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return None if value is None else _k8s_name(value, "namespace", _LABEL, 63)

    @field_validator("service_account")
    @classmethod
    def _service_account(cls, value: str | None) -> str | None:
        return None if value is None else _k8s_name(value, "service account")

    @field_validator("image_pull_secrets", "env_secrets", "env_config_maps")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return [_k8s_name(v, "name") for v in value]

    @field_validator("secret_env")
    @classmethod
    def _secret_env_names(cls, value: dict[str, SecretKeyRef]) -> dict[str, SecretKeyRef]:
        for name in value:
            _env_name(name)
        return value

    @field_validator("env")
    @classmethod
    def _plain_env(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            _env_name(name)
            if is_secret_key(name):
                # the value is not echoed: it may be the very secret
                raise _error(
                    (name,),
                    f"env '{name}' looks like a credential, and a value in the manifest is not secret:"
                    f" reference a Kubernetes Secret instead, e.g. secret_env: {{{name}: {{secret:"
                    " <secret name>, key: <key>}}, or list the Secret under env_secrets",
                )
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> ExecutorConfig:
        given = [name for name in K8S_FIELDS if name in self.model_fields_set]
        if self.type != "k8s" and given:
            them = "it" if len(given) == 1 else "them"
            raise _error(
                (given[0],),
                f"only the k8s executor reads {', '.join(given)};"
                f" set type: k8s, or remove {them} for the {self.type} executor",
            )
        if self.type == "in_process" and self.max_concurrent is not None:
            raise _error(
                ("max_concurrent",),
                "the in_process executor runs one step at a time; use type: multiprocess"
                " (or k8s) to run steps in parallel, or remove max_concurrent",
            )
        if self.type == "k8s" and not self.image:
            raise _error(
                ("type",),
                "the k8s executor needs image: the user code image every step pod runs (the image of"
                " your code location, e.g. image: registry.example.com/my-project:1.0.0)",
            )
        if self.kubeconfig_file is not None and self.load_incluster_config is not False:
            raise _error(
                ("kubeconfig_file",),
                "kubeconfig_file is read only with load_incluster_config: false;"
                " add it, or remove kubeconfig_file",
            )
        return self


def _env_name(name: str) -> str:
    if not _ENV_NAME.match(name):
        raise _error(
            (name,), f"'{name}' is not a valid environment variable name ([-._a-zA-Z][-._a-zA-Z0-9]*)"
        )
    return name


def _error(loc: tuple[str | int, ...], message: str) -> Exception:
    """A validation error at ``loc`` (relative to the field or model being validated), without
    pydantic's "Value error," prefix and without the input (plugins/base.py ``located_error``)."""
    return located_error("ExecutorConfig", loc, message)


def executor_of(manifest: Manifest, environment: str) -> ExecutorConfig:
    """An environment's executor: its own, else the manifest's ``executor:``, else in_process."""
    overrides = manifest.environments.get(environment)
    return (
        (overrides.executor if overrides is not None else None)
        or manifest.executor
        or ExecutorConfig.model_validate({})
    )
