"""API tokens, sign-in sessions and known browsers, written beside the Writer (see hub/store/__init__.py)."""
from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from hub.store.schema import CREDENTIAL_TABLES, connect, prepare_tables, transaction

#: Browsers remembered per associate (hub/api/routes/session.py): a phone or two, the shared
#: tablets; the oldest beyond this are forgotten.
BROWSERS_PER_ASSOCIATE = 20


class Credentials:
    """Writes API tokens and sessions, each on a short connection of its own (see the module
    docstring for why that is safe alongside the Writer). Thread-safe: nothing is shared."""

    def __init__(self, path: Path):
        self.path = Path(path)
        prepare_tables(self.path, CREDENTIAL_TABLES)

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path)

    def add_token(self, name: str, role: str, hashed: str, at: float) -> None:
        """Store a new token. Raises ValueError if an unrevoked one has this name (a revoked
        one is replaced: its name is free again)."""
        with self._write() as conn:
            old = conn.execute("SELECT revoked_at FROM tokens WHERE name = ?", (name,)).fetchone()
            if old is not None and old["revoked_at"] is None:
                raise ValueError(f"a token named {name!r} exists: revoke it first, or pick another name")
            conn.execute("INSERT OR REPLACE INTO tokens (name, role, hash, created_at, revoked_at) "
                         "VALUES (?, ?, ?, ?, NULL)", (name, role, hashed, at))

    def revoke_token(self, name: str, at: float) -> bool:
        """Revoke the token named ``name``; False if there is no such unrevoked token."""
        with self._write() as conn:
            cur = conn.execute("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", (at, name))
            return cur.rowcount == 1

    def tokens(self) -> list[dict]:
        """Every token's name, role and times (never its hash), by name."""
        conn = connect(self.path)
        try:
            return [dict(r) for r in conn.execute(
                "SELECT name, role, created_at, revoked_at FROM tokens ORDER BY name")]
        finally:
            conn.close()

    def add_session(self, hashed: str, associate: str, role: str, at: float, expires_at: float) -> None:
        """Store a new session, and forget the expired ones (so the table stays small)."""
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (at,))
            conn.execute("INSERT INTO sessions (hash, associate, role, created_at, expires_at) "
                         "VALUES (?, ?, ?, ?, ?)", (hashed, associate, role, at, expires_at))

    def end_session(self, hashed: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM sessions WHERE hash = ?", (hashed,))

    def add_browser(self, hashed: str, associate: str, at: float) -> None:
        """Remember that the browser whose cookie hashes to ``hashed`` signed in as
        ``associate`` (its wrong tries then count apart from strangers'); keeps the newest
        BROWSERS_PER_ASSOCIATE."""
        with self._write() as conn:
            conn.execute("INSERT OR IGNORE INTO browsers (hash, associate, created_at) VALUES (?, ?, ?)",
                         (hashed, associate, at))
            conn.execute("DELETE FROM browsers WHERE associate = ? AND hash NOT IN (SELECT hash FROM browsers "
                         "WHERE associate = ? ORDER BY created_at DESC LIMIT ?)",
                         (associate, associate, BROWSERS_PER_ASSOCIATE))
