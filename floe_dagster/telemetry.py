"""OpenTelemetry for floe: one tracer and meter, spans for catalog operations, compute validation metrics.

Only names, types, operations and outcomes become attributes; credentials never do (plugins
hold them as SecretStr and nothing here reads a config). Export follows the standard
``OTEL_*`` variables: ``OTEL_TRACES_EXPORTER=console`` / ``OTEL_METRICS_EXPORTER=console``
print spans and metrics; with neither set, the no-op providers cost nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

INSTRUMENTATION = "floe_dagster"


def tracer() -> trace.Tracer:
    return trace.get_tracer(INSTRUMENTATION)


@cache
def _instruments() -> tuple[Any, Any]:
    meter = metrics.get_meter(INSTRUMENTATION)
    duration = meter.create_histogram(
        "validation_duration", unit="ms", description="Time a compute's connection validation took."
    )
    errors = meter.create_counter(
        "validation_errors", description="Compute connection validations that failed."
    )
    return duration, errors


@contextmanager
def operation_span(
    kind: str, name: str, plugin_type: str, operation: str, subject: str = ""
) -> Iterator[Any]:
    """A span ``floe.<kind>.<operation>`` with its outcome; exceptions are recorded by class only."""
    attributes = {f"floe.{kind}": name, "floe.plugin_type": plugin_type, "floe.operation": operation}
    if subject:
        attributes["floe.subject"] = subject
    with tracer().start_as_current_span(
        f"floe.{kind}.{operation}",
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as exc:
            span.set_attribute("floe.outcome", "error")
            span.set_attribute("floe.error", type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        span.set_attribute("floe.outcome", "ok")


def record_validation(compute: str, plugin_type: str, ok: bool, duration_ms: float) -> None:
    duration, errors = _instruments()
    attributes = {"compute": compute, "plugin_type": plugin_type}
    duration.record(duration_ms, attributes)
    if not ok:
        errors.add(1, attributes)


def validate_compute(plugin: Any, config: Any, compute: str) -> Any:
    """``plugin.validate_connection`` inside a span, with the duration histogram and error counter."""
    started = time.perf_counter()
    with operation_span("compute", compute, plugin.type_name, "validate_connection") as span:
        result = plugin.validate_connection(config)
        span.set_attribute("floe.status", result.status)
    record_validation(compute, plugin.type_name, result.ok, (time.perf_counter() - started) * 1000)
    return result


def configure_from_environment() -> None:
    """Install SDK providers when the standard OTEL_* exporter variables ask for console output."""
    if os.environ.get("OTEL_TRACES_EXPORTER") == "console":
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        trace.set_tracer_provider(provider)
    if os.environ.get("OTEL_METRICS_EXPORTER") == "console":
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

        metrics.set_meter_provider(
            MeterProvider(metric_readers=[PeriodicExportingMetricReader(ConsoleMetricExporter())])
        )
