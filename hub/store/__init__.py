"""The one module that owns SQLite (through sqlite-utils).

Tables:

- ``events``: append-only log of every transition (who, when, from where), including alerts
  and associates' state and zone changes. Never updated.
- ``calls``: one row per call, derived from its events, rewritten in the same transaction.
- ``inbox``: every device event id the hub has acted on, per device (a repeat of a (device, id)
  is ignored; ids are unique per device only).
- ``rejected``: every message or request the hub could not accept, with the reason; refused
  HTTP requests (per source) and refused MQTT messages (per device) summed per minute past the
  first few (hub/api/refusals.py), with ``count``. Kept for REJECTED_KEEP_S, at most
  REJECTED_MAX_ROWS of each channel.
- ``devices``: last status and health per device.
- ``rollup``: closed calls summed per local hour, day and month and per dimension value
  (hub/domain/rollup.py), kept by the writer in the transaction that changes the calls, so
  statistics over a year read thousands of rows, not millions. ``meta`` records the time zone
  and standard they were made with; a hub started with others rebuilds them
  (:func:`prepare_rollups`).
- ``tokens`` and ``sessions``: API tokens and the pages' sign-in sessions (hub/auth.py), each
  stored only as the SHA-256 of its secret. Written by :class:`Credentials`, not the Writer.
- ``push_subscriptions``: the phones' Web Push subscriptions (hub/push.py), each with the
  SHA-256 of the token its pushes carry. Written by :class:`PushSubscriptions`, not the Writer.

Concurrency: a SQLite file takes one writer at a time, and a sqlite-utils ``Database`` is bound
to the thread that made it. So exactly one thread (the dispatcher's) owns a :class:`Writer`;
HTTP handlers read through their own :class:`Reader` connections, which WAL lets run alongside
the writer without blocking it. Tokens and sessions are the one exception to "only the
dispatcher writes": :class:`Credentials` writes them on a short connection of its own (from the
``callbell token`` command, or the HTTP thread signing someone in). That is safe: SQLite lets
one writer at a time hold the file and makes the others wait (``BUSY_TIMEOUT_S``); these writes
are single-row and rare, so the dispatcher waits microseconds at most; and each Reader query
starts a new WAL snapshot, so a running hub sees a new or revoked token on its next request.

A file that cannot be written (full disk, damage: damage.py) does not stop the hub: the
dispatcher goes on with a :class:`Writer` in memory and writes back once it can; a damaged
file is set aside at start. lock.py is the lock a running hub holds, so ``callbell restore``
knows it runs.

Files: schema.py (tables, connections, a call as a row), writer.py, reader.py, rollups.py,
credentials.py, push_subscriptions.py, history_loader.py, damage.py, lock.py; lean_sqlite_utils.py
imports sqlite-utils without the pandas and numpy it would pull in.
"""
from hub.store.credentials import BROWSERS_PER_ASSOCIATE, Credentials
from hub.store.history_loader import HistoryLoader
from hub.store.push_subscriptions import PushSubscriptions
from hub.store.reader import Reader
from hub.store.rollups import prepare_rollups
from hub.store.schema import (BUSY_TIMEOUT_S, CALL_COLUMNS, STAT_FILTERS, STATS_INDEX_COLUMNS, call_from_row, call_row,
                              create_schema)
from hub.store.writer import REJECTED_KEEP_S, REJECTED_MAX_ROWS, REJECTED_PRUNE_EVERY_S, Writer

__all__ = ["BROWSERS_PER_ASSOCIATE", "BUSY_TIMEOUT_S", "CALL_COLUMNS", "STAT_FILTERS", "STATS_INDEX_COLUMNS",
           "REJECTED_KEEP_S", "REJECTED_MAX_ROWS", "REJECTED_PRUNE_EVERY_S", "Credentials", "HistoryLoader",
           "PushSubscriptions", "Reader", "Writer", "call_from_row", "call_row", "create_schema", "prepare_rollups"]
