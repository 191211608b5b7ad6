"""The task contract (docs/architecture.md, issue 19 item 9), one harness for every task kind, in the spirit of Keras'
``run_layer_test``: each task trains once (its tiny command from tests/test_run_directory.py) and the run walks the
stages, one test per stage so that a failure names both:

1. fit: ``train --json`` exits 0 and prints the one shape ``{"task", "run_dir", "metrics", "baselines", ...}``, its
   ``task`` the run's kind.
2. predict: ``lstmkit.load(run)`` gives the task object, whose own API predicts on a fixed probe.
3. save/load: a copy of the run directory, and the object saved again, load to the same predictions, exactly.
4. resume: ``lstmkit resume RUN`` and ``train --resume`` on the finished run neither retrain nor touch its model.
5. export: ``lstmkit export onnx`` writes an exportable kind, and refuses any other in one sentence.
6. CLI round trip: the kind's inference verb reads the run and prints JSON that agrees with the Python API.
7. bad input: ``--lr -1`` and a missing data file are one sentence each, exit 2, and leave no run directory.

A stage a task does not meet yet is marked ``xfail(strict=True)`` in :data:`GAPS` with the reason, so that fixing it
turns the mark into a failure to remove.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import lstmkit  # noqa: E402
from contract_tasks import KINDS, data_of, parse_json, same  # noqa: E402
from lstmkit.cli import main  # noqa: E402
from test_run_directory import (  # noqa: E402  (the tiny training commands, and their data as fixtures)
    NEEDS,
    TASKS,
    handwriting_data,  # noqa: F401
    speech_data,  # noqa: F401
)

assert set(KINDS) == set(TASKS), "every task of tests/test_run_directory.py needs its entry in contract_tasks.KINDS"

SHAPE = ["task", "run_dir", "metrics", "baselines"]

GAPS: dict[tuple[str, str], str] = {
    ("cli", "experiment"): "no command reads a finished long-lag run back: `lstmkit experiment TASK` only trains, and "
    "LongLagRun.evaluate() (judging the model again on fresh sequences) has no CLI verb taking the run directory",
}
"""(stage, task) -> why the task does not meet that stage of the contract yet (a strict xfail)."""


def cases(stage: str) -> list[Any]:
    """Every task, as parameters of ``stage``'s test, with its known gap (if any) marked."""
    out = []
    for task in sorted(TASKS):
        gap = GAPS.get((stage, task))
        marks = [pytest.mark.xfail(strict=True, reason=gap)] if gap else []
        out.append(pytest.param(task, marks=marks, id=task))
    return out


def cli(argv: list[str]) -> tuple[int, str, str]:
    """Run the command line in this process: (exit code, stdout, stderr). A bug's exception propagates."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def assert_one_sentence(code: int, err: str, *words: str) -> str:
    """Exit code 2 and one ``error:`` line on stderr, last, naming ``words``; no traceback."""
    assert "Traceback" not in err, err
    assert code == 2, f"exit code {code}, expected 2; stderr: {err[-2000:]}"
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], f"expected one 'error:' line, last: {err[-2000:]}"
    message = errors[0]
    assert all(w in message for w in words), f"the message should name {words}: {message}"
    return message


@dataclass
class Run:
    task: str
    argv: list[str]  # the training command, without --out
    out: Path  # the run directory
    tmp: Path  # a scratch folder of this task's
    data: Path | None  # the data file or folder the command reads
    code: int
    stdout: str
    stderr: str

    def trained(self) -> Path:
        """The run directory of a training that succeeded (the fit stage reports a failure itself)."""
        if self.code != 0:
            pytest.fail(f"{self.task}: its training failed (exit {self.code}), see the fit stage: {self.stderr[-999:]}")
        return self.out


class Runs:
    """Each task trained once, on first use, in a folder of this module's."""

    def __init__(self, root: Path) -> None:
        self.root, self.done = root, {}

    def get(self, task: str, request: pytest.FixtureRequest) -> Run:
        if task not in self.done:
            given = request.getfixturevalue(NEEDS[task]) if task in NEEDS else None
            tmp = self.root / task
            tmp.mkdir()
            argv = TASKS[task](given if given is not None else tmp)
            out = tmp / "run"
            try:
                code, stdout, stderr = cli([*argv, "--out", out, "--json"])
            except Exception:  # a bug: the fit stage shows its traceback, the other stages do not train again
                code, stdout, stderr = -1, "", traceback.format_exc()
            self.done[task] = Run(task, argv, out, tmp, data_of(KINDS[task], argv), code, stdout, stderr)
        return self.done[task]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("contract"))


def _model_file(run_dir: Path) -> tuple[str, int, int]:
    """What identifies the saved weights: their digest, the file's inode and modification time."""
    path = run_dir / "model.safetensors"
    stat = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), stat.st_ino, stat.st_mtime_ns


# ---- 1. fit ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", cases("fit"))
def test_fit_prints_the_one_json_shape(task, runs, request):
    run = runs.get(task, request)
    assert "Traceback" not in run.stderr, run.stderr
    assert run.code == 0, f"exit {run.code}: {run.stderr[-2000:]}"
    summary = parse_json(run.stdout)
    assert isinstance(summary, dict) and list(summary)[:4] == SHAPE, list(summary)
    kind = json.loads((run.out / "config.json").read_text())["kind"]
    assert summary["task"] == kind, f"'task' is {summary['task']!r}, the run's kind {kind!r}"
    assert Path(summary["run_dir"]).resolve() == run.out.resolve(), summary["run_dir"]
    assert isinstance(summary["metrics"], dict) and summary["metrics"], summary["metrics"]
    assert isinstance(summary["baselines"], dict), summary["baselines"]
    assert all(isinstance(m, dict) for m in summary["baselines"].values()), summary["baselines"]


# ---- 2. predict ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", cases("predict"))
def test_load_gives_the_task_object_that_predicts(task, runs, request):
    run = runs.get(task, request)
    obj = lstmkit.load(run.trained())
    assert type(obj).__name__ == KINDS[task].cls, type(obj)
    first = KINDS[task].probe(obj, run.data)
    same(first, KINDS[task].probe(obj, run.data), "a second call")  # the probe is deterministic


# ---- 3. save / load --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", cases("save_load"))
def test_a_copied_and_a_resaved_run_predict_the_same(task, runs, request):
    run = runs.get(task, request)
    kind = KINDS[task]
    original = lstmkit.load(run.trained())
    want = kind.probe(original, run.data)
    copy, away = run.tmp / "copy", run.tmp / "away"
    shutil.copytree(run.out, copy)
    run.out.rename(away)  # the copy must not read the original (an absolute path recorded in it, say)
    try:
        same(want, kind.probe(lstmkit.load(copy), run.data), "the copy")
    finally:
        away.rename(run.out)
    assert callable(getattr(original, "save", None)), f"{type(original).__name__} has no save()"
    resaved = run.tmp / "resaved"
    original.save(resaved)
    same(want, kind.probe(lstmkit.load(resaved), run.data), "the re-saved run")


# ---- 4. resume -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", cases("resume"))
def test_resuming_a_finished_run_leaves_its_model(task, runs, request):
    """The contract now: a finished run is never trained again; ``lstmkit resume``, ``train --resume`` and a re-run of
    the same command on its --out each say so in one sentence (exit 2), and its weights stay as they were."""
    run = runs.get(task, request)
    before = _model_file(run.trained())
    for argv in (["resume", run.out], [*run.argv, "--out", run.out, "--resume", "--json"],
                 [*run.argv, "--out", run.out, "--json"]):  # fmt: skip
        code, out, err = cli(argv)
        assert_one_sentence(code, err, "finished", str(run.out))
        assert not out.strip(), f"a refused command printed {out[:500]!r}"
        assert _model_file(run.out) == before, f"{' '.join(map(str, argv[:3]))} ... touched the finished model"


# ---- 5. export -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", cases("export"))
def test_export_writes_an_exportable_kind_and_refuses_another(task, runs, request):
    run = runs.get(task, request)
    target = run.tmp / "export" / "model.onnx"
    code, out, err = cli(["export", "onnx", run.trained(), "--out", target, "--json"])
    if KINDS[task].exportable:
        assert code == 0, err[-2000:]
        report = parse_json(out)
        assert target.is_file() and target.stat().st_size > 0, report
        assert all(Path(f["path"]).is_file() for f in report["files"]), report
    else:
        assert_one_sentence(code, err, "cannot be exported")
        assert not target.exists()


# ---- 6. CLI round trip -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", cases("cli"))
def test_the_inference_verb_reads_the_run(task, runs, request):
    run = runs.get(task, request)
    kind = KINDS[task]
    run_dir = run.trained()
    if kind.verb is None:
        pytest.fail(f"{task}: no command reads a {kind.cls} run back (predict / evaluate RUN)")
    code, out, err = cli([*kind.verb(run_dir, run.data, run.tmp), "--json"])
    assert "Traceback" not in err, err
    assert code == 0, err[-2000:]
    kind.check_verb(parse_json(out), kind.probe(lstmkit.load(run_dir), run.data))


# ---- 7. bad input ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", cases("bad_lr"))
@pytest.mark.parametrize("how", [["--lr", "-1"], ["--set", "train.lr=-1"]], ids=["--lr", "--set"])
def test_a_negative_learning_rate_is_one_sentence(task, how, tmp_path, request):
    given = request.getfixturevalue(NEEDS[task]) if task in NEEDS else tmp_path
    out = tmp_path / "bad"
    code, _, err = cli([*TASKS[task](given), *how, "--out", out])
    assert_one_sentence(code, err, "lr must be", "-1", *how[:1] if how[0] == "--lr" else ())
    assert not out.exists(), f"a refused run left {sorted(p.name for p in out.iterdir())}"


@pytest.mark.parametrize("task", cases("missing_data"))
def test_a_missing_data_file_is_one_sentence(task, tmp_path, request):
    given = request.getfixturevalue(NEEDS[task]) if task in NEEDS else tmp_path
    argv = TASKS[task](given)
    flag = KINDS[task].data_flag or "--config"  # a task that reads no data file still reads a --config file
    missing = tmp_path / "missing" / ("data.json" if flag == "--config" else "data.csv")
    if flag in argv:
        argv[argv.index(flag) + 1] = str(missing)
    else:
        argv += [flag, str(missing)]
    out = tmp_path / "bad"
    code, _, err = cli([*argv, "--out", out])
    assert_one_sentence(code, err, str(missing))
    assert not out.exists(), f"a refused run left {sorted(p.name for p in out.iterdir())}"


def test_every_kind_names_a_built_in_class():
    from lstmkit.runs import BUILTIN_KINDS

    assert {k.cls for k in KINDS.values()} <= {v.rpartition(":")[2] for v in BUILTIN_KINDS.values()}
