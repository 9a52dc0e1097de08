"""The ingest cursor: which objects of a table are new since the last commit.

An object is new when its ``LastModified`` is later than the cursor, or equal to it and its key
is not among the keys already taken at that instant (S3 lists ``LastModified`` to the second,
so many objects share one). The cursor (RFC 3339 with nanoseconds) and those keys are Iceberg
table properties, written in the same Iceberg commit as the data they cover.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from floe_dagster.metastores.object_tables import S3Object

__all__ = [
    "CURSOR_KEYS_PROPERTY",
    "CURSOR_PROPERTY",
    "Cursor",
    "format_rfc3339_nanos",
    "new_objects",
    "parse_rfc3339_nanos",
]

CURSOR_PROPERTY = "floe.s3.cursor"


CURSOR_KEYS_PROPERTY = "floe.s3.cursor-keys"


def format_rfc3339_nanos(moment: datetime) -> str:
    """``2026-01-02T03:04:05.123456000Z`` (UTC, nine fractional digits)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}000Z"


def parse_rfc3339_nanos(text: str) -> datetime:
    """The instant of an RFC 3339 timestamp (fractions beyond microseconds are dropped)."""
    head, _, rest = text.strip().replace("z", "Z").partition(".")
    fraction, zone = "", "Z"
    if rest:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction, zone = rest[:digits], rest[digits:] or "Z"
    elif head.endswith("Z"):
        head = head[:-1]
    elif len(head) > 19:
        head, zone = head[:19], head[19:]
    micro = (fraction + "000000")[:6]
    zone = "+00:00" if zone == "Z" else zone
    return datetime.fromisoformat(f"{head}.{micro}{zone}").astimezone(UTC)


@dataclass(frozen=True)
class Cursor:
    """Everything up to ``last_modified``, plus the ``keys`` taken at exactly that instant."""

    last_modified: datetime | None = None
    keys: frozenset[str] = frozenset()

    def is_new(self, obj: S3Object) -> bool:
        if self.last_modified is None or obj.last_modified > self.last_modified:
            return True
        return obj.last_modified == self.last_modified and obj.key not in self.keys

    def past(self, obj: S3Object, taken: bool = True) -> Cursor:
        """The cursor once ``obj`` (no earlier than any object before it) is done.

        ``taken`` False: the object was not consumed (changed since listing); the cursor reaches
        its instant but does not mark its key, so a newer version at the same instant is read.
        """
        if self.last_modified is not None and obj.last_modified < self.last_modified:
            return self
        keys = self.keys if obj.last_modified == self.last_modified else frozenset()
        return Cursor(obj.last_modified, keys | {obj.key} if taken else keys)

    @property
    def text(self) -> str:
        return format_rfc3339_nanos(self.last_modified) if self.last_modified else ""

    def properties(self) -> dict[str, str]:
        return {CURSOR_PROPERTY: self.text, CURSOR_KEYS_PROPERTY: json.dumps(sorted(self.keys))}

    @classmethod
    def from_properties(cls, properties: Mapping[str, str]) -> Cursor:
        text = properties.get(CURSOR_PROPERTY)
        if not text:
            return cls()
        keys = json.loads(properties.get(CURSOR_KEYS_PROPERTY) or "[]")
        return cls(parse_rfc3339_nanos(text), frozenset(keys))


def new_objects(objects: Iterable[S3Object], cursor: Cursor) -> list[S3Object]:
    """The objects after ``cursor``, oldest first (ties by key): the order they are committed in."""
    return sorted((o for o in objects if cursor.is_new(o)), key=lambda o: (o.last_modified, o.key))
