"""The PostgreSQL fixture skips where no server can run, and fails under CI=true instead.

CI sets ``CI=true``: a machine without PostgreSQL 15 must turn the PostgreSQL compute tests red,
not let the run pass with all of them skipped. The machine without PostgreSQL is simulated by
pointing the fixture's binary search at a folder that has none.
"""

from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped

from tests.fixtures import postgres as fixture


@pytest.fixture
def no_postgres_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fixture, "PG_BIN_CANDIDATES", ("/nonexistent/postgresql/bin",))


@pytest.mark.parametrize("value", ["true", "1", "TRUE"])
def test_in_ci_a_missing_postgres_fails_naming_what_the_machine_needs(
    no_postgres_binaries: None, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(Failed) as info:
        next(fixture.start_postgres())
    message = str(info.value)
    assert message.startswith("CI=true and PostgreSQL cannot start here: PostgreSQL binaries")
    assert "not found in ['/nonexistent/postgresql/bin']" in message
    assert "apt-get install postgresql-15" in message and "scripts/bootstrap.sh" in message


@pytest.mark.parametrize("value", [None, "", "false"])
def test_outside_ci_a_missing_postgres_skips_with_the_reason(
    no_postgres_binaries: None, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(Skipped) as info:
        next(fixture.start_postgres())
    assert "PostgreSQL binaries (initdb, pg_ctl, postgres) not found" in str(info.value)
    assert "FLOE_PG_BINDIR" in str(info.value)
