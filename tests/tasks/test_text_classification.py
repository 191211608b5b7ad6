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


# ---- issue 20: the LSTM and the bag of words, averaged with the weight chosen on validation texts ------------------


def test_choose_weight_never_scores_below_either_model_on_validation() -> None:
    from lstmkit.tasks.text.classification import choose_weight

    rng = np.random.default_rng(0)
    for _ in range(20):
        y = rng.integers(0, 3, 50)
        p_lstm, p_bow = rng.dirichlet(np.ones(3), 50), rng.dirichlet(np.ones(3), 50)
        w, figures = choose_weight(p_lstm, p_bow, y)
        assert figures["chosen"]["accuracy"] >= max(figures["lstm"]["accuracy"], figures["bag_of_words"]["accuracy"])
        assert figures["chosen"]["accuracy"] == float(((w * p_lstm + (1 - w) * p_bow).argmax(1) == y).mean())
    y = np.array([0, 1, 0, 1])
    right, wrong = np.eye(2)[y] * 0.8 + 0.1, np.eye(2)[1 - y] * 0.8 + 0.1
    assert choose_weight(right, wrong, y)[0] == 1.0 and choose_weight(wrong, right, y)[0] == 0.0
    # each right on half the texts, the other unsure there: only a mix gets all four
    lstm = np.array([[0.9, 0.1], [0.1, 0.9], [0.45, 0.55], [0.55, 0.45]])
    bow = np.array([[0.45, 0.55], [0.55, 0.45], [0.9, 0.1], [0.1, 0.9]])
    w, figures = choose_weight(lstm, bow, y)
    assert 0 < w < 1 and figures["chosen"]["accuracy"] == 1.0 and figures["lstm"]["accuracy"] == 0.5


@pytest.mark.parametrize("n_classes", [2, 3])
def test_bag_of_words_predicts_as_scikit_learn_does(n_classes: int) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from lstmkit.tasks.text.classification import BagOfWords

    texts, labels = sentences(150)
    codes = (labels + np.arange(150) % 2) % n_classes if n_classes == 3 else labels
    bow = BagOfWords.fit(texts, codes, n_classes)
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    reference = LogisticRegression(max_iter=2000).fit(vectorizer.fit_transform(texts), codes)
    test, _ = sentences(40, seed=9)
    np.testing.assert_allclose(
        bow.predict_proba(test), reference.predict_proba(vectorizer.transform(test)), rtol=1e-6, atol=1e-9
    )
    assert BagOfWords.fit(["a b", "c d"], np.array([0, 1]), 2) is None  # no word in two texts


def test_a_weak_lstm_gives_way_to_the_bag_of_words_and_the_choice_is_saved(tmp_path, caplog) -> None:
    """One epoch of a tiny LSTM cannot read the sentiment word yet; the bag of words can: the weight moves to it, the
    classifier predicts as well as the bag of words, and a saved run predicts the same."""
    texts, labels = sentences(300)
    clf = small(epochs=1, hidden_size=2, embedding_size=2, lr=1e-4).fit(texts, labels)
    chosen = clf.ensemble_
    v = chosen["validation"]
    assert v["lstm"]["accuracy"] < 0.8 < v["bag_of_words"]["accuracy"] and chosen["weight_lstm"] < 1
    assert v["chosen"]["accuracy"] >= v["bag_of_words"]["accuracy"] and chosen["n_validation"] == 30
    test, test_labels = sentences(100, seed=4)
    assert clf.evaluate(test, test_labels)["accuracy"] > 0.9
    clf.save(tmp_path / "clf")
    again = lstmkit.load(tmp_path / "clf")
    assert again.ensemble_ == chosen and (tmp_path / "clf" / "bag_of_words.json").is_file()
    np.testing.assert_allclose(again.predict_proba(test), clf.predict_proba(test), rtol=1e-6)
    with caplog.at_level("WARNING"):
        clf.onnx_graphs()  # the LSTM's graph, with a warning that the bag of words is not in it
    assert "the ONNX graph holds the LSTM alone" in caplog.text


def test_never_keeps_the_lstm_alone_and_runs_saved_before_load_as_it(tmp_path) -> None:
    import json

    texts, labels = sentences(200)
    clf = small(epochs=1, bag_of_words="never").fit(texts, labels)
    assert clf.ensemble_ == {"weight_lstm": 1.0, "choice": "lstm"} and clf.bag_of_words_ is None
    test, _ = sentences(20, seed=6)
    np.testing.assert_array_equal(clf.predict_proba(test), clf._lstm_proba(test))
    clf.save(tmp_path / "clf")
    assert not (tmp_path / "clf" / "bag_of_words.json").exists()
    path = tmp_path / "clf" / "config.json"
    document = json.loads(path.read_text())
    del document["config"]["ensemble"], document["config"]["params"]["bag_of_words"]  # a run saved before issue 20
    path.write_text(json.dumps(document))
    old = lstmkit.load(tmp_path / "clf")
    assert old.ensemble_["weight_lstm"] == 1.0 and old.config.bag_of_words == "auto"
    np.testing.assert_array_equal(old.predict_proba(test), clf.predict_proba(test))


def test_train_run_reports_the_choice_and_the_baseline_it_never_ends_below_on_validation(tmp_path) -> None:
    import json

    from lstmkit.tasks.text.classification import train_run

    texts, labels = sentences(250)
    result = train_run(texts, labels, tmp_path / "run", holdout=0.2, embedding_size=8, hidden_size=8, epochs=2,
                       progress=False)  # fmt: skip
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["ensemble"] == result["ensemble"] and "validation" in result["ensemble"]
    train_idx, test_idx = holdout_split(250, 0.2, 0)
    alone = bag_of_words_baseline([texts[i] for i in train_idx], labels[train_idx], [texts[i] for i in test_idx],
                                  labels[test_idx])  # fmt: skip
    assert result["baseline"] == alone  # the reported baseline is the ensemble's bag of words, or the same model
    v = result["ensemble"]["validation"]
    assert v["chosen"]["accuracy"] >= max(v["lstm"]["accuracy"], v["bag_of_words"]["accuracy"])
