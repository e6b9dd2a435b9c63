"""A hook can end meta-learning cleanly: the stopping step is checkpointed and exported, and `train` returns."""

from __future__ import annotations

import pytest

from talkinghead.checkpoint import load_checkpoint
from talkinghead.config import apply_overrides, preset
from talkinghead.data.prepare import write_synthetic_dataset
from talkinghead.training.loop import StopTraining
from talkinghead.training.run import train_on_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_hook_stops_training_after_a_checkpointed_step(tmp_path):
    write_synthetic_dataset(tmp_path / "data", 3, 1, 6, 64, seed=0)
    config = apply_overrides(preset("tiny-64"), ["loss.feature_network=mobilenet-offline", "train.steps=50",
                                                 "train.checkpoint_every=10", "train.batch_size=2",
                                                 "data.frames_per_episode=2"])

    def stop_at_three(learner) -> None:
        if learner.step == 3:
            raise StopTraining("enough")

    learner = train_on_dataset(config, tmp_path / "data", tmp_path / "run", progress=False, hooks=[stop_at_three])
    assert learner.step == 3
    assert (tmp_path / "run" / "checkpoints" / "training-00000003.safetensors").exists()
    assert load_checkpoint(tmp_path / "run" / "export.safetensors").metadata["step"] == 3


def test_train_max_minutes_ends_at_the_budget_and_resume_goes_on(tmp_path):
    """`train --max-minutes`: a budget already used up stops after the first step, checkpointed and exported; the
    next invocation resumes from that step instead of starting over."""
    from talkinghead.cli import main
    from talkinghead.training.run import time_budget

    write_synthetic_dataset(tmp_path / "data", 3, 1, 6, 64, seed=0)
    common = ["train", "--data", str(tmp_path / "data"), "--preset", "tiny-64", "--run-dir", str(tmp_path / "run"),
              "--steps", "50", "--set", "loss.feature_network=mobilenet-offline", "--set", "train.batch_size=2",
              "--set", "data.frames_per_episode=2", "--set", "train.checkpoint_every=100"]
    assert main([*common, "--max-minutes", "1e-9"]) == 0
    assert load_checkpoint(tmp_path / "run" / "export.safetensors").metadata["step"] == 1
    assert main([*common, "--max-minutes", "1e-9"]) == 0
    assert load_checkpoint(tmp_path / "run" / "export.safetensors").metadata["step"] == 2
    with pytest.raises(ValueError, match="max-minutes"):
        time_budget(0)
