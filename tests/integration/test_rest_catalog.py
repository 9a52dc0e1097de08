"""The REST and Polaris catalog plugins against an Iceberg REST server, and against a real Polaris.

No Polaris server can run here: ``iceberg_rest_server`` is a fixture implementing the public
Iceberg REST spec over PyIceberg's ``SqlCatalog`` (see ``tests/fixtures/rest_catalog_app.py``),
with controls to inject HTTP failures, hang answers and expire tokens. ``TestRealPolaris`` runs
the same contract against a real Polaris when ``FLOE_TEST_POLARIS_URI``,
``FLOE_TEST_POLARIS_CLIENT_ID`` and ``FLOE_TEST_POLARIS_CLIENT_SECRET`` are set.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from pydantic import SecretStr, ValidationError

from floe_dagster.catalogs.rest import (
    PolarisCatalogConfig,
    PolarisCatalogPlugin,
    RestCatalogConfig,
    RestCatalogPlugin,
    VendedCredentialsError,
    parse_vended_credentials,
    rest_catalog_properties,
)
from floe_dagster.plugins import (
    AuthenticationError,
    CatalogError,
    CatalogUnavailableError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    NotSupportedError,
    UnavailableError,
)
from tests.contract.contracts import SMALL, CatalogContract, unique
from tests.fixtures.iceberg_rest_server import IcebergRestServer, start_server, stop_server
from tests.fixtures.lanes import POLARIS_LANE_ENV, real_polaris_settings
from tests.fixtures.spans import record_spans

pytestmark = pytest.mark.server

WAREHOUSE = "floe"
POLARIS_ENV = POLARIS_LANE_ENV
FAST_RETRIES = {"retry_backoff_s": 0.01, "retry_max_backoff_s": 0.05}


@pytest.fixture
def rest_server(iceberg_rest_server: IcebergRestServer) -> Iterator[IcebergRestServer]:
    """The session's server with no injected faults, an empty request log and default lifetimes."""
    iceberg_rest_server.reset()
    yield iceberg_rest_server
    iceberg_rest_server.reset()


def rest_catalog(server: IcebergRestServer, **overrides: Any) -> RestCatalogPlugin:
    raw = {
        "uri": server.uri,
        "warehouse": WAREHOUSE,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "request_timeout_s": 10,
        **FAST_RETRIES,
        **overrides,
    }
    return RestCatalogPlugin("contract", RestCatalogConfig.model_validate(raw))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def statuses(server: IcebergRestServer, path: str = "") -> list[tuple[str, int]]:
    return [(r["path"], r["status"]) for r in server.requests(path)]


def error_chain_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


class TestRestCatalog(CatalogContract):
    nested_namespaces = True
    vends_credentials = True

    @pytest.fixture
    def catalog(self, rest_server: IcebergRestServer) -> RestCatalogPlugin:
        return rest_catalog(rest_server)


class TestPolarisPluginOnRestFixture(CatalogContract):
    """The ``polaris`` flavour speaks the same protocol: warehouse = Polaris catalog name."""

    nested_namespaces = True
    vends_credentials = True

    @pytest.fixture
    def catalog(self, rest_server: IcebergRestServer) -> PolarisCatalogPlugin:
        config = PolarisCatalogConfig.model_validate(
            {
                "uri": rest_server.uri,
                "warehouse": "polaris_catalog",
                "client_id": rest_server.client_id,
                "client_secret": rest_server.client_secret,
                **FAST_RETRIES,
            }
        )
        return PolarisCatalogPlugin("contract", config)


class TestRealPolaris(CatalogContract):
    nested_namespaces = True  # Polaris nests namespaces
    # Polaris vends STS credentials for S3-backed catalogs; a FILE-storage catalog vends none.
    vends_credentials = os.environ.get("FLOE_TEST_POLARIS_VENDS", "1") != "0"

    @pytest.fixture
    def catalog(self) -> PolarisCatalogPlugin:
        # skipped when no FLOE_TEST_POLARIS_* is set; a partial set fails fast naming the missing
        # ones (optional: FLOE_TEST_POLARIS_WAREHOUSE, FLOE_TEST_POLARIS_SCOPE, and
        # FLOE_TEST_POLARIS_VENDS=0 for a catalog whose storage vends no credentials)
        real_polaris_settings(os.environ)
        raw: dict[str, Any] = {
            "uri": os.environ["FLOE_TEST_POLARIS_URI"],
            "warehouse": os.environ.get("FLOE_TEST_POLARIS_WAREHOUSE", "quickstart_catalog"),
            "client_id": os.environ["FLOE_TEST_POLARIS_CLIENT_ID"],
            "client_secret": os.environ["FLOE_TEST_POLARIS_CLIENT_SECRET"],
        }
        if scope := os.environ.get("FLOE_TEST_POLARIS_SCOPE"):
            raw["scope"] = scope
        return PolarisCatalogPlugin("polaris", PolarisCatalogConfig.model_validate(raw))


# -- authentication ---------------------------------------------------------------------------------


def test_wrong_client_secret_fails_once_without_leaking_it(
    rest_server: IcebergRestServer, caplog: pytest.LogCaptureFixture
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG)
    catalog = rest_catalog(rest_server, client_secret=canary, max_retries=3)

    with pytest.raises(AuthenticationError) as info:
        catalog.list_namespaces()

    assert info.value.retryable is False
    assert info.value.provider == "rest"
    assert "invalid_client" in str(info.value)
    # One token request, refused; no retry and no catalog call after it.
    assert statuses(rest_server) == [("/v1/oauth/tokens", 401)]
    assert canary not in error_chain_text(info.value)
    assert canary not in caplog.text

    health = catalog.health_check(timeout=5)
    assert health.status == "unhealthy"
    assert canary not in health.message
    assert canary not in repr(catalog.config) and canary not in str(catalog.describe())


def test_expired_token_is_refreshed_transparently(rest_server: IcebergRestServer) -> None:
    catalog = rest_catalog(rest_server)
    ns = (unique("exp"),)
    catalog.create_namespace(ns)
    table = catalog.create_table((*ns, "t"), schema=SMALL)
    rest_server.reset()

    rest_server.expire_tokens()
    assert ns in catalog.list_namespaces()
    assert statuses(rest_server) == [
        (f"/v1/{WAREHOUSE}/namespaces", 401),
        ("/v1/oauth/tokens", 200),
        (f"/v1/{WAREHOUSE}/namespaces", 200),
    ]

    # A commit through the table object re-authenticates the same way.
    rest_server.expire_tokens()
    table.append(pa.table({"id": [1], "name": ["a"]}, schema=SMALL))
    assert catalog.load_table((*ns, "t")).scan().to_arrow().num_rows == 1


def test_token_is_refreshed_before_it_expires(rest_server: IcebergRestServer) -> None:
    rest_server.configure(token_ttl_s=2)
    catalog = rest_catalog(rest_server, token_refresh_margin_s=1.5)  # capped at half the lifetime
    catalog.list_namespaces()
    seen = len(rest_server.requests())

    time.sleep(1.2)  # past expires_in - margin (1 s), before the server's expiry (2 s)
    catalog.list_namespaces()
    assert [(r["path"], r["status"]) for r in rest_server.requests()[seen:]] == [
        ("/v1/oauth/tokens", 200),
        (f"/v1/{WAREHOUSE}/namespaces", 200),
    ]


def test_a_persistent_401_is_an_authentication_error_after_one_reauthentication(
    rest_server: IcebergRestServer,
) -> None:
    catalog = rest_catalog(rest_server, max_retries=3)
    catalog.connect()
    rest_server.reset()
    rest_server.fail(count=10, status=401, path=f"/v1/{WAREHOUSE}/namespaces")

    with pytest.raises(AuthenticationError) as info:
        catalog.list_namespaces()
    assert info.value.retryable is False
    assert statuses(rest_server) == [
        (f"/v1/{WAREHOUSE}/namespaces", 401),
        ("/v1/oauth/tokens", 200),
        (f"/v1/{WAREHOUSE}/namespaces", 401),
    ]


# -- retries ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_catalog_down_gives_up_after_max_retries(
    rest_server: IcebergRestServer, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = rest_catalog(rest_server, max_retries=2)
    catalog.connect()
    rest_server.reset()
    rest_server.fail(count=100, status=status, path=f"/v1/{WAREHOUSE}/namespaces")

    with pytest.raises(CatalogUnavailableError) as info:
        catalog.list_namespaces()

    assert info.value.retryable is True
    assert (info.value.provider, info.value.operation) == ("rest", "list_namespaces")
    assert info.value.attempts == 3  # 1 + max_retries, as data ...
    assert "after 3 attempts" in str(info.value)  # ... and in words
    assert info.value.tags()["attempts"] == "3"
    assert len(rest_server.requests(f"/v1/{WAREHOUSE}/namespaces")) == 3
    assert [r.floe["attempt"] for r in retry_records(caplog)] == [1, 2]


def retry_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "floe_dagster.catalogs.rest" and hasattr(r, "floe")]


def test_retry_waits_grow_exponentially_with_jitter(
    rest_server: IcebergRestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The waits tenacity chose, read from the before-sleep log records (about 0.5 s of sleeping)."""
    base = 0.01
    catalog = rest_catalog(rest_server, max_retries=4, retry_backoff_s=base, retry_max_backoff_s=10)
    catalog.connect()
    runs: list[list[float]] = []
    for _ in range(3):
        rest_server.fail(count=4, status=503, path=f"/v1/{WAREHOUSE}/namespaces")
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="floe_dagster.catalogs.rest"):
            catalog.list_namespaces()  # the fifth attempt answers
        runs.append([r.floe["wait_s"] for r in retry_records(caplog)])

    jitters = []
    for waits in runs:
        assert len(waits) == 4
        for retry, wait in enumerate(waits):
            floor = base * 2**retry  # 0.01, 0.02, 0.04, 0.08: doubling ...
            assert floor <= wait <= floor + base, waits  # ... plus at most one backoff of jitter
            jitters.append(wait - floor)
    assert len({round(j, 9) for j in jitters}) == len(jitters)  # random, never twice the same
    assert max(jitters) - min(jitters) > base / 10  # spread over the jitter range, not an offset

    capped = rest_catalog(rest_server, max_retries=4, retry_backoff_s=base, retry_max_backoff_s=0.02)
    capped.connect()
    rest_server.fail(count=4, status=503, path=f"/v1/{WAREHOUSE}/namespaces")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="floe_dagster.catalogs.rest"):
        capped.list_namespaces()
    floors = [0.01, 0.02, 0.02, 0.02]  # the exponential part stops at retry_max_backoff_s
    waits = [r.floe["wait_s"] for r in retry_records(caplog)]
    assert all(f <= w <= f + base for f, w in zip(floors, waits, strict=True)), waits


def test_501_is_not_supported_and_never_retried(rest_server: IcebergRestServer) -> None:
    catalog = rest_catalog(rest_server, max_retries=3)
    catalog.connect()
    rest_server.reset()
    rest_server.fail(count=10, status=501, path=f"/v1/{WAREHOUSE}/namespaces")

    with pytest.raises(NotSupportedError) as info:
        catalog.list_namespaces()
    assert (info.value.provider, info.value.operation, info.value.retryable) == (
        "rest",
        "list_namespaces",
        False,
    )
    assert "attempt" not in str(info.value)
    assert len(rest_server.requests(f"/v1/{WAREHOUSE}/namespaces")) == 1


def test_transient_failures_are_retried_until_success(rest_server: IcebergRestServer) -> None:
    catalog = rest_catalog(rest_server, max_retries=3)
    ns = (unique("retry"),)
    catalog.create_namespace(ns)
    rest_server.reset()
    rest_server.fail(count=2, status=503, path=f"/v1/{WAREHOUSE}/namespaces")

    assert ns in catalog.list_namespaces()
    assert [s for _, s in statuses(rest_server, f"/v1/{WAREHOUSE}/namespaces")] == [503, 503, 200]


def test_connect_is_retried_too(rest_server: IcebergRestServer) -> None:
    rest_server.fail(count=1, status=503, path="/v1/config")
    catalog = rest_catalog(rest_server, max_retries=1)
    assert isinstance(catalog.list_namespaces(), list)
    assert [s for _, s in statuses(rest_server, "/v1/config")] == [503, 200]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, CatalogError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, CatalogError),
    ],
)
def test_client_errors_are_not_retried(
    rest_server: IcebergRestServer, status: int, error: type[CatalogError]
) -> None:
    catalog = rest_catalog(rest_server, max_retries=3)
    catalog.connect()
    rest_server.reset()
    rest_server.fail(count=10, status=status, path=f"/v1/{WAREHOUSE}/namespaces")

    with pytest.raises(error) as info:
        catalog.list_namespaces()
    assert not isinstance(info.value, UnavailableError)
    assert info.value.retryable is False
    assert "attempt" not in str(info.value)
    assert len(rest_server.requests(f"/v1/{WAREHOUSE}/namespaces")) == 1


def test_unreachable_catalog_is_unavailable_after_retries() -> None:
    config = RestCatalogConfig.model_validate(
        {
            "uri": f"http://127.0.0.1:{free_port()}/api/catalog",
            "client_id": "x",
            "client_secret": "y",
            "max_retries": 2,
            **FAST_RETRIES,
        }
    )
    catalog = RestCatalogPlugin("down", config)
    started = time.perf_counter()
    with pytest.raises(UnavailableError) as info:
        catalog.list_namespaces()
    assert time.perf_counter() - started < 5
    assert "after 3 attempts" in str(info.value)
    assert info.value.operation == "connect"
    assert isinstance(info.value, CatalogUnavailableError) and info.value.retryable
    assert info.value.attempts == 3
    assert catalog.health_check(timeout=2).status == "unhealthy"


def test_connection_lifecycle_is_logged_with_fields_and_no_secret(
    rest_server: IcebergRestServer, caplog: pytest.LogCaptureFixture
) -> None:
    canary = f"canary-{uuid.uuid4().hex}"
    down = RestCatalogPlugin(
        "down",
        RestCatalogConfig.model_validate(
            {
                "uri": f"http://127.0.0.1:{free_port()}/api/catalog",
                "client_id": "x",
                "client_secret": canary,
                "max_retries": 0,
                **FAST_RETRIES,
            }
        ),
    )
    with caplog.at_level(logging.INFO, logger="floe_dagster.catalogs.lifecycle"):
        rest_catalog(rest_server).connect()
        with pytest.raises(CatalogUnavailableError):
            down.connect()
    events = [(r.floe["catalog"], r.floe["event"]) for r in caplog.records if hasattr(r, "floe")]
    assert events == [("contract", "start"), ("contract", "ok"), ("down", "start"), ("down", "failed")]
    failed = caplog.records[-1]
    assert failed.floe["retryable"] is True and failed.floe["ms"] >= 0
    assert "catalog.connect.failed" in failed.getMessage() and "uri=http://127.0.0.1:" in failed.getMessage()
    assert canary not in caplog.text


def test_hanging_requests_time_out_and_are_retried(rest_server: IcebergRestServer) -> None:
    catalog = rest_catalog(rest_server, request_timeout_s=0.5, max_retries=1)
    catalog.connect()
    rest_server.reset()
    rest_server.hang(seconds=30, path=f"/v1/{WAREHOUSE}/namespaces")

    started = time.perf_counter()
    with pytest.raises(UnavailableError) as info:
        catalog.list_namespaces()
    assert time.perf_counter() - started < 4
    assert "after 2 attempts" in str(info.value)


# -- telemetry ----------------------------------------------------------------------------------------

CANARY_SECRET = f"CANARY-rest-secret-{uuid.uuid4().hex}"


@pytest.fixture
def captured_spans() -> Iterator[Any]:
    with record_spans() as exporter:
        yield exporter


@pytest.fixture(scope="module")
def canary_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IcebergRestServer]:
    """A second fixture server whose (valid) client secret is a canary."""
    server = start_server(tmp_path_factory.mktemp("rest_canary"), client_secret=CANARY_SECRET)
    try:
        yield server
    finally:
        stop_server(server)


def test_one_span_per_catalog_operation_with_its_facts_and_no_secret(
    canary_server: IcebergRestServer, captured_spans: Any
) -> None:
    catalog = rest_catalog(canary_server, max_retries=2)
    ns = unique("spans")
    table = (ns, "t")
    catalog.connect()
    canary_server.fail(count=1, status=503, path=f"/v1/{WAREHOUSE}/namespaces")  # one retry, one span
    catalog.create_namespace((ns,), {"owner": "spans"})
    catalog.list_namespaces()
    catalog.load_namespace_properties((ns,))
    catalog.create_table(table, schema=SMALL)
    catalog.load_table(table)
    catalog.list_tables((ns,))
    catalog.vend_credentials(table, ["read"])
    with pytest.raises(NotFoundError):
        catalog.drop_table((ns, "missing"))
    catalog.drop_table(table)
    catalog.delete_namespace((ns,))
    assert catalog.health_check(timeout=5).healthy

    spans = captured_spans.get_finished_spans()
    facts = [(s.name, s.attributes.get("floe.subject"), s.attributes.get("floe.outcome")) for s in spans]
    uri, t = canary_server.uri, f"{ns}.t"
    assert facts == [
        ("floe.catalog.connect", uri, "ok"),
        ("floe.catalog.create_namespace", ns, "ok"),
        ("floe.catalog.list_namespaces", None, "ok"),
        ("floe.catalog.load_namespace_properties", ns, "ok"),
        ("floe.catalog.create_table", t, "ok"),
        ("floe.catalog.load_table", t, "ok"),
        ("floe.catalog.list_tables", ns, "ok"),
        ("floe.catalog.vend_credentials", t, "ok"),
        ("floe.catalog.drop_table", f"{ns}.missing", "error"),
        ("floe.catalog.drop_table", t, "ok"),
        ("floe.catalog.delete_namespace", ns, "ok"),
        ("floe.catalog.health_check", uri, "ok"),
    ]
    for span in spans:
        assert span.attributes["floe.catalog"] == "contract"
        assert span.attributes["floe.plugin_type"] == "rest"
        assert span.name == f"floe.catalog.{span.attributes['floe.operation']}"
        assert CANARY_SECRET not in span.to_json()  # attributes, events, status, resource
    failed = spans[8]
    assert failed.attributes["floe.error"] == "CatalogNotFoundError"  # a NotFoundError and a CatalogError
    assert failed.status.status_code.name == "ERROR"
    # the injected 503 was retried inside the create_namespace span
    assert [s for p, s in statuses(canary_server, f"/v1/{WAREHOUSE}/namespaces")][:2] == [503, 200]


def test_a_failed_health_check_is_one_error_span(rest_server: IcebergRestServer, captured_spans: Any) -> None:
    catalog = rest_catalog(rest_server)
    catalog.connect()
    rest_server.fail(count=1, status=503, path=f"/v1/{WAREHOUSE}/namespaces")
    captured_spans.clear()
    assert catalog.health_check(timeout=5).status == "unhealthy"
    [span] = captured_spans.get_finished_spans()
    assert span.name == "floe.catalog.health_check"
    assert (span.attributes["floe.outcome"], span.attributes["floe.error"]) == (
        "error",
        "CatalogUnavailableError",
    )


# -- catalog semantics --------------------------------------------------------------------------------


def test_conflicts_and_missing_objects_are_tagged(rest_server: IcebergRestServer) -> None:
    catalog = rest_catalog(rest_server)
    ns = (unique("sem"),)
    catalog.create_namespace(ns, {"owner": "floe"})
    catalog.create_table((*ns, "t"), schema=SMALL)
    rest_server.reset()

    with pytest.raises(ConflictError) as conflict:
        catalog.create_namespace(ns)
    assert conflict.value.operation == "create_namespace"
    with pytest.raises(ConflictError):
        catalog.create_table((*ns, "t"), schema=SMALL)
    with pytest.raises(ConflictError) as not_empty:
        catalog.delete_namespace(ns)
    assert not_empty.value.operation == "delete_namespace"
    with pytest.raises(NotFoundError):
        catalog.drop_table((*ns, "missing"))
    with pytest.raises(NotFoundError):
        catalog.delete_namespace((unique("missing"),))
    with pytest.raises(NotFoundError):
        catalog.load_table((*ns, "missing"))
    # None of these was retried: one request each.
    assert len(rest_server.requests()) == 6

    catalog.drop_table((*ns, "t"), purge=True)
    catalog.delete_namespace(ns)
    assert ns not in catalog.list_namespaces()


def test_hierarchical_namespaces(rest_server: IcebergRestServer) -> None:
    catalog = rest_catalog(rest_server)
    parent = (unique("p"),)
    catalog.create_namespace(parent)
    catalog.create_namespace((*parent, "child"))
    assert catalog.list_namespaces(parent) == [(*parent, "child")]
    catalog.ensure_namespace((*parent, "child"))
    catalog.delete_namespace((*parent, "child"))
    catalog.delete_namespace(parent)


# -- vended credentials -------------------------------------------------------------------------------


def _table_with_credentials(catalog: RestCatalogPlugin) -> tuple[str, ...]:
    ns = (unique("vend"),)
    catalog.create_namespace(ns)
    catalog.create_table((*ns, "t"), schema=SMALL)
    return (*ns, "t")


def test_vended_credentials_are_parsed_and_bounded(rest_server: IcebergRestServer) -> None:
    catalog = rest_catalog(rest_server)
    identifier = _table_with_credentials(catalog)
    creds = catalog.vend_credentials(identifier, ["read", "write"])

    assert creds.access_key_id.startswith("ASIA")
    assert isinstance(creds.secret_access_key, SecretStr)
    assert isinstance(creds.session_token, SecretStr)
    assert creds.secret_access_key.get_secret_value() not in repr(creds)
    assert creds.expiration is not None
    assert abs(creds.expiration - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(minutes=1)
    # The load carried the access-delegation header (the fixture vends only then).
    assert rest_server.requests(f"/v1/{WAREHOUSE}/namespaces/{identifier[0]}/tables/t", "GET")


@pytest.mark.parametrize(
    ("ttl_s", "problem"),
    [(25 * 3600, "at most 24 h"), (-60, "expired already")],
)
def test_vended_credentials_outside_24_hours_are_rejected(
    rest_server: IcebergRestServer, ttl_s: float, problem: str
) -> None:
    catalog = rest_catalog(rest_server)
    identifier = _table_with_credentials(catalog)
    rest_server.configure(vended_ttl_s=ttl_s)

    with pytest.raises(VendedCredentialsError) as info:
        catalog.vend_credentials(identifier, ["read"])
    assert isinstance(info.value, CatalogError)
    assert info.value.retryable is False
    assert (info.value.provider, info.value.operation) == ("rest", "vend_credentials")
    assert problem in str(info.value)


def test_no_vended_credentials_is_not_supported(rest_server: IcebergRestServer) -> None:
    catalog = rest_catalog(rest_server, properties={"header.X-Iceberg-Access-Delegation": ""})
    identifier = _table_with_credentials(catalog)
    with pytest.raises(NotSupportedError) as info:
        catalog.vend_credentials(identifier, ["read"])
    assert info.value.operation == "vend_credentials"
    with pytest.raises(ConfigurationError):
        catalog.vend_credentials(identifier, ["delete"])


def test_parse_vended_credentials_edge_cases() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    base = {"s3.access-key-id": "AK", "s3.secret-access-key": "SK"}
    in_ms = str(int((now + timedelta(hours=2)).timestamp() * 1000))

    creds = parse_vended_credentials(
        {**base, "expiration-time": in_ms}, subject="t", provider="rest", now=now
    )
    assert creds.expiration == now + timedelta(hours=2) and creds.session_token is None
    iso = (now + timedelta(hours=24)).isoformat()
    assert parse_vended_credentials(
        {**base, "s3.session-token-expiration": iso}, subject="t", provider="rest", now=now
    ).expiration == now + timedelta(hours=24)
    with pytest.raises(VendedCredentialsError, match="no readable expiration"):
        parse_vended_credentials(base, subject="t", provider="rest", now=now)
    with pytest.raises(VendedCredentialsError, match="unreadable expiration"):
        parse_vended_credentials({**base, "expiration-time": "soon"}, subject="t", provider="rest", now=now)
    with pytest.raises(NotSupportedError, match="gcs.oauth2.token"):
        parse_vended_credentials({"gcs.oauth2.token": "x"}, subject="t", provider="rest", now=now)


# -- health -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("connected", [True, False], ids=["connected", "fresh"])
def test_health_check_against_a_hanging_server(rest_server: IcebergRestServer, connected: bool) -> None:
    catalog = rest_catalog(rest_server)
    if connected:
        catalog.connect()
    rest_server.hang(seconds=30)

    started = time.perf_counter()
    health = catalog.health_check(timeout=1)
    elapsed = time.perf_counter() - started
    assert health.status == "unhealthy"
    assert "within 1s" in health.message or "timed out" in health.message.lower()
    assert elapsed < 1.5
    assert health.response_ms < 1500

    rest_server.reset()  # the server answers again: the same plugin works normally
    assert isinstance(catalog.list_namespaces(), list)
    assert catalog.health_check(timeout=5).healthy


def join_health_probes(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith("floe-health"):
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), "a health probe thread never ended"


def test_a_probe_that_answers_after_the_timeout_never_publishes_its_catalog(
    rest_server: IcebergRestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Each request answers within the timeout, the probe as a whole (token, config, listing) not."""
    catalog = rest_catalog(rest_server)
    rest_server.hang(seconds=0.3)
    with caplog.at_level(logging.INFO, logger="floe_dagster.catalogs.lifecycle"):
        started = time.perf_counter()
        health = catalog.health_check(timeout=0.5)
        assert time.perf_counter() - started < 0.9
        assert health.status == "unhealthy" and "no answer within 0.5s" in health.message

        join_health_probes()
        # the abandoned probe did finish its listing ...
        assert (f"/v1/{WAREHOUSE}/namespaces", 200) in statuses(rest_server)
        # ... and what it opened was dropped: only the caller's thread publishes a catalog
        assert catalog._catalog is None

        rest_server.reset()
        assert isinstance(catalog.list_namespaces(), list)
    lifecycle = [(r.floe["by"], r.floe["event"]) for r in caplog.records if hasattr(r, "floe")]
    assert lifecycle == [
        ("health_check", "start"),
        ("health_check", "failed"),
        ("connect", "start"),
        ("connect", "ok"),
    ]
    failed = caplog.records[1]
    assert failed.levelno == logging.WARNING and "no answer within 0.5s" in failed.getMessage()


def test_a_health_check_that_connects_logs_the_lifecycle_and_keeps_the_catalog(
    rest_server: IcebergRestServer, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = rest_catalog(rest_server)
    with caplog.at_level(logging.INFO, logger="floe_dagster.catalogs.lifecycle"):
        assert catalog.health_check(timeout=5).healthy
        catalog.list_namespaces()  # uses the catalog the health check opened
    lifecycle = [(r.floe["by"], r.floe["event"]) for r in caplog.records if hasattr(r, "floe")]
    assert lifecycle == [("health_check", "start"), ("health_check", "ok")]
    assert [path for path, _ in statuses(rest_server)].count("/v1/config") == 1


def test_health_check_is_a_single_probe(rest_server: IcebergRestServer) -> None:
    catalog = rest_catalog(rest_server, max_retries=5)
    assert catalog.health_check(timeout=5).healthy
    rest_server.reset()
    rest_server.fail(count=10, status=503, path=f"/v1/{WAREHOUSE}/namespaces")

    health = catalog.health_check(timeout=5)
    assert health.status == "unhealthy"
    assert "ServiceUnavailable" in health.message
    assert len(rest_server.requests(f"/v1/{WAREHOUSE}/namespaces")) == 1


# -- configuration --------------------------------------------------------------------------------------


def test_properties_are_normalised_in_one_place() -> None:
    config = RestCatalogConfig.model_validate(
        {
            "uri": "https://polaris.example:8181/api/catalog/",
            "warehouse": "lake",
            "client_id": "svc",
            "client_secret": "s3cr3t",
            "scope": "PRINCIPAL_ROLE:etl",
            "token_refresh_margin_s": 30,
            "request_timeout_s": 5,
            "properties": {"s3.endpoint": "http://minio:9000", "rest-page-size": "100"},
        }
    )
    assert rest_catalog_properties(config) == {
        "type": "rest",
        "uri": "https://polaris.example:8181/api/catalog",
        "warehouse": "lake",
        "credential": "svc:s3cr3t",
        "scope": "PRINCIPAL_ROLE:etl",
        "oauth2-server-uri": "https://polaris.example:8181/api/catalog/v1/oauth/tokens",
        "header.X-Iceberg-Access-Delegation": "vended-credentials",
        "floe.token-refresh-margin-s": "30",
        "floe.request-timeout-s": "5",
        "s3.endpoint": "http://minio:9000",
        "rest-page-size": "100",
    }
    anonymous = RestCatalogConfig.model_validate(
        {"uri": "http://rest:8181", "oauth2_server_uri": "http://idp/token"}
    )
    props = rest_catalog_properties(anonymous)
    assert "credential" not in props and "oauth2-server-uri" not in props and "scope" not in props


def test_polaris_defaults_and_requirements() -> None:
    config = PolarisCatalogConfig.model_validate(
        {"uri": "http://polaris:8181/api/catalog", "warehouse": "wh", "client_id": "a", "client_secret": "b"}
    )
    assert config.scope == "PRINCIPAL_ROLE:ALL"
    plugin = PolarisCatalogPlugin("p", config)
    assert plugin.type_name == "polaris"
    assert plugin.catalog_properties()["scope"] == "PRINCIPAL_ROLE:ALL"
    assert plugin.describe() == {
        "catalog": "p",
        "type": "polaris",
        "uri": "http://polaris:8181/api/catalog",
        "warehouse": "wh",
        "auth": "oauth2-client-credentials",
    }
    with pytest.raises(ValidationError) as info:
        PolarisCatalogConfig.model_validate({"uri": "http://polaris:8181/api/catalog"})
    assert {e["loc"][0] for e in info.value.errors()} == {"warehouse", "client_id", "client_secret"}
    assert set(PolarisCatalogPlugin.config_json_schema()["required"]) == {
        "uri",
        "warehouse",
        "client_id",
        "client_secret",
    }
    assert RestCatalogPlugin.config_json_schema()["required"] == ["uri"]


@pytest.mark.parametrize(
    ("raw", "field", "problem"),
    [
        ({"uri": "thrift://h:9083"}, "uri", "http://"),
        ({"uri": "http://user:pw@h:8181"}, "uri", "client_id/client_secret"),
        ({"uri": "http://h:notaport"}, "uri", "invalid port"),
        ({"uri": "http://h", "client_id": "a"}, None, "set both or neither"),
        ({"uri": "http://h", "properties": {"credential": "a:b"}}, "properties", "client_id"),
        ({"uri": "http://h", "properties": {"token": "t"}}, "properties", "static tokens"),
        ({"uri": "http://h", "properties": {"auth.type": "basic"}}, "properties", "OAuth2"),
        ({"uri": "http://h", "max_retries": 11}, "max_retries", "less than or equal"),
        ({"uri": "http://h", "request_timeout_s": 0}, "request_timeout_s", "greater than"),
    ],
)
def test_invalid_config_names_the_field(raw: dict[str, Any], field: str | None, problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        RestCatalogConfig.model_validate(raw)
    error = info.value.errors()[0]
    if field is not None:
        assert error["loc"] == (field,)
    assert problem in error["msg"]
