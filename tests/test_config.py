"""Settings that forgive: empty values mean unset, a malformed value names the setting, what
it got and an example, and stops only the commands that use it. The generated
.env.example and docs/configuration.md match the settings object."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.config import SECTIONS, Settings, env_example_text, env_name, load_settings, markdown_text
from bot.errors import ConfigError
from tests.conftest import REPO

KEY_LINE = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$")


def test_every_setting_is_in_exactly_one_section_with_docs_and_an_example():
    listed = [name for _, _, names in SECTIONS for name in names]
    assert sorted(listed) == sorted(Settings.model_fields) and len(listed) == len(set(listed))
    for name, field in Settings.model_fields.items():
        assert field.description and field.json_schema_extra["example"], name


def test_committed_env_example_and_configuration_page_match_the_settings_object():
    assert (REPO / ".env.example").read_text(encoding="utf-8") == env_example_text(), \
        "run: python -m bot.config --env-example > .env.example"
    assert (REPO / "docs" / "configuration.md").read_text(encoding="utf-8") == markdown_text(), \
        "run: python -m bot.config --markdown > docs/configuration.md"
    page = markdown_text()
    for name in Settings.model_fields:
        assert f"| `{env_name(name)}` |" in page


def test_every_key_line_of_env_example_is_a_setting_and_every_setting_has_one():
    keys = [m.group(1) for line in env_example_text().splitlines() if (m := KEY_LINE.match(line))]
    assert sorted(keys) == sorted(env_name(n) for n in Settings.model_fields)


def test_uncommenting_every_line_of_env_example_unchanged_loads_for_ask(tmp_path):
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    uncommented = [m.group(1) + "=" + m.group(2) if (m := KEY_LINE.match(line)) else line for line in lines]
    assert sum(1 for line in uncommented if re.match(r"^[A-Z_]+=", line)) == len(Settings.model_fields)
    (tmp_path / ".env").write_text("\n".join(uncommented) + "\n", encoding="utf-8")
    for needs in ((), ("chat", "discord"), ("chat", "slack"), None):
        settings = load_settings(needs=needs)
        assert settings.ignored == {}
    assert settings.discord_guild_id is None and settings.chroma_host is None  # empty = unset
    assert settings.embed_model == "e5" and settings.rate_limit == (5, 60.0)


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_an_empty_value_means_unset_in_dotenv_and_environment(tmp_path, monkeypatch, name):
    monkeypatch.delenv("STORYBOT_DATA_DIR")
    default = load_settings(_env_file=None)
    (tmp_path / ".env").write_text(f"{env_name(name)}=\n", encoding="utf-8")
    assert getattr(load_settings(), name) == getattr(default, name)
    (tmp_path / ".env").unlink()
    monkeypatch.setenv(env_name(name), "")
    assert getattr(load_settings(), name) == getattr(default, name)


def test_a_malformed_discord_setting_stops_only_the_discord_command(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("DISCORD_GUILD_ID=my-server\nSTORYBOT_RATE=lots\n", encoding="utf-8")
    settings = load_settings(needs=())
    assert settings.discord_guild_id is None and settings.rate == "5/60"
    assert set(settings.ignored) == {"DISCORD_GUILD_ID", "STORYBOT_RATE"}
    with pytest.raises(ConfigError) as err:
        load_settings(needs=("chat", "discord"))
    text = str(err.value)
    assert "DISCORD_GUILD_ID: got 'my-server'" in text
    assert "Example: DISCORD_GUILD_ID=123456789012345678" in text
    assert "STORYBOT_RATE: got 'lots'" in text and "5/60" in text
    # a Slack bot does not care about Discord's setting, only about the shared chat one
    with pytest.raises(ConfigError) as err:
        load_settings(needs=("chat", "slack"))
    assert "STORYBOT_RATE" in str(err.value) and "DISCORD_GUILD_ID" not in str(err.value)

    # through the CLI: the discord command fails on it before it needs a token or the index
    monkeypatch.setenv("DISCORD_TOKEN", "x" * 30 + ".abcdef.ghijklmnop")
    out = CliRunner().invoke(cli, ["discord"])
    assert out.exit_code == 1 and "DISCORD_GUILD_ID: got 'my-server'" in out.output


def test_an_api_url_with_a_password_stops_its_bot_and_hides_the_password(monkeypatch):
    monkeypatch.setenv("SLACK_API_URL", "http://me:hunter2@127.0.0.1:9/api/")
    monkeypatch.setenv("DISCORD_GATEWAY_URL", "gateway.example")
    with pytest.raises(ConfigError) as err:
        load_settings(needs=("chat", "slack"))
    text = str(err.value)
    assert "SLACK_API_URL: got 'http://***@127.0.0.1:9/api/'" in text and "user:password@" in text
    assert "hunter2" not in text and "DISCORD_GATEWAY_URL" not in text
    with pytest.raises(ConfigError) as err:
        load_settings(needs=("chat", "discord"))
    assert "DISCORD_GATEWAY_URL: got 'gateway.example'; it must be a full URL" in str(err.value)
    assert load_settings(needs=()).slack_api_url == "https://slack.com/api/"  # ask does not care


@pytest.mark.parametrize("name,value,says", [
    ("STORYBOT_LOG_LEVEL", "LOUD", "one of DEBUG, INFO"),
    ("CHROMA_TIMEOUT", "inf", "finite"),
    ("CHROMA_PORT", "70000", "65535"),
    ("STORYBOT_MIN_SCORE", "nan", "finite"),
    ("STORYBOT_MIN_SCORE", "2", "less than or equal to 1"),
    ("CHROMA_HEADERS", "Authorization Bearer s3cr3t", "'Name: value"),  # no colon: no header was sent
])
def test_out_of_range_values_are_named_not_met_later(monkeypatch, name, value, says):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        load_settings(needs=())
    assert f"{name}: got " in str(err.value) and says in str(err.value) and "s3cr3t" not in str(err.value)


def test_chroma_headers_are_read_once_when_the_settings_are_built(monkeypatch):
    """The check and the use read CHROMA_HEADERS with one parser, once: the setting holds
    the headers (each Store.open and the log redaction parsed the text again)."""
    import bot.config

    reads = []

    def counting(text, *args, **kwargs):
        reads.append(text)
        return json.loads(text, *args, **kwargs)

    monkeypatch.setattr(bot.config, "json", type("CountingJson", (), {"loads": staticmethod(counting)}))
    monkeypatch.setenv("CHROMA_HEADERS", '{"Authorization": "Bearer abc", "X-Tenant": 7}')
    settings = load_settings(needs=())
    for _ in range(2):
        assert settings.chroma_header_dict == {"Authorization": "Bearer abc", "X-Tenant": "7"}
    assert len(reads) == 1
    assert "abc" not in repr(settings)
    monkeypatch.setenv("CHROMA_HEADERS", "Authorization: Bearer abc; X-Tenant: 7")
    assert load_settings(needs=()).chroma_header_dict == {"Authorization": "Bearer abc", "X-Tenant": "7"}


def test_a_malformed_core_setting_stops_every_command_and_hides_secrets(monkeypatch):
    monkeypatch.setenv("EMBED_BATCH", "0")
    monkeypatch.setenv("LLM_API_KEY", "")  # empty: unset, not an error
    monkeypatch.setenv("CHROMA_HEADERS", "{not-json-t0ken")
    with pytest.raises(ConfigError) as err:
        load_settings(needs=())
    text = str(err.value)
    assert "EMBED_BATCH: got '0'" in text and "Example: EMBED_BATCH=32" in text
    assert "CHROMA_HEADERS: got a value (hidden" in text and "t0ken" not in text


def test_watch_defaults_on_embedded_off_with_a_server_unless_set(monkeypatch):
    assert load_settings().watch_stories is True
    assert load_settings(chroma_host="127.0.0.1").watch_stories is False
    assert load_settings(chroma_host="127.0.0.1", watch=True).watch_stories is True
    monkeypatch.setenv("STORYBOT_WATCH", "false")
    assert load_settings().watch_stories is False


def test_stories_default_to_the_working_folder_else_the_shipped_sample(tmp_path):
    from bot.data import sample_stories

    assert load_settings().stories_dir == sample_stories()  # the test's cwd has no stories/
    assert any(sample_stories().glob("*.txt"))
    (tmp_path / "stories").mkdir()
    assert load_settings().stories_dir.resolve() == (tmp_path / "stories").resolve()


def test_storybot_ask_runs_with_every_line_of_env_example_uncommented(tmp_path):
    lines = (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
    uncommented = [m.group(1) + "=" + m.group(2) if (m := KEY_LINE.match(line)) else line for line in lines]
    (tmp_path / ".env").write_text("\n".join(uncommented) + "\n", encoding="utf-8")
    out = CliRunner().invoke(cli, ["ask", "--json", "why not Baidu?"])
    assert out.exit_code == 0, out.output
    assert "Baidu" in out.stdout and "Invalid setting" not in out.output
