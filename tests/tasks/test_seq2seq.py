"""Sequence to sequence (issue 4): attention variants learn number words, padding is masked, beam search with
length normalisation, scheduled sampling, scores, save/load and the one-sentence errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.tasks.text.seq2seq import (
    BOS,
    Seq2Seq,
    Seq2SeqNet,
    _pad,
    corpus_scores,
    number_phrases,
    read_pairs,
    train_run,
)

NUMBERS = np.random.default_rng(0).choice(1000, 400, replace=False)  # the last 40 held out


def small(**kw) -> Seq2Seq:
    base = dict(embedding_size=16, hidden_size=48, epochs=30, batch_size=16, lr=5e-3, dropout=0.0, progress=False)
    return Seq2Seq(**{**base, **kw})


@pytest.fixture(scope="module")
def numbers_model() -> Seq2Seq:
    src, tgt = number_phrases(NUMBERS[:360])
    return small(attention="bahdanau", epochs=40, batch_size=32).fit(src, tgt)


@pytest.mark.slow
def test_bahdanau_attention_learns_number_words_it_never_saw(numbers_model: Seq2Seq) -> None:
    src, tgt = number_phrases(NUMBERS[360:])
    result = numbers_model.evaluate(src, tgt)
    assert result["exact_match"] >= 0.8 and result["chrf"] > 90, result  # 0.95 when this was written


@pytest.mark.parametrize("attention", ["luong", "none"])
def test_other_attentions_train(attention: str) -> None:
    src, tgt = number_phrases(NUMBERS[:60])
    model = small(attention=attention, epochs=3).fit(src, tgt)
    assert model.history_[-1]["train_loss"] < model.history_[0]["train_loss"]
    assert all(isinstance(o, str) for o in model.translate(src[:3], beam_size=2))


@pytest.mark.slow
def test_padding_is_masked_out_of_attention_and_outputs(numbers_model: Seq2Seq) -> None:
    src, _ = number_phrases(NUMBERS[360:370])
    together = numbers_model.translate(src, batch_size=64)
    alone = [numbers_model.translate([s])[0] for s in src]
    assert together == alone
    tokens, outputs, weights = numbers_model.attention("three hundred and one")
    assert tokens == ["three", "hundred", "and", "one"] and weights.shape == (len(outputs), 4)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.slow
def test_beam_search_scores_at_least_greedy_under_its_own_objective(numbers_model: Seq2Seq) -> None:
    net = numbers_model.net

    def log_prob(source: str, output: str) -> float:
        src = [numbers_model._ids(numbers_model.source_tokenizer, source)]
        tgt = numbers_model._ids(numbers_model.target_tokenizer, output) + [2]
        x, lengths = _pad(src)
        with torch.no_grad():
            logits = net(x, lengths, torch.tensor([[BOS, *tgt[:-1]]]))
        logp = torch.log_softmax(logits[0].double(), -1)
        return float(sum(logp[t, tok] for t, tok in enumerate(tgt)))

    for source in number_phrases(NUMBERS[360:367])[0]:
        greedy = numbers_model.translate([source])[0]
        beam = numbers_model.translate([source], beam_size=5, alpha=0.0)[0]  # alpha 0: pure log-probability
        assert log_prob(source, beam) >= log_prob(source, greedy) - 1e-9


def test_scheduled_sampling_feeds_back_model_tokens() -> None:
    model = small(epochs=1)
    net = Seq2SeqNet.build(10, 10, model.config.net)
    x, lengths = _pad([[3, 4, 5]])
    target_in = torch.tensor([[BOS, 3, 4, 5, 6]])
    torch.manual_seed(0)
    forced = net(x, lengths, target_in, sampling=0.0)
    torch.manual_seed(0)
    assert torch.equal(net(x, lengths, target_in, sampling=0.0), forced)  # no sampling: deterministic teacher forcing
    sampled = net(x, lengths, target_in, sampling=1.0)  # every fed-in token is the model's own
    own = [BOS] + sampled[0, :-1].argmax(-1).tolist()  # what it fed itself: teacher-forcing those reproduces it
    assert torch.allclose(sampled, net(x, lengths, torch.tensor([own]), sampling=0.0))
    assert torch.allclose(sampled[0, 0], forced[0, 0])  # both start from BOS


@pytest.mark.slow
def test_scores_save_load_and_errors(numbers_model: Seq2Seq, tmp_path) -> None:
    scores = corpus_scores(["trois cent", "deux"], ["trois cent", "deux cent"])
    assert scores["exact_match"] == 0.5 and 0 < scores["chrf"] < 100
    numbers_model.save(tmp_path / "s2s")
    again = lstmkit.load(tmp_path / "s2s")
    src, _ = number_phrases(NUMBERS[360:])
    assert again.translate(src) == numbers_model.translate(src)
    with pytest.raises(TypeError, match="Pass a list of source texts"):
        numbers_model.translate("twelve")
    with pytest.raises(ValueError, match="3 sources but 2 targets"):
        small().fit(["a", "b", "c"], ["x", "y"])
    with pytest.raises(ValueError, match="Pair 1 has an empty source or target"):
        small().fit(["a", " "], ["x", "y"])
    with pytest.raises(KeyError, match="Unknown pair set 'psalms'; bundled: numbers"):
        read_pairs("psalms", None)
    with pytest.raises(ValueError, match="max_minutes must be a positive number"):
        small(max_minutes=0)


def test_train_run_writes_a_complete_run(tmp_path) -> None:
    src, tgt = number_phrases(NUMBERS[:60])
    result = train_run(src, tgt, small(epochs=2).config, tmp_path / "run", holdout=0.2, beam_size=2)
    assert result["held_out"] == 12 and {"greedy", "beam_2", "copy_source", "word_by_word"} <= set(result)
    for name in ("config.json", "model.safetensors", "metrics.csv", "result.json", "predictions.csv", "report.html"):
        assert (tmp_path / "run" / name).exists(), name


def test_train_run_splits_by_group_so_no_group_straddles(tmp_path) -> None:
    src, tgt = number_phrases(NUMBERS[:90])
    groups = [f"g{k // 3}" for k in range(90)]  # 30 groups of 3 neighbours
    result = train_run(src, tgt, small(epochs=1).config, tmp_path / "run", holdout=0.2, beam_size=1, groups=groups,
                       word_by_word=False)  # fmt: skip
    assert result["held_out"] == 6 * 3 and result["validation"] == 2 * 3 and result["train"] == 22 * 3
    import pandas as pd

    held = set(pd.read_csv(tmp_path / "run" / "predictions.csv")["source"])
    held_groups = {g for s, g in zip(src, groups, strict=True) if s in held}
    assert all((s in held) == (g in held_groups) for s, g in zip(src, groups, strict=True))
    with pytest.raises(ValueError, match="2 group labels for 90 pairs"):
        train_run(src, tgt, small(epochs=1).config, tmp_path / "other", groups=["a", "b"])


def test_batches_are_bucketed_by_length_and_cover_every_pair_once() -> None:
    from lstmkit.tasks.text.seq2seq import _Pairs

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, 500)
    src = [[3] * int(n) for n in lengths]
    tgt = [[4] * int(n) for n in lengths]
    pairs = _Pairs(src, tgt, batch_size=10, seed=0)
    seen, waste = 0, 0
    for source, lens, _, _ in pairs:
        seen += len(lens)
        waste += int((source.shape[1] - lens).sum())
    assert seen == 500
    assert waste < 0.05 * lengths.sum()  # unbucketed random batches of 10 would pad about half
