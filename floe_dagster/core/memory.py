"""Memory-related helpers for work that allocates millions of short-lived objects."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["gc_paused"]


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: for work that allocates millions of objects (dbt's
    selection, reading manifest.json, a plan of thousands of models) freed by reference counting,
    where every collection they trigger would also walk the whole parsed manifest.json.
    Collection resumes afterwards (nested blocks leave it off until the outermost ends)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
