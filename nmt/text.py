"""Sentence pairs and their one normalisation, shared by training and translation.

Small on purpose: the translator imports it, and must not pull in the corpus readers,
downloads or the demo generator to read a line of text.
"""

from __future__ import annotations

import unicodedata

Pair = tuple[str, str]


class CorpusError(ValueError):
    """A corpus that cannot be read, fetched or split. The message is one line naming the file."""


# Invisible characters seen in Tatoeba text: left in, they split one word into two tokens.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def normalize(text: str) -> str:
    """One canonical spelling of a sentence: NFC, invisible characters dropped, each run of
    Unicode whitespace (NBSP and the narrow NBSP French puts before "?" included) one ASCII space.

    Case and accents are kept: they are part of the French, and of the BLEU references.
    """
    text = unicodedata.normalize("NFC", text.translate(_INVISIBLE))
    return " ".join(text.split())
