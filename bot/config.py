"""One typed settings object, built once at start-up.

Precedence: explicit arguments > environment > ``.env`` file > defaults. The rest of the
code receives a ``Settings`` (or plain values taken from it) and never reads ``os.environ``.
Every key is documented in ``.env.example``.
"""
from __future__ import annotations

import json
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator
from typing import Annotated

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Lists come from the environment as "id1,id2 id3", not JSON.
IdList = Annotated[list[str], NoDecode]

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STORIES = REPO_ROOT / "stories"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """All of storybot's configuration. Field docs mirror ``.env.example``."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    # --- stories and index -------------------------------------------------------------
    stories_dir: Path = Field(DEFAULT_STORIES, validation_alias=_env("STORYBOT_STORIES"))
    data_dir: Path = Field(Path(".storybot"), validation_alias=_env("STORYBOT_DATA_DIR"))
    embed_model: str = Field("e5", validation_alias=_env("EMBED_MODEL"))
    embed_base_url: str | None = Field(None, validation_alias=_env("EMBED_BASE_URL"))
    embed_api_key: SecretStr | None = Field(None, validation_alias=_env("EMBED_API_KEY"))
    embed_input_type: bool = Field(False, validation_alias=_env("EMBED_INPUT_TYPE"))
    embed_batch: int = Field(64, ge=1, le=4096, validation_alias=_env("EMBED_BATCH"))
    chunk_max_chars: int = Field(1500, ge=200, validation_alias=_env("STORYBOT_CHUNK_MAX_CHARS"))
    max_story_bytes: int = Field(1_000_000, ge=1, validation_alias=_env("STORYBOT_MAX_STORY_BYTES"))

    # --- Chroma server mode (unset CHROMA_HOST = embedded store in data_dir) -----------
    chroma_host: str | None = Field(None, validation_alias=_env("CHROMA_HOST"))
    chroma_port: int = Field(8000, validation_alias=_env("CHROMA_PORT"))
    chroma_ssl: bool = Field(False, validation_alias=_env("CHROMA_SSL"))
    chroma_headers: SecretStr | None = Field(None, validation_alias=_env("CHROMA_HEADERS"))
    chroma_timeout: float = Field(30.0, gt=0, validation_alias=_env("CHROMA_TIMEOUT"))

    # --- answering ------------------------------------------------------------------------
    top_k: int = Field(3, ge=1, le=10, validation_alias=_env("STORYBOT_TOP_K"))
    min_score: float = Field(0.76, validation_alias=_env("STORYBOT_MIN_SCORE"))
    max_question_chars: int = Field(1000, ge=20, validation_alias=_env("STORYBOT_MAX_QUESTION_CHARS"))
    log_answers: bool = Field(True, validation_alias=_env("STORYBOT_LOG_ANSWERS"))
    log_days: float = Field(90, ge=0, validation_alias=_env("STORYBOT_LOG_DAYS"))

    # --- LLM answers (none = extractive, offline) --------------------------------------
    llm_provider: str = Field("none", validation_alias=_env("LLM_PROVIDER"))
    llm_model: str | None = Field(None, validation_alias=_env("LLM_MODEL"))
    llm_base_url: str | None = Field(None, validation_alias=_env("LLM_BASE_URL"))
    llm_api_key: SecretStr | None = Field(None, validation_alias=_env("LLM_API_KEY"))
    llm_timeout: float = Field(20.0, gt=0, validation_alias=_env("LLM_TIMEOUT"))

    # --- chat, shared ---------------------------------------------------------------------
    rate: str = Field("5/60", validation_alias=_env("STORYBOT_RATE"))
    admins: IdList = Field(default_factory=list, validation_alias=_env("STORYBOT_ADMINS"))
    log_level: str | None = Field(None, validation_alias=_env("STORYBOT_LOG_LEVEL"))

    # --- Discord --------------------------------------------------------------------------
    discord_token: SecretStr | None = Field(None, validation_alias=_env("DISCORD_TOKEN"))
    discord_guild_id: int | None = Field(None, validation_alias=_env("DISCORD_GUILD_ID"))
    discord_api_base: str | None = Field(None, validation_alias=_env("DISCORD_API_BASE"))
    discord_gateway_url: str | None = Field(None, validation_alias=_env("DISCORD_GATEWAY_URL"))

    # --- Slack ----------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_app_token: SecretStr | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_signing_secret: SecretStr | None = Field(None, validation_alias=_env("SLACK_SIGNING_SECRET"))
    slack_admins: IdList = Field(default_factory=list, validation_alias=_env("SLACK_ADMINS"))
    slack_api_url: str | None = Field(None, validation_alias=_env("SLACK_API_URL"))

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
            raise ValueError("STORYBOT_RATE must look like 5/60 (questions per seconds), or 0 for no limit")
        return text

    @field_validator("chroma_headers")
    @classmethod
    def _headers(cls, v):
        if v is not None:
            raw = v.get_secret_value().strip() if isinstance(v, SecretStr) else str(v).strip()
            if raw.startswith("{"):
                try:
                    if not isinstance(json.loads(raw), dict):
                        raise ValueError
                except ValueError:
                    raise ValueError("CHROMA_HEADERS must be a JSON object or 'Name: value; Name2: value'") from None
        return v

    @field_validator("llm_provider")
    @classmethod
    def _provider(cls, v: str) -> str:
        v = (v or "none").strip().lower()
        if v not in {"none", "openai", "openai-like", "ollama"}:
            raise ValueError("LLM_PROVIDER must be one of: none, openai, openai-like, ollama")
        return v

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
        """``CHROMA_HEADERS`` as a dict: JSON object or ``Name: value; Name2: value``."""
        if not self.chroma_headers:
            return {}
        raw = self.chroma_headers.get_secret_value().strip()
        if raw.startswith("{"):
            return {str(k): str(v) for k, v in json.loads(raw).items()}
        out = {}
        for part in raw.split(";"):
            if ":" in part:
                k, _, v = part.partition(":")
                out[k.strip()] = v.strip()
        return out


def _positive_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False


def load_settings(**overrides) -> Settings:
    """Build the settings; ``overrides`` (from CLI options) win over everything else.

    Raises ``ConfigError`` naming the offending setting (never its value) when a value is
    malformed.
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from bot.errors import ConfigError

    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**clean)
    except SettingsError as exc:
        raise ConfigError(f"Invalid setting: {str(exc).split('field')[-1].split('from')[0].strip()}") from None
    except ValidationError as exc:
        names = ", ".join(
            ".".join(str(p) for p in err.get("loc", ())) or "?" for err in exc.errors()
        )
        msgs = "; ".join(err.get("msg", "") for err in exc.errors())
        raise ConfigError(f"Invalid setting(s): {names}: {msgs}") from None
