"""Bad compute input: each gives a clear error or a failed ConnectionResult naming compute and field.

No secret ever appears in a message (canary passwords), and unreachable or silent servers fail
fast, bounded by the configured timeout.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from floe_dagster.computes import duckdb as duckdb_module
from floe_dagster.computes.duckdb import DuckDBComputePlugin, DuckDBConfig
from floe_dagster.computes.postgres import PostgresComputePlugin, PostgresConfig
from floe_dagster.core.errors import (
    ComputeConfigurationError,
    ComputeConnectionError,
    ComputeError,
    ComputeTimeoutError,
    ConfigurationError,
    FloeError,
)
from floe_dagster.manifest import ManifestError, load_manifest
from floe_dagster.plugins.telemetry import validate_compute
from tests.fixtures.postgres import closed_port

CANARY = "CANARY-pw-7d1e0c"


def duckdb_config(tmp_path: Path, **raw: object) -> DuckDBConfig:
    return DuckDBConfig.model_validate({"path": ":memory:", **raw}, context={"base_dir": tmp_path})


def postgres_config(**raw: object) -> PostgresConfig:
    return PostgresConfig.model_validate({"host": "127.0.0.1", "user": "floe", "dbname": "floe", **raw})


def error_fields(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}


# -- DuckDB config ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field", "words"),
    [
        ({"memory_limit": "lots"}, "memory_limit", "'lots' is not a memory size; write it like '4GB'"),
        ({"memory_limit": "4 parsecs"}, "memory_limit", "not a memory size"),
        ({"extensions": ["iceberg", "nosuchext"]}, "extensions", "unknown DuckDB extension(s) ['nosuchext']"),
        ({"threads": 0}, "threads", "greater than or equal to 1"),
        ({"timeout_seconds": 0}, "timeout_seconds", "greater than or equal to 1"),
        ({"thread": 2}, "thread", "Extra inputs are not permitted"),
    ],
)
def test_duckdb_config_errors_name_the_field(tmp_path: Path, raw: dict, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        duckdb_config(tmp_path, **raw)
    fields = error_fields(info.value)
    assert field in fields, fields
    assert words in fields[field]


def test_unknown_extension_lists_the_installed_ones(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        duckdb_config(tmp_path, extensions=["nosuchext"])
    message = error_fields(info.value)["extensions"]
    assert "'iceberg'" in message and "duckdb-extension-<name>" in message


@pytest.mark.parametrize("plugin", [DuckDBComputePlugin(), PostgresComputePlugin()])
def test_unknown_workload_size_lists_the_presets(plugin: object) -> None:
    with pytest.raises(ComputeConfigurationError) as info:
        plugin.get_resource_requirements("huge")  # type: ignore[attr-defined]
    text = str(info.value)
    assert "unknown workload size 'huge'; presets: ['large', 'medium', 'small']" in text
    assert info.value.operation == "get_resource_requirements"
    assert info.value.correlation_id in text


# -- through the manifest loader: file:line:col and the full path of the field ------------------

MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata:
  name: bad-input
computes:
  approved: [engine]
  default: engine
  targets:
    engine:
      type: duckdb
      workload_size: {size}
      config:
        path: state/db.duckdb
        memory_limit: {memory}
        threads: {threads}
        extensions: [{extension}]
transforms:
  dbt_project: dbt
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: t\nprofile: t\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def manifest_problems(workdir: Path, **values: str) -> list[str]:
    fields = {"size": "small", "memory": "2GB", "threads": "2", "extension": "iceberg", **values}
    path = workdir / "manifest.yaml"
    path.write_text(MANIFEST.format(**fields))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    return [str(p) for p in info.value.problems]


def test_invalid_memory_limit_in_a_manifest_points_at_its_value(workdir: Path) -> None:
    [problem] = manifest_problems(workdir, memory="lots")
    assert problem.startswith("manifest.yaml:14:23: computes.targets.engine.config.memory_limit: ")
    assert "'lots' is not a memory size" in problem


@pytest.mark.parametrize(
    ("values", "where", "words"),
    [
        (
            {"threads": "0"},
            "manifest.yaml:15:18: computes.targets.engine.config.threads: ",
            "Input should be greater than or equal to 1 (got 0)",
        ),
        (
            {"extension": "nosuchext"},
            "manifest.yaml:16:21: computes.targets.engine.config.extensions: ",
            "unknown DuckDB extension(s) ['nosuchext']",
        ),
        (
            {"size": "huge"},
            "manifest.yaml:11:22: computes.targets.engine.workload_size: ",
            "unknown workload size 'huge'",
        ),
    ],
)
def test_bad_compute_values_in_a_manifest_point_at_them(
    workdir: Path, values: dict[str, str], where: str, words: str
) -> None:
    [problem] = manifest_problems(workdir, **values)
    assert problem.startswith(where), problem
    assert words in problem, problem


# -- a missing warehouse credential, through `floe validate` ---------------------------------------

SNOWFLAKE_MANIFEST = """\
apiVersion: floe.dev/v1
kind: Manifest
metadata: {name: warehouse}
computes:
  approved: [duckdb, sf_prod]
  default: duckdb
  targets:
    duckdb:
      type: duckdb
      config: {path: ":memory:"}
    sf_prod:
      type: snowflake
      config:
        account: myorg-acct
        user: loader
        role: ${env:FLOE_TEST_SF_ROLE}
        database: analytics
        warehouse: transforming
        schema: marts
transforms:
  dbt_project: dbt
"""


def test_missing_warehouse_credential_in_a_manifest_names_compute_field_and_fix(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from floe_dagster import cli

    (workdir / "manifest.yaml").write_text(SNOWFLAKE_MANIFEST)
    monkeypatch.setenv("FLOE_TEST_SF_ROLE", CANARY)  # any config value must stay unseen
    assert cli.main(["validate", "manifest.yaml"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "manifest.yaml:14:9: computes.targets.sf_prod.config.password: snowflake authenticator"
        " 'snowflake' needs 'password': add password: ${env:NAME} (the variable holding it), or use"
        " authenticator snowflake_jwt / oauth\n"
    )
    assert CANARY not in captured.err


def test_a_credential_in_spark_conf_is_refused_at_its_key(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from floe_dagster import cli

    (workdir / "manifest.yaml").write_text(
        "apiVersion: floe.dev/v1\nkind: Manifest\nmetadata: {name: s}\n"
        "computes:\n  approved: [spark]\n  default: spark\n  targets:\n    spark:\n      type: spark\n"
        "      config:\n        spark_conf:\n          spark.sql.shuffle.partitions: '8'\n"
        "          spark.hadoop.fs.s3a.secret.key: ${env:FLOE_TEST_S3A_SECRET}\n"
        "transforms:\n  dbt_project: dbt\n"
    )
    monkeypatch.setenv("FLOE_TEST_S3A_SECRET", CANARY)
    assert cli.main(["validate", "manifest.yaml"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "manifest.yaml:13:43: computes.targets.spark.config.spark_conf.spark.hadoop.fs.s3a.secret.key:"
        " 'spark.hadoop.fs.s3a.secret.key' holds a credential, and spark_conf is written to profiles.yml"
        " in clear text"
    ), err
    assert "AWS_SECRET_ACCESS_KEY" in err and CANARY not in err


# -- DuckDB connection checks -------------------------------------------------------------------


def test_duckdb_check_that_runs_too_long_is_interrupted_at_timeout_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(duckdb_module, "PROBE_SQL", "SELECT count(*) FROM range(1000000000000) a")
    config = duckdb_config(tmp_path, extensions=[], timeout_seconds=1)
    started = time.perf_counter()
    result = validate_compute(DuckDBComputePlugin(), config, "engine")
    assert time.perf_counter() - started < 8
    assert not result.ok
    assert result.message.startswith("compute 'engine' (duckdb): ")
    assert "no answer within timeout_seconds=1" in result.message


def test_unreadable_duckdb_file_fails_naming_compute_and_path(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-database.duckdb"
    bad.write_text("this is not a DuckDB file")
    result = validate_compute(DuckDBComputePlugin(), duckdb_config(tmp_path, path=str(bad)), "engine")
    assert not result.ok
    assert result.message.startswith(f"compute 'engine' (duckdb): duckdb '{bad}'")


# -- PostgreSQL: unreachable, silent, refused password, statement timeout -----------------------


def test_unreachable_postgres_fails_fast_naming_compute_and_host() -> None:
    port = closed_port()
    config = postgres_config(port=port, password=CANARY, connect_timeout=5)
    started = time.perf_counter()
    result = validate_compute(PostgresComputePlugin(), config, "warehouse")
    assert time.perf_counter() - started < 5
    assert not result.ok
    assert result.message.startswith("compute 'warehouse' (postgres): ")
    assert f"127.0.0.1:{port}" in result.message
    assert "refused" in result.message.lower()
    assert CANARY not in result.message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung server or a black hole)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        server.close()


def test_silent_postgres_times_out_at_connect_timeout(silent_server: int) -> None:
    config = postgres_config(port=silent_server, password=CANARY, connect_timeout=2)
    started = time.perf_counter()
    result = validate_compute(PostgresComputePlugin(), config, "warehouse")
    elapsed = time.perf_counter() - started
    assert 1.5 < elapsed < 10
    assert not result.ok
    assert result.message.startswith("compute 'warehouse' (postgres): ")
    assert f"127.0.0.1:{silent_server}" in result.message
    assert "timeout expired" in result.message and "connect_timeout=2s" in result.message
    assert CANARY not in result.message


@pytest.mark.server
def test_refused_password_fails_without_showing_it(postgres_server: object) -> None:
    server = postgres_server
    config = postgres_config(
        host=server.host,  # type: ignore[attr-defined]
        port=server.port,  # type: ignore[attr-defined]
        user=server.user,  # type: ignore[attr-defined]
        dbname="postgres",
        password=CANARY,
    )
    result = validate_compute(PostgresComputePlugin(), config, "warehouse")
    assert not result.ok
    assert "compute 'warehouse' (postgres)" in result.message
    assert "password authentication failed" in result.message
    assert CANARY not in result.message


@pytest.mark.server
def test_statement_timeout_cancels_a_slow_query_on_real_postgres(postgres_server: object) -> None:
    """``timeout_seconds`` is the statement timeout of every connection floe and dbt open."""
    import psycopg2

    server = postgres_server
    plugin = PostgresComputePlugin()
    config = postgres_config(
        host=server.host,  # type: ignore[attr-defined]
        port=server.port,  # type: ignore[attr-defined]
        user=server.user,  # type: ignore[attr-defined]
        dbname="postgres",
        password=server.password,  # type: ignore[attr-defined]
        timeout_seconds=1,
    )
    assert validate_compute(plugin, config, "warehouse").ok
    assert plugin.dbt_env(config, "warehouse")["PGOPTIONS"] == "-c statement_timeout=1s"
    con = psycopg2.connect(**plugin._connect_kwargs(config))
    try:
        started = time.perf_counter()
        with pytest.raises(psycopg2.errors.QueryCanceled, match="statement timeout"), con.cursor() as cur:
            cur.execute("SELECT pg_sleep(30)")
        assert time.perf_counter() - started < 10
    finally:
        con.close()


# -- errors carry a correlation id ---------------------------------------------------------------


@pytest.mark.parametrize(
    "cls", [ComputeError, ComputeConnectionError, ComputeTimeoutError, ComputeConfigurationError]
)
def test_compute_errors_carry_a_correlation_id_in_str_and_tags(cls: type[ComputeError]) -> None:
    error = cls("compute 'engine': something broke", provider="duckdb", operation="validate_connection")
    assert re.fullmatch(r"[0-9a-f]{12}", error.correlation_id)
    assert str(error) == (
        "[duckdb:validate_connection] compute 'engine': something broke"
        f" (correlation id {error.correlation_id})"
    )
    assert error.tags() == {
        "provider": "duckdb",
        "operation": "validate_connection",
        "retryable": str(cls.retryable).lower(),
        "correlation_id": error.correlation_id,
    }
    assert isinstance(error, FloeError)
    assert cls("again").correlation_id != error.correlation_id  # one id per failure
    assert cls("given", correlation_id="abc123").correlation_id == "abc123"


def test_compute_error_classes_say_whether_retrying_helps() -> None:
    assert ComputeConnectionError("x").retryable and ComputeTimeoutError("x").retryable
    assert not ComputeConfigurationError("x").retryable
    assert isinstance(ComputeConfigurationError("x"), ConfigurationError)
