"""The CLI's console: a record Dagster captures into its event log (and prints itself) is not
printed a second time by the CLI's own handler; both filters go away after the command."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from dagster import get_dagster_logger, job, op

from floe_dagster.console import NOT_SUBSETTED, quiet_console


@op
def talk() -> None:
    get_dagster_logger().info("hello from the step")
    get_dagster_logger().info(f"{NOT_SUBSETTED}. Using the default dbt selection arguments.")


@job
def chatty() -> None:
    talk()


@pytest.fixture
def console() -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """A handler on the root logger like the CLI's basicConfig one."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler, stream
    finally:
        root.removeHandler(handler)


def dagster_printed(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    return captured.out + captured.err


def test_a_captured_record_reaches_the_console_once(
    console: tuple[logging.Handler, io.StringIO], capsys: pytest.CaptureFixture[str]
) -> None:
    handler, stream = console
    with quiet_console([handler]):
        assert chatty.execute_in_process().success
    printed = dagster_printed(capsys)
    assert "hello from the step" in printed  # Dagster's console logger
    assert NOT_SUBSETTED not in printed
    assert "hello from the step" not in stream.getvalue()  # not again through the root handler
    assert handler.filters == []
    assert logging.getLogger("dagster.builtin").filters == []


def test_without_the_filter_the_record_came_twice(
    console: tuple[logging.Handler, io.StringIO], capsys: pytest.CaptureFixture[str]
) -> None:
    """What the filter is for: without it the root handler prints the step's record again."""
    handler, stream = console
    assert chatty.execute_in_process().success
    assert "hello from the step" in dagster_printed(capsys)
    assert "hello from the step" in stream.getvalue()


def test_a_dagster_builtin_record_outside_a_run_is_kept(console: tuple[logging.Handler, io.StringIO]) -> None:
    handler, stream = console
    with quiet_console([handler]):
        get_dagster_logger().warning("no run is capturing this")
    assert "no run is capturing this" in stream.getvalue()
