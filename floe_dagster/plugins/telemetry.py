"""OpenTelemetry for floe: one tracer and meter, spans for catalog operations, compute validation metrics.

Only names, types, operations and outcomes become attributes; credentials never do (plugins
hold them as SecretStr and nothing here reads a config). Export follows the standard
``OTEL_*`` variables: ``OTEL_TRACES_EXPORTER=console`` / ``OTEL_METRICS_EXPORTER=console``
print spans and metrics; with neither set, the no-op providers cost nothing.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Status, StatusCode

from floe_dagster.core.errors import new_correlation_id
from floe_dagster.plugins.compute import ConnectionResult
from floe_dagster.plugins.dbt_packages import describe_missing, missing_packages

__all__ = [
    "configure_from_environment",
    "failed_validation",
    "operation_span",
    "tracer",
    "validate_compute",
]

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
            correlation_id = getattr(exc, "correlation_id", None)
            if correlation_id:
                span.set_attribute("floe.correlation_id", correlation_id)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        # the body may have marked a failure it reports without raising (a failed validation)
        status = getattr(span, "status", None)
        failed = status is not None and status.status_code == StatusCode.ERROR
        span.set_attribute("floe.outcome", "error" if failed else "ok")


def record_validation(compute: str, plugin_type: str, ok: bool, duration_ms: float) -> None:
    duration, errors = _instruments()
    attributes = {"compute": compute, "plugin_type": plugin_type}
    duration.record(duration_ms, attributes)
    if not ok:
        errors.add(1, attributes)


CORRELATION_ID = re.compile(r"\(correlation id ([0-9a-f]+)\)")


def validate_compute(plugin: Any, config: Any, compute: str) -> Any:
    """``plugin.validate_connection`` inside a span, with the duration histogram and error counter.

    The one place every compute's validation goes through (``floe health``, the Dagster
    ``connection`` check, ``ComputeResource.validate``):

    - the message starts with ``compute '<name>' (<type>):`` so every reader (CLI, Dagster check
      metadata, logs) knows which compute it is about;
    - a failed result carries a correlation id, at the end of its message as
      ``(correlation id <id>)``, as ``ConnectionResult.correlation_id`` and as the span attribute
      ``floe.correlation_id`` (the id a plugin already put in its message is kept);
    - a plugin that raises instead of returning a failed result is reported as a failed result
      too (a check never crashes).
    """

    started = time.perf_counter()
    with operation_span("compute", compute, plugin.type_name, "validate_connection") as span:
        try:
            missing = missing_packages(plugin, config)
            if missing:  # no run could start either: say what to install, do not connect
                elapsed = round((time.perf_counter() - started) * 1000, 1)
                result = ConnectionResult("failed", elapsed, describe_missing(missing))
                span.set_attribute("floe.error", "MissingDbtPackageError")
            else:
                result = plugin.validate_connection(config)
        except Exception as exc:
            elapsed = round((time.perf_counter() - started) * 1000, 1)
            detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            result = ConnectionResult(
                "failed", elapsed, f"{type(exc).__name__}: {detail}", getattr(exc, "correlation_id", None)
            )
            span.set_attribute("floe.error", type(exc).__name__)
        result = _named(result, compute, plugin.type_name)
        _annotate(span, result)
    record_validation(compute, plugin.type_name, result.ok, (time.perf_counter() - started) * 1000)
    return result


def failed_validation(compute: str, plugin_type: str, exc: BaseException) -> Any:
    """A failed validation for a compute whose plugin could not even be built (bad config at run
    time, an import error): the same span, metrics, message prefix and correlation id."""

    detail = " ".join(str(exc).split()) or type(exc).__name__
    with operation_span("compute", compute, plugin_type, "validate_connection") as span:
        span.set_attribute("floe.error", type(exc).__name__)
        result = _named(ConnectionResult("failed", 0.0, detail), compute, plugin_type)
        _annotate(span, result)
    record_validation(compute, plugin_type, False, 0.0)
    return result


def _named(result: Any, compute: str, plugin_type: str) -> Any:
    """``result`` with the compute named first and, when failed, a correlation id."""
    import dataclasses

    prefix = f"compute '{compute}' ({plugin_type}): "
    message = result.message if result.message.startswith(prefix) else prefix + result.message
    correlation_id = result.correlation_id
    if not result.ok:
        found = CORRELATION_ID.search(message)
        correlation_id = correlation_id or (found.group(1) if found else new_correlation_id())
        if f"(correlation id {correlation_id})" not in message:
            message += f" (correlation id {correlation_id})"
    return dataclasses.replace(result, message=message, correlation_id=correlation_id)


def _annotate(span: Any, result: Any) -> None:
    span.set_attribute("floe.status", result.status)
    span.set_attribute("floe.latency_ms", float(result.latency_ms))
    if not result.ok:
        span.set_attribute("floe.correlation_id", result.correlation_id)
        span.set_status(Status(StatusCode.ERROR, "connection validation failed"))


_configured = False


def configure_from_environment() -> None:
    """Install SDK providers for the standard ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``.

    ``console`` prints spans and metrics; ``otlp`` exports them with the OTLP exporter package
    (``opentelemetry-exporter-otlp``, configured by the standard ``OTEL_EXPORTER_OTLP_*``
    variables) and fails clearly when it is not installed; unset or ``none`` installs nothing.
    The SDK itself reads ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES`` and
    ``OTEL_METRIC_EXPORT_INTERVAL``. Safe to call more than once (only the first call acts).
    """
    global _configured
    if _configured:
        return
    traces = os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower()
    metrics_exporter = os.environ.get("OTEL_METRICS_EXPORTER", "none").strip().lower()
    if traces not in ("", "none"):
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        provider = TracerProvider()
        if traces == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
        else:
            provider.add_span_processor(BatchSpanProcessor(_otlp("trace", traces)()))
        trace.set_tracer_provider(provider)
    if metrics_exporter not in ("", "none"):
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        if metrics_exporter == "console":
            from opentelemetry.sdk.metrics.export import ConsoleMetricExporter

            exporter: Any = ConsoleMetricExporter()
        else:
            exporter = _otlp("metric", metrics_exporter)()
        metrics.set_meter_provider(MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter)]))
    _configured = True


def _otlp(signal: str, name: str) -> Any:
    """The OTLP exporter class for ``signal`` ("trace" or "metric"), by the OTEL_*_EXPORTER value."""
    variable = "OTEL_TRACES_EXPORTER" if signal == "trace" else "OTEL_METRICS_EXPORTER"
    if name != "otlp":
        raise ValueError(f"{variable}={name!r} is not supported by floe; use console, otlp or none")
    class_name = "OTLPSpanExporter" if signal == "trace" else "OTLPMetricExporter"
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    module = (
        f"opentelemetry.exporter.otlp.proto.grpc.{signal}_exporter"
        if protocol == "grpc"
        else f"opentelemetry.exporter.otlp.proto.http.{signal}_exporter"
    )
    try:
        import importlib

        return getattr(importlib.import_module(module), class_name)
    except ImportError:
        raise ValueError(
            f"{variable}=otlp needs the OTLP exporter: pip install opentelemetry-exporter-otlp"
            f" (protocol {protocol})"
        ) from None
