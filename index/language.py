"""Per-language vocabulary, read from data files: ``index/lang/<code>.toml``.

Each file holds the words storybot reads questions with in one language: function words
that identify it, stop words, words that are not names, the endings and lexicon of
capitalised adjectives (demonyms), cue phrases for what a question asks for (money, a count,
a date) and for messages that are not questions about the stories (instructions to the bot,
requests for its opinion, creative writing), and what a written answer says when the story
does not answer. Adding a language means adding a file; no
code names a word of any language.

Phrases match whole words on accent-folded, lower-cased text; a word ending in ``*`` is a
stem ("pay*"), a lone ``*`` stands for one to three words ("ignore * instructions").
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from index.keyword import fold
from index.tuning import TUNING

DEFAULT = "en"


def normalise(text: str) -> str:
    """Accent-folded, lower-cased text with one kind of apostrophe, for cue matching."""
    return fold(text).replace("’", "'")


_ANY_WORDS = r"\S+(?:\s+\S+){0,2}"  # what a "*" between words stands for: one to three words


def _phrase_regex(phrase: str, star: str = _ANY_WORDS) -> str | None:
    """The regex source of one cue phrase: "*" alone is ``star``, "word*" a word's prefix;
    whole words: a word boundary wherever the phrase starts or ends with a letter or digit
    ("£" in "£2.40" is matched, "an" in "plan" is not)."""
    parts = []
    for tok in normalise(phrase).split():
        if tok == "*":
            parts.append(star)
        elif tok.endswith("*"):
            parts.append(re.escape(tok[:-1]) + r"\w*")
        else:
            parts.append(re.escape(tok))
    if not parts:
        return None
    head = r"(?<!\w)" if re.match(r"\w", phrase) else ""
    tail = r"(?!\w)" if re.search(r"[\w*]$", phrase) else ""
    return head + r"\s+".join(parts) + tail


def phrase_pattern(phrases: list[str]) -> re.Pattern | None:
    """One regex matching any of ``phrases`` as whole words (see the module docstring)."""
    alts = [a for a in map(_phrase_regex, phrases) if a]
    if not alts:
        return None
    return re.compile("(?:" + "|".join(sorted(alts, key=len, reverse=True)) + ")")


def subject_patterns(phrases: list[str]) -> tuple[re.Pattern, ...]:
    """For each of ``phrases`` with a "*" between two words ("what did * say"), a regex whose
    group ``who`` is the words the "*" stands for (one to three, as in ``phrase_pattern``,
    the fewest that let the rest match). One regex per phrase: a group name cannot repeat
    across the alternatives of one."""
    sources = (_phrase_regex(p, star=f"(?P<who>{_ANY_WORDS}?)") for p in phrases if "*" in normalise(p).split()[1:-1])
    return tuple(re.compile(src) for src in dict.fromkeys(sources))  # "qu'a" and "qu’a" are one


@dataclass(frozen=True)
class Language:
    """The vocabulary of one language (see the module docstring)."""

    code: str
    hints: frozenset[str]
    accents: str
    space_before_punctuation: bool
    follow_up: re.Pattern | None
    stop_words: frozenset[str]
    not_names: frozenset[str]
    adjective_suffixes: tuple[str, ...]
    adjectives: frozenset[str]
    money_lead: re.Pattern | None
    change_lead: re.Pattern | None
    money_verbs: re.Pattern | None
    money_nouns: re.Pattern | None
    count: re.Pattern | None
    age: re.Pattern | None
    things: re.Pattern | None
    time: re.Pattern | None
    speech: re.Pattern | None
    naming: re.Pattern | None
    instruction: re.Pattern | None
    opinion: re.Pattern | None
    creative: re.Pattern | None
    smalltalk: re.Pattern | None
    currency: re.Pattern | None
    number_words: re.Pattern | None
    percent: re.Pattern | None
    time_words: re.Pattern | None
    speech_words: re.Pattern | None
    # classes of countable things ("people": employees, staff...; "users": customers...):
    # (class name, pattern) pairs, see ``unit_class``
    units: tuple[tuple[str, re.Pattern], ...] = ()
    # classes of what an amount of money is ("wages": salary, salaire...; "prices": fare,
    # ticket, tarif...), see ``priced_classes``
    priced: tuple[tuple[str, re.Pattern], ...] = ()
    count_modifiers: frozenset[str] = frozenset()  # "how many NEW trams": not what is counted
    # month names: a number beside one is a day of a date ("4 janvier", "January 22"), not a count
    months: frozenset[str] = frozenset()
    # the words after a number that make it an age ("74 years", "58 ans"): a number followed by
    # another word counts or measures something else ("340 plots", "3 000 litres", "18 juillet")
    age_units: frozenset[str] = frozenset()
    chat_words: frozenset[str] = frozenset()  # "lol", "btw", "mdr": neither dictionary words nor names
    # the [ask] speech cues with a "*" for whoever spoke ("what did * say"): subject_patterns
    speech_subjects: tuple[re.Pattern, ...] = ()
    question_words: re.Pattern | None = None  # "what", "quels": a time cue before one opens a clause
    comparison: tuple[str, ...] = ()  # "behind", "derrière": what follows is compared with, not described
    subjects: frozenset[str] = frozenset()  # "qui", "il": a cue after one is someone else's act ("qui affirme que")
    which: frozenset[str] = frozenset()  # "which": before a noun, asks which one ("which firm?")
    kind_which: frozenset[str] = frozenset()  # "what", "quel": ask which one before a named kind only
    named_kinds: frozenset[str] = frozenset()  # "company", "parti": kinds whose members have names
    future_yes_no: re.Pattern | None = None  # "will", "sera-t-il": a yes/no question about the future...
    wh_words: frozenset[str] = frozenset()  # ... unless a wh-word asks for something ("when will it open?")
    future_opens: bool = False  # ... and, in English, only as the question's opening words
    openers: frozenset[str] = frozenset()  # "so", "well": words before a question's first word
    person_roles: re.Pattern | None = None  # "mayor", "PDG": a naming question with one asks for a person
    generic_people: frozenset[str] = frozenset()  # "guy", "mec": of those, the words that name no role
    titles: frozenset[str] = frozenset()  # "Dr", "Mme": before a capitalised word, a person named
    # "council", "mairie": a run of capitalised words that ends with one (or whose part after
    # a particle does) names a body or a place ("Harrowdale District Council", "Station
    # Road"), not a person
    institutions: frozenset[str] = frozenset()
    does_not_say: re.Pattern | None = None  # "the story does not say": a written answer that answers nothing


@lru_cache(maxsize=1)
def codes() -> tuple[str, ...]:
    """The languages that have a vocabulary file (read once: the files ship with the package)."""
    folder = resources.files("index") / "lang"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")))


@lru_cache(maxsize=None)
def load(code: str) -> Language:
    """The vocabulary of language ``code`` (``KeyError`` when there is no file for it)."""
    if code not in codes():
        raise KeyError(code)
    data = tomllib.loads((resources.files("index") / "lang" / f"{code}.toml").read_text(encoding="utf-8"))
    names, ask, cues, facts = (data.get(k, {}) for k in ("names", "ask", "cues", "facts"))
    words = lambda xs: frozenset(normalise(x) for x in xs)  # noqa: E731
    return Language(
        code=code,
        hints=words(data.get("hints", [])),
        accents=data.get("accents", ""),
        space_before_punctuation=bool(data.get("space_before_punctuation", False)),
        follow_up=re.compile(r"^(?:" + "|".join(re.escape(normalise(x)) for x in data["follow_up_starts"]) + r")\b")
        if data.get("follow_up_starts") else None,
        stop_words=words(data.get("stop_words", [])),
        not_names=words(names.get("not_names", [])),
        adjective_suffixes=tuple(x.lower() for x in names.get("adjective_suffixes", [])),  # accents kept
        adjectives=words(names.get("adjectives", [])),
        money_lead=phrase_pattern(ask.get("money_lead", [])),
        change_lead=phrase_pattern(ask.get("change_lead", [])),
        money_verbs=phrase_pattern(ask.get("money_verbs", [])),
        money_nouns=phrase_pattern(ask.get("money_nouns", [])),
        count=phrase_pattern(ask.get("count", [])),
        age=phrase_pattern(ask.get("age", [])),
        things=phrase_pattern(ask.get("things", [])),
        time=phrase_pattern(ask.get("time", [])),
        speech=phrase_pattern(ask.get("speech", [])),
        speech_subjects=subject_patterns(ask.get("speech", [])),
        naming=phrase_pattern(ask.get("naming", [])),
        which=words(ask.get("which", [])),
        kind_which=words(ask.get("kind_which", [])),
        named_kinds=words(ask.get("named_kinds", [])),
        future_yes_no=phrase_pattern(ask.get("future_yes_no", [])),
        wh_words=words(ask.get("wh_words", [])),
        future_opens=bool(ask.get("future_opens", False)),
        openers=words(ask.get("openers", [])),
        person_roles=phrase_pattern(ask.get("person_roles", [])),
        generic_people=words(ask.get("generic_people", [])),
        titles=words(names.get("titles", [])),
        institutions=words(names.get("institutions", [])),
        instruction=phrase_pattern(cues.get("instruction", [])),
        opinion=phrase_pattern(cues.get("opinion", [])),
        creative=phrase_pattern(cues.get("creative", [])),
        smalltalk=phrase_pattern(cues.get("smalltalk", [])),
        currency=phrase_pattern(facts.get("currency", [])),
        number_words=phrase_pattern(facts.get("number_words", [])),
        percent=phrase_pattern(facts.get("percent", [])),
        time_words=phrase_pattern(facts.get("time_words", [])),
        months=words(facts.get("months", [])),
        age_units=words(facts.get("age_units", [])),
        speech_words=phrase_pattern(facts.get("speech", [])),
        count_modifiers=words(ask.get("count_modifiers", [])),
        question_words=phrase_pattern(ask.get("question_words", [])),
        comparison=tuple(facts.get("comparison", [])),
        subjects=words(cues.get("subjects", [])),
        chat_words=words(names.get("chat_words", []) + names.get("modern_words", [])),
        units=tuple((name, pat) for name, xs in data.get("units", {}).items() if (pat := phrase_pattern(xs))),
        priced=tuple((name, pat) for name, xs in data.get("priced", {}).items() if (pat := phrase_pattern(xs))),
        does_not_say=phrase_pattern(data.get("answers", {}).get("does_not_say", [])),
    )


def unit_class(word: str) -> str | None:
    """The class of countable things a word names in any language's ``[units]`` table
    ("salariés" -> "people", "developers" -> "developers"), or None."""
    w = normalise(word)
    for lang in all_languages():
        for name, pat in lang.units:
            if pat.fullmatch(w):
                return name
    return None


def priced_classes(text: str) -> frozenset[str]:
    """The classes of what an amount of money is that ``text`` names, in any language's
    ``[priced]`` table ("the average salary" -> {"wages"}; "un billet" -> {"prices"})."""
    t = normalise(text)
    return frozenset(name for lang in all_languages() for name, pat in lang.priced if pat.search(t))


def _word_list(name: str, code: str) -> list[str]:
    """The words of ``index/data/<name>_<code>.txt.gz`` (none when the file is missing)."""
    import gzip

    path = resources.files("index") / "data" / f"{name}_{code}.txt.gz"
    return gzip.decompress(path.read_bytes()).decode("utf-8").split() if path.is_file() else []


@lru_cache(maxsize=1)
def _lexicon() -> tuple[frozenset[str], frozenset[str]]:
    """(words, their 6-letter prefixes) of every language's common-word lexicon
    (``index/data/lexicon_<code>.txt.gz``, see ``index/data/make_lexicon.py``) and chat words."""
    found: set[str] = set()
    for code in codes():
        found.update(_word_list("lexicon", code))
        found.update(load(code).chat_words)
    n = TUNING.lexicon_prefix
    return frozenset(found), frozenset(w[:n] for w in found if len(w) >= n)


@lru_cache(maxsize=1)
def _wordforms() -> frozenset[str]:
    """Every language's rarer ordinary word forms (``index/data/wordforms_<code>.txt.gz``,
    see ``index/data/make_lexicon.py``): read only for a lower-case question word the
    lexicons lack, so a question of common words does not pay for the 300,000 forms (about
    0.1 s and 34 MB)."""
    return frozenset(w for code in codes() for w in _word_list("wordforms", code))


@lru_cache(maxsize=1)
def _frequencies() -> tuple[tuple[str, ...], dict[str, str]]:
    """(languages, word -> its Zipf frequencies in each, tab-separated, parsed when looked
    up) from ``index/data/word_frequency.tsv.gz`` (see ``index/data/make_frequency.py``);
    empty when the table is missing."""
    import gzip

    path = resources.files("index") / "data" / "word_frequency.tsv.gz"
    if not path.is_file():
        return (), {}
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    return tuple(lines[0].split("\t")[1:]), dict(line.split("\t", 1) for line in lines[1:])


def zipf(word: str, lang: str) -> float:
    """How common ``word`` is in ``lang``: its Zipf frequency (log10 of occurrences per
    billion words; 0 for a word the table lacks or a language it does not cover). A
    hyphenated word counts as common as its rarest part ("Royaume-Uni")."""
    langs, table = _frequencies()
    if lang not in langs:
        return 0.0
    col = langs.index(lang)
    parts = [p for p in word.replace("’", "'").lower().split("-") if p]
    return min((float(table[p].split("\t")[col]) if p in table else 0.0 for p in parts), default=0.0)


_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def common_word(word: str, exact: bool = False) -> bool:
    """Is ``word`` an ordinary word of some language, or chat vocabulary, rather than a
    possible name? A word of the lexicons or of the word-form lists counts. A word of 7+
    letters also counts when a lexicon word shares its first six letters (inflections:
    "bossent" ~ "bosser"), a word of 4+ letters when it is a lexicon word and a plural "s"
    or "x" ("olds"); a word of 5+ letters counts when one typo away from a lexicon word
    ("alrady" ~ "already"). The word-form lists get no such allowance. ``exact``: only
    the lexicons' own words, not the word-form lists: a word of those lists alone is a word
    by resemblance, as a typo is, and stays a name where the stories capitalise it ("rieux"
    for Rieux, "skelly" for Skelly Point)."""
    lexicon, prefixes = _lexicon()
    w = normalise(word)
    n = TUNING.lexicon_prefix
    if w in lexicon or exact:
        return w in lexicon
    if len(w) > n and w[:n] in prefixes:
        return True
    if len(w) >= 4 and w[-1] in "sx" and w[:-1] in lexicon:  # a plural ("year-olds", "labos")
        return True
    if len(w) >= TUNING.typo_min_length and any(e in lexicon for e in one_edit(w)):
        return True
    return w in _wordforms()


def one_edit(w: str, letters: str = _LETTERS):
    """Every string one edit from ``w``: a letter of ``letters`` added or changed, a letter
    dropped, two neighbours swapped (Norvig's spelling corrector: a few hundred set
    look-ups; a spelling library would add a dependency and load time for this one test)."""
    splits = [(w[:i], w[i:]) for i in range(len(w) + 1)]
    for a, b in splits:
        if b:
            yield a + b[1:]
            if len(b) > 1:
                yield a + b[1] + b[0] + b[2:]
        for c in letters:
            if b:
                yield a + c + b[1:]
            yield a + c + b


def all_languages() -> list[Language]:
    return [load(c) for c in codes()]


def cue_in(pattern: re.Pattern | None, text: str, subjects: frozenset[str] = frozenset()) -> bool:
    """Whether ``pattern`` matches ``text`` (normalised here) other than right after one of
    ``subjects``: "affirme que" tells the bot what to claim, "qui affirme que... ?" asks who
    claims it (French writes the imperative and the third person alike)."""
    if pattern is None:
        return False
    t = normalise(text)
    for m in pattern.finditer(t):
        before = re.findall(r"[\w'-]+", t[:m.start()])
        if not (before and before[-1] in subjects):
            return True
    return False


def any_match(patterns: list[re.Pattern | None], text: str) -> bool:
    """Whether one of ``patterns`` matches ``text`` (normalised here)."""
    t = normalise(text)
    return any(p is not None and p.search(t) for p in patterns)


def detect(text: str) -> str:
    """The language whose file's function words, accents and typography ``text`` shows
    most (questions are short: a model would be no surer, and this costs nothing); the
    default language on a tie."""
    low = text.lower()
    ws = re.findall(r"[a-zà-ÿ'-]+", low)
    best, best_score = DEFAULT, 0
    for lang in all_languages():
        score = sum(w in lang.hints for w in ws)
        if lang.accents:
            score += 2 * sum(low.count(ch) for ch in lang.accents)
        if lang.space_before_punctuation:
            score += 2 * bool(re.search(r"\s[?!]$", text))
        if score > best_score:
            best, best_score = lang.code, score
    return best


STORY_SAMPLE = 2000  # characters of a story that tell its language


def story_languages(pieces) -> dict[str, str]:
    """``{story id: language}`` from ``(story id, text)`` pieces in story order: the
    language of each story's first ``STORY_SAMPLE`` characters."""
    sample: dict[str, str] = {}
    for sid, text in pieces:
        have = sample.get(sid, "")
        if len(have) < STORY_SAMPLE:
            sample[sid] = (have + " " + text)[:STORY_SAMPLE]
    return {sid: detect(text) for sid, text in sample.items()}


def digit_groups(text: str, lang: str | None = None) -> frozenset[str]:
    """The runs of digits of ``text``, and of its numbers written in words ("cinquante
    salariés" gives "50", "forty-two" "42"), read in ``lang`` (detected when not given).
    A number of a question is "in the story" when the story writes it either way.

    text2num (``alpha2digit``) reads compound numbers in words in many languages ("quarante
    et une", "two hundred and six"); a hand-written table would need each language's rules
    of composition. Numbers below 3 stay words ("un", "one": articles and pronouns as often
    as counts). A language text2num does not know gives the digits alone."""
    from text_to_num import alpha2digit

    found = set(re.findall(r"\d+", text))
    try:
        found.update(re.findall(r"\d+", alpha2digit(text, lang or detect(text))))
    except ValueError:  # "unsupported language"
        pass
    return frozenset(found)
