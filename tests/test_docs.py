"""Every `storybot ...` command line shown in README.md and docs/*.md parses: each goes
through click's own parser (``make_context``) without running, so a renamed option or a
command the CLI lacks fails here, not in a reader's terminal."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from bot.cli import cli
from tests.conftest import REPO

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
SPAN = re.compile(r"`([^`\n]+)`")
SEPARATORS = re.compile(r"\s*(?:&&|\\\||\||;)\s*")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def commands_in(line: str) -> list[list[str]]:
    """The storybot invocations of one shell line or code span: after an optional ``$``
    prompt and ``VAR=value`` prefixes, in each part of a ``&&`` / ``|`` / ``;`` chain.
    Usage notation (``[--full]``, ``…``) is read as the option written out."""
    found = []
    for part in SEPARATORS.split(line.strip().removeprefix("$ ")):
        part = part.replace("[", " ").replace("]", " ").replace("…", " ")
        try:
            tokens = shlex.split(part, comments=True)
        except ValueError:
            continue  # prose with an apostrophe, not a command
        while tokens and ASSIGNMENT.match(tokens[0]):
            tokens.pop(0)
        if len(tokens) > 1 and tokens[0] == "storybot":
            found.append(tokens[1:])
    return found


def documented_commands() -> list[tuple[str, list[str]]]:
    out = []
    for path in doc_files():
        text = path.read_text(encoding="utf-8")
        for block in FENCE.findall(text):
            for line in block.splitlines():
                out += [(f"{path.name}: {line.strip()}", args) for args in commands_in(line)]
        for span in SPAN.findall(FENCE.sub("", text)):
            out += [(f"{path.name}: `{span}`", args) for args in commands_in(span)]
    return out


def parse(args: list[str]) -> None:
    """Parse like ``storybot ARGS`` would, group then subcommand, without running anything."""
    try:
        ctx = cli.make_context("storybot", list(args))
        rest = [*getattr(ctx, "_protected_args", []), *ctx.args]
        if rest:
            name, command, sub_args = cli.resolve_command(ctx, rest)
            if len(args) == 1:
                return  # a command named in prose ("`storybot eval` scores..."): it exists
            command.make_context(name, sub_args, parent=ctx)
    except click.exceptions.Exit as done:  # --help, --version
        assert done.exit_code == 0
    except click.BadParameter as exc:
        if "does not exist" not in exc.format_message():  # a file named in prose need not exist here
            raise


def test_the_docs_show_storybot_commands():
    commands = documented_commands()
    assert len(commands) >= 10
    assert {"ask", "refresh", "discord", "slack"} <= {args[0] for _, args in commands if args}


@pytest.mark.parametrize("where,args", documented_commands(), ids=lambda v: v if isinstance(v, str) else None)
def test_documented_command_parses(where, args, monkeypatch):
    monkeypatch.chdir(REPO)
    try:
        parse(args)
    except click.UsageError as exc:
        pytest.fail(f"{where}\n  -> {exc.format_message()}")


@pytest.mark.parametrize("args", [["nope"], ["ask", "--bogus", "q"], ["slack", "--port", "N"],
                                  ["refresh", "extra"], ["stories", "--story", "x"]])
def test_the_parser_check_catches_usage_errors(args, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(click.UsageError):
        parse(args)


def test_folder_options_work_before_and_after_the_subcommand():
    line = "STORYBOT_STORIES=/srv/stories storybot refresh --json  # cron"
    assert commands_in(line) == [["refresh", "--json"]]
    parse(["--stories", "x", "refresh"])
    parse(["refresh", "--stories", "x", "--data-dir", "y"])
