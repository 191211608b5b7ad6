"""``lstmkit speech make-data | train | transcribe`` in-process: data set, run directory, streaming, one-sentence
errors for bad audio and a missing espeak-ng."""

import json
import shutil

import numpy as np
import pytest
import soundfile

from lstmkit.cli import main
from lstmkit.tasks.recognition.speech.data import read_manifest

needs_programs = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                    reason="needs Debian's espeak-ng and sox")  # fmt: skip


@pytest.mark.slow
@needs_programs
def test_make_data_train_transcribe_stream(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["speech", "make-data", "--out", str(data), "--train", "10", "--validation", "2", "--test", "3",
                 "--max-digits", "2", "--seed", "2", "--json"]) == 0  # fmt: skip
    made = json.loads(capsys.readouterr().out)
    assert made["utterances"] == {"train": 10, "validation": 2, "test": 3}
    run = tmp_path / "run"
    assert main(["speech", "train", "--data", str(data), "--out", str(run), "--unidirectional", "--hidden-size", "8",
                 "--layers", "1", "--epochs", "1", "--beam", "2", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert list(result)[:4] == ["task", "run_dir", "metrics", "baselines"] and result["task"] == "speech_recognizer"
    assert result["run_dir"] == str(run) and result["baselines"] == {}
    assert {"greedy", "beam_2", "beam_2_lm", "streaming"} <= set(result["scores"]) and result["utterances"]["test"] == 3
    written = json.loads((run / "result.json").read_text())
    assert result["metrics"]["cer"] == written["greedy"]["all"]["cer"]
    assert result["metrics"]["wer_beam_2_lm"] == written["beam_2_lm"]["all"]["wer"]
    assert result["metrics"]["cer_streaming"] == written["streaming"]["all"]["cer"]
    assert (run / "predictions.csv").exists()
    assert (run / "report.html").exists() and (run / "config.json").exists()
    wav = sorted((data / "wavs").glob("test-*.wav"))[0]
    assert main(["speech", "transcribe", str(run), str(wav), "--json"]) == 0
    offline = json.loads(capsys.readouterr().out)[0]["text"]
    assert main(["speech", "transcribe", str(run), str(wav), "--stream", "--chunk-ms", "70", "--json"]) == 0
    streamed = json.loads(capsys.readouterr().out)[0]
    assert streamed["text"] == offline and all({"seconds", "text"} == set(p) for p in streamed["partials"])
    assert main(["speech", "transcribe", str(run), str(wav), "--beam", "3", "--lm-weight", "0.5"]) == 0
    assert capsys.readouterr().out.count("\n") == 1
    from lstmkit import LanguageModel

    texts = "\n".join(u.text for u in read_manifest(data)) + "\n"
    LanguageModel(level="char", hidden_size=8, num_layers=1, bptt=8, batch_size=2, epochs=1, progress=False).fit(
        texts * 3).save(tmp_path / "lm")  # fmt: skip
    assert main(["speech", "transcribe", str(run), str(wav), "--beam", "3", "--lm-weight", "0.5", "--lm-run",
                 str(tmp_path / "lm")]) == 0  # fmt: skip
    assert capsys.readouterr().out.count("\n") == 1
    assert main(["speech", "transcribe", str(run), str(wav), "--stream", "--beam", "2"]) == 2
    assert "--stream decodes greedily" in capsys.readouterr().err
    assert main(["speech", "train", "--data", str(data), "--out", str(run)]) == 2
    assert "already holds a finished recogniser" in capsys.readouterr().err


def test_bad_audio_and_missing_programs_are_one_sentence(tmp_path, capsys, monkeypatch):
    from lstmkit.tasks.recognition.speech.config import SpeechConfig
    from lstmkit.tasks.recognition.speech.recognizer import SpeechRecognizer

    rng = np.random.default_rng(0)
    tone = (0.3 * np.sin(np.arange(16000) * 0.2) + 0.01 * rng.standard_normal(16000)).astype(np.float32)
    rec = SpeechRecognizer(
        SpeechConfig.from_dict({"hidden_size": 4, "num_layers": 1, "epochs": 1, "batch_size": 2, "progress": False})
    )
    rec.fit([(tone, 16000), (tone[::-1].copy(), 16000)], ["one", "two"])
    run = tmp_path / "run"
    rec.save(run)
    soundfile.write(tmp_path / "silent.wav", np.zeros(16000, dtype=np.float32), 16000)
    soundfile.write(tmp_path / "clipped.wav", np.clip(tone * 30, -1, 1), 16000)
    (tmp_path / "notes.wav").write_text("not audio")
    soundfile.write(tmp_path / "ok.wav", tone, 16000)
    cases = [
        ("silent.wav", "is silent (all zeros)"),
        ("clipped.wav", "is clipped"),
        ("notes.wav", "could not be read as a WAV file"),
        ("missing.wav", "No audio file at"),
    ]
    for name, message in cases:
        assert main(["speech", "transcribe", str(run), str(tmp_path / name)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert main(["speech", "transcribe", str(run), str(tmp_path / "ok.wav"), "--stream"]) == 2
    assert "cannot stream" in capsys.readouterr().err  # a bidirectional model
    assert main(["speech", "transcribe", str(tmp_path / "nope"), str(tmp_path / "ok.wav")]) == 2
    assert "No run directory" in capsys.readouterr().err
    monkeypatch.setenv("LSTMKIT_ESPEAK", str(tmp_path / "missing-espeak"))
    assert main(["speech", "make-data", "--out", str(tmp_path / "d"), "--train", "2"]) == 2
    err = capsys.readouterr().err
    assert "is not an executable file; point it at espeak-ng" in err and "Traceback" not in err
    assert not (tmp_path / "d").exists()


def test_train_options_set_and_config_reach_the_config_and_json_has_the_shape(tmp_path, capsys, monkeypatch):
    """--set and --config reach SpeechConfig's sections (the training itself replaced: this is about the command)."""
    from lstmkit.tasks.recognition.speech import run as speech_run

    seen = {}

    def fake_train_run(data, cfg, out, **kwargs):
        seen["cfg"], seen["kwargs"] = cfg, kwargs
        scores = {"all": {"cer": 0.25, "wer": 0.5, "n": 2}}
        return {"run_dir": str(out), "utterances": {"train": 2}, "greedy": scores, "beam_3": scores}

    monkeypatch.setattr(speech_run, "train_run", fake_train_run)
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"net": {"hidden_size": 12, "dropout": 0.2}, "n_mels": 20, "epochs": 3}))
    argv = ["speech", "train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--config", str(config),
            "--set", "train.lr=0.02", "--set", "stack=2", "--layers", "1", "--unidirectional", "--beam", "3",
            "--json"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    cfg = seen["cfg"]
    assert (cfg.net.hidden_size, cfg.net.dropout, cfg.net.num_layers, cfg.net.bidirectional) == (12, 0.2, 1, False)
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.max_minutes, cfg.train.progress) == (0.02, 3, 60.0, False)
    assert (cfg.n_mels, cfg.stack, cfg.normalisation) == (20, 2, "running") and seen["kwargs"]["beam_size"] == 3
    printed = json.loads(capsys.readouterr().out)
    assert list(printed)[:4] == ["task", "run_dir", "metrics", "baselines"]
    assert printed["metrics"] == {"cer": 0.25, "wer": 0.5, "cer_beam_3": 0.25, "wer_beam_3": 0.5}
    assert main([*argv[:-1], "--set", "net.hidden=3"]) == 2
    err = capsys.readouterr().err
    assert "has no field 'net.hidden'" in err and "Traceback" not in err
    assert main(["speech", "train", "--data", str(tmp_path), "--out", str(tmp_path / "x"), "--lr", "0"]) == 2
    assert "--lr" in capsys.readouterr().err
