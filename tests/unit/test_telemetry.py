"""Spans per catalog operation and validation metrics, checked with in-memory exporters."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from floe_dagster.catalogs.sql import SqlCatalogConfig, SqlCatalogPlugin
from floe_dagster.computes.duckdb import DuckDBComputePlugin, DuckDBConfig
from floe_dagster.plugins import NotFoundError
from floe_dagster.plugins.telemetry import validate_compute

SPANS = InMemorySpanExporter()
METRICS = InMemoryMetricReader()


@pytest.fixture(scope="module", autouse=True)
def providers() -> None:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[METRICS]))


def test_each_catalog_operation_is_one_span_with_its_outcome(tmp_path: Path) -> None:
    SPANS.clear()
    config = SqlCatalogConfig.model_validate(
        {"uri": "sqlite:///c.db", "warehouse": "w"}, context={"base_dir": tmp_path}
    )
    catalog = SqlCatalogPlugin("lake", config)
    catalog.create_namespace(("raw",))
    with pytest.raises(NotFoundError):
        catalog.drop_table(("raw", "missing"))
    spans = {s.name: s for s in SPANS.get_finished_spans()}
    created = spans["floe.catalog.create_namespace"]
    assert created.attributes["floe.catalog"] == "lake"
    assert created.attributes["floe.plugin_type"] == "sql"
    assert created.attributes["floe.subject"] == "raw"
    assert created.attributes["floe.outcome"] == "ok"
    dropped = spans["floe.catalog.drop_table"]
    assert dropped.attributes["floe.outcome"] == "error"
    assert dropped.attributes["floe.error"] == "CatalogNotFoundError"


def test_connect_and_health_check_are_one_span_each_for_every_catalog(tmp_path: Path) -> None:
    def sql_catalog(name: str, uri: str) -> SqlCatalogPlugin:
        config = SqlCatalogConfig.model_validate(
            {"uri": uri, "warehouse": "w"}, context={"base_dir": tmp_path}
        )
        return SqlCatalogPlugin(name, config)

    (tmp_path / "broken.db").write_text("this is not a SQLite database")
    connected = sql_catalog("connected", "sqlite:///c.db")
    fresh = sql_catalog("fresh", "sqlite:///c.db")
    broken = sql_catalog("broken", "sqlite:///broken.db")
    SPANS.clear()

    connected.connect()
    connected.connect()  # already open: no operation, no span
    assert connected.health_check(timeout=5).healthy
    assert fresh.health_check(timeout=5).healthy  # opens the catalog inside its own span ...
    fresh.connect()  # ... and keeps it: no connect span
    assert broken.health_check(timeout=5).status == "unhealthy"

    spans = [
        (s.name, s.attributes["floe.catalog"], s.attributes["floe.outcome"])
        for s in SPANS.get_finished_spans()
    ]
    assert spans == [
        ("floe.catalog.connect", "connected", "ok"),
        ("floe.catalog.health_check", "connected", "ok"),
        ("floe.catalog.health_check", "fresh", "ok"),
        ("floe.catalog.health_check", "broken", "error"),
    ]
    failed = SPANS.get_finished_spans()[-1]
    assert failed.attributes["floe.plugin_type"] == "sql"
    assert failed.attributes["floe.error"] == "CatalogUnavailableError"
    assert failed.status.status_code.name == "ERROR"


def test_sqlite_catalog_refuses_a_password(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="applies to a database server"):
        SqlCatalogConfig.model_validate(
            {"uri": "sqlite:///c.db", "password": "CANARY"}, context={"base_dir": tmp_path}
        )


def test_compute_validation_emits_duration_and_errors(tmp_path: Path) -> None:
    plugin = DuckDBComputePlugin()
    good = DuckDBConfig.model_validate({"path": ":memory:"}, context={"base_dir": tmp_path})
    assert validate_compute(plugin, good, "fast").ok
    bad_file = tmp_path / "not-a-database.duckdb"
    bad_file.write_text("this is not a DuckDB file")
    bad = DuckDBConfig.model_validate({"path": str(bad_file)}, context={"base_dir": tmp_path})
    assert not validate_compute(plugin, bad, "broken").ok

    data = METRICS.get_metrics_data()
    points: dict[str, list] = {}
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                points.setdefault(metric.name, []).extend(metric.data.data_points)
    durations = {p.attributes["compute"]: p for p in points["validation_duration"]}
    assert {"fast", "broken"} <= set(durations)
    assert durations["fast"].count == 1 and durations["fast"].sum > 0
    errors = {p.attributes["compute"]: p.value for p in points["validation_errors"]}
    assert errors == {"broken": 1}
    span_names = [s.name for s in SPANS.get_finished_spans()]
    assert span_names.count("floe.compute.validate_connection") >= 2


def _points(name: str) -> list:
    found: list = []
    for resource_metrics in METRICS.get_metrics_data().resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


def test_each_validation_is_one_span_naming_the_compute_with_status_and_latency(tmp_path: Path) -> None:
    SPANS.clear()
    plugin = DuckDBComputePlugin()
    bad_file = tmp_path / "broken.duckdb"
    bad_file.write_text("not DuckDB")
    config = DuckDBConfig.model_validate({"path": str(bad_file)}, context={"base_dir": tmp_path})
    result = validate_compute(plugin, config, "span_check")
    assert result.message.startswith("compute 'span_check' (duckdb): ")
    [span] = [s for s in SPANS.get_finished_spans() if s.attributes.get("floe.compute") == "span_check"]
    assert span.name == "floe.compute.validate_connection"
    assert span.attributes["floe.plugin_type"] == "duckdb"
    assert span.attributes["floe.status"] == "failed"
    assert span.attributes["floe.latency_ms"] == result.latency_ms
    assert span.status.status_code.name == "ERROR"


def test_a_plugin_that_raises_is_a_failed_validation_and_is_counted(tmp_path: Path) -> None:
    class Exploding(DuckDBComputePlugin):
        def validate_connection(self, config):  # type: ignore[no-untyped-def]
            raise RuntimeError("driver crashed")

    config = DuckDBConfig.model_validate({"path": ":memory:"}, context={"base_dir": tmp_path})
    result = validate_compute(Exploding(), config, "exploding")
    assert not result.ok
    assert result.message == (
        f"compute 'exploding' (duckdb): RuntimeError: driver crashed (correlation id {result.correlation_id})"
    )
    errors = {p.attributes["compute"]: p.value for p in _points("validation_errors")}
    assert errors["exploding"] == 1
    assert any(p.attributes["compute"] == "exploding" for p in _points("validation_duration"))


def test_the_dagster_health_check_emits_the_validation_span_and_metrics(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterInstance

    from floe_dagster.dagster_stage.health import HEALTH_JOB
    from tests.fixtures.manifests import health_definitions

    SPANS.clear()
    monkeypatch.setenv("FLOE_HEALTH_PG_PASSWORD", "CANARY-otel")
    defs, _ = health_definitions(tmp_path)
    assert defs.resolve_job_def(HEALTH_JOB).execute_in_process(instance=DagsterInstance.ephemeral()).success
    spans = {s.attributes.get("floe.compute"): s for s in SPANS.get_finished_spans()}
    assert spans["fast"].attributes["floe.status"] == "ok"
    assert spans["warehouse"].attributes["floe.status"] == "failed"
    assert {"fast", "warehouse"} <= {p.attributes["compute"] for p in _points("validation_duration")}
    assert {p.attributes["compute"]: p.value for p in _points("validation_errors")}["warehouse"] >= 1
    assert all("CANARY" not in str(dict(s.attributes)) for s in SPANS.get_finished_spans())


def failing_validations(tmp_path: Path) -> list[tuple[str, Any, Any]]:
    """One failing config per kind of compute: embedded, wire protocol, Spark, a warehouse driver."""
    from floe_dagster.computes.postgres import PostgresComputePlugin, PostgresConfig
    from floe_dagster.computes.spark import SparkComputePlugin, SparkConfig
    from floe_dagster.computes.trino import TrinoComputePlugin, TrinoConfig
    from tests.fixtures.postgres import closed_port

    port = closed_port()
    return [
        (
            "lake",
            DuckDBComputePlugin(),
            DuckDBConfig.model_validate({"path": ":memory:", "extensions": [], "settings": {"no_such": 1}}),
        ),
        (
            "pg",
            PostgresComputePlugin(),
            PostgresConfig.model_validate(
                {"host": "127.0.0.1", "port": port, "user": "u", "dbname": "d", "password": "CANARY-pg"}
            ),
        ),
        (
            "cluster",
            SparkComputePlugin(),
            SparkConfig.model_validate({"method": "thrift", "host": "127.0.0.1", "port": port}),
        ),
        (
            "wh",
            TrinoComputePlugin(),
            TrinoConfig.model_validate(
                {
                    "method": "none",
                    "host": "127.0.0.1",
                    "port": port,
                    "user": "u",
                    "catalog": "c",
                    "schema": "s",
                }
            ),
        ),
    ]


def test_every_failed_validation_carries_a_correlation_id_in_message_result_and_span(tmp_path: Path) -> None:
    SPANS.clear()
    seen: set[str] = set()
    for name, plugin, config in failing_validations(tmp_path):
        result = validate_compute(plugin, config, name)
        assert not result.ok, result.message
        assert re.fullmatch(r"[0-9a-f]{12}", result.correlation_id or ""), result
        assert result.message.startswith(f"compute '{name}' ({plugin.type_name}): ")
        assert result.message.count("correlation id") == 1, result.message  # a plugin's own id is kept
        assert result.message.endswith(f"(correlation id {result.correlation_id})")
        [span] = [s for s in SPANS.get_finished_spans() if s.attributes.get("floe.compute") == name]
        assert span.attributes["floe.correlation_id"] == result.correlation_id
        seen.add(result.correlation_id)
    assert len(seen) == 4
    ok = validate_compute(DuckDBComputePlugin(), DuckDBConfig(path=":memory:", extensions=[]), "fine")
    assert ok.ok and ok.correlation_id is None and "correlation id" not in ok.message


def test_a_compute_error_escaping_a_span_records_its_correlation_id() -> None:
    from floe_dagster.core.errors import ComputeTimeoutError
    from floe_dagster.plugins.telemetry import operation_span

    SPANS.clear()
    error = ComputeTimeoutError("no answer", provider="duckdb", operation="run")
    with pytest.raises(ComputeTimeoutError), operation_span("compute", "lake", "duckdb", "run"):
        raise error
    [span] = SPANS.get_finished_spans()
    assert span.attributes["floe.correlation_id"] == error.correlation_id
    assert span.attributes["floe.error"] == "ComputeTimeoutError"


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("OTEL_TRACES_EXPORTER", "otlp", "pip install opentelemetry-exporter-otlp"),
        ("OTEL_METRICS_EXPORTER", "zipkin", "OTEL_METRICS_EXPORTER='zipkin' is not supported"),
    ],
)
def test_exporters_come_from_the_standard_otel_variables(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, words: str
) -> None:
    import importlib.util

    from floe_dagster.plugins import telemetry

    if value == "otlp" and importlib.util.find_spec("opentelemetry.exporter") is not None:
        pytest.skip("the OTLP exporter is installed here")
    monkeypatch.setattr(telemetry, "_configured", False)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=words):
        telemetry.configure_from_environment()
    assert telemetry._configured is False
