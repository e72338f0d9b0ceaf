"""JSON-level checks of one raw record and msgspec errors as DLQ reason codes (for decode.py)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import msgspec

from kpi_state.errors import InvalidEvent

# Deeper than any record the contract defines (envelope → data → lines → line is 4);
# a fixed limit makes the outcome independent of the caller's stack depth.
MAX_NESTING = 32
_DETAIL_CHARS = 200
# Untyped decode for the slow paths only; float_hook keeps huge numbers from failing.
_any_json = msgspec.json.Decoder(float_hook=Decimal)
_encode = msgspec.json.Encoder().encode
_json_string = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_not_bracket = re.compile(rb"[^\[\]{}]+")
_innermost_pair = re.compile(rb"\{\}|\[\]")


# --- JSON-level checks ------------------------------------------------------------------


def _check_text(raw: bytes) -> None:
    """UTF-8 and nesting depth, both cheap to rule out before parsing."""
    # msgspec validates UTF-8 only in strings it materialises, not in skipped fields.
    if not raw.isascii():
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEvent("not_json", "not valid UTF-8") from None
    # Depth can't exceed the number of opening brackets, so the exact scan is only
    # needed for records with many of them (e.g. long invoices).
    if raw.count(b"{") + raw.count(b"[") > MAX_NESTING and _nesting_exceeds(raw):
        raise InvalidEvent("not_json", f"nested deeper than {MAX_NESTING} levels or unbalanced")


def _nesting_exceeds(raw: bytes) -> bool:
    brackets = _not_bracket.sub(b"", _json_string.sub(b"", raw))
    # Each pass removes exactly one level (re.sub does not rescan what it produced).
    for _ in range(MAX_NESTING):
        if not brackets:
            return False
        brackets = _innermost_pair.sub(b"", brackets)
    return bool(brackets)


def _check_json(raw: bytes) -> None:
    """Slow path after a schema error: is it JSON at all, an object, free of duplicate keys?"""
    try:
        document = _any_json.decode(raw)
    except msgspec.DecodeError:
        raise InvalidEvent("not_json", "malformed JSON") from None
    if not isinstance(document, dict):
        raise InvalidEvent("not_object", "the record is not a JSON object")
    if _duplicates_in(raw, document):
        raise InvalidEvent("not_json", "duplicate key in a JSON object")


# Duplicate keys: msgspec keeps the last value silently, so they are found by counting.
# Every ':' in a JSON text is either a key separator or a literal ':' inside a string.
# Re-encoding what was decoded writes each surviving key once and every string's ':'
# again (msgspec never escapes ':'); a duplicate key makes the original text have more
# ':' than the re-encoding. Only a \u escape can make a ':' appear in a decoded string
# without one in the text, so texts containing "\u" take the exact but slower path.
#   1. the typed envelope re-encodes exactly the keys sent, as optional fields default to
#      UNSET: equal counts prove there is no duplicate (extra fields make it inconclusive);
#   2. an untyped decode keeps every distinct key, extras included: equality is exact;
#   3. with \u escapes, Python's json with an object_pairs_hook sees every key.


def _has_duplicate_keys(raw: bytes, envelope: msgspec.Struct) -> bool:
    if _has_unicode_escape(raw):
        return _duplicates_by_pairs(raw)
    colons = raw.count(b":")
    if colons == _encode(envelope).count(b":"):
        return False
    return colons != _encode(_any_json.decode(raw)).count(b":")


def _duplicates_in(raw: bytes, document: dict[str, Any]) -> bool:
    if _has_unicode_escape(raw):
        return _duplicates_by_pairs(raw)
    return raw.count(b":") != _encode(document).count(b":")


def _has_unicode_escape(raw: bytes) -> bool:
    # A one-byte search first: most records have no backslash at all.
    return raw.find(b"\\") >= 0 and b"\\u" in raw


class _DuplicateKey(Exception):
    pass


def _unique_pairs(pairs: list[tuple[str, Any]]) -> None:
    if len({key for key, _ in pairs}) != len(pairs):
        raise _DuplicateKey
    # Values are never used: returning None keeps this pass cheap.


def _duplicates_by_pairs(raw: bytes) -> bool:
    try:
        json.loads(raw, object_pairs_hook=_unique_pairs)
    except _DuplicateKey:
        return True
    except ValueError:
        # msgspec accepted the text already; should the two parsers ever disagree, the
        # record is still refused as data rather than escaping as an exception.
        raise InvalidEvent("not_json", "malformed JSON") from None
    return False


# --- msgspec errors → reason codes ------------------------------------------------------

_MISSING = re.compile(r"Object missing required field `([^`]+)`")


def _validation_error(exc: msgspec.ValidationError) -> InvalidEvent:
    """Map msgspec's message to a reason; the detail keeps the path, never the value."""
    message, _, where = str(exc).partition(" - at `$")
    path = where.rstrip("`").lstrip(".")
    missing = _MISSING.fullmatch(message)
    if missing:
        field = f"{path}.{missing.group(1)}" if path else missing.group(1)
        return InvalidEvent("missing_field", f"{field}: required field is missing")
    if path == "type":
        if message.startswith("Invalid value"):
            return InvalidEvent("unknown_type", "type: not a known event type")
        return InvalidEvent("bad_type", "type: expected a string")
    if not path:
        return InvalidEvent("not_object", "the record is not a JSON object")
    if message.endswith(", got `null`") and not path.endswith("]"):
        # null reads as "not sent", as it does for optional fields.
        return InvalidEvent("missing_field", f"{path}: required field is null")
    reason = "bad_type" if ", got `" in message else "bad_value"
    return InvalidEvent(reason, f"{path}: {_safe(message)}"[:_DETAIL_CHARS])


def _safe(message: str) -> str:
    """msgspec's wording without any payload value (which it quotes when it shows one)."""
    if message.startswith(("Invalid value", "Invalid enum value")):
        return "not one of the allowed values"
    if "'" in message or '"' in message:
        return "invalid value"
    return message[:1].lower() + message[1:]
