"""Loading TOML settings files with errors a person can act on.

A mistake is reported as ``store.toml line 14: rooms[2].zone: unknown zone 'mens'``: the file,
the line, the key and what is wrong — never a traceback. The store config (hub) is a pydantic
model (:func:`load_toml`); the device config is plain dataclasses, because pydantic alone would
cost a Pi ~12 MB of its 40 MB budget, and uses :func:`read_toml` and :func:`report`.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


class ConfigError(Exception):
    """A settings file that cannot be used. The message names file, line and key."""


def read_toml(path: Path) -> tuple[str, dict]:
    """The text and the parsed table of a TOML file; ConfigError if it cannot be read."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {e}") from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def report(path: Path, text: str, problems: list[tuple[tuple, str]]) -> ConfigError:
    """A ConfigError listing ``(loc, message)`` problems with the line of each key."""
    lines = []
    for loc, msg in problems:
        m = _LOC_IN_MESSAGE.match(msg)
        if m:  # a cross-field check names its own key: "rooms[2].zone: unknown zone"
            loc = tuple(loc) + parse_dotted(m.group(1))
            msg = m.group(2)
        line = locate(text, loc)
        where = f"{path} line {line}" if line else str(path)
        lines.append(f"{where}: {dotted(loc) or '(top level)'}: {msg}")
    return ConfigError("\n".join(lines))


def load_toml(path: Path, model: type[M], **context) -> M:
    """Read a TOML file into a pydantic model."""
    from pydantic import ValidationError

    path = Path(path)
    text, data = read_toml(path)
    try:
        return model.model_validate(data, context={"path": path, **context})
    except ValidationError as e:
        problems = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key (misspelt?)"
            problems.append((tuple(err["loc"]), msg))
        raise report(path, text, problems) from None


def dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


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
