"""What the toolkit knows about a language, from its ISO 639 code and nothing else.

    check_code("de") / check_code("deu")   a language code, or LanguageError naming it
    same_language("deu", "de")             True: ISO 639-3 and 639-1 codes of one language
    writing_script("zh")                   "Hans": the script the language is usually written in
    character_coverage(["en", "zh"])       SentencePiece's coverage for text in these languages
    bleu_tokenizer("zh")                   the sacrebleu tokenizer for references in this language

No rule anywhere else in the package depends on which language a text is in. The codes and
their scripts come from ``langcodes`` (CLDR's likely-subtags data), so a code we never heard of
works as soon as it is a real one.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import re
from collections.abc import Iterable

import langcodes

log = logging.getLogger(__name__)

# Two or three lower-case letters (ISO 639-1 or 639-3), optionally a script or region: zh-Hant,
# pt-BR, cmn_Hans as the Tatoeba Challenge writes it.
_CODE = re.compile(r"[a-z]{2,3}(?:[-_][A-Za-z]{4})?(?:[-_](?:[A-Z]{2}|[0-9]{3}))?")

# Scripts with thousands of characters, where SentencePiece's own advice is to leave the rarest
# 0.05% of characters out of the vocabulary (they become <unk>) rather than give each a piece.
_LARGE_SCRIPTS = frozenset({"Hans", "Hant", "Hani", "Jpan", "Kore"})
LARGE_SCRIPT_COVERAGE = 0.9995

# sacrebleu tokenizers for languages written without spaces between words; any other language
# gets sacrebleu's default, 13a. MeCab's are optional packages (sacrebleu[ja], sacrebleu[ko]).
_BLEU_TOKENIZERS = {"zh": ("zh", None), "ja": ("ja-mecab", "MeCab"), "ko": ("ko-mecab", "mecab_ko")}
DEFAULT_BLEU_TOKENIZER = "13a"


class LanguageError(ValueError):
    """A language code that is not one; the message is one line."""


def check_code(code: str, what: str = "language code") -> str:
    """``code`` unchanged when it is an ISO 639-1/639-3 code (with an optional script or region)."""
    if not isinstance(code, str) or not _CODE.fullmatch(code) or not langcodes.tag_is_valid(code.replace("_", "-")):
        raise LanguageError(f"{what} {code!r}: not an ISO 639-1 or 639-3 code (such as en, de, zh or eng, deu, cmn)")
    return code


def canonical(code: str) -> str:
    """The shortest standard form of ``code``: deu -> de, cmn_Hans -> zh-Hans, zho -> zh."""
    return langcodes.standardize_tag(check_code(code).replace("_", "-"), macro=True)


def same_language(a: str, b: str) -> bool:
    """Whether two codes name one language: de and deu, zh and cmn (its written form)."""
    return _base(a) == _base(b)


def _base(code: str) -> str:
    return langcodes.Language.get(canonical(code)).language


def writing_script(code: str) -> str:
    """The ISO 15924 script ``code`` is usually written in: en -> Latn, ru -> Cyrl, ja -> Jpan."""
    return langcodes.Language.get(canonical(code)).maximize().script


def character_coverage(codes: Iterable[str]) -> float:
    """SentencePiece's character_coverage for a text in ``codes``: 1.0 (every character gets a
    piece) for alphabets, 0.9995 when any of them is written in Chinese characters, kana or Hangul."""
    return LARGE_SCRIPT_COVERAGE if any(writing_script(c) in _LARGE_SCRIPTS for c in codes) else 1.0


def check_bleu_tokenizer(name: str) -> str:
    """``name`` unchanged when sacrebleu has a BLEU tokenizer of that name, or "auto"."""
    if name == "auto":  # every model's config says so unless told otherwise; loading it need not import sacrebleu
        return name
    from sacrebleu.metrics import BLEU

    if name not in BLEU.TOKENIZERS:
        raise LanguageError(f"--bleu-tokenize {name!r}: choose auto, {', '.join(BLEU.TOKENIZERS)}")
    return name


@functools.cache  # one warning per language, not one per validation
def bleu_tokenizer(code: str) -> str:
    """sacrebleu's tokenizer for references in language ``code``: zh, ja-mecab or ko-mecab for
    the languages written without spaces (MeCab's when installed), 13a for the others."""
    tokenizer, module = _BLEU_TOKENIZERS.get(_base(code), (DEFAULT_BLEU_TOKENIZER, None))
    if module and importlib.util.find_spec(module) is None:
        extra = tokenizer.split("-")[0]
        log.warning(
            "%s references are scored with sacrebleu's char tokenizer: pip install 'sacrebleu[%s]' for %s",
            code,
            extra,
            tokenizer,
        )
        return "char"
    return tokenizer
