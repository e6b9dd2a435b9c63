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
