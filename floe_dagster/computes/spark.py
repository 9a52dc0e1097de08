"""Apache Spark compute (a dbt-spark target): ``session`` locally, ``thrift`` / ``http`` on clusters.

Methods (dbt-spark's documented profile keys):

- ``session``: Spark runs inside the dbt process (pyspark from PyPI, a local master). floe
  puts every scratch folder of that session under ``<state_dir>/spark/<compute>/`` (the
  warehouse, Spark's local dir) and uses Spark's in-memory catalog, so no ``metastore_db``,
  ``derby.log`` or ``spark-warehouse`` is ever written next to the dbt project.
- ``thrift``: a Spark Thrift server (``host``, ``port`` 10000, ``user``, ``auth``,
  ``kerberos_service_name``, ``use_ssl``, password as a secret).
- ``http``: a Databricks-style HTTP endpoint (``host``, ``port`` 443, ``cluster``,
  ``organization``, ``token`` as a secret).

Both cluster methods run through PyHive. dbt-spark's ``PyHive`` extra pins ``thrift<0.23``, which
databricks-sql-connector 4.9 (``thrift>=0.24``) excludes; PyHive 0.7 itself accepts thrift 0.25,
so floe installs ``PyHive[hive_pure_sasl]`` (thrift-sasl, pure-sasl) directly beside
``dbt-spark[session]`` (``pip install floe-dagster[spark]``), and ``thrift`` runs dbt against a
real Spark Thrift server (tests/e2e/test_spark_thrift_cluster.py). ``validate_connection`` for
``thrift`` (auth NONE, NOSASL, LDAP, CUSTOM) opens and closes a real HiveServer2 session (SASL
PLAIN, ``OpenSession``, ``CloseSession``, written with the thrift library); for ``thrift`` with
KERBEROS and for ``http`` it only checks that the endpoint accepts a TCP connection, and its
message says so.

Workload presets map to Spark conf (``spark.driver.memory``, ``spark.executor.memory``,
``spark.executor.cores``) passed through dbt-spark's ``server_side_parameters`` (a session
applies them when it starts its JVM; a Thrift server receives them as session conf), and to
Kubernetes requests/limits for the pod that runs dbt (and, for ``session``, Spark itself).

Secrets never reach profiles.yml: ``token`` / ``password`` are written as
``{{ env_var('FLOE_SECRET_<COMPUTE>_TOKEN') }}`` / ``..._PASSWORD`` and :meth:`dbt_env` gives
their values to that compute's dbt process only.

How a Spark model reads the Iceberg catalog (no iceberg-spark-runtime)
----------------------------------------------------------------------
The Iceberg runtime for Spark is a Maven jar, not on PyPI, so Spark cannot open the catalog
itself. Instead, floe hands Spark exactly the current snapshot of every table:

1. Right before the Spark group's dbt process starts (``prepare_dbt_run``, called by the
   Dagster step after every upstream group of the run has committed), floe plans a PyIceberg
   scan of each table of each manifest catalog and writes, per table, the statements
   ``CREATE DATABASE IF NOT EXISTS <namespace>`` and
   ``CREATE OR REPLACE VIEW <namespace>.<table> AS SELECT <columns> FROM parquet.`<file 1>`
   UNION ALL ...`` over exactly the data files of the table's current snapshot (a table with a
   snapshot but no files gets a typed empty view). The list goes to
   ``<state_dir>/spark/<compute>/attach.jsonl``; its path is passed as ``FLOE_SPARK_ATTACH``.
2. The dbt project's ``on-run-start`` hook ``floe_spark_attach_catalogs()``
   (``dbt_project/macros/floe_spark.sql``, a no-op on other adapters) reads that file through
   Spark and runs the statements, skipping the relations this invocation builds itself.

So a dbt source ``raw.payments`` or a ``ref`` to a model another compute wrote reads what the
catalog holds at that moment, no older file and no newer one. (On a cluster, the views name the
data files' URIs as the catalog stores them: the cluster must be able to read that storage.)
Where that cannot be true the plan step refuses instead of guessing: a snapshot with delete
files (merge-on-read) or a table whose schema evolved (data files may carry old column names) raises
``NotSupportedError``. The view selects the columns of the current schema by name, so a data
file missing one fails the query rather than yielding nulls.

How a Spark model's output reaches the catalog
----------------------------------------------
The demo's models are materialised ``external`` (floe's dbt-duckdb plugin commits them). For
Spark, ``floe_spark.sql`` defines the ``external`` materialisation as a Parquet table in the
session's warehouse; after the dbt process ends (``finish_dbt_run``), floe commits each table
the run wrote to ``transforms.catalog`` as the Iceberg table ``<schema>.<model>`` (contents
replaced, as for DuckDB), so downstream models on any compute read it through the catalog.
The macro writes each table at ``$FLOE_SPARK_WAREHOUSE/<schema>.db/<model>``: the session's
warehouse, or for ``thrift`` the compute's ``shared_warehouse`` (without one, a Thrift server's
outputs stay in its own warehouse and are not committed). The prepare step empties that folder
first, so only this run's outputs are committed.

Clusters and metastores (docs/spark.md)
---------------------------------------
``master: spark://host:port`` runs a session's tasks on a standalone cluster's executors (the
driver stays in the dbt process). With a Hive Metastore in the manifest, the session's catalog is
that metastore (``hive.metastore.uris``), so its dbt sources are the real Hive tables; dbt
sources of other metastores become views over their storage locations
(``readers/spark_scan.py``), or views that fail with the reason where Spark cannot read them.

Outside Dagster, ``python -m floe_dagster.computes.spark MANIFEST COMPUTE`` does the prepare
step and prints the ``export`` line; then ``dbt build --target COMPUTE``.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from floe_dagster.computes.hiveserver2 import hiveserver2_handshake
from floe_dagster.computes.spark_views import attachment_items
from floe_dagster.core.errors import ComputeConfigurationError
from floe_dagster.plan.artifact import load_manifest_or_plan
from floe_dagster.plan.builders import build_catalog, build_compute
from floe_dagster.plan.dbt_project import read_dbt_manifest
from floe_dagster.plugins.base import PluginConfig, located_error
from floe_dagster.plugins.catalog import CatalogPlugin
from floe_dagster.plugins.compute import (
    ComputePlugin,
    ConnectionResult,
    DbtProfileContext,
    ResourceSpec,
    pick_preset,
    secret_env_name,
    secret_like_keys,
    secret_reference,
)
from floe_dagster.readers.spark_scan import reads_through_views, source_items
from floe_dagster.transforms.profiles import profile_context, write_profiles
from floe_dagster.writers.iceberg import replace_table_from_arrow

if TYPE_CHECKING:
    pass

__all__ = [
    "PRESETS",
    "SparkComputePlugin",
    "SparkConfig",
    "main",
]

ATTACH_ENV = "FLOE_SPARK_ATTACH"
WAREHOUSE_ENV = "FLOE_SPARK_WAREHOUSE"
DBT_PACKAGE = "dbt-spark[session]>=1.11,<1.12"

# Kubernetes requests/limits of the pod running dbt (with a local session: Spark too).
PRESETS: dict[str, ResourceSpec] = {
    "small": ResourceSpec("1", "2", "2Gi", "3Gi"),
    "medium": ResourceSpec("2", "4", "4Gi", "6Gi"),
    "large": ResourceSpec("4", "8", "8Gi", "12Gi"),
}

SPARK_CONF: dict[str, dict[str, str]] = {
    "small": {"spark.driver.memory": "1g", "spark.executor.memory": "1g", "spark.executor.cores": "1"},
    "medium": {"spark.driver.memory": "2g", "spark.executor.memory": "4g", "spark.executor.cores": "2"},
    "large": {"spark.driver.memory": "4g", "spark.executor.memory": "8g", "spark.executor.cores": "4"},
}

DEFAULT_PORTS = {"session": 0, "thrift": 10000, "http": 443}
LOCAL_MASTER = re.compile(r"local(\[(\*|\d+)(,\s*\d+)?\])?")
CLUSTER_MASTER = re.compile(r"spark://[^\s/:,]+:\d+(,[^\s/:,]+:\d+)*")


class SparkConfig(PluginConfig):
    method: Literal["session", "thrift", "http"] = Field(
        "session", description="session: local Spark in the dbt process; thrift / http: a cluster."
    )
    host: str | None = Field(None, description="Thrift server or HTTP endpoint host (thrift, http).")
    port: int | None = Field(None, ge=1, le=65535, description="Default: 10000 (thrift), 443 (http).")
    cluster: str | None = Field(None, description="Cluster id (http).")
    organization: str = Field("0", description="Workspace / organization id in the http path.")
    token: SecretStr | None = Field(None, description="Personal access token (http; use ${env:NAME}).")
    user: str | None = Field(None, description="User name (thrift).")
    password: SecretStr | None = Field(None, description="Password for auth LDAP/CUSTOM (thrift).")
    auth: Literal["NONE", "NOSASL", "LDAP", "KERBEROS", "CUSTOM"] | None = Field(
        None, description="Thrift SASL mechanism (PyHive's auth)."
    )
    kerberos_service_name: str | None = Field(None, description="Kerberos service name (auth KERBEROS).")
    use_ssl: bool = Field(False, description="TLS to the Thrift server.")
    schema_: str = Field("default", alias="schema", description="Schema dbt builds models into.")
    master: str = Field(
        "local[2]",
        description=(
            "Spark master of the session (session): local[N] runs Spark in the dbt process;"
            " spark://host:port runs the models' tasks on a Spark standalone cluster's executors."
        ),
    )
    metastore: str | None = Field(
        None,
        description=(
            "The Hive Metastore of the manifest the session uses as its catalog (session; needed"
            " only when the manifest has several)."
        ),
    )
    shared_warehouse: str | None = Field(
        None,
        description=(
            "thrift: a folder the Thrift server's executors and floe both reach at this path; the"
            " models' Parquet tables are written under it and floe commits them to the catalog."
            " floe owns it: emptied before each run."
        ),
    )
    readable_schemes: list[str] = Field(
        default_factory=lambda: ["file", "hdfs"],
        description=(
            "URI schemes of table locations Spark can read (the cluster's Hadoop filesystems);"
            " add s3a / gs / abfss when the cluster has their connectors."
        ),
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="More Spark conf (server_side_parameters); overrides presets."
    )
    connect_timeout: int = Field(10, ge=1, le=300, description="Seconds to wait for a connection.")
    connect_retries: int = Field(0, ge=0, le=10)
    timeout_seconds: int | None = Field(None, ge=1, description="Query timeout (thrift / http only).")
    threads: int = Field(1, ge=1, le=64, description="dbt's thread count for this target.")

    @field_validator("spark_conf")
    @classmethod
    def _no_credentials_in_conf(cls, value: dict[str, str]) -> dict[str, str]:
        for key in secret_like_keys(value):
            raise located_error(
                "SparkConfig",
                (key,),
                f"'{key}' holds a credential, and spark_conf is written to profiles.yml in clear text;"
                " remove it: the cluster's own credentials go in 'token' / 'password' (${env:NAME}),"
                " S3A reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment of the dbt"
                " process, and other Hadoop secrets belong in a credential provider"
                " (spark.hadoop.hadoop.security.credential.provider.path)",
                "secret_in_settings",
            )
        return value

    @field_validator("master")
    @classmethod
    def _check_master(cls, value: str) -> str:
        text = value.strip()
        if LOCAL_MASTER.fullmatch(text) or CLUSTER_MASTER.fullmatch(text):
            return text
        raise ValueError(
            f"master '{value}' is not a Spark master floe can run a session on; use local, local[N],"
            " local[*] (Spark inside the dbt process) or spark://host:port (a standalone cluster;"
            " several masters: spark://host1:port1,host2:port2)"
        )

    @model_validator(mode="after")
    def _check_method(self) -> SparkConfig:
        if self.method in ("thrift", "http") and not self.host:
            raise ValueError(f"method '{self.method}' needs 'host' (the cluster's endpoint)")
        if self.method == "http":
            if self.token is None:
                raise ValueError("method 'http' needs 'token' (use ${env:NAME}, never a literal)")
            if not self.cluster:
                raise ValueError("method 'http' needs 'cluster' (the cluster id in the endpoint path)")
        if self.shared_warehouse is not None and self.method != "thrift":
            raise ValueError(
                "shared_warehouse applies to method 'thrift' only (a session writes under the state dir)"
            )
        if self.method != "session" and self.metastore is not None:
            raise ValueError(
                "metastore applies to method 'session' only: a Thrift server's catalog is set in its own"
                " hive-site.xml"
            )
        if self.method == "session" and self.timeout_seconds is not None:
            raise ValueError(
                "timeout_seconds is dbt-spark's query_timeout, which only the thrift and http methods"
                " honour; a local session has none"
            )
        if self.method == "thrift" and self.auth in ("LDAP", "CUSTOM") and self.password is None:
            raise ValueError(f"auth '{self.auth}' needs 'password' (use ${{env:NAME}})")
        return self

    @property
    def effective_port(self) -> int:
        return self.port or DEFAULT_PORTS[self.method]


def scratch_dir(context: DbtProfileContext) -> Path:
    """Where a local session keeps everything it writes (under the manifest's state dir)."""
    return Path(context.state_dir) / "spark" / context.compute_name


def session_conf(scratch: Path, master: str, metastore_uris: str | None = None) -> dict[str, str]:
    """Spark conf that keeps a session's files in ``scratch`` and its catalog in memory, or in the
    Hive Metastore at ``metastore_uris`` (then dbt sources of that metastore are its real tables)."""
    catalog = (
        {"spark.sql.catalogImplementation": "hive", "spark.hadoop.hive.metastore.uris": metastore_uris}
        if metastore_uris
        # dbt-spark calls enableHiveSupport(); this later key wins: no Derby metastore_db at all
        else {"spark.sql.catalogImplementation": "in-memory"}
    )
    return {
        "spark.master": master,
        **catalog,
        "spark.sql.warehouse.dir": str(scratch / "warehouse"),
        "spark.local.dir": str(scratch / "tmp"),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={scratch / 'derby'}",
        "spark.ui.enabled": "false",
        # the stage progress bar shares stdout with dbt's JSON events, and a line it prefixes is
        # lost to dagster-dbt (the model's output missing, its downstream steps skipped)
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": "4",
        # Iceberg timestamps are microseconds; Spark's default INT96 is not
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # partition folders of metastore tables read as strings; floe's views cast them to the
        # declared types ('007' stays '007')
        "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    }


def session_metastore(config: SparkConfig, context: DbtProfileContext) -> tuple[str, str] | None:
    """``(name, thrift URIs)`` of the Hive Metastore a session uses as its catalog, or None.

    The manifest's only ``hive`` metastore, or the one ``metastore`` names when there are several.
    """
    if config.method != "session":
        return None
    found = dict(context.hive_metastores)
    if config.metastore is not None:
        if config.metastore not in found:
            raise ComputeConfigurationError(
                f"compute '{context.compute_name}': metastore '{config.metastore}' is not a hive"
                f" metastore of the manifest with a uri; hive metastores: {sorted(found) or 'none'}",
                provider="spark",
                operation="generate_dbt_profile",
            )
        return config.metastore, found[config.metastore]
    if len(found) > 1:
        raise ComputeConfigurationError(
            f"compute '{context.compute_name}': the manifest has several Hive Metastores"
            f" ({', '.join(sorted(found))}) and a Spark session uses one as its catalog; set"
            " config.metastore to its name (the others' tables are read through views)",
            provider="spark",
            operation="generate_dbt_profile",
        )
    return next(iter(found.items()), None)


class SparkComputePlugin(ComputePlugin):
    type_name: ClassVar[str] = "spark"
    config_model = SparkConfig
    dbt_adapter_type = "spark"

    # --- dbt profile ---------------------------------------------------------------------------

    def generate_dbt_profile(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, Any]:
        assert isinstance(config, SparkConfig)
        params = dict(SPARK_CONF.get(context.workload_size, SPARK_CONF["small"]))
        if config.method == "session":
            hms = session_metastore(config, context)
            params.update(session_conf(scratch_dir(context), config.master, hms[1] if hms else None))
            params["spark.app.name"] = f"floe-{context.compute_name}"
        params.update(config.spark_conf)
        output: dict[str, Any] = {
            "type": "spark",
            "method": config.method,
            # dbt-spark requires a host even for a session (it names the connection)
            "host": config.host or "localhost",
            "schema": config.schema_,
            "threads": config.threads,
            "connect_timeout": config.connect_timeout,
            "connect_retries": config.connect_retries,
            "server_side_parameters": params,
        }
        if config.method == "thrift":
            output["port"] = config.effective_port
            optional: dict[str, Any] = {
                "user": config.user,
                "auth": config.auth,
                "kerberos_service_name": config.kerberos_service_name,
            }
            output.update({k: v for k, v in optional.items() if v is not None})
            output["use_ssl"] = config.use_ssl
            if config.password is not None:
                output["password"] = secret_reference(context.compute_name, "password")
        elif config.method == "http":
            output.update(
                {
                    "port": config.effective_port,
                    "cluster": config.cluster,
                    "organization": config.organization,
                    "token": secret_reference(context.compute_name, "token"),
                }
            )
            if config.user:
                output["user"] = config.user
        if config.timeout_seconds:
            output["query_timeout"] = config.timeout_seconds
        return output

    def dbt_env(self, config: PluginConfig, compute_name: str) -> dict[str, str]:
        assert isinstance(config, SparkConfig)
        env: dict[str, str] = {}
        if config.method == "http" and config.token is not None:
            env[secret_env_name(compute_name, "token")] = config.token.get_secret_value()
        if config.method == "thrift" and config.password is not None:
            env[secret_env_name(compute_name, "password")] = config.password.get_secret_value()
        return env

    def get_required_dbt_packages(self) -> list[str]:
        return [DBT_PACKAGE]

    def get_resource_requirements(self, workload_size: str) -> ResourceSpec:
        return pick_preset(PRESETS, workload_size, self.type_name)

    def spark_conf_for(self, workload_size: str) -> dict[str, str]:
        pick_preset(PRESETS, workload_size, self.type_name)  # same error for an unknown size
        return dict(SPARK_CONF[workload_size])

    def max_concurrency(self, config: PluginConfig) -> int | None:
        assert isinstance(config, SparkConfig)
        # a local session's scratch folder is emptied before each run: one run at a time
        return 1 if config.method == "session" or config.shared_warehouse else None

    # --- reading the catalogs ------------------------------------------------------------------

    def get_catalog_attachment_sql(self, catalog: CatalogPlugin) -> list[str] | None:
        """Spark SQL exposing every table of ``catalog`` as ``<namespace>.<table>`` (current snapshot)."""
        return [statement for item in attachment_items(catalog) for statement in item["sql"]]

    def prepare_dbt_run(self, config: PluginConfig, context: DbtProfileContext) -> dict[str, str]:
        assert isinstance(config, SparkConfig)

        scratch = scratch_dir(context)
        scratch.mkdir(parents=True, exist_ok=True)
        warehouse = output_warehouse(config, context)
        if warehouse is not None:
            shutil.rmtree(warehouse, ignore_errors=True)  # only this run's tables stay
        loaded = load_manifest_or_plan(context.manifest_path, context.environment)
        items: list[dict[str, Any]] = []
        for name in context.catalogs:
            items.extend(attachment_items(build_catalog(loaded, name)))
        items.extend(metastore_source_items(config, context, loaded))
        attach = scratch / "attach.jsonl"
        attach.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
        env = {ATTACH_ENV: str(attach)}
        if warehouse is not None:
            # the models' Parquet tables go here whatever their database's location (a Hive
            # Metastore's databases may point elsewhere); finish_dbt_run commits them from here
            env[WAREHOUSE_ENV] = str(warehouse)
        return env

    # --- writing the outputs -------------------------------------------------------------------

    def finish_dbt_run(self, config: PluginConfig, context: DbtProfileContext) -> None:
        assert isinstance(config, SparkConfig)
        warehouse = output_warehouse(config, context)
        if warehouse is None or not context.write_catalog:
            return

        tables = written_tables(warehouse)
        if not tables:
            return
        loaded = load_manifest_or_plan(context.manifest_path, context.environment)
        catalog = build_catalog(loaded, context.write_catalog)
        for identifier, folder in tables:
            commit_parquet_folder(catalog, identifier, folder)

    # --- health ----------------------------------------------------------------------------------

    def validate_connection(self, config: PluginConfig) -> ConnectionResult:
        assert isinstance(config, SparkConfig)
        if config.method == "session":
            return _validate_session(config)
        return _validate_endpoint(config)


def _validate_session(config: SparkConfig) -> ConnectionResult:
    where = f"spark session (master {config.master})"
    started = time.perf_counter()
    try:
        from pyspark.sql import SparkSession

        active = SparkSession.getActiveSession()
        if active is not None:
            active.sql("SELECT 1").collect()
        else:
            with tempfile.TemporaryDirectory(prefix="floe-spark-validate-") as tmp:
                builder = SparkSession.builder.appName("floe-validate")
                for key, value in session_conf(Path(tmp), config.master).items():
                    builder = builder.config(key, value)
                session = builder.getOrCreate()
                try:
                    session.sql("SELECT 1").collect()
                finally:
                    session.stop()
    except Exception as exc:
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        return ConnectionResult("failed", elapsed, f"{where}: {detail}")
    elapsed = round((time.perf_counter() - started) * 1000, 1)
    return ConnectionResult("ok", elapsed, f"{where} answered SELECT 1")


def _validate_endpoint(config: SparkConfig) -> ConnectionResult:
    """Reach the endpoint within ``connect_timeout``; for ``thrift``, open and close a HiveServer2 session.

    ``thrift`` with auth NONE / NOSASL / LDAP / CUSTOM: a real HiveServer2 handshake (SASL PLAIN
    or none, ``OpenSession``, ``CloseSession``), which proves the server is a Spark Thrift server
    and accepts the credentials. ``thrift`` with KERBEROS and ``http``: a TCP connection only
    (reachability), said so in the message: floe opens no session there (a GSSAPI exchange needs
    a Kerberos ticket; the HTTP endpoint is a Databricks-style cluster).
    """
    endpoint = f"{config.host}:{config.effective_port}"
    where = f"spark ({config.method}) {endpoint}"
    started = time.perf_counter()

    def elapsed() -> float:
        return max(round((time.perf_counter() - started) * 1000, 1), 0.1)

    try:
        with socket.create_connection(
            (str(config.host), config.effective_port), timeout=config.connect_timeout
        ):
            pass
    except TimeoutError:
        return ConnectionResult(
            "failed", elapsed(), f"{where}: no answer within connect_timeout={config.connect_timeout}s"
        )
    except OSError as exc:
        detail = exc.strerror or str(exc) or type(exc).__name__
        return ConnectionResult("failed", elapsed(), f"{where}: cannot connect: {detail}")
    if config.method == "http" or config.auth == "KERBEROS":
        why = "auth KERBEROS" if config.method == "thrift" else "the http method"
        return ConnectionResult(
            "ok",
            elapsed(),
            f"{where} accepted a TCP connection (reachability only: floe opens no session over {why})",
        )
    try:
        version = hiveserver2_handshake(config)
    except Exception as exc:
        secret = config.password.get_secret_value() if config.password is not None else ""
        detail = " ".join(str(exc).split()) or type(exc).__name__
        if getattr(exc, "type", None) == 3:  # TTransportException.TIMED_OUT
            detail = (
                f"no HiveServer2 answer within connect_timeout={config.connect_timeout}s"
                " (is this a Spark Thrift server?)"
            )
        elif type(exc).__name__ == "TTransportException":
            detail += (
                f"; the server dropped the handshake: check that auth ({config.auth or 'NONE'}) and"
                f" use_ssl ({str(config.use_ssl).lower()}) match the Thrift server's settings"
            )
        if secret:
            detail = detail.replace(secret, "**********")
        return ConnectionResult("failed", elapsed(), f"{where}: HiveServer2 handshake failed: {detail}")
    return ConnectionResult(
        "ok", elapsed(), f"{where}: opened and closed a HiveServer2 session (server protocol V{version + 1})"
    )


def output_warehouse(config: SparkConfig, context: DbtProfileContext) -> Path | None:
    """Where the models' tables are written and committed from: a session's warehouse under the
    state dir, a Thrift server's ``shared_warehouse``; None when floe cannot read the outputs."""
    if config.method == "session":
        return scratch_dir(context) / "warehouse"
    if config.method == "thrift" and config.shared_warehouse:
        return Path(config.shared_warehouse).expanduser().resolve()
    return None


def metastore_source_items(
    config: SparkConfig, context: DbtProfileContext, loaded: Any
) -> list[dict[str, Any]]:
    """Views for the dbt sources over metastores the session does not use as its catalog."""
    hms = session_metastore(config, context)
    session_catalog = hms[0] if hms else None
    if not any(reads_through_views(loaded, m) for m in loaded.manifest.metastores if m != session_catalog):
        return []  # only Iceberg catalogs (attached) and the session's metastore: no dbt manifest to read
    dbt_manifest = read_dbt_manifest(loaded)
    if not dbt_manifest:
        return []
    return source_items(loaded, dbt_manifest, session_catalog, config.readable_schemes)


# --- commit: the session's tables -> the write catalog -------------------------------------------


def written_tables(warehouse: Path) -> list[tuple[tuple[str, str], Path]]:
    """``((schema, table), folder)`` of every Parquet table a session wrote into its warehouse."""
    found = []
    for schema_dir in sorted(warehouse.glob("*.db")):
        schema = schema_dir.name.removesuffix(".db")
        if schema.startswith("dbt_test__audit"):
            continue
        for table_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
            if any(table_dir.glob("*.parquet")) or (table_dir / "_SUCCESS").exists():
                found.append(((schema, table_dir.name), table_dir))
    return found


def commit_parquet_folder(catalog: CatalogPlugin, identifier: tuple[str, str], folder: Path) -> int:
    import pyarrow.parquet as pq

    return int(replace_table_from_arrow(catalog, identifier, pq.read_table(folder)))


def main(argv: list[str] | None = None) -> int:
    """``python -m floe_dagster.computes.spark MANIFEST COMPUTE``: prepare a plain ``dbt build``."""

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m floe_dagster.computes.spark MANIFEST COMPUTE", file=sys.stderr)
        return 2
    loaded = load_manifest_or_plan(args[0])
    plugin, config = build_compute(loaded, args[1])
    if not isinstance(plugin, SparkComputePlugin):
        raise ComputeConfigurationError(f"compute '{args[1]}' is not a spark compute", provider="spark")
    write_profiles(loaded)
    for key, value in plugin.prepare_dbt_run(config, profile_context(loaded, args[1])).items():
        print(f"export {key}={value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
