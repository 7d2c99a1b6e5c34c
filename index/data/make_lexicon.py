"""Regenerate the common-word lexicons ``index/data/lexicon_<lang>.txt.gz`` (a dev tool).

Run ``pip install pyspellchecker && python index/data/make_lexicon.py``. The lexicons hold
the accent-folded, lower-case words that pyspellchecker's frequency lists (MIT licence,
built from OpenSubtitles and filtered against dictionaries) attest above their floor count
(the floor, 50, is given to dictionary words never seen in the subtitles: rare words and
many brand names). storybot reads them to tell a lower-case name in a chat message
("huawei", "xiaomi") from an ordinary word; it does not need pyspellchecker at run time.
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
_WORD = re.compile(r"[a-z]+")


def main() -> None:
    from spellchecker import SpellChecker

    for lang in ("en", "fr"):
        counts = SpellChecker(language=lang, distance=1).word_frequency.dictionary
        kept = sorted({fold(w).replace("’", "'").split("'")[-1] for w, c in counts.items() if c > FLOOR}
                      - {""})
        kept = [w for w in kept if _WORD.fullmatch(w)]
        path = HERE / f"lexicon_{lang}.txt.gz"
        with gzip.open(path, "wt", encoding="utf-8", compresslevel=9) as f:
            f.write("\n".join(kept) + "\n")
        print(f"{path.name}: {len(kept)} words, {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
