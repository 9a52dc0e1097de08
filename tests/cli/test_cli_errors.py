"""Bad input through the real `floe` entry point: one line per problem, exit 1, no traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import VALID, VENV_BIN, run_floe

FLOE = str(VENV_BIN / "floe")

CASES = {
    "missing file": (None, "nope.yaml:1:1: manifest file not found"),
    "yaml syntax": (VALID.replace("  default: duckdb", "  default: [duckdb"), "manifest.yaml:14:"),
    "unknown top-level key": (VALID + "computez: {}\n", "manifest.yaml:31:1: computez: unknown key"),
    "wrong type": (
        VALID.replace("threads: 2", "threads: many"),
        "manifest.yaml:19:18: computes.targets.duckdb.config.threads: Input should be a valid integer,"
        " unable to parse string as an integer (got 'many'); expected a whole number of at least 1,"
        " e.g. threads: 1",
    ),
    "unknown plugin type": (
        VALID.replace("type: sql", "type: nessie"),
        "manifest.yaml:7:11: catalogs.lakehouse.type: unknown catalog type 'nessie'",
    ),
    "default not approved": (
        VALID.replace("  default: duckdb", "  default: spark"),
        "manifest.yaml:13:12: computes.default: 'spark' is not in computes.approved [duckdb]",
    ),
    "assignment to unknown compute": (
        VALID.replace("      compute: duckdb", "      compute: trino"),
        "manifest.yaml:30:16: transforms.assignments[0].compute: rule 1 ('tag:marts') assigns compute"
        " 'trino', which is not approved at level product; allowed: [duckdb]",
    ),
    "dbt project missing": (
        VALID.replace("dbt_project: dbt", "dbt_project: gone"),
        "manifest.yaml:26:16: transforms.dbt_project: no dbt project at gone",
    ),
}


def snapshot(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}


@pytest.mark.parametrize("case", list(CASES))
def test_validate_reports_bad_input(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: t\nprofile: t\n")
    manifest = tmp_path / ("nope.yaml" if text is None else "manifest.yaml")
    if text is not None:
        manifest.write_text(text)
    before = snapshot(tmp_path)
    for command in ("validate", "plan"):
        result = run_floe([command, manifest.name], cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(expected), lines[0]
        assert "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before, "a failed validation must not write anything"


def test_a_wrong_type_on_a_manifest_field_is_one_line_saying_how_to_fix_it(tmp_path: Path) -> None:
    (tmp_path / "dbt").mkdir()
    (tmp_path / "dbt" / "dbt_project.yml").write_text("name: t\nprofile: t\n")
    (tmp_path / "manifest.yaml").write_text(VALID.replace("approved: [duckdb]", "approved: 5"))
    for command in ("validate", "plan"):
        result = subprocess.run(
            [FLOE, command, "manifest.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert (result.returncode, result.stdout) == (1, ""), result.stderr
        assert result.stderr == (
            "manifest.yaml:12:13: computes.approved: Input should be a valid list (got 5); expected a list"
            " of strings, e.g. approved: [duckdb, spark]\n"
        )
