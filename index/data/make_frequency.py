"""Regenerate the word-frequency table ``index/data/word_frequency.tsv.gz`` (a dev tool).

Run ``pip install wordfreq==3.1.1 && python index/data/make_frequency.py``. The table holds,
for every word of wordfreq's "small" list of each language (words seen at least once per
million), its Zipf frequency (log10 of occurrences per billion words) in every language,
read from wordfreq's "large" lists (Apache-2.0 code; data from Wikipedia, subtitles, news,
books, web text and more, CC BY-SA 4.0). storybot reads it to tell a word of one language
("Norvège", "Verts") from a name every language writes alike ("Samsung"): a story in
another language may write the first its own way. It does not need wordfreq at run time:
the package is 58 MB and 0.2 s to import for a few thousand numbers.
"""
from __future__ import annotations

import gzip
from pathlib import Path

HERE = Path(__file__).resolve().parent
LANGS = ("en", "fr")  # the languages of index/lang/


def main() -> None:
    from wordfreq import get_frequency_dict, zipf_frequency

    vocabulary = sorted({w for lang in LANGS for w in get_frequency_dict(lang, wordlist="small")
                         if "\t" not in w and "\n" not in w})
    rows = ["word\t" + "\t".join(LANGS)]
    rows += [w + "\t" + "\t".join(f"{zipf_frequency(w, lang, wordlist='large'):.2f}" for lang in LANGS)
             for w in vocabulary]
    path = HERE / "word_frequency.tsv.gz"
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
        f.write("\n".join(rows) + "\n")
    print(f"{path.name}: {len(rows) - 1} words, {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
