"""What a server is started with, fixed for its lifetime, and the request limits its API documents.

The limits below are constants, not options: they are written into the request models and so into the OpenAPI
document (``docs/openapi.json``), which stays the same for every run and every start-up. The options an operator
sets (store, key, stream and body limits) live in :class:`ServeSettings`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# ---- request limits (in the OpenAPI document) ------------------------------------------------------------------------
MAX_SEQUENCES = 1024  # sequences in one /v1/predict request
MAX_STEPS = 10_000  # time steps in one sequence
MAX_FEATURES = 1024  # numbers in one time step
MAX_OBSERVATIONS = 1000  # observations in one /v1/streams/{id}/observations request
MAX_TEXT_CHARS = 10_000  # characters in a prompt or in one language-model observation
MAX_TOKENS = 2000  # tokens one /v1/generate request may ask for
STREAM_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"  # what a stream id may hold (it becomes a key in the store)
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"  # an Idempotency-Key header: 1 to 255 visible ASCII characters


@dataclass(frozen=True)
class ServeSettings:
    """A server's options.

    Args:
        runtime: ``"torch"`` or ``"onnxruntime"`` for predictions and streams (generation runs on torch).
        weights: ``"float32"``, ``"int8"`` (onnxruntime) or ``"bfloat16"`` (torch).
        store: where stream state lives: ``"sqlite:PATH"`` (one file; default ``RUN_DIR/streams.sqlite3``) or a
            ``redis://`` / ``rediss://`` URL shared by several server processes.
        api_key_env: the name of an environment variable holding the API key; ``None`` serves without a key.
        max_streams: open streams allowed in the store (all processes sharing it together).
        max_body_bytes: the largest request body accepted (bigger ones get 413 before they are parsed).
    """

    runtime: str = "torch"  # checked by Predictor.load, as are the weights
    weights: str = "float32"
    store: str | None = None
    api_key_env: str | None = None
    max_streams: int = 10_000
    max_body_bytes: int = 1 << 20  # 1 MiB: about 100,000 numbers as JSON

    def __post_init__(self) -> None:
        if self.max_streams < 1:
            raise ValueError(f"max_streams must be at least 1, got {self.max_streams}.")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}.")
        if self.store is not None and not self.store.startswith(("sqlite:", "redis://", "rediss://")):
            raise ValueError(
                f"Unknown store {self.store!r}; give sqlite:PATH (one file) or a redis://HOST:PORT/DB URL."
            )

    def store_url(self, run_dir: str | os.PathLike[str]) -> str:
        """The store to open: the one given, or the SQLite file beside the run."""
        return self.store or f"sqlite:{Path(run_dir) / 'streams.sqlite3'}"

    def api_key(self) -> str | None:
        """The key requests must send in ``X-API-Key``, read from the environment once, at start-up."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env, "")
        if not key:
            raise ValueError(
                f"The environment variable {self.api_key_env} is empty or unset; put the API key in it, or drop "
                "--api-key-env to serve without a key."
            )
        return key
