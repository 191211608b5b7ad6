"""Handwriting: trajectory checks (one sentence per degenerate input), reading files, features, synthetic data,
and the recogniser end to end on a tiny generated set."""

import json

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.tasks.recognition import ctc
from lstmkit.tasks.recognition.handwriting.config import HandwritingConfig
from lstmkit.tasks.recognition.handwriting.data import (
    TEST_FONTS,
    TRAIN_FONTS,
    collapse_loops,
    load_dataset,
    make_dataset,
    make_samples,
    render_mixed,
    render_word,
    save_dataset,
    split_words,
)
from lstmkit.tasks.recognition.handwriting.ensemble import HandwritingEnsemble
from lstmkit.tasks.recognition.handwriting.network import HandwritingNetwork
from lstmkit.tasks.recognition.handwriting.recognizer import HandwritingRecognizer
from lstmkit.tasks.recognition.handwriting.run import train_run
from lstmkit.tasks.recognition.handwriting.strokes import (
    StrokeError,
    check_points,
    drop_overlapping,
    features,
    read_strokes,
)
from lstmkit.viz.handwriting import plot_handwriting

LINE = np.array([[0, 0, 0], [1, 1, 0], [2, 0, 1], [3, 1, 0], [4, 0, 1]], dtype=float)


# ---- degenerate strokes: one clear sentence each ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([], "are empty: no points were given"),
        (np.zeros((0, 3)), "are empty"),
        ([[1.0, 2.0, 1.0]], "only one point"),
        ([[1.0, 2.0, 0.0], [1.0, 2.0, 0.0], [1.0, 2.0, 1.0]], "are at the same place .1, 2.: the pen never moved"),
        ([[0.0, 0.0, 0.0], [np.nan, 1.0, 0.0], [2.0, 2.0, 1.0]], "missing or infinite value .first at row 1."),
        ([[0.0, 0.0], [1.0, 1.0]], r"wrong columns \(2\); expected 3 columns x, y, pen_up"),
        (np.zeros((4, 5)), r"wrong columns \(5\)"),
        (np.zeros(6), "wrong columns"),
        ([[0.0, 0.0, 0.0], [1.0, 1.0, 2.0]], "pen_up values other than 0 and 1"),
        ([[0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.5]], "times that go backwards"),
        ([["a", "b", "c"]], "not a table of numbers"),
    ],
)
def test_degenerate_strokes_get_one_sentence(points, message):
    with pytest.raises(StrokeError, match=message) as info:
        check_points(points)
    text = str(info.value)
    assert text.count(". ") <= 1 and "\n" not in text  # one sentence (two at most where it says the fix)


def test_check_points_drops_time_and_ends_the_last_stroke():
    out = check_points([[0, 0, 0, 0.0], [1, 1, 0, 0.1], [2, 2, 0, 0.2]])
    assert out.shape == (3, 3) and out[-1, 2] == 1.0


# ---- reading files ----------------------------------------------------------------------------------------------
def test_read_strokes_from_json_layouts_and_csv(tmp_path):
    strokes = {"strokes": [[[0, 0], [1, 1], [2, 0]], [[3, 1], [4, 0]]]}
    (tmp_path / "a.json").write_text(json.dumps(strokes))
    (tmp_path / "b.json").write_text(json.dumps({"points": LINE.tolist()}))
    (tmp_path / "c.json").write_text(json.dumps([[[0, 0, 0.0], [1, 1, 0.1], [2, 0, 0.2]], [[3, 1, 0.5], [4, 0, 0.6]]]))
    (tmp_path / "d.csv").write_text("x,y,pen-up,time\n" + "\n".join(f"{x},{y},{int(p)},{i}" for i, (x, y, p) in
                                                                     enumerate(LINE)))  # fmt: skip
    for name in ("a.json", "b.json", "c.json", "d.csv"):
        np.testing.assert_array_equal(read_strokes(tmp_path / name), LINE, err_msg=name)
    flipped = read_strokes(tmp_path / "d.csv", y_down=True)
    np.testing.assert_array_equal(flipped[:, 1], -LINE[:, 1])


def test_read_strokes_errors_are_one_sentence(tmp_path):
    (tmp_path / "cols.csv").write_text("a,b\n1,2\n3,4\n")
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "keys.json").write_text('{"ink": []}')
    (tmp_path / "empty.json").write_text('{"strokes": []}')
    (tmp_path / "nan.csv").write_text("x,y,pen_up\n0,0,0\n,1,0\n2,2,1\n")
    (tmp_path / "s.txt").write_text("0 0 1")
    cases = {"cols.csv": "expected a header with x, y, pen_up", "bad.json": "is not valid JSON",
             "keys.json": "expected 'strokes'", "empty.json": "are empty", "nan.csv": "missing or infinite value",
             "s.txt": "from .json or .csv files"}  # fmt: skip
    for name, message in cases.items():
        with pytest.raises(StrokeError, match=message):
            read_strokes(tmp_path / name)
    with pytest.raises(FileNotFoundError, match="No strokes file"):
        read_strokes(tmp_path / "missing.json")


# ---- features ---------------------------------------------------------------------------------------------------
def test_features_ignore_position_scale_and_writing_speed():
    word = make_samples(["hello"], ("scripts",), 1, seed=0)[0].points
    f = features(word)
    assert f.shape[1] == 4 and f.dtype == np.float32 and f[-1, 3] == 1.0
    assert f[:, 3].sum() == word[:, 2].sum()  # one pen lift per stroke
    moved = word.copy()
    moved[:, :2] = moved[:, :2] * 3.7 + [100.0, -40.0]
    np.testing.assert_allclose(features(moved), f, atol=1e-5)
    # the same ink with every segment cut in two (twice the points, as from a faster pen sampler)
    dense = np.repeat(word, 2, axis=0)
    dense[1::2, :2] = (word[:, :2] + np.vstack([word[1:, :2], word[-1:, :2]])) / 2
    dense[0::2, 2] = 0
    dense[1::2, 2] = 0
    dense[1::2][word[:, 2] > 0] = np.c_[word[word[:, 2] > 0][:, :2], np.ones((word[:, 2] > 0).sum())]
    g = features(dense)
    assert abs(len(g) - len(f)) <= 2 * int(f[:, 3].sum())


def test_the_step_sets_the_number_of_points():
    word = make_samples(["minimum"], ("scripts",), 1, seed=0)[0].points
    assert 1.8 < len(features(word, step=0.1)) / len(features(word, step=0.2)) < 2.2


def test_strokes_over_earlier_ink_are_dropped_and_the_rest_kept():
    up = np.c_[np.zeros(21), np.linspace(0, 1, 21)]  # (21, 2) a stem
    beside = up + [0.04, 0.0]  # the stem's second line, as a complex font draws a thick stroke
    bar = np.array([[-0.3, 0.7], [0.3, 0.7]])  # a t's bar: crosses the stem
    joined = np.c_[np.linspace(0, 0.5, 11), np.zeros(11)]  # the next letter, starting where the stem starts
    far = beside + [0.5, 0.0]  # a second stem elsewhere
    kept = drop_overlapping([up, beside, bar, joined, far], radius=0.1)
    assert [k.tolist() for k in kept] == [s.tolist() for s in (up, bar, joined, far)]
    assert len(drop_overlapping([up, beside], radius=0.03)) == 2  # the lines are 0.04 apart: both stay
    assert len(drop_overlapping([up, beside], radius=0.0)) == 2  # 0: every stroke kept
    half = up[:11] + [0.04, 0.0]  # a retraced half stem lies wholly on the stem...
    assert len(drop_overlapping([up, half], radius=0.1)) == 1
    # ...while a stroke with only a share of its length on earlier ink under cover stays
    longer = np.r_[half, np.c_[np.linspace(0.1, 1.0, 10), np.full(10, 0.5)]]
    assert len(drop_overlapping([up, longer], radius=0.1)) == 2
    assert len(drop_overlapping([up, longer], radius=0.1, cover=0.3)) == 1
    with pytest.raises(ValueError, match=r"cover is a share of a stroke's length, in \(0, 1\], not 0"):
        drop_overlapping([up, beside], radius=0.1, cover=0)


def test_features_can_drop_doubled_lines_and_leave_single_line_fonts_alone():
    def trajectory(strokes):
        return np.concatenate([np.c_[s, np.r_[np.zeros(len(s) - 1), 1.0]] for s in strokes])  # (N, 3)

    single = trajectory(render_word("little", "scripts"))  # one line per stroke: nothing to drop
    np.testing.assert_array_equal(features(single, 0.3, overlap=0.1), features(single, 0.3))
    thick = render_word("little", "scriptc")  # stems drawn with two lines
    lifts = lambda f: int(f[:, 3].sum())  # noqa: E731
    assert lifts(features(trajectory(thick), 0.3, overlap=0.1)) < lifts(features(trajectory(thick), 0.3)) == len(thick)
    # every stroke written twice, the copy 0.02 ink heights away: dropping reads it as written once
    strokes = render_word("minimum", "scripts")
    height = np.ptp(np.concatenate(strokes)[:, 1])
    twice = [t for s in strokes for t in (s, s + [0.0, 0.02 * height])]
    np.testing.assert_allclose(features(trajectory(twice), 0.3, overlap=0.1), features(trajectory(strokes), 0.3),
                               atol=0.05)  # fmt: skip


# ---- synthetic data ---------------------------------------------------------------------------------------------
def test_fonts_split_train_from_test_and_render_y_up():
    assert not set(TRAIN_FONTS) & set(TEST_FONTS)
    strokes = render_word("l", "scripts")
    assert strokes[0][:, 1].max() > 90  # the ascender goes up
    with pytest.raises(KeyError, match="Unknown Hershey font"):
        render_word("a", "comic")


def test_samples_repeat_by_seed_and_vary_between_draws():
    a = make_samples(["word", "pen"], TRAIN_FONTS, 6, seed=3)
    b = make_samples(["word", "pen"], TRAIN_FONTS, 6, seed=3)
    assert all(np.array_equal(x.points, y.points) and x.font == y.font for x, y in zip(a, b, strict=True))
    c = make_samples(["word"], ("scripts",), 2, seed=4)
    assert c[0].text == c[1].text and not np.array_equal(c[0].points[:5], c[1].points[:5])  # two writers
    assert all((np.diff(s.times) >= 0).all() for s in a)


def test_retrace_doubles_and_breaks_strokes_only_when_asked():
    plain = make_samples(["minimum"], ("scripts",), 4, seed=5)
    again = make_samples(["minimum"], ("scripts",), 4, seed=5)
    traced = make_samples(["minimum"], ("scripts",), 4, seed=5, retrace=True)
    assert all(np.array_equal(a.points, b.points) for a, b in zip(plain, again, strict=True))
    lifts = lambda ss: sum(int(s.points[:, 2].sum()) for s in ss)  # noqa: E731
    assert lifts(traced) > lifts(plain)


def test_distortion_moves_points_smoothly_and_test_fonts_stay_out_of_training():
    plain = make_samples(["minimum"], ("scripts",), 1, seed=5)[0].points
    bent = make_samples(["minimum"], ("scripts",), 1, seed=5, distort=0.05)[0].points
    assert plain.shape != bent.shape or not np.allclose(plain, bent)
    with pytest.raises(ValueError, match="include the held-out font"):
        make_dataset(4, 1, 1, test_words=1, validation_words=1, words=["ab", "cd", "ef"], fonts=("scripts", "scriptc"))


def test_mixed_words_borrow_letters_on_the_word_fonts_baseline_and_x_height():
    rng = np.random.default_rng(0)
    same = render_mixed("ax", "scripts", ["futural"], 0.0, rng)  # nothing borrowed: the font's own rendering
    assert all(np.allclose(a, b) for a, b in zip(same, render_word("ax", "scripts"), strict=True))
    ink = lambda strokes: np.concatenate(strokes)  # noqa: E731
    script_x, roman_x = ink(render_word("x", "scripts")), ink(render_word("x", "futural"))
    assert abs(np.ptp(script_x[:, 1]) - np.ptp(roman_x[:, 1])) > 10  # the two fonts' x-heights differ ...
    borrowed = ink(render_mixed("x", "scripts", ["futural"], 1.0, rng))  # ... the borrowed x takes the word's
    np.testing.assert_allclose([borrowed[:, 1].min(), np.ptp(borrowed[:, 1])],
                               [script_x[:, 1].min(), np.ptp(script_x[:, 1])], atol=1e-9)  # fmt: skip
    word = ink(render_mixed("xx", "scripts", ["futural"], 1.0, rng))  # letters advance left to right
    assert np.ptp(word[:, 0]) > 1.5 * np.ptp(borrowed[:, 0])
    samples = make_samples(["minimum", "dial"], ("scripts", "futural", "timesi"), 40, seed=1, mix=0.5)
    mixed = [s for s in samples if s.font.endswith("+mixed")]
    assert 5 < len(mixed) < 35 and {s.font.split("+")[0] for s in mixed} <= {"scripts", "futural", "timesi"}
    assert not any(s.font.endswith("+mixed") for s in make_samples(["dial"], ("scripts", "futural"), 10, seed=1))
    with pytest.raises(ValueError, match="between 0 and 1"):
        make_samples(["dial"], ("scripts",), 1, mix=1.5)


def test_collapsing_loops_narrows_ascenders_and_descenders_and_leaves_the_body_alone(monkeypatch):
    from lstmkit.tasks.recognition.handwriting import data as handwriting_data
    from lstmkit.tasks.recognition.handwriting.data import _x_band

    base, height = _x_band("scripts")
    width = lambda x, y: np.ptp(x - np.polyval(np.polyfit(y, x, 1), y))  # noqa: E731  across the stem
    for char, zone in [("l", lambda y: y > base + 1.35 * height), ("g", lambda y: y < base - 0.35 * height)]:
        loop = render_word(char, "scripts")
        assert collapse_loops(loop, base, height, 1.0) is loop  # keep 1: as drawn
        flat = np.concatenate(collapse_loops(loop, base, height, 0.0))  # (M, 2), resampled densely
        y, x = flat[zone(flat[:, 1]), 1], flat[zone(flat[:, 1]), 0]
        fit = np.polyfit(y, x, 1)
        wide = np.concatenate(collapse_loops(loop, base, height, 0.999))  # the same points, barely moved
        yw, xw = wide[zone(wide[:, 1]), 1], wide[zone(wide[:, 1]), 0]
        assert width(xw, yw) > 10 and width(x, y) < 0.5  # the loop was open; beyond the ramp it is one line
        assert abs(np.polyval(fit, base + 2 * height) - np.polyval(fit, base)) > 1 or char == "g"  # slant kept
        body = (flat[:, 1] > base) & (flat[:, 1] < base + height)  # the body: points stay on the drawn strokes
        dist = np.min(np.linalg.norm(flat[body, None, :] - _dense(loop)[None], axis=2), axis=1)
        assert dist.max() < 1.0
    # f has both: each zone is narrowed toward its own stem
    f = np.concatenate(collapse_loops(render_word("f", "scripts"), base, height, 0.0))
    for zone in (lambda y: y > base + 1.35 * height, lambda y: y < base - 0.35 * height):
        assert width(f[zone(f[:, 1]), 0], f[zone(f[:, 1]), 1]) < 0.5
    for keep, message in [(-0.1, "between 0 and 1"), (1.5, "between 0 and 1")]:
        with pytest.raises(ValueError, match=message):
            collapse_loops(render_word("l", "scripts"), base, height, keep)
    with pytest.raises(ValueError, match="positive distance"):
        collapse_loops(render_word("l", "scripts"), base, 0.0, 0.5)
    # in a word: only the looped letters change, and the l's ascender is one line
    a = render_mixed("ax", "scripts", [], 0.0, np.random.default_rng(0), keep_loops=0.0)
    assert all(np.allclose(p, q) for p, q in zip(a, render_word("ax", "scripts"), strict=True))
    word = np.concatenate(render_mixed("al", "scripts", [], 0.0, np.random.default_rng(0), keep_loops=0.0))
    top = word[word[:, 1] > base + 1.35 * height]
    assert width(top[:, 0], top[:, 1]) < 0.5
    # make_samples: a share of words, each with its own keep in [0, 0.6]; none at loops=0 (and the same data)
    calls: list[float] = []
    real = handwriting_data.collapse_loops
    monkeypatch.setattr(handwriting_data, "collapse_loops", lambda s, b, h, k: calls.append(k) or real(s, b, h, k))
    plain = make_samples(["hello"], ("scripts",), 3, seed=2)
    again = make_samples(["hello"], ("scripts",), 3, seed=2, loops=0.0)
    assert not calls and all(np.array_equal(p.points, q.points) for p, q in zip(plain, again, strict=True))
    make_samples(["hello"], ("scripts",), 10, seed=2, loops=1.0)
    assert len(calls) == 3 * 10 and all(0.0 <= k <= 0.6 for k in calls)  # h, l, l in every word
    calls.clear()
    make_samples(["hello"], ("scripts",), 40, seed=2, loops=0.5)
    assert 3 * 8 <= len(calls) <= 3 * 32
    with pytest.raises(ValueError, match="loops is the share"):
        make_samples(["dial"], ("scripts",), 1, loops=-0.1)


def _dense(strokes: list[np.ndarray]) -> np.ndarray:
    """Points every 0.5 units along strokes (K, 2)."""
    out = []
    for s in strokes:
        seg = np.linalg.norm(np.diff(s, axis=0), axis=1)
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        at = np.linspace(0, arc[-1], max(int(arc[-1] / 0.5), 2))
        out.append(np.stack([np.interp(at, arc, s[:, 0]), np.interp(at, arc, s[:, 1])], axis=1))
    return np.concatenate(out)


def test_a_stand_in_test_font_is_kept_out_of_training():
    words = ["cat", "dog", "sun", "hat", "pen", "ink", "map", "cup"]
    data = make_dataset(6, 2, 3, test_words=2, validation_words=2, words=words, fonts=("scripts", "futural"),
                        test_fonts=("timesi",), mix=1.0)  # fmt: skip
    assert {s.font for s in data["test"]} == {"timesi"}
    assert all(s.font.split("+")[0] in ("scripts", "futural") for s in data["train"] + data["validation"])
    with pytest.raises(ValueError, match="include the held-out font"):
        make_dataset(4, 1, 1, test_words=1, validation_words=1, words=words, test_fonts=("timesi",))


def test_split_words_is_disjoint_and_the_dataset_round_trips(tmp_path):
    train, val, test = split_words([f"w{i}" for i in range(50)], 10, 5, seed=0)
    assert len(test) == 10 and len(val) == 5 and len(train) == 35
    assert not (set(train) & set(test)) and not (set(train) & set(val))
    words = ["cat", "dog", "sun", "hat", "pen", "ink", "map", "cup"]
    data = make_dataset(6, 2, 3, test_words=2, validation_words=2, words=words)
    assert {s.font for s in data["test"]} == set(TEST_FONTS)
    assert not {s.text for s in data["train"]} & {s.text for s in data["test"]}
    path = save_dataset(tmp_path / "hw.npz", data)
    back = load_dataset(path)
    assert {k: len(v) for k, v in back.items()} == {k: len(v) for k, v in data.items()}
    assert back["test"][0].text == data["test"][0].text
    np.testing.assert_allclose(back["train"][1].points, data["train"][1].points, atol=1e-4)
    with pytest.raises(FileNotFoundError, match="make-data"):
        load_dataset(tmp_path / "none.npz")


# ---- the recogniser ---------------------------------------------------------------------------------------------
TINY = dict(hidden_size=16, num_layers=1, epochs=4, batch_size=8, lr=1e-2, step=0.4, progress=False)


@pytest.fixture(scope="module")
def tiny_data():
    words = ["on", "no", "in", "an"]
    return make_samples(words, ("scripts",), 32, seed=0), make_samples(words, ("scripts",), 8, seed=1)


def test_fit_lowers_the_ctc_loss_and_save_load_is_exact(tiny_data, tmp_path):
    train, val = tiny_data
    model = HandwritingRecognizer(**TINY).fit([s.points for s in train], [s.text for s in train],
                                              validation=([s.points for s in val], [s.text for s in val]))  # fmt: skip
    losses = [h["train_loss"] for h in model.history_]
    assert losses[-1] < losses[0]
    assert "val_cer" in model.history_[0]
    assert model.best_val_cer_ == min(h["val_cer"] for h in model.history_)  # the best epoch's weights are kept
    points = [s.points for s in val]
    outputs = model.recognize(points)
    assert len(outputs) == 8 and all(set(o) <= set("abcdefghijklmnopqrstuvwxyz") for o in outputs)
    assert len(model.recognize(points, beam_width=4)) == 8
    assert len(model.recognize(points, beam_width=4, use_lm=True)) == 8
    assert isinstance(model.recognize(points[0]), list)  # one (N, 3) array is a list of one
    tuned = model.tune_lm(points, [s.text for s in val], beam_width=2, alphas=(0.3, 0.7), betas=(0.0, 2.0))
    assert (model.lm_alpha, model.lm_beta) == (tuned["alpha"], tuned["beta"]) and 0 <= tuned["cer"]
    model.save(tmp_path / "run")
    back = HandwritingRecognizer.load(tmp_path / "run")
    assert (back.lm_alpha, back.lm_beta) == (model.lm_alpha, model.lm_beta)
    assert isinstance(lstmkit.load(tmp_path / "run"), HandwritingRecognizer)
    for a, b in zip(model.log_probs(points), back.log_probs(points), strict=True):
        np.testing.assert_array_equal(a, b)
    assert back.recognize(points, beam_width=4, use_lm=True) == model.recognize(points, beam_width=4, use_lm=True)
    scores = back.evaluate(points, [s.text for s in val])
    assert set(scores) == {"cer", "wer", "n"} and scores["n"] == 8


def _char_lm(text: str):
    from lstmkit.tasks.text.language import LanguageModel

    return LanguageModel(level="char", embedding_size=8, hidden_size=16, num_layers=1, bptt=8, batch_size=4, epochs=2,
                         val_fraction=0.0, test_fraction=0.0, progress=False).fit(text)  # fmt: skip


def test_a_character_lstm_can_take_the_ngrams_place(tiny_data):
    from lstmkit.tasks.text.language import LanguageModel

    train, val = tiny_data
    points, texts = [s.points for s in train[:8]], [s.text for s in train[:8]]
    model = HandwritingRecognizer(**{**TINY, "epochs": 1, "lm_order": 0}).fit(points, texts)
    words = "\n".join(["on", "no", "in", "an"] * 8 + ["the quick brown fox jumps over a lazy dog"]) + "\n"
    lstm = _char_lm(words)
    with pytest.raises(ValueError, match="no language model"):  # no n-gram and no LSTM yet
        model.recognize([s.points for s in val], beam_width=4, use_lm=True)
    val_points = [s.points for s in val]
    read = model.set_char_lm(lstm).recognize(val_points, beam_width=4, use_lm=True, alpha=2.0, beta=0.5)
    hook = ctc.char_lm_hook(lstm, model.alphabet, end="\n")
    lps = model.log_probs(val_points)
    by_hand = [model.alphabet.decode(ctc.beam_search(lp, 4, lm=hook, alpha=2.0, beta=0.5)) for lp in lps]
    assert read == by_hand
    assert read != model.recognize(val_points, beam_width=4)  # the LSTM changes what is read
    tuned = model.tune_lm(val_points, [s.text for s in val], beam_width=2, alphas=(0.5, 2.0), betas=(0.0,))
    read = [model.alphabet.decode(ctc.beam_search(lp, 2, lm=ctc.char_lm_hook(lstm, model.alphabet, end="\n"),
                                                  alpha=tuned["alpha"], beta=0.0)) for lp in lps]  # fmt: skip
    assert tuned["cer"] == ctc.cer([s.text for s in val], read)  # tune_lm read with the LSTM
    # an ensemble reads with it too, also when its members' proposals are rescored
    both = HandwritingEnsemble([model, model], combine="sequences").set_char_lm(lstm)
    proposals = [[y for y, _ in ctc.beam_search(lp, 4, lm=hook, alpha=2.0, beta=0.5, return_beams=True)] * 2
                 for lp in lps]  # fmt: skip
    expected = [model.alphabet.decode(ctc.rescore([lp, lp], p, lm=hook, alpha=2.0, beta=0.5)[0][0])
                for lp, p in zip(lps, proposals, strict=True)]  # fmt: skip
    assert both.recognize(val_points, beam_width=4, use_lm=True, alpha=2.0, beta=0.5) == expected
    assert model.set_char_lm(None).char_lm is None
    with pytest.raises(ValueError, match="no language model"):  # back to no language model at all
        model.recognize(val_points, beam_width=4, use_lm=True)
    with pytest.raises(ValueError, match="no model was given"):
        model.set_char_lm(None, share=0.3)
    # mixed with the n-gram: the probabilities are share : 1 - share of the two models'
    with pytest.raises(ValueError, match="has none"):  # this recogniser has no n-gram to mix with
        model.set_char_lm(lstm, share=0.5)
    model.fit_lm(["on", "no", "in", "an"], order=2)
    ngram = ctc.ngram_hook(model.lm)
    mixed = ctc.mix_hooks([hook, ngram], [0.3, 0.7])
    by_hand = [model.alphabet.decode(ctc.beam_search(lp, 4, lm=mixed, alpha=1.0, beta=0.5)) for lp in lps]
    assert model.set_char_lm(lstm, share=0.3).recognize(val_points, beam_width=4, use_lm=True, alpha=1.0,
                                                        beta=0.5) == by_hand  # fmt: skip
    with pytest.raises(ValueError, match=r"share is the LSTM's part of the mixed probability, in \(0, 1\], got 0"):
        model.set_char_lm(lstm, share=0)
    model.set_char_lm(None)
    with pytest.raises(ValueError, match=r"never saw 'c', 'k', 'q', 'x', 'z'"):  # letters the recogniser writes
        model.set_char_lm(_char_lm("\n".join(["on", "no", "in", "an"] * 40 + ["the brown fo jumps over a lay dog"])))
    with pytest.raises(ValueError, match="needs a character-level language model; this one is word-level"):
        word_level = LanguageModel(level="word", embedding_size=8, hidden_size=8, num_layers=1, bptt=4, batch_size=2,
                                   epochs=1, progress=False)  # fmt: skip
        model.set_char_lm(word_level.fit(" ".join(["on no in an"] * 30)))


def _same_lm(a, b) -> bool:
    names = ("ngrams", "ngram_counts", "contexts", "context_counts", "context_types")
    return a.order == b.order and all(
        all(np.array_equal(getattr(x, n), getattr(y, n)) for n in names)
        for x, y in zip(a.orders, b.orders, strict=True)
    )


def test_the_ngram_learns_from_more_words_and_can_be_refitted(tiny_data, tmp_path):
    from lstmkit.tasks.text.ngram import WittenBellLM

    train, val = tiny_data
    points, texts = [s.points for s in train[:8]], [s.text for s in train[:8]]
    model = HandwritingRecognizer(**{**TINY, "epochs": 1}).fit(points, texts, lm_texts=["ox", "zoo"])
    alphabet = model.alphabet
    ids = [0]
    for t in [*texts, "ox", "zoo"]:  # the training texts, then the extra words, each start and end marked
        ids += [*alphabet.encode(t), 0]
    assert _same_lm(model.lm, WittenBellLM(4, alphabet.num_classes).fit(np.array(ids)))
    model.fit_lm(["zoo", "no"], order=2)  # replaces the model and its order
    assert model.config.lm_order == 2
    assert _same_lm(model.lm, WittenBellLM(2, alphabet.num_classes).fit(np.array([0, 26, 15, 15, 0, 14, 15, 0])))
    model.save(tmp_path / "refit")
    back = HandwritingRecognizer.load(tmp_path / "refit")
    assert back.config.lm_order == 2 and _same_lm(back.lm, model.lm)
    val_points = [s.points for s in val]
    assert back.recognize(val_points, beam_width=4, use_lm=True) == model.recognize(val_points, beam_width=4,
                                                                                    use_lm=True)  # fmt: skip
    for bad, message in [((["no"], 0), "order must be at least 1"), (([],), "at least one text"),
                         ((["on", "Ox"],), r"texts\[1\]: 'Ox' has characters outside the alphabet"),
                         ((["on", ""],), r"texts\[1\] is empty")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            model.fit_lm(*bad)
    assert _same_lm(model.lm, back.lm) and model.config.lm_order == 2  # a refused word list changes nothing
    with pytest.raises(ValueError, match=r"lm_texts\[0\]: '1st' has characters outside"):
        HandwritingRecognizer(**TINY).fit(points, texts, lm_texts=["1st"])
    with pytest.raises(ValueError, match="lm_order is 0"):
        HandwritingRecognizer(**{**TINY, "lm_order": 0}).fit(points, texts, lm_texts=["ox"])
    # the words are part of the run: resuming with other words is refused, with the same ones it goes on
    from lstmkit.train import ResumeError

    run = tmp_path / "words-run"
    HandwritingRecognizer(**{**TINY, "epochs": 1}).fit(points, texts, run, lm_texts=["ox"])
    with pytest.raises(ResumeError, match="lm_texts"):
        HandwritingRecognizer(**{**TINY, "epochs": 1}).fit(points, texts, run, resume=True, lm_texts=["zoo"])
    with pytest.raises(ResumeError, match="lm_texts"):
        HandwritingRecognizer(**{**TINY, "epochs": 1}).fit(points, texts, run, resume=True)
    HandwritingRecognizer(**{**TINY, "epochs": 1}).fit(points, texts, run, resume=True, lm_texts=["ox"])


def test_exact_padding_trains_on_the_same_batches(tiny_data):
    train, _ = tiny_data
    args = ([s.points for s in train[:16]], [s.text for s in train[:16]])
    exact = HandwritingRecognizer(**{**TINY, "epochs": 1, "exact_padding": True}).fit(*args)
    padded = HandwritingRecognizer(**{**TINY, "epochs": 1}).fit(*args)
    a, b = exact.history_[0]["train_loss"], padded.history_[0]["train_loss"]
    assert a != b and abs(a - b) < 0.05 * a  # the same data and start; only the few padded points differ


def test_weight_averaging_keeps_the_average_and_scores_it_on_validation(tiny_data):
    train, val = tiny_data
    args = ([s.points for s in train[:16]], [s.text for s in train[:16]])
    validation = ([s.points for s in val], [s.text for s in val])
    best = HandwritingRecognizer(**{**TINY, "epochs": 2}).fit(*args, validation=validation)
    averaged = HandwritingRecognizer(**{**TINY, "epochs": 2, "average_from_epoch": 2}).fit(*args, validation=validation)
    # the same training; only the weights kept at the end differ (the best epoch's, or the mean over epoch 2)
    assert [h["train_loss"] for h in best.history_] == [h["train_loss"] for h in averaged.history_]
    assert not torch.equal(averaged.net.state_dict()["out.weight"], best.net.state_dict()["out.weight"])
    scored = averaged.evaluate(*validation)["cer"]
    assert averaged.best_val_cer_ == pytest.approx(scored)  # the validation CER of the weights it keeps
    with pytest.raises(ValueError, match="average_from_epoch must be an epoch from 1 to epochs=2"):
        HandwritingConfig.from_dict({"epochs": 2, "average_from_epoch": 3})


def test_output_dropout_acts_in_training_only():
    net = HandwritingNetwork(27, hidden_size=8, output_dropout=0.5)
    x = torch.randn(2, 7, 4)  # (B, T, 4)
    torch.manual_seed(0)
    assert not torch.equal(net(x), net(x))  # two dropout masks
    net.eval()
    assert torch.equal(net(x), net(x))
    plain = HandwritingNetwork(27, hidden_size=8)
    assert plain.state_dict().keys() == net.state_dict().keys()  # runs saved without it load the same way


def test_recogniser_errors_say_what_to_do(tiny_data):
    train, _ = tiny_data
    with pytest.raises(RuntimeError, match="not fitted"):
        HandwritingRecognizer().recognize([LINE])
    with pytest.raises(ValueError, match="outside the alphabet"):
        HandwritingRecognizer(**TINY).fit([train[0].points], ["On"])
    with pytest.raises(ValueError, match="2 trajectories but 1 texts"):
        HandwritingRecognizer(**TINY).fit([train[0].points, train[1].points], ["on"])
    with pytest.raises(StrokeError, match="Trajectory 1: .*only one point"):
        HandwritingRecognizer(**TINY).fit([train[0].points, [[0, 0, 1]]], ["on", "no"])
    with pytest.raises(ValueError, match="step must be positive"):
        HandwritingConfig.from_dict({"step": 0})
    with pytest.raises(ValueError, match="overlap is a distance in ink heights, at least 0"):
        HandwritingConfig.from_dict({"overlap": -0.1})
    with pytest.raises(ValueError, match=r"output_dropout must lie in \[0, 1\), got 1.0"):
        HandwritingConfig.from_dict({"output_dropout": 1.0})
    with pytest.raises(ValueError, match="expected one of 'raise', 'skip', 'rollback'"):
        HandwritingConfig.from_dict({"on_nonfinite": "ignore"})
    no_lm = HandwritingRecognizer(**{**TINY, "epochs": 1, "lm_order": 0}).fit([train[0].points], ["on"])
    with pytest.raises(ValueError, match="no language model"):
        no_lm.recognize([train[0].points], beam_width=2, use_lm=True)


def test_train_run_writes_a_run_directory(tiny_data, tmp_path):
    train, val = tiny_data
    test = make_samples(["on", "in"], TEST_FONTS, 4, seed=2)
    cfg = HandwritingConfig.from_dict({**TINY, "epochs": 1})
    result = train_run(train[:16], val, {"test": test}, cfg, tmp_path / "run", beam_width=4)
    assert {"greedy", "beam_4", "beam_4_lm"} <= set(result["test"]) and result["test"]["fonts"] == ["scriptc"]
    for name in ("config.json", "model.safetensors", "extra.safetensors", "result.json", "predictions.csv",
                 "samples.png", "report.html", "metrics.csv"):  # fmt: skip
        assert (tmp_path / "run" / name).exists(), name
    with pytest.raises(FileExistsError, match="already holds"):
        train_run(train[:16], val, {"test": test}, cfg, tmp_path / "run")


def test_an_ensemble_averages_its_members_probabilities(tiny_data, tmp_path):
    train, val = tiny_data
    args = ([s.points for s in train], [s.text for s in train])
    a = HandwritingRecognizer(**{**TINY, "epochs": 1, "seed": 0}).fit(*args)
    b = HandwritingRecognizer(**{**TINY, "epochs": 1, "seed": 1}).fit(*args)
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    both = HandwritingEnsemble.load([tmp_path / "a", tmp_path / "b"])
    points = [s.points for s in val]
    for lp, pa, pb in zip(both.log_probs(points), a.log_probs(points), b.log_probs(points), strict=True):
        np.testing.assert_allclose(np.exp(lp), (np.exp(pa) + np.exp(pb)) / 2, atol=1e-12)  # the mean probability
        np.testing.assert_allclose(np.exp(lp).sum(axis=1), 1.0, atol=1e-6)  # float32 net
    same = HandwritingEnsemble([a, a])  # two copies of one model read exactly as that model
    for x, y in zip(same.log_probs(points), a.log_probs(points), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-12)
    assert same.recognize(points, beam_width=4, use_lm=True) == a.recognize(points, beam_width=4, use_lm=True)
    assert both.evaluate(points, [s.text for s in val], beam_width=4, use_lm=True)["n"] == 8
    # combine="sequences": the winner is the proposal with the best mean log-likelihood over both members (+ LM)
    rescored = HandwritingEnsemble.load([tmp_path / "a", tmp_path / "b"], combine="sequences")
    hook, alpha, beta = ctc.ngram_hook(rescored.lm), rescored.lm_alpha, rescored.lm_beta
    outputs = rescored.recognize(points, beam_width=4, use_lm=True)
    for text, pa, pb in zip(outputs, a.log_probs(points), b.log_probs(points), strict=True):
        proposals = [y for lp in (pa, pb) for y, _ in ctc.beam_search(lp, 4, lm=hook, alpha=alpha, beta=beta,
                                                                       return_beams=True)]  # fmt: skip
        assert rescored.alphabet.encode(text) == ctc.rescore([pa, pb], proposals, lm=hook, alpha=alpha, beta=beta)[0][0]
    greedy = rescored.recognize(points)
    assert all(g in (x, y) for g, x, y in zip(greedy, a.recognize(points), b.recognize(points), strict=True))
    with pytest.raises(ValueError, match="combine must be 'probs'"):
        HandwritingEnsemble([a, b], combine="votes")
    coarse = HandwritingRecognizer(**{**TINY, "epochs": 1, "step": 0.6}).fit(*args)
    with pytest.raises(ValueError, match="must share all three"):
        HandwritingEnsemble([a, coarse])
    # a recogniser that drops strokes over earlier ink reads (and saves) that way
    thin = HandwritingRecognizer(**{**TINY, "epochs": 1, "overlap": 0.1}).fit(*args)
    thick = np.concatenate([np.c_[s, np.r_[np.zeros(len(s) - 1), 1.0]] for s in render_word("little", "scriptc")])
    assert len(thin.log_probs([thick])[0]) == len(features(thick, thin.config.step, 0.1)) < len(a.log_probs([thick])[0])
    thin.save(tmp_path / "thin")
    assert HandwritingRecognizer.load(tmp_path / "thin").config.overlap == 0.1
    with pytest.raises(ValueError, match="with overlap 0.1, member 0 .* with overlap 0.0"):
        HandwritingEnsemble([a, thin])
    with pytest.raises(ValueError, match="at least two"):
        HandwritingEnsemble([a])
    with pytest.raises(TypeError, match="save its members"):
        both.save(tmp_path / "c")


def test_plot_handwriting_checks_its_lists(tmp_path, assert_png):
    one = assert_png(plot_handwriting([LINE], ["ab"], ["ab"], tmp_path / "one.png"))
    two = assert_png(plot_handwriting([LINE, LINE], ["ab", "cd"], ["ab", ""], tmp_path / "p.png"))
    assert not np.array_equal(one, two)  # the second line is drawn
    with pytest.raises(ValueError, match="as many truths"):
        plot_handwriting([LINE], ["ab", "cd"], ["ab"], tmp_path / "q.png")
