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


def quiet_console() -> None:
    """Install both filters (idempotent): on the root handlers and on ``dagster.builtin``."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _CapturedByDagster) for f in handler.filters):
            handler.addFilter(_CapturedByDagster())
    captured = logging.getLogger(DAGSTER_CAPTURED)
    if not any(isinstance(f, _NotActionable) for f in captured.filters):
        captured.addFilter(_NotActionable())
