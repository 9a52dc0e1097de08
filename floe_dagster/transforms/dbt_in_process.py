"""Run dbt inside the step's own process (dbt's ``dbtRunner``) instead of a ``dbt`` subprocess.

Why: every ``dbt`` subprocess pays Python's start-up and dbt's imports before it does any work
(2-3 s here), and a second compute group pays them again, while the Dagster step process has
already imported dbt (dagster-dbt does). With two compute groups that start-up was most of
what a Dagster materialisation cost beyond one plain ``dbt build`` (benchmarks/materialize_overhead.py).

How: dagster-dbt reads a dbt process's JSON log lines from its stdout and turns them into Dagster
events. :class:`InProcessDbt` stands in for that process: dbt runs on a worker thread through
``dbtRunner`` and each event it fires (at the level dbt would print) becomes the very JSON line
the ``dbt`` CLI prints (dbt_common's ``msg_to_json``), so the whole of dagster-dbt (events,
asset checks, errors, partial parsing, target folders) works unchanged. dbt's own console
output is switched off (``--log-level none``: dagster-dbt echoes every event to the step's
stdout, as it does for a subprocess); its debug log still goes to the invocation's ``dbt.log``.

When it is safe (a compute plugin says so in ``runs_dbt_in_process``): dbt keeps process-global
state (flags, adapters, its event manager), so one invocation at a time per process (a lock
enforces it), and only for adapters that leave nothing behind in the process (DuckDB; not
Spark, whose session method starts a JVM in the dbt process). The variables dagster-dbt would
give the subprocess (and the compute's secrets) are set in ``os.environ`` for exactly the
length of the invocation and restored afterwards.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import get_dagster_logger

from floe_dagster.core.compat import (
    cancel_open_dbt_queries,
    dbt_cli_processes_started_by,
    dbt_event_json,
    serialize_ast_parsing,
)

# One dbt invocation at a time in this process: dbt's flags, adapters and event manager are global.
_DBT_LOCK = threading.Lock()
# The levels the dbt CLI prints at each --log-level (dagster-dbt sees only what is printed).
_PRINTED_LEVELS = {
    "debug": {"debug", "info", "warn", "error"},
    "info": {"info", "warn", "error"},
    "warn": {"warn", "error"},
    "error": {"error"},
    "none": set(),
}
_END = object()
logger = get_dagster_logger("floe_dagster.dbt")


class _Lines:
    """The stdout pipe of :class:`InProcessDbt`: the JSON lines dbt's events became, as bytes."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Any] = queue.Queue()
        self.closed = False

    def put(self, line: str) -> None:
        self._queue.put(line.encode("utf-8") + b"\n")

    def end(self) -> None:
        self._queue.put(_END)

    def __iter__(self) -> Iterator[bytes]:
        while (line := self._queue.get()) is not _END:
            yield line

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True


class InProcessDbt:
    """The part of ``subprocess.Popen`` that dagster-dbt uses, backed by ``dbtRunner`` on a thread.

    ``args`` is the command dagster-dbt would run (``[dbt_executable, *dbt_args]``), ``env`` the
    environment it would run it with, ``cwd`` its working directory (dbt reads the project and
    profiles directories from ``env``, so the process's working directory is left alone).
    ``release`` runs after the invocation, still under the lock: what a subprocess's exit would
    have released (the compute plugin's ``release_dbt_in_process``).
    """

    def __init__(
        self,
        args: Sequence[str],
        env: Mapping[str, str],
        cwd: str | os.PathLike[str],
        release: Callable[[], None] | None = None,
    ) -> None:
        self.args = list(args)
        self._release = release
        self.returncode: int | None = None
        self.stdout = _Lines()
        self._env = with_paths_from(Path(cwd), env)
        level = str(env.get("DBT_LOG_LEVEL", "info")).lower()
        self._printed = _PRINTED_LEVELS.get(level, _PRINTED_LEVELS["info"])
        self._done = threading.Event()
        serialize_ast_parsing()  # dbt's model threads call ast.literal_eval: CPython's race
        self._thread = threading.Thread(target=self._run, name="floe-dbt-in-process", daemon=True)
        self._thread.start()

    def dbt_args(self) -> list[str]:
        """dbt's own arguments, with its console output off (events reach dagster-dbt instead).

        The log file keeps the level a subprocess would give it (dbt would otherwise take the
        console's ``none`` for the file too).
        """
        file_level = self._env.get("DBT_LOG_LEVEL_FILE") or self._env.get("DBT_LOG_LEVEL") or "debug"
        return ["--log-level", "none", "--log-level-file", file_level, *self.args[1:]]

    def _run(self) -> None:
        from dbt.cli.main import dbtRunner

        errors_sent = 0

        def forward(message: Any) -> None:
            nonlocal errors_sent
            if message.info.level in self._printed:
                self.stdout.put(dbt_event_json(message))
                errors_sent += message.info.level == "error"

        try:
            with _DBT_LOCK, environment(self._env):
                try:
                    result = dbtRunner(callbacks=[forward]).invoke(self.dbt_args())
                finally:
                    if self._release is not None:
                        self._release()  # e.g. close the database file dbt's adapter keeps open
            if result.success:
                self.returncode = 0
            elif result.exception is None:
                self.returncode = 1  # dbt ran and a model or test failed (the CLI exits 1)
            else:
                self.returncode = 2  # dbt could not run (the CLI exits 2)
                if not errors_sent:  # e.g. a usage error, refused before dbt fires any event
                    self.stdout.put(_error_line(f"dbt could not run: {result.exception}"))
        except BaseException as exc:  # never leave dagster-dbt waiting for a line that never comes
            self.stdout.put(_error_line(f"floe: dbt failed in process: {type(exc).__name__}: {exc}"))
            self.returncode = 2
        finally:
            self.stdout.end()
            self._done.set()

    def poll(self) -> int | None:
        return self.returncode if self._done.is_set() else None

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            import subprocess

            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """SIGINT/SIGTERM: what Ctrl-C does to the dbt CLI, done to the invocation in this process.

        The queries in flight are cancelled through the adapters (as dbt does on Ctrl-C), and a
        KeyboardInterrupt is raised in the invoking thread, so dbt schedules no further node and
        ends the invocation as interrupted.
        """
        if sig not in (signal.SIGINT, signal.SIGTERM) or not self._thread.ident or self.poll() is not None:
            return
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(self._thread.ident), ctypes.py_object(KeyboardInterrupt)
        )
        cancel_open_dbt_queries()

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGTERM)


# Paths dbt takes from the environment; relative ones are relative to the dbt process's directory.
_PATH_VARIABLES = ("DBT_TARGET_PATH", "DBT_LOG_PATH", "DBT_PROFILES_DIR", "DBT_PROJECT_DIR")


def with_paths_from(cwd: Path, env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with dbt's relative paths made absolute against ``cwd``: this process's own
    working directory is not the directory dagster-dbt would have started dbt in."""
    resolved = dict(env)
    for name in _PATH_VARIABLES:
        if resolved.get(name) and not Path(resolved[name]).is_absolute():
            resolved[name] = str(cwd / resolved[name])
    return resolved


@contextlib.contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """Set the variables of ``env`` that differ from ``os.environ`` for the block, then restore them."""
    changed = {name: value for name, value in env.items() if os.environ.get(name) != value}
    saved = {name: os.environ.get(name) for name in changed}
    os.environ.update(changed)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _error_line(message: str) -> str:
    return json.dumps(
        {
            "info": {
                "name": "MainEncounteredError",
                "level": "error",
                "msg": message,
                "ts": datetime.now(UTC).isoformat(),
            },
            "data": {"exc": message},
        }
    )


@contextlib.contextmanager
def in_process_invocations(release: Callable[[], None] | None = None) -> Iterator[None]:
    """Within the block, dagster-dbt's ``DbtCliResource.cli`` starts :class:`InProcessDbt`, not ``dbt``.

    dagster-dbt has no hook for how the dbt process is started; the seam that swaps it is
    ``core/compat.py``'s ``dbt_cli_processes_started_by`` (tests/unit/test_compat.py fails if
    dagster-dbt moves it).
    """

    def start(args: Sequence[str], env: Mapping[str, str], project_dir: Path) -> InProcessDbt:
        return InProcessDbt(args, env, project_dir, release)

    def announce(dbt_command: str) -> None:
        logger.info(f"Running dbt command: `{dbt_command}` (in this process).")

    with dbt_cli_processes_started_by(start, announce):
        yield
