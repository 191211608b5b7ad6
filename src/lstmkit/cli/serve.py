"""``lstmkit serve RUN_DIR``: the trained model as an HTTP API (FastAPI on uvicorn), stream state in a store."""

from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from . import app
from ._console import err, fail, setup_logging
from ._options import Verbose


@app.command("serve")
def serve(
    run_dir: Annotated[Path, typer.Argument(help="A run directory: a sequence classifier or regressor, a language "
                                            "model, a forecaster or an anomaly detector.")],
    host: Annotated[str, typer.Option("--host", help="The address to listen on (0.0.0.0: every interface).")]
        = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The TCP port.")] = 8000,
    runtime: Annotated[str, typer.Option("--runtime", help="torch, onnxruntime or lstmkit (fastest streams).")]
        = "torch",
    weights: Annotated[str, typer.Option("--weights", help="float32, int8 (onnxruntime) or bfloat16 (torch).")]
        = "float32",
    store: Annotated[str | None, typer.Option("--store", help="Where stream state lives: sqlite:PATH (default "
                                              "RUN_DIR/streams.sqlite3) or redis://HOST:PORT/DB, shared by several "
                                              "server processes.")] = None,
    api_key_env: Annotated[str | None, typer.Option("--api-key-env", help="The environment variable holding the "
                                                    "API key that requests send in X-API-Key (health checks stay "
                                                    "open). Without it the API is open.")] = None,
    max_streams: Annotated[int, typer.Option("--max-streams", help="Open streams allowed in the store.")] = 10_000,
    max_body_bytes: Annotated[int, typer.Option("--max-body-bytes", help="The largest request body accepted.")]
        = 1 << 20,
    write_openapi: Annotated[Path | None, typer.Option("--write-openapi", help="Write the OpenAPI document to "
                                                       "this file and exit instead of serving.")] = None,
    verbose: Verbose = False,
) -> None:  # fmt: skip
    """Serve RUN_DIR: GET /healthz, /readyz, /v1/model; POST /v1/predict (classifier, regressor), /v1/generate
    (language model; server-sent events with "stream": true), /v1/streams and /v1/streams/{id}/observations
    (state carried between calls in the store). The API is described at /docs."""
    setup_logging(verbose)
    missing = [name for name in ("fastapi", "uvicorn") if importlib.util.find_spec(name) is None]
    if missing:
        fail(f"Serving needs {' and '.join(missing)}, not installed here: pip install 'lstmkit[serve]'.")
    if not 0 <= port <= 65535:
        fail(f"--port must lie in 0..65535, got {port}.")
    from ..serve.app import create_app
    from ..serve.settings import ServeSettings
    from ..serve.store import StoreError

    with tempfile.TemporaryDirectory(prefix="lstmkit-openapi-") as scratch:
        if write_openapi is not None and store is None:  # the document needs no store: leave none beside the run
            store = f"sqlite:{Path(scratch) / 'streams.sqlite3'}"
        try:
            settings = ServeSettings(runtime=runtime, weights=weights, store=store, api_key_env=api_key_env,
                                     max_streams=max_streams, max_body_bytes=max_body_bytes)  # fmt: skip
            api = create_app(run_dir, settings)
        except (ValueError, FileNotFoundError, StoreError) as e:
            fail(str(e))  # fail() escapes rich markup: "[serve]" in a message is printed as written
        if write_openapi is not None:
            text = json.dumps(api.openapi(), indent=2) + "\n"
            write_openapi.write_text(text, encoding="utf-8")
            api.state.store.close()
            err.print(f"wrote {write_openapi} ({len(text):,} bytes)")
            return
    import uvicorn

    err.print(f"serving {run_dir} ({api.state.predictor.kind}, {runtime}) on http://{host}:{port}; API at /docs")
    uvicorn.run(api, host=host, port=port, log_level="info" if verbose else "warning", access_log=verbose)
