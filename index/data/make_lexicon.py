"""Regenerate the common-word lexicons ``index/data/lexicon_<lang>.txt.gz`` and the word-form
lists ``index/data/wordforms_<lang>.txt.gz`` (a dev tool).

Run ``pip install pyspellchecker==0.9.1 simplemma==2.0.0 && python index/data/make_lexicon.py``.

- The lexicons hold the accent-folded, lower-case words that pyspellchecker's frequency
  lists (MIT licence, built from OpenSubtitles and filtered against dictionaries) attest
  above their floor count (the floor, 50, is given to dictionary words never seen in the
  subtitles: rare words and many brand names).
- The word-form lists add the rarer ordinary words the subtitles miss ("dragage",
  "horodateurs", "stallholders"): every word form simplemma's dictionaries (MIT code; data
  from Michal Měchura's lemmatization lists under the ODbL, Wiktionary entries packaged by
  Kaikki under CC BY-SA, FreeLing, spaCy's lookups data, UniMorph and the Wikinflection
  corpus under CC BY 4.0: simplemma's ``licenses`` folder) write in lower case, folded the
  same way, less the lexicon's words and less every word those dictionaries also write
  with a capital, in either language ("Google", "Paris": names that are words too stay
  possible names). They are read word for word only: no prefix or typo allowance, which
  over 300,000 forms would take almost any name for a word, and a word of these lists
  alone is a name where the stories capitalise it (``common_word(..., exact=True)``).

storybot reads both to tell a lower-case name in a chat message ("huawei", "xiaomi") from
an ordinary word; it needs neither package at run time.
"""
from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from index.keyword import fold  # noqa: E402

FLOOR = 50
LANGS = ("en", "fr")  # the languages of index/lang/
_WORD = re.compile(r"[a-z]+")


def _word(form: str) -> str:
    """The folded word a form is read as: the part after an elision ("l'eau" -> "eau")."""
    return fold(form).replace("’", "'").split("'")[-1]


def _write(path: Path, words: list[str]) -> None:
    # mtime=0: the same words give the same bytes, so a rebuild changes no unchanged file
    path.write_bytes(gzip.compress(("\n".join(words) + "\n").encode("utf-8"), compresslevel=9, mtime=0))
    print(f"{path.name}: {len(words)} words, {path.stat().st_size // 1024} KB")


def main() -> None:
    from simplemma.strategies.dictionaries.dictionary_factory import DefaultDictionaryFactory
    from spellchecker import SpellChecker

    lexicon: set[str] = set()
    for lang in LANGS:
        counts = SpellChecker(language=lang, distance=1).word_frequency.dictionary
        kept = sorted(w for w in {_word(w) for w, c in counts.items() if c > FLOOR} if _WORD.fullmatch(w))
        lexicon.update(kept)
        _write(HERE / f"lexicon_{lang}.txt.gz", kept)

    factory = DefaultDictionaryFactory()
    lower: dict[str, set[str]] = {}
    capitalised: set[str] = set()
    for lang in LANGS:
        table = factory.get_dictionary(lang)
        for form in {*table.keys(), *table.values()}:
            if form[:1].isupper():
                capitalised.add(_word(form))
            elif form == form.lower():
                lower.setdefault(lang, set()).add(_word(form))
    for lang in LANGS:
        forms = lower.get(lang, set()) - lexicon - capitalised
        kept = sorted(w for w in forms if len(w) >= 3 and _WORD.fullmatch(w))
        _write(HERE / f"wordforms_{lang}.txt.gz", kept)


if __name__ == "__main__":
    main()
