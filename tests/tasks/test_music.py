"""lstmkit.tasks.music.model / music_data: the grid encoding, scores in and out, the model, and one-sentence errors.

Pieces are small synthetic chorales (quarter-note triads in C major / A minor) so that nothing here parses the
corpus; one real chorale (bwv66.6, a fraction of a second) checks the music21 path.
"""

import numpy as np
import pytest

from lstmkit.config import ConfigError
from lstmkit.tasks.music.data import (
    MusicError,
    Piece,
    Vocabulary,
    bar_steps,
    compare_statistics,
    corpus_statistics,
    parse_key,
    parse_metre,
    read_score,
    split_pieces,
    write_piece,
)  # fmt: skip
from lstmkit.tasks.music.model import MusicModel, MusicModelConfig, MusicNet, MusicTrain, ngram_baseline
from lstmkit.viz.music import plot_piano_roll

CHORDS = {
    "major": [(0, 4, 7), (5, 9, 0), (7, 11, 2), (0, 4, 7)],
    "minor": [(9, 0, 4), (2, 5, 9), (4, 8, 11), (9, 0, 4)],
}


def chorale(seed: int, mode: str = "major", metre: str = "4/4", n_bars: int = 4) -> Piece:
    """Quarter-note chords: soprano, alto, tenor from the triad near 72, 65, 58; bass the root near 48; a fermata on
    the last chord; every third soprano note held into the next beat."""
    rng = np.random.default_rng(seed)
    per_bar = bar_steps(metre)
    frames = per_bar * n_bars
    pitches = np.zeros((frames, 4), dtype=np.int64)
    onsets = np.zeros((frames, 4), dtype=bool)
    for beat, f in enumerate(range(0, frames, 4)):
        triad = CHORDS[mode][rng.integers(len(CHORDS[mode]))] if f + 4 < frames else CHORDS[mode][0]
        for v, centre in enumerate((72, 65, 58, 48)):
            pc = triad[0] if v == 3 else triad[rng.integers(3)]
            pitch = centre + (pc - centre) % 12
            if v == 0 and beat % 3 == 2:
                pitch = pitches[f - 1, 0]  # held
            pitches[f : f + 4, v] = pitch
            onsets[f, v] = not (v == 0 and beat % 3 == 2)
    bars = np.zeros(frames, dtype=bool)
    bars[::per_bar] = True
    fermatas = np.zeros(frames, dtype=bool)
    fermatas[-4:] = True
    return Piece(pitches, onsets, bars, fermatas, mode, metre, name=f"synthetic{seed}")


PIECES = [chorale(i, "major" if i % 3 else "minor", "3/4" if i % 4 == 0 else "4/4") for i in range(12)]


@pytest.fixture(scope="module")
def model():
    small = dict(hidden_size=24, embedding_size=8, num_layers=1, bptt=20, batch_size=4, epochs=1, progress=False)
    return MusicModel(**small).fit(PIECES[:10], PIECES[10:])


def test_tokens_round_trip_and_the_frame_grammar():
    vocab = Vocabulary()
    piece = PIECES[0]
    ids = vocab.encode(piece)
    assert len(ids) == 3 + 5 * piece.frames + 1 and ids[0] == vocab.start and ids[-1] == vocab.end
    assert vocab.tokens[ids[1]] == "mode:minor" and vocab.tokens[ids[2]] == "metre:3/4"
    assert vocab.tokens[ids[3]] == "|" and vocab.tokens[ids[3 + 5]] == "."  # a bar line, then a sixteenth
    assert vocab.tokens[ids[-6]] == ".f"  # the last frame is under the fermata
    back = vocab.decode(ids)
    for name in ("pitches", "onsets", "bars", "fermatas"):
        np.testing.assert_array_equal(getattr(back, name), getattr(piece, name), err_msg=name)
    assert (back.mode, back.metre) == ("minor", "3/4")
    notes = piece.notes()  # start, length, pitch, voice
    assert notes[:, 1].min() >= 4 and len(notes) <= piece.frames  # quarters, held notes joined
    with pytest.raises(MusicError, match="must begin <start> <mode> <metre>"):
        vocab.decode([vocab.rest] * 8)


def test_keys_and_metres_parse_or_get_one_sentence():
    assert parse_key("D minor") == (2, "D", "minor")
    assert parse_key("Bb") == (10, "Bb", "major") and parse_key("f# min") == (6, "F#", "minor")
    assert parse_key("E-  major") == (3, "Eb", "major")
    for bad in ("H major", "C dorian", "", "major"):
        with pytest.raises(ValueError, match="Unknown key"):
            parse_key(bad)
    assert parse_metre("3/4") == "3/4" and bar_steps("6/8") == 12 and bar_steps("3/2") == 24
    with pytest.raises(ValueError, match="Unknown metre 'three'"):
        parse_metre("three")
    with pytest.raises(ValueError, match=r"knows no 7/5 metre \(it learnt 3/4, 4/4\)"):
        parse_metre("7/5", ["3/4", "4/4"])


def test_split_is_by_piece_seeded_and_disjoint():
    train, val, test = split_pieces(PIECES, 0.2, 0.2, seed=3)
    names = [{p.name for p in s} for s in (train, val, test)]
    assert sum(map(len, names)) == len(PIECES) and not (names[0] & names[2]) and not (names[1] & names[2])
    assert [p.name for p in split_pieces(PIECES, 0.2, 0.2, seed=3)[2]] == [p.name for p in test]


def test_statistics_of_identical_sets_are_zero_apart():
    stats = corpus_statistics(PIECES)
    assert stats["in_key"] > 0.99  # triads of the key, and the raised 7th in minor
    assert abs(sum(stats["pitch_classes"]) - 1) < 1e-9 and stats["durations"][3] > 0.5  # mostly quarters
    same = compare_statistics(stats, stats)
    assert same["pitch_class_tv"] == 0 and same["duration_tv"] == 0


def test_fit_evaluate_and_generate_within_the_grammar(model, tmp_path):
    result = model.evaluate(PIECES[10:])
    assert 0 < result["nats_per_token"] < np.log(len(model.vocab)) + 0.5 and result["pieces"] == 2
    assert result["nats_per_step"] == pytest.approx(result["nats_per_token"] * result["tokens"] / result["steps"])
    piece = model.generate("D minor", "3/4", bars=3, seed=1)
    assert (piece.tonic_name, piece.mode, piece.metre) == ("D", "minor", "3/4")
    assert piece.frames == 3 * 12 and list(np.flatnonzero(piece.bars)) == [0, 12, 24]  # bar lines from the metre
    held = ~piece.onsets[1:] & (piece.pitches[1:] >= 0)
    assert (piece.pitches[1:][held] == piece.pitches[:-1][held]).all()  # a voice holds only what it sounds
    assert piece.onsets[0][piece.pitches[0] >= 0].all()  # the first frame's notes all start
    again = model.generate("D minor", "3/4", bars=3, seed=1)
    np.testing.assert_array_equal(again.pitches, piece.pitches)  # a seed repeats a sample

    primed = model.generate(prime=PIECES[1], prime_bars=2, bars=1, seed=0)
    np.testing.assert_array_equal(primed.pitches[:32], PIECES[1].pitches[:32])  # the opening is kept
    assert primed.frames == 48 and primed.bars[32]

    model.save(tmp_path / "run")
    loaded = MusicModel.load(tmp_path / "run")
    np.testing.assert_array_equal(loaded.generate("D minor", "3/4", bars=3, seed=1).pitches, piece.pitches)
    assert loaded.metres_ == ["3/4", "4/4"] and loaded.evaluate(PIECES[10:]) == pytest.approx(result)


def test_generation_errors_are_one_sentence(model):
    cases = [
        (dict(key="H major"), "Unknown key 'H major'"),
        (dict(metre="7/5"), "knows no 7/5 metre"),
        (dict(metre="6/8"), r"knows no 6/8 metre \(it learnt 3/4, 4/4\)"),
        (dict(bars=0), r"bars must lie in 1 \.\. 64"),
        (dict(temperature=0.0), "temperature must be > 0"),
        (dict(prime=PIECES[1], prime_bars=5), "The prime asks for 5 bars but synthetic1 has 4"),
        (dict(prime=PIECES[1], prime_bars=17), r"1 \.\. 16 bars of a chorale's opening"),
        (dict(prime=PIECES[1], key="A minor"), "The prime is in major .* give a major key or no key"),
        (dict(prime=PIECES[1], metre="3/4"), "The prime is in 4/4 but the metre asked is 3/4"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            model.generate(**kwargs)
    with pytest.raises(RuntimeError, match="not fitted"):
        MusicModel().generate()
    with pytest.raises(ValueError, match="too few for one batch"):
        MusicModel(batch_size=64, bptt=200).fit(PIECES[:1])


def test_ngram_baseline_scores_the_same_tokens():
    result = ngram_baseline(PIECES[:8], PIECES[8:10], PIECES[10:], orders=(2, 6))
    assert result["order"] in (2, 6) and set(result["val_nats_per_token_by_order"]) == {"2", "6"}
    assert result["val_nats_per_token_by_order"]["6"] < result["val_nats_per_token_by_order"]["2"]  # sees a frame
    assert result["nats_per_step"] > result["nats_per_token"] > 0


def test_a_real_chorale_reads_writes_and_reads_back(tmp_path):
    piece = read_score("bwv66.6")
    assert (piece.mode, piece.metre, piece.tonic_name, piece.frames) == ("minor", "4/4", "F#", 144)
    assert piece.info["transposed"] == 3 and piece.bars[0] and piece.bars[4]  # A minor; a one-beat pickup
    files = write_piece(piece, tmp_path / "bwv66")
    assert {k: tmp_path.joinpath(f"bwv66{s}").exists() for k, s in [("m", ".mid"), ("x", ".musicxml"), ("p", ".png")]}
    back = read_score(tmp_path / "bwv66.musicxml")
    assert back.tonic_name == "F#" and back.frames == piece.frames + 12  # the pickup is written after 3 beats' rest
    np.testing.assert_array_equal(back.pitches[12:], piece.pitches)
    np.testing.assert_array_equal(np.flatnonzero(back.bars[12:]), np.flatnonzero(piece.bars)[1:])
    assert files["png"].endswith("bwv66.png")
    assert piece.head(2).frames == 4 + 2 * 16  # the pickup comes with the two bars


def test_unreadable_scores_get_one_sentence(tmp_path):
    from music21 import note, stream

    garbage = tmp_path / "garbage.musicxml"
    garbage.write_text("<score-partwise><part id='P1'><measure>not music")
    with pytest.raises(ValueError, match=r"Could not read a score from garbage\.musicxml"):
        read_score(garbage)
    solo = stream.Score([stream.Part([note.Note("C4"), note.Note("D4")])])
    solo.write("musicxml", fp=str(tmp_path / "solo.musicxml"))
    with pytest.raises(ValueError, match=r"solo\.musicxml has 1 part\(s\); the chorale model needs exactly 4"):
        read_score(tmp_path / "solo.musicxml")
    with pytest.raises(ValueError, match="No score file at"):
        read_score(tmp_path / "missing.mid")
    with pytest.raises(ValueError, match="no chorale 'bach/bwv0.0'"):
        read_score("bwv0.0")


def test_piano_roll_takes_arrays(tmp_path):
    path = plot_piano_roll(PIECES[0].notes(), tmp_path / "roll.png", bar_lines=[0, 12, 24], title="synthetic")
    assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match=r"\(N, 4\) array"):
        plot_piano_roll(np.zeros((3, 3)), tmp_path / "bad.png")


def test_config_sections_read_the_flat_layout_saved_runs_have():
    flat = {
        "hidden_size": 24,
        "embedding_size": 8,
        "num_layers": 1,
        "dropout": 0.1,
        "bptt": 20,
        "batch_size": 4,
        "epochs": 3,
        "max_steps": 7,
        "lr": 3e-3,
        "schedule": "constant",
        "clip_grad_norm": 1.0,
        "early_stopping_patience": 5,
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        "seed": 2,
        "progress": True,
    }
    cfg = MusicModelConfig.from_dict(flat)  # a config.json written before the sections (and max_minutes: None)
    assert cfg.net == MusicNet(embedding_size=8, hidden_size=24, num_layers=1, dropout=0.1)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.seed, cfg.train.max_steps) == (
        3, 4, 3e-3, 2, 7)  # fmt: skip
    assert cfg.train.schedule == "constant" and cfg.bptt == 20
    assert MusicModelConfig.from_dict(cfg.to_dict()) == cfg and MusicModel(**flat).config == cfg
    default = MusicModelConfig().train  # the task's training defaults, declared once in MusicTrain
    assert isinstance(default, MusicTrain) and default.carry_state_across_batches  # char-rnn: the state flows on
    assert (default.epochs, default.lr, default.schedule, default.max_minutes) == (30, 2e-3, "cosine", 60.0)
    assert cfg.with_overrides({"train.lr": "1e-2", "net.hidden_size": "32"}).net.hidden_size == 32
    with pytest.raises(ConfigError, match="MusicNet.dropout must lie in"):
        MusicModelConfig.from_dict({"dropout": 1.0})
    with pytest.raises(ConfigError, match="given both at the top level and in 'net'"):
        MusicModelConfig.from_dict({"hidden_size": 8, "net": {"hidden_size": 16}})


def test_a_run_saved_with_the_flat_config_loads(model, tmp_path):
    import json

    model.save(tmp_path / "run")
    path = tmp_path / "run" / "config.json"
    doc = json.loads(path.read_text())
    saved = doc["config"]["music"]
    assert set(saved) >= {"net", "train", "bptt"} and "progress" in saved["train"]
    flat = {**saved.pop("net"), **{k: v for k, v in saved.pop("train").items() if k != "device"}, **saved}
    doc["config"]["music"] = flat
    path.write_text(json.dumps(doc))
    loaded = MusicModel.load(tmp_path / "run")
    assert loaded.config == model.config
    np.testing.assert_array_equal(
        loaded.generate("C major", "4/4", bars=1, seed=4).pitches,
        model.generate("C major", "4/4", bars=1, seed=4).pitches,
    )
