"""Bad input through `talkinghead finetune` / `talkinghead animate`: exit code 2 and one clear line naming the
file, never a traceback, and no output written.

The model is a tiny-64 export with random weights (nothing here depends on what it learned).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from _inference_helpers import face, tiny_networks
from talkinghead import cli

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """An inference export, a checkpoint of another kind, a truncated export, a non-checkpoint file, a picture
    of noise (no face) and a tiny video."""
    import cv2

    from talkinghead.checkpoint import model_state, prefixed, save_checkpoint
    from talkinghead.video import VideoWriter

    root = tmp_path_factory.mktemp("cli")
    config, embedder, generator, discriminator = tiny_networks()
    tensors = {**prefixed("embedder.", model_state(embedder)), **prefixed("generator.", model_state(generator)),
               **prefixed("discriminator.", {k: v for k, v in model_state(discriminator).items()
                                             if not k.startswith("video_embeddings.")})}
    paths = {name: root / file for name, file in (
        ("export", "export.safetensors"), ("training", "training.safetensors"), ("truncated", "cut.avatar"),
        ("not_checkpoint", "notes.avatar"), ("noise", "noise.png"), ("driver", "driver.mp4"))}
    save_checkpoint(paths["export"], tensors, config, kind="export")
    save_checkpoint(paths["training"], {"step": torch.zeros(1)}, config, kind="training")
    data = paths["export"].read_bytes()
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["not_checkpoint"].write_text("not a checkpoint\n")
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    cv2.imwrite(str(paths["noise"]), noise)
    with VideoWriter(paths["driver"], fps=10) as writer:
        for _ in range(2):
            writer.write(noise)
    return paths


def _fails(capsys, argv: list[str], *expected: str) -> str:
    """Run the command; it must exit 2 with ONE error line that contains every ``expected`` text."""
    assert cli.main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("talkinghead ")]
    assert len(errors) == 1, errors
    assert "Traceback" not in errors[0]
    for text in expected:
        assert text in errors[0], (text, errors[0])
    return errors[0]


def test_source_without_a_face_names_the_file(files, tmp_path, capsys):
    output = tmp_path / "p.avatar"
    _fails(capsys, ["finetune", "--checkpoint", str(files["export"]), "--source", str(files["noise"]),
                    "-o", str(output), "--steps", "0"], str(files["noise"]), "no face")
    assert not output.exists()
    _fails(capsys, ["animate", "--checkpoint", str(files["export"]), "--source", str(files["noise"]),
                    "--driver", str(files["driver"]), "-o", str(tmp_path / "o.mp4")], str(files["noise"]), "no face")
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("command", ["finetune", "animate"])
def test_existing_output_is_kept_without_overwrite(files, tmp_path, capsys, command):
    output = tmp_path / ("p.avatar" if command == "finetune" else "o.mp4")
    output.write_bytes(b"keep me")
    if command == "finetune":
        argv = ["finetune", "--checkpoint", str(files["export"]), "--source", str(files["noise"])]
    else:
        argv = ["animate", "--avatar", str(files["export"]), "--driver", str(files["driver"])]
    _fails(capsys, [*argv, "-o", str(output)], str(output), "--overwrite")
    assert output.read_bytes() == b"keep me"


@pytest.mark.parametrize(("option", "which", "expected"), [
    ("--avatar", "export", ("'export' checkpoint, expected 'avatar'", "--checkpoint")),
    ("--avatar", "truncated", ("unreadable", "truncated")),
    ("--avatar", "not_checkpoint", ("unreadable",)),
    ("--checkpoint", "training", ("'training' checkpoint, expected 'export'", "run directory")),
    ("--checkpoint", "truncated", ("unreadable", "truncated")),
    ("--avatar", "missing", ("does not exist",)),
])
def test_wrong_truncated_or_missing_model_files_are_clear_errors(files, tmp_path, capsys, option, which, expected):
    path = files.get(which, tmp_path / "missing.avatar")
    argv = ["animate", option, str(path), "--driver", str(files["driver"]), "-o", str(tmp_path / "o.mp4")]
    if option == "--checkpoint":
        argv += ["--source", str(files["noise"])]
    _fails(capsys, argv, str(path), *expected)
    assert not (tmp_path / "o.mp4").exists()


def test_finetune_refuses_an_avatar_or_training_file_as_checkpoint(files, tmp_path, capsys):
    _fails(capsys, ["finetune", "--checkpoint", str(files["training"]), "--source", str(files["noise"]),
                    "-o", str(tmp_path / "p.avatar")], str(files["training"]), "expected 'export'")


def test_finetune_settings_can_be_overridden_but_not_the_networks(files, tmp_path, capsys):
    """`--set finetune.lr_generator=...` changes how a new person is fine-tuned (a model trained with other
    learning rates than the paper's needs it); `--set model.*` of the networks' shape would contradict the trained
    weights: refused (how the warp generator runs, e.g. model.source_blend, may change)."""
    from talkinghead.inference import TalkingHead

    head = TalkingHead.load(files["export"], device="cpu", finetune_overrides=["finetune.lr_generator=1e-3",
                                                                               "finetune.epochs=3"])
    assert head.config.finetune.lr_generator == 1e-3 and head.config.finetune.epochs == 3
    assert TalkingHead.load(files["export"], device="cpu").config.finetune.lr_generator == 5e-5
    _fails(capsys, ["finetune", "--checkpoint", str(files["export"]), "--source", str(files["noise"]), "-o",
                    str(tmp_path / "a.avatar"), "--set", "model.min_channels=8"],
           "only how the warp generator is run can change")
    _fails(capsys, ["finetune", "--checkpoint", str(files["export"]), "--source", str(files["noise"]), "-o",
                    str(tmp_path / "a.avatar"), "--set", "finetune.nope=1"], "no field 'nope'")


def test_a_driver_without_any_face_exits_2_naming_it(files, tmp_path, capsys):
    """The driver (noise) has no face in any frame: no motion to follow, so no video is written from landmarks
    that were never seen (a driver with only SOME faceless frames holds the last landmarks: test_inference)."""
    from talkinghead.inference import Avatar

    config, _, generator, _ = tiny_networks()
    with torch.no_grad():
        psi = generator.project(torch.zeros(1, config.model.embedding_dim))[0]
    avatar_path = tmp_path / "tiny.avatar"
    Avatar(generator, psi, face(centre=(32, 32), scale=12), config).save(avatar_path)
    output = tmp_path / "o.mp4"
    _fails(capsys, ["animate", "--avatar", str(avatar_path), "--driver", str(files["driver"]), "-o", str(output)],
           str(files["driver"]), "no face found in any of its 2 frames")
    assert not output.exists()
