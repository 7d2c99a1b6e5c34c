"""Settings, secret redaction in logs, text splitting, rate limiting, prompt rendering."""
import logging

import pytest

import prompts
from bot.config import load_settings
from bot.errors import ConfigError, RateLimited
from bot.logs import setup_logging
from bot.ratelimit import RateLimiter
from bot.render import split_text


def test_settings_from_environment_and_dotenv(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("STORYBOT_RATE=3/10\nSLACK_ADMINS=U1, U2\n", encoding="utf-8")
    monkeypatch.setenv("STORYBOT_ADMINS", "111 222,333")
    monkeypatch.setenv("CHROMA_HEADERS", '{"Authorization": "Bearer abc"}')
    s = load_settings()
    assert s.rate_limit == (3, 10.0)
    assert s.admins == ["111", "222", "333"] and s.slack_admins == ["U1", "U2"]
    assert s.chroma_header_dict == {"Authorization": "Bearer abc"}
    assert load_settings(rate="0").rate_limit == (0, 0.0)


def test_a_malformed_setting_names_the_key_what_it_got_never_a_secret(monkeypatch):
    monkeypatch.setenv("CHROMA_PORT", "not-a-port")
    monkeypatch.setenv("CHROMA_HEADERS", "{s3cr3t")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "CHROMA_PORT: got 'not-a-port'" in str(err.value) and "Example: CHROMA_PORT=8000" in str(err.value)
    assert "CHROMA_HEADERS" in str(err.value) and "s3cr3t" not in str(err.value)
    monkeypatch.delenv("CHROMA_PORT")
    with pytest.raises(ConfigError, match="LLM_PROVIDER"):
        load_settings(llm_provider="skynet")


def test_secrets_never_reach_the_log(monkeypatch, capsys):
    token = "MTIzNDU2Nzg5MDEy.Gabcde.very-secret-token-value"
    monkeypatch.setenv("DISCORD_TOKEN", token)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1234-secret")
    setup_logging(load_settings(), "INFO")
    log = logging.getLogger("redaction-test")
    log.setLevel(logging.INFO)
    log.info("connecting with %s", token)
    try:
        raise RuntimeError("bad auth xoxb-1234-secret")
    except RuntimeError:
        log.exception("failed")
    err = capsys.readouterr().err
    assert "connecting with ***" in err and "bad auth ***" in err
    assert token not in err and "xoxb-1234-secret" not in err


def test_split_text_keeps_words_whole_and_within_limit():
    text = " ".join(f"mot{i}" for i in range(500))
    parts = split_text(text, 100)
    assert all(len(p) <= 100 for p in parts)
    assert " ".join(parts) == text
    assert split_text("a\n\nb", 10) == ["a\n\nb"]
    assert split_text("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]  # only a giant word is cut
    # room for a heading over the first piece: it alone is shorter
    assert split_text("aaa bbb ccc ddd", 8, first=4) == ["aaa", "bbb ccc", "ddd"]
    assert split_text("x" * 12, 8, first=3) == ["xxx", "x" * 8, "x"]


def test_rate_limiter_with_a_fake_clock():
    now = [0.0]
    rl = RateLimiter(2, 60, clock=lambda: now[0])
    rl.check("u")
    rl.check("u")
    rl.check("other")
    with pytest.raises(RateLimited) as err:
        rl.check("u")
    assert 59 <= err.value.retry_after <= 60 and "wait 60 s" in str(err.value)
    now[0] = 61
    rl.check("u")
    RateLimiter(0, 0).check("u")  # disabled


def test_prompts_render_strictly_in_both_languages():
    assert "Baidu" in prompts.render("not_in_story", "en", topic="Baidu")
    assert prompts.render("not_in_story", "fr", topic="x").startswith("L’article")
    assert prompts.render("not_in_story", "de", topic="x").startswith("The story")
    with pytest.raises(KeyError):
        prompts.render("not_in_story", "en")


def test_every_setting_is_documented_in_env_example_and_the_example_loads(monkeypatch, tmp_path):
    import shutil

    from bot.config import Settings
    from tests.conftest import REPO

    example = (REPO / ".env.example").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        env_name = field.validation_alias.choices[0]
        assert f"{env_name}=" in example, f"{env_name} missing from .env.example"
    shutil.copy(REPO / ".env.example", tmp_path / ".env")
    s = load_settings()
    assert s.embed_model == "e5" and s.llm_provider == "none" and s.rate_limit == (5, 60.0)


@pytest.mark.parametrize("name,value", [("STORYBOT_RATE", "abc"), ("STORYBOT_RATE", "5/0"),
                                        ("CHROMA_HEADERS", "{not json")])
def test_malformed_rate_and_headers_are_config_errors(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()


def test_chroma_header_values_are_redacted_on_their_own(monkeypatch, capsys):
    monkeypatch.setenv("CHROMA_HEADERS", '{"Authorization": "Bearer tok-123456"}')
    setup_logging(load_settings(), "INFO")
    log = logging.getLogger("redaction-test-2")
    log.setLevel(logging.INFO)
    log.info("sending Bearer tok-123456")
    assert "tok-123456" not in capsys.readouterr().err


def test_url_credentials_are_redacted_in_every_log_line(capsys):
    setup_logging(load_settings(), "INFO")
    log = logging.getLogger("redaction-test-3")
    log.setLevel(logging.INFO)
    log.warning("could not reach %s", "https://alice:hunter22@chroma.example:8000/api")
    try:
        raise ConnectionError("GET redis://:pw-in-url@cache:6379/0 failed")
    except ConnectionError:
        log.exception("backend down")
    err = capsys.readouterr().err
    assert "https://***@chroma.example:8000/api" in err and "redis://***@cache" in err
    assert "hunter22" not in err and "alice" not in err and "pw-in-url" not in err


def test_tracebacks_reach_the_log_only_at_debug_level(capsys):
    log = logging.getLogger("trace-test")
    for level, traced in (("INFO", False), ("DEBUG", True)):
        setup_logging(load_settings(), level)
        try:
            raise ValueError("the reason")
        except ValueError:
            log.error("it failed")
            log.exception("it failed again")
        err = capsys.readouterr().err
        assert ("Traceback" in err) is traced
        assert "it failed again (ValueError: the reason)" in err or traced
        assert len(err.strip().splitlines()) == (2 if not traced else len(err.strip().splitlines()))


def test_terminal_text_loses_escape_sequences_and_controls_but_keeps_letters():
    from bot.terminal import strip_controls

    hostile = "Titre \x1b[31mrouge\x1b[0m \x1b]0;pwned\x07fin\x1b]8;;http://evil\x1b\\lien\x9b2J é’\t\n\r\x08"
    assert strip_controls(hostile) == "Titre rouge finlien é’\t\n"
    assert strip_controls("Les premières discussions avec Baidu") == "Les premières discussions avec Baidu"


def test_chat_typed_questions_print_as_plain_text_in_the_report(capsys):
    from bot.render import print_report
    from bot.terminal import clean_report

    data = {"answers": 1, "abstained": 1, "votes_up": 0, "votes_down": 0, "by_source": {"discord": 1},
            "top_abstained": [{"question": "[link=https://evil.example]click[/link] \x1b]0;x\x07[bold]hi", "count": 1}]}
    print_report(clean_report(data))
    out = capsys.readouterr().out
    assert "[link=https://evil.example]click[/link]" in out and "[bold]hi" in out  # shown, not obeyed
    assert "\x1b" not in out
