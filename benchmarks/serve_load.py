"""Load test for ``lstmkit serve``: concurrent clients, each feeding its own stream one observation per request.

    python benchmarks/serve_load.py                                  # 16 clients x 200 observations, 3 repeats
    python benchmarks/serve_load.py --clients 4 --observations 20 --repeats 1 --no-write   # a smoke run

What it does: trains a small SequenceClassifier (3 features, hidden 64, fixed seed) into a temporary run directory,
starts one real server per configuration (``python -m lstmkit serve RUN --store sqlite:...`` in a subprocess on a
loopback port; the torch and the onnxruntime runtime, the SQLite store on disk and, for torch, on tmpfs as a
control without the disk's fsync), then for each repeat (the configurations alternated A, B, C, A, B, C, ...)
N client threads, each with its own keep-alive connection and its own stream, post M observations one request at
a time. Every request's wall time is taken in the client (``time.perf_counter`` around ``httpx.post``).

Reported per configuration: p50 / p90 / p99 / max latency and requests per second (successful requests / wall time
of the load phase), the median over repeats with min-max. Then the correctness check: every response's output of
every stream, and every stream's final state read from the server's SQLite file, equal the same observations
replayed offline through :class:`lstmkit.Predictor` on the same runtime (atol 1e-5); the observation count from
``GET /v1/streams/{id}`` equals the number sent; no response was a 5xx (or anything but 200) and the server logs
hold no traceback.

Bounded: each client stops at ``--max-seconds`` after the load starts (and each request at ``--request-timeout``);
a stream cut short is reported, not waited for. ``run()`` is the same thing as a function (tests call it small).
Writes ``docs/results/serving.md`` (keeping its ``## Notes`` section) and appends raw rows to
``experiments/results/serving.jsonl`` unless ``--no-write``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lstmkit.serve.process import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results" / "serving.md"
JSONL = ROOT / "experiments" / "results" / "serving.jsonl"
FEATURES = 3
ATOL = 1e-5


# ---- the run and the servers ----------------------------------------------------------------------------------------
def train_run(run_dir: Path, *, hidden_size: int = 64, epochs: int = 3, seed: int = 0) -> Path:
    """A SequenceClassifier on 3 features (3 classes: which feature has the largest mean), saved to ``run_dir``."""
    from lstmkit.tasks.sequence.estimators import SequenceClassifier

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((240, 30, FEATURES)).astype(np.float32)
    y = X.mean(axis=1).argmax(axis=1)
    SequenceClassifier(hidden_size=hidden_size, epochs=epochs, seed=seed, progress=False).fit(X, y).save(run_dir)
    return run_dir


Server = ServerProcess  # ``python -m lstmkit serve`` in a child process (lstmkit.serve.process)


@dataclass(frozen=True)
class Config:
    runtime: str  # torch or onnxruntime
    store: str  # disk or tmpfs: where the SQLite file lies

    @property
    def name(self) -> str:
        return f"{self.runtime}, sqlite on {self.store}"


# ---- the clients ----------------------------------------------------------------------------------------------------
@dataclass
class StreamResult:
    stream_id: str
    sent: np.ndarray  # (M, F): the observations, in order
    latencies: list[float] = field(default_factory=list)  # seconds, one per request answered
    statuses: list[int] = field(default_factory=list)
    outputs: list[list[float]] = field(default_factory=list)  # class probabilities after each 200
    error: str | None = None  # why the stream stopped early (deadline, a transport error, a non-200)


def _client(url: str, stream: StreamResult, start: threading.Barrier, deadline: list[float],
            request_timeout: float) -> None:  # fmt: skip
    import httpx

    try:
        with httpx.Client(base_url=url, timeout=request_timeout) as http:
            created = http.post("/v1/streams", json={"stream_id": stream.stream_id})
            if created.status_code != 201:
                stream.statuses.append(created.status_code)
                stream.error = f"POST /v1/streams answered {created.status_code}: {created.text[:200]}"
                start.abort()
                return
            start.wait(timeout=60)
            path = f"/v1/streams/{stream.stream_id}/observations"
            for x in stream.sent.tolist():
                if time.monotonic() > deadline[0]:
                    stream.error = "stopped at the deadline"
                    return
                t0 = time.perf_counter()
                response = http.post(path, json={"observation": x})
                stream.latencies.append(time.perf_counter() - t0)
                stream.statuses.append(response.status_code)
                if response.status_code != 200:
                    stream.error = f"answered {response.status_code}: {response.text[:200]}"
                    return
                stream.outputs.append(response.json()["output"]["probabilities"])
    except Exception as exc:  # a transport error or timeout: report it with the stream, do not hang the run
        stream.error = f"{type(exc).__name__}: {exc}"


def load(url: str, streams: list[StreamResult], *, max_seconds: float, request_timeout: float) -> float:
    """Feed every stream from its own thread, all starting together; return the load phase's wall time (s).

    Each thread stops at ``max_seconds`` after the start; a thread still stuck in a request past that (plus the
    request timeout) is abandoned (a daemon thread) and its stream reported unfinished."""
    marks: dict[str, float] = {}
    deadline = [float("inf")]

    def started() -> None:  # runs once, when every client has opened its stream
        marks["start"] = time.perf_counter()
        deadline[0] = time.monotonic() + max_seconds

    start = threading.Barrier(len(streams), action=started)
    threads = [threading.Thread(target=_client, args=(url, s, start, deadline, request_timeout), daemon=True)
               for s in streams]  # fmt: skip
    for t in threads:
        t.start()
    hard_stop = time.monotonic() + 60 + max_seconds + request_timeout + 5
    for t in threads:
        t.join(max(0.0, hard_stop - time.monotonic()))
    for s, t in zip(streams, threads, strict=True):
        if t.is_alive():
            s.error = s.error or "the client was still waiting at the hard stop"
    return time.perf_counter() - marks.get("start", time.perf_counter())


def observations(n_streams: int, n_obs: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n_obs, FEATURES)).astype(np.float32) for _ in range(n_streams)]


def summarise(latencies: list[float], wall: float) -> dict[str, float]:
    ms = np.asarray(latencies) * 1000.0
    if ms.size == 0:
        return {"requests": 0, "wall_s": round(wall, 3), "req_per_s": 0.0}
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {"requests": int(ms.size), "wall_s": round(wall, 3), "req_per_s": round(ms.size / wall, 1),
            "p50_ms": round(float(p50), 2), "p90_ms": round(float(p90), 2), "p99_ms": round(float(p99), 2),
            "max_ms": round(float(ms.max()), 2), "mean_ms": round(float(ms.mean()), 2)}  # fmt: skip


# ---- the correctness check ------------------------------------------------------------------------------------------
def output_difference(offline: Any, streams: list[StreamResult]) -> float:
    """The largest absolute difference between a served output and the offline Predictor's after the same
    observations (each stream replayed in order into ``offline``, under the stream's id)."""
    worst = 0.0
    for s in streams:
        for x, served in zip(s.sent[: len(s.outputs)], s.outputs, strict=True):
            expected = offline.stream(s.stream_id, x)
            worst = max(worst, float(np.abs(np.asarray(served) - expected).max()))
    return worst


def replay(run_dir: Path, runtime: str, store_path: Path, url: str, streams: list[StreamResult]) -> dict[str, Any]:
    """Every response and every final state against the offline Predictor; the served observation counts."""
    import httpx

    from lstmkit import Predictor
    from lstmkit.serve.store import SQLiteStore

    offline = Predictor.load(run_dir, runtime=runtime)
    worst_output = output_difference(offline, streams)  # leaves each stream's final state in ``offline``
    store = SQLiteStore(store_path)  # WAL mode: read beside the running server
    worst_state, problems = 0.0, []
    try:
        with httpx.Client(base_url=url, timeout=30.0) as http:
            for s in streams:
                answered = len(s.outputs)
                info = http.get(f"/v1/streams/{s.stream_id}")
                if info.status_code != 200 or info.json()["observations"] != answered:
                    problems.append(f"{s.stream_id}: GET answered {info.status_code} {info.text[:200]}, "
                                    f"{answered} observations were acknowledged")  # fmt: skip
                if answered:
                    stored, expected_state = store.get(s.stream_id).state, offline.get_state(s.stream_id)
                    for name in ("h", "c"):
                        diff = float(np.abs(stored[name] - expected_state[name]).max())
                        worst_state = max(worst_state, diff)
                if s.error:
                    problems.append(f"{s.stream_id}: {s.error}")
    finally:
        store.close()
    if worst_output > ATOL or worst_state > ATOL:
        problems.append(f"outputs differ by up to {worst_output:.2e}, states by {worst_state:.2e} (atol {ATOL})")
    return {"ok": not problems, "max_output_diff": worst_output, "max_state_diff": worst_state,
            "streams": len(streams), "responses_checked": sum(len(s.outputs) for s in streams),
            "problems": problems}  # fmt: skip


# ---- the whole run --------------------------------------------------------------------------------------------------
def run(*, clients: int = 16, observations_per_client: int = 200, repeats: int = 3, warmup: int = 10,
        configs: list[Config] | None = None, hidden_size: int = 64, epochs: int = 3, seed: int = 0,
        max_seconds: float = 120.0, request_timeout: float = 30.0, workdir: Path | None = None,
        progress: Any = None) -> dict[str, Any]:  # fmt: skip
    """Train, start the servers, warm up, load (configurations alternated per repeat), check, stop.

    Returns ``{"rows": [one per configuration and repeat], "checks": {config name: replay result}, "ok": bool,
    "server_errors": number of 5xx responses, "non_200": number of other non-200 answers, ...}``."""
    configs = configs or [Config("torch", "disk"), Config("onnxruntime", "disk"), Config("torch", "tmpfs")]
    say = progress or (lambda message: None)
    own_dir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="lstmkit-serve-load-")) if own_dir else Path(workdir)
    shm = Path(tempfile.mkdtemp(prefix="lstmkit-serve-load-", dir="/dev/shm")) if Path("/dev/shm").is_dir() else None
    servers: dict[Config, Server] = {}
    stores: dict[Config, Path] = {}
    try:
        t0 = time.perf_counter()
        run_dir = train_run(workdir / "run", hidden_size=hidden_size, epochs=epochs, seed=seed)
        say(f"trained {run_dir} (hidden {hidden_size}) in {time.perf_counter() - t0:.1f} s")
        for i, config in enumerate(configs):
            folder = shm if config.store == "tmpfs" and shm is not None else workdir
            stores[config] = folder / f"streams-{i}.sqlite3"
            servers[config] = Server(run_dir, "--runtime", config.runtime, "--store", f"sqlite:{stores[config]}",
                                     "--max-streams", "100000", log=workdir / f"server-{i}.log")  # fmt: skip
        for server in servers.values():  # started together: each imports torch, the start-ups overlap
            server.wait_ready()
        say("servers ready: " + ", ".join(f"{c.name} on {s.url}" for c, s in servers.items()))

        load_before = os.getloadavg()
        streams: dict[Config, list[StreamResult]] = {c: [] for c in configs}
        rows = []
        for config in configs:  # warm-up: every server thread opens its SQLite connection, the model runs once
            if warmup:
                warm = [StreamResult(f"warmup-{i}", x) for i, x in enumerate(observations(clients, warmup, seed + 999))]
                load(servers[config].url, warm, max_seconds=max_seconds, request_timeout=request_timeout)
                streams[config].extend(warm)
        for r in range(repeats):
            for k, config in enumerate(configs):  # alternated: A, B, C, A, B, C, ...
                sent = observations(clients, observations_per_client, seed + 1000 * (r + 1) + k)
                batch = [StreamResult(f"r{r}-c{i}", x) for i, x in enumerate(sent)]
                wall = load(servers[config].url, batch, max_seconds=max_seconds, request_timeout=request_timeout)
                streams[config].extend(batch)
                row = {"config": config.name, "runtime": config.runtime, "store": f"sqlite ({config.store})",
                       "repeat": r, "clients": clients, "observations_per_client": observations_per_client,
                       **summarise([t for s in batch for t in s.latencies], wall),
                       "unfinished_streams": sum(s.error is not None for s in batch)}  # fmt: skip
                rows.append(row)
                say(f"repeat {r} {config.name}: p50 {row.get('p50_ms')} ms, p99 {row.get('p99_ms')} ms, "
                    f"{row['req_per_s']} req/s")  # fmt: skip
        load_after = os.getloadavg()

        checks = {c.name: replay(run_dir, c.runtime, stores[c], servers[c].url, streams[c]) for c in configs}
        logs = {c.name: servers.pop(c).stop() for c in configs}
        tracebacks = [name for name, log in logs.items() if "Traceback" in log]
        statuses = [code for batch in streams.values() for s in batch for code in s.statuses]
        server_errors = sum(code >= 500 for code in statuses)
        non_200 = sum(code not in (200, 201) for code in statuses)
        ok = all(c["ok"] for c in checks.values()) and not server_errors and not non_200 and not tracebacks
        return {"rows": rows, "checks": checks, "ok": ok, "server_errors": server_errors, "non_200": non_200,
                "tracebacks_in_logs": tracebacks, "loadavg_before": load_before, "loadavg_after": load_after,
                "hidden_size": hidden_size, "features": FEATURES, "seed": seed}  # fmt: skip
    finally:
        for server in servers.values():
            server.stop()
        if own_dir:
            shutil.rmtree(workdir, ignore_errors=True)
        if shm is not None:
            shutil.rmtree(shm, ignore_errors=True)


# ---- the report -----------------------------------------------------------------------------------------------------
def machine() -> str:
    import torch

    from lstmkit._machine import cpu_model

    cpu = cpu_model()

    return f"{cpu}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}, torch {torch.__version__}"


def commit() -> str:
    """The checkout's commit, with ``+dirty`` when src/lstmkit/serve has uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "src/lstmkit/serve"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def _median_range(values: list[float]) -> str:
    if len(values) == 1:
        return _number(values[0])
    return f"{_number(float(np.median(values)))} ({_number(min(values))}-{_number(max(values))})"


def markdown(result: dict[str, Any], command: str, measured: str) -> list[str]:
    rows = result["rows"]
    first = rows[0]
    lines = [
        "# Serving: latency and throughput of `lstmkit serve` under concurrent streams",
        "",
        f"Measured {measured} with `{command}` (numbers below are written by the script; the notes are by hand).",
        "",
        f"- Machine: {machine()}; shared with other jobs (load average {result['loadavg_before'][0]:.2f} before the "
        f"load, {result['loadavg_after'][0]:.2f} after).",
        "- Threads: each server process `OMP_NUM_THREADS=1` (torch and onnxruntime one intra-op thread), uvicorn's one "
        "event loop with its thread pool for the handlers; the clients are threads of one other Python process on the "
        "same 2 cores.",
        f"- Model: SequenceClassifier, {result['features']} features, hidden {result['hidden_size']}, 1 layer, 3 "
        f"classes (seed {result['seed']}).",
        f"- Load: {first['clients']} clients, each its own stream and keep-alive connection, "
        f"{first['observations_per_client']} observations each, one `POST /v1/streams/{{id}}/observations` per "
        "observation, sent as soon as the previous answer arrives (closed loop). Latency is the client's wall time "
        "per request; req/s is the successful requests over the load phase's wall time.",
        f"- Repeats: {max(r['repeat'] for r in rows) + 1} per configuration, the configurations alternated; a table "
        "cell is the median over the repeats (min-max). Percentiles are over all requests of one repeat.",
        "",
        "| runtime | store | requests / repeat | p50 ms | p90 ms | p99 ms | max ms | req/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in dict.fromkeys(r["config"] for r in rows):
        mine = [r for r in rows if r["config"] == name]
        cells = [_median_range([r[k] for r in mine]) for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "req_per_s")]
        lines.append(f"| {mine[0]['runtime']} | {mine[0]['store']} | {mine[0]['requests']:,} | " + " | ".join(cells)
                     + " |")  # fmt: skip
    lines += ["", "## Correctness", ""]
    for name, check in result["checks"].items():
        verdict = "equal" if check["ok"] else "**FAILED**"
        lines.append(
            f"- {name}: {verdict}: {check['responses_checked']:,} responses on {check['streams']} streams "
            f"(warm-up included) against `Predictor` on the same runtime, largest difference "
            f"{check['max_output_diff']:.1e} in the outputs and {check['max_state_diff']:.1e} in the stored final "
            f"states (h, c) (atol {ATOL:g}); observation counts from `GET /v1/streams/{{id}}` as sent."
        )
        lines += [f"  - {p}" for p in check["problems"][:10]]
    lines.append(
        f"- Responses: {result['server_errors']} 5xx, {result['non_200']} other non-2xx; server logs with a "
        f"traceback: {', '.join(result['tracebacks_in_logs']) or 'none'}."
    )
    return lines


def write_doc(doc: Path, lines: list[str]) -> None:
    """The generated part, then the page's existing ``## Notes`` section (hand-written; kept)."""
    old = doc.read_text() if doc.exists() else ""
    notes = old[old.index("## Notes") :] if "## Notes" in old else "## Notes\n"
    doc.parent.mkdir(parents=True, exist_ok=True)
    tmp = doc.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n\n" + notes)
    os.replace(tmp, doc)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients, one stream each")
    parser.add_argument("--observations", type=int, default=200, help="observations per client and repeat")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per configuration, alternated")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured observations per client first")
    parser.add_argument("--runtimes", default="torch,onnxruntime", help="comma-separated: torch, onnxruntime, lstmkit")
    parser.add_argument("--no-tmpfs", action="store_true", help="skip the control with the SQLite file on tmpfs")
    parser.add_argument("--hidden", type=int, default=64, help="the model's hidden size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=120.0, help="each load phase stops after this long")
    parser.add_argument("--request-timeout", type=float, default=30.0)
    parser.add_argument("--no-write", action="store_true", help="print only; write neither the doc nor the jsonl")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--jsonl", type=Path, default=JSONL)
    args = parser.parse_args(argv)
    command = "python benchmarks/serve_load.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    configs = [Config(runtime, "disk") for runtime in args.runtimes.split(",")]
    if not args.no_tmpfs and Path("/dev/shm").is_dir():
        configs.append(Config(configs[0].runtime, "tmpfs"))

    def progress(message: str) -> None:
        print(f"serve_load: {message}", file=sys.stderr, flush=True)

    result = run(clients=args.clients, observations_per_client=args.observations, repeats=args.repeats,
                 warmup=args.warmup, configs=configs, hidden_size=args.hidden, seed=args.seed,
                 max_seconds=args.max_seconds, request_timeout=args.request_timeout, progress=progress)  # fmt: skip
    measured = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = markdown(result, command.strip(), measured)
    print("\n".join(lines))
    if not args.no_write:
        write_doc(args.doc, lines)
        args.jsonl.parent.mkdir(parents=True, exist_ok=True)
        with open(args.jsonl, "a") as out:
            for row in result["rows"]:
                extra = {"measured": measured, "command": command.strip(), "commit": commit(), "machine": machine(),
                         "threads": 1,
                         "loadavg_before": result["loadavg_before"], "hidden_size": result["hidden_size"],
                         "correct": result["checks"][row["config"]]["ok"]}  # fmt: skip
                out.write(json.dumps({**row, **extra}) + "\n")
        print(f"wrote {args.doc} and appended {len(result['rows'])} rows to {args.jsonl}", file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
