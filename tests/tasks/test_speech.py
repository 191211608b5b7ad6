"""Speech recognition (issue 7): the voice split, the espeak-ng + sox data set, one sentence per kind of bad audio,
chunk-consistent features, streaming == offline, training / decoding / save-load on a dozen utterances."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import soundfile
import torch

from lstmkit.tasks.recognition.speech.audio import audio_features, load_audio, log_mel, normalise, resample
from lstmkit.tasks.recognition.speech.config import SpeechConfig, SpeechNet, SpeechTrain
from lstmkit.tasks.recognition.speech.data import (
    ACCENTS,
    HELD_OUT_ACCENT,
    TEST_VARIANTS,
    VALIDATION_VARIANTS,
    make_dataset,
    plan_utterances,
    read_manifest,
)  # fmt: skip
from lstmkit.tasks.recognition.speech.network import pad_features
from lstmkit.tasks.recognition.speech.recognizer import SpeechRecognizer

HAS_PROGRAMS = shutil.which("espeak-ng") is not None and shutil.which("sox") is not None
needs_programs = pytest.mark.skipif(not HAS_PROGRAMS, reason="needs Debian's espeak-ng and sox")
VARIANTS = sorted({"m1", "m2", "f1", "f3", "klatt2", "croak", *TEST_VARIANTS, *VALIDATION_VARIANTS})


def _tone(seconds: float = 0.6, rate: int = 16000, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(0)
    return (amplitude * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
            + 0.01 * rng.standard_normal(len(t))).astype(np.float32)  # fmt: skip


def test_plan_splits_by_voice_and_repeats_with_its_seed() -> None:
    plan = plan_utterances({"train": 300, "validation": 40, "test": 80}, VARIANTS, seed=3)
    assert plan == plan_utterances({"train": 300, "validation": 40, "test": 80}, VARIANTS, seed=3)
    train = [u for u in plan if u.split == "train"]
    test = [u for u in plan if u.split == "test"]
    assert not {u.voice for u in train} & {u.voice for u in test}  # no test voice is heard in training
    assert not {u.variant for u in train} & (set(TEST_VARIANTS) | set(VALIDATION_VARIANTS))
    assert HELD_OUT_ACCENT not in {u.accent for u in train} and HELD_OUT_ACCENT in ACCENTS
    assert {u.variant for u in test} <= set(TEST_VARIANTS)
    digits = [u for u in plan if u.kind == "digits"]
    assert all(1 <= len(u.text.split()) <= 7 for u in digits) and {u.kind for u in plan} == {"digits", "command"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    if not HAS_PROGRAMS:
        pytest.skip("needs Debian's espeak-ng and sox")
    out = tmp_path_factory.mktemp("speech") / "data"
    return make_dataset(out, train=12, validation=2, test=3, seed=1, max_digits=3, workers=2)


@needs_programs
def test_make_dataset_writes_wavs_and_manifest_atomically(data_dir) -> None:
    utts = read_manifest(data_dir)
    assert len(utts) == 17 and len(list((data_dir / "wavs").glob("*.wav"))) == 17
    for u in utts[:4]:
        info = soundfile.info(str(data_dir / u.path))
        assert info.samplerate == u.sample_rate and info.channels == u.channels and info.subtype == "PCM_16"
    assert make_dataset(data_dir, train=12, validation=2, test=3, seed=1, max_digits=3) == data_dir  # reused
    with pytest.raises(FileExistsError, match="not a speech data set made with this request"):
        make_dataset(data_dir, train=13, validation=2, test=3, seed=1, max_digits=3)
    assert not [p for p in data_dir.parent.iterdir() if p.name.startswith(".")]  # no temporary directory left


@needs_programs
def test_two_processes_making_the_same_data_set_both_get_it(tmp_path) -> None:
    import subprocess
    import sys

    code = ("import sys; from lstmkit.tasks.recognition.speech.data import make_dataset; "
            "print(make_dataset(sys.argv[1], train=3, validation=0, test=1, seed=5, workers=1))")  # fmt: skip
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "d")], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    assert all(p.wait(timeout=120) == 0 for p in procs)
    assert len(read_manifest(tmp_path / "d")) == 4 and len(list((tmp_path / "d" / "wavs").iterdir())) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # the loser's temporary directory is gone


def test_missing_espeak_is_one_sentence(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LSTMKIT_ESPEAK", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="is not an executable file; point it at espeak-ng"):
        make_dataset(tmp_path / "d", train=1, validation=0, test=0)
    assert not (tmp_path / "d").exists()


def test_bad_audio_gets_one_sentence_each(tmp_path) -> None:
    def wav(name: str, samples: np.ndarray, rate: int = 16000, **kw) -> str:
        soundfile.write(tmp_path / name, samples, rate, **kw)
        return str(tmp_path / name)

    tone = _tone()
    cases = {
        wav("empty.wav", np.zeros(0, dtype=np.float32)): "is empty: it has no samples",
        wav("zeros.wav", np.zeros(16000, dtype=np.float32)): "is silent \\(all zeros\\)",
        wav("quiet.wav", tone * 1e-5, subtype="FLOAT"): "is silent \\(its loudest sample is -1.. dBFS\\)",
        wav("clipped.wav", np.clip(tone * 20, -1, 1)): "is clipped: .* of its samples sit at full scale",
        wav("short.wav", tone[:300]): "ms long; at least 45 ms of audio is needed",
        wav("flac.flac", tone, format="FLAC"): "is a FLAC file, not a WAV",
        wav("ulaw.wav", tone, subtype="ULAW"): "holds ULAW samples; expected PCM .* or float samples",
        wav("low.wav", tone[:8000], rate=4000): "sampled at 4000 Hz; at least 8000 Hz is needed",
    }
    (tmp_path / "text.wav").write_text("this is not audio\n")
    cases[str(tmp_path / "text.wav")] = "could not be read as a WAV file"
    for path, message in cases.items():
        with pytest.raises(ValueError, match=message) as info:
            load_audio(path)
        assert "\n" not in str(info.value)
    with pytest.raises(FileNotFoundError, match="No audio file at"):
        load_audio(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="samples of type int64"):
        load_audio((np.ones(16000, dtype=np.int64), 16000))
    with pytest.raises(ValueError, match="NaN or infinite"):
        load_audio((np.full(16000, np.nan, dtype=np.float32), 16000))
    samples, rate = load_audio((np.stack([tone, tone], axis=1), 16000))  # stereo mixes down
    assert samples.shape == tone.shape and rate == 16000


def test_a_missing_audio_library_names_the_extra(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "soxr", None)  # import soxr now raises ImportError
    with pytest.raises(ImportError, match=r"soxr, which is not installed: pip install 'lstmkit\[speech\]'"):
        audio_features((_tone(rate=22050), 22050), SpeechConfig())


def test_features_of_a_prefix_are_a_prefix_and_any_rate_works() -> None:
    tone = _tone(1.0)
    full, part = log_mel(tone), log_mel(tone[:9000])
    assert full.shape == (1 + (16000 - 400) // 160, 40)
    np.testing.assert_allclose(part, full[: len(part)], rtol=1e-5, atol=1e-5)
    running = SpeechConfig(normalisation="running")
    mean, var = np.zeros(40), np.ones(40)
    np.testing.assert_allclose(normalise(part, running, mean, var), normalise(full, running, mean, var)[: len(part)],
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    at_22k = resample(_tone(1.0, rate=22050), 22050)
    assert abs(len(at_22k) - 16000) <= 1
    feats = audio_features((_tone(1.0, rate=22050), 22050), SpeechConfig())
    assert feats.shape[1] == 120 and abs(len(feats) - 32) <= 1  # 98 frames -> 32 steps of 3
    np.testing.assert_allclose(feats.reshape(-1, 40).mean(axis=0), 0, atol=0.1)  # per utterance (96 of 98 frames)


def _audio(data_dir, split: str):
    utts = [u for u in read_manifest(data_dir) if u.split == split]
    return [data_dir / u.path for u in utts], [u.text for u in utts]


@needs_programs
def test_streaming_equals_the_offline_unidirectional_pass(data_dir) -> None:
    audio, texts = _audio(data_dir, "train")
    rec = SpeechRecognizer(bidirectional=False, normalisation="running", hidden_size=16, num_layers=2, epochs=1,
                           batch_size=4, progress=False).fit(audio, texts)  # fmt: skip
    assert not np.allclose(rec.mean, 0)  # the running normaliser's prior comes from the training audio
    for path in audio[:3]:
        samples, rate = load_audio(path)
        offline = rec.log_probs([path])[0]  # (T, C)
        live = rec.stream(rate)
        partials = [live.push(samples[i : i + 1234]) for i in range(0, len(samples), 1234)]
        final = live.finish()
        assert live.steps == len(offline)
        np.testing.assert_allclose(np.stack(live.log_probs), offline, rtol=1e-4, atol=1e-4)
        assert final == rec.decode(offline) and partials[-1] == final[: len(partials[-1])]
    live = rec.stream(16000)  # chunks of any size, even empty, and int16
    assert live.push(np.zeros(0, dtype=np.float32)) == "" and isinstance(live.push(np.zeros(80, np.int16)), str)
    live.finish()
    with pytest.raises(ValueError, match="This stream is finished"):
        live.push(np.zeros(10, dtype=np.float32))


@needs_programs
def test_weight_averaging_with_validation_voices_keeps_the_average(data_dir) -> None:
    audio, texts = _audio(data_dir, "train")
    rec = SpeechRecognizer(hidden_size=8, num_layers=1, epochs=2, batch_size=4, average_from_epoch=1, progress=False)
    rec.fit(audio, texts, validation=_audio(data_dir, "validation"))  # refused before: best epoch and average both
    assert len(rec.history_) == 2


@needs_programs
def test_fit_decode_evaluate_save_load_both_architectures(data_dir, tmp_path) -> None:
    audio, texts = _audio(data_dir, "train")
    val_audio, val_texts = _audio(data_dir, "validation")
    for arch in ("lstm", "conv"):
        rec = SpeechRecognizer(architecture=arch, hidden_size=16, num_layers=1, conv_channels=16, epochs=2,
                               batch_size=4, progress=False)  # fmt: skip
        rec.fit(audio, texts, validation=(val_audio, val_texts))
        best = min(h["val_cer"] for h in rec.history_)  # the weights of the best epoch are kept
        assert rec.evaluate(val_audio, val_texts)["cer"] == pytest.approx(best)
        result = rec.evaluate(val_audio, val_texts, beam_size=4, lm_weight=0.5)
        assert set(result) >= {"cer", "wer", "n", "hypotheses"} and result["n"] == 2
        assert isinstance(rec.transcribe(audio[0]), str) and len(rec.transcribe(audio[:2], beam_size=3)) == 2
        rec.save(tmp_path / arch)
        again = SpeechRecognizer.load(tmp_path / arch)
        np.testing.assert_array_equal(again.log_probs([audio[0]])[0], rec.log_probs([audio[0]])[0])
        assert again.decode(rec.log_probs([audio[0]])[0], beam_size=4, lm_weight=0.5) == rec.decode(
            rec.log_probs([audio[0]])[0], beam_size=4, lm_weight=0.5)  # fmt: skip
        with pytest.raises(ValueError, match="cannot stream"):
            rec.stream(16000)
    from lstmkit import LanguageModel  # a character LSTM language model in place of the n-gram

    char_lm = LanguageModel(level="char", hidden_size=16, num_layers=1, bptt=10, batch_size=2, epochs=1,
                            progress=False).fit("\n".join(texts * 4))  # fmt: skip
    with_lstm_lm = rec.evaluate(val_audio, val_texts, beam_size=4, lm_weight=0.5, language_model=char_lm)
    assert len(with_lstm_lm["hypotheses"]) == 2


def test_a_padded_batch_gives_each_utterance_its_own_numbers() -> None:
    from lstmkit.tasks.recognition.speech.network import SpeechNetwork

    torch.manual_seed(0)
    feats = [np.random.default_rng(i).standard_normal((n, 12)).astype(np.float32) for i, n in enumerate((9, 4))]
    for sizes in (dict(architecture="conv", conv_channels=8), dict(hidden_size=8)):
        net = SpeechNetwork(12, 5, **sizes).eval()
        x, lengths = pad_features(feats)
        batch = net(x, lengths)
        for b, f in enumerate(feats):
            alone = net(torch.from_numpy(f)[None], torch.tensor([len(f)]))
            torch.testing.assert_close(batch[b, : len(f)], alone[0])


def test_config_and_fit_errors() -> None:
    with pytest.raises(ValueError, match="conv_kernel must be odd"):
        SpeechConfig.from_dict({"conv_kernel": 4})
    flat = SpeechConfig.from_dict({"hidden_size": 8, "architecture": "conv", "epochs": 2, "n_mels": 20})
    nested = SpeechConfig(net=SpeechNet(hidden_size=8, architecture="conv"), train=SpeechTrain(epochs=2), n_mels=20)
    assert flat == nested
    assert flat.train.max_minutes == 60 and flat.train.schedule == "cosine" and flat.train.monitor == "val_cer"
    with pytest.raises(ValueError, match="2 utterances but 1 transcripts"):
        SpeechRecognizer().fit([(_tone(), 16000)] * 2, ["one"])
    with pytest.raises(ValueError, match="Transcript 0 is empty"):
        SpeechRecognizer().fit([(_tone(), 16000)], [" "])
    with pytest.raises(ValueError, match="too few for its 39-character transcript"):
        SpeechRecognizer(progress=False).fit([(_tone(0.3), 16000)], ["one two three four five six seven eight"])
    with pytest.raises(RuntimeError, match="not fitted"):
        SpeechRecognizer().transcribe((_tone(), 16000))
