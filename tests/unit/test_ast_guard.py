"""The guard around CPython's AST thread race (python/cpython#106905, fixed in 3.11.9 and
3.12.3): dbt run in-process calls ``ast.literal_eval`` on several threads at once."""

from __future__ import annotations

import subprocess
import sys

import pytest

from floe_dagster.core.compat import python_has_ast_thread_race

# Four threads parse at once while finalisers run in the middle of the AST constructor (a tiny
# switch interval and garbage collections with __del__), the way dbt's model threads do beside
# Dagster's. Prints how many calls failed.
STRESS = """
import ast, gc, sys, threading
guarded = sys.argv[1] == "guarded"
if guarded:
    from floe_dagster.core.compat import serialize_ast_parsing
    assert serialize_ast_parsing() is True
    assert serialize_ast_parsing() is True  # once per process: not wrapped twice
    assert ast.parse.__wrapped__.__name__ == "parse" and not hasattr(ast.parse.__wrapped__, "__wrapped__")
sys.setswitchinterval(1e-6)
gc.set_threshold(50, 1, 1)
class Cycle:
    def __init__(self): self.me = self
    def __del__(self): sum(range(20))
source = "[" + ",".join(["{'a': [1, 2, (3, 4)], 'b': {'c': (5, 6)}}"] * 200) + "]"
failures = []
def work():
    for _ in range(int(sys.argv[2])):
        Cycle(); Cycle()
        try:
            assert ast.literal_eval(source)[0]["b"]["c"] == (5, 6)
        except Exception as exc:
            failures.append(repr(exc))
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(len(failures), failures[:1])
"""


def run_stress(mode: str, rounds: int) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", STRESS, mode, str(rounds)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    count, _, first = done.stdout.strip().partition(" ")
    return int(count), first


def test_the_versions_with_the_race_are_the_ones_cpython_fixed_later() -> None:
    assert python_has_ast_thread_race((3, 11, 7))
    assert python_has_ast_thread_race((3, 12, 2))
    assert not python_has_ast_thread_race((3, 11, 9))
    assert not python_has_ast_thread_race((3, 12, 3))
    assert not python_has_ast_thread_race((3, 13, 0))


@pytest.mark.skipif(not python_has_ast_thread_race(), reason="this Python has no AST thread race to guard")
def test_threads_parsing_at_once_never_fail_with_the_guard() -> None:
    failed, first = run_stress("guarded", 120)
    assert failed == 0, first
    # the same stress without the guard fails some calls on this Python (so the stress is real)
    unguarded, first = run_stress("plain", 120)
    assert unguarded > 0 and "recursion depth mismatch" in first
