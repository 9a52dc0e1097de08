"""The Hive Metastore fixture skips where Java is missing, and fails under CI=true instead.

Like the PostgreSQL fixture: a CI machine without a JDK must turn the metastore tests red, not let
the run pass with all of them skipped. No Java is simulated with a PATH that has no java/javac.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.outcomes import Failed, Skipped

from tests.fixtures.hive_metastore import running_hive_metastore


@pytest.fixture
def no_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


def test_in_ci_a_missing_jdk_fails_naming_what_the_machine_needs(
    no_java: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed) as info, running_hive_metastore(tmp_path / "hms"):
        pass
    message = str(info.value)
    assert message.startswith("CI=true and the Hive Metastore lane cannot run here: ")
    assert "java and javac" in message
    assert "openjdk-17-jdk-headless" in message and "scripts/bootstrap.sh" in message


def test_outside_ci_a_missing_jdk_skips_with_the_reason(
    no_java: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(Skipped) as info, running_hive_metastore(tmp_path / "hms"):
        pass
    assert "java and javac on PATH" in str(info.value)
