"""Word-level vocabulary: a reversible word tokenizer and ``Lang``.

Tokens are the words, numbers and punctuation marks of the text::

    "L'homme est-il là ?"  ->  ["L'", "homme", "est", "-il", "là", "▁?"]
    "Who's there?"         ->  ["Who", "'s", "there", "?"]

French elision is split after the apostrophe (``l'``, ``qu'``, ``j'``, ``c'``...), English
clitics before it (``'s``, ``'m``, ``'re``, ``'ve``, ``'ll``, ``'d``). Negations stay whole
(``don't``, ``can't``, ``won't``): they are a closed set of about twenty words, and splitting
them gives odd stems such as "ca" and "wo". Other apostrophe words stay whole too
(``aujourd'hui``, ``quelqu'un``, ``o'clock``). A hyphen starts a new token that keeps it
(``est-il`` -> ``est`` ``-il``) so the French inversions ``-il``, ``-tu``, ``-vous`` are shared
words instead of a new word for every verb. Both apostrophes, ' and ’, are kept as written.

Spacing is made reversible by construction. ``detokenize`` knows the usual typographic
rules: a space between words; no space before closing punctuation (``. , ! ? ; : ) %``), before
a clitic, a hyphen piece or a closing quote; no space after an elided ``l'``, an opening
bracket, a dollar sign or an opening quote. Where the text breaks a rule, the token carries a
marker that states its spacing: ``▁`` (a space comes before it) or ``￭`` (it is glued to the
previous token). The marker is only there where the rules would be wrong, so most vocabulary
entries are plain words ("homme", "?", "l'"). The main exception is French spacing before
``! ? ; :`` ("Qui ?" against English "Who?"): the French marks are the words "▁?", "▁!", "▁;",
"▁:". On the whole Tatoeba corpus every line, English and French, round-trips exactly.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator

from nmt.specials import EOS, PAD, SOS, SPECIALS, UNK

SPACE_BEFORE = "▁"  # the same mark SentencePiece uses for "a space precedes this piece"
GLUED = "￭"  # OpenNMT's joiner: "no space before this token"

APOSTROPHES = "'’"
_TOKEN = re.compile(
    r"\d+(?:[.,:]\d+)+"  # 3.5  10,000  11:45
    r"|(?<=\w)-\w+(?:['’]\w+)*"  # the hyphen piece of a compound: -il, -moi, -free
    r"|\w+(?:['’]\w+)*"  # a word, apostrophes inside included: l'homme, don't
    r"|\.\.\."
    r"|\S"  # any other character is a token of its own
)
_ELISION = re.compile(r"(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu)['’](?=\w)", re.IGNORECASE)
_CLITIC = re.compile(r"(\w+)(['’](?:s|m|d|re|ve|ll))", re.IGNORECASE)

_CLOSING = {".", ",", "!", "?", ";", ":", ")", "]", "}", "%", "…", "..."}
_OPENING = {"(", "[", "{", "$"}


def tokenize(text: str) -> list[str]:
    """Split ``text`` into words and punctuation, marking spacing the rules would get wrong.
    Runs of whitespace count as one space, as in the corpus after normalisation."""
    words, glued = [], []
    for chunk_index, chunk in enumerate(text.split()):
        for position, word in enumerate(_split_chunk(chunk)):
            words.append(word)
            glued.append(position > 0 or chunk_index == 0)  # the first word has nothing before it
    return [
        _mark(word, actually_glued) if actually_glued != expected else word
        for word, actually_glued, expected in zip(words, glued, _expected_glue(words))
    ]


def detokenize(tokens: list[str]) -> str:
    """Join tokens into text; ``detokenize(tokenize(s)) == s`` for whitespace-folded ``s``."""
    unmarked = [_unmark(token) for token in tokens]
    words = [word for word, _ in unmarked]
    pieces = []
    for (word, mark), expected in zip(unmarked, _expected_glue(words)):
        glued = expected if mark is None else mark == GLUED
        pieces.append(word if glued or not pieces else " " + word)
    return "".join(pieces)


def surface(token: str) -> str:
    """The word a token stands for, without its spacing marker."""
    return _unmark(token)[0]


def _split_chunk(chunk: str) -> Iterator[str]:
    for token in _TOKEN.findall(chunk):
        yield from _split_apostrophes(token)


def _split_apostrophes(word: str) -> list[str]:
    """l'homme -> l' homme; qu'aujourd'hui -> qu' aujourd'hui; it's -> it 's."""
    pieces = []
    while elision := _ELISION.match(word):
        pieces.append(elision.group())
        word = word[elision.end() :]
    clitic = _CLITIC.fullmatch(word)
    return pieces + (list(clitic.groups()) if clitic else [word])


def _expected_glue(words: Iterable[str]) -> Iterator[bool]:
    """For each word, whether the typographic rules put it right after the previous one."""
    previous = None
    inside_quotes = False
    for word in words:
        if previous is None:
            glued = True
        elif word == '"':
            glued = inside_quotes  # a closing quote hugs the quoted text
        else:
            glued = (
                word in _CLOSING
                or (len(word) > 1 and word[0] in APOSTROPHES + "-")  # 's  -il
                or previous in _OPENING
                or (previous == '"' and inside_quotes)
                or (len(previous) > 1 and previous[-1] in APOSTROPHES)  # l'
            )
        if word == '"':
            inside_quotes = not inside_quotes
        previous = word
        yield glued


def _mark(word: str, glued: bool) -> str:
    return (GLUED if glued else SPACE_BEFORE) + word


def _unmark(token: str) -> tuple[str, str | None]:
    """(word, marker or None). A lone marker character is a word: text may contain one."""
    if len(token) > 1 and token[0] in (GLUED, SPACE_BEFORE):
        return token[1:], token[0]
    return token, None


def content_ids(ids: Iterable[int]) -> list[int]:
    """The ids up to the first EOS, without PAD and SOS: what a decoder output says."""
    content = []
    for i in map(int, ids):
        if i == EOS:
            break
        if i not in (PAD, SOS):
            content.append(i)
    return content


class Lang:
    """The vocabulary of one language (or of both, for a joint vocabulary).

    Ids 0-3 are the specials PAD, SOS, EOS and UNK; the words follow, most frequent first.
    """

    def __init__(self, name: str, word2count: dict[str, int] | None = None):
        """``word2count`` gives the words in id order, with their training counts."""
        self.name = name
        self.word2count = dict(word2count or {})
        self.index2word = list(SPECIALS) + list(self.word2count)
        self.word2index = {word: i for i, word in enumerate(self.index2word)}

    @classmethod
    def build(cls, sentences: Iterable[str], *, name: str, min_count: int = 1, max_size: int = 0) -> Lang:
        """Keep words seen at least ``min_count`` times; ``max_size`` caps the size, specials
        included, keeping the most frequent words (ties in alphabetical order); 0 = no cap."""
        if 0 < max_size <= len(SPECIALS):
            raise ValueError(f"max_size={max_size} leaves no room for words after the {len(SPECIALS)} specials")
        counts = Counter(token for sentence in sentences for token in tokenize(sentence))
        kept = sorted((item for item in counts.items() if item[1] >= min_count), key=lambda item: (-item[1], item[0]))
        if max_size:
            kept = kept[: max_size - len(SPECIALS)]
        return cls(name, dict(kept))

    @property
    def n_words(self) -> int:
        return len(self.index2word)

    def __len__(self) -> int:
        return self.n_words

    def tokens(self, text: str) -> list[str]:
        """The tokens of ``text``, one per id of ``encode(text)``."""
        return tokenize(text)

    def encode(self, text: str) -> list[int]:
        """Token ids, without SOS or EOS; unknown words become UNK."""
        return [self.word2index.get(token, UNK) for token in tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text up to the first EOS; PAD and SOS are skipped, UNK shows as <unk>."""
        return detokenize([self.index2word[i] for i in content_ids(ids)])

    def id_to_token(self, i: int) -> str:
        return self.index2word[i]

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` missing from the vocabulary, each once, in order of appearance."""
        unknown = (surface(token) for token in tokenize(text) if token not in self.word2index)
        return list(dict.fromkeys(unknown))

    def to_dict(self) -> dict:
        words = self.index2word[len(SPECIALS) :]
        return {"kind": "word", "name": self.name, "words": words, "counts": [self.word2count[w] for w in words]}

    @classmethod
    def from_dict(cls, d: dict) -> Lang:
        if d.get("kind") != "word":
            raise ValueError(f"not a word vocabulary: kind={d.get('kind')!r}")
        return cls(d["name"], dict(zip(d["words"], d["counts"])))
