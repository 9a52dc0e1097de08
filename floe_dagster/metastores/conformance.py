"""One set of conformance checks for every metastore connector (tests and ``floe conformance``).

Each check runs the same assertions against any connector, with no provider-specific branch:
the only inputs are the connector and one readable table ``namespace.table`` it knows.

=================  =============================================================================
check              what must hold
=================  =============================================================================
list               ``list_namespaces`` holds the namespace, ``list_tables`` the table (lists of str)
get                ``get_table`` is a valid neutral ``Table`` with that name, columns, a data version
batch_get          ``get_tables`` equals the single gets, in order; a missing name is a
                   ``NotFoundError`` tagged with the provider and ``get_tables`` (or ``get_table``)
scan_description   ``describe_scan`` names the table, a format and a location (Iceberg: the
                   metadata location); DuckDB SQL made from it runs (with the connector's
                   storage credentials) and returns the table's columns; a format DuckDB cannot
                   read must be a ``NotSupportedError`` tagged duckdb, retryable=false
data_version       two reads without a change give the same data version, batched or single
error_tags         a missing table: ``NotFoundError``, provider = the connector's type,
                   ``operation=get_table``, ``retryable=false``; each capability the connector does
                   not declare raises ``NotSupportedError`` tagged provider + operation; declared
                   ones answer; nothing but ``FloeError`` escapes
table_stats        declared ``table_stats``: a ``TableStats`` with no negative count; not
                   declared: ``NotSupportedError`` tagged provider, ``table_stats``, retryable=false
spark_scan         (``--engine spark`` only) the Spark compute's view over ``describe_scan`` runs in
                   a local Spark session and returns the table's columns; a scheme or format
                   Spark cannot read must be a ``NotSupportedError`` tagged spark, retryable=false
debug_output       ``diagnostics()`` has the keys metastore, provider, endpoint, auth, capabilities
                   and ``config.*`` only, provider = the type; ``debug_report()`` is
                   ``floe metastore debug: <name>`` then ``  key = value`` lines, no secret value
=================  =============================================================================

``check_unavailable`` needs a connector pointed at a metastore that is not there (it is not in
``CHECKS``, which run against a reachable one): its first listing must fail with an
``UnavailableError`` tagged with the provider, the listing operation and ``retryable=true``.

A failed check names the provider and the mismatch (expected vs got).
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from floe_dagster.core.errors import FloeError, NotFoundError, NotSupportedError, UnavailableError
from floe_dagster.metastores.state import select_metastores
from floe_dagster.plan.builders import build_metastore, table_filter
from floe_dagster.plugins.metastore import Capability, MetastoreConnector, secret_values
from floe_dagster.plugins.table_model import ScanDescription, Table, TableFilter, TableStats
from floe_dagster.readers.duckdb_scan import relation_sql, scan_connection
from floe_dagster.readers.spark_scan import spark_check_session
from floe_dagster.readers.spark_scan import view_statements as spark_view_statements

MISSING_TABLE = "floe_conformance_no_such_table"
CHECKS = (
    "list",
    "get",
    "batch_get",
    "scan_description",
    "data_version",
    "error_tags",
    "table_stats",
    "debug_output",
)
# `floe conformance --engine spark`: the scan description read by the Spark compute's views too
SPARK_CHECKS = ("spark_scan",)
ENGINE_CHECKS = {"duckdb": CHECKS, "spark": (*CHECKS, *SPARK_CHECKS)}
DIAGNOSTIC_KEYS = ("metastore", "provider", "endpoint", "auth", "capabilities")
PASS, FAIL = "PASS", "FAIL"


class ConformanceMismatch(AssertionError):
    """One assertion of a check did not hold; the message names what was expected and what came."""


@dataclass(frozen=True)
class CheckResult:
    provider: str
    metastore: str
    check: str
    status: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def __str__(self) -> str:
        where = f"provider {self.provider} (metastore '{self.metastore}')"
        return f"{where}: {self.check}: {self.status}" + (f": {self.detail}" if self.detail else "")


def expect(condition: bool, what: str, expected: Any, got: Any) -> None:
    if not condition:
        raise ConformanceMismatch(f"{what}: expected {expected!r}, got {got!r}")


def expect_tags(exc: BaseException, provider: str, operations: Sequence[str], retryable: bool | None) -> None:
    expect(isinstance(exc, FloeError), "error type", "a FloeError", type(exc).__name__)
    assert isinstance(exc, FloeError)
    expect(exc.provider == provider, "error tag provider", provider, exc.provider)
    expect(exc.operation in operations, "error tag operation", " or ".join(operations), exc.operation)
    if retryable is not None:
        expect(exc.retryable is retryable, "error tag retryable", retryable, exc.retryable)


def raised(call: Callable[[], Any]) -> BaseException | None:
    try:
        call()
    except Exception as exc:
        return exc
    return None


# --- the checks ------------------------------------------------------------------------------------


def check_list(connector: MetastoreConnector, namespace: str, table: str) -> None:
    namespaces = connector.list_namespaces()
    expect(isinstance(namespaces, list), "list_namespaces type", "list", type(namespaces).__name__)
    expect(namespace in namespaces, "list_namespaces", f"to contain {namespace}", namespaces[:20])
    tables = connector.list_tables(namespace)
    expect(all(isinstance(t, str) for t in tables), "list_tables items", "str", tables[:5])
    expect(table in tables, f"list_tables({namespace})", f"to contain {table}", tables[:20])


def check_get(connector: MetastoreConnector, namespace: str, table: str) -> None:
    got = connector.get_table(namespace, table)
    expect(isinstance(got, Table), "get_table type", "Table", type(got).__name__)
    got.validate()
    expect(
        (got.namespace, got.name) == (namespace, table),
        "get_table name",
        (namespace, table),
        (got.namespace, got.name),
    )
    expect(bool(got.storage.columns), "get_table columns", "at least one column", got.storage.columns)
    expect(
        isinstance(got.data_version, str) and bool(got.data_version),
        "data_version",
        "non-empty str",
        got.data_version,
    )


def check_batch_get(connector: MetastoreConnector, namespace: str, table: str) -> None:
    batch = connector.get_tables(namespace, [table])
    single = connector.get_table(namespace, table)
    expect(
        batch == [single],
        "get_tables([t]) == [get_table(t)]",
        [single.qualified_name],
        [t.qualified_name for t in batch],
    )
    error = raised(lambda: connector.get_tables(namespace, [table, MISSING_TABLE]))
    expect(isinstance(error, NotFoundError), "get_tables with a missing name", "NotFoundError", _name(error))
    assert error is not None
    expect_tags(error, connector.type_name, ("get_tables", "get_table"), False)


def check_scan_description(connector: MetastoreConnector, namespace: str, table: str) -> None:
    scan = connector.describe_scan(namespace, table)
    expect(isinstance(scan, ScanDescription), "describe_scan type", "ScanDescription", type(scan).__name__)
    expect(scan.table == f"{namespace}.{table}", "scan.table", f"{namespace}.{table}", scan.table)
    expect(
        bool(scan.format) and bool(scan.location),
        "scan format/location",
        "both set",
        (scan.format, scan.location),
    )
    if scan.format == "iceberg":
        expect(
            bool(scan.metadata_location),
            "scan.metadata_location of an Iceberg table",
            "set",
            scan.metadata_location,
        )
    try:
        relation = relation_sql(scan)
    except NotSupportedError as exc:  # DuckDB has no reader (ORC, HDFS): a tagged refusal is conformant
        expect_tags(exc, "duckdb", (exc.operation or "-",), False)
        return
    read_with_duckdb(connector, scan, relation)


def read_with_duckdb(connector: MetastoreConnector, scan: ScanDescription, relation: str) -> None:
    """Run the relation in DuckDB (extensions loaded, storage secret from the connector's
    credentials): it must answer, with every column the scan describes."""

    con = scan_connection([scan], connector.credentials)
    try:
        try:
            result = con.execute(f"SELECT * FROM {relation} LIMIT 1")
        except Exception as exc:  # the SQL itself is what is checked: DuckDB's answer is the detail
            raise ConformanceMismatch(
                f"DuckDB reading {scan.table}: expected rows, got {type(exc).__name__}:"
                f" {connector.redact(str(exc))[:300]}"
            ) from None
        got = {d[0].lower() for d in result.description}
        wanted = {c.name.lower() for c in (*scan.columns, *scan.partition_columns)}
        expect(wanted <= got, "DuckDB columns of the scan", sorted(wanted), sorted(got))
    finally:
        con.close()


def check_spark_scan(connector: MetastoreConnector, namespace: str, table: str) -> None:
    """The Spark compute's view over the scan (``readers/spark_scan.py``) answers in a local Spark
    session with every column the scan describes; a scheme or format Spark cannot read must be a
    ``NotSupportedError`` tagged spark, retryable=false (the view then fails with that reason)."""
    scan = connector.describe_scan(namespace, table)
    relation = ("floe_conformance", f"{connector.name}_{namespace}_{table}".replace(".", "_"))
    try:
        statements = spark_view_statements(scan, relation)
    except NotSupportedError as exc:
        expect_tags(exc, "spark", (exc.operation or "-",), False)
        return
    try:
        session = spark_check_session()
    except ImportError:
        raise ConformanceMismatch(
            "Spark reading: expected a local Spark session, got no pyspark (pip install floe-dagster[spark])"
        ) from None
    try:
        for statement in statements:
            session.sql(statement)
        frame = session.sql(f"SELECT * FROM {relation[0]}.{relation[1]} LIMIT 1")
        frame.collect()
    except Exception as exc:  # Spark's answer is the detail
        detail = " ".join(str(exc).split())[:300]
        raise ConformanceMismatch(
            f"Spark reading {scan.table}: expected rows, got {type(exc).__name__}: {connector.redact(detail)}"
        ) from None
    got = {name.lower() for name in frame.columns}
    wanted = {c.name.lower() for c in (*scan.columns, *scan.partition_columns)}
    expect(wanted <= got, "Spark columns of the scan", sorted(wanted), sorted(got))


def check_data_version(connector: MetastoreConnector, namespace: str, table: str) -> None:
    first = connector.get_table(namespace, table).data_version
    second = connector.get_table(namespace, table).data_version
    expect(first == second, "data version of two reads without a change", first, second)
    batched = connector.get_tables(namespace, [table])[0].data_version
    expect(batched == first, "batched data version", first, batched)


def check_error_tags(connector: MetastoreConnector, namespace: str, table: str) -> None:
    provider = connector.type_name
    error = raised(lambda: connector.get_table(namespace, MISSING_TABLE))
    expect(isinstance(error, NotFoundError), "get_table of a missing table", "NotFoundError", _name(error))
    assert error is not None
    expect_tags(error, provider, ("get_table",), False)
    tags = error.tags() if isinstance(error, FloeError) else {}
    expect(
        tags.keys() >= {"provider", "operation", "retryable"},
        "tags()",
        "provider, operation, retryable",
        tags,
    )
    if Capability.LIST_PARTITIONS in connector.capabilities:
        error = raised(lambda: connector.list_partitions(namespace, table))
        expect(error is None, "list_partitions (declared)", "an answer", _name(error))
    else:
        error = raised(lambda: connector.list_partitions(namespace, table))
        expect(
            isinstance(error, NotSupportedError),
            "list_partitions (not declared)",
            "NotSupportedError",
            _name(error),
        )
        assert error is not None
        expect_tags(error, provider, ("list_partitions",), False)


def check_table_stats(connector: MetastoreConnector, namespace: str, table: str) -> None:
    if Capability.TABLE_STATS not in connector.capabilities:
        error = raised(lambda: connector.table_stats(namespace, table))
        expect(
            isinstance(error, NotSupportedError),
            "table_stats (not declared)",
            "NotSupportedError",
            _name(error),
        )
        assert error is not None
        expect_tags(error, connector.type_name, ("table_stats",), False)
        return
    stats = connector.table_stats(namespace, table)
    expect(isinstance(stats, TableStats), "table_stats type", "TableStats", type(stats).__name__)
    counts = {
        "row_count": stats.row_count,
        "size_bytes": stats.size_bytes,
        "file_count": stats.file_count,
        "partition_count": stats.partition_count,
    }
    negative = {k: v for k, v in counts.items() if v is not None and v < 0}
    expect(not negative, "table_stats counts", "none negative", negative)


def check_unavailable(connector: MetastoreConnector) -> None:
    """``connector`` points at a metastore that is not there: the first listing that needs it
    (``list_namespaces``, or ``list_tables`` when namespaces come from the config) fails with a
    retryable error tagged with the provider and that operation."""

    def first_listing() -> None:
        namespaces = connector.list_namespaces()
        expect(bool(namespaces), "list_namespaces of an unreachable metastore", "an error", namespaces)
        connector.list_tables(namespaces[0])

    error = raised(first_listing)
    if isinstance(error, ConformanceMismatch):
        raise error
    expect(
        isinstance(error, UnavailableError),
        "listing an unreachable metastore",
        "UnavailableError",
        _name(error),
    )
    assert error is not None
    expect_tags(error, connector.type_name, ("list_namespaces", "list_tables"), True)


def check_debug_output(connector: MetastoreConnector, namespace: str, table: str) -> None:
    facts = connector.diagnostics()
    keys = [k for k in facts if not k.startswith("config.")]
    expect(keys == list(DIAGNOSTIC_KEYS), "diagnostics keys", list(DIAGNOSTIC_KEYS), keys)
    expect(
        facts["provider"] == connector.type_name,
        "diagnostics provider",
        connector.type_name,
        facts["provider"],
    )
    expect(facts["metastore"] == connector.name, "diagnostics metastore", connector.name, facts["metastore"])
    capabilities = ",".join(sorted(c.value for c in connector.capabilities))
    expect(
        facts["capabilities"] == capabilities, "diagnostics capabilities", capabilities, facts["capabilities"]
    )
    report = connector.debug_report()
    lines = report.rstrip("\n").split("\n")
    header = f"floe metastore debug: {connector.name}"
    expect(lines[0] == header, "debug_report header", header, lines[0])
    bad = [line for line in lines[1:] if not (line.startswith("  ") and " = " in line)]
    expect(not bad, "debug_report lines", "'  key = value'", bad[:3])
    leaked = [s for s in secret_values(connector.config) if s in report]
    expect(not leaked, "debug_report secrets", "none", f"{len(leaked)} secret value(s) printed")


CHECK_FUNCTIONS: dict[str, Callable[[MetastoreConnector, str, str], None]] = {
    "list": check_list,
    "get": check_get,
    "batch_get": check_batch_get,
    "scan_description": check_scan_description,
    "data_version": check_data_version,
    "error_tags": check_error_tags,
    "table_stats": check_table_stats,
    "debug_output": check_debug_output,
    "spark_scan": check_spark_scan,
}


def run_check(connector: MetastoreConnector, check: str, namespace: str, table: str) -> CheckResult:
    """One check as a result: PASS, or FAIL naming the mismatch (or the unexpected exception)."""
    provider = connector.type_name
    try:
        CHECK_FUNCTIONS[check](connector, namespace, table)
    except ConformanceMismatch as exc:
        return CheckResult(provider, connector.name, check, FAIL, str(exc))
    except FloeError as exc:
        return CheckResult(provider, connector.name, check, FAIL, f"unexpected {type(exc).__name__}: {exc}")
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return CheckResult(
            provider,
            connector.name,
            check,
            FAIL,
            f"{type(exc).__name__} escaped unmapped ({exc}) at {where.filename}:{where.lineno}",
        )
    return CheckResult(provider, connector.name, check, PASS)


def check_connector(
    connector: MetastoreConnector, namespace: str, table: str, checks: Iterable[str] = CHECKS
) -> list[CheckResult]:
    return [run_check(connector, check, namespace, table) for check in checks]


def pick_table(
    connector: MetastoreConnector, table_filter: TableFilter | None = None
) -> tuple[str, str] | None:
    """The first table (in name order) the connector can describe, or None."""
    table_filter = table_filter or TableFilter()
    for table in connector.scan(table_filter):
        return table.namespace, table.name
    return None


def failures(results: Iterable[CheckResult]) -> list[CheckResult]:
    return [r for r in results if not r.passed]


def assert_conformant(results: Sequence[CheckResult]) -> None:
    """Raise ``AssertionError`` listing every failed check with its provider and mismatch."""
    failed = failures(results)
    if failed:
        raise AssertionError("metastore conformance failed:\n" + "\n".join(f"  {r}" for r in failed))


def format_report(results: Sequence[CheckResult]) -> str:
    """A PASS/FAIL table: one row per provider (metastore), one column per check; failures below."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for result in results:
        rows.setdefault((result.provider, result.metastore), {})[result.check] = result.status
    checks = [*CHECKS, *(c for c in SPARK_CHECKS if any(r.check == c for r in results))]
    header = ["PROVIDER", "METASTORE", *(c.upper() for c in checks)]
    table = [header] + [[p, m, *(cells.get(c, "-") for c in checks)] for (p, m), cells in rows.items()]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    failed = failures(results)
    if failed:
        lines += ["", "failures:"] + [f"  {r}" for r in failed]
    return "\n".join(lines)


def _name(error: BaseException | None) -> str:
    return "no error" if error is None else f"{type(error).__name__}: {error}"


def manifest_conformance(
    loaded: Any, only: str | None = None, checks: Sequence[str] = CHECKS
) -> list[CheckResult]:
    """Every check (``checks``: ``ENGINE_CHECKS[engine]``) for each metastore of a loaded manifest
    (or only ``only``), on its first table.

    A metastore that cannot be built, or has no table its filter keeps, fails every check with
    the reason (never a silent pass).
    """

    results: list[CheckResult] = []
    for name in select_metastores(loaded, only):
        provider = str(loaded.manifest.metastores[name].type or "-")
        try:
            connector = build_metastore(loaded, name)
            provider = connector.type_name
            found = pick_table(connector, table_filter(loaded, name))
        except FloeError as exc:
            results += [
                CheckResult(provider, name, c, FAIL, f"cannot reach the metastore: {exc}") for c in checks
            ]
            continue
        if found is None:
            reason = "no table to check (seed the tables, or widen include/exclude)"
            results += [CheckResult(provider, name, c, FAIL, reason) for c in checks]
            continue
        results += check_connector(connector, *found, checks)
        close = getattr(connector, "close", None)
        if callable(close):
            close()
    return results
