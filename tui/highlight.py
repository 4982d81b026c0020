"""The words of a text that a keyword query matched, marked for the screen.

The daemon folds words for its keyword index (lowercase, accents off: `Café` matches `cafe`); this folds
the same way, without the daemon's engine, so that the console marks the words the search found.
"""

from __future__ import annotations

import re
import unicodedata

from rich.text import Text

WORD = re.compile(r"\w+")
MARK = "bold reverse"


def fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def highlight(text: str, query: str, limit: int = 200) -> Text:
    """`text` (its first `limit` characters, an ellipsis after) with each word of `query` marked."""
    wanted = {fold(w) for w in WORD.findall(query)}
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    marked = Text(shown)
    if wanted:
        for match in WORD.finditer(shown):
            if fold(match.group()) in wanted:
                marked.stylize(MARK, match.start(), match.end())
    return marked
