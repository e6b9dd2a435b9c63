"""The one ``--set`` option: every bad value ends in exit status 2 and one line naming the field and the type."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from talkinghead.cli import main


@pytest.mark.parametrize(("item", "message"), [
    ("train.lr_generator=abc", "train.lr_generator must be a number, got 'abc'"),  # float
    ("train.steps=1.5", "train.steps must be an integer, got 1.5"),  # int
    ("train.channels_last=yes", "train.channels_last must be true or false, got 'yes'"),  # bool
    ("train.variant=xx", "train.variant must be one of ['FT', 'FF'], got 'xx'"),  # Literal
    ("loss.feature_network=resnet", "loss.feature_network must be one of ['vgg', 'mobilenet-offline'], got 'resnet'"),
    ("train.betas=[0.5]", "train.betas must be a list of 2 numbers, e.g. [1, 2], got [0.5]"),  # tuple length
    ("train.betas=a,b", "train.betas must be a list of 2 numbers, e.g. [1, 2], got 'a,b'"),  # tuple items
    ("loss.vgg19_weight=abc", "loss.vgg19_weight must be a number or null, got 'abc'"),  # optional float
    ("train.batch_sise=3", "section 'train' has no field 'batch_sise'"),
    ("nosection.x=1", "unknown section 'nosection'"),
])
def test_bad_set_value_exits_2_with_one_line_naming_field_and_type(item, message, capsys):
    code = main(["train", "--data", "unused", "--run-dir", "unused", "--dry-run", "--set", item])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("talkinghead train: error: ")
    assert message in err


@pytest.mark.parametrize("command", [
    ["finetune", "--checkpoint", "missing", "--source", "a.jpg", "-o", "out.avatar"],
    ["animate", "--checkpoint", "missing", "--source", "a.jpg", "--driver", "d.mp4", "-o", "o.mp4"],
    ["evaluate", "--checkpoint", "missing", "--data", "d", "--out", "o"],
])
def test_finetune_only_commands_check_set_before_loading_anything(command, capsys):
    assert main([*command, "--set", "finetune.epochs=many"]) == 2
    assert capsys.readouterr().err.strip().endswith("finetune.epochs must be an integer, got 'many'")
    assert main([*command, "--set", "train.steps=3"]) == 2
    assert "this command changes only finetune.*, model.* fields" in capsys.readouterr().err
    assert main([*command, "--set", "model.image_size=256"]) == 2  # the networks' shape: never after training
    assert "only how the warp generator is run can change" in capsys.readouterr().err
    assert main([*command, "--set", "model.source_blend=softest"]) == 2
    assert "model.source_blend" in capsys.readouterr().err


def test_set_is_declared_once_and_reaches_the_config(capsys):
    assert main(["train", "--data", "unused", "--run-dir", "unused", "--dry-run", "--preset", "tiny-64",
                 "--set", "train.variant=ff", "--set", "train.lr_generator=1e-3", "--set", "train.betas=0.5,0.9"]) == 0
    train = json.loads(capsys.readouterr().out)["train"]
    assert (train["variant"], train["lr_generator"], train["betas"]) == ("FF", 1e-3, [0.5, 0.9])
    modules = ("talkinghead.cli", "talkinghead.cli_options", "talkinghead.cli_evaluation")
    sources = {name: Path(sys.modules[name].__file__).read_text() for name in modules}
    assert {name: source.count('"--set"') for name, source in sources.items()} == {
        "talkinghead.cli": 0, "talkinghead.cli_options": 1, "talkinghead.cli_evaluation": 0}


def test_bad_set_through_the_installed_command():
    result = subprocess.run([sys.executable, "-m", "talkinghead", "info", "--set", "model.image_size=big"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr == "talkinghead info: error: model.image_size must be an integer, got 'big'\n"
