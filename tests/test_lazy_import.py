"""``import lstmkit`` is lazy (PEP 562) and ``lstmkit.load`` resolves kinds from ``runs.BUILTIN_KINDS`` (issue 19, 7).

Importing the package loads no task and no heavy dependency (not even torch); each public name is imported on first
use; ``lstmkit.load`` and ``lstmkit.train.resume`` work in a fresh process with no task imported first, importing only
the task of the run they read. The checks that need a fresh interpreter run one in a subprocess.
"""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lstmkit
from lstmkit import runs

PACKAGE = Path(lstmkit.__file__).parent
HEAVY = ("torch", "librosa", "music21", "pandas", "onnx", "onnxruntime", "fastapi", "sklearn", "matplotlib", "scipy")


def fresh_python(code: str) -> str:
    """Run ``code`` in a new interpreter; its stdout (the last line is usually JSON)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_import_lstmkit_loads_no_task_and_no_heavy_dependency() -> None:
    out = fresh_python("import json, sys, lstmkit; print(json.dumps(sorted(sys.modules)))")
    modules = set(json.loads(out.splitlines()[-1]))
    assert {m for m in modules if m.startswith("lstmkit")} == {"lstmkit", "lstmkit._version"}
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_the_command_lines_help_and_a_users_mistake_load_no_torch() -> None:
    """``lstmkit --help`` and every group's help read the options without importing torch or a task (0.3 s, not 4 s):
    task configs live in torch-free modules, the benchmark's suites load on first use, runs.py imports torch where it
    reads or writes tensors."""
    out = fresh_python(
        "import contextlib, io, json, sys\n"
        "from lstmkit.cli import main\n"
        "for argv in (['--help'], ['bench', '--help'], ['experiment', '--help'], ['demo', '--help'],\n"
        "             *([g, 'train', '--help'] for g in ('forecast', 'anomaly', 'classify', 'text', 'translate',\n"
        "                                              'speech', 'handwriting', 'music'))):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        assert main(argv) == 0, argv\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'torch' or m.startswith('lstmkit.tasks.'))))"
    )
    heavy = json.loads(out.splitlines()[-1])
    assert "torch" not in heavy, heavy


def test_each_public_name_imports_only_what_defines_it() -> None:
    out = fresh_python(
        "import json, sys, lstmkit\n"
        "lstmkit.Forecaster\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('lstmkit.tasks.'))))"
    )
    tasks = set(json.loads(out.splitlines()[-1]))
    assert "lstmkit.tasks.timeseries.forecasting" in tasks
    assert not tasks & {
        "lstmkit.tasks.recognition.speech.recognizer",
        "lstmkit.tasks.music.model",
        "lstmkit.tasks.timeseries.anomaly.detector",
    }, sorted(tasks)


def test_public_names_resolve_as_before_and_dir_lists_them() -> None:
    assert lstmkit.__all__ == [
        "AnomalyDetector", "Forecaster", "HandwritingRecognizer", "LanguageModel", "MusicModel", "Predictor", "Seq2Seq",
        "SequenceClassifier", "SequenceRegressor", "SpeechRecognizer", "TextClassifier", "__version__", "load", "nn",
    ]  # fmt: skip
    assert set(lstmkit.__all__) <= set(dir(lstmkit))
    for name, module in lstmkit._LAZY.items():
        assert getattr(lstmkit, name) is getattr(importlib.import_module(module), name), name
    assert lstmkit.nn is importlib.import_module("lstmkit.nn") and lstmkit.nn.LSTM is not None
    assert lstmkit.load is runs.load and lstmkit.__version__ == runs.__version__
    assert lstmkit.train is importlib.import_module("lstmkit.train")  # subpackages resolve on access, as before
    from lstmkit import Forecaster, nn  # noqa: F401  (the from-import form works too)

    with pytest.raises(AttributeError, match="module 'lstmkit' has no attribute 'no_such_name'"):
        lstmkit.no_such_name  # noqa: B018


def test_the_type_checking_block_the_lazy_table_and_all_name_the_same_things() -> None:
    """Type checkers and IDEs read the ``if TYPE_CHECKING:`` imports; they must match what __getattr__ serves."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", None) == "TYPE_CHECKING")
    seen = {
        alias.asname or alias.name: f"lstmkit.{node.module}" if node.module else "lstmkit"
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen.pop("nn") == "lstmkit"  # the subpackage
    assert seen == lstmkit._LAZY
    assert {*lstmkit._LAZY, "nn", "__version__"} == set(lstmkit.__all__)


def _modules_that_register_kinds() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name != "runs.py" and "register_kind(" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    assert names, "no module registers a kind: the search is broken"
    return names


def test_the_kind_table_and_the_registered_kinds_agree() -> None:
    """Every @register_kind of lstmkit is in runs.BUILTIN_KINDS with its class, and nothing else is."""
    for module in _modules_that_register_kinds():
        importlib.import_module(module)
    registered = {
        kind: f"{cls.__module__}:{cls.__qualname__}"
        for kind, cls in runs._KINDS.items()
        if cls.__module__.startswith("lstmkit.")
    }
    assert registered == dict(runs.BUILTIN_KINDS)
    for kind in runs.BUILTIN_KINDS:
        assert runs.resolve_kind(kind) is runs._KINDS[kind]


@pytest.fixture()
def empty_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a fresh process: no task imported, nothing registered."""
    monkeypatch.setattr(runs, "_KINDS", {})


class _Mine:
    @classmethod
    def load(cls, path: Path) -> _Mine:
        return cls()


def test_user_kinds_load_and_builtin_names_stay_builtin(tmp_path: Path, empty_registry: None) -> None:
    import torch

    runs.register_kind("my_kind")(_Mine)
    runs.save_run(tmp_path / "mine", "my_kind", {}, torch.nn.Linear(1, 1))
    assert isinstance(lstmkit.load(tmp_path / "mine"), _Mine)
    assert {"my_kind", *runs.BUILTIN_KINDS} == set(runs.registered_kinds())
    with pytest.raises(
        ValueError, match="'forecaster' is already registered to lstmkit.tasks.timeseries.forecasting.Forecaster"
    ):
        runs.register_kind("forecaster")(_Mine)  # refused even before the forecasting module is imported
    runs.save_run(tmp_path / "odd", "martian", {}, torch.nn.Linear(1, 1))
    with pytest.raises(runs.UnknownKindError, match=r"kind 'martian', but no class is registered.*'forecaster'"):
        lstmkit.load(tmp_path / "odd")
    with pytest.raises(runs.UnknownKindError, match=r"No class is registered for kind 'martian'.*'my_kind'"):
        runs.resolve_kind("martian")


def test_load_in_a_fresh_process_imports_only_the_task_of_the_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(16, 5, 1)).astype(np.float32)
    regressor = lstmkit.SequenceRegressor(hidden_size=4, epochs=1, batch_size=8, progress=False).fit(X, X.sum((1, 2)))
    regressor.save(tmp_path / "regressor")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "regressor.npy", regressor.predict(X))

    import pandas as pd

    t = np.arange(48)
    frame = pd.DataFrame({"time": pd.date_range("2000-01-01", periods=48, freq="MS"), "y": np.sin(t / 2) + 0.01 * t})
    forecaster = lstmkit.Forecaster(target="y", horizon=3, season=12, epochs=2, hidden_size=4).fit(frame)
    forecaster.save(tmp_path / "forecaster")
    values = frame["y"].to_numpy()[-24:]
    np.save(tmp_path / "values.npy", values)
    np.save(tmp_path / "forecaster.npy", forecaster.forecast_window(values))

    out = fresh_python(
        "import json, sys\nimport numpy as np\nimport lstmkit\n"
        f"d = {str(tmp_path)!r}\n"
        "r = lstmkit.load(d + '/regressor')\n"
        "np.save(d + '/regressor_again.npy', r.predict(np.load(d + '/X.npy')))\n"
        "f = lstmkit.load(d + '/forecaster')\n"
        "np.save(d + '/forecaster_again.npy', f.forecast_window(np.load(d + '/values.npy')))\n"
        "tasks = sorted(m for m in sys.modules if m.startswith('lstmkit.tasks.'))\n"
        "print(json.dumps([type(r).__name__, type(f).__name__, tasks]))"
    )
    names = json.loads(out.splitlines()[-1])
    assert names[:2] == ["SequenceRegressor", "Forecaster"]
    tasks = set(names[2])
    assert {"lstmkit.tasks.sequence.estimators", "lstmkit.tasks.timeseries.forecasting"} <= tasks
    assert not tasks & {
        "lstmkit.tasks.recognition.speech.recognizer",
        "lstmkit.tasks.music.model",
        "lstmkit.tasks.timeseries.anomaly.detector",
    }, sorted(tasks)
    for name in ("regressor", "forecaster"):
        np.testing.assert_array_equal(np.load(tmp_path / f"{name}_again.npy"), np.load(tmp_path / f"{name}.npy"))


def test_resume_in_a_fresh_process_finds_the_task_of_the_checkpoint(tmp_path: Path, monkeypatch) -> None:
    """``lstmkit.train.resume`` used to work only because ``import lstmkit`` had registered every task's resumer."""
    from lstmkit.tasks.long_lag import experiment as long_lag

    real_iter, seen = long_lag._TrainBatches.__iter__, {"epochs": 0}

    def crashing(self):
        seen["epochs"] += 1
        for i, batch in enumerate(real_iter(self)):
            if seen["epochs"] == 2 and i == 2:
                raise KeyboardInterrupt("simulated crash")
            yield batch

    monkeypatch.setattr(long_lag._TrainBatches, "__iter__", crashing)
    cfg = long_lag.ExperimentConfig.from_dict(
        dict(length=10, hidden_size=4, batch_size=8, eval_every=4, max_sequences=8 * 4 * 3, val_size=16, test_size=16)
    )
    with pytest.raises(KeyboardInterrupt):
        long_lag.run(cfg, tmp_path / "cut")
    assert not runs.is_finished(tmp_path / "cut")

    out = fresh_python(
        "import json, lstmkit\n"
        f"result = lstmkit.train.resume({str(tmp_path / 'cut')!r})\n"
        "print(json.dumps(result.summary()))"
    )
    summary = json.loads(out.splitlines()[-1])
    assert summary["task"] == "adding" and summary["sequences_seen"] == 8 * 4 * 3
    assert runs.is_finished(tmp_path / "cut")
