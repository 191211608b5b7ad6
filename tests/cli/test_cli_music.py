"""``lstmkit music train | generate | evaluate`` in-process: run directory, MIDI / MusicXML / PNG, one-sentence errors.

Trains a tiny model on the first six chorales of music21's corpus (read directly, not cached: a second or two)."""

import contextlib
import io
import json
import math

import pytest
import torch

from lstmkit.cli import main

TINY = ["--hidden-size", "16", "--embedding-size", "8", "--layers", "1", "--bptt", "20", "--batch-size", "4",
        "--epochs", "1"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The run directory and what `music train --json` printed (stdout captured around the call)."""
    out = tmp_path_factory.mktemp("music") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["music", "train", "--limit", "6", "--out", str(out), *TINY, "--json"]) == 0
    return out, json.loads(printed.getvalue())


@pytest.fixture(scope="module")
def run_dir(trained):
    return trained[0]


def test_train_json_is_the_one_shape(trained):
    out, printed = trained
    assert list(printed)[:4] == ["task", "run_dir", "metrics", "baselines"]
    assert printed["task"] == "music" and printed["run_dir"] == str(out)
    result = json.loads((out / "result.json").read_text())
    assert printed["metrics"] == result["test"]  # held-out NLL of the LSTM
    ngram = printed["baselines"]["ngram"]  # the n-gram of the same run, on the same tokens
    assert ngram["order"] == result["ngram"]["order"] and ngram["nats_per_token"] == result["ngram"]["nats_per_token"]
    assert printed["statistics"]["generated_vs_held_out"] == result["statistics"]["generated_vs_held_out"]


def test_set_and_config_reach_the_config(tmp_path, capsys):
    file = tmp_path / "music.json"  # defaults < --config < the command's options < the shared options < --set
    file.write_text(json.dumps({"net": {"hidden_size": 40, "dropout": 0.2, "embedding_size": 12}, "bptt": 30,
                                "train": {"lr": 0.01, "clip_grad_norm": 2.0}}))  # fmt: skip
    out = tmp_path / "run"
    args = ["music", "train", "--limit", "6", "--out", str(out), "--config", str(file), "--hidden-size", "16",
            "--embedding-size", "8", "--layers", "1", "--batch-size", "4", "--epochs", "1", "--max-minutes", "5",
            "--device", "auto", "--set", "net.dropout=0.1", "--set", "train.clip_grad_norm=0.5", "--json"]  # fmt: skip
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["task"] == "music"
    saved = json.loads((out / "config.json").read_text())["config"]["music"]
    assert saved["net"] == {"embedding_size": 8, "hidden_size": 16, "num_layers": 1, "dropout": 0.1}
    assert saved["bptt"] == 30 and saved["train"]["lr"] == 0.01 and saved["train"]["clip_grad_norm"] == 0.5
    assert saved["train"]["max_minutes"] == 5 and saved["train"]["epochs"] == 1 and saved["train"]["device"] == "auto"
    assert main(["music", "train", "--limit", "6", "--out", str(tmp_path / "x"), "--set", "net.hiden_size=3"]) == 2
    assert "has no field 'net.hiden_size'. Did you mean net.hidden_size" in capsys.readouterr().err
    assert main(["music", "train", "--limit", "6", "--out", str(tmp_path / "x"), "--layers", "0"]) == 2
    assert "--layers: MusicNet.num_layers must be at least 1, got 0." in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_train_writes_a_run_with_the_baseline_and_samples(run_dir, capsys, assert_png):
    for name in ("config.json", "model.safetensors", "metrics.csv", "result.json", "report.html"):
        assert (run_dir / name).exists(), name
    result = json.loads((run_dir / "result.json").read_text())
    assert result["pieces"] == {"train": 4, "val": 1, "test": 1}
    test, ngram = result["test"], result["ngram"]
    vocabulary = len(json.loads((run_dir / "config.json").read_text())["config"]["tokens"])  # 150
    assert test["nats_per_token"] < math.log(vocabulary) and ngram["order"] in range(2, 9)  # one epoch: 4.77 < 5.01
    per_step = test["tokens"] / test["steps"]  # the n-gram is scored on the same tokens
    assert test["nats_per_step"] / test["nats_per_token"] == pytest.approx(per_step)
    assert ngram["nats_per_step"] / ngram["nats_per_token"] == pytest.approx(per_step)
    statistics = result["statistics"]  # total variation distance: half the L1 distance of the two histograms
    generated, held_out = statistics["generated"]["pitch_classes"], statistics["held_out"]["pitch_classes"]
    assert statistics["generated_vs_held_out"]["pitch_class_tv"] == pytest.approx(
        sum(abs(g - h) for g, h in zip(generated, held_out, strict=True)) / 2, abs=1e-6
    )
    for stem in ("unprimed-major", "primed"):
        for suffix in (".mid", ".musicxml", ".png"):
            assert (run_dir / "samples" / f"{stem}{suffix}").exists(), stem + suffix
        assert_png(run_dir / "samples" / f"{stem}.png")
    assert main(["music", "train", "--limit", "6", "--out", str(run_dir), *TINY]) == 2
    assert "already holds a finished music model" in capsys.readouterr().err


def test_generate_and_evaluate(run_dir, tmp_path, capsys, assert_png):
    out = tmp_path / "new"
    assert main(["music", "generate", str(run_dir), "--out", str(out), "--key", "Eb major", "--bars", "2",
                 "--seed", "3", "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["key"] == "Eb major" and summary["metre"] == "4/4" and summary["bars"] == 2
    first = (tmp_path / "new.mid").read_bytes()
    assert (tmp_path / "new.musicxml").exists()
    assert_png(tmp_path / "new.png")
    assert main(["music", "generate", str(run_dir), "--out", str(out), "--key", "Eb major", "--bars", "2",
                 "--seed", "3"]) == 0  # fmt: skip
    assert (tmp_path / "new.mid").read_bytes() == first  # same seed, same piece
    capsys.readouterr()
    assert main(["music", "generate", str(run_dir), "--out", str(tmp_path / "p"), "--prime", "bwv66.6",
                 "--prime-bars", "1", "--bars", "1", "--json"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)["key"] == "F# minor"  # the prime's key by default
    assert main(["music", "evaluate", str(run_dir), "bwv66.6", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 144


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "H major"], "Unknown key 'H major'; give a tonic A-G"),
        (["--metre", "7/5"], "The model knows no 7/5 metre"),
        (["--bars", "100"], "bars must lie in 1 .. 64, got 100."),
        (["--prime", "bwv66.6", "--prime-bars", "30"], "The prime may be 1 .. 16 bars"),
        (["--prime", "bwv66.6", "--prime-bars", "12"], "The prime asks for 12 bars but bach/bwv66.6 has 10"),
        (["--prime", "bwv66.6", "--key", "C major"], "The prime is in minor (F# minor) but the key asked is C major"),
        (["--prime", "nowhere.mid"], "No score file at nowhere.mid"),
    ],
)
def test_generate_errors_are_one_sentence(run_dir, tmp_path, capsys, args, message):
    assert main(["music", "generate", str(run_dir), "--out", str(tmp_path / "x"), *args]) == 2
    failed = capsys.readouterr()
    assert message in failed.err and "Traceback" not in failed.err and failed.out == ""
    assert not list(tmp_path.iterdir())  # nothing written


def test_evaluate_an_unparsable_score_is_one_sentence(run_dir, tmp_path, capsys):
    bad = tmp_path / "bad.musicxml"
    bad.write_text("this is not a score")
    assert main(["music", "evaluate", str(run_dir), str(bad)]) == 2
    assert "Could not read a score from bad.musicxml" in capsys.readouterr().err
    assert main(["music", "evaluate", str(tmp_path / "norun"), "bwv66.6"]) == 2
    capsys.readouterr()
    assert main(["music", "train", "--scores", str(tmp_path / "none"), "--out", str(tmp_path / "r")]) == 2
    assert "No folder at" in capsys.readouterr().err
    assert main(["music", "train", "--scores", str(tmp_path), "--out", str(tmp_path / "r")]) == 2  # holds bad.musicxml
    assert "Could not read a score from bad.musicxml" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_cuda_without_a_gpu_is_one_sentence(tmp_path, capsys):
    args = ["music", "train", "--limit", "6", "--out", str(tmp_path / "r"), *TINY, "--device", "cuda"]
    assert main(args) == 2
    assert "device='cuda' was asked for, but PyTorch sees no CUDA GPU here" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
