"""The phones' Web Push subscriptions (hub/push.py), written beside the Writer."""
from __future__ import annotations

from pathlib import Path

from hub.store.schema import connect, prepare_tables, transaction

PUSH_TABLE = """CREATE TABLE IF NOT EXISTS push_subscriptions (
    endpoint TEXT PRIMARY KEY, associate TEXT NOT NULL, p256dh TEXT NOT NULL, auth TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, last_ok_at REAL, failures INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS push_by_associate ON push_subscriptions (associate)"""


class PushSubscriptions:
    """The phones' Web Push subscriptions, on short connections of their own like
    :class:`Credentials` (rare, single-row writes: a phone subscribing, a push service saying a
    subscription is gone). Thread-safe: nothing is shared."""

    def __init__(self, path: Path):
        self.path = Path(path)
        prepare_tables(self.path, PUSH_TABLE)

    def _read(self, sql: str, args: tuple = ()) -> list[dict]:
        conn = connect(self.path)
        try:
            return [dict(r) for r in conn.execute(sql, args)]
        finally:
            conn.close()

    def add(self, endpoint: str, associate: str, p256dh: str, auth: str, token_hash: str, at: float) -> None:
        """Store a subscription; the same endpoint again (a phone re-subscribing, or a phone
        passed to someone else) replaces the old one, with its new associate and token."""
        with transaction(self.path) as conn:
            conn.execute("INSERT OR REPLACE INTO push_subscriptions (endpoint, associate, p256dh, auth, token_hash, "
                         "created_at, last_ok_at, failures) VALUES (?, ?, ?, ?, ?, ?, NULL, 0)",
                         (endpoint, associate, p256dh, auth, token_hash, at))

    def remove(self, endpoint: str, associate: str | None = None) -> bool:
        """Forget a subscription (only ``associate``'s, if given); False if there was none."""
        with transaction(self.path) as conn:
            if associate is None:
                cur = conn.execute("DELETE FROM push_subscriptions WHERE endpoint = ?", (endpoint,))
            else:
                cur = conn.execute("DELETE FROM push_subscriptions WHERE endpoint = ? AND associate = ?",
                                   (endpoint, associate))
            return cur.rowcount == 1

    def of(self, associate: str) -> list[dict]:
        return self._read("SELECT * FROM push_subscriptions WHERE associate = ? ORDER BY created_at", (associate,))

    def by_token(self, token_hash: str) -> dict | None:
        rows = self._read("SELECT * FROM push_subscriptions WHERE token_hash = ?", (token_hash,))
        return rows[0] if rows else None

    def associates(self) -> set[str]:
        """Who has at least one subscription."""
        return {r["associate"] for r in self._read("SELECT DISTINCT associate FROM push_subscriptions")}

    def delivered(self, endpoint: str, ok: bool, at: float) -> None:
        """Note how a push to ``endpoint`` went (``last_ok_at``, or one more failure)."""
        with transaction(self.path) as conn:
            if ok:
                conn.execute("UPDATE push_subscriptions SET last_ok_at = ?, failures = 0 WHERE endpoint = ?",
                             (at, endpoint))
            else:
                conn.execute("UPDATE push_subscriptions SET failures = failures + 1 WHERE endpoint = ?", (endpoint,))
