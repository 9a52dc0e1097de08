"""Durations as the manifest writes them: ``<number><unit>`` parts, unit s, m, h, d or w (``36h``,
``1d12h``, ``90m``)."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["MAX_DURATION", "check_window", "parse_duration"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
MAX_DURATION = timedelta(days=36500)  # a century: any longer window is a typo


def parse_duration(text: str) -> timedelta:
    """``36h`` -> 36 hours; raises ValueError (with the accepted form) on anything else."""
    compact = text.strip().replace(" ", "")
    if not compact or _PART.sub("", compact) != "":
        raise ValueError(
            f"'{text}' is not a duration; use <number><unit> parts with unit s, m, h, d or w"
            " (e.g. 36h, 1d12h, 90m)"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(compact))
    if seconds <= 0:
        raise ValueError(f"'{text}' is not a positive duration")
    if seconds > MAX_DURATION.total_seconds():  # also inf: a number too long for a float
        raise ValueError(f"'{text}' is longer than the longest duration, {MAX_DURATION.days:,}d")
    return timedelta(seconds=seconds)


def check_window(fail_after: str | None, warn_after: str | None) -> None:
    """Both parse, and a warning comes before the failure (ValueError otherwise)."""
    fail = parse_duration(fail_after) if fail_after is not None else None
    warn = parse_duration(warn_after) if warn_after is not None else None
    if warn is not None and fail is None:
        raise ValueError("warn_after needs fail_after")
    if fail is not None and warn is not None and warn >= fail:
        raise ValueError(f"warn_after ({warn_after}) must be shorter than fail_after ({fail_after})")
