"""Canary tests look for secrets in third-party log records; dbt adapters silence those
libraries when imported. tests/conftest.py gives every test their records back."""

from __future__ import annotations

import logging

# Two libraries that change urllib3's logging when imported (see tests/conftest.py)
import clickhouse_connect.driver.httputil  # noqa: F401
import databricks.sql  # noqa: F401

# The imports that silence them (each calls dbt's set_package_logging), done at collection as an
# earlier test would have done them: before this module's tests start.
import dbt.adapters.redshift.impl
import dbt.adapters.snowflake.connections
import dbt.adapters.spark.impl  # noqa: F401
import pytest

from tests.conftest import SILENCED_BY_DBT_ADAPTERS, SILENCED_BY_OTHER_LIBRARIES


def test_records_of_libraries_dbt_adapters_silence_reach_caplog(caplog: pytest.LogCaptureFixture) -> None:
    # the imports that silence them (each calls dbt's set_package_logging at import)
    import dbt.adapters.redshift.impl
    import dbt.adapters.snowflake.connections
    import dbt.adapters.spark.impl  # noqa: F401

    assert logging.getLogger("botocore").handlers, "dbt-snowflake no longer adds its handler: recheck"
    caplog.set_level(logging.DEBUG)
    for name in SILENCED_BY_DBT_ADAPTERS:
        logging.getLogger(name).debug("visible to the canaries: %s", name)
    seen = {r.name for r in caplog.records if r.getMessage().startswith("visible to the canaries")}
    assert seen == set(SILENCED_BY_DBT_ADAPTERS)


def test_urllib3_request_lines_reach_caplog_unmasked_by_other_libraries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """clickhouse-connect sets urllib3 to WARNING and databricks-sql masks every query parameter of
    urllib3's request lines, at import: a canary over those lines would see nothing, or another
    library's mask instead of floe's."""
    assert logging.getLogger("urllib3").level == logging.NOTSET  # reset for this test
    caplog.set_level(logging.DEBUG)
    for name in SILENCED_BY_OTHER_LIBRARIES:
        logging.getLogger(name).debug('"GET /c/b?comp=list&sig=canary HTTP/1.1" 200 (%s)', name)
    lines = [r.getMessage() for r in caplog.records if "comp=list" in r.getMessage()]
    assert len(lines) == len(SILENCED_BY_OTHER_LIBRARIES) and all("sig=canary" in line for line in lines)
