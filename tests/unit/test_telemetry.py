"""Spans per catalog operation and validation metrics, checked with in-memory exporters."""

from __future__ import annotations

from pathlib import Path

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
from floe_dagster.telemetry import validate_compute

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
    assert dropped.attributes["floe.error"] == "NotFoundError"


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
