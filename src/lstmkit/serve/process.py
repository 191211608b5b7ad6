"""``lstmkit serve`` in a child process, for scripts and tests: start it on a free loopback port, wait until it is
ready, stop or kill it, read its log.

    with ServerProcess("runs/gun", "--store", "sqlite:streams.sqlite3", log="serve.log") as server:
        httpx.post(f"{server.url}/v1/streams/a/observations", json={"observation": [0.1, 0.2]})
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["ServerProcess"]


class ServerProcess:
    """``python -m lstmkit serve RUN_DIR *args`` on ``127.0.0.1`` and a free port, with one intra-op thread
    (``OMP_NUM_THREADS=1``, as docs/deploy.md advises for one process per core) unless ``env`` says otherwise.
    The child's output goes to ``log``; ``url`` is its base address. ``preamble``, Python code, runs in the child
    before the command starts: tests use it to inject faults (tests/serve/test_idempotency.py kills the server
    between the commit of an observation and its answer)."""

    def __init__(self, run_dir: str | os.PathLike[str], *args: str, log: str | os.PathLike[str],
                 env: dict[str, str] | None = None, preamble: str | None = None) -> None:  # fmt: skip
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(log)
        src = str(Path(__file__).resolve().parents[2])  # this lstmkit, installed or not
        path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH", "")) if p)
        environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **(env or {})}
        start = ["-m", "lstmkit"]
        if preamble is not None:
            start = ["-c", f"{preamble}\nimport sys\nfrom lstmkit.cli import main\nsys.exit(main(sys.argv[1:]))"]
        command = [sys.executable, *start, "serve", str(run_dir), "--port", str(self.port), *args]
        with open(self.log, "w") as out:
            self.process = subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 120.0) -> ServerProcess:
        """Return once ``/readyz`` answers 200; raise RuntimeError with the log if the server exits or is not ready
        within ``timeout`` seconds (it is stopped then)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the server was not ready in {timeout} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, as a crash."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> str:
        """Stop it (SIGTERM, then SIGKILL after 10 s) and return its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.log.read_text()

    def __enter__(self) -> ServerProcess:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
