"""The decision rules of the answering core, as small named functions.

``bot/answer.py`` runs the flow (analyse -> retrieve -> decide -> compose -> verify); every
rule that decides what is cited, and whether the reply is an answer ("high"), a hedge with
the closest passages ("low") or a refusal ("none"), lives here and is tested on its own
(tests/test_decide.py). Numbers come from ``index.tuning.TUNING``; words from the
per-language data files (``index/lang/``).
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import unquote, urlsplit

import numpy as np

from bot.question import (Question, forms, has_age, has_count, has_money, has_number, has_percent, has_speech,
                          has_time, mentioned, names_in, not_name_words, without_days)
from index.chunk import passage_text
from index.embed import word_vectors
from index.keyword import PREFIX, fold, stopwords, tokenize, words
from index.language import all_languages, digit_groups, normalise, one_edit, priced_classes, unit_class, zipf
from index.search import Passage, SentenceHit
from index.store import Snapshot
from index.tuning import TUNING, Tuning

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pick:
    """A sentence chosen to cite, with the passage it sits in and its answer score."""

    passage: Passage
    sentence: SentenceHit
    score: float


# --- what the question asks for ----------------------------------------------------------
def carries(q: Question, text: str) -> bool:
    """Does a sentence carry the kind of fact the question asks for (an amount of money, a
    number, a count, an age, a date)?"""
    if q.wants_money and not has_money(text) and not (q.wants_change and has_percent(text)):
        return False
    if q.wants_number and not q.wants_money and not has_number(text):
        return False
    if q.wants_count and not q.wants_money and not has_count(text):
        return False
    if q.wants_age and not has_age(text):
        return False
    return not (q.wants_time and not has_time(text))


def prefer_carrying(q: Question, passages: list[Passage], t: Tuning = TUNING) -> list[Passage]:
    """The ranking with each passage that cannot carry the kind of fact the question asks
    for (``carries``: no amount for "how much", no date for "when") ``carry_penalty`` lower
    on its ranking key (``Passage.focused``), ranks renumbered. A question that asks for no
    such fact keeps its ranking."""
    if not q.wants_figure:
        return passages
    ordered = sorted(passages, key=lambda p: -(p.focused - (0.0 if carries(q, p.text) else t.carry_penalty)))
    return [replace(p, rank=n) for n, p in enumerate(ordered, 1)]


_NUMBER_TOKEN = re.compile(r"^\d[\d.,]*$")


def _is_number_word(w: str) -> bool:
    return bool(_NUMBER_TOKEN.match(w)) or any(
        x.number_words is not None and x.number_words.fullmatch(w) for x in all_languages())


_YEAR_TOKEN = re.compile(r"1[89]\d\d|20\d\d")
# a token, or a number joined to what it counts by hyphens (groups 1 and 2): "15-minute",
# "1,200-seat", "20-year-old"
_COUNT_TOKEN = re.compile(r"(\d[\d.,]*)-([^\W\d_]+(?:-[^\W\d_]+)*)|[\w-]+")
_CURRENCY_BEFORE = re.compile(r"([$€£¥])\s?\d")


def counted_near_numbers(text: str, t: Tuning = TUNING, given: Iterable[str] = ()) -> list[str] | None:
    """The first ``unit_window`` content words after each number in digits of a sentence
    (not years): what its numbers count ("300 000 développeurs" -> "développeurs"); None
    when the sentence has no such number. A number joined to its unit by a hyphen counts
    that unit and nothing after it: "a 15-minute conversation in which students..." counts
    minutes, not students. The numbers ``given`` (the question's own) count nothing: "how
    many cows do the 73 farms keep?" is not answered by "73 farms" (no words, not None)."""
    given = {g for n in given for g in re.findall(r"\d+", n)}
    if given:
        def unless_given(m: re.Match) -> str:
            return "" if set(re.findall(r"\d+", m.group())) <= given else m.group()

        kept = counted_near_numbers(re.sub(r"\d[\d.,]*", unless_given, text), t)
        return kept if kept is not None or counted_near_numbers(text, t) is None else []
    stop = stopwords()
    # a date's day counts nothing: "opens on 4 January a centre for 20 doctors" counts doctors
    norm = without_days(normalise(text))
    toks: list[str] = []
    joined: list[str] = []
    for m in _COUNT_TOKEN.finditer(norm):
        if m.group(1) is None:
            toks.append(m.group())
            continue
        # "5-a-month" counts months; the unit stands as a word in other numbers' windows
        unit = next((x for x in m.group(2).split("-") if x not in stop), m.group(2))
        toks.append(unit)
        if not _YEAR_TOKEN.fullmatch(m.group(1)):
            joined.append(unit)
    # a currency sign before a number is what it counts: "£9,000 a week" counts money (the
    # [units] money class holds the signs), not weeks
    joined += _CURRENCY_BEFORE.findall(norm)
    # digits only: number words ("double", "one of") are too often not counts
    after = _words_after(toks, lambda w: bool(_NUMBER_TOKEN.match(w)) and not _YEAR_TOKEN.fullmatch(w), t)
    return (after or []) + joined if after is not None or joined else None


def _words_after(toks: list[str], is_number, t: Tuning = TUNING) -> list[str] | None:
    """The first ``unit_window`` content words after each token ``is_number`` holds for
    (what it counts: "6,200 signatures", "300 000 développeurs", "seven stops", in English
    and French alike, follows the number); None when no token is a number."""
    stop = stopwords()
    out: list[str] = []
    anchors = 0
    for i, w in enumerate(toks):
        if is_number(w):
            anchors += 1
            out += [x for x in toks[i + 1:] if x not in stop and not _is_number_word(x)][: t.unit_window]
    return out if anchors else None


def same_unit(asked: str, word: str, embedder=None, t: Tuning = TUNING) -> bool:
    """Do two words name the same kind of thing? The same word up to a plural ending or a
    shared 5-letter prefix (employees ~ employés); else, when the language files' ``[units]``
    tables class the asked word, the same class (employees ~ salariés; employees vs developers
    differ); else the e5 cosine of the two words.""" 
    a, b = asked.rstrip("sx"), word.rstrip("sx")
    if a == b or (len(a) >= PREFIX and len(b) >= PREFIX and a[:PREFIX] == b[:PREFIX]):
        return True
    ca, cb = unit_class(asked), unit_class(word)
    if ca:  # the tables know what is asked: only the same word or class answers it
        return ca == cb
    if embedder is None:
        return False
    va, vb = word_vectors(embedder, [asked, word])
    return float(va @ vb) >= t.unit_match_cosine


def counts_what_is_asked(q: Question, text: str, embedder=None, t: Tuning = TUNING) -> bool:
    """A count question's sentence with a number (in digits) of the very thing asked."""
    near = counted_near_numbers(text, t, q.numbers) if q.wants_count and q.counted else None
    return bool(near) and any(same_unit(a, w, embedder, t) for a in q.counted for w in near)


def counts_something_else(q: Question, text: str, embedder=None, t: Tuning = TUNING) -> bool:
    """A count question ("how many employees...") whose answer sentence's numbers count
    another kind of thing ("300 000 développeurs"): the story may not give the asked count,
    so the answer is hedged, not given with confidence."""
    if not q.wants_count or not q.counted:
        return False
    near = counted_near_numbers(text, t, q.numbers)
    if near is None:
        # numbers in words only ("seven stops", "une dizaine d'élus"): what they count comes
        # after them, as after digits ("a five-year trial" counts years, not the beavers
        # the sentence also names), compared as after digits ("onze fois" answers "how many
        # times"); a sentence with no number word at all is compared word by word, by word,
        # prefix or [units] class only, not by e5: any of its words would do
        toks = [w for w in re.findall(r"\w+", normalise(text)) if w not in stopwords()]
        near = _words_after(toks, _is_number_word, t)
        if near:
            return not any(same_unit(a, w, embedder, t) for a in q.counted for w in near)
        return not any(same_unit(a, w, None, t) for a in q.counted for w in toks)
    return not any(same_unit(a, w, embedder, t) for a in q.counted for w in near)


def prices_something_else(q: Question, text: str) -> bool:
    """A money question that names what the amount is ("what is the average salary?",
    "combien coûte un billet ?": ``[priced]`` classes) whose answer sentence names no such
    thing ("£5.9 million on marine diesel"): the amount there is of another kind, so the
    answer is hedged, not given with confidence."""
    if not q.wants_money:
        return False
    asked = priced_classes(q.text)
    return bool(asked) and not asked & priced_classes(text)


def numbers_elsewhere(q: Question, text: str) -> bool:
    """The question gives a number (a year, a figure) that the answer sentence does not
    hold, in digits or in words: "How many passengers in 2030?" answered with the 2025
    figure; "a 50-employee firm" is in "une PME de cinquante salariés"."""
    if not q.numbers:
        return False
    have = digit_groups(text)
    return any(not set(re.findall(r"\d+", n)) <= have for n in q.numbers)


def number_in(number: str, snap: Snapshot) -> bool:
    """Is a number of the question in the stories? "2.5", "20,000" and "20 000" are all
    found by their digit groups (the story writes "Qwen2.5-Max", "20 000")."""
    return all(g in snap.digits for g in re.findall(r"\d+", number))


def has_name(text: str, name_forms: list[list[str]]) -> bool:
    """Does ``text`` contain one of the word sequences of a name (5-letter prefixes allowed)?"""
    tw = set(words(text))
    tw |= {w.rstrip("0123456789") for w in tw}  # "Qwen2.5-VL" names Qwen
    tp = {w[:PREFIX] for w in tw}
    return any(seq and all(w in tw or (len(w) >= PREFIX and w[:PREFIX] in tp) for w in seq)
               for seq in name_forms)


# --- names -------------------------------------------------------------------------------
Forms = list[list[str]]  # the folded word sequences a name takes in the stories


def story_names(snap: Snapshot) -> tuple[str, ...]:
    """The stories' capitalised words that can be names (stop words out)."""
    stop = stopwords()
    return tuple(w for w in snap.capitals if len(w) > 1 and fold(w) not in stop)


def match_across_languages(name: str, snap: Snapshot, embedder, t: Tuning = TUNING,
                           other: bool = False) -> str | None:
    """The stories' capitalised word that a name they do not spell (Beijing, China) stands
    for in another language (Pékin, Chine), or None: the embedding of the name against the
    embeddings of the stories' capitalised words, computed once per index version; each
    name's verdict is kept too, so only the first question naming it pays for an embedding.
    ``other``: a word other than the name itself (a name the stories spell one way in one
    language and another way in another: China and Chine)."""
    names = story_names(snap)
    if not names:
        return None
    vectors = snap.derived(f"name_vectors:{embedder.name}", lambda: embedder.embed_passages(list(names)))
    verdicts = snap.derived(f"name_verdicts:{embedder.name}", dict)
    key = (fold(name), other)
    if key not in verdicts:
        sims = vectors @ embedder.embed_passages([name])[0]
        if other:
            # another spelling of the same word: China / Chine. e5 puts made-up names that
            # merely look alike (Valtrane / Voltara, Wexcombe / Whitcombe) as close as real
            # translations, so the two must also begin alike; a word of the name itself
            # ("Citylink" for "Morwick Citylink") is no other spelling either
            own = words(name)
            head = fold(own[0])[: t.spelling_prefix] if own else ""
            sims = np.where([set(words(n)) <= set(own) or not fold(n).startswith(head) for n in names], -1.0, sims)
        best = int(np.argmax(sims))
        verdicts[key] = names[best] if float(sims[best]) >= t.name_match_cosine else None
    return verdicts[key]


def name_forms(q: Question, snap: Snapshot, embedder=None, t: Tuning = TUNING) -> dict[str, Forms | None]:
    """For each name of the question, the word sequences it takes in the stories: its own
    words (cognates by prefix: "America" ~ "Amérique"), a capitalised word of the stories
    one typo from a one-word name ("Haendel" ~ "Handel", "Alibabba" ~ "Alibaba"; as for a
    name typed in lower case, ``typo_min_length``), or, with ``embedder``, the story's
    word it stands for in another language ("Beijing" ~ "Pékin": ``match_across_languages``);
    None when the stories never mention it. In stories of several languages, a name they
    spell also takes its spelling in another language ("China" in an English story, "Chine"
    in a French one): each story writes it its own way."""
    out: dict[str, Forms | None] = {}
    several = embedder is not None and len(set(snap.story_langs.values())) > 1

    def spelt(name: str, own: Forms) -> Forms:
        match = match_across_languages(name, snap, embedder, t, other=True) if several else None
        return own + [words(match)] if match and words(match) not in own else own

    for n in q.names:
        if mentioned(n, snap.vocabulary, snap.prefixes):
            out[n] = spelt(n, forms(n))
        elif spelt_out := acronym_forms(n, snap):  # "CNES" for "Centre national d'études spatiales"
            out[n] = spelt_out
        elif len(words(n)) == 1 and (cap := _story_capital(fold(n), snap, t)):
            out[n] = spelt(cap, forms(cap))  # a name misspelt, or spelt another way: "Haendel" ~ "Handel"
        else:
            match = match_across_languages(n, snap, embedder, t) if embedder is not None else None
            out[n] = [words(match)] if match else None
    for w in q.lower_names:  # a name typed without capitals ("huawei", "alibbaba")
        if cap := _story_capital(w, snap, t):
            out[w] = spelt(cap, forms(cap))
        elif mentioned(w, snap.vocabulary, snap.prefixes):
            continue  # a word of the stories that they never capitalise: not a name
        else:
            match = match_across_languages(w, snap, embedder, t) if embedder is not None else None
            out[w] = [words(match)] if match else None
    for w in q.near_names:  # "arcelle", one typo from "parcelle", where the stories write Arcelle
        if cap := snap.capital_forms.get(w):
            out[w] = spelt(cap, forms(cap))
    return out


def _story_capital(word: str, snap: Snapshot, t: Tuning = TUNING) -> str | None:
    """The stories' capitalised word that a folded one-word name stands for: the same word,
    or one a typo away (``typo_min_length``+ letters: "alibbaba", "haendel" -> "Handel")."""
    return snap.capital_forms.get(word) or _one_typo_away(word, snap.capital_forms, t.typo_min_length)


def acronym_forms(name: str, snap: Snapshot, t: Tuning = TUNING) -> Forms | None:
    """The word sequences of the stories an acronym of the question spells out ("CNES" ->
    "Centre national d'études spatiales": ``Snapshot.acronyms``), for a name of capitals
    only of ``acronym_min_length``+ letters (two letters spell out too much); else None."""
    if len(name) < t.acronym_min_length or not name.isalpha() or not name.isupper():
        return None
    found = snap.acronyms.get(fold(name).upper())
    return [list(seq) for seq in found] if found else None


def _one_typo_away(word: str, known: dict[str, str], min_length: int = TUNING.typo_min_length) -> str | None:
    """The value of the key of ``known`` one edit (a letter added, dropped or changed, or
    two swapped) from ``word``, for words and keys of ``min_length``+ letters ("alibbaba"
    -> "Alibaba")."""
    if len(word) < min_length:
        return None
    letters = "".join(sorted({ch for key in known for ch in key}))
    return next((known[e] for e in one_edit(word, letters) if len(e) >= min_length and e in known), None)


def missing_facts(q: Question, snap: Snapshot, resolved: dict[str, Forms | None]) -> list[str]:
    """Names (capitalised, as written) and numbers of the question that the stories never
    mention."""
    return ([n for n, f in resolved.items() if f is None and n not in q.lower_names]
            + [n for n in q.numbers if not number_in(n, snap)])


def short_initials(missing: list[str], t: Tuning = TUNING) -> list[str]:
    """The names of ``missing`` (``missing_facts``) that are initials too short to spell
    anything out (capitals only, fewer than ``acronym_min_length`` letters: "RU" for the
    UK in French, "SU" for a students' union): they may be the stories' name in short or in
    another language, which neither spelling nor the model tells, so they alone do not
    show the stories never mention what is asked."""
    return [n for n in missing if n.isalpha() and n.isupper() and len(n) < t.acronym_min_length]


def other_language_words(q: Question, missing: list[str], story_langs: dict[str, str],
                         t: Tuning = TUNING) -> list[str]:
    """The names of ``missing`` (``missing_facts``) that may be the stories' words in another
    language: one word (hyphens allowed), and ``translated_name_gap`` more common in the
    question's language than in every other language of the stories (``index.language.zipf``):
    "Pourquoi l'économiste prend-il la Norvège en exemple ?" about a story that says
    "Norway". Numbers and names every language writes alike ("Samsung") are not."""
    others = set(story_langs.values()) - {q.lang}
    if not others:
        return []
    return [n for n in missing if not n[:1].isdigit() and " " not in n.strip()
            and all(zipf(n, q.lang) - zipf(n, lang) >= t.translated_name_gap for lang in others)]


def no_known_word(q: Question, resolved: dict[str, Forms | None]) -> bool:
    """Not one word of the message is a word of a language or of the stories, and it gives
    no name or number ("aaaa", "asdfghjkl", "xyzzy plugh"): there is no question to answer.
    One known word is enough to ask about a name the stories lack ("what about huawei?")."""
    tokens = re.findall(r"[^\W\d_]+", q.text)
    unknown = {w for w in (*q.lower_names, *q.near_names) if not resolved.get(w)}
    return bool(tokens) and not q.names and not q.numbers and all(fold(t) in unknown for t in tokens)


def unknown_lower_names(q: Question, resolved: dict[str, Forms | None]) -> list[str]:
    """Lower-case words of the question that may be names ("huawei") and that the stories
    never mention. Less sure than a capitalised name (a rare word or a typo looks the
    same), so the answer is hedged rather than refused."""
    return [w for w in q.lower_names if w in resolved and resolved[w] is None]


def chunks_with(snap: Snapshot, seqs: Forms) -> set[int]:
    """The chunk rows holding one of a name's forms, from the keyword index's posting
    lists: no question rescans the corpus."""
    chunks: set[int] = set()
    for seq in seqs:
        toks = tokenize(" ".join(seq))
        if not toks or snap.keyword is None:
            continue
        found = set(snap.keyword.docs_with(toks[0]).tolist())
        for tok in toks[1:]:
            found &= set(snap.keyword.docs_with(tok).tolist())
        chunks |= found
    return chunks


def stories_with(snap: Snapshot, seqs: Forms) -> set[str]:
    """The stories holding one of a name's forms (``chunks_with``)."""
    return {snap.metas[i]["story"] for i in chunks_with(snap, seqs)}


def name_share(snap: Snapshot, seqs: Forms) -> tuple[int, int]:
    """(chunks holding one of the forms, chunks of the stories those chunks belong to)."""
    chunks = chunks_with(snap, seqs)
    stories = {snap.metas[i]["story"] for i in chunks}
    return len(chunks), sum(snap.story_sizes.get(s, 0) for s in stories)


def named_stories(snap: Snapshot, resolved: dict[str, Forms | None]) -> set[str]:
    """The stories that hold every name of the question the stories mention (all stories
    when it names nothing): "How much does the Kelbridge tram cost?" is about the story
    that names Kelbridge, however close another story's costs come. When no story holds
    them all ("l'IA à Wraybourne", where the English story says "AI"), the names disagree
    and the question is about every story that holds one of them: which name it is really
    about is for retrieval to tell, not for the order the names come in."""
    per_name = stories_by_name(snap, resolved)
    if not per_name:
        return set(snap.story_ids)
    return set.intersection(*per_name) or set.union(*per_name)


def stories_by_name(snap: Snapshot, resolved: dict[str, Forms | None]) -> list[set[str]]:
    """For each of the question's names that some story holds by keyword, those stories (a
    name every story lacks by keyword, matched otherwise, narrows nothing and is left out)."""
    if snap.keyword is None:
        return []
    every = set(snap.story_ids)
    return [held for seqs in resolved.values() if seqs and (held := stories_with(snap, seqs) & every)]


def names_apart(snap: Snapshot, resolved: dict[str, Forms | None]) -> bool:
    """Does the question name things that stories of one language hold but no story holds
    together ("How much did the Greensand Trust give to the Harnby shop?", the trust of one
    story, the shop of another)? No passage can then say what it asks: it mixes two
    stories up, or asks how they compare, and the closest passages are all a reply can give.
    Names held only by stories of different languages may be one thing written two ways
    ("l'IA à Wraybourne": "IA" in the French stories, "AI" in the English one): not apart."""
    held = stories_by_name(snap, resolved)
    if len(held) < 2 or set.intersection(*held):
        return False
    langs = {snap.story_langs.get(s) for stories in held for s in stories}
    return len(langs) == 1


def linked_story(snap: Snapshot, urls: list[str]) -> str | None:
    """The one story the links of a message point at, as a ``story:<id>`` filter would: a
    link to a story's own address (its front matter's ``url``), or one whose path words are
    names that one story holds and no other ("<https://example.org/kervalen|this article>
    what did the opposition leader say?": Kervalen). The site's name is not read, in its
    host or in its path (the words of the stories' outlets): an outlet's address says
    nothing of which of its stories. None when the links point at no story, at several, or
    the index holds one story (nothing to choose). Never raises: a malformed address points
    at nothing."""
    if len(snap.story_ids) < 2 or not urls:
        return None
    addresses = snap.derived("story_addresses", lambda: {sid: a for sid, u in snap.story_field("url").items()
                                                         if (a := _address(u))})
    outlets = snap.derived("outlet_words", lambda: frozenset(w for o in snap.story_field("outlet").values()
                                                             for w in words(o)))
    found: set[str] = set()
    for url in urls[:LINKS_READ]:
        address = _address(url)
        if address is None:
            continue
        own = {sid for sid, a in addresses.items() if a == address}
        if own:
            found |= own
            continue
        path = address.partition("/")[2]
        names = dict.fromkeys(snap.capital_forms[w] for w in words(path) if w in snap.capital_forms
                              and w not in outlets)
        held = stories_by_name(snap, {n: forms(n) for n in names})
        if held and len(common := set.intersection(*held)) == 1:
            found |= common
    return next(iter(found)) if len(found) == 1 else None


LINKS_READ = 10  # the links of a message read for the story they point at: a bound on the work, not a tuning value


def _address(url: str) -> str | None:
    """A web address without its scheme, "www.", query, fragment, escapes or trailing slash,
    folded: two links to one page compare equal. None for an address that does not parse."""
    try:
        parts = urlsplit(url.strip() if "//" in url else "//" + url.strip())
    except ValueError:  # "https://[oops/x": an unclosed IPv6 host, a host NFKC changes
        return None
    host = parts.netloc.lower().removeprefix("www.")
    return f"{host}{unquote(parts.path).rstrip('/')}".lower() if host else None


def within_story(snap: Snapshot, resolved: dict[str, Forms | None], story: str) -> dict[str, Forms | None]:
    """``resolved`` for a question asked of one story (``story:<id>``): a name that other
    stories hold by keyword and this one does not is missing (None), so "story:harbour-
    lighthouse why not Baidu?" is told the story does not mention Baidu, however many
    other stories do. A name matched otherwise (by the embedding model) is left as it is."""
    out = dict(resolved)
    for name, seqs in resolved.items():
        if seqs and snap.keyword is not None:
            stories = stories_with(snap, seqs)
            if stories and story not in stories:
                out[name] = None
    return out


def subject_names(resolved: dict[str, Forms | None], title: str) -> list[str]:
    """The question's names (as written) that a story's title names: that story's subject,
    which all of its passages are about, whether they repeat the name or not."""
    return [n for n, f in resolved.items() if f and has_name(title, f)]


def without_names(text: str, names: list[str]) -> str:
    """``text`` less each of ``names`` (case-insensitive, whole words, with a possessive
    "'s"), white space closed up: "how long did the Castlebury raid last?" less Castlebury
    is "how long did the raid last?"."""
    for name in sorted(names, key=len, reverse=True):
        text = re.sub(rf"(?i)(?<!\w){re.escape(name)}(?:['’]s)?(?!\w)", " ", text)
    return " ".join(text.split())


def is_rare(snap: Snapshot, seqs: Forms, t: Tuning = TUNING) -> bool:
    """A name that sets passages apart: found in at most ``rare_name_share`` of the chunks
    of the stories that mention it (one chunk always counts as rare). "FC Vallon" in a story
    about FC Vallon is not rare, however many other stories the index holds."""
    held, size = name_share(snap, seqs)
    return held <= max(1, t.rare_name_share * size)


# --- support -------------------------------------------------------------------------------
def keyword_coverage(snap: Snapshot, question: str, passage: Passage) -> float:
    """The IDF-weighted share of the question's keyword tokens that the passage holds
    (0..1, whatever the corpus size: BM25 scores themselves grow with the corpus)."""
    qtokens = set(tokenize(question))
    total = sum(snap.idf(tok) for tok in qtokens)
    if not total:
        return 0.0
    return keyword_overlap(snap, qtokens, passage.text) / total


def shares_keywords(snap: Snapshot, question: str, passages: list[Passage]) -> bool:
    """Does one of ``passages`` hold at least one of the question's keyword tokens?"""
    return any(keyword_coverage(snap, question, p) > 0 for p in passages)


def supported(q: Question, resolved: dict[str, Forms | None], passages: list[Passage], snap: Snapshot,
              t: Tuning = TUNING) -> bool:
    """Short sentences resemble almost any question a little, so a cosine alone lets
    chit-chat through ("hello" scores 0.80). A question the stories support names something
    in them or shares keywords with one of the passages retrieved for it."""
    if any(resolved.values()):
        return True
    return max((keyword_coverage(snap, q.text, p) for p in passages), default=0.0) >= t.keyword_support


def supported_across(q: Question, passages: list[Passage], snap: Snapshot, translate: Callable[[str], str],
                     t: Tuning = TUNING) -> bool:
    """Support in translation: a passage of a story in another language than the question's
    holds ``t.keyword_support`` of the question's words as ``translate(its language)`` writes
    them (``index.crosslang.translated``): "Pourquoi la brasserie a mis le pub en vente ?"
    shares "brewery", "pub" and "sale" with an English passage."""
    for p in passages:
        lang = snap.story_langs.get(p.story)
        if lang and lang != q.lang and (text := translate(lang)) and \
                keyword_coverage(snap, text, p) >= t.keyword_support:
            return True
    return False


def is_follow_up(text: str, t: Tuning = TUNING) -> bool:
    """A question that leans on the previous one: "and Tencent?", "what about DeepSeek?"
    (openings from the language files), or one of very few words ("why?")."""
    if len(text.split()) <= t.follow_up_words:
        return True
    folded = normalise(text)
    return any(lang.follow_up is not None and lang.follow_up.match(folded) for lang in all_languages())


# --- quotes ------------------------------------------------------------------------------
def verified(snap: Snapshot, p: Passage, s: SentenceHit) -> bool:
    """The quote must be exactly the story's text at its offsets, and the whole passage
    shown around it (and given to an LLM) must be the story's text too, rebuilt from its
    sentence offsets: a corrupted record is never quoted."""
    story_text = snap.story_text(p.story)
    ok = story_text is not None and story_text[s.start:s.end] == s.text and bool(p.sentences)
    if ok:
        ok = p.text == passage_text([(story_text[h.start:h.end], h.kind) for h in p.sentences])
    if not ok:
        log.warning("stored passage %s does not match its story text: not quoted", p.chunk_id)
    return ok


def keyword_overlap(snap: Snapshot, qtokens: set[str], text: str) -> float:
    """IDF-weighted keyword tokens the question and a sentence share."""
    return sum(snap.idf(t) for t in qtokens & set(tokenize(text)))


def pick_sentences(q: Question, passages: list[Passage], snap: Snapshot, resolved: dict[str, Forms | None],
                   *, top_k: int, embedder=None, t: Tuning = TUNING) -> list[Pick]:
    """The best verified sentence of each passage that carries what the question asks
    for, at most ``top_k``, within ``see_also_margin`` of the best, the retrieval top
    passage's first (``retrieval_first``)."""
    # Only names that set passages apart earn a bonus: in a story about Apple and Alibaba,
    # "Apple" in the question says nothing about which sentence answers it.
    rare_forms = rare_names(snap, resolved, t)
    best_per_passage: list[Pick] = []
    qtokens = set(tokenize(q.text))
    qmax = sum(snap.idf(tok) for tok in qtokens) or 1.0
    for p in passages:
        # A question about a specific name (one few passages mention) is answered only
        # from the top passage or passages that mention it: "When did Apple first approach Baidu?" must not
        # be answered by a dated sentence about something else.
        # The retrieval top passage stays eligible (the answer layer adds to retrieval).
        if p is not passages[0] and rare_forms and not all(has_name(p.text, f) for f in rare_forms):
            continue
        bonus = t.passage_kw * (p.score - p.dense)  # the passage's keyword share of the fused score
        options = [Pick(p, s, bonus + _sentence_score(snap, qtokens, qmax, rare_forms, s, t))
                   for s in p.sentences if s.kind == "body" and carries(q, s.text)]
        options.sort(key=lambda o: -o.score)
        if q.wants_speech:  # a sentence that reports speech first
            options.sort(key=lambda o: not has_speech(o.sentence.text))
        if q.wants_count and q.counted:
            # a count question: within a passage, a sentence counting what is asked comes
            # before a closer one counting something else ("one of the largest sites")
            options.sort(key=lambda o: counts_something_else(q, o.sentence.text, embedder, t))
        for o in options:
            if verified(snap, p, o.sentence):
                best_per_passage.append(o)
                break
    best_per_passage.sort(key=lambda o: -o.score)
    if not best_per_passage:
        return []
    best = best_per_passage[0].score
    kept = [o for o in best_per_passage if o.score >= best - t.see_also_margin][:top_k]
    return retrieval_first(kept, best_per_passage, passages[0])


def _sentence_score(snap: Snapshot, qtokens: set[str], qmax: float, rare_forms: list[Forms], s: SentenceHit,
                    t: Tuning = TUNING) -> float:
    """A sentence's answer score within its passage: its cosine, ``sent_kw`` times its
    IDF-weighted keyword share, ``name_bonus`` per rare question name it holds."""
    hits = sum(has_name(s.text, f) for f in rare_forms)
    return s.dense + t.sent_kw * keyword_overlap(snap, qtokens, s.text) / qmax + t.name_bonus * hits


def with_next_sentence(q: Question, pick: Pick, snap: Snapshot, resolved: dict[str, Forms | None],
                       t: Tuning = TUNING) -> Pick:
    """``pick`` with the body sentence after it in its passage joined to its quote when that
    sentence scores within ``follow_margin`` of it (and carries what is asked, as every
    quoted sentence does): a story often says what a sentence announces in the next one
    ("Apple's search for a partner was fraught." then "Talks with Baidu failed..."), and the
    sentence closest to the question is then the announcement. The quote stays the story's
    text, verbatim, from the first sentence's start to the second's end, joined only where
    one space parts them, as in the passage; the decisions already made read the first
    sentence alone."""
    p, s = pick.passage, pick.sentence
    after = [h for h in p.sentences if h.start >= s.end]
    if not after or after[0].kind != "body" or not carries(q, after[0].text) or not verified(snap, p, after[0]):
        return pick
    nxt = after[0]
    qtokens = set(tokenize(q.text))
    qmax = sum(snap.idf(tok) for tok in qtokens) or 1.0
    rare = rare_names(snap, resolved, t)
    if _sentence_score(snap, qtokens, qmax, rare, nxt, t) < _sentence_score(snap, qtokens, qmax, rare, s, t) - t.follow_margin:
        return pick
    story = snap.story_text(p.story)
    if story[s.end:nxt.start] != " ":  # a line break or wider gap: the quote would not read as its passage
        return pick
    return replace(pick, sentence=replace(s, end=nxt.end, text=story[s.start:nxt.end]))


def same_story(picks: list[Pick], named: set[str]) -> list[Pick]:
    """The picks of a confident answer that belong with its first: from the first pick's
    story, or from any story the question names when it names several ("the fire station
    and the railway"). A sentence of an unrelated story scoring near the best is
    happenstance of the embedding (a question about a railway's passengers answered "[1]
    ... passengers in 2025. [2] ... Qwen2.5-Max ..."), never support for the answer."""
    if not picks:
        return picks
    allowed = {picks[0].passage.story} | (named if len(named) > 1 else set())
    return [p for p in picks if p.passage.story in allowed]


def rare_names(snap: Snapshot, resolved: dict[str, Forms | None], t: Tuning = TUNING) -> list[Forms]:
    """The forms of the question's names that set passages apart (``is_rare``)."""
    return [f for f in resolved.values() if f and is_rare(snap, f, t)]


def figure_of_another(q: Question, text: str, rare: list[Forms], others: list[Forms] = (),
                      t: Tuning = TUNING) -> bool:
    """A question asking for a figure (an amount, a number, a date) about a name few
    passages mention ("What is Vivo's market share?") whose answer sentence does not name
    it, or about such a name or one besides the story's subjects (``others``: not in its
    title) that the sentence names only as what something else is compared with ("... 15 %,
    behind Huawei and Vivo"): the figure there may well be someone else's (Apple's), so it
    is hedged. A name the question itself compares with ("... compared with Huawei?") may be
    compared."""
    if not q.wants_figure:
        return False
    if lacks_rare_name(text, rare):
        return True
    owners = [f for f in [*rare, *others] if not named_in_comparison(q.text, [f], t)]
    return any(named_in_comparison(text, [f], t) for f in owners)


def named_in_comparison(text: str, names: list[Forms], t: Tuning = TUNING) -> bool:
    """Does the sentence name ``names`` only as what something else is compared with ("...
    une part de marché de 15 %, reléguant l'entreprise à la troisième place derrière Huawei
    et Vivo": the 15 % is not Vivo's)? A name counts as compared when a comparison word
    (``[facts] comparison`` of any language: "derrière", "behind", "than") ends at most
    ``comparison_window`` words before it."""
    tokens = words(text)
    firsts = {seq[0] for f in names for seq in f if seq}
    heads = {n[:PREFIX] for n in firsts if len(n) >= PREFIX}  # "Huawei's" ~ "huawei"
    seen = [i for i, w in enumerate(tokens) if w in firsts or (len(w) >= PREFIX and w[:PREFIX] in heads)]

    def compared(i: int) -> bool:
        # a cue ending at position e (exclusive) with at most comparison_window - 1 words
        # between it and the name
        return any(e >= len(cue) and tuple(tokens[e - len(cue):e]) == cue
                   for e in range(max(0, i - t.comparison_window + 1), i + 1) for cue in _comparison_cues())

    return bool(seen) and all(compared(i) for i in seen)


@lru_cache(maxsize=1)
def _comparison_cues() -> tuple[tuple[str, ...], ...]:
    """Every language's comparison words, as folded word sequences (read once)."""
    return tuple(tuple(words(c)) for x in all_languages() for c in x.comparison)


def lacks_rare_name(text: str, rare: list[Forms]) -> bool:
    """The question names something few passages mention ("Did Apple also talk to
    Xiaomi?") and the passage that answers it (the retrieval top passage, kept even
    without the name) does not name it, or, of several such names, one of them ("did Baidu
    end up teaming up with Xiaomi?" against a passage about Baidu alone): the answer may be
    about something else."""
    def named(f: Forms) -> bool:
        # a part of the name is enough here ("Norhavn" for "Norhavn Energy", "Vallon" for
        # "FC Vallon"): the text is about it, even if not by its full name
        parts = [[[w]] for seq in f for w in seq if len(w) >= 3]
        return any(has_name(text, p) for p in (parts or [f]))

    return bool(rare) and not all(named(f) for f in rare)


def speech_missing(q: Question, text: str, resolved: dict[str, Forms | None]) -> bool:
    """A question about what someone said ("What did Tencent say?") whose
    answer sentence reports no speech (no quotation marks, no verb of saying): the story may
    name them without quoting them."""
    return q.wants_speech and not has_speech(text)


def speaker_unknown(q: Question, snap: Snapshot, resolved: dict[str, Forms | None], t: Tuning = TUNING) -> bool:
    """A "what did X say" question whose X is not one word of the stories (nor a word of
    theirs by its first ``PREFIX`` letters, nor a name they spell another way): someone
    typed in lower case ("what did tim cook say?") whom no story names, so the words
    quoted are someone else's."""
    if len(q.speaker) < t.speaker_min_words:
        return False
    named = _resolved_words(resolved)
    return not any(w in named or mentioned(w, snap.vocabulary, snap.prefixes) for w in q.speaker)


def name_missing(q: Question, text: str, resolved: dict[str, Forms | None], snap: Snapshot | None = None,
                 t: Tuning = TUNING) -> bool:
    """A question asking for a name ("What is the analyst called?") whose answer sentence
    holds no name besides those the question gives and, with ``snap``, those its story
    names all over: the story may not name it."""
    if not q.wants_name:
        return False
    return not new_names(q, text, resolved, snap, t)


# a run of capitalised words, with the particles of surnames between them ("Jean de La
# Fontaine", "Job Le Bihan"); hand-written: no library here finds people's names offline
_PARTICLES = r"(?:de|du|des|von|van|der|da|di|al|el)"
_RUN = re.compile(rf"(?<![\w’'])[A-ZÀ-Ý][\w’'-]*\.?(?:\s+(?:{_PARTICLES}\s+)?[A-ZÀ-Ý][\w’'-]*\.?)+")
_PARTICLE = re.compile(rf"\s+{_PARTICLES}\s+")  # one of them inside a normalised run


@lru_cache(maxsize=1)
def _person_words() -> tuple[frozenset[str], tuple[re.Pattern, ...], frozenset[str], frozenset[str]]:
    """Titles ("dr", "mme"), role patterns ("chief executive", "pdg"), the words that are
    no part of a name (stop words, ``[names] not_names``) and the nouns of bodies and places
    (``[names] institutions``: "council", "mairie") of every language."""
    langs = all_languages()
    return (frozenset(w for x in langs for w in x.titles),
            tuple(x.person_roles for x in langs if x.person_roles is not None),
            stopwords() | not_name_words(),
            frozenset(w for x in langs for w in x.institutions))


def person_missing(q: Question, text: str, resolved: dict[str, Forms | None]) -> bool:
    """A question asking for a person ("who is the mayor?", "what's the analyst's name?":
    ``Question.wants_person``) whose answer sentence names no one: news names a person
    with a first and a last name, or a title and a name ("Dr Ashdown", "M. Dupont":
    ``[names] titles``), and the sentence has neither, besides the names the question gives
    ("says an analyst based in Beijing" describes the analyst, it does not name them). A
    capitalised opener ("In Beijing", "The Guardian"), a role ("Chief Executive") or a
    possessive "'s" is no part of a name. Nor is a body or a place: a run, or the part of
    it after a particle, that ends with one of ``[names] institutions`` ("Harrowdale
    District Council", "Station Road"; "Jean Dupont du Conseil" is Jean Dupont). A role
    that is also a title stays ("Father Brennan", "Mayor Holt"). Two-word firms ("Morgan
    Stanley") pass for people."""
    if not q.wants_person:
        return False
    asked = _asked_words(q, resolved)
    titles, roles, skip, bodies = _person_words()
    for m in _RUN.finditer(text):
        parts = _PARTICLE.split(normalise(m.group()))
        while parts and (ends := [w for w in words(parts[-1]) if w not in skip]) and ends[-1] in bodies:
            parts.pop()
        run = " ".join(parts)
        for r in roles:  # "Chief Executive", "PDG": a role, not a name ("Father": a title)
            run = r.sub(lambda x: x.group() if x.group() in titles else " ", run)
        toks = [w for w in words(run) if len(w) > 1 or w in titles]
        name = [w for w in toks if w not in skip and w not in titles]
        titled = any(a in titles and b in name for a, b in zip(toks, toks[1:]))
        if any(w not in asked for w in name) and (len(name) >= 2 or titled):
            return False  # "Raj Devlin", "Job Le Bihan", "Dr Ashdown", "M. Dupont"
    return True


def role_missing(q: Question, passage: str, embedder=None, t: Tuning = TUNING) -> bool:
    """A question asking for the person in a role ("who is the mayor?", "c'est qui le PDG ?":
    ``Question.roles``) whose answer passage gives no such role: not the word, nor a role
    word of any language (``[ask] person_roles``) of the same meaning (``same_unit``: a
    shared 5-letter prefix, else the e5 cosine of the two words at ``unit_match_cosine``:
    "maire" ~ "mayor" .89; "ceo" ~ "pdg" is .86 and does not pass). A name there is someone else's: "who is the mayor of Tollerby?" is not
    answered by "Ruth Ambrose, who runs a hardware shop and chairs the Chamber of Trade"."""
    if not q.wants_person or not q.roles:
        return False
    _, roles, _, _ = _person_words()
    norm = normalise(passage)
    found = {m.group() for r in roles for m in r.finditer(norm)}
    return not any(same_unit(a, b, embedder, t) for a in q.roles for b in found)


def which_missing(q: Question, text: str, resolved: dict[str, Forms | None], snap: Snapshot,
                  t: Tuning = TUNING) -> bool:
    """A question asking which one ("Which firm took over the job?") whose answer ``text``
    (the answer sentence and its neighbours, ``around``) names nothing besides what the
    question names and what the stories name all over: the story may not say which."""
    if not q.wants_which:
        return False
    return not new_names(q, text, resolved, snap, t)


def around(pick: Pick, width: int) -> str:
    """The pick's sentence with up to ``width`` sentences of its passage on either side, in
    the passage's order. "Which" questions are answered as often by a sentence that refers
    back to a name ("the start-up") as by one that gives it, so the name may be a sentence
    away; a name further off in a long passage is about something else."""
    sents = sorted(pick.passage.sentences, key=lambda s: s.start)
    i = next((n for n, s in enumerate(sents) if s.start == pick.sentence.start), None)
    if i is None:
        return pick.sentence.text
    return " ".join(s.text for s in sents[max(0, i - width): i + width + 1])


def _asked_words(q: Question, resolved: dict[str, Forms | None]) -> set[str]:
    """The question's own words and its names' forms in the stories ("pékin" in the question
    is the story's "Pékin"; "Beijing" may be spelt "Pékin" there): no new name."""
    return _resolved_words(resolved) | set(words(q.text))


def _resolved_words(resolved: dict[str, Forms | None]) -> set[str]:
    """Every word of the forms the question's names take in the stories."""
    return {w for f in resolved.values() if f for seq in f for w in seq}


def new_names(q: Question, text: str, resolved: dict[str, Forms | None], snap: Snapshot | None = None,
              t: Tuning = TUNING) -> list[str]:
    """The name words (``names_in``) of ``text`` that the question does not give; with
    ``snap``, only those few passages hold (``is_rare``): a name all over its story is the
    story's subject ("Alibaba" in a story about Alibaba), not the one a question asks for
    ("what is the Hong Kong expert called?" is not answered by "« ... Alibaba ... », says
    an expert based in Hong Kong")."""
    asked = _asked_words(q, resolved)
    heads = {a[:PREFIX] for a in asked}
    found = [w for n in names_in(text) for w in words(n) if w not in asked and w[:PREFIX] not in heads]
    return [w for w in found if snap is None or is_rare(snap, [[w]], t)]


def doubt(q: Question, pick: Pick, snap: Snapshot, resolved: dict[str, Forms | None],
          t: Tuning = TUNING, embedder=None) -> str | None:
    """Why the best sentence, though close to the question, may answer something else than
    what is asked (the answer is then hedged), or None. The checks, in order:
    ``unknown_lower_names``, ``figure_of_another``, ``lacks_rare_name``,
    ``numbers_elsewhere``, ``speech_missing``, a question about what someone few passages
    name said answered by a sentence that does not name them, ``name_missing``, ``which_missing``,
    ``person_missing``, ``role_missing`` (with ``embedder``, words of the same meaning), and a yes/no
    question about the future (``Question.asks_future``: a story reports plans, it rarely
    settles them)."""
    text, passage = pick.sentence.text, pick.passage.text
    # the names besides the story's subjects (its title's)
    others = [f for f in resolved.values() if f and not has_name(pick.passage.title, f)]
    # a story's subject is what all of its passages are about, named again or not ("How
    # many calls did the Brenmouth helpline get?" is answered by "The helpline took 340
    # calls"); among a few stories its name is rare all the same
    rare = [f for f in rare_names(snap, resolved, t) if f in others]
    checks = (("unknown name", lambda: bool(unknown_lower_names(q, resolved))),
              ("another's figure", lambda: figure_of_another(q, text, rare, others, t)),
              ("name not in the passage", lambda: lacks_rare_name(passage, rare)),
              ("number not in the passage", lambda: numbers_elsewhere(q, passage)),
              ("no speech", lambda: speech_missing(q, text, resolved)),
              ("an unknown speaker", lambda: speaker_unknown(q, snap, resolved, t)),
              # "what did Xiaomi say?" answered by someone else's words
              ("another's speech", lambda: q.wants_speech and lacks_rare_name(text, rare)),
              ("no new name", lambda: name_missing(q, text, resolved, snap, t)),
              ("no name for which", lambda: which_missing(q, around(pick, t.which_window), resolved, snap, t)),
              ("no person named", lambda: person_missing(q, text, resolved)),
              ("another role", lambda: role_missing(q, passage, embedder, t)),
              ("a yes/no question about the future", lambda: q.asks_future))
    return next((why for why, check in checks if check()), None)


def fitting_first(picks: list[Pick], fits: Callable[[str], bool], q: Question | None = None) -> list[Pick] | None:
    """The picks with the first later one whose sentence ``fits`` (gives the kind of count
    or amount asked, when the first gives another kind) moved to the front; None when no
    later pick of the first pick's story fits. Another story's count of that kind is
    another fact: "how much was the firm losing a week?" about a bus company is not
    answered by a holiday town's takings. So is a count whose passage lacks a number the
    question gives (``numbers_elsewhere``: "how many fewer passengers in 2027?" is not
    answered by the 2025 figure); the first pick passed that check (``doubt``)."""
    story = picks[0].passage.story
    first = next((p for p in picks[1:] if p.passage.story == story and fits(p.sentence.text)
                  and not (q and numbers_elsewhere(q, p.passage.text))), None)
    return None if first is None else [first] + [p for p in picks if p is not first]


def retrieval_first(kept: list[Pick], all_picks: list[Pick], top: Passage) -> list[Pick]:
    """The answer layer adds to retrieval, it does not overrule it: the retrieval top
    passage's best sentence is cited first (unless the top passage has no sentence that
    carries what is asked, or lacks the question's rare name: then it has no pick at all);
    the other passages' sentences follow as further citations. Re-ranking passages by their
    sentences' scores put a story's lead, which resembles every question about the story,
    first too often (index.tuning, round 7)."""
    mine = next((o for o in all_picks if o.passage.chunk_id == top.chunk_id), None)
    if mine is None or not kept or kept[0] is mine:
        return kept
    return [mine] + [o for o in kept if o is not mine][: max(0, len(kept) - 1)]


def off_topic(passages: list[Passage], bar: dict[str, float], is_supported: bool) -> bool:
    """Refuse as off topic: against every story retrieved, the question scores like the
    off-topic bank (at or below that story's calibrated bar, ``bar[story]``), and it names
    nothing in the stories and shares no keyword with them."""
    return not is_supported and all(p.dense <= bar[p.story] for p in passages)


def clears_a_bar(passages: list[Passage], answer_bars: dict[str, tuple[float, float]], is_supported: bool,
                 like_bank=lambda: True) -> bool:
    """Does any candidate reach its own story's answer bar (``confidence`` "high";
    ``answer_bars``: story id -> (answer bar, answer bar without support))? Not only the
    highest-scoring candidate: the bars are calibrated story language by story language,
    and a question scores higher against any text in its own language, so in a corpus of
    both languages the highest score is nearly always a passage of the question's
    language, held to that language's higher bar, and a French question about an English
    story could never clear the English stories' bar. Round 34, few-story views (1620
    answerable, 539 not): answerable "high" 1360 -> 1398, unanswerable "high" 136 -> 138."""
    return any(confidence(p, *answer_bars[p.story], is_supported, like_bank) == "high" for p in passages)


def confidence(top: Passage, high: float, high_unsupported: float, is_supported: bool,
               like_bank=lambda: True) -> str:
    """"high" when the top passage scores at the calibrated answer bar (above nearly every
    off-topic message against these stories) and the question names something in the
    stories or shares keywords with them; without that support (a paraphrase in another
    language shares no keyword), at that bar too when the question is not of the off-topic
    bank's kind (``like_bank()``, asked only then), and above every off-topic message when it
    is; else "low": the closest passages, hedged."""
    if is_supported:
        return "high" if top.dense >= high else "low"
    if top.dense > high_unsupported:
        return "high"
    return "high" if top.dense >= high and not like_bank() else "low"


def closest(passages: list[Passage], snap: Snapshot, t: Tuning = TUNING) -> list[Pick]:
    """The best verified body sentence of the first passages, in retrieval order (for a
    hedged reply, when no sentence carries what was asked)."""
    out = []
    for p in passages:
        for s in sorted((s for s in p.sentences if s.kind == "body"), key=lambda s: -s.dense):
            if verified(snap, p, s):
                out.append(Pick(p, s, s.dense))
                break
        if len(out) >= t.hedge_citations:
            break
    return out


def absent_everywhere(q: Question, passages: list[Passage]) -> bool:
    """The question asks for a kind of fact (an amount of money, a number, a date) that no
    candidate passage carries at all: clear evidence the stories do not say."""
    return not any(carries(q, p.text) for p in passages)
