"""The `floe` command's console: one line per log event, no lines a user cannot act on.

- Dagster prints every event of an in-process run through its own console logger, and the
  Python logger ``dagster.builtin`` (which Dagster captures into that same event log while a run
  is going) also propagates to the root logger: without a filter every such line came twice.
  The root handlers drop a ``dagster.builtin`` record while Dagster is capturing it.
- dagster-dbt announces at INFO on every step that it uses the default selection ("A dbt
  subsetted execution is not being performed ..."): nothing to act on; floe logs which compute
  group runs instead.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

DAGSTER_CAPTURED = "dagster.builtin"
NOT_SUBSETTED = "A dbt subsetted execution is not being performed"


class _CapturedByDagster(logging.Filter):
    """Drop a record that Dagster's log handler on ``dagster.builtin`` also turns into an event."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != DAGSTER_CAPTURED and not record.name.startswith(DAGSTER_CAPTURED + "."):
            return True
        captured = logging.getLogger(DAGSTER_CAPTURED).handlers
        return not any(type(h).__name__ == "DagsterLogHandler" for h in captured)


class _NotActionable(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(NOT_SUBSETTED)


@contextmanager
def quiet_console(handlers: Iterable[logging.Handler]) -> Iterator[None]:
    """Inside the block: ``handlers`` (the CLI's own console handlers) drop what Dagster prints
    itself, and ``dagster.builtin`` drops the not-subsetted notice. Both filters are removed on
    exit, so a process that calls the CLI in-process keeps its logging as it was."""
    handlers = list(handlers)
    captured, not_actionable = _CapturedByDagster(), _NotActionable()
    for handler in handlers:
        handler.addFilter(captured)
    logging.getLogger(DAGSTER_CAPTURED).addFilter(not_actionable)
    try:
        yield
    finally:
        logging.getLogger(DAGSTER_CAPTURED).removeFilter(not_actionable)
        for handler in handlers:
            handler.removeFilter(captured)
