"""Every `talkinghead` command line in README.md is a real command line: it parses with the real CLI.

The commands that need data or hours (prepare on VoxCeleb2, train at scale) are parsed, not run; the short ones
run elsewhere in the suite (finetune/animate/evaluate/train tests) and the set-up commands in .ci/run."""

from __future__ import annotations

import re
import shlex

import pytest

from conftest import REPO_ROOT
from talkinghead.cli import build_parser


def _readme_command_lines() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    lines: list[str] = []
    for block in re.findall(r"```(?:bash)?\n(.*?)```", text, flags=re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.split("  #", 1)[0].strip()
            if "talkinghead " not in line and not line.endswith("talkinghead demo") or "..." in line:
                continue
            for part in line.split("&&"):
                part = part.strip()
                if "talkinghead" in part and not part.startswith("pip "):
                    lines.append(part)
    return lines


def _cli_arguments(line: str) -> list[str]:
    words = shlex.split(line)
    if words[0] == "torchrun":  # torchrun [its flags] -m talkinghead SUBCOMMAND ...
        return words[words.index("talkinghead") + 1:]
    assert words[0] == "talkinghead", line
    return words[1:]


def test_the_readme_shows_the_main_commands():
    subcommands = {_cli_arguments(line)[0] for line in _readme_command_lines()}
    assert {"demo", "prepare", "train", "finetune", "animate", "evaluate"} <= subcommands


@pytest.mark.parametrize("line", _readme_command_lines())
def test_readme_command_parses(line):
    arguments = _cli_arguments(line)
    parsed = build_parser().parse_args(arguments)
    assert parsed.command == arguments[0] and callable(parsed.func)
