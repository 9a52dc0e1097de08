"""`make demo` as a newcomer runs it (in a clone of the project): one line per log event, no
third-party noise a user cannot act on, a line for each long step, and a closing hint that names
the code location."""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tests.project_clone import clean_environment, clone_project

pytestmark = [pytest.mark.e2e]

ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Dagster's console logger: `<date> <time> +0000 - dagster - INFO - <job> - <run id> - <step> - <message>`
DAGSTER_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} - dagster - [A-Z]+ - (.*)$")
NOISE = [
    "Telemetry",  # Dagster's banner on a new instance
    "Welcome to Dagster",
    "BetaWarning",
    "SupersessionWarning",
    "PreviewWarning",
    "Delete operation did not match any records",  # PyIceberg, overwriting an empty table
    "A dbt subsetted execution is not being performed",  # dagster-dbt, every step
    "Traceback",
]


@pytest.fixture(scope="module")
def demo_output(parsed_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    project = clone_project(tmp_path_factory.mktemp("demo") / "project", parsed_from=parsed_demo)
    result = subprocess.run(
        ["make", "demo"],
        cwd=project,
        env={**clean_environment(), "PYTHONUNBUFFERED": "1"},  # stdout and stderr in the order written
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=900,
    )
    output = ANSI.sub("", result.stdout)
    assert result.returncode == 0, output[-4000:]
    return project, output.splitlines()


def test_every_dagster_log_event_is_printed_once(demo_output: tuple[Path, list[str]]) -> None:
    _, lines = demo_output
    events = [m.group(1) for line in lines if (m := DAGSTER_LINE.match(line))]
    assert len(events) >= 5, lines  # observation, two compute groups with dbt start and finish
    assert [e for e, n in Counter(events).items() if n > 1] == []
    # the same event without Dagster's prefix (Python logging propagating it a second time)
    bare = set(events)
    assert [line for line in lines if line in bare] == []
    run_ids = {e.split(" - ")[1] for e in events}
    assert [line for line in lines if any(r in line for r in run_ids) and not DAGSTER_LINE.match(line)] == [
        line for line in lines if line.startswith("run ")
    ]  # only the summary line names the run outside Dagster's own lines


def test_no_noise_a_user_cannot_act_on(demo_output: tuple[Path, list[str]]) -> None:
    _, lines = demo_output
    found = {noise: [line for line in lines if noise in line] for noise in NOISE}
    assert {noise: hits for noise, hits in found.items() if hits} == {}
    assert [line for line in lines if re.search(r"\b\w*Warning\b", line)] == []


def test_each_long_step_says_so_and_the_end_names_the_ui_command(demo_output: tuple[Path, list[str]]) -> None:
    project, lines = demo_output
    text = "\n".join(lines)
    steps = [
        "floe: seeding the demo's raw Iceberg tables",
        "floe: loading the definitions",
        "floe: observing the metastore tables (job floe_observe_sources)",
        "floe: materialising every asset (job floe_main): one dbt build per compute group"
        " (duckdb, duckdb_analytics)",
        "floe: dbt build on compute 'duckdb' (duckdb)",
        "floe: dbt build on compute 'duckdb_analytics' (duckdb)",
    ]
    positions = [text.find(step) for step in steps]
    assert all(p >= 0 for p in positions), [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    assert re.search(r"^run \S+: success; 5 asset\(s\) materialised$", text, flags=re.M)
    home = project / ".floe" / "dagster_home"
    assert lines[-1] == (
        f"see them in the Dagster UI: make dev (runs DAGSTER_HOME={home}"
        " .venv/bin/dagster dev -f definitions.py -h 127.0.0.1 -p 3000)"
    )
    assert "telemetry:\n  enabled: false" in (home / "dagster.yaml").read_text()
