"""The ``storybot`` command line. Each command's docstring is its ``--help``."""
from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import click

from bot import __version__
from bot.errors import StorybotError, StoryIndexError, user_message
from bot.terminal import clean_answer, clean_passage, clean_report, clean_story, strip_controls

log = logging.getLogger("storybot")


def _settings(ctx: click.Context, *, log_default: str = "WARNING", needs: tuple[str, ...] = (), **overrides):
    """The settings for this command: a malformed setting outside ``needs`` (chat, discord,
    slack) is logged and left at its default instead of stopping the command."""
    from bot.config import load_settings
    from bot.logs import setup_logging

    obj = ctx.ensure_object(dict)
    settings = load_settings(needs=needs, **{**obj.get("overrides", {}), **overrides})
    setup_logging(settings, "DEBUG" if obj.get("verbose") else None, default=log_default)
    for why in settings.ignored.values():
        log.warning("ignored (this command does not use it): %s", why)
    return settings


def _answerer(settings):
    from bot.answer import Answerer

    return Answerer.from_settings(settings)


class StorybotGroup(click.Group):
    """No traceback reaches a user: every failure ends as one ``Error: ...`` line on stderr
    and exit code 1 (click's usage errors keep code 2). Our error types say what happened
    and what to do; an OS error names the file; anything unexpected says so in one line.
    The trace goes to the log at debug level only (``-v`` or STORYBOT_LOG_LEVEL=debug).
    Output into a pipe whose reader stopped (``storybot eval | head -1``) ends the command
    quietly, with the status of a program stopped by SIGPIPE."""

    def invoke(self, ctx):
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # now, not at exit, where a closed pipe is only "ignored" on stderr
            return result
        except BrokenPipeError:
            _quit_on_closed_pipe()
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, SystemExit, KeyboardInterrupt):
            raise
        except GeneratorExit:
            raise
        except BaseException as exc:  # noqa: BLE001 - the one place a command's failure is reported
            _fail(exc)  # (BaseException: a Rust panic inside chromadb arrives as one)


# the exit status of a program stopped by SIGPIPE, as a shell reports it (128 + 13)
BROKEN_PIPE_STATUS = 141


def _quit_on_closed_pipe() -> None:
    """Exit quietly: whoever read stdout has stopped. As the Python docs' "Note on SIGPIPE"
    does it: stdout goes to devnull, so that flushing it at exit does not fail again (an
    "Exception ignored ... BrokenPipeError" on stderr); click's own handling would exit 1."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(BROKEN_PIPE_STATUS)


def _fail(exc: BaseException) -> None:
    from bot.logs import redact_urls

    if isinstance(exc, (StorybotError, StoryIndexError)):
        text = str(exc)
        log.debug("command failed", exc_info=exc)
    elif isinstance(exc, OSError) and exc.filename:
        text = f"cannot use {exc.filename}: {exc.strerror or exc.__class__.__name__}."
        log.debug("command failed", exc_info=exc)
    else:
        log.debug("unexpected error", exc_info=exc)
        text = (f"something unexpected went wrong ({exc.__class__.__name__}); "
                "run the command again with -v to see the details in the log.")
    # one line, whatever the message held; credentials in a URL never shown
    click.secho(f"Error: {redact_urls(' '.join(text.split()))}", fg="red", err=True)
    sys.exit(1)


def _remember(ctx: click.Context, param: click.Parameter, value):
    """``--stories`` / ``--data-dir`` given after the subcommand: same as before it."""
    if value is not None:
        ctx.ensure_object(dict).setdefault("overrides", {})[param.name] = value
    return value


def folder_options(command):
    """``--stories`` and ``--data-dir`` on a subcommand too (``storybot refresh --stories DIR``)."""
    command = click.option("--data-dir", "data_dir", type=click.Path(path_type=Path), expose_value=False,
                           callback=_remember, help="Index and logs folder (env STORYBOT_DATA_DIR).")(command)
    return click.option("--stories", "stories_dir", type=click.Path(path_type=Path), expose_value=False,
                        callback=_remember, help="Stories folder (env STORYBOT_STORIES).")(command)


@click.group(cls=StorybotGroup)
@click.option("--stories", type=click.Path(path_type=Path), help="Stories folder (env STORYBOT_STORIES).")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Index and logs folder (env STORYBOT_DATA_DIR).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging.")
@click.version_option(__version__, prog_name="storybot", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx, stories, data_dir, verbose):
    """storybot: answers questions about a news story, quoting it word for word."""
    ctx.ensure_object(dict)
    ctx.obj["overrides"] = {"stories_dir": stories, "data_dir": data_dir}
    ctx.obj["verbose"] = verbose


def _progress_printer(console, first: bool):
    """A rich progress bar on a terminal, one plain line otherwise (both on stderr)."""
    if not console.is_terminal:
        console.print("Building the story index…" if first else "Refreshing the story index…")
        return None, None
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    prog = Progress(TextColumn("[bold]indexing"), BarColumn(), TextColumn("{task.completed}/{task.total} sentences"),
                    TimeRemainingColumn(), console=console, transient=True)
    task = prog.add_task("index", total=None)

    def update(done: int, total: int) -> None:
        prog.update(task, completed=done, total=total)

    return prog, update


def _run_refresh(answerer, *, full: bool, first: bool = False):
    from rich.console import Console

    err = Console(stderr=True)
    prog, update = _progress_printer(err, first)
    if prog:
        with prog:
            return answerer.ensure_index(update) if first else answerer.refresh(full=full, progress=update)
    return answerer.ensure_index() if first else answerer.refresh(full=full)


def _ensure_index(answerer) -> None:
    if answerer.store.active() is None:
        report = _run_refresh(answerer, full=False, first=True)
        if report:
            click.echo(report.summary(), err=True)


@cli.command()
@folder_options
@click.argument("question", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (one per line in batch mode).")
@click.option("--story", help="Only this story id.")
@click.pass_context
def ask(ctx, question, as_json, story):
    """Answer QUESTION from the stories, with numbered citations.

    Without QUESTION and with stdin not a terminal, reads one question per line and
    answers each (with --json: one JSON object per line), in one process.
    """
    settings = _settings(ctx)
    answerer = _answerer(settings)
    try:
        _ensure_index(answerer)
        if question is None:
            if sys.stdin.isatty():
                raise click.UsageError("Give a question, or pipe questions in, one per line.")
            for line in sys.stdin:  # one answer per line, blank ones too: output lines match input lines
                _print_answer(_safe_answer(answerer, line.rstrip("\n"), story), as_json)
            return
        if answerer.llm is not None and not as_json:
            _ask_streaming(answerer, question, story)
        else:
            _print_answer(answerer.answer(question, source="cli", story=story), as_json)
    finally:
        answerer.close()


def _ask_streaming(answerer, question: str, story: str | None) -> None:
    """With an LLM: print the written answer as it arrives, then the checked result (the
    streamed text is provisional: a failed check replaces it with the extractive answer; a
    checked one may show its citations otherwise, normalised and renumbered)."""
    from bot.render import print_answer, stdout_console

    shown = {"text": ""}

    def on_text(text: str) -> None:
        if text.startswith(shown["text"]):
            click.echo(strip_controls(text[len(shown["text"]):]), nl=False)
            shown["text"] = text

    answer = answerer.answer(question, source="cli", story=story, on_text=on_text)
    if shown["text"]:
        click.echo()
        if answer.mode == "llm" and answer.text == shown["text"]:
            from dataclasses import replace

            answer = replace(answer, text="")  # already on screen: print only what follows
        elif answer.mode == "llm":  # the same answer, its citation marks as they are listed below
            click.echo("(checked, with its citations numbered as below)")
        else:
            click.echo("(replaced by the checked answer below)")
    print_answer(clean_answer(answer), stdout_console())


def _safe_answer(answerer, question: str, story: str | None):
    """In batch mode one failing question must not lose the others: report it and go on."""
    from bot.types import Answer

    try:
        return answerer.answer(question, source="cli", story=story)
    except Exception as exc:  # noqa: BLE001 - reported per line, trace logged
        if not isinstance(exc, (StorybotError, StoryIndexError)):
            log.error("question failed: %r", question[:80], exc_info=exc)
        return Answer(question=question, text=user_message(exc), abstained=True, mode="error")


def _print_answer(answer, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(answer.to_json(), ensure_ascii=False))
        return
    from bot.render import print_answer

    print_answer(clean_answer(answer))


@cli.command()
@folder_options
@click.pass_context
def chat(ctx):
    """Ask questions interactively (empty line or Ctrl-D to quit).

    A short follow-up ("and Tencent?") is read with the previous question as context."""
    from bot.answer import is_follow_up
    from bot.render import print_answer, stdout_console

    settings = _settings(ctx)
    answerer = _answerer(settings)
    console = stdout_console()
    previous = None
    try:
        _ensure_index(answerer)
        console.print("[bold]storybot[/bold] — ask about the story (empty line to quit).")
        while True:
            try:
                question = console.input("[bold cyan]? [/bold cyan]")
            except (EOFError, KeyboardInterrupt):
                break
            if not question.strip():
                break
            try:
                print_answer(clean_answer(answerer.answer(question, context=previous, source="cli-chat")), console)
                if previous is None or not is_follow_up(question):
                    previous = question  # a chain of follow-ups keeps the topic they follow
            except (StorybotError, StoryIndexError) as exc:
                from rich.text import Text

                console.print(Text(str(exc), style="red"))
    finally:
        answerer.close()


@cli.command()
@folder_options
@click.option("--full", is_flag=True, help="Re-embed everything (after changing EMBED_MODEL).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def refresh(ctx, full, as_json):
    """Re-read the stories and update the index: only changed text is embedded again,
    and the new index replaces the old one at once."""
    settings = _settings(ctx)
    answerer = _answerer(settings)
    try:
        report = answerer.refresh(full=full) if as_json else _run_refresh(answerer, full=full)
    finally:
        answerer.close()
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        click.echo(report.summary())


@cli.command()
@folder_options
@click.argument("question")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(min=1), help="How many passages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def search(ctx, question, k, as_json):
    """Print the passages ranked for QUESTION, with their dense and keyword scores."""
    from index.search import search as run_search

    settings = _settings(ctx)
    answerer = _answerer(settings)
    try:
        _ensure_index(answerer)
        passages = run_search(answerer.store, question, k=k)
    finally:
        answerer.close()
    if as_json:
        click.echo(json.dumps([{"rank": p.rank, "chunk": p.chunk_id, "score": p.score, "dense": p.dense,
                                "keyword": p.keyword, "title": p.title, "section": p.section, "text": p.text}
                               for p in passages], ensure_ascii=False))
        return
    from bot.render import print_passages

    print_passages([clean_passage(p) for p in passages])


@cli.command(name="eval")
@folder_options
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the metrics (and rows) as JSON.")
@click.option("--rows", is_flag=True, help="Also list every question.")
@click.option("--add-stories", "extra", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Add this folder's stories to the configured ones (repeatable); the index is then "
                   "built in a temporary folder, for a multi-story evaluation.")
@click.pass_context
def eval_cmd(ctx, file, as_json, rows, extra):
    """Score answers on FILE (JSON lines with "q" and "gold"): the answer's hit@1, hit@3
    and MRR beside plain retrieval's top passage, high / low / none outcomes, refusals and
    latency."""
    import tempfile

    from bot.evaluate import combined_stories, evaluate, load_questions

    questions = load_questions(file)
    with tempfile.TemporaryDirectory(prefix="storybot-eval-") as tmp:
        overrides = {"log_answers": False}
        if extra:
            base = _settings(ctx, log_answers=False).stories_dir
            overrides.update(stories_dir=combined_stories(base, list(extra), Path(tmp) / "stories"),
                             data_dir=Path(tmp) / "data")
        settings = _settings(ctx, **overrides)
        if extra:  # a temporary embedded index, even when the configured one is on a Chroma server
            settings = settings.model_copy(update={"chroma_host": None})
        with _answerer(settings) as answerer:
            _ensure_index(answerer)
            result = evaluate(answerer, questions)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    from bot.render import print_eval

    print_eval(result, rows=rows)


def _open_log(settings):
    from bot.answerlog import AnswerLog

    path = Path(settings.data_dir) / "answers.sqlite3"
    if not path.exists():
        raise StorybotError(f"No answers logged yet in {settings.data_dir}.")
    return AnswerLog(path, keep_days=settings.log_days)


def _since(ctx, param, value):
    if value is None:
        return None
    from bot.answerlog import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command()
@folder_options
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1),
              help="How many questions to list.")
@click.option("--since", callback=_since, metavar="WHEN",
              help="Only answers from then on: a duration back from now (7d, 12h, 2w) or a date (2026-01-31).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def report(ctx, limit, since, as_json):
    """The questions the bot could not answer most often, and answer/vote counts."""
    settings = _settings(ctx)
    alog = _open_log(settings)
    try:
        data = alog.report(limit, since=since)
    finally:
        alog.close()
    if as_json:
        click.echo(json.dumps({"version": __version__, **data}, ensure_ascii=False))
        return
    from bot.render import print_report

    click.echo(f"storybot {__version__}")
    print_report(clean_report(data))


@cli.command()
@folder_options
@click.option("--user", "user", required=True, metavar="ID",
              help="The person's id as the platform gives it, optionally prefixed discord: or slack:.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def forget(ctx, user, as_json):
    """Delete one person's questions and votes from the answer log (a request to be
    forgotten). Older rows go by themselves after STORYBOT_LOG_DAYS days."""
    if not user.strip() or user.strip().endswith(":"):
        raise click.BadParameter("give the user's id, e.g. 123456789012345678 or slack:U0123ABCD", param_hint="--user")
    settings = _settings(ctx)
    alog = _open_log(settings)
    try:
        answers, votes = alog.forget(user)
    finally:
        alog.close()
    if as_json:
        click.echo(json.dumps({"user": user.strip(), "answers": answers, "votes": votes}))
    else:
        click.echo(f"Deleted {answers} question(s) and {votes} vote(s) of {user.strip()}.")


@cli.command()
@folder_options
@click.option("--clear-guild-commands", "clear_guild", type=click.IntRange(min=1), metavar="GUILD_ID",
              help="Remove the bot's slash commands from that one server and exit (no bot runs): "
                   "the copies a DISCORD_GUILD_ID sync left, which show twice beside the global ones.")
@click.pass_context
def discord(ctx, clear_guild):
    """Run the Discord bot (needs DISCORD_TOKEN; see README "Discord").

    With the embedded index it watches the stories folder and refreshes the index when
    stories are added or changed (STORYBOT_WATCH)."""
    from bot.discord_app import clear_guild_commands, run_discord

    settings = _settings(ctx, log_default="INFO", needs=("chat", "discord"))
    settings.require("Discord")  # a missing token fails before the index is opened
    if clear_guild is not None:
        clear_guild_commands(settings, clear_guild)
        click.echo(f"Removed the bot's slash commands from server {clear_guild}.")
        return
    _run_bot("Discord", settings, lambda answerer: run_discord(settings, answerer))


@cli.command()
@folder_options
@click.option("--http", is_flag=True, help="HTTP mode (Events API) instead of Socket Mode.")
@click.option("--port", default=3000, show_default=True, type=click.IntRange(0, 65535),
              help="HTTP mode port (0: any free port).")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP mode address.")
@click.pass_context
def slack(ctx, http, port, host):
    """Run the Slack bot: Socket Mode by default (SLACK_BOT_TOKEN + SLACK_APP_TOKEN), or
    --http with request signature checks (SLACK_SIGNING_SECRET)."""
    from bot.slack_app import run_slack

    settings = _settings(ctx, log_default="INFO", needs=("chat", "slack"))
    settings.require("Slack HTTP mode" if http else "Slack Socket Mode")  # before the index is opened
    _run_bot("Slack", settings,
             lambda answerer: run_slack(settings, answerer, http=http, port=port, host=host))


def _run_bot(platform: str, settings, run) -> None:
    """Log the start-up line, open the index, watch the stories folder when STORYBOT_WATCH
    says so, and run the bot until it stops."""
    from bot.watch import StoryWatcher

    mode = (f"Chroma server {settings.chroma_host}" if settings.chroma_host
            else f"embedded index in {settings.data_dir}")
    log.info("storybot %s starting the %s bot (%s, stories in %s)", __version__, platform, mode,
             settings.stories_dir)
    answerer = _answerer(settings)
    watcher = StoryWatcher(answerer, settings.stories_dir) if settings.watch_stories else None
    _stop_on_sigterm()
    try:
        if watcher is not None:
            watcher.start()
        run(answerer)
    finally:
        if watcher is not None:
            watcher.stop()
        answerer.close()
        log.info("storybot stopped the %s bot", platform)


def _stop_on_sigterm() -> None:
    """Stop on SIGTERM as on Ctrl-C: the chat connection closes, the index is closed. A
    service manager (systemd, ``docker stop``) stops a process with SIGTERM, whose default
    ends it at once; and a bot started in the background by a script never gets SIGINT at
    all (the shell ignores it for background jobs)."""
    import signal
    import threading

    def interrupt(signum, frame):
        on_ctrl_c = signal.getsignal(signal.SIGINT)
        if callable(on_ctrl_c) and on_ctrl_c is not signal.default_int_handler:
            on_ctrl_c(signum, frame)  # asyncio.run's: it cancels the bot's task, which closes its connection
        else:
            raise KeyboardInterrupt  # what Ctrl-C does outside asyncio, or when SIGINT is ignored

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)


@cli.command()
@click.argument("folder", required=False, default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite the files init writes if they exist.")
def init(folder, force):
    """Make FOLDER (default: here) a storybot folder: stories/ with the sample story, and a
    .env listing every setting, commented. Refuses to overwrite files unless --force."""
    from bot.init import init_folder, next_steps

    init_folder(folder, force=force)
    click.echo(next_steps(folder))


@cli.command()
@folder_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@click.pass_context
def stories(ctx, as_json):
    """List the stories in the index: id (for --story and story:), title, outlet, date,
    chunks and when the index was last refreshed. Builds the index if there is none."""
    from bot.stories import list_stories

    settings = _settings(ctx)
    answerer = _answerer(settings)
    try:
        _ensure_index(answerer)
        infos = list_stories(answerer.store.snapshot())
    finally:
        answerer.close()
    if as_json:
        click.echo(json.dumps([i.to_json() for i in infos], ensure_ascii=False))
        return
    import time

    from rich.table import Column, Table

    from bot.render import stdout_console

    table = Table("title", "outlet", "date", "chunks", "last refresh")
    table.columns.insert(0, Column("id", no_wrap=True))  # ids are typed back: never cut
    for i in map(clean_story, infos):
        refreshed = time.strftime("%Y-%m-%d %H:%M", time.localtime(i.refreshed_at)) if i.refreshed_at else ""
        table.add_row(i.id, i.title, i.outlet, i.date, str(i.chunks), refreshed)
    stdout_console().print(table)


def main() -> None:
    cli(prog_name="storybot")


if __name__ == "__main__":
    main()
