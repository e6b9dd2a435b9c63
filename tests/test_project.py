"""The project's promises to a new user: README set-up commands, CI running them, the CLI surface."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO_ROOT


def _readme_commands() -> list[str]:
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Set up a fresh machine", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_readme_has_the_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    demo, tests = commands
    assert demo.startswith("pip install torch==2.13.0") and demo.endswith("talkinghead demo")
    assert tests.startswith("pip install torch==2.13.0") and "pytest" in tests


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert _readme_commands()[1] in ci.splitlines()


def test_cli_help_lists_every_subcommand_and_each_renders():
    from talkinghead.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    names = sorted(subparsers.choices)
    out = subprocess.run([sys.executable, "-m", "talkinghead", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for name in names:
        assert name in out
        sub = subprocess.run([sys.executable, "-m", "talkinghead", name, "--help"], capture_output=True,
                             text=True)
        assert sub.returncode == 0, sub.stderr
