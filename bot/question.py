"""Reading a question: cleaning odd input, guessing its language, and working out what an
answer must contain (names, numbers, an amount of money, a date) and whether it is a
question about the stories at all. Every word this reads with comes from the language
files (``index/lang/<code>.toml``, loaded by ``index.language``)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from index.keyword import PREFIX, fold, stopwords, words
from index.language import (DEFAULT, Language, all_languages, any_match, common_word, cue_in, detect, load, normalise,
                            unit_class)
from index.tuning import TUNING

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACE = re.compile(r"\s+")
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")  # terminal escape sequences
_DIGIT = re.compile(r"\d")
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_TOKEN = re.compile(r"[\w’'.-]+")
_ELISION = re.compile(r"^(?:[dlnsjcmt]|qu|jusqu|lorsqu|puisqu)[’']", re.IGNORECASE)


@dataclass
class Question:
    """A cleaned question and what its answer must carry."""

    text: str
    lang: str
    truncated: bool = False
    names: list[str] = field(default_factory=list)  # as written, e.g. "Tim Cook"
    # lower-case words that may be names typed without capitals ("huawei"): not ordinary
    # words of any language (``index.language.common_word``); the stories decide
    # (``bot.decide.name_forms``)
    lower_names: list[str] = field(default_factory=list)
    # lower-case words that pass for ordinary words only by resemblance (one typo from one:
    # "arcelle" ~ "parcelle"): names when the stories capitalise them exactly so
    near_names: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    wants_money: bool = False
    wants_change: bool = False  # by how much something changed: a rate answers it too
    wants_number: bool = False
    wants_time: bool = False
    wants_count: bool = False  # a count of things ("how many"): a share does not answer it
    wants_age: bool = False  # someone's age ("how old"): a year or a share does not answer it
    wants_speech: bool = False  # what someone said ("what did Tencent say?")
    # the content words naming whoever a "what did X say" question asks about ("tim cook"),
    # from the [ask] speech cues with a "*" (``index.language.subject_patterns``)
    speaker: list[str] = field(default_factory=list)
    wants_name: bool = False  # the name of something ("what is the analyst called?")
    wants_which: bool = False  # which one ("which firm took over?"): a name too
    wants_person: bool = False  # a person's name ("who is the mayor?"): ``[ask] person_roles``
    # the roles a person question names, as matched, less ``[ask] generic_people`` ("mayor")
    roles: list[str] = field(default_factory=list)
    # the words naming what is counted ("how many employees work..." -> ["employees", "work"])
    counted: list[str] = field(default_factory=list)
    # a yes/no question about what will happen ("will the trial be extended?"): a story
    # reports plans, it rarely settles them
    asks_future: bool = False
    # not a question about the stories: an instruction to the bot, a request for its
    # opinion, creative writing or role-play ("" when it is a question)
    request: str = ""

    @property
    def wants_figure(self) -> bool:
        """Does it ask for an amount, a number, a count or a date (``decide.carries``)?"""
        return self.wants_money or self.wants_number or self.wants_count or self.wants_time

    @property
    def empty(self) -> bool:
        return not any(ch.isalnum() for ch in self.text)


def clean(text: str, limit: int) -> tuple[str, bool]:
    """NFC-normalise, drop control and invisible characters, fold white space, and cut
    to ``limit`` characters at a word boundary. Returns (text, truncated)."""
    text = unicodedata.normalize("NFC", text or "")
    text = _CONTROL.sub(" ", _ANSI.sub("", text))
    # lone surrogates cannot be encoded anywhere downstream
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= limit:
        return text, False
    cut = text[:limit]
    if " " in cut[limit // 2:]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(), True


def detect_lang(text: str) -> str:
    """"en", "fr"...: see ``index.language.detect``."""
    return detect(text)


def _lang(code: str) -> Language:
    try:
        return load(code)
    except KeyError:
        return load(DEFAULT)


def asks_change(text: str, lang: Language) -> bool:
    """By how much something changed ("by how much did the price rise?", "de combien a
    augmenté le prix ?"): a rate answers it as well as an amount."""
    return lang.change_lead is not None and bool(lang.change_lead.search(normalise(text)))


def asks_money(text: str, lang: Language, by_noun: bool = True) -> bool:
    """Does the question ask for an amount of money: a lead ("how much", "combien") with a
    paying verb, or, when ``by_noun``, a money noun ("the price", "le montant")?"""
    t = normalise(text)
    lead = lang.money_lead is not None and lang.money_lead.search(t)
    # "by how much did the tax go up?" asks for a change (often a rate), not an amount
    lead = lead and not asks_change(text, lang)
    # "combien de mois a-t-elle accepté de payer ?" counts months: a lead that counts things
    # of a known class other than money ([units]) asks for a count, whatever verb follows
    counted = counted_words(text, lang) if lead and lang.things is not None and lang.things.search(t) else []
    lead = lead and not (counted and unit_class(counted[0]) not in (None, "money"))
    # the paying verb may come before the lead as well as after it: "how much did it cost",
    # "ça coûte combien", "va coûter combien"
    if lead and lang.money_verbs is not None and lang.money_verbs.search(t):
        return True
    return by_noun and bool(lang.money_nouns is not None and lang.money_nouns.search(t))


def request_kind(text: str, lang: Language) -> str:
    """"instruction", "opinion", "creative" or "smalltalk" when the message is not a
    question about the stories (cue phrases of the question's language and the default
    one), else ""."""
    langs = [lang] if lang.code == DEFAULT else [lang, load(DEFAULT)]
    for kind in ("instruction", "opinion", "creative"):
        if any(cue_in(getattr(x, kind), text, x.subjects) for x in langs):
            return kind
    return "smalltalk" if small_talk(text, all_languages()) else ""  # "salut" alone tells no language


def small_talk(text: str, langs: list[Language]) -> bool:
    """A message made only of greetings, thanks and the like ("hey, how's it going?",
    "merci beaucoup !"): once those phrases and stop words are taken out, no word is left."""
    t = normalise(text)
    found = False
    for x in langs:
        if x.smalltalk is not None:
            t, n = x.smalltalk.subn(" ", t)
            found = found or n > 0
    stop = stopwords()
    return found and not any(w not in stop and not w.isdigit() for w in re.findall(r"\w+", t))


def analyse(raw: str, limit: int) -> Question:
    """Clean ``raw`` and read what it asks for."""
    text, truncated = clean(raw, limit)
    q = Question(text=text, lang=detect_lang(text), truncated=truncated)
    lang = _lang(q.lang)
    q.names = _names(text)
    q.lower_names, q.near_names = _lower_names(text)
    q.numbers = re.findall(r"\b\d[\d.,]*\b", text)
    q.wants_time = asks_time(text, lang)
    # "c'est quand l'audience pour fixer les montants ?" asks when: a money noun names what
    # the date is about, it does not ask for an amount too
    q.wants_money = asks_money(text, lang, by_noun=not q.wants_time)
    q.wants_change = asks_change(text, lang)
    q.wants_number = any_match([lang.count], text)
    q.wants_count = any_match([lang.things], text)
    q.wants_age = any_match([lang.age], text)
    q.wants_speech = any_match([lang.speech], text)
    if q.wants_speech:
        q.speaker = speaker_words(text, lang)
    q.wants_name = any_match([lang.naming], text)
    q.wants_which = asks_which(text, lang) and not (q.wants_name or q.wants_figure)
    q.wants_person = q.wants_name and any_match([lang.person_roles], text)
    if q.wants_person and lang.person_roles is not None:
        q.roles = list(dict.fromkeys(m.group() for m in lang.person_roles.finditer(normalise(text))
                                     if m.group() not in lang.generic_people))
    if q.wants_count:
        named = frozenset(w for n in q.names for w in words(n)) | frozenset(q.lower_names)
        q.counted = counted_words(text, lang, names=named)
    q.asks_future = asks_future(text, lang)
    q.request = request_kind(text, lang)
    if q.request == "smalltalk" and (q.wants_speech or q.wants_name or q.wants_which or q.wants_figure):
        q.request = ""  # "who said that lol" asks for something: chat words do not make it chit-chat
    return q


def asks_which(text: str, lang: Language) -> bool:
    """Does the question ask which one, by a ``[ask] which`` word before a noun ("which
    firm took over?", "which three universities...?"; not before a stop word, "which of
    them", "which is", or a number), or by a ``[ask] kind_which`` word before a noun of a
    named kind, ``[ask] named_kinds`` ("what party", "quelle compagnie d'assurance", "quelles
    autres communes": a ``count_modifiers`` word may come between)?"""
    toks = words(text)
    stop = stopwords()
    if any(w in lang.which and nxt not in stop and not nxt.isdigit() for w, nxt in zip(toks, toks[1:])):
        return True
    for i, w in enumerate(toks):
        if w in lang.kind_which:
            nxt = next((x for x in toks[i + 1:i + 3] if x not in lang.count_modifiers), "")
            if nxt in lang.named_kinds:
                return True
    return False


def speaker_words(text: str, lang: Language) -> list[str]:
    """The content words of whoever the question asks the words of ("what did tim cook say?"
    -> ["tim", "cook"]; "what did he say?" -> []), by the first ``speech_subjects`` match."""
    t = normalise(text)
    for pat in lang.speech_subjects:
        if m := pat.search(t):
            return [w for w in words(m.group("who")) if w not in stopwords() and w not in not_name_words()]
    return []


def asks_future(text: str, lang: Language) -> bool:
    """Is it a yes/no question about what will happen, by a ``[ask] future_yes_no`` cue ("will
    the trial be extended?", "la ligne sera-t-elle prolongée ?") with no ``[ask] wh_words``
    anywhere ("when will the line open?" asks for a date)? With ``[ask] future_opens``, the
    cue must open the question: only stop words, chat words and ``[ask] openers`` before it
    ("so will it...?", not "does the economist think it will...?")."""
    if lang.future_yes_no is None:
        return False
    t = normalise(text)
    starts = [m.start() for m in lang.future_yes_no.finditer(t)]
    if lang.future_opens:
        skip = stopwords() | lang.chat_words | lang.openers
        starts = [s for s in starts if all(w in skip for w in words(t[:s]))]
    # elisions kept whole, not split as ``words`` splits them: "qu'est-ce" asks, the "qu" of
    # "est-ce qu'il va" does not; "what's" is "what"
    toks = re.findall(r"[\w'-]+", t)
    return bool(starts) and not any(w in lang.wh_words or w.split("'")[0] in lang.wh_words for w in toks)


def asks_time(text: str, lang: Language) -> bool:
    """Does the question ask for a date or a time ("when", "quand": ``[ask] time``)? Not when
    the cue opens a clause before what is asked: a question word follows it ("quand Apple
    cherchait un partenaire, quels modèles... ?", "lancer une IA quand on est étranger, c'est
    comment ?"), nor when it comes after what is asked: a question word precedes it ("how
    many jobs go when the plant closes?", "combien de postes disparaissent quand l'usine
    ferme ?")."""
    t = normalise(text)
    m = lang.time.search(t) if lang.time is not None else None
    if not m or lang.question_words is None:
        return bool(m)
    return not (lang.question_words.search(t, m.end()) or lang.question_words.search(t[:m.start()]))


def counted_words(text: str, lang: Language, n: int = 1, names: frozenset[str] = frozenset()) -> list[str]:
    """The first ``n`` content words after the count cue ("how many", "combien de"): what
    the question counts; a modifier ("new", "nouvelles": ``count_modifiers``) is skipped, and
    so is a word of the question's ``names`` (folded): "how many Alibaba engineers" counts
    engineers; unless the ``[units]`` tables class the name, a kind of thing itself:
    "combien d'iPhone ont été vendus" counts iPhones."""
    t = normalise(text)
    m = lang.things.search(t) if lang.things is not None else None
    if not m:
        return []
    stop = stopwords()
    out = []
    for w in re.findall(r"[\w-]+", t[m.end():]):
        if w in stop or w.isdigit() or w in lang.count_modifiers or (fold(w) in names and not unit_class(w)):
            continue
        out.append(w)
        if len(out) >= n:
            break
    return out


# --- what a sentence carries (any language: stories and questions may differ) ------------
# Kept per text: every question tests the same passages and sentences of the stories again
# (about 2 ms a question of regular expressions over their folded text otherwise).
_FACTS_CACHE = 8192


@lru_cache(maxsize=_FACTS_CACHE)
def has_money(text: str) -> bool:
    """An amount of money, in the words of the text's own language (``detect``; every
    language's list has the signs): French "deux cents" is two hundred, not English cents."""
    return any_match([load(detect(text)).currency], text)


@lru_cache(maxsize=_FACTS_CACHE)
def has_number(text: str) -> bool:
    return bool(_DIGIT.search(text)) or any_match([x.number_words for x in all_languages()], text)


_NUMBER_RUN = re.compile(r"\d[\d\s.,]*\d|\d")


def _share_at(text: str, end: int) -> bool:
    """Does a percent sign or word follow the number that ends at ``end``?"""
    after = normalise(text[end:end + 14]).lstrip()
    return any(p.match(after) for p in (x.percent for x in all_languages()) if p is not None)


@lru_cache(maxsize=_FACTS_CACHE)
def has_percent(text: str) -> bool:
    """A rate: a number with a percent sign or word ("38 %", "9 per cent")."""
    return any(_share_at(text, m.end()) for m in _NUMBER_RUN.finditer(text))


@lru_cache(maxsize=_FACTS_CACHE)
def has_count(text: str) -> bool:
    """A number that is not a share: a digit run not followed by a percent word or sign, and
    not a year (a date, not a count); or a number word."""
    return any(not _YEAR.fullmatch(m.group()) and not _share_at(text, m.end())
               for m in _NUMBER_RUN.finditer(text)) or any_match([x.number_words for x in all_languages()], text)


_DAY = r"(?:[12]?\d|3[01])"  # a day of the month: only 1 to 31 ("500 may lose their jobs" is a count)


@lru_cache(maxsize=1)
def _day_of_month() -> re.Pattern:
    """A day number beside a month name of any language ("4 janvier", "22 January", "Jan. 22"):
    the language files' ``[facts] months``. The month is group 1 or 2."""
    months = "|".join(sorted((re.escape(m) for x in all_languages() for m in x.months), key=len, reverse=True))
    return re.compile(rf"(?<![\w.,]){_DAY}\s+({months})\b|\b({months})\.?\s+{_DAY}(?!\w|[.,]\d)"
                      if months else r"(?!x)x")


def without_days(norm: str) -> str:
    """``norm`` (normalised text) with the day numbers of its dates removed, months kept: a
    date's day counts nothing and is no one's age ("le 18 juillet", "January 22")."""
    return _day_of_month().sub(lambda m: f" {m.group(1) or m.group(2)} ", norm)


@lru_cache(maxsize=_FACTS_CACHE)
def has_age(text: str) -> bool:
    """A number in digits that can be an age, what an age question needs: not a year, a
    share, an amount of money (a currency sign or word beside it), a day or a time ("January
    22", "18/07", "20:30") or part of a name ("Covid-19"), and followed by no word but a
    function word or one of the language files' ``age_units``: "Winifred Tulloch, 74, a
    retired cook", "at least 21 and", "l'éleveur de 58 ans" give an age; "340 plots",
    "3 000 litres", "40 m", "le 18 juillet", "£120, and", "85 000 €" do not. Number words are
    left out: "per cent", "cent" and "one of" are number words that give no one's age."""
    stop = stopwords()
    units, currency = _age_vocabulary()
    norm = without_days(normalise(text))  # "January 22", "le 18 juillet": a date
    for m in _NUMBER_RUN.finditer(norm):
        before, after = norm[max(0, m.start() - 2):m.start()], norm[m.end():m.end() + 2]
        if _YEAR.fullmatch(m.group()) or _share_at(norm, m.end()) or _GLUED.search(before) \
                or _CLOCK_OR_DATE.match(after) or _CLOCK_OR_DATE_BEFORE.search(before) \
                or any_match(currency, before) or any_match(currency, after.lstrip()[:1]):
            continue
        nxt = _NEXT_WORD.match(norm, m.end())
        word = nxt.group(1) if nxt else ""
        # one-letter function words are as often units ("40 m", "3 000 l")
        if not word or word in units or (word in stop and len(word) > 1):
            return True
    return False


@lru_cache(maxsize=1)
def _age_vocabulary() -> tuple[frozenset[str], list]:
    """Every language's age units and currency patterns, read once."""
    langs = all_languages()
    return frozenset().union(*(x.age_units for x in langs)), [x.currency for x in langs]


_NEXT_WORD = re.compile(r"[\s-]*([^\W\d_][\w'’-]*)")  # the word right after a number ("74-year-old": "year-old")
_GLUED = re.compile(r"[^\W\d_]-?$")  # a number glued to a word is part of a name: "Covid-19", "Qwen2"
_CLOCK_OR_DATE = re.compile(r"[/:]\d")  # "18/07", "20:30" after the number... ("20h30": glued)
_CLOCK_OR_DATE_BEFORE = re.compile(r"\d[/:]$")  # ... or before it


@lru_cache(maxsize=_FACTS_CACHE)
def has_speech(text: str) -> bool:
    """A sentence that reports speech: quotation marks or a verb of saying (any language)."""
    return any_match([x.speech_words for x in all_languages()], text)


# a capital at the start of a word, or after one lower-case letter ("iPhone", "eBay"): not
# inside a word, where "iPhone" would give "Phone"
_CAPITALISED = re.compile(r"(?<!\w)[a-zà-ÿ]?[A-ZÀ-Ý][\w’'-]*")


def names_in(text: str) -> list[str]:
    """The capitalised words of a sentence, less its first word and the first word after
    an opening quotation mark (those are capitalised by grammar), days, months and the other
    words the language files say are no names, and adjectives ("Finnish"), folded."""
    out = []
    for m in _CAPITALISED.finditer(text):
        before = text[:m.start()].rstrip()
        raw = re.sub(r"[’']s$", "", m.group())
        w = fold(raw)
        # the lexicons only: the word-form lists hold "axa", "aws" and "bae"
        if not before or before[-1] in "«“\"(.!?:" or (len(w) <= 3 and common_word(w, exact=True)):
            continue  # grammar, or a short common acronym ("IA", "UE")
        after = text[m.end():].lstrip()
        if w in not_name_words() or (is_adjective(raw) and after[:1].islower()):
            # "on Saturday", "a Finnish manufacturer": no one named ("Julien Moreau" is a
            # name, though "-ien" ends demonyms: a first name comes before another name)
            continue
        out.append(w)
    return out


@lru_cache(maxsize=_FACTS_CACHE)
def has_time(text: str) -> bool:
    return bool(_YEAR.search(text)) or any_match([x.time_words for x in all_languages()], text)


# --- names ---------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def not_name_words() -> frozenset[str]:
    """Folded words the language files say are no names (question words, days, months,
    generic job titles: ``[names] not_names``)."""
    return frozenset(w for x in all_languages() for w in x.not_names)


def is_adjective(word: str) -> bool:
    """A capitalised adjective or demonym ("American", "Chinese", "Western", "Européen"),
    recognised from the language files' endings and lexicons: it qualifies a name, it is
    not one."""
    w, low = fold(word), word.lower()
    for lang in all_languages():
        if w in lang.adjectives:
            return True
        if len(w) >= TUNING.adjective_min_length and any(
                low.endswith(s) and len(low) - len(s) >= TUNING.adjective_min_stem for s in lang.adjective_suffixes):
            return True
    return False


def _names(text: str) -> list[str]:
    """Proper names in the question: runs of capitalised or mixed-case words ("Tim Cook",
    "GPT-4", "iPhone") that are not question words or capitalised adjectives."""
    out: list[str] = []
    current: list[str] = []
    stop = stopwords()
    not_names = not_name_words()
    first = _TOKEN.search(text)
    first_word_end = first.end() - 1 if first else -1
    for m in _TOKEN.finditer(text):
        tok = m.group().strip("’'.-")
        # "Beijing-based" names Beijing: drop lower-case word parts of hyphenated tokens
        if "-" in tok:
            tok = "-".join(p for p in tok.split("-") if p and not p[0].islower()) or tok
        tok = re.sub(r"[’']s$", "", tok)
        tok = _ELISION.sub("", tok)  # French elision: l’, d’, qu’...
        mixed = len(tok) > 1 and any(c.isupper() for c in tok[1:])
        # a capital at the start of the question is grammar, not a name ("Write me a poem")
        is_name = bool(tok) and (mixed or (tok[0].isupper() and m.start() > first_word_end))
        folded = fold(tok)
        if is_name and folded not in not_names and folded not in stop and not (
                not mixed and is_adjective(tok)) and not (tok.isupper() and folded in _adjectives()):
            current.append(tok)
        else:
            if current:
                out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def _lower_names(text: str) -> tuple[list[str], list[str]]:
    """Lower-case words of 3+ letters that are not stop words, grammar, chat words or words
    of the common-word lexicons: in chat, names are often typed without capitals ("what's
    huawei's share?"). Folded, in order, without repeats. Second, the words among the rest
    that are ordinary words only by resemblance (``Question.near_names``)."""
    out: list[str] = []
    near: list[str] = []
    stop = stopwords()
    not_names = not_name_words()
    for m in _TOKEN.finditer(text):
        tok = _ELISION.sub("", re.sub(r"[’']s$", "", m.group().strip("’'.-")))
        for part in tok.split("-"):
            if len(part) < 3 or not part.isalpha() or part != part.lower():
                continue
            w = fold(part)
            if w in stop or w in not_names or w in out or w in near:
                continue
            if not common_word(w):
                out.append(w)
            elif not common_word(w, exact=True):
                near.append(w)
    return out, near


def _adjectives() -> frozenset[str]:
    return frozenset(w for x in all_languages() for w in x.adjectives)


def forms(name: str) -> list[list[str]]:
    """The folded word sequences a name may take in the stories."""
    return [words(name)]


def mentioned(name: str, vocab: set[str] | frozenset[str], prefixes: set[str] | frozenset[str]) -> bool:
    """Whether every word of ``name`` is in the stories' vocabulary; words of 5+ letters
    may match by their first five letters (cognates: "America" ~ "Amérique")."""
    for seq in forms(name):
        if seq and all(w in vocab or (len(w) >= PREFIX and w[:PREFIX] in prefixes) for w in seq):
            return True
    return False
