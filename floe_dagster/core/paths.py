"""Relative paths in plugin config are relative to the manifest file that holds them."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from pydantic import ValidationInfo


def base_dir(info: ValidationInfo) -> Path:
    context = info.context or {}
    return Path(context.get("base_dir") or Path.cwd())


def resolve_local_path(value: str, info: ValidationInfo) -> str:
    """``../.floe/x`` -> an absolute path; URIs with a scheme other than file pass unchanged."""
    if value == ":memory:":
        return value
    parsed = urlparse(value)
    if parsed.scheme and parsed.scheme != "file" and len(parsed.scheme) > 1:
        return value
    raw = parsed.path if parsed.scheme == "file" else value
    try:
        path = Path(raw).expanduser()
    except RuntimeError as exc:  # ~unknown-user
        raise ValueError(f"cannot expand '{raw}': {exc}") from None
    if not path.is_absolute():
        path = base_dir(info) / path
    return str(path.resolve())
