"""A training run records who it was trained on, so evaluation refuses those people."""

from __future__ import annotations

import pytest

from talkinghead.checkpoint import load_checkpoint
from talkinghead.config import apply_overrides, preset
from talkinghead.data.index import load_index
from talkinghead.data.prepare import write_synthetic_dataset
from talkinghead.evaluate import IdentityOverlapError, check_identity_overlap

pytestmark = pytest.mark.usefixtures("one_thread")


def test_identity_record_of_a_synthetic_dataset_has_names_and_seeds(tmp_path):
    write_synthetic_dataset(tmp_path / "a", 3, 1, 4, 64, seed=0)
    write_synthetic_dataset(tmp_path / "b", 3, 1, 4, 64, seed=1)
    a, b = load_index(tmp_path / "a").identity_record(), load_index(tmp_path / "b").identity_record()
    assert a["identities"] == b["identities"] == ["syn0000", "syn0001", "syn0002"]  # names repeat ...
    assert len(a["identity_seeds"]) == 3 and not set(a["identity_seeds"]) & set(b["identity_seeds"])  # seeds don't


def test_export_records_the_training_people_and_evaluation_refuses_them(tmp_path):
    from talkinghead.training.run import train_on_dataset

    write_synthetic_dataset(tmp_path / "train", 3, 1, 6, 64, seed=0)
    write_synthetic_dataset(tmp_path / "unseen", 2, 1, 6, 64, seed=7, name_prefix="new")
    config = apply_overrides(preset("tiny-64"), ["loss.feature_network=mobilenet-offline", "train.steps=1",
                                                 "train.batch_size=2", "data.frames_per_episode=2"])
    train_on_dataset(config, tmp_path / "train", tmp_path / "run", progress=False)
    metadata = load_checkpoint(tmp_path / "run" / "export.safetensors").metadata
    trained = load_index(tmp_path / "train")
    assert metadata["dataset"] == trained.identity_record()
    with pytest.raises(IdentityOverlapError, match="seen in meta-learning"):
        check_identity_overlap(trained, trained.videos, metadata)
    unseen = load_index(tmp_path / "unseen")
    assert check_identity_overlap(unseen, unseen.videos, metadata)["overlap"] == []
