"""Where chain statistics live: ClickHouse, embedded (chDB, the default: one folder, no
server) or a ClickHouse server (``clickhouse-connect``), behind one small interface so the same
SQL runs on either.

    wh = open_warehouse(config.warehouse)      # chDB in config.warehouse.path, or the server
    wh.insert("events", EVENT_COLUMNS, rows)
    wh.rows("SELECT store, max(seq) FROM events WHERE store = {s:String} GROUP BY store", {"s": "store-1"})

Parameters use ClickHouse's own ``{name:Type}`` syntax, bound by the engine, never pasted in.
chDB allows one session per process and its session is not safe for concurrent use, so every
call here holds one lock: the consumer's inserts and the page's queries take turns (each is
milliseconds).
"""
from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import unquote, urlparse

from callbell.settings import ConfigError
from chain import schema

log = logging.getLogger("callbell.warehouse")

#: Environment variable with a ClickHouse server URL (and password), over [warehouse] url.
URL_VARIABLE = "CALLBELL_CLICKHOUSE_URL"


class WarehouseError(RuntimeError):
    """The warehouse refused a statement or cannot be reached."""


class Warehouse:
    """The interface both engines offer."""

    engine = "?"

    def command(self, sql: str, params: dict | None = None) -> None:
        raise NotImplementedError

    def rows(self, sql: str, params: dict | None = None) -> list[tuple]:
        raise NotImplementedError

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def create_schema(self) -> None:
        for statement in schema.STATEMENTS:
            self.command(statement)

    def marks(self) -> dict[str, int]:
        """Each store's mark: its highest seq held (the log is held without gaps below it)."""
        return {store: int(seq) for store, seq in self.rows("SELECT store, max(seq) FROM events GROUP BY store")}


class ChdbWarehouse(Warehouse):
    """ClickHouse inside this process (chDB), its data in ``path``."""

    engine = "chdb"

    def __init__(self, path: Path):
        try:
            from chdb import session
        except ImportError:
            raise ConfigError("the embedded warehouse needs chDB: pip install chdb (or set [warehouse] url "
                              "to a ClickHouse server)") from None
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._session = session.Session(str(self.path))

    def _query(self, sql: str, fmt: str, params: dict | None):
        with self._lock:
            try:
                return self._session.query(sql, fmt, params=_text_params(params)) if params else \
                    self._session.query(sql, fmt)
            except Exception as e:  # chDB raises its own RuntimeError for any server error
                raise WarehouseError(str(e).strip()[:2000]) from None

    def command(self, sql: str, params: dict | None = None) -> None:
        self._query(sql, "TSV", params)

    def rows(self, sql: str, params: dict | None = None) -> list[tuple]:
        result = self._query(sql, "JSONCompact", params)
        raw = result.bytes() if hasattr(result, "bytes") else bytes(result)
        if not raw.strip():
            return []
        return [tuple(r) for r in json.loads(raw)["data"]]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
        lines = [json.dumps(dict(zip(columns, r)), separators=(",", ":"), default=str) for r in rows]
        if not lines:
            return 0
        # JSONEachRow inline: one statement, one part, one atomic insert.
        self._query(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONEachRow\n" + "\n".join(lines), "TSV", None)
        return len(lines)

    def close(self) -> None:
        with self._lock:
            self._session.close()


class ServerWarehouse(Warehouse):
    """A ClickHouse server over HTTP (clickhouse-connect): ``http://user:pass@host:8123/db``."""

    engine = "clickhouse"

    def __init__(self, url: str):
        try:
            import clickhouse_connect
        except ImportError:
            raise ConfigError("a ClickHouse server needs clickhouse-connect: pip install clickhouse-connect") from None
        u = urlparse(url)
        database = u.path.strip("/") or "default"
        self._lock = threading.Lock()
        try:
            self._client = clickhouse_connect.get_client(
                host=u.hostname, port=u.port or (8443 if u.scheme == "https" else 8123), secure=u.scheme == "https",
                username=unquote(u.username or "default"), password=unquote(u.password or ""), database="default")
            if database != "default":
                self._client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
                self._client.database = database
        except Exception as e:
            raise WarehouseError(f"cannot reach ClickHouse at {u.hostname}:{u.port}: {e}") from None

    def command(self, sql: str, params: dict | None = None) -> None:
        with self._lock:
            try:
                self._client.command(sql, parameters=params)
            except Exception as e:
                raise WarehouseError(str(e)[:2000]) from None

    def rows(self, sql: str, params: dict | None = None) -> list[tuple]:
        with self._lock:
            try:
                return [tuple(r) for r in self._client.query(sql, parameters=params).result_rows]
            except Exception as e:
                raise WarehouseError(str(e)[:2000]) from None

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> int:
        rows = [list(r) for r in rows]
        if rows:
            with self._lock:
                try:
                    self._client.insert(table, rows, column_names=list(columns))
                except Exception as e:
                    raise WarehouseError(str(e)[:2000]) from None
        return len(rows)

    def close(self) -> None:
        self._client.close()


def _text_params(params: dict | None) -> dict | None:
    """chDB binds parameters given as text; lists go as ClickHouse array literals."""
    if not params:
        return None
    out = {}
    for k, v in params.items():
        if isinstance(v, (list, tuple)):
            out[k] = "[" + ",".join("'" + str(x).replace("\\", "\\\\").replace("'", "\\'") + "'" for x in v) + "]"
        else:
            out[k] = str(v)
    return out


def open_warehouse(section) -> Warehouse:
    """The warehouse of a chain.toml ``[warehouse]`` section (the environment's URL first)."""
    url = os.environ.get(URL_VARIABLE) or section.url
    wh = ServerWarehouse(url) if url else ChdbWarehouse(section.path)
    wh.create_schema()
    return wh
