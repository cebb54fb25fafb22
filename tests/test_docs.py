"""The guides can be trusted: every relative link and #anchor in README.md and docs/ resolves,
and every command shown in a ```bash block parses with the real command's own argparse.

Markdown is read with markdown-it-py (a CommonMark parser, the one `rich` already brings), so
links, headings and code blocks are found as a renderer finds them, not by regular expressions.
Anchors follow GitHub's rule for heading ids.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import re
import shlex
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from markdown_it import MarkdownIt

from tests.helpers import REPO_ROOT

DOCS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").rglob("*.md")])
# Dated history keeps the commands of its day; its links must still resolve.
HISTORY = REPO_ROOT / "docs" / "notes"
SCRIPTS = {"train.py", "evaluate.py", "export.py", "predict.py", "prune.py", "summarize.py"}
SCRIPTS |= {p.name for p in REPO_ROOT.glob("serve.py")}
# python -m MODULE -> the module whose main(argv) parses that command line
MODULE_COMMANDS = {
    "resnet_tf.bench": "resnet_tf.bench.cli",
    "resnet_tf.models": "resnet_tf.models.__main__",
    "resnet_tf.config.reference": None,  # takes no arguments
    "pytest": None,
    "venv": None,
    "pip": None,
}
MAIN_OF_SCRIPT = {"summarize.py": "resnet_tf.runs.summarize"}

_parser = MarkdownIt("commonmark").enable("table")


def tokens_of(path: Path):
    return _parser.parse(path.read_text())


def slug(text: str) -> str:
    """GitHub's heading id: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    found: dict[str, int] = {}
    anchors = set()
    tokens = tokens_of(path)
    for index, token in enumerate(tokens):
        if token.type == "heading_open":
            inline = tokens[index + 1]
            text = "".join(child.content for child in inline.children or [])
            base = slug(text)
            count = found.get(base, 0)
            anchors.add(base if count == 0 else f"{base}-{count}")
            found[base] = count + 1
    return anchors


def links_of(path: Path) -> list[str]:
    links = []
    for token in tokens_of(path):
        for child in token.children or []:
            if child.type == "link_open":
                links.append(child.attrs["href"])
            elif child.type == "image":
                links.append(child.attrs["src"])
    return links


def bash_commands(path: Path) -> list[list[str]]:
    """Each simple command of the file's ```bash blocks, as argv lists (continuations joined,
    comments dropped, split at ; && || | and the words of a for loop)."""
    commands = []
    for token in tokens_of(path):
        if token.type != "fence" or token.info.strip() != "bash":
            continue
        text = token.content.replace("\\\n", " ")
        for line in text.splitlines():
            lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            lexer.commenters = "#"
            current: list[str] = []
            for word in lexer:
                if word in (";", "&&", "||", "|", "&", "do", "then", "done", "fi"):
                    commands.append(current)
                    current = []
                else:
                    current.append(word)
            commands.append(current)
    return [c for c in commands if c and c[0] not in ("for", "while", "if")]


class Parsed(Exception):
    def __init__(self, namespace):
        self.namespace = namespace


def parse_with(main, argv: list[str], monkeypatch) -> argparse.Namespace:
    """The namespace the command's own parser makes of argv; its main stops right there."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        raise Parsed(original(self, args, namespace))

    with monkeypatch.context() as patch:
        patch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
        try:
            main(argv)
        except Parsed as parsed:
            return parsed.namespace
    raise AssertionError(f"{argv}: the command parsed nothing")


def main_of(command: list[str]):
    """The main(argv) a shown `python ...` command runs, and its arguments; None to skip."""
    words = [w for w in command if not re.fullmatch(r"[A-Z_]+=.*", w)]
    if not words or words[0] not in ("python", "python3"):
        return None
    if words[1] == "-m":
        module = MODULE_COMMANDS[words[2]]  # a module the docs show must be listed here
        return (importlib.import_module(module).main, words[3:]) if module else None
    script = words[1]
    assert script in SCRIPTS, f"{script}: not a command of this repository"
    if script in MAIN_OF_SCRIPT:
        return importlib.import_module(MAIN_OF_SCRIPT[script]).main, words[2:]
    spec = importlib.util.spec_from_file_location(f"shown_{script[:-3]}", REPO_ROOT / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main, words[2:]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_and_anchors_resolve(path):
    broken = []
    for link in links_of(path):
        parts = urlparse(link)
        if parts.scheme or link.startswith("//"):
            continue  # web addresses are not fetched: no machine here reaches the internet
        target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
        if not target.exists():
            broken.append(f"{link}: no such file")
        elif parts.fragment and target.suffix == ".md":
            if parts.fragment not in anchors_of(target):
                broken.append(f"{link}: no heading with that anchor in {target.name}")
    assert broken == []


@pytest.mark.parametrize(
    "path",
    [p for p in DOCS if HISTORY not in p.parents],
    ids=lambda p: str(p.relative_to(REPO_ROOT)),
)
def test_shown_commands_parse(path, monkeypatch):
    wrong = []
    for command in bash_commands(path):
        if command[:2] == ["pip", "install"] and "-r" in command:
            requirements = command[command.index("-r") + 1]
            if not (REPO_ROOT / requirements).is_file():
                wrong.append(f"{shlex.join(command)}: no {requirements}")
            continue
        found = main_of(command)
        if found is None:
            continue
        main, argv = found
        try:
            namespace = parse_with(main, argv, monkeypatch)
        except SystemExit:
            wrong.append(f"{shlex.join(command)}: refused by its parser")
            continue
        config = getattr(namespace, "config", None)
        if config and not re.search(r"[<$]", config) and not (REPO_ROOT / config).is_file():
            wrong.append(f"{shlex.join(command)}: no config file {config}")
    assert wrong == []


def test_the_checks_catch_what_they_are_for(tmp_path, monkeypatch):
    """A broken link, a wrong anchor, an unknown flag and a missing config are each found."""
    page = tmp_path / "page.md"
    page.write_text(
        "# A page\n\n## Two words\n\n[ok](#two-words) [bad](#three-words) [gone](missing.md)\n\n"
        "```bash\npython train.py --config configs/nope.yaml\n"
        "python evaluate.py --checkpoint x --no-such-flag\n```\n"
    )
    assert anchors_of(page) == {"a-page", "two-words"}
    assert links_of(page) == ["#two-words", "#three-words", "missing.md"]
    commands = bash_commands(page)
    assert commands[0] == ["python", "train.py", "--config", "configs/nope.yaml"]
    main, argv = main_of(commands[0])
    assert parse_with(main, argv, monkeypatch).config == "configs/nope.yaml"
    main, argv = main_of(commands[1])
    with pytest.raises(SystemExit):
        parse_with(main, argv, monkeypatch)
