"""Warm starts: a new run begins from meta-learned E, G, D (never W), and their people stay out of evaluation."""

from __future__ import annotations

import pytest
import torch

from talkinghead.checkpoint import CheckpointError, load_checkpoint
from talkinghead.config import apply_overrides, preset
from talkinghead.data.index import load_index
from talkinghead.data.prepare import synthetic_seeds, write_synthetic_dataset
from talkinghead.evaluate import IdentityOverlapError, check_identity_overlap
from talkinghead.training.warm_start import KIND, make_warm_start, merge_identity_records, packaged_demo_warm_start

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["loss.feature_network=mobilenet-offline", "train.batch_size=2", "data.frames_per_episode=2",
        "train.steps=1"]


def _newest_checkpoint(run):
    return sorted((run / "checkpoints").glob("training-*.safetensors"))[-1]


def test_a_new_run_starts_from_the_warm_start_without_its_W_and_refuses_its_people(tmp_path):
    from talkinghead.training.run import train_on_dataset

    write_synthetic_dataset(tmp_path / "earlier", 3, 1, 6, 64, seed=5, name_prefix="old")
    write_synthetic_dataset(tmp_path / "train", 2, 1, 6, 64, seed=0)
    write_synthetic_dataset(tmp_path / "unseen", 2, 1, 6, 64, seed=7, name_prefix="new")
    train_on_dataset(apply_overrides(preset("tiny-64"), TINY), tmp_path / "earlier", tmp_path / "a", progress=False)
    warm = make_warm_start(_newest_checkpoint(tmp_path / "a"), tmp_path / "warm.safetensors")

    source = load_checkpoint(_newest_checkpoint(tmp_path / "a"))
    saved = load_checkpoint(warm)
    assert saved.kind == KIND
    assert not [name for name in saved.tensors if name.startswith(("optimizer.", "rng.", "video_started"))]
    assert "discriminator.video_embeddings.weight" not in saved.tensors  # W: the earlier run's 3 videos
    assert source.tensors["discriminator.video_embeddings.weight"].shape[0] == 3
    for name, tensor in saved.tensors.items():
        assert torch.equal(tensor, source.tensors[name]), name

    # A learning rate so small that one step leaves the weights where the warm start put them.
    config = apply_overrides(preset("tiny-64"), [*TINY, f"train.init_from={warm}", "train.lr_generator=1e-20",
                                                 "train.lr_discriminator=1e-20"])
    train_on_dataset(config, tmp_path / "train", tmp_path / "b", progress=False)
    started = load_checkpoint(_newest_checkpoint(tmp_path / "b"))
    for prefix in ("embedder.", "generator.", "discriminator.blocks.", "discriminator.w0"):
        names = [n for n in saved.tensors if n.startswith(prefix) and saved.tensors[n].is_floating_point()
                 and not n.endswith(("sn_u", "sn_v"))]  # spectral norm's power iteration moves every forward
        assert names, prefix
        for name in names:
            torch.testing.assert_close(started.tensors[name], saved.tensors[name], atol=1e-12, rtol=0)
    for name in [n for n in saved.tensors if n.startswith("ema.") and not n.endswith(("sn_u", "sn_v"))]:
        # The EMA moved one step (decay 0.99) towards weights that differ from it by far less than 1e-2.
        torch.testing.assert_close(started.tensors[name], saved.tensors[name], atol=1e-4, rtol=0)
    assert started.tensors["discriminator.video_embeddings.weight"].shape[0] == 2  # this run's own videos

    metadata = load_checkpoint(tmp_path / "b" / "export.safetensors").metadata
    assert metadata["warm_start"]["file"] == "warm.safetensors" and len(metadata["warm_start"]["sha256"]) == 64
    earlier, unseen = load_index(tmp_path / "earlier"), load_index(tmp_path / "unseen")
    with pytest.raises(IdentityOverlapError, match="seen in meta-learning"):
        check_identity_overlap(earlier, earlier.videos, metadata)  # people only the warm start saw
    assert check_identity_overlap(unseen, unseen.videos, metadata)["overlap"] == []


def test_a_warm_start_of_another_architecture_is_refused_by_name(tmp_path):
    from talkinghead.training.run import train_on_dataset

    write_synthetic_dataset(tmp_path / "data", 2, 1, 6, 64, seed=0)
    train_on_dataset(apply_overrides(preset("tiny-64"), TINY), tmp_path / "data", tmp_path / "a", progress=False)
    warm = make_warm_start(_newest_checkpoint(tmp_path / "a"), tmp_path / "warm.safetensors")
    other = apply_overrides(preset("tiny-64"), [*TINY, "model.embedding_dim=32", f"train.init_from={warm}"])
    with pytest.raises(CheckpointError, match="model.embedding_dim"):
        train_on_dataset(other, tmp_path / "data", tmp_path / "b", progress=False)
    export = tmp_path / "a" / "export.safetensors"  # an export has no discriminator W or EMA split: not a warm start
    with pytest.raises(CheckpointError, match="'export'"):
        train_on_dataset(apply_overrides(preset("tiny-64"), [*TINY, f"train.init_from={export}"]),
                         tmp_path / "data", tmp_path / "c", progress=False)

    # ... but a warm start can be made from it (continuing the shipped model): online and EMA E, G start at the
    # export's (EMA) weights, D as exported, and a run starts from it.
    from_export = make_warm_start(export, tmp_path / "from-export.safetensors")
    exported, saved = load_checkpoint(export), load_checkpoint(from_export)
    assert saved.kind == KIND and saved.metadata["step"] == exported.metadata["step"]
    assert {n for n in saved.tensors if not n.startswith("ema.")} == set(exported.tensors)
    for name, tensor in exported.tensors.items():
        assert torch.equal(saved.tensors[name], tensor), name
        if name.startswith(("embedder.", "generator.")):
            assert torch.equal(saved.tensors[f"ema.{name}"], tensor), name
    train_on_dataset(apply_overrides(preset("tiny-64"), [*TINY, f"train.init_from={from_export}"]),
                     tmp_path / "data", tmp_path / "d", progress=False)
    assert load_checkpoint(tmp_path / "d" / "export.safetensors").metadata["warm_start"]["step"] == 1
    with pytest.raises(CheckpointError, match="'warm-start' checkpoint; a warm start is made"):
        make_warm_start(from_export, tmp_path / "again.safetensors")


def test_identity_records_merge_names_and_seeds():
    merged = merge_identity_records({"content_hash": "x", "identities": ["b"], "identity_seeds": [3]},
                                    {"identities": ["a", "b"], "identity_seeds": [1]})
    assert merged == {"content_hash": "x", "identities": ["a", "b"], "identity_seeds": [1, 3]}
    assert merge_identity_records({"identities": ["a"]}, {}) == {"identities": ["a"]}


def test_the_packaged_demo_warm_start_is_tiny64_and_never_saw_the_demos_test_people():
    from talkinghead.demo import SCALES

    checkpoint = load_checkpoint(packaged_demo_warm_start(), expected_kind=KIND, expected_model=preset("tiny-64").model)
    assert "discriminator.video_embeddings.weight" not in checkpoint.tensors
    seen = set(checkpoint.metadata["dataset"]["identity_seeds"])
    assert len(seen) >= 1000 and checkpoint.metadata["step"] >= 5_000
    for seed in (0, 1, 2):  # the demo's test people are rendered with seed + 1
        for scale in SCALES.values():
            test_people = {synthetic_seeds(seed + 1, i, 0)[0] for i in range(scale.test_identities)}
            assert not test_people & seen


def test_the_remake_script_uses_the_demos_recipe():
    """The shipped warm start must be meta-learned as the demo goes on meta-learning (same losses, rates)."""
    from pathlib import Path

    from talkinghead.demo import DEMO_OVERRIDES

    script = (Path(__file__).parents[1] / "scripts" / "make-demo-warm-start.sh").read_text()
    for override in DEMO_OVERRIDES:
        if override.startswith(("loss.", "train.")):
            assert f"--set {override}" in script, override
    assert "--preset tiny-64" in script and "seed=1000" in script
