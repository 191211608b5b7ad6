"""The HTML run report: its content, its errors, the CLI, and the page as headless Chromium renders it.

The browser check drives Debian's ``chromium`` over the DevTools protocol on a pipe (``--remote-debugging-pipe``: the
browser reads commands on fd 3 and writes replies and events on fd 4, each a JSON message ending in a NUL byte), so no
port, no websocket library and no script in the page are involved. It loads ``report.html`` from disk, waits for the
load event (fired after every ``<img>`` has loaded or failed), reads ``complete`` and ``naturalWidth`` of every image,
and collects console errors: ``console.error`` calls, uncaught exceptions and the browser's own error log (a missing
image shows there as ``Failed to load resource: net::ERR_FILE_NOT_FOUND``). Two tests break pages on purpose to show
the checker catches what it claims to.

Chromium is a system package: ``make test`` installs it with ``scripts/install-system-deps.sh``. When it is missing the
browser tests fail (not skip) and say so; ``LSTMKIT_CHROMIUM`` may name another Chromium or Chrome binary.
"""

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from lstmkit.cli import main
from lstmkit.report import write_report
from lstmkit.train import StepOutput, TrainConfig, Trainer
from lstmkit.viz.plots import plot_learning_curves

# ---------------------------------------------------------------------------------------------- headless Chromium

_TIMEOUT_S = 60.0  # generous: a 2-core CI machine running other tests may start Chromium slowly


def chromium_binary() -> str:
    """The Chromium to drive, or a test failure that says how to install it."""
    configured = os.environ.get("LSTMKIT_CHROMIUM")
    found = shutil.which(configured) if configured else shutil.which("chromium")
    if found is None:
        pytest.fail(
            f"{'LSTMKIT_CHROMIUM=' + configured if configured else 'chromium'} was not found on PATH, and the HTML "
            "report tests need a headless browser. Run scripts/install-system-deps.sh (as root or with sudo; "
            "`make test` runs it), or set LSTMKIT_CHROMIUM to a Chromium or Chrome binary.",
            pytrace=False,
        )
    return found


class Chromium:
    """One headless Chromium, driven over the DevTools protocol on a pipe. Each :meth:`check` opens a fresh tab."""

    def __init__(self, binary: str, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "chromium.log"
        args = [
            binary, "--headless=new", "--no-sandbox",  # no sandbox: it needs user namespaces, absent in containers
            "--disable-gpu", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--remote-debugging-pipe", f"--user-data-dir={workdir / 'profile'}", "about:blank",
        ]  # fmt: skip
        command_read, self._command_write = os.pipe()
        self._reply_read, reply_write = os.pipe()
        with self.log_path.open("wb") as log:
            # The shell puts our pipes on fds 3 and 4, where --remote-debugging-pipe expects them, then execs Chromium.
            self.process = subprocess.Popen(
                ["sh", "-c", 'exec "$@" 3<&0 4>&1 </dev/null >/dev/null', "sh", *args],
                stdin=command_read, stdout=reply_write, stderr=log,
            )  # fmt: skip
        os.close(command_read)
        os.close(reply_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []

    def _log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._command_write, json.dumps(message).encode() + b"\0")
        return self._next_id

    def _receive(self, deadline: float) -> dict:
        """The next message from the browser; events are also kept in ``self._events``."""
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._reply_read], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError(f"Chromium did not answer within {_TIMEOUT_S} s. Its log:\n{self._log_tail()}")
            chunk = os.read(self._reply_read, 1 << 16)
            if not chunk:
                raise RuntimeError(
                    f"Chromium closed the DevTools pipe (exit {self.process.poll()}):\n{self._log_tail()}"
                )
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self._events.append(message)
        return message

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        message_id = self._send(method, params, session)
        deadline = time.monotonic() + _TIMEOUT_S
        while True:
            message = self._receive(deadline)
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method} failed: {message['error']}")
                return message["result"]

    def _wait_for_event(self, method: str, session: str) -> None:
        deadline = time.monotonic() + _TIMEOUT_S
        seen = lambda: any(e["method"] == method and e.get("sessionId") == session for e in self._events)  # noqa: E731
        while not seen():
            self._receive(deadline)

    def check(self, page: Path) -> dict:
        """Load ``page`` and return ``{"images": [{src, complete, naturalWidth}], "errors": [str]}``."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=session)
        self._events.clear()
        navigation = self.call("Page.navigate", {"url": page.resolve().as_uri()}, session)
        assert "errorText" not in navigation, f"Chromium could not open {page}: {navigation['errorText']}"
        self._wait_for_event("Page.loadEventFired", session)
        images = self.call(
            "Runtime.evaluate",
            {
                "expression": "Array.from(document.images, i => ({src: i.getAttribute('src'), complete: i.complete, "
                "naturalWidth: i.naturalWidth}))",
                "returnByValue": True,
            },
            session,
        )["result"]["value"]
        errors = []
        for event in self._events:
            params = event["params"]
            if event.get("sessionId") != session:
                continue
            if event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(f"{params['entry']['text']} ({params['entry'].get('url', '')})")
            elif event["method"] == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append("console." + params["type"] + ": " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in params["args"]))  # fmt: skip
            elif event["method"] == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                errors.append(details.get("exception", {}).get("description", details.get("text", "exception")))
        self.call("Target.closeTarget", {"targetId": target})
        return {"images": images, "errors": errors}

    def close(self) -> None:
        try:
            self._send("Browser.close")
            self.process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait()
        finally:
            os.close(self._command_write)
            os.close(self._reply_read)


def problems(result: dict) -> list[str]:
    """What is wrong with a checked page: each image that did not load, and each console error."""
    broken = [
        f"image {i['src']!r} did not load" for i in result["images"] if not i["complete"] or i["naturalWidth"] <= 0
    ]
    return broken + [f"console error: {e}" for e in result["errors"]]


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    browser = Chromium(chromium_binary(), tmp_path_factory.mktemp("chromium"))
    yield browser
    browser.close()


# ----------------------------------------------------------------------------------------------------- a small run


def _write_config(run_dir: Path, kind: str = "test_linear", config: dict | None = None) -> None:
    payload = {"kind": kind, "lstmkit_version": "0.1.0", "config": config or {"lr": 0.05}}
    (run_dir / "config.json").write_text(json.dumps(payload))


def _train_tiny_run(run_dir: Path) -> None:
    """Two epochs of a linear model through the real Trainer, per-step logging on, plus two pictures of the 'task'."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)

    def loss_fn(model, batch, state):
        x, y = batch  # x: (B, 3), y: (B, 1)
        error = model(x) - y
        return StepOutput(loss=(error**2).mean(), metrics={"mae": error.abs().mean()})

    data = [(torch.randn(8, 3), torch.randn(8, 1)) for _ in range(4)]
    cfg = TrainConfig(epochs=2, lr=0.05, log_every_steps=1, progress=False, schedule="cosine", warmup_steps=2)
    Trainer(model, loss_fn, cfg, run_dir=run_dir).fit(data, val_data=data[:2])
    _write_config(run_dir, config={"train": cfg.to_dict(), "note": "<script>alert('x')</script> & co"})
    history = [{"step": s, "train_loss": 1.0 / s} for s in range(1, 6)]
    plot_learning_curves(history, run_dir / "gradient_flow.png")
    plot_learning_curves(history, run_dir / "sub dir" / "gates #1.png")  # a space and a '#' that URLs must escape


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run directory with its report written (drawing seven charts takes about a second, so once per module)."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    _train_tiny_run(run_dir)
    write_report(run_dir)
    return run_dir


@pytest.fixture
def small_run(tmp_path):
    """A config and two epochs of metrics written directly: one chart, for tests of everything but the charts."""
    run_dir = tmp_path / "small"
    run_dir.mkdir()
    _write_config(run_dir)
    (run_dir / "metrics.csv").write_text("epoch,step,train_loss\n1,4,0.9\n2,8,0.5\n")
    return run_dir


EXPECTED_CHARTS = {
    "loss.png", "loss_steps.png", "metric_mae.png", "learning_rate.png", "grad_norm.png", "grad_norm_steps.png",
    "throughput.png",
}  # fmt: skip


# ------------------------------------------------------------------------------------------ the page in a browser


def test_report_renders_every_image_without_console_errors(tiny_run, chromium):
    result = chromium.check(tiny_run / "report.html")
    assert not problems(result), problems(result)
    srcs = {i["src"] for i in result["images"]}
    assert srcs == {f"report/{name}" for name in EXPECTED_CHARTS} | {"gradient_flow.png", "sub%20dir/gates%20%231.png"}
    assert all(i["naturalWidth"] > 100 for i in result["images"])


def test_checker_catches_a_broken_image(tiny_run, tmp_path, chromium):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    page = run_dir / "report.html"
    (run_dir / "report" / "loss.png").unlink()  # a chart the page links, gone
    (run_dir / "gradient_flow.png").write_bytes(b"not a png")  # a task picture that is not an image
    found = problems(chromium.check(page))
    assert "image 'report/loss.png' did not load" in found
    assert "image 'gradient_flow.png' did not load" in found
    assert any("console error: Failed to load resource" in p and "loss.png" in p for p in found), found


def test_checker_catches_console_errors_and_exceptions(tmp_path, chromium):
    page = tmp_path / "bad.html"
    page.write_text("<!DOCTYPE html><html><body><script>console.error('boom', 42); null.x;</script></body></html>")
    found = problems(chromium.check(page))
    assert "console error: console.error: boom 42" in found
    assert any("TypeError" in p for p in found), found


# ------------------------------------------------------------------------------------------------- page content


def test_report_draws_every_chart_and_escapes_what_it_reads(tiny_run):
    page = (tiny_run / "report.html").read_text()
    assert {p.name for p in (tiny_run / "report").iterdir()} == EXPECTED_CHARTS
    assert "<h1>test_linear run: tiny</h1>" in page
    assert "Learning rate per step" in page  # from steps.csv, since the Trainer logged every step
    assert "train.lr</th><td>0.05</td>" in page  # the resolved config, flattened
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page
    assert "<script" not in page and "http" not in page  # no scripts, no external resources
    assert not list(tiny_run.glob(".*.tmp")) and not list((tiny_run / "report").glob(".*.tmp"))


def test_report_escapes_kind_and_metric_names(tmp_path):
    _write_config(tmp_path, kind="<b>kind</b>")
    (tmp_path / "metrics.csv").write_text('epoch,train_loss,"val_<i>acc</i>"\n1,0.5,0.25\n2,0.4,0.5\n')
    page = write_report(tmp_path).read_text()
    assert "&lt;b&gt;kind&lt;/b&gt;" in page and "<b>" not in page
    assert "val_&lt;i&gt;acc&lt;/i&gt;" in page and "<i>" not in page
    assert (tmp_path / "report" / "metric_i_acc_i.png").is_file()


@pytest.mark.parametrize("content", [None, "", "epoch,step,train_loss\n"])
def test_no_metrics_yet_is_a_page_section_not_a_crash(tmp_path, content):
    _write_config(tmp_path)
    if content is not None:
        (tmp_path / "metrics.csv").write_text(content)
    (tmp_path / "picture.png").write_bytes(b"")  # pictures are listed even before any metrics
    page = write_report(tmp_path).read_text()
    assert "No metrics yet" in page
    assert 'src="picture.png"' in page
    assert not list((tmp_path / "report").iterdir())


def test_a_row_cut_short_by_a_running_writer_is_read(tmp_path):
    _write_config(tmp_path)
    (tmp_path / "metrics.csv").write_text("epoch,step,train_loss,val_loss,lr\n1,5,0.9,1.0,0.1\n2,10,0.5,0.7,0.1\n3,1")
    page = write_report(tmp_path).read_text()
    assert "3 epoch row(s)" in page
    assert (tmp_path / "report" / "loss.png").is_file()


def test_nan_only_columns_draw_no_chart(tmp_path):
    _write_config(tmp_path)
    (tmp_path / "metrics.csv").write_text("epoch,train_loss,grad_norm\n1,0.5,nan\n2,0.4,\n")
    write_report(tmp_path)
    assert {p.name for p in (tmp_path / "report").iterdir()} == {"loss.png"}


def test_errors_say_what_happened_and_how_to_fix_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="No run directory at .*Pass the --out directory"):
        write_report(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="has no config.json.*Pass the directory a run wrote"):
        write_report(tmp_path)
    for name in ("lstm", "rnn"):  # the layout lstmkit demo writes: runs one level down
        (tmp_path / name).mkdir()
        _write_config(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="It holds runs in lstm, rnn: pass one of those"):
        write_report(tmp_path)
    (tmp_path / "lstm" / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        write_report(tmp_path / "lstm")


# ------------------------------------------------------------------------------------------------------------ CLI


def test_cli_prints_the_report_path_and_json(small_run, capsys):
    assert main(["report", str(small_run)]) == 0
    assert capsys.readouterr().out == f"{small_run / 'report.html'}\n"
    assert main(["report", str(small_run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"run_dir": str(small_run), "report": str(small_run / "report.html")}


def test_cli_open_hands_the_file_url_to_the_browser(small_run, monkeypatch, capsys):
    opened = []
    monkeypatch.setattr("webbrowser.open", lambda url: opened.append(url) or True)
    assert main(["report", str(small_run), "--open"]) == 0
    assert opened == [(small_run / "report.html").resolve().as_uri()]


def test_cli_user_mistakes_exit_2_with_one_sentence(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing")]) == 2
    captured = capsys.readouterr()
    assert "error: No run directory at" in captured.err and "Traceback" not in captured.err
    assert main(["report", str(tmp_path)]) == 2
    assert "has no config.json" in capsys.readouterr().err


def test_tiny_run_metrics_are_what_the_report_expects(tiny_run):
    """Pins the Trainer's columns the report reads, so a renamed column fails here rather than as a missing chart."""
    header = (tiny_run / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"epoch", "step", "train_loss", "val_loss", "val_mae", "lr", "grad_norm", "grad_norm_max",
            "items_per_sec"} <= set(header)  # fmt: skip
    steps_header = (tiny_run / "steps.csv").read_text().splitlines()[0].split(",")
    assert {"step", "loss", "lr", "grad_norm"} <= set(steps_header)
    assert np.isfinite(np.loadtxt(tiny_run / "steps.csv", delimiter=",", skiprows=1)).all()
