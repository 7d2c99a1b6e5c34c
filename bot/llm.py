"""Written answers through an LLM: the prompt, the provider call and the citation checks.

The core (``bot/answer.py``) decides *whether* to ask an LLM (never for an off-topic
question) and what to do when it fails (fall back to the extractive answer). This module
only does the asking::

    writer = LLMWriter.from_settings(settings)       # None when LLM_PROVIDER=none
    result = writer.write(question, passages, "en")  # LLMResult(text, cited) or LLMFailure

Providers go through llama-index's integrations (``openai``, ``openai-like``, ``ollama``),
imported only inside :meth:`LLMWriter.from_settings`, so ``import bot.llm`` stays cheap.
Every answer is checked before it is returned: each ``[n]`` must name a passage that was
given, and at least one must be present. Any fault (timeout, HTTP error, refused connection,
malformed body, failed check) becomes an :class:`LLMFailure` with a short reason that is
safe to log and to show; the API key never appears in a reason or a log record.
"""
from __future__ import annotations

import logging
import re
import string
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import prompts

log = logging.getLogger(__name__)

PROVIDERS = ("openai", "openai-like", "ollama")
DEFAULT_MODELS = {"openai": "gpt-4o-mini", "ollama": "qwen2.5:3b"}
OPENAI_URL = "https://api.openai.com/v1"
OLLAMA_URL = "http://localhost:11434"
# Generous, so that llama-index never trims our prompt; the server enforces the real limit.
OPENAI_LIKE_CONTEXT = 32768
OLLAMA_CONTEXT = 8192
# Sent as the key to keyless OpenAI-compatible servers (llama.cpp, vLLM, LM Studio). Passing
# *something* matters: with no key, the OpenAI client would fall back to OPENAI_API_KEY from
# the environment and send a real OpenAI key to a third-party server.
NO_KEY = "not-needed"
STREAM_INTERVAL = 1.0  # seconds between two on_text calls (chat platforms rate-limit edits)
# The prompt asks for one to three short sentences. A model caught in a loop can write a
# hundred kilobytes, which chat would post as dozens of messages: past this, it is no answer.
MAX_ANSWER_CHARS = 1500

LANGUAGES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "zh": "Chinese",
    "ja": "Japanese",
}


@dataclass(frozen=True)
class LLMPassage:
    """One numbered passage the LLM may cite as ``[n]`` (numbered from 1)."""

    n: int
    title: str
    section: str | None
    text: str


@dataclass(frozen=True)
class LLMResult:
    """A checked answer: ``text`` cites passages as ``[n]``; ``cited`` lists the numbers used,
    in order of first use (each within ``1..len(passages)``, at least one)."""

    text: str
    cited: tuple[int, ...]


class LLMFailure(Exception):
    """The LLM gave no usable answer. ``reason`` is short and safe to log and show, e.g.
    "timeout", "http 500", "connection refused", "malformed response", "no citation",
    "citation [7] out of range (3 passages)"."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


# --- citations ------------------------------------------------------------------------------

# "[2]", and the grouped forms models like to write: "[1, 3]", "[1;2]".
_CITE = re.compile(r"\[\s*(\d{1,6}(?:\s*[,;]\s*\d{1,6})*)\s*\]")
# Reasoning models served through OpenAI-compatible servers may inline their thoughts.
_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.S | re.I)


def check_citations(text: str, n_passages: int) -> tuple[int, ...]:
    """The passage numbers ``text`` cites, in order of first use.

    Raises ``LLMFailure`` when a number is outside ``1..n_passages`` or when there is none.
    """
    cited: list[int] = []
    for match in _CITE.finditer(text):
        for part in re.split(r"[,;]", match.group(1)):
            n = int(part)
            if not 1 <= n <= n_passages:
                plural = "passage" if n_passages == 1 else "passages"
                raise LLMFailure(f"citation [{n}] out of range ({n_passages} {plural})")
            if n not in cited:
                cited.append(n)
    if not cited:
        raise LLMFailure("no citation")
    return tuple(cited)


# The other shapes real models write citations in, turned into "[n]" before the check.
_FULL_ITEM = r"\d{1,3}(?:\s*[-–~〜－]\s*\d{1,3})?"  # 2, or a range 1–3 / 1〜3
_FULLWIDTH = re.compile(rf"[【〔［]\s*({_FULL_ITEM}(?:\s*[,;、，]\s*{_FULL_ITEM})*)\s*[】〕］]")
_FULL_MARKS = str.maketrans({"、": ",", "，": ",", ";": ",", "~": "-", "〜": "-", "－": "-"})
_FOOTNOTE = re.compile(r"\[\^(\d{1,3})\]")  # markdown footnotes: [^1]
_CARET = re.compile(r"(?<!\d)\^(\d{1,3})(?!\d)")  # ^1, not the exponent of 10^6
_SUPERSCRIPT = re.compile(r"(?<![\d⁰¹²³⁴⁵⁶⁷⁸⁹])[⁰¹²³⁴⁵⁶⁷⁸⁹]+")  # ¹, ²³; not the exponent of 10²
_SUPER_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")
_AFTER_UNIT = re.compile(r"\d\s*[^\W\d_]{1,2}\Z")  # "500 m²", "3 km²": a unit, not a citation
_RANGE_ITEM = r"\d{1,3}(?:\s*[-–]\s*\d{1,3})?"
_RANGE = re.compile(rf"\[\s*({_RANGE_ITEM}(?:\s*[,;]\s*{_RANGE_ITEM})*)\s*\]")  # [1–3], [1-2, 4]
_LABELLED = re.compile(r"\[(?:passage|source|ref|doc|citation)\s*#?\s*(\d{1,3})\]", re.I)
_BOLD = re.compile(r"(\*\*|__)(\[[\d,; ]+\])\1")  # **[1]**
_PAREN = re.compile(r"(?<![\w(])\((\d{1,2}(?:\s*[,;]\s*\d{1,2})*)\)")  # (1), (1, 2)
# the head of a closing list of sources: "Sources: [1], [2]", "Source : 1, 3", "**Sources:** 1",
# "References:" then one line per source ("[1] Les premières discussions…", "- 2. Le partenariat")
_SOURCES_HEAD = re.compile(r"(?:\A|\n|(?<=[.!?])[ \t]+)[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?"
                           r"(?:sources?|references?|r[ée]f[ée]rences?|citations?)"
                           r"[ \t]*:?[ \t]*(?:\*\*|__)?[ \t]*:?[ \t]*", re.I)
_SOURCE_NUMBERS = re.compile(r"(?:\[?\d{1,3}\]?[\s,;.&]*(?:and|et)?[\s,;.&]*)+", re.I)  # "[1], [2] and 3"
_SOURCE_LINE = re.compile(r"\s*(?:[-*•][ \t]*)?\[?\^?(\d{1,3})\]?(?:[.):]|\s|\Z)")  # "- [1] text", "2. text"
_FOOTNOTE_DEFS = re.compile(r"\n\s*\[\^?\d{1,3}\]\s*:.*$", re.S)  # "[^1]: passage text" at the end


def normalise_citations(text: str, n_passages: int) -> str:
    """Rewrite the citation shapes models write (``[1][2]``, ``[1, 2]``, ``[1–3]``, ``【1】``,
    ``(1)``, ``[^1]``, ``^1``, ``¹``, ``[Passage 1]``, bold ``**[1]**``, a trailing "Sources:"
    list) as ``[n]`` so the check sees what the model cited. A trailing list is dropped (with
    whatever it says of each source); its numbers stand in for the answer's only when it
    cites nothing inline. ``(n)``, ``^n`` and ``¹`` count only for a passage number
    (1..``n_passages``): "(2024)" or "(15)" in a sentence are not citations."""
    text = _FOOTNOTE_DEFS.sub("", text)
    text = _FULLWIDTH.sub(lambda m: f"[{m.group(1).translate(_FULL_MARKS)}]", text)
    text = _FOOTNOTE.sub(r"[\1]", text)
    text = _CARET.sub(lambda m: f"[{m.group(1)}]" if 1 <= int(m.group(1)) <= n_passages else m.group(0), text)
    text = _SUPERSCRIPT.sub(lambda m: _superscript(m, n_passages), text)
    text = _RANGE.sub(_expand_ranges, text)
    text = _LABELLED.sub(r"[\1]", text)
    text = _BOLD.sub(r"\2", text)

    def paren(m: re.Match) -> str:
        nums = [int(x) for x in re.split(r"\s*[,;]\s*", m.group(1))]
        return f"[{', '.join(map(str, nums))}]" if all(1 <= n <= n_passages for n in nums) else m.group(0)

    text = _PAREN.sub(paren, text)
    return _sources_list(text)


def _superscript(m: re.Match, n_passages: int) -> str:
    """``¹`` -> ``[1]``. A run of them reads as one number or as several ("¹²": 12, or 1 and
    2): rewritten only when exactly one reading names passages (1..``n_passages``, each once),
    and never after a number or a unit ("10²", "500 m²")."""
    if _AFTER_UNIT.search(m.string, 0, m.start()):
        return m.group(0)
    digits = m.group(0).translate(_SUPER_DIGITS)
    readings = {(int(digits),), tuple(int(d) for d in digits)}
    valid = [r for r in readings if all(1 <= n <= n_passages for n in r) and len(set(r)) == len(r)]
    return f"[{', '.join(map(str, valid[0]))}]" if len(valid) == 1 else m.group(0)


def _expand_ranges(m: re.Match) -> str:
    """``[1–3]`` -> ``[1, 2, 3]`` (an en dash or a hyphen); a descending range is left as is."""
    if not re.search("[-–]", m.group(1)):
        return m.group(0)
    nums: list[int] = []
    for item in re.split(r"\s*[,;]\s*", m.group(1)):
        lo, _, hi = re.sub(r"\s", "", item).replace("–", "-").partition("-")
        if hi and int(lo) > int(hi):
            return m.group(0)
        nums += range(int(lo), int(hi or lo) + 1)
    return f"[{', '.join(map(str, nums))}]"


def _sources_list(text: str) -> str:
    """``text`` without a closing list of sources. Its numbers cite the answer only when the
    answer cites nothing inline; the titles or quotes a list may carry are never shown (they
    are the model's words, not the checked citations)."""
    for m in reversed(list(_SOURCES_HEAD.finditer(text))):
        lines = [ln for ln in text[m.end():].splitlines() if ln.strip()]
        if not lines:
            continue
        nums = []
        for n, line in enumerate(lines):
            if n == 0 and _SOURCE_NUMBERS.fullmatch(line.strip()):
                nums += re.findall(r"\d{1,3}", line)
            elif found := _SOURCE_LINE.match(line):
                nums.append(found.group(1))
            else:  # a line that names no source: not a list of sources
                break
        else:
            body = text[: m.start()].rstrip()
            if not body or _CITE.search(body):  # a list alone answers nothing
                return body
            return body + " " + "".join(f"[{int(n)}]" for n in dict.fromkeys(nums))
    return text


def says_story_does_not_say(text: str) -> bool:
    """Does ``text`` say that the story does not say ("The story does not say [1].", "L'article
    ne le dit pas"), in the phrases of any language's file (``index/lang``, ``[answers]``)? Such
    an answer answers nothing, whatever it cites: the core decided the story answers, and
    sends its extractive answer instead."""
    from index.language import all_languages, any_match

    return any_match([lang.does_not_say for lang in all_languages()], text)


# A quotation in the written answer: "…", “…”, « … », „…“, 「…」.
_QUOTED = re.compile(r'"([^"\n]+)"|“([^”\n]+)”|«\s*([^»\n]+?)\s*»|„([^“”\n]+)[“”]|「([^」\n]+)」')
QUOTE_MIN_WORDS = 3  # shorter quoted bits are terms ("l'IA"), not quotations


def _plain_words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def check_quotes(text: str, passages: list[LLMPassage]) -> None:
    """Raises ``LLMFailure("quote not in the story")`` when ``text`` puts in quotation marks
    words (``QUOTE_MIN_WORDS`` or more) that no passage holds in that order: shown above the
    verified citations, a made-up or translated quotation would pass for the story's own."""
    story = f" {_plain_words(' '.join(p.text for p in passages))} "
    for m in _QUOTED.finditer(text):
        words = _plain_words(next(g for g in m.groups() if g))
        if len(words.split()) >= QUOTE_MIN_WORDS and f" {words} " not in story:
            raise LLMFailure("quote not in the story")


# Markdown the prompt asks the model not to write, which no adapter renders in an answer
# (Discord escapes it and Slack shows it as plain text, so that neither a story nor a model
# can post links or mentions; the CLI prints text): bold markers, heading hashes, "* " bullets.
_MARKDOWN = ((re.compile(r"\*\*"), ""), (re.compile(r"^[ \t]*#{1,6}(?:[ \t]+|$)", re.M), ""),
             (re.compile(r"^([ \t]*)\*(?:[ \t]+|$)", re.M), r"\1- "))


def clean_answer(text: str) -> str:
    """The answer as shown: inline ``<think>`` blocks removed, grouped citations split
    (``[1, 3]`` -> ``[1][3]``), markdown bold markers and heading hashes removed, ``* ``
    bullets written ``- ``, outer whitespace stripped."""
    text = _THINK.sub("", text)
    for markup, plain in _MARKDOWN:
        text = markup.sub(plain, text)
    text = _CITE.sub(lambda m: "".join(f"[{int(p)}]" for p in re.split(r"[,;]", m.group(1))), text)
    return text.strip()


def renumber(text: str, cited: tuple[int, ...]) -> str:
    """``text`` with its citations renumbered in order of first use (``cited[0]`` becomes
    ``[1]``...), so the citations shown are exactly the ones the answer uses."""
    new = {old: i for i, old in enumerate(cited, 1)}
    return _CITE.sub(lambda m: "".join(f"[{new[int(p)]}]" for p in re.split(r"[,;]", m.group(1))), text)


# --- the prompt -----------------------------------------------------------------------------

@lru_cache(maxsize=None)
def load_prompt(name: str) -> string.Template:
    """A template from the ``prompts`` package (``prompts/<name>.txt``)."""
    return prompts.template(name)


# Our own delimiters must not be forgeable from inside the data they delimit.
_TAGS = re.compile(r"</?\s*(?:question|passages)\s*>", re.I)


def _data(text: str) -> str:
    return _TAGS.sub("", text).strip()


def language_name(lang: str) -> str:
    """``"fr"`` -> ``"French"``; an unknown code -> "the language of the question"."""
    return LANGUAGES.get(lang.strip().lower().split("-")[0], "the language of the question")


def render_prompt(question: str, passages: list[LLMPassage], lang: str) -> tuple[str, str]:
    """The (system, user) messages for one question, rendered strictly from ``prompts/``:
    a variable missing from the call is a ``KeyError``, a stray ``$`` a ``ValueError``."""
    blocks = []
    for p in passages:
        where = f"{_data(p.title)} — {_data(p.section)}" if p.section else _data(p.title)
        blocks.append(f"[{p.n}] ({where})\n{_data(p.text)}")
    system = load_prompt("llm_system").substitute()
    user = load_prompt("llm_answer").substitute(
        passages="\n\n".join(blocks),
        question=_data(question),
        language=language_name(lang),
        n_passages=len(passages),
    )
    return system, user


# --- faults -> reasons ----------------------------------------------------------------------

def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def failure_reason(exc: BaseException) -> str:
    """A short, safe reason for an exception raised while calling a provider.

    Only types and status codes are used, never the exception's text (which may quote the
    server's reply). Imports the provider client libraries: call it only on a failure.
    """
    import httpx
    import ollama
    import openai

    if isinstance(exc, LLMFailure):
        return exc.reason
    chain = list(_causes(exc))
    if any(isinstance(e, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)) for e in chain):
        return "timeout"
    if isinstance(exc, openai.APIStatusError):
        return f"http {exc.status_code}"
    if isinstance(exc, ollama.ResponseError):
        return f"http {exc.status_code}" if exc.status_code > 0 else "provider error"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if isinstance(exc, (openai.APIConnectionError, httpx.ConnectError, ConnectionError)):
        return "connection failed"
    if isinstance(exc, httpx.HTTPError):  # e.g. the server closed the stream mid-way
        return "connection error"
    if isinstance(exc, openai.OpenAIError):  # e.g. an error event inside a stream
        return "provider error"
    # JSON that does not parse, a body without choices, a non-JSON reply...
    return "malformed response"


# --- the writer -----------------------------------------------------------------------------

_reply = threading.local()  # ``content_type``: of the last reply the OpenAI client got on this thread


def _note_reply(response: Any) -> None:
    _reply.content_type = response.headers.get("content-type", "")


def _openai_http_client() -> Any:
    """The OpenAI SDK's own default HTTP client, noting the content type of every reply: a
    stream that yields no chunk is an event stream that ended at once (an empty answer) or a
    body of another kind (not a stream at all), and only the reply's type tells them apart."""
    import openai

    return openai.DefaultHttpxClient(event_hooks={"response": [_note_reply]})


class LLMWriter:
    """Writes short cited answers with one llama-index LLM; thread-safe.

    Build it with :meth:`from_settings`; tests may pass any llama-index chat LLM directly.
    ``min_interval`` and ``clock`` set the streaming throttle (see :meth:`write`).
    """

    def __init__(
        self,
        llm: Any,
        *,
        provider: str,
        model: str,
        timeout: float = 20.0,
        api_key: str | None = None,
        min_interval: float = STREAM_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._llm = llm
        self.provider = provider
        self.model = model
        self.timeout = timeout
        self._secret = api_key or None
        self.min_interval = min_interval
        self._clock = clock
        # Fail at start-up, not on the first question, when a prompt is missing or broken.
        render_prompt("?", [LLMPassage(1, "t", None, "p")], "en")

    @classmethod
    def from_settings(cls, settings: Any, **kwargs: Any) -> LLMWriter | None:
        """The writer for ``settings.llm_*``, or None when ``llm_provider`` is ``none``.

        Raises ``ConfigError`` (naming the setting, never its value) when the provider's
        settings are incomplete. ``kwargs`` go to the constructor (``min_interval``, ``clock``).
        """
        from bot.errors import ConfigError

        provider = settings.llm_provider
        if provider == "none":
            return None
        if provider not in PROVIDERS:
            raise ConfigError("LLM_PROVIDER must be one of: none, openai, openai-like, ollama.")
        key = settings.llm_api_key.get_secret_value().strip() if settings.llm_api_key else ""
        base = (settings.llm_base_url or "").strip().rstrip("/") or None
        if base and not base.startswith(("http://", "https://")):
            raise ConfigError("LLM_BASE_URL must start with http:// or https://.")
        timeout = float(settings.llm_timeout)
        model = (settings.llm_model or "").strip() or DEFAULT_MODELS.get(provider, "")

        llm: Any
        if provider == "openai":
            if not key:
                raise ConfigError("LLM_API_KEY is required when LLM_PROVIDER=openai.")
            from llama_index.llms.openai import OpenAI

            try:
                llm = OpenAI(model=model, api_key=key, api_base=base or OPENAI_URL, timeout=timeout,
                             max_retries=0, temperature=0.0, http_client=_openai_http_client())
                llm.metadata  # noqa: B018  (unknown model names fail here, not at the first question)
            except ValueError:
                raise ConfigError(
                    "LLM_MODEL is not a chat model known to llama-index's OpenAI integration; "
                    "for other models use LLM_PROVIDER=openai-like with LLM_BASE_URL=" + OPENAI_URL + "."
                ) from None
        elif provider == "openai-like":
            if not base:
                raise ConfigError(
                    "LLM_BASE_URL is required when LLM_PROVIDER=openai-like "
                    "(the server's OpenAI-compatible URL, usually ending in /v1)."
                )
            if not model:
                raise ConfigError(
                    "LLM_MODEL is required when LLM_PROVIDER=openai-like "
                    "(any name works for a single-model server such as llama.cpp)."
                )
            from llama_index.llms.openai_like import OpenAILike

            llm = OpenAILike(model=model, api_base=base, api_key=key or NO_KEY, is_chat_model=True,
                             is_function_calling_model=False, context_window=OPENAI_LIKE_CONTEXT,
                             timeout=timeout, max_retries=0, temperature=0.0,
                             http_client=_openai_http_client())
        else:  # ollama
            from llama_index.llms.ollama import Ollama

            llm = Ollama(model=model, base_url=base or OLLAMA_URL, request_timeout=timeout,
                         temperature=0.0, context_window=OLLAMA_CONTEXT,
                         headers={"Authorization": f"Bearer {key}"} if key else None)
        return cls(llm, provider=provider, model=model, timeout=timeout, api_key=key or None, **kwargs)

    def describe(self) -> str:
        """``provider:model`` for logs, e.g. ``openai-like:qwen-plus`` (never the key)."""
        return f"{self.provider}:{self.model}"

    def close(self) -> None:
        """Close the provider's HTTP connections (optional: a writer usually lives as long as
        the process)."""
        client = getattr(self._llm, "_client", None)  # OpenAI or ollama client, made lazily
        for obj in (client, getattr(client, "_client", None)):  # ... and its httpx.Client
            close = getattr(obj, "close", None)
            if callable(close):
                close()

    def __repr__(self) -> str:  # the llama-index object's repr would show the key
        return f"LLMWriter({self.describe()})"

    def write(
        self,
        question: str,
        passages: list[LLMPassage],
        lang: str,
        on_text: Callable[[str], None] | None = None,
    ) -> LLMResult:
        """Ask the LLM to answer ``question`` from ``passages`` in ``lang`` ("en", "fr"), and
        check the answer.

        With ``on_text`` the answer is streamed: ``on_text(text_so_far)`` is called from this
        thread as text arrives, at most once per ``min_interval`` seconds, and once more with
        the complete text if it changed since. That text is not checked yet; render the
        returned result (or the fallback) afterwards. An exception in ``on_text`` is logged
        and stops the updates, not the answer. When streaming, ``timeout`` also bounds the
        whole answer.

        Raises ``LLMFailure`` for any provider fault or failed check; ``ValueError`` when
        ``passages`` is empty.
        """
        if not passages:
            raise ValueError("LLMWriter.write needs at least one passage")
        from llama_index.core.llms import ChatMessage

        system, user = render_prompt(question, passages, lang)
        messages = [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]
        started = time.monotonic()
        try:
            raw = self._stream(messages, on_text, started) if on_text else self._chat(messages)
            text = clean_answer(normalise_citations(_THINK.sub("", raw), len(passages)))
            if not re.search(r"\w", _CITE.sub("", text)):  # nothing, or citations alone
                raise LLMFailure("empty answer")
            if len(text) > MAX_ANSWER_CHARS:
                raise LLMFailure("answer too long")
            if says_story_does_not_say(text):
                raise LLMFailure("the model says the story does not say")
            cited = check_citations(text, len(passages))
            check_quotes(text, passages)
        except Exception as exc:
            reason = failure_reason(exc)
            log.info("LLM %s gave no usable answer after %.0f ms: %s",
                     self.describe(), (time.monotonic() - started) * 1000, reason)
            if not isinstance(exc, LLMFailure):
                detail = self._scrub(f"{type(exc).__name__}: {exc}")
                log.debug("LLM %s failure detail: %s", self.describe(), detail)
            # "from None": the provider's exception may quote the server's reply; keep it out
            # of the traceback of whoever logs this failure.
            raise LLMFailure(reason) from None
        log.debug("LLM %s answered in %.0f ms, citing %s", self.describe(),
                  (time.monotonic() - started) * 1000, list(cited))
        return LLMResult(text=text, cited=cited)

    # --- internals ----------------------------------------------------------------------------
    def _chat(self, messages: list) -> str:
        response = self._llm.chat(messages)
        content = response.message.content
        if content is None:  # e.g. a reply with no message or a tool call instead of text...
            choices = getattr(response.raw, "choices", None)
            if choices and getattr(getattr(choices[0], "message", None), "content", None) == "":
                return ""  # ... but llama-index reads OpenAI's empty reply ("content": "") as None too
            raise LLMFailure("malformed response")
        return content

    def _stream(self, messages: list, on_text: Callable[[str], None], started: float) -> str:
        text = ""
        chunks = 0
        sent: str | None = None
        sent_at: float | None = None
        live = True

        def emit(visible: str) -> None:
            nonlocal sent, sent_at, live
            sent, sent_at = visible, self._clock()
            try:
                on_text(visible)
            except Exception:
                live = False
                log.warning("on_text callback failed; no more streaming updates for this answer",
                            exc_info=True)

        _reply.content_type = None
        stream = self._llm.stream_chat(messages)
        try:
            for chunk in stream:
                chunks += 1
                text += chunk.delta or ""
                if time.monotonic() - started > self.timeout:
                    raise LLMFailure("timeout")
                if len(text) > 2 * MAX_ANSWER_CHARS:  # room for <think> text; no need to read on
                    raise LLMFailure("answer too long")
                if not live:
                    continue
                visible = clean_answer(text)
                if visible and visible != sent and (
                    sent_at is None or self._clock() - sent_at >= self.min_interval
                ):
                    emit(visible)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        # no chunk at all: an event stream that ended at once is an empty answer (``write``
        # says so); any other reply is not a stream (Ollama's always ends with a chunk)
        if chunks == 0 and not (getattr(_reply, "content_type", None) or "").startswith("text/event-stream"):
            raise LLMFailure("malformed response")
        final = clean_answer(text)
        if live and final and final != sent:
            emit(final)
        return text

    def _scrub(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return text[:500]
