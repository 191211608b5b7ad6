"""Fuzzing ``lstmkit serve`` with schemathesis: requests generated from the OpenAPI document the running server
serves (equal to docs/openapi.json, which test_serve.py checks), sent over HTTP to real uvicorn servers.

Servers: a sequence classifier (torch), a language model, a forecaster and an anomaly detector (reconstruction:
the stream state with the most parts), tiny runs trained here. For every operation,
``MAX_EXAMPLES`` cases that follow the schema (positive) and ``MAX_EXAMPLES`` that break it (negative; operations
with no parameters and no body have none), with Hypothesis derandomized (the same cases every run) and no example
database. Operations on ``/v1/streams/{stream_id}`` are fuzzed twice: with generated ids (almost always unknown:
404) and with the id of a stream that exists (re-opened before each case), so that the bodies reach the model.

Checks on every response (schemathesis's own):

- ``not_a_server_error``: no 5xx. The point of the module: any input the server cannot serve is a 4xx with one
  sentence, never a 500.
- ``status_code_conformance``: the status is one the document lists for the operation.
- ``content_type_conformance``, ``response_headers_conformance``: the media type and headers are as documented.
- ``response_schema_conformance``: the body validates against the documented schema of that status (so a 422 from
  a path check must carry ``{"error": ...}`` as documented, not FastAPI's default shape).
- ``negative_data_rejection``: a request that breaks the schema gets a 4xx.

Left out: ``positive_data_acceptance`` (a request that follows the schema must get a 2xx). The document cannot say
everything the server checks: the number of features per step, the characters a language model knows, whether a
stream exists, the kind of run an endpoint needs (``/v1/predict`` on a language model is a 400). Those are
legitimate 4xx answers to schema-valid requests. ``max_response_time`` is left out too (a shared 2-core machine).
Stateful (link-following) tests are not run: the document declares no links.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from lstmkit.tasks.sequence.estimators import SequenceClassifier  # noqa: E402
from lstmkit.tasks.text.language import LanguageModel  # noqa: E402
from lstmkit.tasks.timeseries.anomaly.detector import AnomalyDetector  # noqa: E402
from lstmkit.tasks.timeseries.forecasting import Forecaster  # noqa: E402

MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]  # fmt: skip
LIVE = "fuzz-live"  # a stream that exists when the case is sent
DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
OPERATIONS = [(method.upper(), path) for path, methods in DOCUMENT["paths"].items() for method in methods]
TEXT = "".join(f"{w} the {x}.\n" for w in ("ANNA", "BEN") for x in ("sea", "sky")) * 30
CASES: dict[str, int] = {}
KINDS = ("clf", "lm", "fc", "ad")  # classifier, language model, forecaster, anomaly detector
SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"


def load_script():
    """benchmarks/serve_load.py (its Server class starts ``python -m lstmkit serve``); loaded by path."""
    if "serve_load" not in sys.modules:
        spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules["serve_load"] = module  # before exec: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules["serve_load"]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """A classifier, a language model, a forecaster and an anomaly detector, each on its own server, with the schema
    each one serves."""
    serve_load = load_script()
    root = tmp_path_factory.mktemp("fuzz-runs")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 8, 2)).astype(np.float32)
    SequenceClassifier(hidden_size=8, epochs=1, seed=0, progress=False).fit(X, (X[:, :, 0].mean(1) > 0)).save(
        root / "clf"
    )
    LanguageModel(hidden_size=8, embedding_size=4, batch_size=4, bptt=10, epochs=1, progress=False).fit(TEXT).save(
        root / "lm"
    )
    readings = np.sin(np.arange(200) * 2 * np.pi / 12) + 0.1 * rng.standard_normal(200)
    frame = pd.DataFrame({"time": pd.date_range("2000-01-01", periods=200, freq="MS"), "y": readings})
    Forecaster(target="y", horizon=3, season=12, epochs=1, hidden_size=4).fit(frame).save(root / "fc")
    AnomalyDetector(method="reconstruction", input_window=6, epochs=1, hidden_size=4).fit(readings).save(root / "ad")
    started = {name: serve_load.Server(root / name, "--store", f"sqlite:{root / name}.sqlite3",
                                       log=root / f"{name}.log") for name in KINDS}  # fmt: skip
    try:
        for server in started.values():
            server.wait_ready()
        yield {name: (server, schemathesis.openapi.from_url(f"{server.url}/openapi.json"))
               for name, server in started.items()}  # fmt: skip
    finally:
        logs = {name: server.stop() for name, server in started.items()}
        print("fuzz cases sent:", json.dumps(CASES, indent=1))
    for name, log in logs.items():
        assert "Traceback" not in log, f"the {name} server logged a traceback:\n{log}"


def fuzz(server, schema, method: str, path: str, live: bool) -> int:
    """Run the operation's positive and negative cases against ``server``; return how many were sent."""
    operation = schema[path][method]
    fixed = {"stream_id": LIVE} if live else None
    has_body = "requestBody" in DOCUMENT["paths"][path][method.lower()]
    has_input = has_body or ("{" in path and not live)  # something a negative case can break
    sent = 0
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            if mode is schemathesis.GenerationMode.NEGATIVE and not has_input:
                continue

            @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed))
            @settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                      phases=[Phase.explicit, Phase.generate, Phase.shrink],
                      suppress_health_check=list(HealthCheck))  # fmt: skip
            def one(case) -> None:
                nonlocal sent
                if live:
                    http.post("/v1/streams", json={"stream_id": LIVE})  # 201, or 409 when it is open already
                sent += 1
                case.call_and_validate(base_url=server.url, checks=CHECKS)

            one()
    return sent


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_generated_request_gets_a_5xx_or_breaks_the_schema(servers, kind: str, method: str, path: str) -> None:
    server, schema = servers[kind]
    for live in (False, True) if "{stream_id}" in path else (False,):
        sent = fuzz(server, schema, method, path, live)
        CASES[f"{kind} {method} {path}{' (open stream)' if live else ''}"] = sent
        assert sent > 0


def test_regression_a_tiny_temperature_is_greedy_not_a_500(servers) -> None:
    """Found by this module: ``"temperature": 5e-324`` (valid: > 0) made logits / T overflow to inf, softmax give
    nan and ``torch.multinomial`` raise, a 500. The logits are now shifted before the division: the likeliest token."""
    server, _ = servers["lm"]
    request = {"prompt": "ANNA", "max_tokens": 30, "seed": 0}
    with httpx.Client(base_url=server.url, timeout=30.0) as http:
        tiny = http.post("/v1/generate", json={**request, "temperature": 5e-324})
        streamed = http.post("/v1/generate", json={**request, "temperature": 5e-324, "stream": True})
        greedy = http.post("/v1/generate", json={**request, "greedy": True})
    assert tiny.status_code == 200 and streamed.status_code == 200, (tiny.text, streamed.text)
    assert tiny.json()["text"] == greedy.json()["text"]
    assert '"pieces": 30' in streamed.text and "event: error" not in streamed.text
