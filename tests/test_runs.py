"""Run directories: save_run / read_run_config / load round trips, atomic writes, the kind registry and errors."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import lstmkit
from lstmkit import runs
from lstmkit.runs import (
    UnknownKindError,
    load,
    read_extra_tensors,
    read_run_config,
    read_state_dict,
    register_kind,
    save_run,
)


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own copy of the kind registry, so dummy kinds do not leak."""
    monkeypatch.setattr(runs, "_KINDS", dict(runs._KINDS))


class Dummy(nn.Module):
    """A tiny module with several dtypes, a buffer and a tied weight."""

    def __init__(self, hidden: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.lstm = nn.LSTM(2, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 2)
        self.tied = self.head  # same parameters under two names in the state_dict
        self.scale = nn.Parameter(torch.randn(hidden, dtype=torch.float64))
        self.register_buffer("counts", torch.arange(5, dtype=torch.int64))

    @classmethod
    def load(cls, path: Path) -> Dummy:
        config = read_run_config(path)["config"]
        model = cls(hidden=config["hidden"])
        model.load_state_dict(read_state_dict(path))
        return model


def _register_dummy() -> None:
    register_kind("dummy")(Dummy)


def test_save_and_load_round_trip_is_bitwise(tmp_path: Path) -> None:
    _register_dummy()
    torch.manual_seed(0)
    model = Dummy(hidden=4)
    run = save_run(tmp_path / "run", "dummy", {"hidden": 4, "sizes": (1, 2)}, model)
    assert sorted(p.name for p in run.iterdir()) == ["config.json", "model.safetensors"]  # no temp files left
    saved = json.loads((run / "config.json").read_text())
    assert saved == {"kind": "dummy", "lstmkit_version": lstmkit.__version__, "config": {"hidden": 4, "sizes": [1, 2]}}

    loaded = load(run)
    assert type(loaded) is Dummy and loaded.hidden == 4
    expected, got = model.state_dict(), loaded.state_dict()
    assert list(expected) == list(got)
    for name in expected:
        assert got[name].dtype == expected[name].dtype, name
        assert torch.equal(got[name], expected[name]), name
    assert load(run / "config.json").hidden == 4  # the path of config.json works too


def test_config_object_with_to_dict_and_extra_tensors(tmp_path: Path) -> None:
    from lstmkit.config import TrainConfig

    extra = {"mean": torch.tensor([1.5, -2.0]), "std": torch.ones(2, dtype=torch.float64)}
    run = save_run(tmp_path, "dummy", TrainConfig(epochs=2), nn.Linear(2, 2), extra_tensors=extra)
    assert TrainConfig.from_dict(read_run_config(run)["config"]) == TrainConfig(epochs=2)
    back = read_extra_tensors(run)
    assert set(back) == {"mean", "std"} and all(torch.equal(back[k], extra[k]) for k in extra)
    assert back["std"].dtype == torch.float64
    save_run(tmp_path, "dummy", {}, nn.Linear(2, 2), overwrite=True)
    assert read_extra_tensors(run) == {}  # the stale extras of the replaced run are gone


def test_existing_run_is_not_overwritten_silently(tmp_path: Path) -> None:
    save_run(tmp_path, "dummy", {"hidden": 3}, Dummy())
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        save_run(tmp_path, "dummy", {"hidden": 3}, Dummy())
    save_run(tmp_path, "dummy", {"hidden": 5}, Dummy(hidden=5), overwrite=True)
    assert read_run_config(tmp_path)["config"] == {"hidden": 5}


def test_failed_write_leaves_no_temp_files_and_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    old = Dummy()
    save_run(tmp_path, "dummy", {"hidden": 3}, old)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def failing_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(runs.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        save_run(tmp_path, "dummy", {"hidden": 3}, Dummy(), overwrite=True)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # old run intact, no temp files

    fresh = tmp_path / "fresh"
    with pytest.raises(OSError, match="disk full"):
        save_run(fresh, "dummy", {"hidden": 3}, Dummy())
    assert list(fresh.iterdir()) == []  # neither a half-written nor a temp file


def test_atomic_write_is_fsynced_before_replace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(runs.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        runs.os, "replace", lambda a, b: (events.append(f"replace {Path(b).name}"), real_replace(a, b))[1]
    )
    save_run(tmp_path, "dummy", {}, nn.Linear(1, 1))
    replaces = [e for e in events if e.startswith("replace")]
    assert replaces == ["replace model.safetensors", "replace config.json"]  # config.json last: marks a complete run
    for r in replaces:
        assert events[events.index(r) - 1] == "fsync"


def test_unknown_kind_lists_known_kinds(tmp_path: Path) -> None:
    _register_dummy()
    save_run(tmp_path, "mystery", {}, nn.Linear(1, 1))
    with pytest.raises(UnknownKindError, match=r"kind 'mystery', but no class is registered.*Known kinds: \[.*'dummy'"):
        load(tmp_path)
    with pytest.raises(KeyError):  # UnknownKindError is a KeyError
        load(tmp_path)


def test_register_kind_checks(tmp_path: Path) -> None:
    _register_dummy()
    _register_dummy()  # the same class again is fine (module reloads)

    class NoLoad:
        pass

    with pytest.raises(TypeError, match="has no load\\(path\\) classmethod"):
        register_kind("noload")(NoLoad)

    class Other:
        @classmethod
        def load(cls, path: Path) -> Other:
            return cls()

    with pytest.raises(ValueError, match="Kind 'dummy' is already registered to .*Dummy"):
        register_kind("dummy")(Other)
    register_kind("other")(Other)
    assert {"dummy", "other"} <= set(runs.registered_kinds())


def test_read_run_config_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="No run directory at"):
        read_run_config(tmp_path / "nope")
    (tmp_path / "metrics.csv").write_text("epoch\n")
    with pytest.raises(FileNotFoundError, match=r"has no config\.json.*\['metrics\.csv'\]"):
        read_run_config(tmp_path)
    (tmp_path / "config.json").write_text('{"kind": "dummy", ')
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        read_run_config(tmp_path)
    (tmp_path / "config.json").write_text('{"config": {}}')
    with pytest.raises(ValueError, match=r"lacks the key\(s\) \['kind'\]"):
        read_run_config(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="should hold a JSON object, got list"):
        load(tmp_path)
    (tmp_path / "config.json").write_text('{"kind": "dummy", "config": {}}')
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors is missing"):
        read_state_dict(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        read_state_dict(tmp_path)


def test_save_run_rejects_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="could not write the config of kind 'dummy' as JSON"):
        save_run(tmp_path, "dummy", {"f": object()}, nn.Linear(1, 1))
    with pytest.raises(TypeError, match="non-empty string"):
        save_run(tmp_path, "", {}, nn.Linear(1, 1))
    with pytest.raises(TypeError, match=r"extra_tensors\['x'\] is a list, not a tensor"):
        save_run(tmp_path, "dummy", {}, nn.Linear(1, 1), extra_tensors={"x": [1.0]})  # type: ignore[dict-item]
    assert list(tmp_path.iterdir()) == []  # nothing written when the inputs are bad


def test_no_pickle_in_runs_or_train() -> None:
    import lstmkit.train

    sources = [Path(runs.__file__), *Path(lstmkit.train.__file__).parent.glob("*.py")]
    for path in sources:
        text = path.read_text()
        found = re.findall(r"import pickle|(?<!safetensors\.)\btorch\.(?:save|load)\(", text)
        assert not found, f"{path.name} uses {found}; lstmkit stores tensors with safetensors only"


def test_a_started_run_has_a_config_json_but_is_neither_finished_nor_loadable(tmp_path: Path) -> None:
    """Issue 18: config.json is written as training starts (lstmkit report, lstmkit resume), then replaced."""
    _register_dummy()
    with runs.recording_command(["text", "train", "--out", "lm"], cwd="/work"):
        assert runs.start_run(tmp_path, "dummy", {"hidden": 4}) == tmp_path / "config.json"
    started = json.loads((tmp_path / "config.json").read_text())
    assert started["status"] == "training" and started["kind"] == "dummy" and started["config"] == {"hidden": 4}
    assert started["command"] == {"argv": ["text", "train", "--out", "lm"], "cwd": "/work"}
    assert not runs.is_finished(tmp_path) and read_run_config(tmp_path)["config"] == {"hidden": 4}
    with pytest.raises(runs.UnfinishedRunError, match="whose model has not been saved.*lstmkit resume"):
        load(tmp_path)
    with pytest.raises(runs.UnfinishedRunError):
        read_run_config(tmp_path, "dummy")  # a caller that rebuilds the model
    runs.start_run(tmp_path, "dummy", {"hidden": 3})  # a resume from Python keeps the recorded command
    assert json.loads((tmp_path / "config.json").read_text())["command"]["cwd"] == "/work"

    save_run(tmp_path, "dummy", {"hidden": 3}, Dummy())  # replaces the started config.json without overwrite=True
    assert runs.is_finished(tmp_path) and isinstance(load(tmp_path), Dummy)
    assert runs.start_run(tmp_path, "dummy", {"hidden": 5}) is None  # a finished run is never touched
    assert "status" not in json.loads((tmp_path / "config.json").read_text())
    assert not runs.is_finished(tmp_path / "none")
