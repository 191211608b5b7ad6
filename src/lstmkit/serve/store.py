"""Where the server keeps each stream's recurrent state between requests: SQLite (one file) or Redis.

A stream is a record: its id, its state (numpy arrays by name, ``{"h": (L, 1, S), "c": (L, 1, H)}``; empty means
the zero state of a stream that has seen nothing since it was opened or reset), how many observations it has seen,
and when it was created and last updated. State is stored as safetensors bytes (each array's dtype and shape in its
header, raw little-endian data after it), never pickle.

Every change is a read-modify-write under a per-stream lock, committed before the call returns:

- SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock, so two processes (or threads) feeding one stream run
  one after the other; WAL mode with ``synchronous=FULL`` makes the commit durable before the server answers.
- Redis: ``WATCH`` on the stream's key, then ``MULTI``/``EXEC``; a concurrent change aborts the ``EXEC`` and the step
  is recomputed from the new state. So the step function may run more than once: it must not have side effects.

The store also remembers which model its states belong to (:meth:`bind`), so a server started on another model's
store refuses to start instead of feeding it states of the wrong shape.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
from safetensors.numpy import load as _load_arrays
from safetensors.numpy import save as _save_arrays

__all__ = [
    "RedisStore", "SQLiteStore", "StoreError", "StreamExists", "StreamNotFound", "StreamRecord", "StreamStore",
    "TooManyStreams", "open_store",
]  # fmt: skip

T = TypeVar("T")
State = dict[str, np.ndarray]
# a step gets the stream as stored and returns its new state, its new observation count and what the caller wants
Step = Callable[["StreamRecord"], tuple[State, int, T]]


class StoreError(Exception):
    """The store cannot do what was asked: unreachable, another model's, or too busy."""


class StreamNotFound(KeyError):
    pass


class StreamExists(Exception):
    pass


class TooManyStreams(Exception):
    def __init__(self, open_streams: int, limit: int) -> None:
        super().__init__(open_streams, limit)
        self.open_streams, self.limit = open_streams, limit


@dataclass(frozen=True)
class StreamRecord:
    stream_id: str
    state: State  # empty: the zero state
    observations: int  # since the stream was opened or last reset
    created: float  # seconds since the epoch
    updated: float


def encode_state(state: State) -> bytes:
    return _save_arrays({name: np.ascontiguousarray(a) for name, a in state.items()})


def decode_state(data: bytes) -> State:
    return dict(_load_arrays(data))


class StreamStore(Protocol):
    kind: str  # "sqlite" or "redis", for messages (a URL may hold a password)

    def ping(self) -> None: ...
    def bind(self, model_id: str) -> None: ...
    def create(self, stream_id: str, max_streams: int) -> StreamRecord: ...
    def get(self, stream_id: str) -> StreamRecord: ...
    def update(self, stream_id: str, step: Step[T]) -> tuple[StreamRecord, T]: ...
    def delete(self, stream_id: str) -> None: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


def open_store(url: str) -> StreamStore:
    """``sqlite:PATH`` or ``redis://HOST:PORT/DB`` (``rediss://`` for TLS)."""
    if url.startswith("sqlite:"):
        return SQLiteStore(url.removeprefix("sqlite:"))
    if url.startswith(("redis://", "rediss://")):
        return RedisStore(url)
    raise ValueError(f"Unknown store {url!r}; give sqlite:PATH (one file) or a redis://HOST:PORT/DB URL.")


def _bind_message(kind: str, found: str, model_id: str) -> str:
    return (
        f"The {kind} store holds streams of another model (fingerprint {found[:12]}, this run's is {model_id[:12]}); "
        "give this run its own --store, or delete the old store."
    )


# ---- SQLite ---------------------------------------------------------------------------------------------------------
class SQLiteStore:
    """One SQLite file in WAL mode; one connection per thread (uvicorn runs request handlers on a thread pool)."""

    kind = "sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise StoreError(f"The folder of the SQLite store {self.path} does not exist; create it or pick another.")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # guards the list of connections
        self._writer = threading.Lock()  # one write transaction at a time in this process
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS streams (id TEXT PRIMARY KEY, state BLOB NOT NULL, "
                "observations INTEGER NOT NULL, created REAL NOT NULL, updated REAL NOT NULL)"
            )

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                # autocommit mode (isolation_level=None): transactions are the explicit BEGIN IMMEDIATE below;
                # timeout: wait up to 30 s for another process's write lock instead of failing at once
                db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")  # a commit is on disk before the server answers
            except sqlite3.Error as exc:
                raise StoreError(f"The SQLite store {self.path} cannot be opened: {exc}.") from None
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    @contextmanager
    def _failures(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:  # "database is locked" after the 30 s wait, a full disk, a broken file
            raise StoreError(f"The SQLite store {self.path} failed: {exc}.") from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # this process's writers queue on a lock first: waiting on SQLite's own lock is a busy handler that sleeps
        # and polls (1 ms growing to 100 ms), unfair under load (benchmarks/serve_load.py, 16 streams: p99 540 ms
        # and maxima of 1-3 s with it alone, against p99 under 120 ms with this lock). Other processes still wait
        # on SQLite's lock.
        with self._writer, self._failures():
            db = self._db()
            db.execute("BEGIN IMMEDIATE")  # the write lock now, not at the first write: no lost updates
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def ping(self) -> None:
        with self._failures():
            self._db().execute("SELECT count(*) FROM meta").fetchone()

    def bind(self, model_id: str) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('model', ?)", (model_id,))
            (found,) = db.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
        if found != model_id:
            raise StoreError(_bind_message(self.kind, found, model_id))

    def create(self, stream_id: str, max_streams: int) -> StreamRecord:
        now = time.time()
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM streams WHERE id = ?", (stream_id,)).fetchone():
                raise StreamExists(stream_id)
            (n,) = db.execute("SELECT count(*) FROM streams").fetchone()
            if n >= max_streams:
                raise TooManyStreams(n, max_streams)
            db.execute("INSERT INTO streams VALUES (?, ?, 0, ?, ?)", (stream_id, encode_state({}), now, now))
        return StreamRecord(stream_id, {}, 0, now, now)

    def _read(self, db: sqlite3.Connection, stream_id: str) -> StreamRecord:
        row = db.execute(
            "SELECT state, observations, created, updated FROM streams WHERE id = ?", (stream_id,)
        ).fetchone()
        if row is None:
            raise StreamNotFound(stream_id)
        return StreamRecord(stream_id, decode_state(row[0]), row[1], row[2], row[3])

    def get(self, stream_id: str) -> StreamRecord:
        with self._failures():
            return self._read(self._db(), stream_id)

    def update(self, stream_id: str, step: Step[T]) -> tuple[StreamRecord, T]:
        with self._transaction() as db:
            record = self._read(db, stream_id)
            state, observations, result = step(record)
            now = time.time()
            db.execute(
                "UPDATE streams SET state = ?, observations = ?, updated = ? WHERE id = ?",
                (encode_state(state), observations, now, stream_id),
            )
        return StreamRecord(stream_id, state, observations, record.created, now), result

    def delete(self, stream_id: str) -> None:
        with self._transaction() as db:
            if db.execute("DELETE FROM streams WHERE id = ?", (stream_id,)).rowcount == 0:
                raise StreamNotFound(stream_id)

    def count(self) -> int:
        with self._failures():
            return self._db().execute("SELECT count(*) FROM streams").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()


# ---- Redis ----------------------------------------------------------------------------------------------------------
class RedisStore:
    """Streams as Redis hashes ``{prefix}stream:{id}`` (fields state, observations, created, updated), their ids in
    the set ``{prefix}streams`` (its size is the stream count), the model fingerprint at ``{prefix}model``.

    Several server processes share one Redis; each change is WATCH / MULTI / EXEC on the keys it reads, retried when
    another process changed them first. ``client`` is any object with redis-py's interface (tests pass a fake)."""

    kind = "redis"
    MAX_ATTEMPTS = 100  # optimistic retries before a busy stream is reported

    def __init__(self, url: str = "redis://localhost:6379/0", *, client: Any = None, prefix: str = "lstmkit:") -> None:
        if client is None:
            try:
                import redis
            except ImportError:
                raise StoreError("A Redis store needs the redis package: pip install 'lstmkit[serve]'.") from None
            client = redis.Redis.from_url(url, socket_timeout=10)
        self.client, self.prefix = client, prefix
        self._ids = f"{prefix}streams"

    def _key(self, stream_id: str) -> str:
        return f"{self.prefix}stream:{stream_id}"

    @staticmethod
    def _watch_error() -> type[Exception]:
        from redis.exceptions import WatchError

        return WatchError

    @contextmanager
    def _failures(self) -> Iterator[None]:
        from redis.exceptions import ConnectionError, TimeoutError

        try:
            yield
        except (ConnectionError, TimeoutError) as exc:
            raise StoreError(f"The Redis store did not answer ({exc}).") from None

    def _record(self, stream_id: str, fields: dict[bytes, bytes]) -> StreamRecord:
        if not fields:
            raise StreamNotFound(stream_id)
        return StreamRecord(stream_id, decode_state(fields[b"state"]), int(fields[b"observations"]),
                            float(fields[b"created"]), float(fields[b"updated"]))  # fmt: skip

    def ping(self) -> None:
        with self._failures():
            self.client.ping()

    def bind(self, model_id: str) -> None:
        key = f"{self.prefix}model"
        with self._failures():
            self.client.set(key, model_id, nx=True)
            found = self.client.get(key).decode()
        if found != model_id:
            raise StoreError(_bind_message(self.kind, found, model_id))

    def create(self, stream_id: str, max_streams: int) -> StreamRecord:
        key, now = self._key(stream_id), time.time()
        with self._failures(), self.client.pipeline() as pipe:
            for _ in range(self.MAX_ATTEMPTS):
                try:
                    pipe.watch(self._ids, key)  # immediate mode until multi()
                    if pipe.exists(key):
                        raise StreamExists(stream_id)
                    n = pipe.scard(self._ids)
                    if n >= max_streams:
                        raise TooManyStreams(n, max_streams)
                    pipe.multi()
                    pipe.hset(key, mapping={"state": encode_state({}), "observations": 0, "created": repr(now),
                                            "updated": repr(now)})  # fmt: skip
                    pipe.sadd(self._ids, stream_id)
                    pipe.execute()
                    return StreamRecord(stream_id, {}, 0, now, now)
                except self._watch_error():
                    continue
        raise StoreError(f"The stream store is too busy to open stream {stream_id!r}; try again.")

    def get(self, stream_id: str) -> StreamRecord:
        with self._failures():
            return self._record(stream_id, self.client.hgetall(self._key(stream_id)))

    def update(self, stream_id: str, step: Step[T]) -> tuple[StreamRecord, T]:
        key = self._key(stream_id)
        with self._failures(), self.client.pipeline() as pipe:
            for _ in range(self.MAX_ATTEMPTS):
                try:
                    pipe.watch(key)
                    record = self._record(stream_id, pipe.hgetall(key))
                    state, observations, result = step(record)  # may run again if another process wins the race
                    now = time.time()
                    pipe.multi()
                    pipe.hset(key, mapping={"state": encode_state(state), "observations": observations,
                                            "updated": repr(now)})  # fmt: skip
                    pipe.execute()
                    return StreamRecord(stream_id, state, observations, record.created, now), result
                except self._watch_error():
                    continue
        raise StoreError(f"Stream {stream_id!r} is too busy (other requests kept changing it); try again.")

    def delete(self, stream_id: str) -> None:
        with self._failures(), self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(stream_id))
            pipe.srem(self._ids, stream_id)
            deleted, _ = pipe.execute()
        if not deleted:
            raise StreamNotFound(stream_id)

    def count(self) -> int:
        with self._failures():
            return int(self.client.scard(self._ids))

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()
