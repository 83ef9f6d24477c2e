"""Validators of task and connection arguments: one function per kind of value.

Each returns the value converted to what the caller uses (templates render strings: ``"5"``
becomes ``5.0``) or raises one :class:`SpotfireConfigurationError` that names the argument, the
value, the cause and the fix -- before any request is sent, so a bad value never leaves an
upload job open, an Automation Services job running or half a license change behind.

Limits the spec does not give are generous bounds chosen here (documented in
``docs/troubleshooting.md``): they only catch values that are certainly mistakes.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from xml.parsers import expat

from airflow_provider_spotfire.exceptions import SpotfireConfigurationError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
MIN_CHUNK_SIZE = 1
MAX_CHUNK_SIZE = 1 * GIB  # one chunk is held in memory per parallel sender
MAX_PARALLELISM = 16
MAX_DESCRIPTION_CHARS = 10_000
MAX_KEYWORDS = 1_000
MAX_KEYWORD_CHARS = 256
MAX_SECONDS = 366 * 24 * 3600.0  # a poll interval or timeout longer than a year is a typo
TRUE_WORDS = frozenset({"true", "1", "yes", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "off"})
_GUID_EXAMPLE = "491647ba-99f9-43d0-a6ad-776a474ade28"
_DTD = re.compile(rb"<!\s*(DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)


def _fail(message: str) -> SpotfireConfigurationError:
    return SpotfireConfigurationError(message)


# ------------------------------------------------------------------------------------------ numbers
def _to_float(name: str, value: Any, unit: str) -> float:
    """A real number from an int, float or numeric string (not a bool)."""
    if isinstance(value, bool) or value is None:
        raise _fail(f"{name} must be a number of {unit}, got {value!r}.")
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            raise _fail(
                f"{name} must be a number of {unit}, got the string {value!r}; pass e.g. 5 or '5'."
            ) from None
    if isinstance(value, int | float):
        return float(value)
    raise _fail(f"{name} must be a number of {unit}, got {type(value).__name__} {value!r}.")


def number(
    name: str,
    value: Any,
    *,
    unit: str = "seconds",
    allow_zero: bool = False,
    maximum: float | None = None,
) -> float:
    """A finite number > 0 (or >= 0 with ``allow_zero``), at most ``maximum``."""
    result = _to_float(name, value, unit)
    if not math.isfinite(result):
        example = "; pass e.g. 5" if unit == "seconds" else ""
        raise _fail(f"{name} must be a finite number of {unit}, got {value!r}{example}.")
    if result < 0 or (result == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise _fail(f"{name} must be {bound} {unit}, got {value!r}.")
    if maximum is not None and result > maximum:
        raise _fail(f"{name} must be at most {maximum:g} {unit}, got {value!r}.")
    return result


def seconds(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A duration in seconds: finite, positive (or zero with ``allow_zero``), at most a year."""
    return number(name, value, unit="seconds", allow_zero=allow_zero, maximum=MAX_SECONDS)


def epoch_deadline(name: str, value: Any) -> float | None:
    """``None`` (no deadline) or finite epoch seconds."""
    if value is None:
        return None
    return number(name, value, unit="epoch seconds")


def sensor_timing(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``poke_interval`` and ``timeout`` of a sensor's kwargs as finite seconds (timedeltas pass through)."""
    from datetime import timedelta

    for name in ("poke_interval", "timeout"):
        if name in kwargs and not isinstance(kwargs[name], timedelta):
            kwargs[name] = number(name, kwargs[name], allow_zero=True)
    return kwargs


def integer(name: str, value: Any, *, minimum: int, maximum: int, unit: str = "") -> int:
    """A whole number in ``[minimum, maximum]`` from an int or a numeric string (``"8"``)."""
    what = f" {unit}" if unit else ""
    allowed = f"a whole number{what} from {minimum:,} to {maximum:,}"
    if isinstance(value, bool) or value is None:
        raise _fail(f"{name} must be {allowed}, got {value!r}.")
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        result = int(value)
    elif isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    else:
        raise _fail(f"{name} must be {allowed}, got {value!r}.")
    if not minimum <= result <= maximum:
        raise _fail(f"{name} must be {allowed}, got {result:,}.")
    return result


def chunk_size(value: Any) -> int:
    """Bytes per upload chunk: 1 byte to 1 GiB (each parallel sender holds one chunk in memory)."""
    return integer("chunk_size", value, minimum=MIN_CHUNK_SIZE, maximum=MAX_CHUNK_SIZE, unit="of bytes")


def parallelism(value: Any) -> int:
    """Chunks sent at once: 1 to 16 (Spotfire limits parallel chunks per job)."""
    return integer("parallelism", value, minimum=1, maximum=MAX_PARALLELISM, unit="of chunks")


def backoff_fields(settings: Any, attempts: str, *durations: str) -> None:
    """Check (and convert in place) the attempt count and the durations of a frozen retry dataclass."""
    owner = type(settings).__name__
    converted: dict[str, float] = {
        attempts: integer(f"{owner}.{attempts}", getattr(settings, attempts), minimum=1, maximum=1000)
    }
    for name in durations:
        converted[name] = seconds(f"{owner}.{name}", getattr(settings, name), allow_zero=True)
    for name, value in converted.items():
        object.__setattr__(settings, name, value)


# ------------------------------------------------------------------------------------------ strings
def description(value: Any) -> str | None:
    """An item description: ``None`` or a string of at most 10,000 characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(f"description must be a string, got {type(value).__name__}.")
    if len(value) > MAX_DESCRIPTION_CHARS:
        raise _fail(
            f"description has {len(value):,} characters; at most {MAX_DESCRIPTION_CHARS:,} are "
            "accepted. Shorten it (put long documentation in the item itself)."
        )
    return value


def keywords(value: Any) -> list[str] | None:
    """``None``, a list of strings or one comma-separated string -> at most 1,000 keywords of 256 chars."""
    if value is None:
        return None
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        items = list(value)
    else:
        raise _fail(
            f"keywords must be a list of strings or a comma-separated string, got {type(value).__name__}."
        )
    out: list[str] = []
    for kw in items:
        if not isinstance(kw, str):
            raise _fail(f"keywords must be strings; {kw!r} is a {type(kw).__name__}.")
        if len(kw.strip()) > MAX_KEYWORD_CHARS:
            raise _fail(
                f"keyword {kw.strip()[:40]!r}... has {len(kw.strip()):,} characters; at most "
                f"{MAX_KEYWORD_CHARS} are accepted per keyword."
            )
        if kw.strip():
            out.append(kw.strip())
    if len(out) > MAX_KEYWORDS:
        raise _fail(
            f"keywords has {len(out):,} entries; at most {MAX_KEYWORDS:,} are accepted. Keep the "
            "searchable words only."
        )
    return out


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def library_path(value: Any, what: str = "library_path") -> str:
    """An absolute library path ``/Folder/.../Title``: no empty, relative or control-character parts."""
    example = "e.g. /Airflow/Reports/sales (parent folder /Airflow/Reports, title sales)"
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{what} is empty ({value!r}); give the full library path of the item, {example}.")
    path = value.strip()
    if not path.startswith("/"):
        raise _fail(f"{what} {value!r} is not absolute; start it with '/', {example}.")
    if path.endswith("/"):
        raise _fail(f"{what} {value!r} ends with '/', so it has no title; add the item's title, {example}.")
    for part in path[1:].split("/"):
        if not part.strip():
            raise _fail(f"{what} {value!r} has an empty folder name ('//' or a blank segment); {example}.")
        if part in (".", ".."):
            raise _fail(
                f"{what} {value!r} contains {part!r}; library paths have no relative parts, {example}."
            )
        if _has_control(part):
            raise _fail(f"{what} {value!r} contains a control character; remove it, {example}.")
    return path


def guid(name: str, value: Any) -> str:
    """A GUID such as ``491647ba-99f9-43d0-a6ad-776a474ade28`` (braces and upper case accepted)."""
    text = value.strip() if isinstance(value, str) else value
    if isinstance(text, uuid.UUID):
        return str(text)
    if isinstance(text, str) and re.fullmatch(
        r"\{?[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}\}?", text
    ):
        return str(uuid.UUID(text))
    raise _fail(
        f"{name} {value!r} is not a GUID; library ids look like {_GUID_EXAMPLE} (see the item's "
        "properties in the Spotfire library), or pass library_path instead."
    )


def url_segment(name: str, value: Any, kind: str = "group") -> str:
    """An id sent as one URL path segment: not empty, no '/', '\\', '.'/'..', '?', '#' or control characters."""
    hint = (
        f"{kind} ids are GUIDs such as 5e239d92-8888-4ed1-94e5-bc93c0d5e05a; copy the id from the "
        "Spotfire Administration Manager"
    )
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{name} is empty ({value!r}); {hint}.")
    text = value.strip()
    if text in (".", "..") or any(ch in text for ch in "/\\?#%") or _has_control(text):
        raise _fail(f"{name} {value!r} is not a {kind} id (it could change the request's URL path); {hint}.")
    return text


def job_xml(value: str | bytes, *, well_formed: bool = True) -> str | bytes:
    """Job XML without a DTD or entity declaration (no XXE, no entity bombs), well-formed if asked.

    The check reads the raw text before parsing; the parse (stdlib expat) then refuses any
    document type declaration it still meets (e.g. in UTF-16) and never resolves an external
    entity. With ``well_formed=False`` only declarations are refused: a DTD sits in the prolog,
    so expat meets it before any error in the elements, which are left to the server to judge.
    """
    where = "job_xml"
    data = value.strip().encode("utf-8") if isinstance(value, str) else bytes(value)
    if _DTD.search(data):
        raise _fail(
            f"{where} contains a DTD (<!DOCTYPE ...>) or an entity declaration (<!ENTITY ...>). Job "
            "definitions need neither and they can make a server read files or fetch URLs (XXE); remove "
            "the declarations (export the job again from Spotfire's Automation Services Job Builder)."
        )
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    def refuse_doctype(*_args: Any) -> None:
        raise _fail(f"{where} contains a document type declaration; remove it.")

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    parser.ExternalEntityRefHandler = refuse_doctype  # type: ignore[assignment]
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        if not well_formed:
            return value
        raise _fail(
            f"{where} is not well-formed XML ({expat.ErrorString(exc.code)}: line {exc.lineno}, column "
            f"{exc.offset}); fix the job definition (export it again from Spotfire's Automation "
            "Services Job Builder)."
        ) from None
    return value


def job_source(library_path_value: str | None, library_id: str | None, job_xml_value: str | None) -> None:
    """Check the one given source of an Automation Services job (library path, library id or job XML)."""
    if library_path_value:
        library_path(library_path_value)
    if library_id:
        guid("library_id", library_id)
    if job_xml_value:
        job_xml(job_xml_value)


# ------------------------------------------------------------------------------------------ licenses
def license_function_names(value: Any, what: str = "license_functions") -> Any:
    """A bare function name or comma-separated names (a rendered template) -> a list; else unchanged.

    Strings that hold a JSON/Python list (``'["a", "b"]'``) are left to the caller's literal parsing.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text or text[0] in "[(":
        return value
    names = [part.strip() for part in text.split(",")]
    if any(not n or not re.fullmatch(r"[A-Za-z_][\w.\-]*", n) for n in names):
        raise _fail(
            f"{what} {value!r} is not a function name or a comma-separated list of names; pass a list "
            "such as ['openFromLibrary', 'exportData'] (None or [] enables all functions)."
        )
    return names


def license_sync_scope(
    licenses: Any, *, remove_unlisted: bool, allow_remove_all: bool, group_id: str
) -> None:
    """Refuse an empty ``licenses`` with ``remove_unlisted`` unless ``allow_remove_all`` says so."""
    if isinstance(licenses, str):
        empty = licenses.strip() in ("", "{}", "None", "null")
    else:
        empty = licenses is None or (isinstance(licenses, Mapping) and not licenses)
    if empty and remove_unlisted and not allow_remove_all:
        raise _fail(
            f"licenses is empty ({licenses!r}) and remove_unlisted=True: this would remove every license "
            f"set explicitly on group {group_id!r} (an empty template?). Nothing was changed. List the "
            "licenses to keep, or pass allow_remove_all=True if removing them all is what you mean."
        )


# ------------------------------------------------------------------------------------------ TLS
def tls_verify(value: Any, where: str) -> bool | str:
    """The ``verify`` extra: true/false (also as text) or the path of an existing CA bundle file."""
    import os

    if isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.lower() in TRUE_WORDS or not text:
        return True
    if text.lower() in FALSE_WORDS:
        return False
    path = os.path.expanduser(text)
    if not os.path.isfile(path):  # a directory would work for requests but not for the async client
        raise _fail(
            f"{where}: extra verify={value!r} is neither true/false nor the path of an existing CA bundle "
            "file. Set it to true (default), false (not recommended), or the path of the PEM file with the "
            "CA that signed the server's certificate."
        )
    if not os.access(path, os.R_OK):
        raise _fail(f"{where}: the CA bundle given in extra verify ({text}) is not readable by this process.")
    return path


__all__ = [
    "MAX_CHUNK_SIZE",
    "MAX_DESCRIPTION_CHARS",
    "MAX_KEYWORDS",
    "MAX_KEYWORD_CHARS",
    "MAX_PARALLELISM",
    "chunk_size",
    "description",
    "epoch_deadline",
    "guid",
    "integer",
    "job_xml",
    "keywords",
    "library_path",
    "license_function_names",
    "license_sync_scope",
    "number",
    "parallelism",
    "seconds",
    "tls_verify",
    "url_segment",
]
