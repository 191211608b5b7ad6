"""``lstmkit serve`` (issue 6) as a user runs it: real uvicorn servers (``python -m lstmkit serve``) on loopback ports,
tiny runs trained here, requests over HTTP with httpx.

Checked: every endpoint's happy path; every 4xx case answers one sentence as ``{"error": ...}`` and nothing answers
500; stream outputs equal the offline Predictor / model on the same observations (torch and onnxruntime); a server
killed with SIGKILL between two observations restarts on its SQLite file and continues exactly; two server processes
feeding one stream concurrently lose no update; server-sent events concatenate to the non-streamed text; the API key;
the OpenAPI document equals docs/openapi.json; the CLI's one-sentence refusals.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import lstmkit  # noqa: E402
from lstmkit.cli import main  # noqa: E402
from lstmkit.serve.process import ServerProcess  # noqa: E402
from lstmkit.tasks.sequence.estimators import SequenceClassifier, SequenceRegressor  # noqa: E402
from lstmkit.tasks.text.language import LanguageModel  # noqa: E402
from lstmkit.tasks.timeseries.anomaly.detector import AnomalyDetector  # noqa: E402
from lstmkit.tasks.timeseries.forecasting import Forecaster  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "docs" / "openapi.json"
KEY = "test-key-3f9a"
TEXT = "".join(f"{w} the {x}.\n" for w in ("ANNA", "BEN") for x in ("sea", "sky")) * 30


def seasonal(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 10 + np.sin(2 * np.pi * np.arange(n) / 12) + 0.05 * rng.normal(size=n)


def series(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = (rng.standard_normal((n, 10, 2)) * 2 + 3).astype(np.float32)
    return X, (X[:, :, 0].mean(1) > 3).astype(int)


class Server(ServerProcess):
    """A served run (``lstmkit.serve.process.ServerProcess``) whose clients fail on any 5xx, and whose log must hold
    no traceback when it stops."""

    def __init__(self, run: str | Path, *args: str, log: Path, env: dict[str, str] | None = None) -> None:
        super().__init__(run, *args, log=log, env=env)

    def wait_ready(self, timeout: float = 60.0) -> Server:
        try:
            super().wait_ready(timeout)
        except RuntimeError as e:
            raise AssertionError(str(e)) from None
        return self

    def client(self, key: str | None = None) -> httpx.Client:
        """An HTTP client for this server; any 5xx answer fails the test at once."""

        def no_server_error(response: httpx.Response) -> None:
            assert response.status_code < 500, (response.request.method, str(response.request.url), response.text)

        return httpx.Client(base_url=self.url, timeout=30.0, headers={"X-API-Key": key} if key else {},
                            event_hooks={"response": [no_server_error]})  # fmt: skip

    def stop(self) -> str:
        log = super().stop()
        assert "Traceback" not in log, log  # no 500 was logged
        return log


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("serve-runs")
    X, y = series()
    clf = SequenceClassifier(hidden_size=12, num_layers=2, epochs=3, seed=0).fit(X, y)
    clf.save(root / "clf")
    reg = SequenceRegressor(hidden_size=8, epochs=2, seed=0).fit(X, X[:, -1, 0])
    reg.save(root / "reg")
    lm = LanguageModel(hidden_size=16, embedding_size=8, batch_size=4, bptt=10, epochs=1, progress=False).fit(TEXT)
    lm.save(root / "lm")
    readings = seasonal(200, 0)
    frame = pd.DataFrame({"time": pd.date_range("2000-01-01", periods=200, freq="MS"), "y": readings})
    fc = Forecaster(target="y", horizon=3, season=12, epochs=3, hidden_size=8).fit(frame)
    fc.save(root / "fc")
    ad = AnomalyDetector(method="reconstruction", input_window=8, epochs=3, hidden_size=8).fit(readings)
    ad.save(root / "ad")
    return {"root": root, "clf": clf, "reg": reg, "lm": lm, "fc": fc, "ad": ad}


@pytest.fixture(scope="module")
def servers(runs):
    """Started together (each imports torch; overlapping the start-ups saves time), stopped at the end."""
    root = runs["root"]
    started = {
        "clf": Server(root / "clf", "--max-streams", "4", "--max-body-bytes", "65536", log=root / "clf.log"),
        "reg": Server(root / "reg", "--runtime", "onnxruntime", "--store", f"sqlite:{root / 'reg.sqlite3'}",
                      log=root / "reg.log"),
        "lm": Server(root / "lm", "--api-key-env", "LSTMKIT_TEST_KEY", "--runtime", "lstmkit", log=root / "lm.log",
                     env={"LSTMKIT_TEST_KEY": KEY}),
        "fc": Server(root / "fc", log=root / "fc.log"),
        "ad": Server(root / "ad", log=root / "ad.log"),
    }  # fmt: skip
    try:
        yield {name: server.wait_ready() for name, server in started.items()}
    finally:
        for server in started.values():
            server.stop()


def is_error(response: httpx.Response, status: int, *phrases: str) -> None:
    """A 4xx with exactly ``{"error": one sentence}`` holding each phrase."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and body["error"].endswith("."), body
    assert "Traceback" not in body["error"] and "\n" not in body["error"], body
    for phrase in phrases:
        assert phrase in body["error"], (phrase, body)


# ---- health, model, OpenAPI -----------------------------------------------------------------------------------------
def test_health_model_and_the_committed_openapi_document(servers) -> None:
    with servers["clf"].client() as http:
        assert http.get("/healthz").json() == {"status": "alive"}
        assert http.get("/readyz").json() == {"status": "ready"}
        info = http.get("/v1/model").json()
        assert info["kind"] == "sequence_classifier" and info["lstmkit_version"] == lstmkit.__version__
        assert info["classes"] == [0, 1] and info["max_streams"] == 4 and info["streaming"] is True
        served = http.get("/openapi.json").json()
    assert served == json.loads(OPENAPI.read_text()), (
        "docs/openapi.json is stale: regenerate it with `lstmkit serve RUN_DIR --write-openapi docs/openapi.json`"
    )
    with servers["lm"].client(KEY) as http:  # the document does not depend on the kind of run
        assert http.get("/openapi.json").json() == served


# ---- batch prediction -----------------------------------------------------------------------------------------------
def test_predict_a_ragged_batch_equals_the_model(runs, servers) -> None:
    X, _ = series(3, seed=5)
    batch = [X[0], X[1, :4], X[2, :7]]  # ragged
    with servers["clf"].client() as http:
        body = http.post("/v1/predict", json={"sequences": [x.tolist() for x in batch]}).json()
    clf = runs["clf"]
    np.testing.assert_allclose(body["probabilities"], clf.predict_proba(batch), atol=1e-6)
    assert body["labels"] == clf.predict(batch).tolist() and body["classes"] == [0, 1]
    with servers["reg"].client() as http:
        body = http.post("/v1/predict", json={"sequences": [x.tolist() for x in batch]}).json()
    assert body["kind"] == "sequence_regressor" and set(body) == {"kind", "predictions"}
    np.testing.assert_allclose(body["predictions"], runs["reg"].predict(batch), atol=1e-5)


# ---- streams --------------------------------------------------------------------------------------------------------
def test_streams_equal_the_offline_predictor(runs, servers) -> None:
    X, _ = series(2, seed=7)
    offline = lstmkit.Predictor.load(runs["root"] / "clf")
    with servers["clf"].client() as http:
        assert http.post("/v1/streams", json={"stream_id": "a"}).status_code == 201
        b = http.post("/v1/streams").json()["stream_id"]  # an id chosen by the server
        for t in range(4):  # interleaved, one observation per call
            out_a = http.post("/v1/streams/a/observations", json={"observation": X[0, t].tolist()}).json()
            offline.stream("a", X[0, t])
            http.post(f"/v1/streams/{b}/observations", json={"observation": X[1, t].tolist()})
        out_a = http.post("/v1/streams/a/observations", json={"observations": X[0, 4:].tolist()}).json()
        out_b = http.post(f"/v1/streams/{b}/observations", json={"observations": X[1, 4:].tolist()}).json()
        for x_t in X[0, 4:]:
            expected = offline.stream("a", x_t)
        np.testing.assert_allclose(out_a["output"]["probabilities"], expected, atol=1e-6)
        np.testing.assert_allclose(out_b["output"]["probabilities"], runs["clf"].predict_proba(X[1:])[0], atol=1e-5)
        assert out_a["observations"] == 10 and out_a["output"]["label"] in (0, 1)
        info = http.get("/v1/streams/a").json()
        assert info["observations"] == 10 and info["updated"] >= info["created"]

        assert http.post("/v1/streams/a/reset").json()["observations"] == 0  # the zero state: the same answers again
        again = http.post("/v1/streams/a/observations", json={"observations": X[0].tolist()}).json()
        np.testing.assert_allclose(again["output"]["probabilities"], expected, atol=1e-6)
        for stream in ("a", b):
            assert http.delete(f"/v1/streams/{stream}").status_code == 204
        is_error(http.get("/v1/streams/a"), 404, "No stream 'a'")

    with servers["reg"].client() as http:  # the onnxruntime runtime
        http.post("/v1/streams", json={"stream_id": "r"})
        out = http.post("/v1/streams/r/observations", json={"observations": X[0].tolist()}).json()
    np.testing.assert_allclose(out["output"]["prediction"], runs["reg"].predict(X[:1])[0], atol=1e-5)


def test_every_mistake_gets_a_4xx_and_one_sentence(servers) -> None:
    ok_step = [1.0, 2.0]
    with servers["clf"].client() as http:
        http.post("/v1/streams", json={"stream_id": "e"})
        post = http.post

        def post_raw(path: str, content: bytes) -> httpx.Response:
            return http.post(path, content=content, headers={"Content-Type": "application/json"})

        is_error(post("/v1/predict", json={"sequences": [[[1.0, 2.0, 3.0]]]}), 422, "sequences[0][0] has 3 numbers",
                 "takes 2 per step")  # fmt: skip
        is_error(post_raw("/v1/predict", b'{"sequences": [[[1.0, NaN]]]}'), 422, "sequences[0][0][1]", "finite")
        is_error(post_raw("/v1/predict", b'{"sequences": [[[1.0, Infinity]]]}'), 422, "finite")
        is_error(post("/v1/predict", json={"sequences": []}), 422, "Invalid sequences", "at least 1")
        is_error(post("/v1/predict", json={"sequences": [[ok_step] * 10_001]}), 413, "limit of 65,536 bytes")
        is_error(post("/v1/predict", json={"sequences": [[[1.0, "a"]]]}), 422, "sequences[0][0][1]")
        is_error(post("/v1/predict", json={"series": []}), 422)
        is_error(post("/v1/predict", content=b'{"sequences": [[[1.0, 2.0]]]}'), 422, "Content-Type: application/json")
        is_error(post_raw("/v1/predict", b"{not json"), 422, "not valid JSON")
        is_error(post("/v1/generate", json={"prompt": "ANNA"}), 400, "holds a sequence_classifier run",
                 "/v1/generate needs a language model")  # fmt: skip

        is_error(post("/v1/streams/nope/observations", json={"observation": ok_step}), 404, "No stream 'nope'")
        is_error(post("/v1/streams/nope/reset"), 404, "No stream 'nope'")
        is_error(http.delete("/v1/streams/nope"), 404)
        is_error(post("/v1/streams/e/observations", json={"observation": [1.0]}), 422, "has 1 numbers")
        is_error(post_raw("/v1/streams/e/observations", b'{"observation": [1.0, NaN]}'), 422, "finite")
        is_error(post("/v1/streams/e/observations", json={"observation": "text"}), 422, "got text")
        is_error(post("/v1/streams/e/observations", json={"observation": ok_step, "observations": [ok_step]}), 422,
                 "either")  # fmt: skip
        is_error(post("/v1/streams/e/observations", json={"observations": [ok_step] * 1001}), 422, "at most 1000")
        is_error(post("/v1/streams", json={"stream_id": "e"}), 409, "exists already")
        is_error(post("/v1/streams", json={"stream_id": "no spaces"}), 422, "stream_id")
        for i in range(3):  # the limit is 4 and "e" is open
            assert post("/v1/streams", json={"stream_id": f"f{i}"}).status_code == 201
        is_error(post("/v1/streams"), 429, "Too many streams: 4 open, the limit is 4")
        assert http.get("/v1/streams/e").json()["observations"] == 0  # the refused observations left no trace
        for stream in ("e", "f0", "f1", "f2"):
            http.delete(f"/v1/streams/{stream}")

        is_error(http.get("/v1/nothing"), 404, "No endpoint GET /v1/nothing")
        is_error(http.put("/v1/predict"), 405, "PUT is not allowed")
        is_error(post("/v1/predict", content=b"[" * 70_000), 413)  # by Content-Length

        def chunked():  # no Content-Length: counted as it arrives
            for _ in range(100):
                yield b"[" * 1000

        is_error(post("/v1/predict", content=chunked()), 413, "limit")

    with servers["lm"].client(KEY) as http:
        is_error(http.post("/v1/predict", json={"sequences": [[[1.0]]]}), 400, "holds a language_model run")
        is_error(http.post("/v1/generate", json={"max_tokens": 5000}), 422, "max_tokens", "2000")
        is_error(http.post("/v1/generate", json={"prompt": "ANNA~"}), 422, "never saw", "'~'")
        is_error(http.post("/v1/generate", json={"prompt": "A", "temperature": 0}), 422, "temperature")
        is_error(http.post("/v1/generate", json={"prompt": "x" * 10_001}), 422, "prompt", "10000")


def test_a_killed_server_restarts_on_its_store_and_two_processes_share_it(runs, tmp_path) -> None:
    X, _ = series(1, seed=11)
    store = ["--store", f"sqlite:{tmp_path / 'streams.sqlite3'}"]
    first = Server(runs["root"] / "clf", *store, log=tmp_path / "first.log").wait_ready()
    with first.client() as http:
        http.post("/v1/streams", json={"stream_id": "d"})
        for x_t in X[0, :6]:
            assert http.post("/v1/streams/d/observations", json={"observation": x_t.tolist()}).status_code == 200
    first.kill()  # SIGKILL: no shutdown hook runs; what was acknowledged must be on disk

    second = Server(runs["root"] / "clf", *store, log=tmp_path / "second.log")
    third = Server(runs["root"] / "clf", *store, log=tmp_path / "third.log")
    try:
        second.wait_ready(), third.wait_ready()
        with second.client() as http:
            assert http.get("/v1/streams/d").json()["observations"] == 6
            out = http.post("/v1/streams/d/observations", json={"observations": X[0, 6:].tolist()}).json()
        np.testing.assert_allclose(out["output"]["probabilities"], runs["clf"].predict_proba(X)[0], atol=1e-5)

        # two processes, two threads each, 10 observations per thread, all on one stream: none may be lost. Every
        # observation is the same vector, so the answer does not depend on the order they were applied in.
        x = X[0, 0].tolist()
        with second.client() as http:
            http.post("/v1/streams", json={"stream_id": "c"})
        statuses = []

        def feed(server: Server) -> None:
            with server.client() as http:
                statuses.extend(http.post("/v1/streams/c/observations", json={"observation": x}).status_code
                                for _ in range(10))  # fmt: skip

        threads = [threading.Thread(target=feed, args=(s,)) for s in (second, third, second, third)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert statuses == [200] * 40
        with third.client() as http:
            assert http.get("/v1/streams/c").json()["observations"] == 40
            out = http.post("/v1/streams/c/observations", json={"observation": x}).json()
        same_x_41_times = np.tile(X[0, :1], (41, 1))[None]  # (1, 41, F)
        np.testing.assert_allclose(out["output"]["probabilities"], runs["clf"].predict_proba(same_x_41_times)[0],
                                   atol=1e-5)  # fmt: skip
    finally:
        second.stop()
        third.stop()


# ---- language model: generation, server-sent events, streams, API key ------------------------------------------------
def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_generation_streamed_and_whole_agree_with_the_model(runs, servers) -> None:
    request = {"prompt": "ANNA the", "max_tokens": 40, "temperature": 0.8, "top_k": 8, "seed": 3}
    with servers["lm"].client(KEY) as http:
        whole = http.post("/v1/generate", json=request).json()["text"]
        streamed = http.post("/v1/generate", json={**request, "stream": True})
        by_accept = http.post("/v1/generate", json=request, headers={"Accept": "text/event-stream"})
    assert whole == runs["lm"].generate("ANNA the", 40, temperature=0.8, top_k=8, seed=3) and len(whole) > 0
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = sse_events(streamed.text)
    assert [name for name, _ in events] == ["piece"] * (len(events) - 1) + ["done"]
    assert "".join(data["text"] for _, data in events[:-1]) == whole
    assert events[-1][1] == {"pieces": len(events) - 1} and len(events) > 2
    assert sse_events(by_accept.text) == events


def test_language_model_streams_and_the_api_key(runs, servers) -> None:
    server = servers["lm"]
    with server.client() as http:  # no key
        assert http.get("/healthz").status_code == 200 and http.get("/readyz").status_code == 200
        is_error(http.get("/v1/model"), 401, "X-API-Key")
        is_error(http.post("/v1/streams"), 401)
    with server.client("wrong") as http:
        is_error(http.post("/v1/generate", json={"prompt": "A"}), 401, "Missing or wrong API key")
    offline = lstmkit.Predictor.load(runs["lm"])
    with server.client(KEY) as http:
        assert http.get("/v1/model").json()["kind"] == "language_model"
        http.post("/v1/streams", json={"stream_id": "t"})
        http.post("/v1/streams/t/observations", json={"observation": "ANNA "})
        out = http.post("/v1/streams/t/observations", json={"observations": ["the", " s"]}).json()
        is_error(http.post("/v1/streams/t/observations", json={"observation": [1.0]}), 422, "text piece")
        is_error(http.post("/v1/streams/t/observations", json={"observation": "~"}), 422, "never saw")
        http.delete("/v1/streams/t")
    offline.stream("t", "ANNA ")
    offline.stream("t", "the")
    expected = offline.stream("t", " s")
    np.testing.assert_allclose(out["output"]["probabilities"], expected, atol=1e-6)
    assert out["observations"] == 3 and len(out["output"]["top"]) == 5
    assert out["output"]["top"][0]["probability"] == pytest.approx(float(expected.max()), abs=1e-6)


def test_forecaster_and_anomaly_streams_answer_each_reading(runs, servers) -> None:
    fc, ad = runs["fc"], runs["ad"]
    readings = seasonal(40, 3)
    with servers["fc"].client() as http:
        info = http.get("/v1/model").json()
        assert info["kind"] == "forecaster" and info["horizon"] == 3 and info["streaming"] is True
        http.post("/v1/streams", json={"stream_id": "f"})
        first = http.post("/v1/streams/f/observations", json={"observation": float(readings[0])}).json()
        assert "forecast" not in first["output"] and first["output"]["quantiles"] == [0.1, 0.5, 0.9]
        rest = [float(v) for v in readings[1:30]]
        out = http.post("/v1/streams/f/observations", json={"observations": rest}).json()
        is_error(http.post("/v1/streams/f/observations", json={"observation": [1.0, 2.0]}), 422, "one reading")
        is_error(http.post("/v1/predict", json={"sequences": [[[1.0]]]}), 400, "/v1/streams")
    frame = pd.DataFrame({"time": pd.date_range("2000-01-01", periods=30, freq="MS"), "y": readings[:30]})
    expected = fc.predict(frame)[["q0.1", "q0.5", "q0.9"]].to_numpy()
    np.testing.assert_allclose(out["output"]["forecast"], expected, rtol=1e-5)

    readings[25] += 4.0  # an outlier
    with servers["ad"].client() as http:
        assert http.get("/v1/model").json()["delay"] == ad.delay == 7
        http.post("/v1/streams", json={"stream_id": "a"})
        outs = [http.post("/v1/streams/a/observations", json={"observation": float(v)}).json()["output"]
                for v in readings]  # fmt: skip
    assert outs[0] == {} and outs[ad.delay] == {"step": 0, "score": outs[ad.delay]["score"],
                                                "anomaly": outs[ad.delay]["anomaly"]}  # fmt: skip
    scores = ad.score(readings)
    for out in outs[ad.delay :]:
        assert out["score"] == pytest.approx(scores[out["step"]], rel=1e-4, abs=1e-5)
    assert outs[25 + ad.delay]["anomaly"] is True


# ---- the command line (in-process) ----------------------------------------------------------------------------------
def test_cli_writes_the_openapi_document_and_refuses_in_one_sentence(runs, tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "openapi.json"
    assert main(["serve", str(runs["root"] / "reg"), "--write-openapi", str(out)]) == 0
    assert json.loads(out.read_text()) == json.loads(OPENAPI.read_text())
    capsys.readouterr()

    clf_store = f"sqlite:{tmp_path / 'clf.sqlite3'}"
    assert main(["serve", str(runs["root"] / "clf"), "--store", clf_store, "--write-openapi", str(out)]) == 0
    cases = [
        (["--store", clf_store], "holds streams of another model"),  # the LM on the classifier's store
        (["--store", "mysql://db"], "Unknown store 'mysql://db'"),
        (["--runtime", "tf"], "Unknown runtime 'tf'"),
        (["--api-key-env", "LSTMKIT_UNSET_KEY"], "LSTMKIT_UNSET_KEY is empty or unset"),
        (["--max-streams", "0"], "max_streams must be at least 1"),
    ]
    monkeypatch.delenv("LSTMKIT_UNSET_KEY", raising=False)
    for args, phrase in cases:
        assert main(["serve", str(runs["root"] / "lm"), *args]) == 2, args
        message = capsys.readouterr().err
        assert phrase in message and "Traceback" not in message, (args, message)

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fastapi" else real(name, *a))
    assert main(["serve", str(runs["root"] / "lm")]) == 2
    assert "pip install 'lstmkit[serve]'" in capsys.readouterr().err
