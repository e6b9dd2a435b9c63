"""scripts/revive-discriminator.py: a training checkpoint whose D died gets D's weights (θ, w0, b; not W) from a
checkpoint where it was alive, everything else kept, and the result resumes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from talkinghead.checkpoint import load_checkpoint, save_checkpoint
from talkinghead.models import Discriminator, Embedder, Generator
from talkinghead.training.loop import MetaLearner
from training_standins import feature_networks, make_batch, micro_config, single_thread  # noqa: F401

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "revive-discriminator.py"


def _learner(seed: int) -> MetaLearner:
    torch.manual_seed(seed)
    config = micro_config()
    return MetaLearner(config, Embedder(config.model), Generator(config.model), Discriminator(config.model, 6),
                       feature_networks())


def test_the_dead_discriminator_is_replaced_and_the_rest_kept(tmp_path) -> None:
    dead, alive = _learner(0), _learner(1)
    dead.train_step(make_batch())
    tensors, meta = dead.state()
    save_checkpoint(tmp_path / "dead.safetensors", tensors, dead.config, kind="training", metadata=meta)
    save_checkpoint(tmp_path / "alive.safetensors", alive.export_tensors(), alive.config, kind="export")
    out = tmp_path / "run" / "checkpoints" / "training-00000001.safetensors"
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "dead.safetensors"),
                    str(tmp_path / "alive.safetensors"), str(out)], check=True, capture_output=True)
    revived = load_checkpoint(out, expected_kind="training")
    exported = alive.export_tensors()
    for name, tensor in revived.tensors.items():
        if name.startswith("discriminator.") and not name.startswith("discriminator.video_embeddings."):
            torch.testing.assert_close(tensor, exported[name])
        else:
            torch.testing.assert_close(tensor, tensors[name])  # E, G, EMA, W, optimizers: the dead run's
    assert any(not torch.equal(revived.tensors[n], tensors[n]) for n in exported if n.startswith("discriminator."))
    resumed = _learner(2)
    resumed.load_state(dict(revived.tensors), revived.metadata, source=str(out))
    assert resumed.step == 1 and resumed.train_step(make_batch(seed=1))["skipped"] == 0.0
    again = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "dead.safetensors"),
                            str(tmp_path / "alive.safetensors"), str(out)], capture_output=True, text=True)
    assert again.returncode != 0 and "exists" in again.stderr  # never overwrites
