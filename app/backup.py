"""``callbell backup``, ``callbell restore`` and ``callbell db recover`` (docs/hub.md, "Backup,
restore and recovery").

- **backup** copies the database with SQLite's online backup API while the hub runs (one
  read snapshot: the hub goes on writing meanwhile, WAL keeps them apart), checks the copy, and
  puts it in one timestamped folder with the Web Push (VAPID) key, the store config and the
  broker's files, a ``manifest.json`` with each file's SHA-256, and nothing needing ``sqlite3``.
- **restore** puts a backup (or a database file, e.g. one ``db recover`` made) in place while
  the hub is stopped; it refuses while a hub holds the database (:func:`hub_running`), and sets
  the replaced files aside instead of deleting them.
- **db recover** reads every row it still can from a damaged file, table by table and past
  damaged pages, into a new file, and says what it saved and what it lost.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from callbell import __version__
from hub.push import KEY_FILE
from hub.store import damage
from hub.store.lock import hold_lock, lock_path
from hub.store.schema import connect, create_tables

#: The backup's files: the database, its Web Push key, the store config, the broker's folder.
DB_NAME = "callbell.db"
CONFIG_NAME = "store.toml"
BROKER_NAME = "broker"
MANIFEST = "manifest.json"

#: Seconds between progress lines of a long copy.
PROGRESS_EVERY_S = 1.0

#: Rows read at a time by ``db recover``. Past a damaged page it halves down to one row.
RECOVER_CHUNK_ROWS = 2000
#: Largest jump of rowids, past rows that cannot be read, before ``db recover`` tries again;
#: it starts at one row and doubles while the reads keep failing.
RECOVER_MAX_SKIP = 1 << 20
#: Jumps that find nothing readable before ``db recover`` gives the rest of a table up: 20
#: doublings reach RECOVER_MAX_SKIP, 40 more pass 40 million rowids beyond.
RECOVER_MAX_JUMPS = 60


class RestoreError(Exception):
    """A restore refused (the hub runs, a file is missing or does not match its checksum)."""


Say = Callable[[str], None]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def hub_running(db: Path, http_host: str, http_port: int) -> str | None:
    """Why a hub seems to run on ``db``, or None: its lock held, or its HTTP port answering."""
    try:
        fd = hold_lock(db) if db.parent.exists() else -1
    except OSError:
        fd = -1
    if fd is None:
        return f"a hub holds {lock_path(db)}"
    if fd >= 0:
        os.close(fd)
    host = "127.0.0.1" if http_host in ("0.0.0.0", "", "::") else http_host
    try:
        with socket.create_connection((host, http_port), timeout=0.5):
            return f"something answers on the hub's HTTP port {host}:{http_port}"
    except OSError:
        return None


# -- backup ---------------------------------------------------------------------------------
def copy_database(src: Path, dst: Path, say: Say) -> None:
    """Copy ``src`` into the new file ``dst`` with SQLite's online backup API, in one step: a
    single read snapshot, consistent however much the hub writes meanwhile (a copy in steps
    would start again at every write of the hub). Progress: the copy's size, every second."""
    total = src.stat().st_size + (Path(f"{src}-wal").stat().st_size if Path(f"{src}-wal").exists() else 0)
    done = threading.Event()

    def report() -> None:
        while not done.wait(PROGRESS_EVERY_S):
            size = dst.stat().st_size if dst.exists() else 0
            say(f"  copying the database: {size / 1e6:,.1f} of about {total / 1e6:,.1f} MB")
    ticker = threading.Thread(target=report, daemon=True)
    ticker.start()
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(str(dst))
    try:
        source.backup(target)
    finally:
        done.set()
        target.close()
        source.close()
        ticker.join()


def _counts(path: Path) -> dict:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("calls", "events")}
    finally:
        conn.close()


def backup(db: Path, config_file: Path, to: Path, *, broker_dir: Path | None, now: float, say: Say,
           store: str = "") -> Path:
    """Back up a hub (running or not) into a new folder under ``to``; returns the folder.
    ``broker_dir``: the folder ``callbell broker-config`` wrote (passwords, ACL, certificates,
    hub.env), included if it exists."""
    if not db.exists():
        raise FileNotFoundError(f"{db}: no database to back up")
    name = f"callbell-backup-{store + '-' if store else ''}{damage.stamp(now)}"
    final = Path(to) / name
    work = Path(to) / f"{name}.partial"
    work.mkdir(parents=True, mode=0o700)
    say(f"backing up {db} into {final}")
    started = time.monotonic()
    files: list[dict] = []

    def add(path: Path, role: str, original: Path) -> None:
        os.chmod(path, 0o600)  # keys and passwords among them: the hub's user only
        files.append({"name": str(path.relative_to(work)), "role": role, "bytes": path.stat().st_size,
                      "sha256": sha256(path), "from": str(original)})

    copy_database(db, work / DB_NAME, say)
    found = damage.quick_check(work / DB_NAME)
    if found is not None:
        raise sqlite3.DatabaseError(f"the copy of {db} fails its integrity check ({found}): the database is "
                                    "damaged; see 'callbell db recover'")
    counts = _counts(work / DB_NAME)
    add(work / DB_NAME, "database", db)
    say(f"  database: {counts['calls']:,} calls, {counts['events']:,} events, integrity ok "
        f"({time.monotonic() - started:.1f} s)")
    key = db.parent / KEY_FILE
    if key.exists():
        shutil.copy2(key, work / KEY_FILE)
        add(work / KEY_FILE, "vapid-key", key)
        say(f"  Web Push key: {key}")
    else:
        say(f"  no Web Push key at {key} (the hub makes one when Web Push is first used)")
    shutil.copy2(config_file, work / CONFIG_NAME)
    add(work / CONFIG_NAME, "config", config_file)
    say(f"  store config: {config_file}")
    if broker_dir is not None and Path(broker_dir).is_dir():
        for path in sorted(p for p in Path(broker_dir).rglob("*") if p.is_file()):
            copy = work / BROKER_NAME / path.relative_to(broker_dir)
            copy.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            shutil.copy2(path, copy)
            add(copy, "broker", path)
        say(f"  broker files: {broker_dir} ({sum(f['role'] == 'broker' for f in files)} files)")
    manifest = {"callbell": __version__, "made_at": now, "store": store, "database": counts, "files": files}
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    os.chmod(work / MANIFEST, 0o600)
    os.replace(work, final)
    say(f"backup complete in {time.monotonic() - started:.1f} s: {final}")
    return final


# -- restore --------------------------------------------------------------------------------
@dataclass
class Restored:
    database: Path
    set_aside: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def read_backup(source: Path) -> tuple[Path, dict | None]:
    """The database of a backup folder (its manifest checked) or a database file itself."""
    source = Path(source)
    if source.is_file():
        return source, None
    manifest_file = source / MANIFEST
    if not manifest_file.exists():
        raise RestoreError(f"{source}: neither a backup folder (no {MANIFEST}) nor a database file")
    manifest = json.loads(manifest_file.read_text())
    for f in manifest["files"]:
        path = source / f["name"]
        if not path.exists():
            raise RestoreError(f"{path}: missing from the backup")
        if sha256(path) != f["sha256"]:
            raise RestoreError(f"{path}: does not match its checksum in {manifest_file}: the backup is damaged")
    return source / DB_NAME, manifest


def restore(source: Path, db: Path, *, now: float, say: Say, broker_dir: Path | None = None) -> Restored:
    """Put the backup ``source`` in place of ``db`` (the hub stopped: the caller checks); the
    files replaced are set aside as ``<name>.replaced-<time>``."""
    backup_db, manifest = read_backup(source)
    found = damage.quick_check(backup_db)
    if found is not None:
        raise RestoreError(f"{backup_db}: fails its integrity check ({found})")
    done = Restored(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    if db.exists():
        done.set_aside.append(damage.set_aside(db, now, "replaced"))
    else:  # companions of a file already gone must not be read as the new file's
        for suffix in ("-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    say(f"restoring the database from {backup_db}")
    copy_database(backup_db, db, say)
    counts = _counts(db)
    say(f"  database: {counts['calls']:,} calls, {counts['events']:,} events")
    if manifest is None:
        return done
    roles = {f["role"]: f for f in manifest["files"]}
    key = Path(source) / KEY_FILE
    if "vapid-key" in roles:
        current = db.parent / KEY_FILE
        if current.exists() and sha256(current) != roles["vapid-key"]["sha256"]:
            done.set_aside.append(damage.set_aside(current, now, "replaced"))
        if not current.exists():
            shutil.copy2(key, current)
            os.chmod(current, 0o600)
        say(f"  Web Push key: {current} (phones' subscriptions keep working)")
    if broker_dir is not None and any(f["role"] == "broker" for f in manifest["files"]):
        for f in manifest["files"]:
            if f["role"] != "broker":
                continue
            target = Path(broker_dir) / Path(f["name"]).relative_to(BROKER_NAME)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() and sha256(target) != f["sha256"]:
                done.set_aside.append(damage.set_aside(target, now, "replaced"))
            shutil.copy2(Path(source) / f["name"], target)
        say(f"  broker files into {broker_dir}: reload Mosquitto (sudo systemctl reload mosquitto)")
    elif any(f["role"] == "broker" for f in manifest["files"]):
        done.notes.append(f"the broker's files are in {Path(source) / BROKER_NAME}; give --broker-dir to put them back")
    return done


# -- db recover -----------------------------------------------------------------------------
@dataclass
class TableRecovery:
    saved: int = 0
    failed_reads: int = 0
    skipped: list[tuple[int, int]] = field(default_factory=list)  # rowid ranges not read [from, to)
    error: str | None = None  # why the table could not be read at all


def _read_rows(src: sqlite3.Connection, table: str, columns: list[str], rowid: bool,
               put: Callable[[list[tuple]], None], note: TableRecovery, say: Say) -> None:
    """Every row of ``table`` that can be read, handed to ``put`` in chunks."""
    cols = ", ".join(f'"{c}"' for c in columns)
    if not rowid:  # WITHOUT ROWID: one pass, as far as it goes
        cur = src.execute(f'SELECT {cols} FROM "{table}"')
        while True:
            try:
                rows = cur.fetchmany(RECOVER_CHUNK_ROWS)
            except sqlite3.DatabaseError as e:
                note.failed_reads += 1
                note.error = f"read stopped after {note.saved} rows: {e}"
                return
            if not rows:
                return
            put(rows)
            note.saved += len(rows)
    try:
        last = src.execute(f'SELECT MAX(rowid) FROM "{table}"').fetchone()[0]
    except sqlite3.DatabaseError:
        last = None
    at, chunk, shown = None, RECOVER_CHUNK_ROWS, time.monotonic()
    while True:
        where, args = ("WHERE rowid >= ?", (at,)) if at is not None else ("", ())
        try:
            rows = src.execute(f'SELECT rowid, {cols} FROM "{table}" {where} ORDER BY rowid LIMIT ?',
                               (*args, chunk)).fetchall()
        except sqlite3.DatabaseError:
            note.failed_reads += 1
            if chunk > 1:
                chunk = max(1, chunk // 2)
                continue
            start = at if at is not None else 1
            if last is not None and start > last:
                return
            found = _next_readable(src, table, start, last)
            if found is None:
                if last is not None:
                    note.skipped.append((start, last + 1))
                else:
                    note.error = f"gave up reading past rowid {start}: the table's end cannot be read"
                return
            note.skipped.append((start, found))
            at, chunk = found, RECOVER_CHUNK_ROWS
            continue
        if not rows:
            return
        put([r[1:] for r in rows])
        note.saved += len(rows)
        at, chunk = rows[-1][0] + 1, min(chunk * 2, RECOVER_CHUNK_ROWS)  # back up to speed after damage
        if time.monotonic() - shown >= PROGRESS_EVERY_S:
            shown = time.monotonic()
            say(f"  {table}: {note.saved:,} rows saved so far")


def _next_readable(src: sqlite3.Connection, table: str, bad: int, last: int | None) -> int | None:
    """The first rowid after ``bad`` (whose read fails) from which reading works again: found
    by jumps that double (up to RECOVER_MAX_SKIP, at most RECOVER_MAX_JUMPS of them), then
    halving back, so no readable row past the damage is skipped. None if none is found."""
    def readable(rowid: int) -> bool:
        try:
            src.execute(f'SELECT * FROM "{table}" WHERE rowid >= ? ORDER BY rowid LIMIT 1', (rowid,)).fetchall()
            return True
        except sqlite3.DatabaseError:
            return False
    lo, step = bad, 1
    for _ in range(RECOVER_MAX_JUMPS):
        hi = lo + step
        if last is not None and hi > last:
            hi = last + 1
        if readable(hi):
            break
        if last is not None and hi > last:
            return None
        lo, step = hi, min(step * 2, RECOVER_MAX_SKIP)
    else:
        return None
    while hi - lo > 1:  # lo fails, hi reads: the first that reads lies in (lo, hi]
        mid = (lo + hi) // 2
        if readable(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _merge_skips(skips: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in skips:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def recover(src_path: Path, dst_path: Path, say: Say) -> dict[str, TableRecovery]:
    """Copy every readable row of the damaged ``src_path`` into the new ``dst_path`` (the
    hub's tables made new, so their indexes are sound); returns what was saved per table.
    Python's sqlite3 has no ``.recover``: this reads table by table, by rowid, halving its
    reads down to one row and then jumping past rows that cannot be read."""
    if dst_path.exists():
        raise FileExistsError(f"{dst_path}: exists; give another --to")
    src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
    dst = connect(dst_path)
    create_tables(dst)
    ours = {r[0] for r in dst.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    try:
        tables = [(r[0], r[1]) for r in src.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    except sqlite3.DatabaseError as e:
        say(f"  the file's list of tables cannot be read ({e}): trying the hub's own tables")
        tables = [(t, None) for t in sorted(ours)]
    results: dict[str, TableRecovery] = {}
    dst.execute("BEGIN")
    for table, sql in tables:
        note = results[table] = TableRecovery()
        if table == "rollup":
            note.error = "derived data: not copied, the hub builds it again from the calls"
            continue
        try:
            src_cols = [r[1] for r in src.execute(f'PRAGMA table_info("{table}")')]
            if not src_cols:
                raise sqlite3.DatabaseError("no columns")
            if table not in ours:
                dst.execute(sql)
            dst_cols = [r[1] for r in dst.execute(f'PRAGMA table_info("{table}")')]
            rowid = not (sql or "").upper().rstrip().endswith("WITHOUT ROWID")
        except sqlite3.DatabaseError as e:
            note.error = f"cannot be read: {e}"
            say(f"  {table}: cannot be read ({e})")
            continue
        columns = [c for c in src_cols if c in dst_cols]
        insert = (f'INSERT OR IGNORE INTO "{table}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) '
                  f'VALUES ({", ".join("?" * len(columns))})')
        _read_rows(src, table, columns, rowid, lambda rows: dst.executemany(insert, rows), note, say)
        note.skipped = _merge_skips(note.skipped)
        lost = "; unreadable rowids " + ", ".join(f"{a}-{b - 1}" for a, b in note.skipped) if note.skipped else ""
        say(f"  {table}: {note.saved:,} rows saved{lost}{'; ' + note.error if note.error else ''}")
    dst.execute("DELETE FROM meta WHERE key = 'rollup'")  # the hub makes the roll-ups again
    dst.execute("COMMIT")
    src.close()
    found = dst.execute("PRAGMA quick_check").fetchone()[0]
    dst.close()
    if found != "ok":
        raise sqlite3.DatabaseError(f"the recovered file {dst_path} fails its own check: {found}")
    return results
