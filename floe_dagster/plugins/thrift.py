"""Thrift URIs of a Hive Metastore, as the Hive catalog and the Hive metastore connector take them."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["DEFAULT_THRIFT_PORT", "normalize_thrift_uris"]

DEFAULT_THRIFT_PORT = 9083


def normalize_thrift_uris(value: str) -> str:
    """``thrift://host[:port]`` URIs, comma-separated, with the port made explicit.

    Raises ValueError saying what is wrong; the message never repeats the URI (it may carry a
    user name or password)."""
    uris = [part.strip() for part in value.split(",") if part.strip()]
    if not uris:
        raise ValueError("must name at least one metastore, e.g. thrift://metastore:9083")
    normalized = []
    for uri in uris:
        parts = urlsplit(uri)
        if parts.scheme != "thrift":
            raise ValueError("every URI must use the thrift:// scheme, e.g. thrift://metastore:9083")
        try:
            port = parts.port or DEFAULT_THRIFT_PORT
        except ValueError:
            raise ValueError("a URI has an invalid port") from None
        if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
            raise ValueError("URIs must be thrift://host:port with no user, password, path or query")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        normalized.append(f"thrift://{host}:{port}")
    return ",".join(normalized)
