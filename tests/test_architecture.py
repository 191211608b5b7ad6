"""The dependency rules of docs/architecture.md, checked on the source with ``ast`` (no imports are executed).

- ``lstmkit.nn`` imports only torch, the standard library and its own modules (``nn.onnx_graph`` also numpy and onnx);
- ``lstmkit.nn.functional`` (the reference) never imports ``lstmkit.nn.fused`` (the fast paths);
- ``lstmkit.train`` imports nothing from ``lstmkit.nn`` or ``lstmkit.tasks``: the loop knows nothing of LSTMs;
- nothing imports ``lstmkit.cli`` except ``lstmkit/__main__.py`` and the cli package itself;
- ``lstmkit.data`` imports only numpy, torch, the standard library and itself;
- ``lstmkit.viz`` imports nothing from lstmkit but itself (it takes numpy arrays; tasks call it, never the reverse),
  and never ``matplotlib.pyplot`` (no global figure state);
- ``lstmkit.tasks.long_lag.problems`` (the long-lag generators, a package) imports nothing from lstmkit but itself:
  torch tensors only.
- ``lstmkit.serve`` reaches the model only through ``lstmkit.inference.predictor`` (and reads ``lstmkit.__version__``);
  nothing imports ``lstmkit.serve`` but the cli.
- ``lstmkit.bench`` (the speed benchmark) is not library code: nothing imports it but itself and ``cli/bench.py``;
  nor is ``lstmkit.scorecard`` (the accuracy scorecard): nothing imports it but itself and ``cli/benchmark.py``.
- ``lstmkit/__init__.py`` (the package face) imports only ``lstmkit._version`` and the standard library at run time: its
  public names sit under ``if TYPE_CHECKING:`` and are imported on first use (PEP 562); ``lstmkit.runs`` imports
  neither the face nor any task (``load`` finds a kind's class through ``runs.BUILTIN_KINDS``).

Every import statement counts, including those inside functions and ``if TYPE_CHECKING:`` blocks. Relative imports
are resolved to absolute names; ``from pkg import name`` counts as importing both ``pkg`` and ``pkg.name``.
"""

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "lstmkit"


def module_name(path: Path) -> str:
    """src/lstmkit/nn/fused/stream.py -> lstmkit.nn.fused.stream; a package's __init__.py -> the package."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Absolute names of everything ``source`` (the text of ``module``) imports."""
    names = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                assert node.level <= len(base), f"{module}: a relative import climbs above the top package"
                base = base[: len(base) - (node.level - 1)]
                if node.module:
                    base.append(node.module)
                origin = ".".join(base)
            else:
                origin = node.module
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def source_files(under: Path) -> list[Path]:
    files = sorted(under.rglob("*.py"))
    assert files, f"no Python files under {under}: the rule would pass vacuously"
    return files


def imports_of(path: Path) -> set[str]:
    return imported_names(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def is_within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# lstmkit.nn.onnx_graph writes the engine's layers as ONNX operators; it lives in nn (not export) so that the task
# families can build their own graphs without importing the export layer above them, and it needs numpy (constants)
# and onnx (imported when a graph is built; the ``export`` extra). No other module of nn may import either.
NN_EXTRA_THIRD_PARTY = {"lstmkit.nn.onnx_graph": {"numpy", "onnx"}}


def test_nn_imports_only_torch_the_standard_library_and_itself():
    offenders = []
    for path in source_files(PACKAGE / "nn"):
        allowed_third_party = {"torch"} | NN_EXTRA_THIRD_PARTY.get(module_name(path), set())
        for name in sorted(imports_of(path)):
            top = name.split(".")[0]
            if is_within(name, "lstmkit.nn") or top in allowed_third_party or top in sys.stdlib_module_names:
                continue
            offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert not offenders, "lstmkit.nn must import only torch and the standard library:\n" + "\n".join(offenders)


def test_functional_reference_never_imports_the_fast_paths():
    names = imports_of(PACKAGE / "nn" / "functional.py")
    assert names, "functional.py imports torch at least; finding nothing means the parse is broken"
    assert not [n for n in names if is_within(n, "lstmkit.nn.fused")], names


def test_train_knows_nothing_of_the_engine_or_the_tasks():
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in source_files(PACKAGE / "train")
        for name in sorted(imports_of(path))
        if is_within(name, "lstmkit.nn") or is_within(name, "lstmkit.tasks")
    ]
    assert not offenders, "\n".join(offenders)


def test_data_imports_only_numpy_torch_the_standard_library_and_itself():
    """data/ stands alone; only ``tables.py`` (reading the user's CSV) may use pandas, and the package face never
    imports it, so ``import lstmkit.data`` stays as light as numpy and torch."""
    offenders = []
    for path in source_files(PACKAGE / "data"):
        allowed = {"numpy", "torch"} | ({"pandas"} if path.name == "tables.py" else set())
        for name in sorted(imports_of(path)):
            top = name.split(".")[0]
            if is_within(name, "lstmkit.data") or top in allowed or top in sys.stdlib_module_names:
                continue
            offenders.append(f"{path.relative_to(SRC)} imports {name}")
    assert not offenders, "lstmkit.data must stand alone (numpy, torch):\n" + "\n".join(offenders)
    face = imports_of(PACKAGE / "data" / "__init__.py")
    assert "lstmkit.data.batches" in face, "the parse of data/__init__.py found nothing"
    assert not [n for n in face if is_within(n, "lstmkit.data.tables")], (
        "data/__init__.py must not import tables (pandas)"
    )


def test_nothing_imports_the_cli_but_main():
    cli = PACKAGE / "cli"
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in source_files(PACKAGE)
        if path != PACKAGE / "__main__.py" and cli not in path.parents
        for name in sorted(imports_of(path))
        if is_within(name, "lstmkit.cli")
    ]
    assert not offenders, "\n".join(offenders)


def test_viz_imports_nothing_from_lstmkit():
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in source_files(PACKAGE / "viz")
        for name in sorted(imports_of(path))
        if is_within(name, "lstmkit") and not is_within(name, "lstmkit.viz")
    ]
    assert not offenders, "\n".join(offenders)


def test_viz_never_imports_pyplot():
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in source_files(PACKAGE / "viz")
        for name in sorted(imports_of(path))
        if is_within(name, "matplotlib.pyplot")
    ]
    assert not offenders, "viz draws on Figure objects, never through pyplot's global state:\n" + "\n".join(offenders)


def test_long_lag_generators_import_nothing_from_lstmkit():
    files = source_files(PACKAGE / "tasks" / "long_lag" / "problems")
    assert len(files) >= 2, "long_lag/problems/ is a package of generator modules; finding none means the path moved"
    for path in files:
        names = imports_of(path)
        own = "lstmkit.tasks.long_lag.problems"
        if path.name != "__init__.py":
            assert "torch" in names, f"{path.name} imports torch; finding nothing means the parse is broken"
        offenders = [n for n in sorted(names) if is_within(n, "lstmkit") and not is_within(n, own)]
        assert not offenders, f"{path.relative_to(SRC)} imports {offenders}"


# ---- the checker itself: each rule would catch a violation ----------------------------------------------------------
@pytest.mark.parametrize(
    "source, module, is_package, expected",
    [
        ("import numpy as np", "lstmkit.nn.lstm", False, {"numpy"}),
        ("from . import functional", "lstmkit.nn.lstm", False, {"lstmkit.nn", "lstmkit.nn.functional"}),
        ("from .fused import stream", "lstmkit.nn.lstm", False, {"lstmkit.nn.fused", "lstmkit.nn.fused.stream"}),
        ("from ..functional import LN_EPS", "lstmkit.nn.fused.lstm_layer", False,
         {"lstmkit.nn.functional", "lstmkit.nn.functional.LN_EPS"}),
        ("from .cell import LSTMCell", "lstmkit.nn", True, {"lstmkit.nn.cell", "lstmkit.nn.cell.LSTMCell"}),
        ("from ... import runs", "lstmkit.tasks.long_lag.experiment", False, {"lstmkit", "lstmkit.runs"}),
        ("def f():\n    from lstmkit import cli\n", "lstmkit.runs", False, {"lstmkit", "lstmkit.cli"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import lstmkit.nn.lstm\n", "lstmkit.train.loop",
         False, {"typing", "typing.TYPE_CHECKING", "lstmkit.nn.lstm"}),
    ],
)  # fmt: skip
def test_import_resolution(source, module, is_package, expected):
    assert imported_names(source, module, is_package) == expected


def test_the_rules_flag_violations():
    numpy_in_nn = imported_names("import numpy", "lstmkit.nn.lstm", False)
    assert any(not is_within(n, "lstmkit.nn") and n.split(".")[0] not in sys.stdlib_module_names | {"torch"}
               for n in numpy_in_nn)  # fmt: skip
    fused_in_reference = imported_names("from .fused import lstm_layer", "lstmkit.nn.functional", False)
    assert any(is_within(n, "lstmkit.nn.fused") for n in fused_in_reference)
    nn_in_train = imported_names("from ..nn import LSTM", "lstmkit.train.loop", False)
    assert any(is_within(n, "lstmkit.nn") for n in nn_in_train)
    cli_in_runs = imported_names("from lstmkit import cli", "lstmkit.runs", False)
    assert any(is_within(n, "lstmkit.cli") for n in cli_in_runs)
    assert not is_within("lstmkit.nnx", "lstmkit.nn") and not is_within("lstmkit.client", "lstmkit.cli")


def test_module_names():
    assert module_name(PACKAGE / "nn" / "fused" / "stream.py") == "lstmkit.nn.fused.stream"
    assert module_name(PACKAGE / "nn" / "__init__.py") == "lstmkit.nn"


def test_imports_of_resolves_relative_imports_in_files(tmp_path, monkeypatch):
    """imports_of on a synthetic tree: the file's place decides what ``.`` means (a package's __init__ is its own
    package), and the rules then see a relative import exactly as its absolute spelling."""
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    sources = {
        "lstmkit/nn/__init__.py": "from .cell import LSTMCell\nfrom .. import runs\n",
        "lstmkit/train/loop.py": "import torch\nfrom .. import nn\nfrom ..tasks.timeseries import forecasting\n",
        "lstmkit/viz/plots.py": "from . import handwriting\nfrom matplotlib import pyplot\nimport lstmkit.cli.main\n",
    }
    for name, text in sources.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    package = tmp_path / "lstmkit"
    assert imports_of(package / "nn" / "__init__.py") == {"lstmkit.nn.cell", "lstmkit.nn.cell.LSTMCell", "lstmkit",
                                                         "lstmkit.runs"}  # fmt: skip
    loop = imports_of(package / "train" / "loop.py")
    assert loop == {
        "torch",
        "lstmkit",
        "lstmkit.nn",
        "lstmkit.tasks.timeseries",
        "lstmkit.tasks.timeseries.forecasting",
    }
    assert [n for n in sorted(loop) if is_within(n, "lstmkit.nn") or is_within(n, "lstmkit.tasks")] == [
        "lstmkit.nn", "lstmkit.tasks.timeseries", "lstmkit.tasks.timeseries.forecasting"]  # fmt: skip
    plots = imports_of(package / "viz" / "plots.py")
    assert {"lstmkit.viz", "lstmkit.viz.handwriting", "matplotlib.pyplot", "lstmkit.cli.main"} <= plots
    assert any(is_within(n, "lstmkit.cli") for n in plots) and any(is_within(n, "matplotlib.pyplot") for n in plots)
    (package / "runs.py").write_text("from ... import elsewhere\n")
    with pytest.raises(AssertionError, match="climbs above the top package"):
        imports_of(package / "runs.py")


def test_export_sits_above_the_tasks_nothing_below_imports_it():
    offenders = []
    for below in ("nn", "train", "tasks", "data", "viz"):
        for path in source_files(PACKAGE / below):
            offenders += [f"{path.relative_to(SRC)} imports {n}" for n in sorted(imports_of(path))
                          if is_within(n, "lstmkit.export")]  # fmt: skip
    assert not offenders, "lstmkit.export builds on the tasks, never the reverse:\n" + "\n".join(offenders)


def test_serve_goes_through_the_predictor_and_nothing_but_the_cli_imports_it():
    allowed = {"lstmkit", "lstmkit.__version__", "lstmkit.inference.predictor"}
    allowed |= {f"lstmkit.inference.predictor.{name}" for name in ("Predictor", "run_kind")}
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in source_files(PACKAGE / "serve")
        for name in sorted(imports_of(path))
        if is_within(name, "lstmkit") and not is_within(name, "lstmkit.serve") and name not in allowed
    ]
    cli = PACKAGE / "cli"
    offenders += [
        f"{path.relative_to(SRC)} imports {name}"
        for path in source_files(PACKAGE)
        if cli not in path.parents and PACKAGE / "serve" not in path.parents
        for name in sorted(imports_of(path))
        if is_within(name, "lstmkit.serve")
    ]
    assert not offenders, "serve -> inference.predictor -> tasks; nothing imports serve:\n" + "\n".join(offenders)


def test_nothing_imports_the_benchmark_but_its_command():
    bench, command = PACKAGE / "bench", PACKAGE / "cli" / "bench.py"
    assert "lstmkit.bench" in imports_of(command), "the command imports the benchmark: the rule must see that"
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in source_files(PACKAGE)
        if bench not in path.parents and path != command
        for name in sorted(imports_of(path))
        if is_within(name, "lstmkit.bench")
    ]
    assert not offenders, "lstmkit.bench is loaded by `lstmkit bench` only:\n" + "\n".join(offenders)


def test_nothing_imports_the_scorecard_but_its_command():
    card, command = PACKAGE / "scorecard", PACKAGE / "cli" / "benchmark.py"
    assert "lstmkit.scorecard" in imports_of(command), "the command imports the scorecard: the rule must see that"
    offenders = [
        f"{path.relative_to(SRC)} imports {name}"
        for path in source_files(PACKAGE)
        if card not in path.parents and path != command
        for name in sorted(imports_of(path))
        if is_within(name, "lstmkit.scorecard")
    ]
    assert not offenders, "lstmkit.scorecard is loaded by `lstmkit benchmark` only:\n" + "\n".join(offenders)


def test_the_package_face_is_lazy_and_runs_imports_no_task():
    face = PACKAGE / "__init__.py"
    tree = ast.parse(face.read_text(encoding="utf-8"))
    eager = [node for node in tree.body if not (isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")]
    names = imported_names(ast.unparse(ast.Module(body=eager, type_ignores=[])), "lstmkit", True)
    assert "lstmkit._version" in names, "the face reads its version: finding nothing means the parse is broken"
    offenders = [f"lstmkit/__init__.py imports {n}" for n in sorted(names)
                 if is_within(n, "lstmkit") and not is_within(n, "lstmkit._version")]  # fmt: skip
    offenders += [f"lstmkit/runs.py imports {n}" for n in sorted(imports_of(PACKAGE / "runs.py"))
                  if n == "lstmkit" or is_within(n, "lstmkit.tasks")]  # fmt: skip
    assert not offenders, "import lstmkit loads no task; runs finds kinds by their table:\n" + "\n".join(offenders)


# ---- the task families (issue 19) -----------------------------------------------------------------------------------
TASK_FAMILIES = {"sequence", "timeseries", "text", "recognition", "music", "long_lag"}
# The one module beside the families: how every task trains (its Trainer and run config, the training device), which
# each family had copied; a copy that drifts changes what a resume accepts. Family code goes in a family.
TASKS_SHARED_MODULES = {"training.py"}
MAX_TASK_MODULE_LINES = 650  # "no module over ~600 lines": one job per module


def test_tasks_live_in_families_of_small_modules():
    tasks = PACKAGE / "tasks"
    loose = sorted(p.name for p in tasks.glob("*.py") if p.name != "__init__.py" and p.name not in TASKS_SHARED_MODULES)
    shared = sorted(TASKS_SHARED_MODULES)
    assert not loose, f"tasks/ holds families (and {shared}); move {loose} into one of {sorted(TASK_FAMILIES)}"
    families = {p.name for p in tasks.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert families == TASK_FAMILIES, families
    for path in source_files(tasks):
        assert (path.parent / "__init__.py").exists(), f"{path.parent} is a folder of tasks/ but not a package"
    long = {
        str(p.relative_to(SRC)): n
        for p in source_files(tasks)
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_TASK_MODULE_LINES
    }
    assert not long, f"split these task modules by job (at most ~600 lines each): {long}"


def private_imports(path: Path) -> list[tuple[str, str]]:
    """(origin, name) for every imported name or module segment that starts with one underscore."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [(a.name.rpartition(".")[0], a.name.rpartition(".")[2]) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)] if node.level else []
            origin = ".".join([*base, *([node.module] if node.module else [])])
            targets = [(origin, a.name) for a in node.names]
            parts = origin.split(".")
            targets += [(".".join(parts[:i]), p) for i, p in enumerate(parts) if i]
        else:
            continue
        out += [(o, n) for o, n in targets if n.startswith("_") and not n.startswith("__")]
    return out


def test_no_module_imports_another_modules_private_names():
    """A private module (``_atomic``, ``cli/_console``) serves the package that holds it and everything below; a
    private name inside a module (``_sample``) serves that module alone: a name two modules share is public."""
    offenders = []
    for path in source_files(PACKAGE):
        importer = module_name(path)
        for origin, name in private_imports(path):
            where = SRC / Path(*origin.split("."), name)
            is_module = where.with_suffix(".py").exists() or (where / "__init__.py").exists()
            if is_module and is_within(importer, origin):
                continue
            offenders.append(f"{importer} imports {origin}.{name}")
    assert not offenders, "\n".join(offenders)


def test_the_private_name_rule_flags_a_private_function_but_not_a_private_module(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "SRC", tmp_path)
    (tmp_path / "lstmkit" / "tasks" / "music").mkdir(parents=True)
    music = tmp_path / "lstmkit" / "tasks" / "music" / "model.py"
    music.write_text("from ..text.language import _sample, LanguageModel\nfrom ... import _atomic\n")
    assert private_imports(music) == [("lstmkit.tasks.text.language", "_sample"), ("lstmkit", "_atomic")]
