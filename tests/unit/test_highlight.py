"""The console marks the words a keyword query matched (tui/highlight.py), folded as the daemon folds them."""

from __future__ import annotations

from tui.highlight import MARK, highlight


def marked(text, query) -> list[str]:
    shown = highlight(text, query)
    return [shown.plain[span.start:span.end] for span in shown.spans if span.style == MARK]


def test_the_query_words_are_marked_whatever_their_case_and_accents():
    assert marked("Le Café de Flore, CAFÉ crème", "cafe creme") == ["Café", "CAFÉ", "crème"]


def test_parts_of_words_are_not_marked():
    assert marked("cafeteria and café", "cafe") == ["café"]


def test_a_long_text_is_cut_with_an_ellipsis():
    shown = highlight("word " * 100, "word", limit=20)
    assert len(shown.plain) == 20 and shown.plain.endswith("…")


def test_no_query_marks_nothing():
    assert marked("some text", "") == []
