"""The shared CTC pieces against hand-computed cases and against torch's CTC loss."""

import itertools
import math

import numpy as np
import pytest
import torch

from lstmkit.tasks.recognition.ctc import (
    BLANK,
    Alphabet,
    beam_search,
    cer,
    char_lm_hook,
    collapse,
    ctc_loss,
    edit_distance,
    greedy_decode,
    lm_log_prob,
    log_likelihoods,
    min_frames,
    mix_hooks,
    ngram_hook,
    pack_targets,
    rescore,
    wer,
)
from lstmkit.tasks.text.language import LanguageModel
from lstmkit.tasks.text.ngram import WittenBellLM


def logp(rows: list[list[float]]) -> np.ndarray:
    """(T, C) natural-log probabilities from rows of probabilities."""
    return np.log(np.array(rows, dtype=np.float64))


# ---- alphabet ---------------------------------------------------------------------------------------------------
def test_alphabet_maps_characters_after_the_blank():
    ab = Alphabet("ab c")
    assert ab.num_classes == 5 and len(ab) == 4
    assert ab.encode("c ab") == [4, 3, 1, 2]
    assert ab.decode([4, 0, 3, 1, 2]) == "c ab"  # blanks skipped
    assert Alphabet.from_texts(["cab", "bad"]) == Alphabet("abcd")
    assert "a" in ab and "z" not in ab


def test_alphabet_errors_say_which_characters():
    with pytest.raises(ValueError, match=r"outside the alphabet \('iquz'\)"):
        Alphabet("abc").encode("quiz")
    with pytest.raises(ValueError, match="more than once"):
        Alphabet("abca")
    with pytest.raises(ValueError, match="empty"):
        Alphabet("")


# ---- paths, lengths, targets ------------------------------------------------------------------------------------
def test_collapse_merges_repeats_then_drops_blanks():
    assert collapse([1, 1, 0, 1, 2, 2, 0, 0]) == [1, 1, 2]
    assert collapse([0, 0, 0]) == []
    assert collapse([]) == []
    assert collapse(np.array([3, 3, 3])) == [3]


def test_min_frames_counts_a_blank_between_equal_neighbours():
    assert min_frames([1, 2, 3]) == 3
    assert min_frames([1, 1, 2, 2, 2]) == 8
    assert min_frames([]) == 0


def test_pack_targets_concatenates():
    targets, lengths = pack_targets([[1, 2], [], [3]])
    assert targets.tolist() == [1, 2, 3] and lengths.tolist() == [2, 0, 1]


# ---- loss -------------------------------------------------------------------------------------------------------
def test_ctc_loss_equals_the_hand_sum_over_paths():
    # T=2, classes (blank, a), each frame P(blank)=0.6, P(a)=0.4: "a" is emitted by "a-", "-a", "aa" = 0.64
    lp = torch.tensor(logp([[0.6, 0.4], [0.6, 0.4]]))[:, None, :]  # (T=2, B=1, C=2)
    loss = ctc_loss(lp, torch.tensor([[1]]), torch.tensor([2]), torch.tensor([1]), reduction="sum")
    assert loss.item() == pytest.approx(-math.log(0.64))
    empty = ctc_loss(lp, torch.zeros(0, dtype=torch.long), torch.tensor([2]), torch.tensor([0]), reduction="sum")
    assert empty.item() == pytest.approx(-math.log(0.36))  # only "--"


def test_ctc_loss_zeroes_impossible_alignments_and_checks_shapes():
    lp = torch.log_softmax(torch.randn(2, 1, 3), dim=-1)
    # "a a" needs 3 frames (a - a); 2 are given
    assert ctc_loss(lp, torch.tensor([[1, 1]]), torch.tensor([2]), torch.tensor([2])).item() == 0.0
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        ctc_loss(lp[:, 0], torch.tensor([[1]]), torch.tensor([2]), torch.tensor([1]))
    with pytest.raises(ValueError, match="input_lengths must lie"):
        ctc_loss(lp, torch.tensor([[1]]), torch.tensor([3]), torch.tensor([1]))
    with pytest.raises(ValueError, match="0 is the blank"):
        ctc_loss(lp, torch.tensor([[0]]), torch.tensor([2]), torch.tensor([1]))


# ---- decoding ---------------------------------------------------------------------------------------------------
PEAKED = logp([[0.01, 0.98, 0.01], [0.01, 0.98, 0.01], [0.98, 0.01, 0.01], [0.01, 0.98, 0.01], [0.01, 0.01, 0.98]])


def test_greedy_decodes_one_sequence_and_a_batch_with_lengths():
    assert greedy_decode(PEAKED) == [1, 1, 2]  # a a - a b -> a a b
    batch = torch.tensor(np.stack([PEAKED, PEAKED], axis=1))  # (T, B=2, C)
    assert greedy_decode(batch, lengths=[5, 2]) == [[1, 1, 2], [1]]
    assert greedy_decode(batch) == [[1, 1, 2], [1, 1, 2]]


def test_beam_search_equals_greedy_on_a_peaked_distribution():
    for width in (1, 4, 16):
        assert beam_search(PEAKED, beam_width=width) == greedy_decode(PEAKED)


def test_beam_search_beats_greedy_by_summing_paths():
    lp = logp([[0.6, 0.4], [0.6, 0.4]])
    assert greedy_decode(lp) == []  # "--" is the single best path (0.36)
    beams = beam_search(lp, beam_width=4, return_beams=True)
    assert beams[0][0] == [1]  # but "a" collects 0.24 + 0.24 + 0.16
    assert beams[0][1] == pytest.approx(math.log(0.64))
    assert beams[1] == ([], pytest.approx(math.log(0.36)))


def test_wide_beam_scores_are_exact_label_probabilities():
    rng = np.random.default_rng(0)
    lp = torch.log_softmax(torch.tensor(rng.normal(size=(4, 3)) * 2), dim=-1)  # (T=4, C=3)
    beams = beam_search(lp, beam_width=1000, prune=0.0, return_beams=True)
    # every labelling of at most 4 labels over {1, 2} that fits 4 frames, scored by torch's CTC
    labellings = [list(s) for n in range(5) for s in itertools.product([1, 2], repeat=n) if min_frames(s) <= 4]
    assert sorted(tuple(b) for b, _ in beams) == sorted(tuple(s) for s in labellings)
    total = 0.0
    for labels, score in beams:
        targets, lengths = pack_targets([labels])
        loss = ctc_loss(lp[:, None, :], targets, torch.tensor([4]), lengths, reduction="sum")
        assert score == pytest.approx(-loss.item(), abs=1e-9)
        total += math.exp(score)
    assert total == pytest.approx(1.0)  # the labellings partition the paths


def test_log_likelihoods_sum_every_frame_path_of_each_labelling():
    rng = np.random.default_rng(1)
    lp = np.log(rng.dirichlet(np.ones(3), size=5))  # (T=5, C=3)
    by_labels: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(3), repeat=5):  # every frame path, summed by what it collapses to
        labels = tuple(collapse(path))
        by_labels[labels] = by_labels.get(labels, 0.0) + math.exp(sum(lp[t, k] for t, k in enumerate(path)))
    candidates = [[], [1], [2, 1], [1, 1], [1, 2, 1, 2]]
    expected = [math.log(by_labels[tuple(c)]) for c in candidates]
    np.testing.assert_allclose(log_likelihoods(lp, candidates), expected, rtol=1e-12)
    assert log_likelihoods(lp, [[1, 1, 1, 1]]) == [-math.inf]  # 1 - 1 - 1 - 1 needs 7 frames: cannot fit
    with pytest.raises(ValueError, match="must be \\(T, C\\)"):
        log_likelihoods(lp[None], [[1]])


def test_rescore_ranks_by_the_mean_over_readings_plus_the_language_model():
    a = logp([[0.1, 0.6, 0.3]])  # (T=1, C=3): reading a prefers label 1 ...
    b = logp([[0.1, 0.2, 0.7]])  # ... reading b label 2, more strongly
    ranked = rescore([a, b], [[1], [2], [1]])  # duplicates scored once
    assert [labels for labels, _ in ranked] == [[2], [1]]
    assert ranked[0][1] == pytest.approx((math.log(0.3) + math.log(0.7)) / 2)

    def prefers_a(prefix):
        return np.log(np.array([0.5, 0.45, 0.05])) if prefix else np.log(np.array([0.1, 0.8, 0.1]))  # end, a, b

    assert lm_log_prob(prefers_a, [1]) == pytest.approx(math.log(0.8) + math.log(0.5))
    tipped = rescore([a, b], [[1], [2]], lm=prefers_a, alpha=1.0, beta=0.5)
    assert tipped[0][0] == [1]
    assert tipped[0][1] == pytest.approx((math.log(0.6) + math.log(0.2)) / 2 + math.log(0.8 * 0.5) + 0.5)
    with pytest.raises(ValueError, match="at least one reading and one candidate"):
        rescore([a], [])


def test_language_model_hook_tips_a_close_call_and_beta_rewards_length():
    lp = logp([[0.1, 0.47, 0.43]])  # (T=1, C=3): "a" slightly ahead of "b" acoustically
    assert beam_search(lp) == [1]

    def prefers_b(prefix):
        return np.log(np.array([0.2, 0.1, 0.7]))  # end, a, b

    assert beam_search(lp, lm=prefers_b, alpha=1.0) == [2]
    assert beam_search(lp, lm=prefers_b, alpha=0.0) == [1]
    # blank dominates; a large insertion bonus still makes emitting something worth it
    quiet = logp([[0.8, 0.15, 0.05]])
    assert beam_search(quiet) == [] and beam_search(quiet, beta=5.0) == [1]


def test_beam_search_rejects_bad_arguments():
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(PEAKED, beam_width=0)
    with pytest.raises(ValueError, match="max_candidates"):
        beam_search(PEAKED, max_candidates=0)
    with pytest.raises(ValueError, match=r"\(T, C\)"):
        beam_search(PEAKED[None])


def test_max_candidates_tries_only_the_most_likely_characters():
    lp = logp([[0.1, 0.3, 0.25, 0.35]])  # (T=1, C=4)
    beams = beam_search(lp, beam_width=8, max_candidates=2, return_beams=True)
    assert sorted(tuple(b) for b, _ in beams) == [(), (1,), (3,)]  # "b" (0.25) is the least likely: not tried


def test_ngram_hook_gives_the_ngram_probabilities_of_every_next_label():
    ab = Alphabet("abc")
    ids = [0]
    for word in ["abc", "abba", "cab", "bac"] * 5:
        ids += [*ab.encode(word), 0]
    lm = WittenBellLM(order=3, vocab_size=ab.num_classes).fit(np.array(ids))
    hook = ngram_hook(lm)
    for prefix in [(), (1,), (1, 2), (1, 2, 2, 1)]:
        scores = hook(prefix)  # (C,)
        assert scores.shape == (4,)
        assert np.exp(scores).sum() == pytest.approx(1.0)
        for k in range(4):  # the same as scoring the whole text "0 prefix k"
            assert scores[k] == pytest.approx(lm.log_probs(np.array([0, *prefix, k]))[-1])
    assert hook((1,))[2] > hook((1,))[3]  # "ab" is common, "ac" never seen
    # in a beam search it turns a coin toss between "b" and "c" after "a" into "ab"
    lp = logp([[0.05, 0.9, 0.025, 0.025], [0.9, 0.04, 0.03, 0.03], [0.02, 0.02, 0.48, 0.48]])
    assert beam_search(lp, lm=hook, alpha=1.0)[:2] == [1, 2]


def test_char_lm_hook_matches_the_language_model_run_on_the_whole_text():
    text = "abc abba cab bac\n" * 30
    model = LanguageModel(hidden_size=16, embedding_size=8, num_layers=1, batch_size=2, bptt=10, epochs=1,
                          dropout=0.0, progress=False).fit(text)  # fmt: skip
    ab = Alphabet("abcz")  # z: a character the model never saw
    hook = char_lm_hook(model, ab, context="\n", end=" ")
    net, tok = model._check()
    with torch.no_grad():
        full = torch.log_softmax(net(torch.tensor([tok.encode("\nab")]))[0][0, -1].double(), dim=-1).numpy()
    scores = hook((1, 2))
    assert scores[1:4] == pytest.approx(full[[tok.stoi[c] for c in "abc"]], abs=1e-6)
    assert scores[4] == -20.0 and scores[BLANK] == pytest.approx(full[tok.stoi[" "]], abs=1e-6)


def test_mix_hooks_interpolates_probabilities():
    flat = lambda prefix: np.log(np.full(3, 1 / 3))  # noqa: E731
    sharp = lambda prefix: np.log(np.array([0.1, 0.8, 0.1]) if prefix else np.array([0.0, 0.5, 0.5]) + 1e-300)  # noqa: E731
    mixed = mix_hooks([flat, sharp], [0.25, 0.75])
    np.testing.assert_allclose(np.exp(mixed((1,))), 0.25 / 3 + 0.75 * np.array([0.1, 0.8, 0.1]))
    np.testing.assert_allclose(np.exp(mixed(())), [0.25 / 3, 0.25 / 3 + 0.375, 0.25 / 3 + 0.375])
    assert np.exp(mixed((1, 2))).sum() == pytest.approx(1.0)  # a mix of distributions is one
    for hooks, shares, message in [([flat], [0.5, 0.5], "one share per hook"), ([flat, sharp], [0.5, 0.6], "sum to 1"),
                                   ([flat, sharp], [1.0, 0.0], "positive")]:  # fmt: skip
        with pytest.raises(ValueError, match=message):
            mix_hooks(hooks, shares)


# ---- error rates ------------------------------------------------------------------------------------------------
def test_edit_distance_on_hand_examples():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "") == 0
    assert edit_distance("abc", "") == 3 and edit_distance("", "ab") == 2
    assert edit_distance("flaw", "lawn") == 2
    assert edit_distance(["the", "cat"], ["the", "hat"]) == 1


def test_cer_and_wer_on_hand_examples():
    assert cer(["abcd"], ["abd"]) == 0.25
    assert cer(["abcd", "ef"], ["abcd", "xf"]) == pytest.approx(1 / 6)  # summed over pairs, not averaged
    assert cer(["ab"], ["abab"]) == 1.0  # insertions can push it to 1 and beyond
    assert cer([""], [""]) == 0.0 and cer([], []) == 0.0
    assert cer([""], ["ab"]) == 2.0  # an empty reference counts as length 1
    assert wer(["the cat sat"], ["the cat sat down"]) == pytest.approx(1 / 3)
    assert wer(["the cat sat", "on a mat"], ["the hat sat", "on mat"]) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="pair them"):
        cer(["a"], [])
