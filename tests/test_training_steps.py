"""The shared GAN step (training/steps.py): how many updates one meta-learning step makes, the FF variant end to
end, Eq. 5 in one place, and a step with a real feature network (the offline MobileNetV2)."""

from __future__ import annotations

import pytest
import torch

from talkinghead.checkpoint import load_checkpoint, load_model_state
from talkinghead.models import Discriminator, Embedder, Generator
from talkinghead.perceptual_weights import build_feature_networks
from talkinghead.training import state as training_state
from talkinghead.training.finetune import require_finetunable
from talkinghead.training.loop import MetaLearner, train
from training_standins import RandomEpisodes, feature_networks, make_batch, micro_config, single_thread  # noqa: F401


def make_learner(*overrides: str, networks=None) -> MetaLearner:
    torch.manual_seed(0)
    config = micro_config(*overrides)
    return MetaLearner(config, Embedder(config.model), Generator(config.model), Discriminator(config.model, 6),
                       networks if networks is not None else feature_networks())


def count_steps(optimizer: torch.optim.Optimizer, counts: dict[str, int], name: str) -> None:
    original = optimizer.step

    def step(*args, **kwargs):
        counts[name] += 1
        return original(*args, **kwargs)

    optimizer.step = step  # type: ignore[method-assign]


@pytest.mark.parametrize("variant,discriminator_steps", [("FT", 2), ("FT", 3), ("FF", 2)])
def test_one_meta_learning_step_counts_its_optimizer_steps(variant, discriminator_steps):
    """discriminator_steps D updates (θ's Adam and W's SparseAdam each), then exactly one E/G update; W's
    SparseAdam steps once more in the FT variant only (L_MCH)."""
    learner = make_learner(f"train.variant={variant}", f"train.discriminator_steps={discriminator_steps}")
    counts = {"discriminator": 0, "video_embeddings": 0, "generator": 0}
    for name, optimizer in learner.optimizers().items():
        count_steps(optimizer, counts, name)
    logs = learner.train_step(make_batch())
    assert logs["skipped"] == 0.0
    assert counts == {"discriminator": discriminator_steps, "generator": 1,
                      "video_embeddings": discriminator_steps + (variant == "FT")}


def test_the_ff_variant_trains_and_exports_a_feed_forward_model_that_refuses_fine_tuning(tmp_path):
    """Two FF steps: W's rows move only in D updates (no W_i ← ê_i start, no L_MCH), every file says FF, the
    export runs feed-forward (ψ̂ = P ê), and fine-tuning it is refused."""
    config = micro_config("train.variant=FF", "train.steps=2")
    dataset = RandomEpisodes()
    learner = train(config, tmp_path, dataset, num_videos=len(dataset), feature_networks=feature_networks(),
                    progress=False)
    assert learner.step == 2 and learner.bad_steps == 0 and not learner.use_match
    assert int(learner.video_started.sum()) == 0  # W's rows were never started from ê (FT-only)
    training = load_checkpoint(training_state.checkpoint_path(tmp_path, 2), expected_kind="training")
    export_path = tmp_path / training_state.EXPORT_NAME
    export = load_checkpoint(export_path, expected_kind="export")
    assert training.metadata["variant"] == export.metadata["variant"] == export.config.train.variant == "FF"
    embedder, generator = Embedder(export.config.model).eval(), Generator(export.config.model).eval()
    load_model_state(embedder, export.tensors, "embedder.", export_path)
    load_model_state(generator, export.tensors, "generator.", export_path)
    batch = make_batch()
    with torch.no_grad():
        embedding = embedder(batch["source_images"][0], batch["source_landmark_images"][0]).mean(0)  # Eq. 7
        image = generator(batch["target_landmark_image"][:1], generator.project(embedding[None]))
    assert image.shape == (1, 3, 32, 32) and torch.isfinite(image).all()
    with pytest.raises(ValueError, match="feed-forward \\(FF\\) variant"):
        require_finetunable(export.config, export_path)


def test_generator_update_in_ff_never_moves_w():
    learner = make_learner("train.variant=FF")
    w_before = learner.video_embeddings.detach().clone()
    batch = make_batch()
    embedding, generated = learner.generate(batch)
    assert learner.generator_step(batch, embedding, generated) is not None
    assert torch.equal(learner.video_embeddings.detach(), w_before)


def test_realism_is_eq5_in_both_forms():
    config = micro_config()
    discriminator = Discriminator(config.model, 4)
    with torch.no_grad():
        discriminator.w0.normal_()
        discriminator.b.fill_(0.5)
    v = torch.rand(3, config.model.embedding_dim)
    rows = torch.rand(3, config.model.embedding_dim)
    expected = (v * (rows + discriminator.w0)).sum(1) + 0.5  # r = vᵀ(W_i + w0) + b
    assert torch.allclose(discriminator.realism(v, rows), expected)
    w_prime = torch.rand(config.model.embedding_dim)
    assert torch.allclose(discriminator.realism(v, w_prime=w_prime), (v * w_prime).sum(1) + 0.5)  # r = vᵀw′ + b
    with pytest.raises(ValueError, match="exactly one"):
        discriminator.realism(v, rows, w_prime)


def test_a_training_step_with_the_real_offline_mobilenet():
    """The real feature network (ImageNet MobileNetV2 from the offline weights package), no pixel term."""
    config = micro_config("loss.feature_network=mobilenet-offline", "loss.pixel_weight=0")
    networks = build_feature_networks(config.loss)
    assert set(networks) == {"mobilenet"}
    learner = make_learner("loss.feature_network=mobilenet-offline", "loss.pixel_weight=0", networks=networks)
    embedder = {n: p.detach().clone() for n, p in learner.embedder.named_parameters()}
    generator = {n: p.detach().clone() for n, p in learner.generator.named_parameters()}
    logs = learner.train_step(make_batch())
    assert logs["skipped"] == 0.0 and "loss/pixel" not in logs
    assert torch.isfinite(torch.tensor(logs["loss/mobilenet"])) and logs["loss/mobilenet"] > 0
    assert any(not torch.equal(p.detach(), embedder[n]) for n, p in learner.embedder.named_parameters())
    assert any(not torch.equal(p.detach(), generator[n]) for n, p in learner.generator.named_parameters())
    # the content term moved G toward the target: a second look at the same batch scores lower
    again = learner.train_step(make_batch())
    assert again["loss/mobilenet"] < logs["loss/mobilenet"]


def test_a_discriminator_whose_features_all_died_is_logged_and_warned_about_once(caplog):
    """V(x, y) ends in a ReLU (paper): when every entry is zero D's score is the constant b and D cannot recover.
    ``discriminator/active`` logs the share of live entries; a dead V is warned about once."""
    learner = make_learner()
    logs = learner.train_step(make_batch())
    assert 0 < logs["discriminator/active"] <= 1
    encode = learner.discriminator.encode
    learner.discriminator.encode = lambda *a: (lambda v, f: (v * 0, f))(*encode(*a))  # type: ignore[method-assign]
    with caplog.at_level("WARNING", logger="talkinghead.training.loop"):
        for seed in range(2):
            logs = learner.train_step(make_batch(seed=seed))
            assert logs["discriminator/active"] == 0.0
    assert sum("zero" in r.message and "discriminator" in r.message for r in caplog.records) == 1
