"""Text classification (issue 4): padding and lengths, pooling, class weights, held-out evaluation, attention per
token, save/load, the bag-of-words baseline and the one-sentence errors, on small generated sentences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import lstmkit
from lstmkit.tasks.text.classification import TextClassifier, _pad, bag_of_words_baseline, holdout_split

GOOD, BAD, FILL = ["great", "lovely", "superb", "fine"], ["awful", "dull", "poor", "bad"], ["the", "film", "was", "a"]


def sentences(n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Sentences of 3-12 filler words with one sentiment word somewhere: its polarity is the label."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(FILL, size=int(rng.integers(3, 12))))
        words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(GOOD if label else BAD)))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, np.array(labels)


def small(**kw) -> TextClassifier:
    base = dict(embedding_size=16, hidden_size=16, epochs=6, batch_size=16, lr=1e-2, dropout=0.0, progress=False)
    return TextClassifier(**{**base, **kw})


@pytest.fixture(scope="module")
def trained() -> TextClassifier:
    texts, labels = sentences(300)
    return small(pooling="attention").fit(texts, labels)


def test_learns_where_the_sentiment_word_sits_anywhere(trained: TextClassifier) -> None:
    texts, labels = sentences(200, seed=1)
    result = trained.evaluate(texts, labels)
    assert result["accuracy"] > 0.95 and np.array(result["confusion"]).sum() == 200
    assert trained.history_[-1]["val_accuracy"] >= trained.history_[0]["val_accuracy"]


def test_padding_changes_nothing(trained: TextClassifier) -> None:
    texts, _ = sentences(20, seed=2)
    together = trained.predict_proba(texts)
    alone = np.concatenate([trained.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_attention_weights_cover_each_token_and_favour_the_sentiment_word(trained: TextClassifier) -> None:
    weights = trained.attention("the film was superb the film was a film")
    assert [t for t, _ in weights][3] == "superb" and sum(w for _, w in weights) == pytest.approx(1.0)
    assert max(weights, key=lambda tw: tw[1])[0] == "superb"


def test_class_weights_balance_the_loss() -> None:
    clf = small(class_weight="balanced")
    clf.classes_ = np.array([0, 1])
    np.testing.assert_allclose(clf._class_weights(np.array([0, 0, 0, 1])).numpy(), [4 / 6, 4 / 2])
    clf.config = clf.config.replace(class_weight={1: 3.0})
    np.testing.assert_allclose(clf._class_weights(np.array([0, 1])).numpy(), [1.0, 3.0])
    clf.config = clf.config.replace(class_weight={7: 3.0})
    with pytest.raises(ValueError, match=r"class_weight names \[7\], not among the labels \[0, 1\]"):
        clf._class_weights(np.array([0, 1]))


def test_save_load_and_errors(trained: TextClassifier, tmp_path) -> None:
    trained.save(tmp_path / "clf")
    again = lstmkit.load(tmp_path / "clf")
    texts, _ = sentences(30, seed=3)
    np.testing.assert_array_equal(again.predict_proba(texts), trained.predict_proba(texts))
    assert again.predict(["the film was awful"])[0] == 0 and again.predict([""]).shape == (1,)  # empty text reads <unk>
    with pytest.raises(TypeError, match="Pass a list of texts, not one string"):
        trained.predict("the film")
    with pytest.raises(ValueError, match="a classifier needs at least two classes"):
        small().fit(["a b", "c d"], [1, 1])
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        small().fit(["a", "b", "c"], [0, 1])
    with pytest.raises(ValueError, match=r"Labels \['9'\] were not seen in training"):
        trained.evaluate(["the film"], [9])


def test_pad_and_split_helpers() -> None:
    ids, lengths = _pad([np.array([4, 5, 6]), np.array([7])])
    assert ids.tolist() == [[4, 5, 6], [7, 0, 0]] and lengths.tolist() == [3, 1]
    train, held = holdout_split(10, 0.2, seed=0)
    assert len(held) == 2 and sorted({*train, *held}) == list(range(10))
    assert torch.equal(torch.as_tensor(holdout_split(10, 0.2, 0)[1]), torch.as_tensor(held))  # seeded


def test_bag_of_words_baseline_separates_the_sentences() -> None:
    texts, labels = sentences(200)
    test_texts, test_labels = sentences(100, seed=5)
    assert bag_of_words_baseline(texts, labels, test_texts, test_labels)["accuracy"] > 0.9


def test_reading_a_csv_refuses_a_header_alone_and_names_the_row_without_a_label(tmp_path, capsys) -> None:
    """Issue 18: the CSV rules every entry point shares (lstmkit.data.tables), in the API and the CLI alike."""
    from lstmkit.cli import main
    from lstmkit.tasks.text.classification import read_labelled

    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    with pytest.raises(ValueError, match="empty.csv has no data rows, only the header"):
        read_labelled(None, empty)
    assert main(["text", "classify", "train", "--csv", str(empty), "--out", str(tmp_path / "r")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "empty.csv has no data rows, only the header" in err and not (tmp_path / "r").exists()
    unlabelled = tmp_path / "texts.csv"
    unlabelled.write_text("text,label\ngood,1\nbad,\n")
    with pytest.raises(ValueError, match="Row 3 of texts.csv has no label"):
        read_labelled(None, unlabelled)
    with pytest.raises(ValueError, match="give one of --data imdb\\|rotten_tomatoes or --csv FILE"):
        read_labelled(None, None)
    with pytest.raises(ValueError, match="not both"):
        read_labelled("imdb", unlabelled)


def test_train_run_refuses_a_class_only_held_out_before_training(tmp_path) -> None:
    """Issue 18: from Python too, a class that only held-out texts have is refused before any training or save."""
    from lstmkit.tasks.text.classification import train_run

    texts = [f"text number {i}" for i in range(20)]
    labels = np.array(["a", "b"] * 10, dtype=object)
    _, test_idx = holdout_split(20, 0.2, 0)
    labels[test_idx[0]] = "only-held-out"
    with pytest.raises(ValueError, match="only-held-out"):
        train_run(texts, labels, tmp_path / "run", holdout=0.2, hidden_size=4, epochs=1)
    assert not (tmp_path / "run" / "model.safetensors").exists()
