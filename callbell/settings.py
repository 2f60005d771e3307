"""Loading TOML settings files with errors a person can act on.

A mistake is reported as ``store.toml line 14: rooms[2].zone: unknown zone 'mens'``: the file,
the line, the key and what is wrong — never a traceback. The store config (hub) is a pydantic
model (:func:`load_toml`); the device config is plain dataclasses, because pydantic alone would
cost a Pi ~12 MB of its 40 MB budget, and uses :func:`read_toml` and :func:`report`.
"""
from __future__ import annotations

import difflib
import math
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from callbell.protocol import ID_PATTERN

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


class ConfigError(Exception):
    """A settings file that cannot be used. The message names file, line and key: one line
    per mistake, every mistake found at once."""


class Problems(ValueError):
    """Several mistakes found by one check across keys (a model validator), each "key: what is
    wrong", so that all are reported at once instead of the first."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = list(messages)


def read_toml(path: Path) -> tuple[str, dict]:
    """The text and the parsed table of a TOML file; ConfigError if it cannot be read, is not
    UTF-8, is not valid TOML or holds no settings at all (each naming the line where it can)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        before = raw[: e.start]
        line = before.count(b"\n") + 1
        column = e.start - (before.rfind(b"\n") + 1) + 1
        key = key_at(raw.decode("utf-8", "replace"), line)
        raise ConfigError(f"{path} line {line}: {key + ': ' if key else ''}not UTF-8 text (byte "
                          f"0x{raw[e.start]:02x} at column {column}); save the file as UTF-8") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _TOML_WHERE.search(str(e))
        if not m:
            raise ConfigError(f"{path}: not valid TOML: {e}") from None
        line, what = int(m.group(1)), str(e)[: m.start()].strip()
        key = key_at(text, line)
        raise ConfigError(f"{path} line {line}: {key + ': ' if key else ''}not valid TOML: "
                          f"{what} (column {m.group(2)})") from None
    if not data:
        raise ConfigError(f"{path}: is empty: no settings in it (see the examples folder for a complete file)")
    return text, data


#: Where tomllib says a syntax error is: "... (at line 13, column 9)".
_TOML_WHERE = re.compile(r"\(at line (\d+), column (\d+)\)")


def report(path: Path, text: str, problems: list[tuple[tuple, str]]) -> ConfigError:
    """A ConfigError listing ``(loc, message)`` problems with the line of each key, in the
    order of the file (those without a line last)."""
    lines = []
    for loc, msg in problems:
        m = _LOC_IN_MESSAGE.match(msg)
        if m and m.group(1) not in _VERDICTS:  # a cross-field check names its own key: "rooms[2].zone: unknown zone"
            loc = tuple(loc) + parse_dotted(m.group(1))
            msg = m.group(2)
        line = locate(text, loc)
        where = f"{path} line {line}" if line else str(path)
        lines.append((line or math.inf, f"{where}: {dotted(loc) or '(top level)'}: {msg}"))
    return ConfigError("\n".join(line for _, line in sorted(lines, key=lambda item: item[0])))


def load_toml(path: Path, model: type[M], **context) -> M:
    """Read a TOML file into a pydantic model."""
    from pydantic import ValidationError

    path = Path(path)
    text, data = read_toml(path)
    problems = []
    checked_across = False  # whether the checks across keys ran (they do once every value is right)
    try:
        result = model.model_validate(data, context={"path": path, **context})
    except ValidationError as e:
        result = None
        for err in e.errors():
            found = (err.get("ctx") or {}).get("error")
            if isinstance(found, Problems):
                problems += [(tuple(err["loc"]), message) for message in found.messages]
                checked_across = True
                continue
            msg = err["msg"].removeprefix("Value error, ")
            loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                near = difflib.get_close_matches(str(loc[-1]), _fields_at(model, loc[:-1]), n=1)
                msg = f"unknown key: did you mean {near[0]}?" if near else "unknown key (misspelt?)"
            elif err["type"] == "missing":
                msg = "missing (required)"
            elif err["type"] == "string_pattern_mismatch":  # what the pattern means, in words
                field = _fields_at(model, loc[:-1]).get(loc[-1])
                if (err.get("ctx") or {}).get("pattern") == ID_PATTERN.pattern:
                    msg = f"must be 1-64 characters of a-z 0-9 - _, got {err['input']!r}"
                elif field is not None and field.description:
                    msg = f"{msg} ({field.description}), got {err['input']!r}"
            problems.append((loc, msg))
    problems += _booleans_for_numbers(model, data, {loc for loc, _ in problems}, context={"path": path, **context})
    if result is None and problems and not checked_across:
        problems += _across_keys_without(model, data, problems, context={"path": path, **context})
    if problems:
        raise report(path, text, problems) from None
    return result


def _across_keys_without(model: type[M], data: dict, problems: list[tuple[tuple, str]], context: dict
                         ) -> list[tuple[tuple, str]]:
    """The mistakes across keys (a room's unknown zone, a duplicate id), which pydantic checks
    only once every value is right: found by validating again with the wrong keys left out.
    Only what the wrong keys cannot have caused is kept; none when leaving one out breaks
    something new (a required key, a list entry)."""
    import copy

    from pydantic import ValidationError

    pruned = copy.deepcopy(data)
    for loc, _ in problems:
        parent = pruned
        for part in loc[:-1] if loc else ():
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                return []
        if loc and isinstance(parent, dict) and isinstance(loc[-1], str) and not isinstance(parent.get(loc[-1]), dict):
            parent.pop(loc[-1], None)  # a wrong value: left out (a whole table stays: its check failed)
    known = {loc for loc, _ in problems}
    left_out = {loc[:2] for loc in known}
    try:
        model.model_validate(pruned, context=context)
    except ValidationError as e:
        found = []
        for err in e.errors():
            error = (err.get("ctx") or {}).get("error")
            if not isinstance(error, Problems):
                if tuple(err["loc"]) in known:
                    continue  # the same mistake again
                return []  # leaving a key out broke something else: nothing to add with confidence
            for message in error.messages:
                m = _LOC_IN_MESSAGE.match(message)
                key = parse_dotted(m.group(1)) if m and m.group(1) not in _VERDICTS else ()
                if tuple(err["loc"]) + key[:2] not in left_out and key[:2] not in left_out:
                    found.append((tuple(err["loc"]), message))
        return found
    return []


def _fields_at(model, loc: tuple) -> dict:
    """The fields (name → FieldInfo) of the model at ``loc`` inside ``model``; {} if none."""
    from pydantic import BaseModel

    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return {}
        model = _model_in(field.annotation)
    return model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}


def _model_in(annotation):
    """The pydantic model in ``X``, ``list[X]`` or ``X | None``; None if there is none."""
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _booleans_for_numbers(model: type[M], data: dict, known: set, context: dict) -> list[tuple[tuple, str]]:
    """Problems for ``true``/``false`` where a number is expected. Pydantic's lax mode takes
    ``standard_s = true`` as 1 second; strict mode says no, but also refuses a string for a
    Path. So validate strictly too and keep only the complaints about booleans."""
    from pydantic import ValidationError

    try:
        model.model_validate(data, strict=True, context=context)
    except ValidationError as e:
        return [(tuple(err["loc"]), f"{err['msg']}, got {str(err['input']).lower()} (a TOML boolean)")
                for err in e.errors()
                if isinstance(err.get("input"), bool) and tuple(err["loc"]) not in known]
    return []


def dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


#: Words a message may open with, before a colon, that are not keys: "missing: a [device] section".
_VERDICTS = {"missing"}

_LOC_IN_MESSAGE = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*): (.*)$", re.S)


def parse_dotted(text: str) -> tuple:
    """``rooms[2].zone`` → ``("rooms", 2, "zone")``."""
    out: list = []
    for part in text.split("."):
        name, _, index = part.partition("[")
        out.append(name)
        if index:
            out.append(int(index.rstrip("]")))
    return tuple(out)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\"]+)\s*\]\]?")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"]+)\s*=")


def locate(text: str, loc: tuple) -> int | None:
    """Best-effort line number (1-based) of the key at ``loc`` in TOML ``text``.

    Tracks ``[table]`` and ``[[array]]`` headers; good for the flat layouts our files use.
    Returns the line of the deepest part of ``loc`` found, or None.
    """
    path = [p for p in loc if isinstance(p, str)]
    want_index = next((p for p in loc if isinstance(p, int)), None)
    table: list[str] = []
    counts: dict[str, int] = {}
    best = None
    for n, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            table = m.group(2).replace('"', "").split(".")
            if m.group(1) == "[[":
                key = ".".join(table)
                counts[key] = counts.get(key, -1) + 1
            in_target = table == path[: len(table)] and (
                want_index is None or counts.get(".".join(table), 0) == want_index)
            if in_target:
                best = n
            continue
        m = _KEY.match(line)
        if m:
            key = table + [m.group(1).replace('"', "")]
            idx_ok = want_index is None or counts.get(".".join(table), 0) == want_index
            if idx_ok and key == path[: len(key)] and (len(key) == len(path) or key[-1] == path[-1]):
                return n
    return best


def key_at(text: str, line: int) -> str:
    """The dotted key set on ``line`` (1-based) of TOML ``text`` — ``rooms[1].id`` — or the
    table a header there opens; "" when the line holds neither (best effort, as :func:`locate`)."""
    table: list[str] = []
    counts: dict[str, int] = {}
    for n, content in enumerate(text.splitlines()[:line], 1):
        m = _HEADER.match(content)
        if m:
            table = m.group(2).replace('"', "").split(".")
            if m.group(1) == "[[":
                counts[".".join(table)] = counts.get(".".join(table), -1) + 1
            if n == line:
                return _with_index(table, counts)
            continue
        m = _KEY.match(content)
        if n == line and m:
            return _with_index(table + [m.group(1).replace('"', "")], counts)
    return ""


def _with_index(parts: list[str], counts: dict[str, int]) -> str:
    out: list = []
    for i, part in enumerate(parts):
        out.append(part)
        index = counts.get(".".join(parts[: i + 1]))  # an [[array]] table: which entry
        if index is not None:
            out.append(index)
    return dotted(tuple(out))
