"""Conformance per table format: one row per (provider, metastore, format) a metastore holds.

=================  =============================================================================
check              what must hold
=================  =============================================================================
read               the view floe creates for a dbt source over the table (``readers/formats.py``)
                   answers in DuckDB with every column the scan describes
prune              partitioned: ``describe_scan`` with ``<first key> = <first partition's value>``
                   keeps only matching partitions (``pruned``) and its view returns exactly the
                   rows the full view returns under that filter; Delta/Hudi/Iceberg: the filter
                   is handled by the format's scan (no FILTER operator above it in DuckDB's
                   plan); unpartitioned files: ``-``
version_unchanged  two reads of the table without a change give the same data version
version_on_append  after one append (by the caller's writer) the data version differs; without a
                   writer (``floe conformance`` never writes to a metastore's tables): ``-``
=================  =============================================================================

The tables are the first of each format the metastore lists (in name order, through its table
filter). ``-`` is not a pass: the report says why it was not run.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from floe_dagster.core.errors import FloeError
from floe_dagster.metastores.conformance import FAIL, PASS, CheckResult, ConformanceMismatch, expect
from floe_dagster.metastores.state import select_metastores
from floe_dagster.plan.builders import build_metastore, table_filter
from floe_dagster.plugins.metastore import Capability, MetastoreConnector
from floe_dagster.plugins.table_model import PartitionPredicate, ScanDescription, TableFilter
from floe_dagster.readers.duckdb_scan import quote_ident, quote_literal, scan_connection
from floe_dagster.readers.formats import create_view, storage_properties

FORMAT_CHECKS = ("read", "prune", "version_unchanged", "version_on_append")
NOT_RUN = "-"
# appends rows to ``namespace.table`` of ``format`` (a test's writer); None: version_on_append is not run
Appender = Callable[[MetastoreConnector, str, str, str], None]


class NotApplicable(FloeError):
    """The check does not apply to this table (the reason is the message); never raised out of
    ``run_format_check``, which reports it as ``-``."""


def tables_by_format(
    connector: MetastoreConnector, table_filter: TableFilter | None = None
) -> dict[str, tuple[str, str]]:
    """format -> the first table (namespace, name) of that format the connector lists."""
    found: dict[str, tuple[str, str]] = {}
    for table in connector.scan(table_filter or TableFilter()):
        found.setdefault(table.storage.format, (table.namespace, table.name))
    return dict(sorted(found.items()))


def _view(connector: MetastoreConnector, scan: ScanDescription, name: str, con: Any = None) -> Any:
    con = con or scan_connection([scan], connector.credentials)
    create_view(con, name, scan, None, None, storage_properties(connector.credentials), {})
    return con


def check_read(connector: MetastoreConnector, namespace: str, table: str, append: Appender | None) -> None:
    scan = connector.describe_scan(namespace, table)
    con = _view(connector, scan, "floe_conformance")
    try:
        result = con.execute("SELECT * FROM floe_conformance LIMIT 1")
        got = {d[0].lower() for d in result.description}
        wanted = {c.name.lower() for c in scan.columns if scan.format != "delta" or c.type != "array<string>"}
        expect(wanted <= got, "columns read", sorted(wanted), sorted(got))
    finally:
        con.close()


def check_prune(connector: MetastoreConnector, namespace: str, table: str, append: Appender | None) -> None:
    described = connector.get_table(namespace, table)
    fmt = described.storage.format
    if fmt in ("delta", "hudi", "iceberg"):
        scan = connector.describe_scan(namespace, table)
        con = _view(connector, scan, "floe_conformance")
        try:
            columns = [d[0] for d in con.execute("SELECT * FROM floe_conformance LIMIT 0").description]
            column = next((c for c in columns if not c.startswith("_hoodie")), None)
            if column is None:
                raise NotApplicable("no column to filter on")
            row = con.execute(
                f"SELECT CAST({quote_ident(column)} AS VARCHAR) FROM floe_conformance"
                f" WHERE {quote_ident(column)} IS NOT NULL LIMIT 1"
            ).fetchone()
            if row is None:
                raise NotApplicable(f"no value of {column} to filter on")
            where = f"{quote_ident(column)} = {quote_literal(str(row[0]))}"  # typed like the column
            plan = "".join(
                str(line[1])
                for line in con.execute(f"EXPLAIN SELECT * FROM floe_conformance WHERE {where}").fetchall()
            )
            scanned = "DELTA_SCAN" if fmt == "delta" else "READ_PARQUET" if fmt == "hudi" else "ICEBERG_SCAN"
            expect(scanned in plan.upper().replace(" ", "_"), "scan operator", scanned, plan[:200])
            # pushed into the scan (or settled there by its statistics): no FILTER operator above it
            operators = {line.strip("│ ").strip() for line in plan.splitlines()}
            expect("FILTER" not in operators, "filter handled by the scan", "no FILTER operator", plan[:300])
        finally:
            con.close()
        return
    keys = described.partition_spec.names
    if not keys:
        raise NotApplicable("not partitioned")
    if Capability.LIST_PARTITIONS not in connector.capabilities:
        raise NotApplicable("the connector lists no partitions")
    partitions = connector.list_partitions(namespace, table)
    if not partitions:
        raise NotApplicable("no partition")
    key, value = keys[0], partitions[0].values[0]
    pruned = connector.describe_scan(namespace, table, [PartitionPredicate(key, "=", value)])
    expect(pruned.pruned, "describe_scan with a partition predicate", "pruned", pruned.pruned)
    kept = pruned.partitions or ()
    expect(
        all(p.values[0] == value for p in kept), "kept partitions", f"{key}={value}", [p.values for p in kept]
    )
    expect(
        len(kept) < len(partitions) or len(partitions) == 1,
        "partitions kept",
        f"< {len(partitions)}",
        len(kept),
    )
    full = connector.describe_scan(namespace, table)
    con = _view(connector, full, "floe_conformance_full")
    try:
        _view(connector, pruned, "floe_conformance_pruned", con)
        where = f"CAST({quote_ident(key)} AS VARCHAR) = {quote_literal(value)}"
        everything = con.execute(f"SELECT count(*) FROM floe_conformance_full WHERE {where}").fetchone()
        only = con.execute("SELECT count(*) FROM floe_conformance_pruned").fetchone()
        expect(only == everything, "rows of the pruned read", everything, only)
    finally:
        con.close()


def check_version_unchanged(
    connector: MetastoreConnector, namespace: str, table: str, append: Appender | None
) -> None:
    first = connector.get_table(namespace, table).data_version
    second = connector.get_table(namespace, table).data_version
    expect(first == second, "data version of two reads without a change", first, second)


def check_version_on_append(
    connector: MetastoreConnector, namespace: str, table: str, append: Appender | None
) -> None:
    if append is None:
        raise NotApplicable("needs a writer: floe conformance never writes to a metastore's tables")
    described = connector.get_table(namespace, table)
    append(connector, namespace, table, described.storage.format)
    refresh = getattr(connector, "discover", None)
    if callable(refresh):  # a connector that caches its listing (s3) lists again
        refresh(refresh=True)
    after = connector.get_table(namespace, table).data_version
    expect(after != described.data_version, "data version after an append", "a new version", after)


FORMAT_CHECK_FUNCTIONS: dict[str, Callable[[MetastoreConnector, str, str, Appender | None], None]] = {
    "read": check_read,
    "prune": check_prune,
    "version_unchanged": check_version_unchanged,
    "version_on_append": check_version_on_append,
}


def run_format_check(
    connector: MetastoreConnector, fmt: str, check: str, namespace: str, table: str, append: Appender | None
) -> CheckResult:
    provider, name = f"{connector.type_name}/{fmt}", connector.name
    try:
        FORMAT_CHECK_FUNCTIONS[check](connector, namespace, table, append)
    except NotApplicable as exc:
        return CheckResult(provider, name, check, NOT_RUN, f"{namespace}.{table}: {exc}")
    except ConformanceMismatch as exc:
        return CheckResult(provider, name, check, FAIL, f"{namespace}.{table}: {exc}")
    except FloeError as exc:
        return CheckResult(provider, name, check, FAIL, f"{namespace}.{table}: {type(exc).__name__}: {exc}")
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        detail = f"{type(exc).__name__} escaped ({connector.redact(str(exc))[:200]})"
        detail += f" at {where.filename}:{where.lineno}"
        return CheckResult(provider, name, check, FAIL, f"{namespace}.{table}: {detail}")
    return CheckResult(provider, name, check, PASS)


def check_formats(
    connector: MetastoreConnector,
    tables: dict[str, tuple[str, str]],
    append: Appender | None = None,
    checks: Iterable[str] = FORMAT_CHECKS,
) -> list[CheckResult]:
    """Every format check on each (format -> table) of ``tables``."""
    wanted = list(checks)
    return [
        run_format_check(connector, fmt, check, namespace, table, append)
        for fmt, (namespace, table) in sorted(tables.items())
        for check in wanted
    ]


def format_format_report(results: Sequence[CheckResult]) -> str:
    """One row per provider/format (metastore), one column per format check; failures and the
    checks not run below."""
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for result in results:
        rows.setdefault((result.provider, result.metastore), {})[result.check] = result.status
    header = ["PROVIDER/FORMAT", "METASTORE", *(c.upper() for c in FORMAT_CHECKS)]
    table = [header] + [
        [p, m, *(cells.get(c, NOT_RUN) for c in FORMAT_CHECKS)] for (p, m), cells in rows.items()
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    failed = [r for r in results if r.status == FAIL]
    skipped = [r for r in results if r.status == NOT_RUN]
    if failed:
        lines += ["", "format failures:"] + [f"  {r}" for r in failed]
    if skipped:
        lines += ["", "not run:"] + [f"  {r}" for r in skipped]
    return "\n".join(lines)


def manifest_format_conformance(loaded: Any, only: str | None = None) -> list[CheckResult]:
    """The format checks for each metastore of a manifest (or ``only``): the first table of each
    format it holds. A metastore that cannot be reached fails one row with the reason."""
    results: list[CheckResult] = []
    for name in select_metastores(loaded, only):
        try:
            connector = build_metastore(loaded, name)
            tables = tables_by_format(connector, table_filter(loaded, name))
        except FloeError as exc:
            provider = str(loaded.manifest.metastores[name].type or "-")
            results.append(CheckResult(provider, name, "read", FAIL, f"cannot list the tables: {exc}"))
            continue
        results += check_formats(connector, tables)
        close = getattr(connector, "close", None)
        if callable(close):
            close()
    return results
