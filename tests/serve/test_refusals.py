"""What ``lstmkit serve`` refuses, and how it says so (issue 18, "nothing lost, nothing raw"), in-process:

- booleans and numbers in quotes are not numbers: 422 naming the element (ints still are numbers, and a language
  model's text observations still are text);
- an observations body with neither "observation" nor "observations" is told to send one, not "not both";
- ``lstmkit serve RUN`` of a run it cannot serve (a long-lag experiment, a kind nobody registered) is one sentence
  on stderr naming the kind found and the kinds served, exit code 2, no traceback.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

import lstmkit  # noqa: E402
from lstmkit import runs as saved_runs  # noqa: E402
from lstmkit.cli import main  # noqa: E402
from lstmkit.serve.app import SERVED_KINDS, create_app  # noqa: E402
from lstmkit.tasks.sequence.estimators import SequenceRegressor  # noqa: E402
from lstmkit.tasks.text.language import LanguageModel  # noqa: E402

TEXT = "".join(f"{w} the {x}.\n" for w in ("ANNA", "BEN") for x in ("sea", "sky")) * 30


@pytest.fixture(scope="module")
def apps(tmp_path_factory):
    root = tmp_path_factory.mktemp("refusals")
    X = np.random.default_rng(0).standard_normal((40, 6, 2)).astype(np.float32)
    SequenceRegressor(hidden_size=6, epochs=1, seed=0).fit(X, X[:, -1, 0]).save(root / "reg")
    X1 = X[:, :, :1]
    SequenceRegressor(hidden_size=4, epochs=1, seed=0).fit(X1, X1[:, -1, 0]).save(root / "reg1")
    LanguageModel(hidden_size=16, embedding_size=8, batch_size=4, bptt=10, epochs=1, progress=False).fit(
        TEXT).save(root / "lm")  # fmt: skip
    apps = {name: create_app(root / name) for name in ("reg", "reg1", "lm")}
    clients = {name: TestClient(app).__enter__() for name, app in apps.items()}
    for http in clients.values():
        assert http.post("/v1/streams", json={"stream_id": "s"}).status_code == 201
    yield clients
    for http in clients.values():
        http.__exit__(None, None, None)


def refused(response, *phrases: str) -> str:
    assert response.status_code == 422, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and body["error"].endswith(".") and "\n" not in body["error"], body
    for phrase in phrases:
        assert phrase in body["error"], (phrase, body)
    return body["error"]


def test_booleans_and_numbers_in_quotes_are_not_numbers(apps) -> None:
    reg, reg1, lm = apps["reg"], apps["reg1"], apps["lm"]
    post = "/v1/streams/s/observations"
    cases = [
        (reg, post, {"observation": [True, 1]}, "observation[0] is true, not a number", "send a number"),
        (reg, post, {"observation": ["1", 1]}, 'observation[0] is "1"', "without quotes"),
        (reg, post, {"observation": [1, False]}, "observation[1] is false"),
        (reg, post, {"observations": [[1, 2], [1.5, True]]}, "observations[1][1] is true"),
        (reg1, post, {"observation": True}, "observation is true"),
        (reg1, post, {"observation": [True]}, "observation[0] is true"),
        (reg1, post, {"observations": [0.5, False]}, "observations[1] is false"),
        (lm, post, {"observation": True}, "observation is true, not a text piece"),
        (lm, post, {"observations": ["the", False]}, "observations[1] is false, not a text piece"),
        (lm, post, {"observation": [True]}, "observation is a list, not a text piece"),
        (lm, post, {"observation": "x" * 10_001}, "Invalid observation", "10000 characters"),
        (reg, "/v1/predict", {"sequences": [[[1, 2], [True, 2]]]}, "sequences[0][1][0] is true"),
        (reg, "/v1/predict", {"sequences": [[[1, "2.5"]]]}, 'sequences[0][0][1] is "2.5"'),
    ]
    for http, path, body, *phrases in cases:
        message = refused(http.post(path, json=body), *phrases)
        assert "valid number" not in message, message  # pydantic's words are replaced by the server's
    for http in (reg, reg1):
        assert http.get("/v1/streams/s").json()["observations"] == 0  # the refusals changed nothing

    # ints are numbers; a language model's observations are text
    assert reg.post(post, json={"observation": [1, 2]}).json()["observations"] == 1
    assert reg.post(post, json={"observations": [[1, 2.5], [0, -3]]}).json()["observations"] == 3
    assert reg1.post(post, json={"observation": 2}).json()["observations"] == 1
    assert reg.post("/v1/predict", json={"sequences": [[[1, 2], [3, 4]]]}).status_code == 200
    assert lm.get("/v1/streams/s").json()["observations"] == 0
    assert lm.post(post, json={"observation": "ANNA "}).json()["observations"] == 1
    assert lm.post(post, json={"observations": ["the", " s"]}).json()["observations"] == 3


def test_neither_observation_nor_observations_is_told_to_send_one(apps) -> None:
    http, post = apps["reg"], "/v1/streams/s/observations"
    for body in ({}, {"observation": None}, {"observations": None}):
        message = refused(http.post(post, json=body), 'send one of "observation"', '"observations"')
        assert "not both" not in message, message
    refused(http.post(post, json={"observation": [1, 2], "observations": [[1, 2]]}), "not both")


def test_serve_refuses_a_run_of_a_kind_it_cannot_serve_in_one_sentence(tmp_path, capsys) -> None:
    from lstmkit.tasks.long_lag.experiment import ExperimentConfig, SequenceModel, model_config

    cfg = ExperimentConfig.from_dict({"task": "adding", "length": 10, "hidden_size": 4})
    model_config = model_config(cfg)
    saved_runs.save_run(tmp_path / "long-lag", "long_lag", {"experiment": cfg.to_dict(),
                        "model": model_config.to_dict()}, SequenceModel(model_config))  # fmt: skip
    assert type(lstmkit.load(tmp_path / "long-lag")).__name__ == "LongLagRun"  # a real, loadable long-lag run
    (tmp_path / "martian").mkdir()
    (tmp_path / "martian" / "config.json").write_text(
        json.dumps({"kind": "martian", "lstmkit_version": lstmkit.__version__, "config": {}}))  # fmt: skip
    for name, kind in (("long-lag", "long_lag"), ("martian", "martian")):
        for extra in ([], ["--write-openapi", str(tmp_path / "openapi.json")]):
            assert main(["serve", str(tmp_path / name), *extra]) == 2, (name, extra)
            message = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
            assert "Traceback" not in message and "Error" not in message, message
            assert f"kind '{kind}'" in message and all(k in message for k in SERVED_KINDS), message
            assert message.count(".") >= 1 and "lstmkit serve" in message, message
        assert not (tmp_path / name / "streams.sqlite3").exists()  # refused before a store was opened
