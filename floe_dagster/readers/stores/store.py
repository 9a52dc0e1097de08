"""What each store module of ``readers/stores/`` gives the Python readers (see ``__init__.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class ReaderStore:
    name: str  # for messages: "Google Cloud Storage"
    schemes: tuple[str, ...]  # the location schemes it serves
    # why the storage properties cannot open its files, or None
    missing: Callable[[Mapping[str, str]], str | None]
    # (PyArrow filesystem, path inside it) of a location
    filesystem: Callable[[str, Mapping[str, str]], tuple[Any, str]]
    # the path inside it alone (no filesystem made)
    path: Callable[[str], str]
    # the object_store crate's keys (delta-rs, hudi-rs)
    object_store_options: Callable[[Mapping[str, str]], dict[str, str]]
    # the URL the Rust readers open
    uri: Callable[[str], str]


def bucket_path(location: str) -> str:
    """``bucket/key`` of ``scheme://bucket/key``: the path inside a bucket store's filesystem."""
    parts = urlsplit(location)
    return f"{parts.netloc}{parts.path}".rstrip("/")
