"""Frontend log ingestion: validate and sanitise one entry or a batch, all or nothing.

Strict on types (a number where a string belongs is an error, not coerced),
lenient on length (long strings are clipped: a browser error report is still
worth keeping when its stack trace is long). Control characters are stripped
everywhere (NUL cannot be stored by PostgreSQL; the others only garble the
explorer); newlines and tabs survive in messages and stacks.
"""

from __future__ import annotations

import json
import re

from monitoring.choices import LogLevel, LogSource

MAX_ENTRIES = 100
MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGE = 10_000
MAX_STACK = 16_000
MAX_EXTRA_BYTES = 16_000
# Entry list → entry → extra → 17 levels of the caller's own structure.
MAX_DEPTH = 20
DEFAULT_COMPONENT = "frontend"

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_CONTROL_ALL = re.compile(r"[\x00-\x1f\x7f]")
_LEVEL_ALIASES = {"WARN": "WARNING", "LOG": "INFO", "TRACE": "DEBUG", "FATAL": "CRITICAL"}

# field -> (max length, keeps newlines)
_STRINGS = {
    "message": (MAX_MESSAGE, True),
    "component": (50, False),
    "camera_id": (100, False),
    "request_id": (36, False),
    "url": (2000, False),
    "stack": (MAX_STACK, True),
}
_INTEGERS = {"event_id": (0, 2**31 - 1), "detection_id": (0, 2**31 - 1), "duration_ms": (0, 2**31 - 1)}
_POSITION = {"line": (0, 2**31 - 1), "column": (0, 2**31 - 1)}
ALLOWED = {"level", "extra", *_STRINGS, *_INTEGERS, *_POSITION}


class IngestError(ValueError):
    """Carries the field errors; `as_json()` is the 400 body."""

    def __init__(self, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or []

    def as_json(self) -> dict:
        return {"error": self.message, "errors": self.errors}


def clean_text(value: str, keep_newlines: bool) -> str:
    return (_CONTROL if keep_newlines else _CONTROL_ALL).sub("", value)


def _clean_json(value, depth: int = 0):
    """Strip control characters from every string of a JSON value (keys included)."""
    if isinstance(value, str):
        return clean_text(value, keep_newlines=True)
    if isinstance(value, list):
        return [_clean_json(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k), keep_newlines=False)[:200]: _clean_json(v, depth + 1) for k, v in value.items()}
    return value


def _depth(value) -> int:
    """Nesting depth of a JSON value, without recursion (a hostile body may nest 100k levels)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                return level
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_body(body: bytes) -> list:
    """The request body as a list of entries; raises IngestError for anything but an object or a list."""
    if len(body) > MAX_BODY_BYTES:
        raise IngestError(f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB.")
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IngestError(f"The body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise IngestError(f"The JSON is nested more than {MAX_DEPTH} levels deep.") from None
    if _depth(payload) > MAX_DEPTH:
        raise IngestError(f"The JSON is nested more than {MAX_DEPTH} levels deep.")
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        if not payload:
            raise IngestError("The batch is empty.")
        if len(payload) > MAX_ENTRIES:
            raise IngestError(f"A batch holds at most {MAX_ENTRIES} entries (got {len(payload)}).")
        return payload
    raise IngestError("The body must be one log entry (a JSON object) or a list of them.")


def validate_entry(entry) -> tuple[dict, dict]:
    """(Log field values, {field: message}) for one entry."""
    errors: dict[str, str] = {}
    if not isinstance(entry, dict):
        return {}, {"entry": "must be a JSON object"}
    unknown = sorted(set(entry) - ALLOWED)
    if unknown:
        errors["entry"] = f"unknown field(s): {', '.join(str(k)[:40] for k in unknown[:10])}"

    values: dict = {"source": LogSource.FRONTEND}
    level = entry.get("level", "ERROR")
    if not isinstance(level, str):
        errors["level"] = "must be a string"
    else:
        normalised = _LEVEL_ALIASES.get(level.strip().upper(), level.strip().upper())
        if normalised not in LogLevel.values:
            errors["level"] = f"must be one of {', '.join(LogLevel.values)}"
        else:
            values["level"] = normalised

    strings = {}
    for field, (limit, keep_newlines) in _STRINGS.items():
        raw = entry.get(field)
        if raw is None:
            continue
        if not isinstance(raw, str):
            errors[field] = "must be a string"
            continue
        strings[field] = clean_text(raw, keep_newlines)[:limit]
    message = strings.get("message", "").strip()
    if "message" not in errors and not message:
        errors["message"] = "is required"
    values["message"] = message
    values["component"] = strings.get("component", "").strip() or DEFAULT_COMPONENT
    for field in ("camera_id", "request_id"):
        if strings.get(field):
            values[field] = strings[field]

    numbers = {}
    for field, (low, high) in {**_INTEGERS, **_POSITION}.items():
        raw = entry.get(field)
        if raw is None:
            continue
        # bool is an int subclass in Python; true/false is not an id.
        if not isinstance(raw, int) or isinstance(raw, bool):
            errors[field] = "must be an integer"
        elif not low <= raw <= high:
            errors[field] = f"must be between {low} and {high}"
        else:
            numbers[field] = raw
    for field in _INTEGERS:
        if field in numbers:
            values[field] = numbers[field]

    extra = entry.get("extra")
    if extra is not None and not isinstance(extra, dict):
        errors["extra"] = "must be a JSON object"
        extra = None
    extra = _clean_json(extra) if extra else {}
    for field in ("url", "stack"):
        if strings.get(field):
            extra[field] = strings[field]
    for field in _POSITION:
        if field in numbers:
            extra[field] = numbers[field]
    if extra and len(json.dumps(extra)) > MAX_EXTRA_BYTES:
        errors["extra"] = f"is larger than {MAX_EXTRA_BYTES} bytes"
    values["extra"] = extra or None
    return values, errors


def validate(entries: list, *, user_agent: str | None = None) -> list[dict]:
    """Validated Log field values for every entry; raises IngestError listing every bad field."""
    rows, problems = [], []
    for index, entry in enumerate(entries):
        values, errors = validate_entry(entry)
        for field, message in errors.items():
            problems.append({"index": index, "field": field, "message": message})
        if user_agent:
            values["user_agent"] = clean_text(user_agent, keep_newlines=False)[:1000]
        rows.append(values)
    if problems:
        raise IngestError("Some log entries are invalid; nothing was stored.", problems)
    return rows


def store(rows: list[dict]) -> int:
    from monitoring.models import Log

    Log.objects.bulk_create([Log(**values) for values in rows])
    return len(rows)
