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

Idempotency keys (:meth:`update_once`): an update can come with a key (the ``Idempotency-Key`` header of an
observation) and a fingerprint of the request. The store commits the key, the fingerprint and the answer the update
produced in the same transaction as the stream's new state, so a key is remembered if and only if its update was
applied, even when the server dies before answering. The same key again on that stream gets the stored answer and
changes nothing; the same key with another fingerprint raises :class:`KeyReused`. A stream remembers its latest
``remembered_keys`` keys (1,000 by default; older ones are forgotten, and sending one of them again applies it
again). Keys belong to one stream: reset keeps them (a retry of an observation sent before the reset answers what
it answered then and does not feed the reset stream), delete forgets them with the stream.

The store also remembers which model its states belong to (:meth:`bind`), so a server started on another model's
store refuses to start instead of feeding it states of the wrong shape.
"""

from __future__ import annotations

import json
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
    "REMEMBERED_KEYS", "KeyReused", "RedisStore", "SQLiteStore", "StoreError", "StreamExists", "StreamNotFound",
    "StreamRecord", "StreamStore", "TooManyStreams", "open_store",
]  # fmt: skip

T = TypeVar("T")
State = dict[str, np.ndarray]
# a step gets the stream as stored and returns its new state, its new observation count and what the caller wants
Step = Callable[["StreamRecord"], tuple[State, int, T]]
# an update remembered under a key: the stream as committed and the step's result -> the answer kept with the key
# (JSON: dicts, lists, strings, numbers, booleans, None)
Answer = Callable[["StreamRecord", T], Any]
REMEMBERED_KEYS = 1000  # idempotency keys a stream remembers, its latest


class StoreError(Exception):
    """The store cannot do what was asked: unreachable, another model's, or too busy."""


class StreamNotFound(KeyError):
    pass


class StreamExists(Exception):
    pass


class KeyReused(Exception):
    """An idempotency key came again on its stream with another request (another fingerprint)."""

    def __init__(self, stream_id: str, key: str) -> None:
        super().__init__(stream_id, key)
        self.stream_id, self.key = stream_id, key


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
    def update_once(self, stream_id: str, key: str, fingerprint: str, step: Step[T],
                    answer: Answer[T]) -> tuple[Any, bool]: ...  # fmt: skip
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
    """One SQLite file in WAL mode; one connection per thread (uvicorn runs request handlers on a thread pool).

    Tables: ``meta`` (the model fingerprint), ``streams`` (one row per stream) and ``answers`` (one row per
    remembered idempotency key: stream, key, fingerprint, answer as JSON; their rowids give their order)."""

    kind = "sqlite"

    def __init__(self, path: str | Path, *, remembered_keys: int = REMEMBERED_KEYS) -> None:
        self.path, self.remembered_keys = Path(path), remembered_keys
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
            db.execute(
                "CREATE TABLE IF NOT EXISTS answers (stream TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT "
                "NULL, answer TEXT NOT NULL, PRIMARY KEY (stream, key))"
            )
            db.execute("CREATE INDEX IF NOT EXISTS answers_by_stream ON answers (stream)")  # (stream, rowid) order

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

    @staticmethod
    def _read(db: sqlite3.Connection, stream_id: str) -> StreamRecord:
        row = db.execute(
            "SELECT state, observations, created, updated FROM streams WHERE id = ?", (stream_id,)
        ).fetchone()
        if row is None:
            raise StreamNotFound(stream_id)
        return StreamRecord(stream_id, decode_state(row[0]), row[1], row[2], row[3])

    def get(self, stream_id: str) -> StreamRecord:
        with self._failures():
            return self._read(self._db(), stream_id)

    @staticmethod
    def _step(db: sqlite3.Connection, stream_id: str, step: Step[T]) -> tuple[StreamRecord, T]:
        record = SQLiteStore._read(db, stream_id)
        state, observations, result = step(record)
        now = time.time()
        db.execute(
            "UPDATE streams SET state = ?, observations = ?, updated = ? WHERE id = ?",
            (encode_state(state), observations, now, stream_id),
        )
        return StreamRecord(stream_id, state, observations, record.created, now), result

    def update(self, stream_id: str, step: Step[T]) -> tuple[StreamRecord, T]:
        with self._transaction() as db:
            return self._step(db, stream_id, step)

    def update_once(self, stream_id: str, key: str, fingerprint: str, step: Step[T],
                    answer: Answer[T]) -> tuple[Any, bool]:  # fmt: skip
        """:meth:`update` remembered under ``key`` (see the module docstring): the first time, step, commit the new
        state together with the key, ``fingerprint`` and ``answer(record, result)``, and return ``(answer, False)``;
        later, with the same fingerprint, return ``(the stored answer, True)`` and change nothing.

        Raises:
            KeyReused: the key was remembered with another fingerprint.
            StreamNotFound: no such stream.
        """
        with self._transaction() as db:
            row = db.execute(
                "SELECT fingerprint, answer FROM answers WHERE stream = ? AND key = ?", (stream_id, key)
            ).fetchone()
            if row is not None:
                if row[0] != fingerprint:
                    raise KeyReused(stream_id, key)
                return json.loads(row[1]), True
            reply = answer(*self._step(db, stream_id, step))
            db.execute("INSERT INTO answers VALUES (?, ?, ?, ?)", (stream_id, key, fingerprint, json.dumps(reply)))
            db.execute(  # forget all but the latest remembered_keys keys of this stream
                "DELETE FROM answers WHERE stream = ?1 AND rowid <= (SELECT rowid FROM answers WHERE stream = ?1 "
                "ORDER BY rowid DESC LIMIT 1 OFFSET ?2)",
                (stream_id, self.remembered_keys),
            )
        return reply, False

    def delete(self, stream_id: str) -> None:
        with self._transaction() as db:
            if db.execute("DELETE FROM streams WHERE id = ?", (stream_id,)).rowcount == 0:
                raise StreamNotFound(stream_id)
            db.execute("DELETE FROM answers WHERE stream = ?", (stream_id,))

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
    the set ``{prefix}streams`` (its size is the stream count), the model fingerprint at ``{prefix}model``. A
    stream's remembered idempotency keys: the hash ``{prefix}answers:{id}`` (key -> JSON of its fingerprint and
    answer) and the list ``{prefix}keys:{id}`` (the keys, oldest first).

    Several server processes share one Redis; each change is WATCH / MULTI / EXEC on the keys it reads, retried when
    another process changed them first. ``client`` is any object with redis-py's interface (tests pass a fake)."""

    kind = "redis"
    MAX_ATTEMPTS = 100  # optimistic retries before a busy stream is reported

    def __init__(self, url: str = "redis://localhost:6379/0", *, client: Any = None, prefix: str = "lstmkit:",
                 remembered_keys: int = REMEMBERED_KEYS) -> None:  # fmt: skip
        if client is None:
            try:
                import redis
            except ImportError:
                raise StoreError("A Redis store needs the redis package: pip install 'lstmkit[serve]'.") from None
            client = redis.Redis.from_url(url, socket_timeout=10)
        self.client, self.prefix, self.remembered_keys = client, prefix, remembered_keys
        self._ids = f"{prefix}streams"

    def _key(self, stream_id: str) -> str:
        return f"{self.prefix}stream:{stream_id}"

    def _answers_key(self, stream_id: str) -> str:
        return f"{self.prefix}answers:{stream_id}"

    def _order_key(self, stream_id: str) -> str:
        return f"{self.prefix}keys:{stream_id}"

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
        return self._update(stream_id, step, None)

    def update_once(self, stream_id: str, key: str, fingerprint: str, step: Step[T],
                    answer: Answer[T]) -> tuple[Any, bool]:  # fmt: skip
        """As :meth:`SQLiteStore.update_once`: the key, its fingerprint and answer are written in the ``MULTI`` that
        writes the new state, so both or neither are committed."""
        return self._update(stream_id, step, (key, fingerprint, answer))

    def _update(self, stream_id: str, step: Step[T], once: tuple[str, str, Answer[T]] | None) -> Any:
        key, answers, order = self._key(stream_id), self._answers_key(stream_id), self._order_key(stream_id)
        with self._failures(), self.client.pipeline() as pipe:
            for _ in range(self.MAX_ATTEMPTS):
                try:
                    pipe.watch(*((key, answers, order) if once else (key,)))  # immediate mode until multi()
                    if once:
                        stored = pipe.hget(answers, once[0])
                        if stored is not None:
                            remembered = json.loads(stored)
                            if remembered["fingerprint"] != once[1]:
                                raise KeyReused(stream_id, once[0])
                            return remembered["answer"], True
                    record = self._record(stream_id, pipe.hgetall(key))
                    state, observations, result = step(record)  # may run again if another process wins the race
                    now = time.time()
                    record = StreamRecord(stream_id, state, observations, record.created, now)
                    if once:
                        reply = once[2](record, result)
                        forget = max(0, int(pipe.llen(order)) + 1 - self.remembered_keys)
                        oldest = pipe.lrange(order, 0, forget - 1) if forget else []
                    pipe.multi()
                    pipe.hset(key, mapping={"state": encode_state(state), "observations": observations,
                                            "updated": repr(now)})  # fmt: skip
                    if once:
                        pipe.hset(answers, mapping={once[0]: json.dumps({"fingerprint": once[1], "answer": reply})})
                        pipe.rpush(order, once[0])
                        if forget:
                            pipe.ltrim(order, forget, -1)
                            pipe.hdel(answers, *oldest)
                    pipe.execute()
                    return (reply, False) if once else (record, result)
                except self._watch_error():
                    continue
        raise StoreError(f"Stream {stream_id!r} is too busy (other requests kept changing it); try again.")

    def delete(self, stream_id: str) -> None:
        with self._failures(), self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(stream_id))
            pipe.delete(self._answers_key(stream_id))
            pipe.delete(self._order_key(stream_id))
            pipe.srem(self._ids, stream_id)
            deleted, *_ = pipe.execute()
        if not deleted:
            raise StreamNotFound(stream_id)

    def count(self) -> int:
        with self._failures():
            return int(self.client.scard(self._ids))

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()
