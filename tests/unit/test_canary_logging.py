"""Canary tests look for secrets in third-party log records; dbt adapters silence those
libraries when imported. tests/conftest.py gives every test their records back."""

from __future__ import annotations

import logging

# The imports that silence them (each calls dbt's set_package_logging), done at collection as an
# earlier test would have done them: before this module's tests start.
import dbt.adapters.redshift.impl
import dbt.adapters.snowflake.connections
import dbt.adapters.spark.impl  # noqa: F401
import pytest

from tests.conftest import SILENCED_BY_DBT_ADAPTERS


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
