"""The HTTP API over a :class:`lstmkit.Predictor`: batch prediction, text generation and stateful streams.

    app = create_app("runs/gun", ServeSettings(store="sqlite:/var/lib/lstmkit/gun.sqlite3"))
    uvicorn.run(app, host="127.0.0.1", port=8000)

Endpoints (JSON; errors are ``{"error": "<one sentence>"}`` with a 4xx status):

    GET    /healthz                          the process is alive
    GET    /readyz                           the model is loaded and the store answers (503 otherwise)
    GET    /v1/model                         Predictor.info() and the lstmkit version
    POST   /v1/predict                       classifier / regressor: {"sequences": [[[x, ...], ...], ...]} (ragged)
    POST   /v1/generate                      language model: text, or server-sent events with "stream": true
    POST   /v1/streams                       open a stream (optional "stream_id")
    GET    /v1/streams/{id}                  its observation count and times
    POST   /v1/streams/{id}/observations     {"observation": x} or {"observations": [x, ...]}: the output after the last
    POST   /v1/streams/{id}/reset            back to the zero state
    DELETE /v1/streams/{id}                  forget it

A stream's state lives in the store (``store.py``), not in this process: each observation reads it, steps the model
and writes it back in one store transaction, and is acknowledged only after the commit. The Predictor's own stream
table serves as a scratch pad for that one request. Everything the server reads from disk (the run, the store) is
fixed at start-up; no request names a file.

Retries: an observation request may carry an ``Idempotency-Key`` header (1 to 255 visible ASCII characters, a UUID
say: a new key per request, the same key when retrying it). The store commits the key and the answer together with
the stream's new state, so a request whose answer was lost (a timeout, a dropped connection, a server killed between
its commit and its answer) can be sent again: with the same key and the same body it changes nothing and gets the
first answer again (status 200, the same body, and the header ``Idempotent-Replayed: true``); with the same key and
another body it is refused (422). Keys belong to their stream, which remembers its latest 1,000 (``REMEMBERED_KEYS``
in store.py; a forgotten key's request would be applied again); reset keeps them, delete forgets them. Refusals are
not remembered: they changed nothing, and the same key may then carry the corrected request. This is the one
mechanism (there are no client sequence numbers): it needs no state in the client beyond the key of the request in
flight.

Numbers are strict: an observation or a sequence holds JSON numbers (ints or floats); ``true``/``false`` and numbers
in quotes are refused with a 422 naming the element, not read as 1, 0 or 2.5.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path as FilePath
from typing import Annotated, Any

import numpy as np
from fastapi import Body, FastAPI, Header, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..inference.predictor import Predictor, run_kind
from .settings import (
    IDEMPOTENCY_KEY_PATTERN,
    MAX_FEATURES,
    MAX_OBSERVATIONS,
    MAX_SEQUENCES,
    MAX_STEPS,
    MAX_TEXT_CHARS,
    MAX_TOKENS,
    STREAM_ID_PATTERN,
    ServeSettings,
)
from .store import (
    REMEMBERED_KEYS,
    KeyReused,
    StoreError,
    StreamExists,
    StreamNotFound,
    StreamStore,
    TooManyStreams,
    open_store,
)

__all__ = ["create_app"]

log = logging.getLogger("lstmkit.serve")

ESTIMATOR_KINDS = ("sequence_classifier", "sequence_regressor")
READING_KINDS = ("forecaster", "anomaly_detector")  # an observation is one reading of the series
SERVED_KINDS = (*ESTIMATOR_KINDS, "language_model", *READING_KINDS)
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # answered without an API key


# ---- request and response bodies ------------------------------------------------------------------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# strict: an int or a float; true/false and numbers in quotes are refused (lax pydantic would read them as 1, 0, 2.5)
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Step = Annotated[list[Number], Field(min_length=1, max_length=MAX_FEATURES)]  # one time step: F numbers
Sequence = Annotated[list[Step], Field(min_length=1, max_length=MAX_STEPS)]  # (T, F)
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS)]
# numbers for a classifier / regressor, a text piece for a language model, one reading (a number, or a list of one
# number) for a forecaster or an anomaly detector
Observation = Number | Step | Text
StreamId = Annotated[str, Field(pattern=STREAM_ID_PATTERN)]
Label = int | float | str | bool
PathId = Annotated[str, Path(pattern=STREAM_ID_PATTERN, description="The stream's id.")]
IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", pattern=IDEMPOTENCY_KEY_PATTERN,
    description="Makes a retry safe: a new key (1 to 255 visible ASCII characters, a UUID say) per request, the same "
                "key and body when retrying it; a retry changes nothing and gets the first answer again.")]  # fmt: skip
OBSERVE_DESCRIPTION = f"""Feed one observation (or several, in order); the answer comes after the new state is \
committed.

Retries: send an `Idempotency-Key` header (1 to 255 visible ASCII characters, a UUID say: a new key per request, \
the same key when retrying it). The store commits the key and this answer together with the new state, so a request \
whose answer was lost (a timeout, a dropped connection, a server killed before answering) can be sent again: with \
the same key and body it changes nothing and gets the first answer again (200, the same body, and the header \
`Idempotent-Replayed: true`); with the same key and another body it is refused (422). Keys belong to their stream, \
which remembers its latest {REMEMBERED_KEYS:,} (an older key's request would be applied again); reset keeps them, \
delete forgets them. Refused requests are not remembered: they changed nothing.

Numbers are JSON numbers: `true`, `false` and numbers in quotes are refused (422)."""


class ErrorBody(BaseModel):
    error: str = Field(description="One sentence: what went wrong and how to fix it.")


class PredictRequest(_Strict):
    sequences: list[Sequence] = Field(
        min_length=1, max_length=MAX_SEQUENCES,
        description="N sequences, each T_i steps of F numbers (T_i may differ: a ragged batch).",
    )  # fmt: skip


class PredictResponse(BaseModel):
    kind: str
    labels: list[Label] | None = Field(None, description="Classifier: the most likely class of each sequence.")
    probabilities: list[list[float]] | None = Field(None, description="Classifier: (N, K), columns as `classes`.")
    classes: list[Label] | None = None
    predictions: list[float] | list[list[float]] | None = Field(None, description="Regressor: (N,) or (N, K).")


class GenerateRequest(_Strict):
    prompt: Text = ""
    max_tokens: int = Field(200, ge=0, le=MAX_TOKENS)
    temperature: float = Field(1.0, gt=0, le=100, allow_inf_nan=False)
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1)
    greedy: bool = False
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="The same seed gives the same text.")
    stream: bool = Field(False, description="Server-sent events: one `piece` event per text piece, then `done`.")


class GenerateResponse(BaseModel):
    text: str


class CreateStreamRequest(_Strict):
    stream_id: StreamId | None = Field(None, description="Your own id; a random one when absent.")


class StreamInfo(BaseModel):
    stream_id: str
    observations: int = Field(description="Observations seen since the stream was opened or last reset.")
    created: float
    updated: float


class ObservationsRequest(_Strict):
    observation: Observation | None = None
    observations: list[Observation] | None = Field(None, min_length=1, max_length=MAX_OBSERVATIONS)

    @model_validator(mode="after")
    def _exactly_one(self) -> ObservationsRequest:
        if self.observation is None and self.observations is None:
            raise ValueError('send one of "observation" (one) or "observations" (a list, in order); it has neither')
        if self.observation is not None and self.observations is not None:
            raise ValueError('send either "observation" (one) or "observations" (a list, in order), not both')
        return self


class TokenProbability(BaseModel):
    token: str
    probability: float


class StreamOutput(BaseModel):
    probabilities: list[float] | None = Field(None, description="Classifier: classes; language model: next token.")
    label: Label | None = None
    prediction: float | list[float] | None = None
    top: list[TokenProbability] | None = Field(None, description="Language model: the 5 likeliest next tokens.")
    forecast: list[list[float]] | None = Field(
        None, description="Forecaster: (horizon, quantiles) from the latest readings; absent until input_window "
        "readings have arrived.")  # fmt: skip
    quantiles: list[float] | None = Field(None, description="Forecaster: the forecast's columns.")
    step: int | None = Field(None, description="Anomaly detector: the reading (0-based, since the stream opened or "
                             "was reset) that `score` is about: `delay` readings back.")  # fmt: skip
    score: float | None = Field(None, description="Anomaly detector: that reading's score; absent while it has none.")
    anomaly: bool | None = Field(None, description="Anomaly detector: the score is above the fitted threshold.")


class ObservationsResponse(StreamInfo):
    output: StreamOutput = Field(description="The model's output after the last observation sent.")


class ModelInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    kind: str
    runtime: str
    weights: str
    lstmkit_version: str
    streams: int
    max_streams: int


class Status(BaseModel):
    status: str


# one server-sent event of /v1/generate (OpenAPI 3.1: the schema of an event-stream media type describes each event)
SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["piece", "done", "error"]},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "description": 'JSON: {"text": ...} per piece, {"pieces": n} when done, {"error": ...} on failure.'},
    },
}  # fmt: skip


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


# ---- guards: API key and body size, before any parsing --------------------------------------------------------------
class _Guard:
    """Pure ASGI middleware: refuses a request without the API key (but on the health paths), and a body larger
    than ``max_body_bytes`` (by its Content-Length, or as it arrives when chunked) before anything parses it."""

    def __init__(self, app: Any, api_key: str | None, max_body_bytes: int) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes
        self.api_key = None if api_key is None else api_key.encode()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.api_key is not None and scope["path"] not in OPEN_PATHS:
            if not hmac.compare_digest(headers.get(b"x-api-key", b""), self.api_key):
                return await _send_error(send, 401, "Missing or wrong API key; send it in the X-API-Key header.")
        too_big = f"The request body is over the server's limit of {self.max_body_bytes:,} bytes; send less per call."
        try:
            if int(headers.get(b"content-length", b"0")) > self.max_body_bytes:
                return await _send_error(send, 413, too_big)
        except ValueError:
            return await _send_error(send, 400, "The Content-Length header is not a number.")
        body, more = bytearray(), True
        while more:  # read it all (it is small: at most max_body_bytes), then hand it on
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body_bytes:
                return await _send_error(send, 413, too_big)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: the disconnect, which streaming responses listen for

        return await self.app(scope, replay, send)


async def _send_error(send: Any, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _validation_sentence(exc: RequestValidationError, kind: str | None = None) -> str:
    """The first complaint of pydantic's list, as one sentence naming the field: ``sequences[0][2][1]: ...``.
    ``kind``, the served run's: a language model's observations are spoken of as text."""
    errors = exc.errors()
    first = errors[0]
    # A union (an observation: a number, a list of numbers or a text) fails once per member: speak of the member that
    # came furthest into the input (the longest location), not of the first member tried; for a language model, of
    # the text member.
    same_field = [e for e in errors if tuple(e.get("loc", ()))[:2] == tuple(first.get("loc", ()))[:2]]
    first = max(same_field, key=lambda e: len(e.get("loc", ())))
    as_text = [e for e in same_field if e.get("loc") and str(e["loc"][-1]).endswith("str")]  # str, constrained-str
    if kind == "language_model" and as_text and as_text[0]["loc"][1] in ("observation", "observations"):
        first = as_text[0]
        if first.get("type") == "string_type":
            path = "".join(f"[{p}]" if isinstance(p, int) else str(p) for p in first["loc"][1:-1])
            value = first.get("input")
            got = {list: "a list", dict: "an object"}.get(type(value), "a number")
            if isinstance(value, bool) or value is None:
                got = json.dumps(value)
            return f"{path} is {got}, not a text piece; a language model takes text: send a JSON string."
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON; send a JSON object."
    if tuple(first.get("loc", ()))[:1] == ("header",):  # the one header the API reads: Idempotency-Key
        return (f"The {first['loc'][1]} header must be 1 to 255 visible ASCII characters without spaces (a UUID, "
                "say); send a new one per request and the same one when retrying it.")  # fmt: skip
    loc = [p for p in first.get("loc", ()) if p not in ("body", "path", "query")]
    if not loc and first.get("type") in ("model_attributes_type", "dict_type"):
        return "The request body must be a JSON object, sent with Content-Type: application/json."
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part}]"
        elif not where:
            where = str(part)
        elif str(part).isidentifier() and part not in ("float", "int", "str", "bool"):  # not a union member's tag
            where += f".{part}"
    value = first.get("input")
    if first.get("type") == "float_type" and isinstance(value, bool | str) and where:  # strict numbers
        if isinstance(value, bool):
            return f"{where} is {json.dumps(value)}, not a number; send a number there (1 or 0 for true or false)."
        shown = json.dumps(value if len(value) <= 20 else value[:20] + "...")
        return f"{where} is {shown}, text in quotes, not a number; send a number there, without quotes."
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if not where:
        return f"The request body is invalid: {message[:1].lower()}{message[1:]}."
    return f"Invalid {where}: {message[:1].lower()}{message[1:]}."


def _model_fingerprint(run_dir: FilePath) -> str:
    """sha256 of the run's weights and config: a store's streams belong to one model."""
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        path = run_dir / name
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


# ---- the app --------------------------------------------------------------------------------------------------------
def create_app(run_dir: str | FilePath, settings: ServeSettings | None = None, *,
               store: StreamStore | None = None) -> FastAPI:  # fmt: skip
    """Load the run and open the store (both fixed for the app's lifetime), and build the API.

    Args:
        run_dir: a run directory written by an lstmkit train command (a classifier, regressor or language model).
        settings: runtime, weights, store, API key, limits; the defaults when ``None``.
        store: an opened store to use instead of ``settings.store`` (tests pass one built on a fake Redis).

    Raises:
        ValueError: a run kind the server does not serve, an unknown runtime or weights, an empty API-key variable.
        FileNotFoundError: no run at ``run_dir``.
        StoreError: the store cannot be opened, or it holds another model's streams.
    """
    settings = settings or ServeSettings()
    run_dir = FilePath(run_dir)
    found = run_kind(run_dir)  # before loading: a kind not served may not load at all
    if found not in SERVED_KINDS:
        raise ValueError(
            f"{run_dir} holds a run of kind {found!r}, which lstmkit serve cannot serve; it serves runs of kind "
            f"{', '.join(SERVED_KINDS[:-1])} or {SERVED_KINDS[-1]}: pass the directory of such a run instead."
        )
    # a large in-memory limit: the Predictor only holds the streams of requests in flight; the store enforces ours
    predictor = Predictor.load(run_dir, runtime=settings.runtime, weights=settings.weights, max_streams=1 << 30)
    api_key = settings.api_key()
    store = store if store is not None else open_store(settings.store_url(run_dir))
    store.bind(_model_fingerprint(run_dir))
    kind, info = predictor.kind, predictor.info()
    model = predictor.model
    cannot_stream = predictor.streaming_blocker()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()  # on shutdown (SIGTERM, Ctrl-C); a killed process loses nothing acknowledged either way

    app = FastAPI(
        title="lstmkit", version=__version__, lifespan=lifespan,
        summary="A trained lstmkit run over HTTP: batch prediction, text generation, and streams whose recurrent "
                "state is kept in a store.",
    )  # fmt: skip
    app.state.predictor, app.state.store, app.state.settings = predictor, store, settings
    app.add_middleware(_Guard, api_key=api_key, max_body_bytes=settings.max_body_bytes)

    # ---- errors: always {"error": one sentence} -----------------------------------------------------------------
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _validation_sentence(exc, kind)}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"No endpoint {request.method} {request.url.path}; the API is listed at /docs."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; the API is listed at /docs."
        else:
            message = str(exc.detail)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "The server failed on this request (its log has the details)."}, 500)

    def need(kinds: tuple[str, ...], endpoint: str, instead: str) -> None:
        if kind not in kinds:
            raise ApiError(400, f"This server holds a {kind} run; {endpoint} ({instead}).")

    # ---- health -------------------------------------------------------------------------------------------------
    @app.get("/healthz", response_model=Status, tags=["health"])
    def healthz() -> Status:
        """The process is alive."""
        return Status(status="alive")

    @app.get("/readyz", response_model=Status, responses=_errors(503), tags=["health"])
    def readyz() -> Status:
        """The model is loaded and the stream store answers."""
        try:
            store.ping()
        except Exception as exc:
            raise ApiError(503, f"The {store.kind} stream store does not answer ({type(exc).__name__}).") from None
        return Status(status="ready")

    # ---- model --------------------------------------------------------------------------------------------------
    @app.get("/v1/model", response_model=ModelInfo, responses=_errors(401), tags=["model"])
    def model_info() -> dict[str, Any]:
        """What is served: the Predictor's description of the run, the open streams, the lstmkit version."""
        return {**info, "lstmkit_version": __version__, "streams": store.count(),
                "max_streams": settings.max_streams, "streaming": cannot_stream is None}  # fmt: skip

    @app.post("/v1/predict", response_model=PredictResponse, response_model_exclude_none=True,
              responses=_errors(400, 401, 413, 422), tags=["model"])  # fmt: skip
    def predict(request: PredictRequest) -> dict[str, Any]:
        """Predict a batch of sequences (classifier: labels and probabilities; regressor: numbers)."""
        need(ESTIMATOR_KINDS, "/v1/predict serves sequence classifiers and regressors",
             "use /v1/generate or /v1/streams")  # fmt: skip
        features = model.input_size_
        for i, sequence in enumerate(request.sequences):
            for t, step in enumerate(sequence):
                if len(step) != features:
                    raise ApiError(422, f"sequences[{i}][{t}] has {len(step)} numbers; this model takes {features} "
                                        "per step.")  # fmt: skip
        batch = [np.asarray(sequence, dtype=np.float32) for sequence in request.sequences]  # N x (T_i, F)
        try:
            if kind == "sequence_classifier":
                probabilities = predictor.predict_proba(batch)  # (N, K)
                labels = np.asarray(info["classes"], dtype=object)[probabilities.argmax(axis=1)]
                return {"kind": kind, "labels": labels.tolist(), "probabilities": probabilities.tolist(),
                        "classes": info["classes"]}  # fmt: skip
            return {"kind": kind, "predictions": np.asarray(predictor.predict(batch)).tolist()}
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None

    @app.post("/v1/generate", response_model=GenerateResponse, tags=["model"],
              responses={**_errors(400, 401, 413, 422),
                         200: {"content": {"text/event-stream": {"schema": SSE_EVENT}},
                               "description": "JSON, or server-sent events when streaming"}})  # fmt: skip
    def generate(request: GenerateRequest, http: Request) -> Any:
        """Continue a prompt. With ``"stream": true`` (or ``Accept: text/event-stream``): server-sent events, one
        ``piece`` event per text piece (``{"text": ...}``) and a final ``done`` event (``{"pieces": n}``)."""
        need(("language_model",), "/v1/generate needs a language model", "use /v1/predict or /v1/streams")
        try:  # stream() checks the prompt and the options here, before the first piece is asked for
            pieces = model.stream(request.prompt, request.max_tokens, temperature=request.temperature,
                                  top_k=request.top_k, top_p=request.top_p, greedy=request.greedy,
                                  seed=request.seed)  # fmt: skip
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        if request.stream or "text/event-stream" in http.headers.get("accept", ""):
            return StreamingResponse(_events(pieces), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip
        return GenerateResponse(text="".join(pieces))

    # ---- streams ------------------------------------------------------------------------------------------------
    def need_streaming() -> None:
        if cannot_stream is not None:
            raise ApiError(400, cannot_stream)

    def stream_info(record: Any) -> dict[str, Any]:
        return {"stream_id": record.stream_id, "observations": record.observations, "created": record.created,
                "updated": record.updated}  # fmt: skip

    @app.post("/v1/streams", response_model=StreamInfo, status_code=201, tags=["streams"],
              responses=_errors(400, 401, 409, 422, 429))  # fmt: skip
    def create_stream(request: Annotated[CreateStreamRequest | None, Body()] = None) -> dict[str, Any]:
        """Open a stream in the zero state."""
        need_streaming()
        stream_id = (request.stream_id if request else None) or uuid.uuid4().hex
        try:
            return stream_info(store.create(stream_id, settings.max_streams))
        except StreamExists:
            message = f"Stream {stream_id!r} exists already; reset it, delete it, or pick another id."
            raise ApiError(409, message) from None
        except TooManyStreams as exc:
            raise ApiError(429, f"Too many streams: {exc.open_streams} open, the limit is {exc.limit}; delete "
                                "finished streams first.") from None  # fmt: skip

    @app.get("/v1/streams/{stream_id}", response_model=StreamInfo, tags=["streams"],
             responses=_errors(401, 404, 422))  # fmt: skip
    def get_stream(stream_id: PathId) -> dict[str, Any]:
        """The stream's observation count and times."""
        return stream_info(_found(store.get, stream_id))

    @app.post("/v1/streams/{stream_id}/observations", response_model=ObservationsResponse,
              response_model_exclude_none=True, tags=["streams"], description=OBSERVE_DESCRIPTION,
              responses=_errors(400, 401, 404, 413, 422))  # fmt: skip
    def observe(stream_id: PathId, request: ObservationsRequest, response: Response,
                idempotency_key: IdempotencyKey = None) -> dict[str, Any]:  # fmt: skip
        """Feed one observation (or several, in order); the answer comes after the new state is committed (and,
        with an Idempotency-Key, is committed with it: see OBSERVE_DESCRIPTION)."""
        need_streaming()
        if request.observations is None:
            observations = [request.observation]
            _check_observation(kind, model, request.observation, "The observation")
        else:
            observations = request.observations
            for i, observation in enumerate(observations):
                _check_observation(kind, model, observation, f"observations[{i}]")

        def step(record: Any) -> tuple[dict[str, np.ndarray], int, np.ndarray]:
            scratch = f"request-{uuid.uuid4().hex}"  # this request's row in the Predictor's stream table
            try:
                if record.state:
                    predictor.set_state(scratch, record.state)
                for observation in observations:
                    out = predictor.stream(scratch, observation)
                return predictor.get_state(scratch), record.observations + len(observations), out
            finally:
                try:
                    predictor.delete(scratch)
                except KeyError:  # the first observation failed before the stream existed
                    pass

        def answer(record: Any, out: np.ndarray) -> dict[str, Any]:
            return {**stream_info(record), "output": _output(kind, info, model, out, record.observations)}

        try:
            if idempotency_key is None:
                return answer(*_found(store.update, stream_id, step))
            fingerprint = hashlib.sha256(request.model_dump_json().encode()).hexdigest()  # the body as parsed
            reply, replayed = _found(store.update_once, stream_id, idempotency_key, fingerprint, step, answer)
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        except KeyReused:
            message = (f"Idempotency-Key {idempotency_key!r} was used on stream {stream_id!r} for another body; a "
                       "retry must send the same body, and a new observation needs a new key.")  # fmt: skip
            raise ApiError(422, message) from None
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return reply

    @app.post("/v1/streams/{stream_id}/reset", response_model=StreamInfo, tags=["streams"],
              responses=_errors(401, 404, 422))  # fmt: skip
    def reset_stream(stream_id: PathId) -> dict[str, Any]:
        """Back to the zero state; the observation count starts again from 0."""
        record, _ = _found(store.update, stream_id, lambda record: ({}, 0, None))
        return stream_info(record)

    @app.delete("/v1/streams/{stream_id}", status_code=204, tags=["streams"], responses=_errors(401, 404, 422))
    def delete_stream(stream_id: PathId) -> None:
        """Forget the stream."""
        _found(store.delete, stream_id)

    return app


def _found(operation: Any, stream_id: str, *args: Any) -> Any:
    try:
        return operation(stream_id, *args)
    except StreamNotFound:
        raise ApiError(404, f"No stream {stream_id!r}; open it with POST /v1/streams first.") from None


def _check_observation(kind: str, model: Any, observation: Any, where: str) -> None:
    if kind == "language_model":
        if not isinstance(observation, str):
            raise ApiError(422, f"{where} must be a text piece for a language model, got numbers.")
        if not observation:
            raise ApiError(422, f"{where} is empty; send some text.")
    elif kind in READING_KINDS:
        if isinstance(observation, str) or (isinstance(observation, list) and len(observation) != 1):
            got = "text" if isinstance(observation, str) else f"{len(observation)} numbers"
            raise ApiError(422, f"{where} must be one reading (a number) for a {kind}, got {got}.")
    elif isinstance(observation, str):
        raise ApiError(422, f"{where} must be {model.input_size_} numbers for a {kind}, got text.")
    elif not isinstance(observation, list):
        if model.input_size_ != 1:
            raise ApiError(422, f"{where} is one number; this model takes {model.input_size_} per step.")
    elif len(observation) != model.input_size_:
        raise ApiError(422, f"{where} has {len(observation)} numbers; this model takes {model.input_size_} per step.")


def _output(kind: str, info: dict[str, Any], model: Any, out: np.ndarray, observations: int) -> dict[str, Any]:
    if kind == "forecaster":
        quantiles = info["quantiles"]
        return {"quantiles": quantiles} if np.isnan(out).all() else {"forecast": out.tolist(), "quantiles": quantiles}
    if kind == "anomaly_detector":
        step = observations - 1 - info["delay"]
        if step < 0 or not np.isfinite(out[0]):
            return {"step": step} if step >= 0 else {}
        threshold = info["threshold"]
        result = {"step": step, "score": float(out[0])}
        return result if threshold is None else {**result, "anomaly": bool(out[0] > threshold)}
    if kind == "sequence_classifier":
        return {"probabilities": out.tolist(), "label": info["classes"][int(out.argmax())]}
    if kind == "sequence_regressor":
        return {"prediction": float(out[0]) if model.output_ndim_ == 1 else out.tolist()}
    top = np.argsort(-out, kind="stable")[:5]  # the 5 likeliest next tokens, likeliest first
    decode = model.tokenizer.decode
    return {"probabilities": out.tolist(),
            "top": [{"token": decode([int(i)]), "probability": float(out[i])} for i in top]}  # fmt: skip


def _events(pieces: Iterator[str]) -> Iterator[str]:
    """Server-sent events: ``event: piece`` with ``{"text": ...}`` per piece, then ``event: done``."""
    n = 0
    try:
        for piece in pieces:
            n += 1
            yield f"event: piece\ndata: {json.dumps({'text': piece})}\n\n"
    except Exception:  # the status line is sent already: report in the stream and end it
        log.exception("generation failed after %d pieces", n)
        yield f"event: error\ndata: {json.dumps({'error': 'Generation failed (the server log has the details).'})}\n\n"
        return
    yield f"event: done\ndata: {json.dumps({'pieces': n})}\n\n"
