"""The commands README.md and docs/ show work as written.

Every ``costspan`` command in a shell block of the documentation names the command the way it is installed
(``.venv/bin/costspan`` in the checkout, ``/opt/costspan/bin/costspan`` where deploy/README.md installs it)
and parses with the real ``costspan`` argument parser: its subcommand exists and takes the flags given.
Commands quoted in the prose are parsed too. The README's safe commands (pricing, config check) are run, and
the quote's output is the JSON the README shows.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from costspan.collector.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
COSTSPAN = Path(sys.executable).with_name("costspan")
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "deploy" / "README.md"]
INSTALLED = (".venv/bin/costspan", "/opt/costspan/bin/costspan")
SHELL = {"sh", "bash", "shell", "console", ""}  # "": a block of commands and what they print
_FENCE = re.compile(r"^```(\w*)\s*$")
_SEPARATORS = {"&&", "||", "|", ";", "&"}
_REDIRECTS = {"<", ">", ">>", "2>", "2>&1"}


def shell_blocks(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each shell code block's lines."""
    blocks: list[tuple[int, str]] = []
    language, start, lines = None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = _FENCE.match(line.strip())
        if fence and language is None:
            language, start, lines = fence.group(1), number, []
        elif fence:
            if language in SHELL:
                blocks.append((start + 1, "\n".join(lines)))
            language = None
        elif language is not None:
            lines.append(line)
    return blocks


def shell_commands(text: str) -> list[list[str]]:
    """The simple commands of a block: lines joined where a backslash or an open quote continues them,
    split at ``&&``, pipes and ``;``, redirections dropped, ``$ `` prompts and comments removed."""
    commands: list[list[str]] = []
    pending = ""
    for line in text.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        lexer = shlex.shlex(pending.strip().removeprefix("$ "), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:  # an open quote: the command goes on on the next line
            continue
        pending = ""
        current: list[str] = []
        skip = False
        for token in tokens:
            if token in _SEPARATORS:
                commands.append(current)
                current, skip = [], False
            elif token in _REDIRECTS:
                skip = True
            elif skip:
                skip = False
            else:
                current.append(token)
        commands.append(current)
    return [c for c in commands if c]


def costspan_commands(path: Path) -> list[tuple[int, list[str]]]:
    found = []
    for line, text in shell_blocks(path):
        for command in shell_commands(text):
            words = command
            while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):  # VAR=value before the command
                words = words[1:]
            if words and (words[0] == "costspan" or words[0].endswith("/costspan")):
                found.append((line, words))
    return found


def prose_commands(path: Path) -> list[tuple[str, list[str]]]:
    """Commands quoted in the prose: `costspan <subcommand> ...` spans (`costspan sql` names the command)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    names = set(_subcommands(build_parser()))
    found = []
    for span in re.findall(r"`((?:\.venv/bin/)?costspan [^`]+)`", text):
        words = span.split()
        if len(words) > 1 and words[1] in names:
            found.append((span, words))
    return found


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser, words: list[str]) -> tuple[list[str], set[str]]:
    """The subcommand path the words name, and the options its parser takes."""
    path = []
    for word in words:
        below = _subcommands(parser)
        if word not in below:
            break
        parser = below[word]
        path.append(word)
    return path, {option for action in parser._actions for option in action.option_strings}


def check(words: list[str], usage: bool = False) -> str | None:
    """None if ``costspan <words>`` is a command the parser takes, else what is wrong with it. ``usage``:
    the words name a command and its options (as prose does), without all the values it needs."""
    args = words[1:]
    path, options = _options(build_parser(), args)
    if not path:
        return f"no subcommand {args[:1]}"
    flags = {w.split("=", 1)[0] for w in args if w.startswith("--")}
    unknown = sorted(flags - options - {"--help"})
    if unknown:
        return f"{' '.join(path)} has no option {', '.join(unknown)}"
    synopsis = any(mark in w for w in args for mark in ("[", "]", "|", "<", "...", "FILE", "DIR"))
    if usage or synopsis or "--help" in flags:
        return None  # a usage line: its options are checked, its placeholders are not values
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            build_parser().parse_args(args)
    except SystemExit:
        return stderr.getvalue().strip().splitlines()[-1]
    return None


def _all_shell_commands() -> list[tuple[str, list[str]]]:
    return [
        (f"{path.relative_to(ROOT)}:{line}", words)
        for path in DOCS
        for line, words in costspan_commands(path)
    ]


def test_the_parser_of_these_tests_tells_a_wrong_command():
    assert check(["costspan", "sql", "--format", "csv", "SELECT 1"]) is None
    assert check(["costspan", "pricing", "list", "--provider", "openai"]) is None
    assert "no option --colour" in check(["costspan", "pricing", "list", "--colour", "red"])
    assert "invalid choice" in check(["costspan", "sql", "--format", "yaml", "SELECT 1"])
    assert check(["costspan", "sqll"]) is not None
    lines = shell_commands(
        'a \\\n  b "c\nd" && .venv/bin/costspan sql "x" | head  # note\n$ costspan demo < in'
    )
    assert lines == [["a", "b", "c\nd"], [".venv/bin/costspan", "sql", "x"], ["head"], ["costspan", "demo"]]


def test_every_shell_command_of_the_docs_names_the_installed_costspan():
    commands = _all_shell_commands()
    assert len(commands) > 30
    bare = [f"{where}: {' '.join(words)[:80]}" for where, words in commands if words[0] not in INSTALLED]
    assert not bare, "\n".join(bare)


def test_every_costspan_command_of_the_docs_parses():
    wrong = [
        f"{where}: {' '.join(words)[:80]}: {problem}"
        for where, words in _all_shell_commands()
        if (problem := check(words)) is not None
    ]
    for path in DOCS:
        wrong += [
            f"{path.relative_to(ROOT)}: `{span}`: {problem}"
            for span, words in prose_commands(path)
            if (problem := check(words, usage=True)) is not None
        ]
    assert not wrong, "\n".join(wrong)


def _readme_block_after(marker: str, language: str) -> str:
    text = (ROOT / "README.md").read_text()
    after = text[text.index(marker) :]
    match = re.search(rf"```{language}\n(.*?)```", after, flags=re.S)
    assert match, (marker, language)
    return match.group(1)


@pytest.fixture
def checkout(tmp_path) -> Path:
    """A directory where the README's relative paths resolve: .venv/bin/costspan, deploy/, examples/."""
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "costspan").symlink_to(COSTSPAN)
    for folder in ("deploy", "examples"):
        (tmp_path / folder).symlink_to(ROOT / folder)
    return tmp_path


def _run(checkout: Path, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_the_readme_quote_prints_what_the_readme_shows(checkout):
    command = _readme_block_after("Price one call:", "sh")
    shown = json.loads(_readme_block_after("Price one call:", "json"))
    out = _run(checkout, command)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed == shown
    assert out.stdout.strip() == _readme_block_after("Price one call:", "json").strip()


def test_the_readme_configuration_commands_run(checkout):
    block = _readme_block_after("### Configuration", "sh")
    safe = "\n".join(line for line in block.splitlines() if " serve" not in line)  # serve would not return
    out = _run(checkout, f"set -e\n{safe}")
    assert out.returncode == 0, out.stderr
    assert "costspan.yaml: valid" in out.stdout


def test_the_readme_pricing_commands_run(checkout):
    text = (ROOT / "README.md").read_text()
    lines = [
        ".venv/bin/costspan pricing quote < examples/calls.jsonl",
        ".venv/bin/costspan pricing lookup o3 --provider openai --at 2025-06-01",
    ]
    for line in lines:
        words = line.split(" < ")[0].split()
        assert " ".join(words) in " ".join(text.split()), line  # the README shows it
        out = _run(checkout, line)
        assert out.returncode == 0 and out.stdout, (line, out.stderr)


def test_every_make_target_the_docs_name_exists():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z0-9-]*):", makefile, flags=re.M))
    named = set()
    for path in DOCS:
        # `make run`, `make bench-query` ... in code spans and shell blocks, not "make it" in a sentence
        text = path.read_text()
        named |= set(re.findall(r"`make ([a-z][a-z0-9-]*)[^`]*`", text))
        for _, block in shell_blocks(path):
            named |= set(re.findall(r"^make ([a-z][a-z0-9-]*)", block, flags=re.M))
    named = {n for n in named if not n.endswith("-")}  # `make bench-*` names a family
    assert {"run", "test", "wheel"} <= named
    assert not named - targets, sorted(named - targets)
