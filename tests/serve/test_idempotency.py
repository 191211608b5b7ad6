"""Idempotent observations (issue 18, "nothing lost, nothing raw"): an observation sent with an ``Idempotency-Key``
header is applied once however often it is sent, because the store commits the key and the answer together with
the stream's new state.

- The store contract, on SQLite and on the FAKE Redis of test_serve_store.py (test_redis.py runs the same check on a
  real redis-server): the step runs once, a retry gets the stored answer, another body under the key is refused, a
  failed step remembers nothing, keys belong to one stream, reset keeps them, delete forgets them, and only the
  latest ``remembered_keys`` are kept.
- The app in-process (starlette's TestClient) on both backends: a retry answers the same bytes and changes nothing.
- A real server process killed (SIGKILL) after the commit of a keyed observation and before its answer left: the
  restarted server answers the client's retry from the store, and the observation counts once.
"""

from __future__ import annotations

import signal
import sqlite3

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402
from test_serve_store import FakeRedis  # noqa: E402

from lstmkit import Predictor  # noqa: E402
from lstmkit.serve.app import create_app  # noqa: E402
from lstmkit.serve.process import ServerProcess  # noqa: E402
from lstmkit.serve.store import KeyReused, RedisStore, SQLiteStore, StreamNotFound, open_store  # noqa: E402
from lstmkit.tasks.sequence.estimators import SequenceRegressor  # noqa: E402

OBSERVATIONS = "/v1/streams/s/observations"


def check_update_once(store) -> None:
    """The idempotency contract of a store (``update_once``); also run by test_redis.py on a real Redis."""
    store.create("s", max_streams=10)
    steps = []

    def step(record):
        steps.append(record.stream_id)
        n = record.observations + 1
        return {"n": np.array([n], np.int64)}, n, f"out{n}"

    def answer(record, result):
        return {"observations": record.observations, "result": result, "numbers": [0.1, 1e-300, -2.5]}

    first = store.update_once("s", "k1", "body-a", step, answer)
    assert first == ({"observations": 1, "result": "out1", "numbers": [0.1, 1e-300, -2.5]}, False)
    assert store.update_once("s", "k1", "body-a", step, answer) == (first[0], True)  # the stored answer, exactly
    assert steps == ["s"] and store.get("s").observations == 1 and int(store.get("s").state["n"][0]) == 1
    with pytest.raises(KeyReused):  # the same key with another body
        store.update_once("s", "k1", "body-b", step, answer)
    assert store.get("s").observations == 1

    def bad(record):
        raise ValueError("the observation is wrong")

    with pytest.raises(ValueError, match="the observation is wrong"):  # nothing committed, the key not remembered
        store.update_once("s", "k2", "body-a", bad, answer)
    assert store.update_once("s", "k2", "body-a", step, answer)[0]["observations"] == 2
    with pytest.raises(StreamNotFound):
        store.update_once("nope", "k1", "body-a", step, answer)

    store.create("t", max_streams=10)  # keys belong to one stream: "k1" on "t" is another observation
    assert store.update_once("t", "k1", "body-a", step, answer) == (first[0], False)

    store.update("s", lambda r: ({}, 0, None))  # reset: a retry of an observation from before answers as then
    assert store.update_once("s", "k1", "body-a", step, answer) == (first[0], True)
    assert store.get("s").observations == 0

    store.remembered_keys = 3  # only the latest 3 keys of a stream are kept
    for i in range(4):
        store.update_once("s", f"e{i}", "body-a", step, answer)
    assert store.get("s").observations == 4
    assert store.update_once("s", "e3", "body-a", step, answer)[1] is True
    assert store.update_once("s", "e1", "body-a", step, answer)[1] is True
    assert store.update_once("s", "e0", "body-a", step, answer)[1] is False  # forgotten: applied again
    assert store.update_once("s", "k1", "body-b", step, answer)[1] is False  # forgotten: no longer refused
    assert store.get("s").observations == 6 and remembered(store, "s") == 3 and remembered(store, "t") == 1

    store.delete("s")  # delete forgets the stream's keys: a new stream of that id starts afresh
    assert remembered(store, "s") == 0
    store.create("s", max_streams=10)
    assert store.update_once("s", "e3", "body-a", step, answer) == ({**first[0], "result": "out1"}, False)
    assert store.get("s").observations == 1


def remembered(store, stream_id: str) -> int:
    """The keys the store holds for a stream (its own bookkeeping: SQLite rows, Redis hash fields and list)."""
    if isinstance(store, SQLiteStore):
        with sqlite3.connect(store.path) as db:
            return db.execute("SELECT count(*) FROM answers WHERE stream = ?", (stream_id,)).fetchone()[0]
    keys, order = store._answers_key(stream_id), store._order_key(stream_id)
    n = len(store.client.hgetall(keys))
    assert n == len(store.client.lrange(order, 0, -1)), "the hash of answers and the list of keys disagree"
    return n


@pytest.fixture(params=["sqlite", "fake-redis"])
def store(request, tmp_path):
    s = open_store(f"sqlite:{tmp_path / 'streams.sqlite3'}") if request.param == "sqlite" else RedisStore(
        client=FakeRedis())  # fmt: skip
    yield s
    s.close()


def test_the_store_applies_a_keyed_update_once(store) -> None:
    check_update_once(store)


# ---- the app --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("idempotency")
    X = np.random.default_rng(0).standard_normal((40, 6, 2)).astype(np.float32)
    SequenceRegressor(hidden_size=6, epochs=1, seed=0).fit(X, X[:, -1, 0]).save(root / "reg")
    return root / "reg"


def error(response, status: int, *phrases: str) -> str:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and body["error"].endswith(".") and "\n" not in body["error"], body
    for phrase in phrases:
        assert phrase in body["error"], (phrase, body)
    return body["error"]


@pytest.mark.parametrize("backend", ["sqlite", "fake-redis"])
def test_a_retried_observation_is_applied_once_and_answered_alike(run, tmp_path, backend) -> None:
    store = open_store(f"sqlite:{tmp_path / 's.sqlite3'}") if backend == "sqlite" else RedisStore(client=FakeRedis())
    body, key = {"observation": [0.5, -1.0]}, {"Idempotency-Key": "obs-1"}
    with TestClient(create_app(run, store=store)) as http:
        assert http.post("/v1/streams", json={"stream_id": "s"}).status_code == 201
        first = http.post(OBSERVATIONS, json=body, headers=key)
        again = http.post(OBSERVATIONS, json=body, headers=key)
        assert first.status_code == again.status_code == 200, (first.text, again.text)
        assert again.content == first.content and first.json()["observations"] == 1
        assert again.headers.get("Idempotent-Replayed") == "true" and "Idempotent-Replayed" not in first.headers
        assert http.get("/v1/streams/s").json()["observations"] == 1
        expected = Predictor.load(run).stream("offline", np.array(body["observation"], np.float32))
        np.testing.assert_allclose(first.json()["output"]["prediction"], expected, atol=1e-6)

        error(http.post(OBSERVATIONS, json={"observation": [0.6, -1.0]}, headers=key), 422,
              "Idempotency-Key 'obs-1'", "another body", "new key")  # fmt: skip
        assert http.get("/v1/streams/s").json()["observations"] == 1

        # a refusal is not remembered (it changed nothing): the key then serves the corrected body
        error(http.post(OBSERVATIONS, json={"observation": [0.5]}, headers={"Idempotency-Key": "obs-2"}), 422,
              "has 1 numbers")  # fmt: skip
        fixed = http.post(OBSERVATIONS, json={"observations": [[0.5, -1.0]]}, headers={"Idempotency-Key": "obs-2"})
        assert fixed.status_code == 200 and fixed.json()["observations"] == 2
        for _ in range(2):  # without a key every request is a new observation, as before
            assert http.post(OBSERVATIONS, json=body).status_code == 200
        assert http.get("/v1/streams/s").json()["observations"] == 4

        error(http.post(OBSERVATIONS, json=body, headers={"Idempotency-Key": "x" * 256}), 422, "Idempotency-Key",
              "255")  # fmt: skip
        error(http.post(OBSERVATIONS, json=body, headers={"Idempotency-Key": ""}), 422, "Idempotency-Key")
        error(http.post("/v1/streams/nope/observations", json=body, headers=key), 404, "No stream 'nope'")
        assert http.get("/v1/streams/s").json()["observations"] == 4


# ---- a real server, killed between the commit and the answer -----------------------------------------------------
# Run in the dying server before the CLI starts: every answer to an observation kills the process (SIGKILL, no
# shutdown) at the moment its status line would leave, after the handler has committed the new state.
DIE_BEFORE_ANSWERING = """
import os, signal
import lstmkit.serve.app as served

_create_app = served.create_app


class _DieBeforeAnswering:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        async def send_or_die(message):
            if message["type"] == "http.response.start" and scope["path"].endswith("/observations"):
                os.kill(os.getpid(), signal.SIGKILL)
            await send(message)

        await self.app(scope, receive, send_or_die)


def create_app(*args, **kwargs):
    app = _create_app(*args, **kwargs)
    app.add_middleware(_DieBeforeAnswering)
    return app


served.create_app = create_app
"""


def test_a_server_killed_after_the_commit_applies_the_retry_once(run, tmp_path) -> None:
    store = ["--store", f"sqlite:{tmp_path / 'streams.sqlite3'}"]
    body, key = {"observation": [0.25, 2.0]}, {"Idempotency-Key": "b7c1e0d2-retry-me"}
    dying = ServerProcess(run, *store, log=tmp_path / "dying.log", preamble=DIE_BEFORE_ANSWERING)
    try:
        dying.wait_ready()
        with httpx.Client(base_url=dying.url, timeout=30.0) as http:
            assert http.post("/v1/streams", json={"stream_id": "s"}).status_code == 201
            with pytest.raises(httpx.TransportError):  # the client never gets an answer: it will retry
                http.post(OBSERVATIONS, json=body, headers=key)
        assert dying.process.wait(30) == -signal.SIGKILL, dying.log.read_text()
    finally:
        dying.stop()

    server = ServerProcess(run, *store, log=tmp_path / "restarted.log").wait_ready()
    try:
        with httpx.Client(base_url=server.url, timeout=30.0) as http:
            assert http.get("/v1/streams/s").json()["observations"] == 1  # it was committed before the kill
            retry = http.post(OBSERVATIONS, json=body, headers=key)
            assert retry.status_code == 200 and retry.headers.get("Idempotent-Replayed") == "true", retry.text
            assert retry.json()["observations"] == 1
            assert http.get("/v1/streams/s").json()["observations"] == 1  # applied exactly once
            nxt = http.post(OBSERVATIONS, json=body, headers={"Idempotency-Key": "the-next-one"}).json()
        offline = Predictor.load(run)
        once = offline.stream("x", np.array(body["observation"], np.float32))
        twice = offline.stream("x", np.array(body["observation"], np.float32))
        np.testing.assert_allclose(retry.json()["output"]["prediction"], once, atol=1e-5)
        assert nxt["observations"] == 2
        np.testing.assert_allclose(nxt["output"]["prediction"], twice, atol=1e-5)
    finally:
        log = server.stop()
        assert "Traceback" not in log, log
