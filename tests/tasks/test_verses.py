"""English-Spanish verse pairs (issue 4): parsing diatheke's output, the book-name mapping and clean-up, the
word-by-word dictionary baseline (IBM Model 1) on a corpus where the answer is known, and the real pairs when the
Debian package is there (scripts/install-system-deps.sh installs it for `make test`)."""

from __future__ import annotations

import shutil

import pytest

from lstmkit.tasks.text.verses import load_verse_pairs, parse_diatheke
from lstmkit.tasks.text.word_alignment import WordByWordTranslator, words

DIATHEKE = """Genesis 1:1: EN el principio crió Dios <H0430> los cielos y la tierra.
Genesis 1:2: Y la tierra estaba desordenada
y vacía.
I Samuel 3:4: Jehová llamó á Samuel<H8050>; y él respondió: Heme aquí.
Revelation of John 22:21: La gracia de nuestro Señor Jesucristo <G5547> sea con todos vosotros. Amén.
Jude 1:26: <G1234>
(spaRV1909eb)
"""


def test_parse_diatheke_maps_books_strips_tags_and_joins_continuations() -> None:
    verses = parse_diatheke(DIATHEKE)
    assert verses == {
        "Genesis 1:1": "En el principio crió Dios los cielos y la tierra.",
        "Genesis 1:2": "Y la tierra estaba desordenada y vacía.",
        "1 Samuel 3:4": "Jehová llamó á Samuel; y él respondió: Heme aquí.",
        "Revelation 22:21": "La gracia de nuestro Señor Jesucristo sea con todos vosotros. Amén.",
    }  # the empty Jude 1:26 dropped, the module line not read as text


PARALLEL = [("the house", "la casa"), ("the book", "el libro"), ("a book", "un libro"), ("a house", "una casa"),
            ("the red house", "la casa roja"), ("the red book", "el libro rojo"), ("a big house", "una casa grande"),
            ("the big book", "el libro grande"), ("my house", "mi casa"), ("my book", "mi libro")]  # fmt: skip


def test_ibm_model_1_learns_the_dictionary_and_translates_word_by_word() -> None:
    model = WordByWordTranslator(iterations=10).fit([e for e, _ in PARALLEL], [s for _, s in PARALLEL])
    assert model.dictionary["house"] == "casa" and model.dictionary["book"] == "libro"
    assert model.dictionary["my"] == "mi" and model.dictionary["the"] in {"el", "la"}  # "the" is split evenly
    assert model.translate(["My book.", "My house, zebra!"]) == ["Mi libro.", "Mi casa, zebra!"]  # unknown: copied
    assert words("Don't stop, Mr. Smith!") == ["don't", "stop", ",", "mr", ".", "smith", "!"]
    with pytest.raises(RuntimeError, match="before fit"):
        WordByWordTranslator().translate(["x"])
    with pytest.raises(ValueError, match="No non-empty sentence pairs"):
        WordByWordTranslator().fit(["a"], [""])


def test_missing_diatheke_is_one_clear_sentence(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("LSTMKIT_DIATHEKE", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="is not an executable file"):
        load_verse_pairs()


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("diatheke") is None, reason="needs Debian's diatheke and sword-text-sparv")
def test_real_verse_pairs_align_31084_verses() -> None:
    pairs = load_verse_pairs()
    assert len(pairs) == 31084
    assert pairs.keys[0] == "Genesis 1:1" and pairs.keys[-1] == "Revelation 22:21"
    assert pairs.english[0] == "In the beginning God created the heaven and the earth."
    assert pairs.spanish[0] == "En el principio crió Dios los cielos y la tierra."
    assert not any("<G" in s or "<H" in s for s in pairs.spanish)
    assert len(set(pairs.chapters)) == 1189  # chapters in the Protestant canon
