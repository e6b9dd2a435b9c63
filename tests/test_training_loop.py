"""The training loop end to end: resume after a kill, divergence stop, run-dir outputs, learning."""

from __future__ import annotations

import json

import pytest
import torch

from talkinghead.checkpoint import load_checkpoint
from talkinghead.training import state as training_state
from talkinghead.training.loop import TrainingDiverged, train
from training_standins import RandomEpisodes, feature_networks, micro_config, single_thread  # noqa: F401


class Killed(Exception):
    """Simulates the process dying between two steps (no final save happens)."""


def kill_at(step: int):
    def hook(learner):
        if learner.step == step:
            raise Killed

    return hook


def run(config, run_dir, dataset=None, **kwargs):
    dataset = dataset or RandomEpisodes()
    return train(config, run_dir, dataset, num_videos=len(dataset), dataset_hash="test-hash",
                 feature_networks=feature_networks(), progress=False, **kwargs)


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    config = micro_config("train.steps=5", "train.checkpoint_every=2", "train.keep_checkpoints=2")
    straight = run(config, tmp_path / "straight")
    with pytest.raises(Killed):
        run(config, tmp_path / "killed", hooks=[kill_at(3)])  # checkpoint at 2, step 3 is lost
    assert [p.name for p in training_state.list_checkpoints(tmp_path / "killed")] == ["training-00000002.safetensors"]
    resumed = run(config, tmp_path / "killed", resume="auto")
    assert resumed.step == straight.step == 5 and resumed.images == straight.images == 10
    a = load_checkpoint(training_state.checkpoint_path(tmp_path / "straight", 5)).tensors
    b = load_checkpoint(training_state.checkpoint_path(tmp_path / "killed", 5)).tensors
    assert set(a) == set(b)
    for name in a:
        if not name.startswith("rng."):
            torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-6, msg=name)
    # keep_checkpoints=2: steps 4 and 5 remain
    assert [p.name for p in training_state.list_checkpoints(tmp_path / "straight")] == [
        "training-00000004.safetensors", "training-00000005.safetensors"]


def test_a_resume_with_new_learning_rates_and_betas_uses_them(tmp_path):
    """The resume log says changed settings apply; the optimizers' saved param_groups must not override them."""
    run(micro_config("train.steps=2", "train.checkpoint_every=2"), tmp_path)
    changed = micro_config("train.steps=3", "train.checkpoint_every=3", "train.lr_generator=1e-3",
                           "train.lr_discriminator=3e-3", "train.betas=[0.5, 0.99]")
    learner = run(changed, tmp_path, resume="auto")
    assert learner.step == 3
    assert [g["lr"] for g in learner.optimizer_generator.param_groups] == [1e-3]
    assert [g["lr"] for g in learner.optimizer_discriminator.param_groups] == [3e-3]
    assert [g["lr"] for g in learner.optimizer_video_embeddings.param_groups] == [3e-3]
    assert all(g["betas"] == (0.5, 0.99) for o in learner.optimizers().values() for g in o.param_groups)
    assert learner.optimizer_generator.state  # the Adam moments did come back


def test_run_dir_outputs(tmp_path):
    config = micro_config("train.steps=2", "train.image_every=2")
    run(config, tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert {"loss/generator", "loss/discriminator", "loss/pixel", "images_per_second"} <= set(lines[-1])
    # peak resident memory of the training process: a real reading (a torch process holds well over 50 MB)
    assert 0.05 < lines[-1]["memory/peak_rss_gb"] < 64 and "memory/peak_gpu_gb" not in lines[-1]
    assert (tmp_path / "samples" / "step-00000002.png").is_file()
    assert json.loads((tmp_path / "config.json").read_text())["train"]["steps"] == 2
    training = load_checkpoint(training_state.checkpoint_path(tmp_path, 2), expected_kind="training")
    assert training.metadata["dataset_hash"] == "test-hash" and training.metadata["step"] == 2
    assert "discriminator.video_embeddings.weight" in training.tensors
    assert any(name.startswith("optimizer.video_embeddings.state.") for name in training.tensors)
    export = load_checkpoint(tmp_path / training_state.EXPORT_NAME, expected_kind="export")
    assert "discriminator.w0" in export.tensors and "generator.projection.weight" in export.tensors
    assert not any(name.startswith("discriminator.video_embeddings") for name in export.tensors)
    # the export holds the EMA weights, not the raw ones
    torch.testing.assert_close(export.tensors["generator.projection.weight"],
                               training.tensors["ema.generator.projection.weight"])
    with pytest.raises(FileExistsError, match="--resume auto"):
        run(config, tmp_path, resume="never")


def test_repeated_non_finite_losses_stop_with_last_checkpoint_intact(tmp_path):
    config = micro_config("train.steps=2", "train.checkpoint_every=2", "train.max_bad_steps=2")
    run(config, tmp_path)
    poisoned = RandomEpisodes()
    poisoned.poison = True
    with pytest.raises(TrainingDiverged, match="2 consecutive steps"):
        run(micro_config("train.steps=6", "train.checkpoint_every=1", "train.max_bad_steps=2"), tmp_path,
            poisoned)
    assert [p.name for p in training_state.list_checkpoints(tmp_path)] == ["training-00000002.safetensors"]
    good = load_checkpoint(training_state.checkpoint_path(tmp_path, 2))
    assert all(torch.isfinite(t).all() for name, t in good.tensors.items() if t.is_floating_point())
    log = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["bad_steps"] == 2 and log[-1]["skipped"] == 1.0


def test_content_loss_falls_on_synthetic_heads(tmp_path):
    """A test-sized run (~10 s) on synthetic talking heads written to disk: the content loss falls."""
    from talkinghead.data.episodes import EpisodeDataset
    from talkinghead.data.prepare import write_synthetic_dataset

    write_synthetic_dataset(tmp_path / "data", num_identities=2, videos_per_identity=2, frames_per_video=6,
                            size=64, seed=0)
    dataset = EpisodeDataset(tmp_path / "data", image_size=32, frames_per_episode=2, seed=0)
    config = micro_config("train.steps=40", "train.lr_generator=1e-3", "train.lr_discriminator=1e-3",
                          "train.variant=FF")
    run(config, tmp_path / "run", dataset)
    content = [line["loss/pixel"] for line in map(json.loads, (tmp_path / "run" / "metrics.jsonl").open())]
    first, last = sum(content[:8]) / 8, sum(content[-8:]) / 8
    assert last < 0.8 * first, (first, last)


def test_cli_dry_run_prints_resolved_config(capsys):
    from talkinghead.cli import main

    assert main(["train", "--data", "unused", "--preset", "tiny-64-ff", "--run-dir", "unused", "--dry-run",
                 "--set", "train.betas=[0.5, 0.99]", "--steps", "7"]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved["train"]["variant"] == "FF" and resolved["train"]["steps"] == 7
    assert resolved["train"]["betas"] == [0.5, 0.99] and resolved["loss"]["feature_network"] == "vgg"


def test_cli_missing_weight_file_is_a_clear_error(tmp_path, capsys):
    from talkinghead.cli import main
    from talkinghead.data.prepare import write_synthetic_dataset

    write_synthetic_dataset(tmp_path / "data", num_identities=1, videos_per_identity=1, frames_per_video=3, size=64)
    code = main(["train", "--data", str(tmp_path / "data"), "--preset", "tiny-64", "--run-dir", str(tmp_path / "run"),
                 "--device", "cpu", "--set", f"loss.vgg19_weights={tmp_path / 'missing.pth'}"])
    assert code == 2
    error = capsys.readouterr().err
    assert "missing.pth" in error and "loss.feature_network=mobilenet-offline" in error
