"""Honest lanes (issue 17, item 13): under CI=true a missing Java fails the Hive Metastore tests,
a partial Polaris environment fails fast, and both AWS lanes read one set of variables."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import lanes
from tests.fixtures.hive_metastore import running_hive_metastore
from tests.helpers import REPO


def test_missing_java_fails_the_hive_metastore_lane_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no javac
    monkeypatch.setenv("CI", "true")
    # BaseException: a skip (the old behaviour) must not pass for a failure
    with pytest.raises(BaseException) as outcome, running_hive_metastore(tmp_path):
        pass
    assert isinstance(outcome.value, pytest.fail.Exception), type(outcome.value)
    assert "CI=true and the Hive Metastore lane cannot run here" in str(outcome.value)
    assert "java and javac" in str(outcome.value) and "openjdk-17" in str(outcome.value)


def test_missing_java_skips_the_hive_metastore_lane_off_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs java and javac"), running_hive_metastore(tmp_path):
        pass


def test_a_partial_polaris_environment_fails_fast_naming_what_is_missing() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOE_TEST_POLARIS_")}
    env["FLOE_TEST_POLARIS_URI"] = "http://127.0.0.1:1"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "-k", "TestRealPolaris",
         "tests/integration/test_rest_catalog.py"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert run.returncode != 0, run.stdout[-2000:]
    assert "real Polaris lane is half configured" in run.stdout
    assert "missing: FLOE_TEST_POLARIS_CLIENT_ID, FLOE_TEST_POLARIS_CLIENT_SECRET" in run.stdout
    with pytest.raises(pytest.skip.Exception):
        lanes.real_polaris_settings({})


def test_both_aws_lanes_read_one_set_of_variables() -> None:
    from tests.integration import test_glue, test_glue_connector

    assert test_glue.AWS_ENV == test_glue_connector.AWS_ENV == lanes.AWS_LANE_ENV
    assert test_glue.real_aws_settings is test_glue_connector.real_aws_settings is lanes.real_aws_settings
    sources = [
        (REPO / "tests" / "integration" / name).read_text()
        for name in ("test_glue.py", "test_glue_connector.py")
    ]
    used = [{n for n in lanes.AWS_LANE_ENV + lanes.AWS_LANE_OPTIONAL if n in source} for source in sources]
    for source in sources:  # no lane reads a FLOE_TEST_AWS_* name outside the shared set
        names = set(re.findall(r"FLOE_TEST_AWS_[A-Z_]+", source))
        assert names <= set(lanes.AWS_LANE_ENV + lanes.AWS_LANE_OPTIONAL), names
    assert used[0] and used[1]
