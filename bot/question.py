"""Reading a question: cleaning odd input, guessing its language, and working out what an
answer must contain (names, numbers, an amount of money, a date) so the core can tell an
answer from a passage that is merely on topic."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from index.keyword import PREFIX, fold, words

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_SPACE = re.compile(r"\s+")
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")  # terminal escape sequences

FR_HINTS = {"le", "la", "les", "des", "du", "est", "une", "un", "pourquoi", "quel", "quelle", "quels",
            "quelles", "comment", "qui", "que", "quoi", "combien", "quand", "avec", "pour", "pas", "dans",
            "sur", "au", "aux", "ce", "cette", "ont", "sont", "qu", "il", "elle", "d", "l", "a-t-il",
            "t", "dit", "apporte", "ou", "et", "veut", "fait"}
EN_HINTS = {"the", "a", "an", "is", "are", "was", "were", "why", "what", "which", "who", "how", "when",
            "where", "did", "does", "do", "with", "for", "not", "of", "in", "on", "and", "to", "about",
            "say", "said", "has", "have", "will", "can", "could", "much", "many"}

# Capitalised words that are not names.
_NOT_NAMES = {fold(w) for w in (
    "i", "what", "why", "who", "whom", "whose", "which", "how", "when", "where", "does", "did", "do", "is",
    "are", "was", "were", "will", "would", "can", "could", "should", "has", "have", "had", "tell", "give",
    "explain", "describe", "list", "according", "in", "on", "at", "for", "the", "a", "an", "and", "and",
    "so", "but", "or", "if", "please", "ok", "hey", "hi", "hello", "bot", "storybot", "then", "now",
    "ignore", "forget", "you", "your", "my", "me", "we", "they", "it", "this", "that", "these", "those",
    "pourquoi", "quel", "quelle", "quels", "quelles", "qui", "que", "quoi", "comment", "quand", "où",
    "combien", "est-ce", "est", "le", "la", "les", "un", "une", "des", "du", "de", "et", "ou", "mais",
    "donc", "dis", "dites", "explique", "expliquez", "selon", "en", "au", "aux", "pour", "sur", "dans",
    "ce", "cette", "ces", "il", "elle", "ils", "elles", "on", "nous", "vous", "je", "tu", "qu", "l", "d",
    "s", "apres", "avant", "story", "article", "monday", "tuesday", "wednesday", "thursday", "friday",
    "saturday", "sunday", "january", "february", "march", "april", "may", "june", "july", "august",
    "september", "october", "november", "december", "ceo", "pdg",
)}

# English names whose French form differs beyond the first five letters.
ALIASES = {
    "china": ["chine"], "chinese": ["chinois", "chinoise", "chine"], "beijing": ["pekin"],
    "ai": ["ia"], "us": ["etats-unis", "americain"], "usa": ["etats-unis"], "america": ["amerique"],
    "american": ["americain"], "europe": ["europe", "europeen"], "european": ["europeen"],
    "french": ["francais"], "france": ["france"], "japan": ["japon"], "germany": ["allemagne"],
    "hongkong": ["hong"], "cyberspace": ["cyberespace"], "iphones": ["iphone"], "iphone": ["iphone"],
    "apps": ["applications"], "app": ["application"],
}

# What kind of fact a question asks for, by pattern (English and French).
_MONEY_Q = re.compile(
    r"\b(how much|combien)\b.*\b(pay|paid|paying|cost|costs|spend|spent|invest|invested|worth|charge|price|"
    r"co[uû]te?|pay[ée]|payer|pai(?:e|es|ent)|investi|d[ée]pens[ée]|vaut|verse|vers[ée])|\b(price|prices|pricing|cost of|salary|salaire|"
    r"revenue|revenues|profit|profits|earnings|valuation|turnover|prix|tarif|chiffre d.affaires|"
    r"b[ée]n[ée]fices?|valorisation|revenus?|stock|share price|action apple|cours de l.action)\b", re.I)
_COUNT_Q = re.compile(r"\b(how many|how much|what percentage|what share|combien|quel pourcentage|"
                      r"quelle part|by how much|de combien)\b", re.I)
_TIME_Q = re.compile(r"\b(when|what year|which year|what date|quand|en quelle ann[ée]e|quelle date|"
                     r"à quelle date|a quelle date|since when|depuis quand)\b", re.I)

CURRENCY = re.compile(r"[$€£¥]|\b(dollars?|euros?|yuans?|usd|eur|cny|rmb|renminbi)\b", re.I)
NUMBER = re.compile(r"\d|\b(deux|trois|quatre|cinq|six|sept|huit|neuf|dix|douze|vingt|trente|"
                    r"quarante|cinquante|cents?|milles?|millions?|milliards?|moiti[ée]|double|triple|fois|"
                    r"one|two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|hundreds?|"
                    r"thousands?|millions?|billions?|half|twice|thrice|percent)\b", re.I)
TIME = re.compile(r"\b(1[89]\d\d|20\d\d|janvier|f[ée]vrier|mars|avril|mai|juin|juillet|ao[uû]t|septembre|"
                  r"octobre|novembre|d[ée]cembre|january|february|march|april|may|june|july|august|"
                  r"september|october|november|december|trimestres?|semaines?|mois|ann[ée]es?|hier|demain|"
                  r"aujourd.hui|bient[ôo]t|prochaine?s?|d.ici|fin de|d[ée]but|quarter|week|month|year|"
                  r"yesterday|tomorrow|today|soon|next|by the end)\b", re.I)


@dataclass
class Question:
    """A cleaned question and what its answer must carry."""

    text: str
    lang: str
    truncated: bool = False
    names: list[str] = field(default_factory=list)  # as written, e.g. "Tim Cook"
    numbers: list[str] = field(default_factory=list)
    wants_money: bool = False
    wants_number: bool = False
    wants_time: bool = False

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
    """"fr" or "en", from function words and accents (questions are short: a model would
    be no surer, and this costs nothing)."""
    ws = re.findall(r"[a-zà-ÿ'-]+", text.lower())
    fr = sum(w in FR_HINTS for w in ws) + 2 * len(re.findall(r"[éèêàùçôîâ]", text.lower()))
    fr += 2 * bool(re.search(r"\s[?!]$", text))  # French typography: space before ? and !
    en = sum(w in EN_HINTS for w in ws)
    return "fr" if fr > en else "en"


def analyse(raw: str, limit: int) -> Question:
    """Clean ``raw`` and read what it asks for."""
    text, truncated = clean(raw, limit)
    q = Question(text=text, lang=detect_lang(text), truncated=truncated)
    q.names = _names(text)
    q.numbers = re.findall(r"\b\d[\d.,]*\b", text)
    q.wants_money = bool(_MONEY_Q.search(text))
    q.wants_number = bool(_COUNT_Q.search(text))
    q.wants_time = bool(_TIME_Q.search(text))
    return q


def _names(text: str) -> list[str]:
    """Proper names in the question: runs of capitalised or mixed-case words ("Tim Cook",
    "GPT-4", "iPhone") that are not question words."""
    out: list[str] = []
    current: list[str] = []
    from index.keyword import stopwords

    stop = stopwords()
    first = re.search(r"[\w’'.-]+", text)
    first_word_end = first.end() - 1 if first else -1
    for m in re.finditer(r"[\w’'.-]+", text):
        tok = m.group().strip("’'.-")
        # "Beijing-based" names Beijing: drop lower-case word parts of hyphenated tokens
        if "-" in tok:
            tok = "-".join(p for p in tok.split("-") if p and not p[0].islower()) or tok
        tok = re.sub(r"[’']s$", "", tok)
        tok = re.sub(r"^(?:[dlnsjcmt]|qu|jusqu|lorsqu|puisqu)[’']", "", tok, flags=re.I)  # French elision
        mixed = len(tok) > 1 and any(c.isupper() for c in tok[1:])
        # a capital at the start of the question is grammar, not a name ("Write me a poem")
        is_name = bool(tok) and (mixed or (tok[0].isupper() and m.start() > first_word_end))
        if is_name and fold(tok) not in _NOT_NAMES and fold(tok) not in stop:
            current.append(tok)
        else:
            if current:
                out.append(" ".join(current))
            current = []
    if current:
        out.append(" ".join(current))
    return out


def forms(name: str) -> list[list[str]]:
    """The folded word sequences a name may take in the story (with known French forms)."""
    ws = words(name)
    seqs = [ws]
    joined = "".join(ws)
    if joined in ALIASES:
        seqs += [words(a) for a in ALIASES[joined]]
    elif len(ws) == 1 and ws[0] in ALIASES:
        seqs += [words(a) for a in ALIASES[ws[0]]]
    return seqs


def mentioned(name: str, vocab: set[str], prefixes: set[str]) -> bool:
    """Whether every word of ``name`` (or of one of its known forms) is in the story's
    vocabulary; words of 5+ letters may match by their first five letters (cognates)."""
    for seq in forms(name):
        if seq and all(w in vocab or (len(w) >= PREFIX and w[:PREFIX] in prefixes) for w in seq):
            return True
    return False
