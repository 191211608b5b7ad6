"""The Redis stream store against a real ``redis-server`` (Debian's, installed by scripts/install-system-deps.sh, which
``make test`` runs), started here on a free loopback port without persistence: the store contract, concurrent
updates from two store objects, idempotency keys (issue 18), and two ``lstmkit serve`` processes sharing one stream
(issue 6: "several server processes share the streams"). test_serve_store.py checks the same logic against an
in-process fake."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import numpy as np
import pytest

redis = pytest.importorskip("redis")
pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from lstmkit.serve.process import ServerProcess  # noqa: E402
from lstmkit.serve.store import RedisStore, StreamExists, TooManyStreams, open_store  # noqa: E402
from lstmkit.tasks.sequence.estimators import SequenceClassifier  # noqa: E402

SERVER = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(SERVER is None, reason="redis-server is not installed (scripts/install-system-deps.sh)")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"redis-server did not start on port {port} (exit code {process.poll()}).")
            time.sleep(0.05)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        process.wait(10)


@pytest.fixture
def fresh(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()
    return redis_url


def test_the_store_contract_on_a_real_redis(fresh) -> None:
    store = open_store(fresh)
    assert isinstance(store, RedisStore)
    store.ping()
    store.bind("model-a")
    store.create("s1", max_streams=2)
    with pytest.raises(StreamExists):
        store.create("s1", max_streams=2)
    store.create("s2", max_streams=2)
    with pytest.raises(TooManyStreams):
        store.create("s3", max_streams=2)
    state = {"h": np.arange(6, dtype=np.float32).reshape(2, 1, 3), "c": np.full((2, 1, 3), -1.5, np.float32)}
    record, out = store.update("s1", lambda r: (state, r.observations + 1, "ok"))
    assert out == "ok" and record.observations == 1
    got = open_store(fresh).get("s1")  # another client sees it
    assert got.observations == 1 and all(np.array_equal(got.state[k], state[k]) for k in state)
    store.delete("s1")
    assert store.count() == 1
    from lstmkit.serve.store import StoreError

    with pytest.raises(StoreError):
        open_store(fresh).bind("model-b")  # a store belongs to one model
    store.close()


def test_concurrent_updates_from_two_clients_lose_nothing(fresh) -> None:
    from test_serve_store import increment_concurrently  # the same check as on SQLite and the fake

    stores = [open_store(fresh), open_store(fresh)]
    assert increment_concurrently(stores) >= 100
    for s in stores:
        s.close()


def test_a_keyed_update_is_applied_once_on_a_real_redis(fresh) -> None:
    from test_idempotency import check_update_once  # the same check as on SQLite and the fake

    store = open_store(fresh)
    check_update_once(store)
    store.close()


def test_two_server_processes_share_streams_through_redis(fresh, tmp_path) -> None:
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((40, 8, 2)) + 1).astype(np.float32)
    clf = SequenceClassifier(hidden_size=8, epochs=2, seed=0).fit(X, (X[:, :, 0].mean(1) > 1).astype(int))
    clf.save(tmp_path / "clf")
    servers = [ServerProcess(tmp_path / "clf", "--store", fresh, log=tmp_path / f"s{i}.log") for i in range(2)]
    try:
        for server in servers:
            server.wait_ready()
        clients = [httpx.Client(base_url=s.url, timeout=30.0) for s in servers]
        assert clients[0].post("/v1/streams", json={"stream_id": "shared"}).status_code == 201
        for t, x_t in enumerate(X[0]):  # alternate servers: each observation continues the other's state
            response = clients[t % 2].post("/v1/streams/shared/observations", json={"observation": x_t.tolist()})
            assert response.status_code == 200, response.text
        out = response.json()
        assert out["observations"] == 8 and clients[0].get("/v1/model").json()["streams"] == 1
        np.testing.assert_allclose(out["output"]["probabilities"], clf.predict_proba(X[:1])[0], atol=1e-5)
        servers[1].kill()  # one process dies: the other carries on with every acknowledged observation
        assert clients[0].get("/v1/streams/shared").json()["observations"] == 8
        for c in clients:
            c.close()
    finally:
        for server in servers:
            if server.process.poll() is None:
                log = server.stop()
                assert "Traceback" not in log, log
