"""The compute contract: an engine that runs dbt transforms, as one dbt target."""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from floe_dagster.core.errors import ComputeConfigurationError
from floe_dagster.plugins.base import Plugin, PluginConfig

if TYPE_CHECKING:
    from floe_dagster.plugins.catalog import CatalogPlugin

__all__ = [
    "REMOTE_ENGINE_PRESETS",
    "ComputePlugin",
    "ConnectionResult",
    "DbtProfileContext",
    "ResourceSpec",
    "pick_preset",
    "redact",
    "secret_env_name",
    "secret_like_keys",
    "secret_reference",
]


@dataclass(frozen=True)
class ConnectionResult:
    """The outcome of ``validate_connection``.

    A failed result carries a ``correlation_id`` once it went through
    :func:`floe_dagster.plugins.telemetry.validate_compute` (the id is also in the message and on the
    validation span); a plugin may set one itself, e.g. the id of the ``ComputeError`` it mapped.
    """

    status: Literal["ok", "failed"]
    latency_ms: float
    message: str = ""
    correlation_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class ResourceSpec:
    """Kubernetes requests and limits for a workload preset."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str

    def as_k8s(self) -> dict[str, dict[str, str]]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


@dataclass(frozen=True)
class DbtProfileContext:
    """What a compute needs to know, beyond its own config, to write its dbt output."""

    compute_name: str
    manifest_path: str
    environment: str
    state_dir: str
    catalogs: tuple[str, ...]
    write_catalog: str | None
    workload_size: str = "small"
    # (name, thrift URIs) of each Hive Metastore of the manifest: engines that talk to one (Spark)
    hive_metastores: tuple[tuple[str, str], ...] = ()


class ComputePlugin(Plugin, abc.ABC):
    """A query engine used as a dbt target. Stateless: every method takes the validated config."""

    dbt_adapter_type: str = ""

    @abc.abstractmethod
    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        """One dbt output (the mapping under ``outputs.<target>`` in profiles.yml)."""

    @abc.abstractmethod
    def get_required_dbt_packages(self) -> list[str]: ...

    def required_drivers(self, config: PluginConfig | None = None) -> dict[str, str]:
        """The Python drivers ``validate_connection`` imports (for ``config``, or by default when
        None): import module -> pip requirement. Checked with the dbt packages before a run or a
        connection check (plugins/dbt_packages.py). Default: none besides the dbt adapter's."""
        return {}

    @abc.abstractmethod
    def validate_connection(self, config: PluginConfig) -> ConnectionResult: ...

    @abc.abstractmethod
    def get_resource_requirements(self, workload_size: str) -> ResourceSpec: ...

    @abc.abstractmethod
    def get_catalog_attachment_sql(self, catalog: CatalogPlugin) -> list[str] | None: ...

    def dbt_env(self, config: PluginConfig, compute_name: str) -> dict[str, str]:
        """Environment variables for this compute's dbt subprocess only (how secrets reach dbt).

        Profiles reference secrets as ``{{ env_var('...') }}``, never in clear; floe sets these
        variables for the one ``dbt --target <compute>`` invocation that needs them.
        """
        return {}

    def prepare_dbt_run(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, str]:
        """Called right before this compute's dbt process starts, after every upstream group of the
        run has finished; returns more variables for that process only. Default: nothing to do."""
        return {}

    def finish_dbt_run(self, config: PluginConfig, context: DbtProfileContext) -> None:
        """Called after this compute's dbt process ended (before any downstream group starts)."""

    def max_concurrency(self, config: PluginConfig) -> int | None:
        """How many dbt steps may use this compute at once (its Dagster pool's limit); None: no limit."""
        return None

    def runs_dbt_in_process(self, config: PluginConfig) -> bool:
        """Whether Dagster may run this compute's dbt inside the step's process (dbt's ``dbtRunner``).

        Only for adapters that leave nothing running in the process after an invocation and need
        no work after dbt's process ends (see floe_dagster/transforms/dbt_in_process.py); the default is
        a ``dbt`` subprocess.
        """
        return False

    def release_dbt_in_process(self, config: PluginConfig) -> None:
        """After dbt ran in this process: release what its adapter keeps (a subprocess's exit would)."""


def pick_preset(presets: dict[str, ResourceSpec], workload_size: str, compute_type: str) -> ResourceSpec:
    """The preset for ``workload_size``, or an error listing the presets there are."""
    if workload_size not in presets:
        raise ComputeConfigurationError(
            f"unknown workload size '{workload_size}'; presets: {sorted(presets)}",
            provider=compute_type,
            operation="get_resource_requirements",
        )
    return presets[workload_size]


# The engine is remote: a preset sizes the pod that runs dbt (a client), not the engine itself.
REMOTE_ENGINE_PRESETS: dict[str, ResourceSpec] = {
    "small": ResourceSpec("250m", "500m", "512Mi", "1Gi"),
    "medium": ResourceSpec("500m", "1", "1Gi", "2Gi"),
    "large": ResourceSpec("1", "2", "2Gi", "4Gi"),
}


def secret_env_name(compute_name: str, field: str = "password") -> str:
    """``FLOE_SECRET_<COMPUTE>_<FIELD>``: the variable a compute's secret is passed in to dbt.

    ``<COMPUTE>`` and ``<FIELD>`` are upper-cased, every character other than A-Z/0-9 replaced by ``_``.
    """
    slug = re.sub(r"[^A-Z0-9]", "_", compute_name.upper())
    return f"FLOE_SECRET_{slug}_{re.sub(r'[^A-Z0-9]', '_', field.upper())}"


def secret_reference(compute_name: str, field: str = "password") -> str:
    """What a profile holds instead of a secret: ``{{ env_var('FLOE_SECRET_<COMPUTE>_<FIELD>') }}``."""
    return "{{ env_var('" + secret_env_name(compute_name, field) + "') }}"


# Keys of free-form engine settings (DuckDB ``settings``, Spark ``spark_conf``) that hold a credential.
# Spark's own spark.redaction.regex is ``(?i)secret|password|token|access[.]key``; this adds the
# spellings DuckDB and Hadoop use (s3_access_key_id, fs.azure.account.key..., connection strings).
SECRET_KEY = re.compile(
    r"secret|passw(or)?d|token|credential|private[._-]?key|access[._-]?key|account[._-]?key"
    r"|connection[._-]?string|sas[._-]?token",
    re.IGNORECASE,
)
# ... unless the key names where a credential is found, not the credential itself.
NOT_A_SECRET = re.compile(
    r"(file|path|dir|directory|provider|providers|enabled|type|uri|url)$", re.IGNORECASE
)


def secret_like_keys(mapping: dict[str, Any]) -> list[str]:
    """Keys of ``mapping`` whose string value looks like a credential (see ``SECRET_KEY``)."""
    return [
        key
        for key, value in mapping.items()
        if isinstance(value, str) and SECRET_KEY.search(key) and not NOT_A_SECRET.search(key)
    ]


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every non-empty secret replaced by ``**********`` (for driver messages)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "**********")
    return text
