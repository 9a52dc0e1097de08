"""What an error, a log line or a repr may show of a value a user wrote.

- ``safe_text``: control characters escaped (a BEL or ESC never reaches the terminal raw) and
  long text shortened to its start and end with the number of characters left out.
- ``redact_uri``: the user info of every URI in a text (``scheme://user:password@host``)
  replaced by ``**********``.
- ``is_secret_key``: whether a key of a free-form map (``properties``, a raw ``config``) names a
  credential (``s3.secret-access-key``, ``token``, ``password`` ...).
- ``shown_value``: how an error may quote a rejected value: never the value of a secret key,
  a URI without its user info, anything else shortened and escaped.
- ``masked``: a copy of a raw config with secret keys' values and URI user info masked, for reprs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, SecretStr, WithJsonSchema

__all__ = [
    "MASK",
    "MAX_SHOWN_CHARS",
    "SecretProperties",
    "describe",
    "escape_control",
    "has_userinfo",
    "is_secret_key",
    "masked",
    "redact_uri",
    "revealed",
    "safe_text",
    "secret_properties",
    "shorten",
    "shown_value",
]

MASK = "**********"
MAX_SHOWN_CHARS = 80

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# a scheme starts where no scheme character precedes it, and is short: linear on a 1 MB value
_URI_USERINFO = re.compile(
    r"(?P<scheme>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,31}://)(?P<userinfo>[^/?#@\s]*)@"
)
_SECRET_KEY = re.compile(
    r"(passw(or)?d|passphrase|secret|token|credential|private[-_.]?key|api[-_.]?key|access[-_.]?key"
    r"|session[-_.]?key|authorization|signature|key[-_.]?file|key[-_.]?json)",
    re.IGNORECASE,
)


def escape_control(text: str) -> str:
    """Control and bidi characters as ``\\x1b``-style escapes; newlines and tabs too."""
    return (
        _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
        .replace("\n", "\\n")
        .replace("\t", "\\t")
    )


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` if short, else its start and end around ``...(N characters)...``."""
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 4) :]
    return f"{head}...({len(text) - len(head) - len(tail):,} more characters)...{tail}"


def safe_text(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """Shortened first (so a 1 MB value costs nothing to escape), then escaped."""
    return escape_control(shorten(text, limit))


def redact_uri(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` as ``scheme://**********@``."""
    return _URI_USERINFO.sub(
        lambda m: f"{m.group('scheme')}{MASK}@" if m.group("userinfo") else m.group(), text
    )


def has_userinfo(text: str) -> bool:
    return any(m.group("userinfo") for m in _URI_USERINFO.finditer(text))


def is_secret_key(key: object) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY.search(key))


def describe(value: object) -> str:
    """What a value is, without any of it: ``a string of 12 characters``."""
    if isinstance(value, str):
        return f"a string of {len(value):,} characters"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def shown_value(value: object, key: object = None, hidden: bool = False) -> str:
    """How an error quotes a rejected ``value`` (of field ``key``): ``hidden`` (a model that
    hides its inputs) or a secret key -> a description; else the value with URI user info
    masked, shortened and escaped."""
    if hidden or is_secret_key(key):
        if isinstance(value, str) and "://" in value:
            return repr(safe_text(redact_uri(value)))  # a URI stays useful without its user info
        return describe(value)
    if isinstance(value, str):
        return repr(safe_text(redact_uri(value)))
    return safe_text(repr(value))


def masked(value: Any, key: object = None) -> Any:
    """A copy of a raw config (dicts, lists, scalars) safe to show: secret keys' values and
    URI user info replaced by ``**********``."""
    if isinstance(value, Mapping):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [masked(v, key) for v in value]
    if is_secret_key(key) and value is not None and not isinstance(value, Mapping):
        return MASK
    if isinstance(value, str):
        return redact_uri(value)
    return value


def secret_properties(value: dict[str, str]) -> dict[str, str | SecretStr]:
    """A free-form property map with every secret-bearing key's value as a ``SecretStr``."""
    return {k: SecretStr(v) if is_secret_key(k) and isinstance(v, str) else v for k, v in value.items()}


def revealed(properties: Mapping[str, str | SecretStr]) -> dict[str, str]:
    """The map in clear, for the client library that needs it (at the last moment)."""
    return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in properties.items()}


# ``properties:`` of a plugin config: written as a map of strings (the JSON Schema says so),
# held with its secret-bearing keys (``s3.secret-access-key``, ``adls.sas-token``) as SecretStr,
# so a repr, a log line or Dagster's config view shows them as **********.
SecretProperties = Annotated[
    dict[str, str],
    AfterValidator(secret_properties),
    WithJsonSchema({"type": "object", "additionalProperties": {"type": "string"}}),
]
