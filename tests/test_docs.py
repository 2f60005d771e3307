"""The docs are pinned to the code (issue 19 E): a test fails when a route, a topic or an
error code is missing from docs/protocol.md, when a file the code or the docs point at is
not in the repository, or when an old claim comes back."""
from __future__ import annotations

import inspect
import re
import importlib
from pathlib import Path

import pytest

from callbell.protocol import Topics
from hub.api import app as hub_app, errors
from tests.helpers import ROOT

PROTOCOL = (ROOT / "docs" / "protocol.md").read_text()
SKIP_DIRS = {".venv", ".git", "node_modules", "__pycache__", ".pytest_cache", "build"}
SOURCES = [p for p in ROOT.rglob("*") if p.suffix in {".py", ".md", ".js", ".html", ".toml", ".css"}
           and p.is_file() and not SKIP_DIRS & set(p.relative_to(ROOT).parts)
           and p.relative_to(ROOT).parts[:2] != ("docs", "spec")]  # the spec as given, untouched

#: Claims that were true once and must not come back.
STALE = ("no sign-in yet", "Not implemented yet:** authentication", "`unauthenticated`", "an interactive page at\n`/docs`",
         "5 wrong in a row", "**not implemented**. Everything is open", "no Web Push",
         "also refused HTTP requests (`topic`", "A silent device raises no `trouble` alert",
         "the hub itself does not raise a `trouble` alert")


def _resolves(mention: str, where: Path) -> bool:
    """Relative to the file, or the repository root; a bare name may be one of docs/ or
    hardware/ (``docs/benchmarks.md`` said as ``benchmarks.md``)."""
    name = mention.split("#")[0]
    return any((base / name).exists() for base in (where.parent, ROOT, ROOT / "docs", ROOT / "hardware"))


def test_every_markdown_file_a_source_points_at_is_in_the_repository():
    problems = {str(p.relative_to(ROOT)): m for p in SOURCES if (m := _missing_files(p))}
    assert not problems, f"files the sources point at that are not in the repo: {problems}"


def _missing_files(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    links = re.findall(r"\]\(([^)#\s]+\.md)(?:#[^)]*)?\)", text) if path.suffix == ".md" else []
    if path.suffix == ".md":  # a link's text is the name, not a path: its target is checked above
        text = re.sub(r"\[[^\]]*\]\([^)]*\)", "", text)
    mentions = re.findall(r"(?<![\w/.-])((?:[\w.-]+/)*[A-Za-z][\w-]*\.md)\b", text)
    return sorted({m for m in links + mentions if not m.startswith("http") and not _resolves(m, path)})


def test_every_http_route_is_in_the_protocol_docs(hub):
    routes = {path for _, path, _ in hub_app.api_routes(hub.app) if path.startswith("/api/")}
    missing = sorted(p for p in routes if f"`{p}" not in PROTOCOL and f" {p}`" not in PROTOCOL
                     and f"{p}`" not in PROTOCOL and f"{p}," not in PROTOCOL)
    assert not missing, f"docs/protocol.md lacks these routes: {missing}"


def test_every_topic_is_in_the_protocol_docs_topic_table():
    t = Topics("{p}", "{store}")
    names = {"room": "{room}", "device": "{device}", "associate": "{associate}", "call": "{call}"}
    topics = []
    for name, method in inspect.getmembers(Topics, predicate=inspect.isfunction):
        params = list(inspect.signature(method).parameters)[1:]
        if name.startswith("_") or name == "parse" or len(params) > 1:
            continue
        if params:
            topics.append(method(t, names.get(params[0], "{" + params[0] + "}")))
    topics += [t.hub_status, t.hub_rejected]
    table = PROTOCOL.split("### Topics", 1)[1].split("\n\n", 2)[1]
    missing = [x for x in topics if f"`{x}`" not in table]
    assert not missing, f"docs/protocol.md's topic table lacks {missing}"


def test_every_error_code_the_hub_answers_with_is_in_the_protocol_docs():
    codes = set(errors.STATUS)
    for path in (ROOT / "hub").rglob("*.py"):
        codes |= set(re.findall(r'ApiError\("([a-z_]+)"', path.read_text()))
        codes |= set(re.findall(r'error_response\("([a-z_]+)"', path.read_text()))
    section = PROTOCOL.split("### Errors", 1)[1].split("\n## ", 1)[0]
    missing = sorted(c for c in codes if f"`{c}`" not in section)
    assert not missing, f"docs/protocol.md's errors table lacks {missing}"


@pytest.mark.parametrize("claim", STALE)
def test_old_claims_stay_out_of_the_docs(claim):
    found = [str(p.relative_to(ROOT)) for p in SOURCES if p.suffix == ".md" and claim in p.read_text()]
    assert not found, f"{claim!r} is no longer true but is still in {found}"


def _limits_the_security_docs_quote() -> list[tuple[list[str], str, str]]:
    """(files, NAME, value as written) for each "`NAME` = value" in docs/security.md's limits.

    A paragraph's constants live in the files it names in backticks; a paragraph that names
    none continues the one before (the sign-in backoff spans three paragraphs).
    """
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("### Limits, and what they cost an attacker", 1)[1].split("\n### ", 1)[0]
    quoted, files = [], []
    for paragraph in section.split("\n\n"):
        files = re.findall(r"`([\w/]+\.py)`", paragraph) or files
        for name, value in re.findall(r"`([A-Z][A-Z0-9_]+)` = ([0-9][0-9_.,]*)", paragraph):
            quoted.append((files, name, value))
    return quoted


def test_the_limits_in_the_security_docs_are_the_ones_in_the_code():
    quoted = _limits_the_security_docs_quote()
    assert len(quoted) >= 15, f"found only {len(quoted)} limits in docs/security.md"
    wrong = []
    for files, name, written in quoted:
        modules = [importlib.import_module(f.removesuffix(".py").replace("/", ".")) for f in files]
        actual = next((getattr(m, name) for m in modules if hasattr(m, name)), None)
        if actual is None or float(written.replace(",", "").replace("_", "")) != float(actual):
            wrong.append(f"{name}: docs say {written}, {files} has {actual}")
    assert not wrong, "docs/security.md quotes stale limits:\n" + "\n".join(wrong)
    security = (ROOT / "docs" / "security.md").read_text()
    unit = (ROOT / "hub" / "deploy" / "callbell-hub.service").read_text()
    assert "LimitNOFILE=65536" in unit and "`LimitNOFILE=65536`" in security


def test_the_troubles_docs_name_every_kind_and_quote_the_rules_in_the_code():
    from hub.domain import troubles
    hub_doc = (ROOT / "docs" / "hub.md").read_text().split("## Troubles", 1)[1].split("\n## ", 1)[0]
    table = re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)?(?:, `([a-z_]+)`)? \|", hub_doc, re.M)
    assert sorted(k for row in table for k in row if k) == sorted(troubles.KINDS)
    quoted = dict(re.findall(r"`([A-Z][A-Z_]+)` = ([0-9.]+)", hub_doc))
    assert {k: float(v) for k, v in quoted.items()} == {
        "SILENT_AFTER_BEATS": troubles.SILENT_AFTER_BEATS, "BROKER_GRACE_S": troubles.BROKER_GRACE_S,
        "REALERT_S": troubles.REALERT_S}
    api_kinds = PROTOCOL.split("`GET /api/v1/troubles`", 1)[1].split("\n", 1)[0]
    assert all(f"`{k}`" in api_kinds for k in troubles.KINDS)
