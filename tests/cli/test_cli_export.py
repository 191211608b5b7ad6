"""``lstmkit export onnx`` in-process (issue 18, "nothing lost, nothing raw"): --out never replaces a file that is not
an earlier export of the run unless --force is given; --out may name a directory; a run of a kind that cannot be
exported is one sentence naming its kind and the kinds that can, exit code 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
import onnx  # noqa: E402

from lstmkit.cli import main  # noqa: E402
from lstmkit.tasks.sequence.estimators import SequenceClassifier  # noqa: E402

CSV = b"time,value\n2024-01-01,1.5\n2024-01-02,2.5\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((24, 12, 2)).astype(np.float32)
    y = (X[:, :, 0].mean(1) > 0).astype(int)
    return SequenceClassifier(hidden_size=8, epochs=1).fit(X, y).save(tmp_path_factory.mktemp("runs") / "run")


def props(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def one_sentence(err: str) -> str:
    assert "Traceback" not in err and err.startswith("error: ")
    return " ".join(err.split())  # the console wraps long lines


def test_out_never_replaces_a_file_that_is_not_an_earlier_export_of_the_run(run_dir, tmp_path, capsys) -> None:
    data = tmp_path / "data" / "sensors.csv"
    data.parent.mkdir()
    data.write_bytes(CSV)
    assert main(["export", "onnx", str(run_dir), "--out", str(data)]) == 2
    err = one_sentence(capsys.readouterr().err)
    assert f"{data} already exists and is not an earlier ONNX export of this run" in err
    assert "pass --force to replace it or choose another --out" in err
    assert data.read_bytes() == CSV and [p.name for p in data.parent.iterdir()] == ["sensors.csv"]  # no temp file
    # an earlier export of this run is recognised by the run its metadata records, wherever it was written
    out = tmp_path / "exports" / "gun.onnx"
    assert main(["export", "onnx", str(run_dir), "--out", str(out)]) == 0
    meta = props(out)
    assert meta["lstmkit_run"] == str(run_dir.resolve()) and meta["lstmkit_kind"] == "sequence_classifier"
    assert meta["lstmkit_version"]
    assert main(["export", "onnx", str(run_dir), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(out)
    # another run's export is not this run's
    other = SequenceClassifier(hidden_size=8, epochs=1).fit(np.ones((4, 5, 2), np.float32), [0, 1, 0, 1])
    other_dir = other.save(tmp_path / "other")
    capsys.readouterr()
    assert main(["export", "onnx", str(other_dir), "--out", str(out)]) == 2
    assert "not an earlier ONNX export of this run" in one_sentence(capsys.readouterr().err)
    assert props(out)["lstmkit_run"] == str(run_dir.resolve())
    # --force replaces it
    assert main(["export", "onnx", str(run_dir), "--out", str(data), "--force"]) == 0
    assert props(data)["lstmkit_run"] == str(run_dir.resolve())


def test_the_run_directorys_default_file_is_replaced_and_its_own_files_never(run_dir, capsys) -> None:
    default = run_dir / "model.onnx"
    default.write_bytes(b"an export from before exports carried metadata")
    assert main(["export", "onnx", str(run_dir)]) == 0
    assert props(default)["lstmkit_kind"] == "sequence_classifier"
    capsys.readouterr()
    config = (run_dir / "config.json").read_bytes()
    assert main(["export", "onnx", str(run_dir), "--out", str(run_dir / "config.json"), "--force"]) == 2
    err = one_sentence(capsys.readouterr().err)
    assert "config.json is a file of the run itself" in err and "choose another --out" in err
    assert (run_dir / "config.json").read_bytes() == config


def test_out_naming_a_directory_writes_the_default_file_name_inside_it(run_dir, tmp_path, capsys) -> None:
    (tmp_path / "exports").mkdir()
    assert main(["export", "onnx", str(run_dir), "--out", str(tmp_path / "exports"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(tmp_path / "exports" / "model.onnx")
    assert main(["export", "onnx", str(run_dir), "--out", str(tmp_path / "exports"), "--streaming", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(tmp_path / "exports" / "model-streaming.onnx")
    assert sorted(p.name for p in (tmp_path / "exports").iterdir()) == ["model-streaming.onnx", "model.onnx"]
    # missing directories are created, as for a new run directory; a trailing slash names a directory
    assert main(["export", "onnx", str(run_dir), "--out", str(tmp_path / "new" / "deep" / "m.onnx")]) == 0
    assert (tmp_path / "new" / "deep" / "m.onnx").is_file()
    assert main(["export", "onnx", str(run_dir), "--out", str(tmp_path / "fresh") + "/", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str(tmp_path / "fresh" / "model.onnx")
    # a file where a directory should be: one sentence, nothing written
    (tmp_path / "notes.txt").write_bytes(CSV)
    assert main(["export", "onnx", str(run_dir), "--out", str(tmp_path / "notes.txt" / "m.onnx")]) == 2
    err = one_sentence(capsys.readouterr().err)
    assert f"{tmp_path / 'notes.txt'} is a file, not a directory" in err and "choose another --out" in err
    assert (tmp_path / "notes.txt").read_bytes() == CSV


def test_a_run_of_a_kind_that_cannot_be_exported_is_one_sentence(tmp_path, capsys) -> None:
    long_lag = tmp_path / "long-lag"
    assert main(["experiment", "adding", "--length", "10", "--max-sequences", "64", "--out", str(long_lag)]) == 0
    capsys.readouterr()
    kinds = ("sequence_classifier, sequence_regressor, language_model, text_classifier, forecaster, "
             "anomaly_detector and seq2seq")  # fmt: skip
    assert main(["export", "onnx", str(long_lag)]) == 2
    err = one_sentence(capsys.readouterr().err)
    assert f"{long_lag} holds a 'long_lag' run, which cannot be exported to ONNX" in err
    assert kinds in err and "LongLagRun" not in err
    assert not list(long_lag.glob("*.onnx"))
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "config.json").write_text(json.dumps({"kind": "weather_oracle", "lstmkit_version": "0", "config": {}}))
    assert main(["export", "onnx", str(unknown)]) == 2
    err = one_sentence(capsys.readouterr().err)
    assert "holds a 'weather_oracle' run, which cannot be exported to ONNX" in err and kinds in err
    assert "register_kind" not in err and "long_lag" not in err
