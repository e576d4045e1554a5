"""The SQLite database: one file in the user data dir, WAL, schema migrations by version.

Plain stdlib ``sqlite3`` so the GUI and the engine host can both open it cheaply. Each
migration runs once, in order, inside a transaction that also bumps ``PRAGMA user_version``;
a failed migration leaves the database at the previous version.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engines.core import paths
from engines.core.errors import HearthError

# Append only: never edit a migration that has shipped.
MIGRATIONS: list[str] = [
    # 1: chat
    """
    CREATE TABLE conversations (
        id INTEGER PRIMARY KEY,
        title TEXT NOT NULL,
        system_prompt TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        settings_json TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        content TEXT NOT NULL,
        meta_json TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE INDEX messages_by_conversation ON messages(conversation_id, position);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value_json TEXT NOT NULL);
    CREATE TABLE presets (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        value_json TEXT NOT NULL,
        PRIMARY KEY (kind, name)
    );
    """,
    # 2: tune labels (engines/store/labels.py). A label row is one user action (a pairwise
    # judgement, a K-way ranking or a thumb); undo flags it instead of deleting it.
    """
    CREATE TABLE prompt_sets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL
    );
    CREATE TABLE prompts (
        id INTEGER PRIMARY KEY,
        set_id INTEGER NOT NULL REFERENCES prompt_sets(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        prompt_json TEXT NOT NULL,
        meta_json TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE INDEX prompts_by_set ON prompts(set_id, position);
    CREATE TABLE candidates (
        id INTEGER PRIMARY KEY,
        prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
        completion_json TEXT NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        adapter TEXT NOT NULL DEFAULT '',
        sampling_json TEXT NOT NULL DEFAULT '{}',
        seed INTEGER,
        meta_json TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE INDEX candidates_by_prompt ON candidates(prompt_id);
    CREATE TABLE labels (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('pair', 'ranking', 'thumb')),
        prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
        a_id INTEGER REFERENCES candidates(id) ON DELETE CASCADE,
        b_id INTEGER REFERENCES candidates(id) ON DELETE CASCADE,
        outcome TEXT NOT NULL DEFAULT '',
        ranking_json TEXT NOT NULL DEFAULT '[]',
        meta_json TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL,
        undone INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX labels_by_prompt ON labels(prompt_id);
    """,
    # 3: image gallery (engines/store/gallery.py; one row per saved image, its request JSON re-runs it)
    """
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        prompt TEXT NOT NULL DEFAULT '',
        negative_prompt TEXT NOT NULL DEFAULT '',
        model TEXT NOT NULL DEFAULT '',
        mode TEXT NOT NULL DEFAULT 'txt2img',
        seed INTEGER,
        width INTEGER,
        height INTEGER,
        request_json TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE INDEX images_by_created ON images(created);
    """,
    # 4: usage log (engines/store/usage.py): completions the engine host ran outside Hearth's chat
    # (OpenAI-compatible API calls, Explore jobs); chat replies are counted from their messages.
    """
    CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        created REAL NOT NULL,
        model TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        prompt_tokens INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        seconds REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX usage_by_created ON usage(created);
    """,
    # 5: images attached to chat messages (engines/store/chat_images.py keeps the files, named by content)
    """
    CREATE TABLE message_images (
        message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        file TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (message_id, position)
    );
    CREATE INDEX message_images_by_file ON message_images(file);
    """,
]


class DatabaseError(HearthError):
    kind = "database"


WAL_WAIT_S = 10.0


def _enable_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, waiting while another process holds the lock.

    Two Hearths starting at once (or the GUI and its engine host) open a new database together. Switching the
    journal mode needs an exclusive lock, and SQLite answers "database is locked" at once, without using the
    connection's busy timeout, while the other process holds one: so wait here, a little at a time.
    """
    deadline = time.monotonic() + WAL_WAIT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Database:
    """A thread-safe handle (one connection, serialised) on the Hearth database."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else paths.database_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            self._conn.row_factory = sqlite3.Row
            _enable_wal(self._conn)
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self.version  # noqa: B018 - reading the header fails fast on a file that is not a database
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(
                f"The database {self.path} could not be opened: {exc}.",
                path=self.path,
                hint="Move the file aside (Hearth starts a new one) or restore it from a backup.",
            ) from exc
        self._migrate()

    @property
    def version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def _migrate(self) -> None:
        with self._lock:
            current = self.version
            if current > len(MIGRATIONS):
                raise DatabaseError(
                    f"The database {self.path} is from a newer Hearth (schema {current}, this one knows {len(MIGRATIONS)}).",
                    path=self.path, hint="Update Hearth, or point HEARTH_HOME at another folder.",
                )
            for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
                self._conn.execute("BEGIN IMMEDIATE")
                if self.version >= version:  # another connection (or process) upgraded it meanwhile
                    self._conn.execute("COMMIT")
                    continue
                try:
                    for statement in _split_sql(script):
                        self._conn.execute(statement)
                    self._conn.execute(f"PRAGMA user_version = {version}")
                    self._conn.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._conn.execute("ROLLBACK")
                    raise DatabaseError(
                        f"The database {self.path} could not be upgraded to schema {version}: {exc}. It was left at schema {version - 1}.",
                        path=self.path, hint="Report this; your data is unchanged.",
                    ) from exc

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple | dict = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple | dict = ()) -> int:
        """Run one statement in its own transaction; returns lastrowid."""
        with self.transaction() as conn:
            return conn.execute(sql, params).lastrowid

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _split_sql(script: str) -> list[str]:
    # Migrations are plain DDL without semicolons inside strings, so a split is enough.
    return [s.strip() for s in script.split(";") if s.strip()]
