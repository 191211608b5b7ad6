"""The stream stores behind ``lstmkit serve`` (issue 6), in-process: SQLite on a temporary file, and Redis against
``FakeRedis`` below.

FakeRedis is a FAKE: a few dozen lines imitating the handful of redis-py calls RedisStore makes (GET/SET NX, HSET,
HGET, HGETALL, HDEL, EXISTS, DEL, SADD/SREM/SCARD, RPUSH/LLEN/LRANGE/LTRIM, PING, and pipelines with WATCH / MULTI /
EXEC raising WatchError when a watched key changed). It checks RedisStore's logic (keys, encoding, optimistic
retries, forced conflicts), not Redis itself; tests/serve/test_redis.py runs the store and two server processes
against a real redis-server.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import threading
import time

import numpy as np
import pytest

from lstmkit.serve.store import (
    RedisStore,
    SQLiteStore,
    StoreError,
    StreamExists,
    StreamNotFound,
    TooManyStreams,
    open_store,
)

WatchError = pytest.importorskip("redis.exceptions").WatchError  # RedisStore catches redis-py's own exception


class FakeRedis:
    """FAKE in-process Redis (see the module docstring): bytes in, bytes out, one lock, a version per key for WATCH."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}
        self.versions: dict[str, int] = {}
        self.lock = threading.RLock()

    def _touch(self, key: str) -> None:
        self.versions[key] = self.versions.get(key, 0) + 1

    @staticmethod
    def _bytes(value: object) -> bytes:
        return value if isinstance(value, bytes) else str(value).encode()

    def ping(self) -> bool:
        return True

    def get(self, key: str) -> bytes | None:
        with self.lock:
            return self.data.get(key)

    def set(self, key: str, value: object, nx: bool = False) -> bool | None:
        with self.lock:
            if nx and key in self.data:
                return None
            self.data[key] = self._bytes(value)
            self._touch(key)
            return True

    def exists(self, key: str) -> int:
        with self.lock:
            return int(key in self.data)

    def hset(self, key: str, mapping: dict[str, object]) -> int:
        with self.lock:
            fields = self.data.setdefault(key, {})
            new = sum(f.encode() not in fields for f in mapping)
            fields.update({f.encode(): self._bytes(v) for f, v in mapping.items()})
            self._touch(key)
            return new

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        with self.lock:
            return dict(self.data.get(key, {}))

    def hget(self, key: str, field: str) -> bytes | None:
        with self.lock:
            return self.data.get(key, {}).get(self._bytes(field))

    def hdel(self, key: str, *fields: str | bytes) -> int:
        with self.lock:
            values = self.data.get(key, {})
            removed = sum(values.pop(self._bytes(f), None) is not None for f in fields)
            if not values:
                self.data.pop(key, None)  # Redis drops an emptied hash
            self._touch(key)
            return removed

    def rpush(self, key: str, *values: object) -> int:
        with self.lock:
            items = self.data.setdefault(key, [])
            items.extend(self._bytes(v) for v in values)
            self._touch(key)
            return len(items)

    def llen(self, key: str) -> int:
        with self.lock:
            return len(self.data.get(key, []))

    def lrange(self, key: str, start: int, stop: int) -> list[bytes]:
        with self.lock:  # Redis's stop is inclusive, and -1 is the last item
            items = self.data.get(key, [])
            return list(items[start : (None if stop == -1 else stop + 1)])

    def ltrim(self, key: str, start: int, stop: int) -> bool:
        with self.lock:
            kept = self.lrange(key, start, stop)
            if kept:
                self.data[key] = kept
            else:
                self.data.pop(key, None)
            self._touch(key)
            return True

    def delete(self, key: str) -> int:
        with self.lock:
            if key not in self.data:
                return 0
            del self.data[key]
            self._touch(key)
            return 1

    def sadd(self, key: str, member: str) -> int:
        with self.lock:
            members = self.data.setdefault(key, set())
            added = member.encode() not in members
            members.add(member.encode())
            self._touch(key)
            return int(added)

    def srem(self, key: str, member: str) -> int:
        with self.lock:
            members = self.data.get(key, set())
            removed = member.encode() in members
            members.discard(member.encode())
            self._touch(key)
            return int(removed)

    def scard(self, key: str) -> int:
        with self.lock:
            return len(self.data.get(key, set()))

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)


class FakePipeline:
    """FAKE redis-py Pipeline: after ``watch`` commands run at once; after ``multi`` (or without ``watch``) they are
    queued, and ``execute`` runs them atomically, or raises WatchError when a watched key changed since ``watch``."""

    def __init__(self, redis: FakeRedis) -> None:
        self.redis, self.watched, self.queue, self.immediate = redis, {}, [], False

    def __enter__(self) -> FakePipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()

    def reset(self) -> None:
        self.watched, self.queue, self.immediate = {}, [], False

    def watch(self, *keys: str) -> None:
        with self.redis.lock:
            self.watched.update({k: self.redis.versions.get(k, 0) for k in keys})
        self.immediate = True

    def multi(self) -> None:
        self.immediate = False

    def execute(self) -> list[object]:
        with self.redis.lock:
            changed = [k for k, v in self.watched.items() if self.redis.versions.get(k, 0) != v]
            try:
                if changed:
                    raise WatchError(f"watched keys changed: {changed}")
                return [getattr(self.redis, name)(*args, **kwargs) for name, args, kwargs in self.queue]
            finally:
                self.reset()

    def __getattr__(self, name: str):
        command = getattr(self.redis, name)

        def call(*args: object, **kwargs: object) -> object:
            if self.immediate:
                return command(*args, **kwargs)
            self.queue.append((name, args, kwargs))
            return self

        return call


@pytest.fixture(params=["sqlite", "fake-redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(f"sqlite:{tmp_path / 'streams.sqlite3'}")
    else:
        s = RedisStore(client=FakeRedis())
    yield s
    s.close()


def zero_one(n: int = 0) -> dict[str, np.ndarray]:
    return {"h": np.full((2, 1, 3), n, np.float32), "c": np.arange(6, dtype=np.float32).reshape(2, 1, 3) + n}


def test_create_update_reset_delete_and_the_state_round_trips_exactly(store) -> None:
    store.bind("model-a")
    created = store.create("s1", max_streams=2)
    assert created.state == {} and created.observations == 0 and store.count() == 1
    with pytest.raises(StreamExists):
        store.create("s1", max_streams=2)
    store.create("s2", max_streams=2)
    with pytest.raises(TooManyStreams) as too_many:
        store.create("s3", max_streams=2)
    assert (too_many.value.open_streams, too_many.value.limit) == (2, 2)

    record, result = store.update("s1", lambda r: (zero_one(r.observations + 1), r.observations + 1, "out"))
    assert result == "out" and record.observations == 1
    got = store.get("s1")
    assert got.observations == 1 and got.created == created.created and got.updated >= created.updated
    for name, array in zero_one(1).items():
        assert got.state[name].dtype == np.float32 and got.state[name].shape == (2, 1, 3)
        np.testing.assert_array_equal(got.state[name], array)
    store.update("s1", lambda r: ({}, 0, None))  # reset
    assert store.get("s1").state == {} and store.get("s1").observations == 0

    store.delete("s1")
    for operation in (lambda: store.get("s1"), lambda: store.delete("s1"),
                      lambda: store.update("s1", lambda r: ({}, 0, None))):  # fmt: skip
        with pytest.raises(StreamNotFound):
            operation()
    assert store.count() == 1
    store.create("s3", max_streams=2)  # room again


def test_a_failed_step_changes_nothing(store) -> None:
    store.create("s", max_streams=5)
    store.update("s", lambda r: (zero_one(1), 1, None))

    def bad(record):
        raise ValueError("the observation is wrong")

    with pytest.raises(ValueError, match="the observation is wrong"):
        store.update("s", bad)
    assert store.get("s").observations == 1
    np.testing.assert_array_equal(store.get("s").state["h"], zero_one(1)["h"])


def test_a_store_belongs_to_one_model(store) -> None:
    store.bind("a" * 64)
    store.bind("a" * 64)  # the same model again: fine
    with pytest.raises(StoreError, match="holds streams of another model"):
        store.bind("b" * 64)


def increment_concurrently(stores: list, threads: int = 4, each: int = 25) -> int:
    """``threads`` threads, alternating between ``stores``, each increments stream "c" (created here) ``each`` times
    through ``store.update``; checks that no increment was lost and returns how many times a step ran (more than
    the increments when conflicting transactions were retried). Also used by test_redis.py on a real Redis."""
    stores[0].create("c", max_streams=1)
    calls = []

    def increment(record):
        calls.append(1)
        n = record.state["n"][0] if record.state else 0
        time.sleep(0.001)  # widen the window between read and write
        return {"n": np.array([n + 1], np.int64)}, record.observations + 1, None

    def work(store) -> None:
        for _ in range(each):
            store.update("c", increment)

    workers = [threading.Thread(target=work, args=(stores[i % len(stores)],)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    final = stores[0].get("c")
    assert final.observations == threads * each and int(final.state["n"][0]) == threads * each, type(stores[0])
    return len(calls)


def test_concurrent_updates_of_one_stream_lose_nothing(tmp_path) -> None:
    """4 threads x 25 increments of one stream: SQLite through two store objects (two connections per thread, as
    two processes would have), Redis through WATCH / MULTI / EXEC with retries (the fake forces conflicts)."""
    path = f"sqlite:{tmp_path / 's.sqlite3'}"
    fake = FakeRedis()
    for stores in ([open_store(path), open_store(path)], [RedisStore(client=fake), RedisStore(client=fake)]):
        calls = increment_concurrently(stores)
        if isinstance(stores[0], RedisStore):
            assert calls > 100  # conflicts happened and were retried, not lost
        for s in stores:
            s.close()


def test_sqlite_file_holds_safetensors_bytes_not_pickle(tmp_path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path)
    store.create("s", max_streams=1)
    store.update("s", lambda r: (zero_one(2), 1, None))
    store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    (blob,) = db.execute("SELECT state FROM streams WHERE id = 's'").fetchone()
    (size,) = struct.unpack("<Q", blob[:8])  # safetensors: header length, JSON header (dtype, shape), raw data
    header = json.loads(blob[8 : 8 + size])
    assert header["h"]["dtype"] == "F32" and header["h"]["shape"] == [2, 1, 3]
    assert not blob.startswith(b"\x80")  # a pickle would start with its protocol byte


def test_store_errors_are_sentences(tmp_path) -> None:
    with pytest.raises(StoreError, match="does not exist; create it"):
        SQLiteStore(tmp_path / "missing" / "s.sqlite3")
    with pytest.raises(ValueError, match="Unknown store 'mysql://x'"):
        open_store("mysql://x")


def test_the_app_on_a_redis_store_streams_like_the_model_and_refuses_what_cannot_stream(tmp_path) -> None:
    """In-process (starlette's TestClient) on the FAKE Redis: the wiring from the endpoints to RedisStore."""
    from fastapi.testclient import TestClient

    from lstmkit.serve.app import create_app
    from lstmkit.tasks.sequence.estimators import SequenceRegressor

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6, 2)).astype(np.float32)
    reg = SequenceRegressor(hidden_size=6, epochs=1, seed=0).fit(X, X[:, -1, 0])
    reg.save(tmp_path / "reg")
    fake = FakeRedis()
    with TestClient(create_app(tmp_path / "reg", store=RedisStore(client=fake)), raise_server_exceptions=True) as http:
        assert http.get("/readyz").json() == {"status": "ready"}
        assert http.post("/v1/streams", json={"stream_id": "r"}).status_code == 201
        for x_t in X[0, :3]:
            http.post("/v1/streams/r/observations", json={"observation": x_t.tolist()})
        out = http.post("/v1/streams/r/observations", json={"observations": X[0, 3:].tolist()}).json()
        assert out["observations"] == 6 and http.get("/v1/model").json()["streams"] == 1
    np.testing.assert_allclose(out["output"]["prediction"], reg.predict(X[:1])[0], atol=1e-5)
    assert b"lstmkit:stream:r" in {k.encode() for k in fake.data} and fake.scard("lstmkit:streams") == 1

    from redis.exceptions import ConnectionError as RedisConnectionError

    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to redis:6379. Connection refused.")

    app = create_app(tmp_path / "reg", store=RedisStore(client=fake))
    fake.ping = fake.hgetall = fake.pipeline = unreachable  # Redis goes down after start-up
    with TestClient(app) as http:
        response = http.get("/readyz")
        assert response.status_code == 503 and "does not answer" in response.json()["error"]
        response = http.post("/v1/streams/r/observations", json={"observation": [0.0, 0.0]})
        assert response.status_code == 503 and "The Redis store did not answer" in response.json()["error"]

    bidirectional = SequenceRegressor(hidden_size=4, epochs=1, bidirectional=True).fit(X, X[:, -1, 0])
    bidirectional.save(tmp_path / "bi")
    with TestClient(create_app(tmp_path / "bi", store=RedisStore(client=FakeRedis()))) as http:
        assert http.get("/v1/model").json()["streaming"] is False
        response = http.post("/v1/streams")
        assert response.status_code == 400 and "it is bidirectional" in response.json()["error"]
        assert http.post("/v1/predict", json={"sequences": X[:2].tolist()}).status_code == 200
