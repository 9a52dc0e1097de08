"""The closing hint of `floe run` / `floe demo`: a command that loads the code location
(`make dev`, or `dagster dev -f definitions.py`), never a bare `dagster dev`."""

from __future__ import annotations

from pathlib import Path

import pytest

from floe_dagster.cli import dev_command


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "manifest.yaml").touch()
    (tmp_path / "definitions.py").touch()
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "dagster").touch()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_in_a_clone_with_the_makefile_the_hint_is_make_dev(project: Path) -> None:
    (project / "Makefile").touch()
    home = project / ".floe" / "dagster_home"
    assert dev_command(home, "manifests/manifest.yaml") == (
        f"make dev (runs DAGSTER_HOME={home} .venv/bin/dagster dev -f definitions.py -h 127.0.0.1 -p 3000)"
    )


def test_without_the_makefile_the_hint_names_definitions_py(project: Path) -> None:
    assert dev_command("/elsewhere/home", "manifests/manifest.yaml") == (
        "DAGSTER_HOME=/elsewhere/home .venv/bin/dagster dev -f definitions.py"
    )


def test_another_manifest_is_passed_to_definitions_py(project: Path) -> None:
    (project / "Makefile").touch()
    other = project / "manifests" / "other.yaml"
    home = project / ".floe" / "dagster_home"
    assert dev_command(home, other) == (
        f"DAGSTER_HOME={home} FLOE_MANIFEST={other} .venv/bin/dagster dev -f definitions.py"
    )


def test_outside_a_project_the_hint_says_which_file_to_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    hint = dev_command("/h", tmp_path / "m.yaml")
    assert hint.endswith(" dev -f <your definitions.py>") and "/dagster dev" in hint
