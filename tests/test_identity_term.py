"""The embedder's identity term (issue 25 item 4): frames of one person embed alike and apart from other people's,
so that ψ̂ = P ê can carry identity. The loss's values, its gradient routing (E only), and the episodes' labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talkinghead import losses
from talkinghead.config import ConfigError, apply_overrides, preset
from test_training_steps import make_learner
from training_standins import make_batch, single_thread  # noqa: F401


def _mean_cosine_between_people(embeddings: torch.Tensor) -> float:
    """Mean cosine similarity of frames of different episodes ([B, K, N], one person each)."""
    unit = F.normalize(embeddings.flatten(0, 1), dim=1)
    labels = torch.arange(embeddings.shape[0]).repeat_interleave(embeddings.shape[1])
    cosine = unit @ unit.T
    return float(cosine[labels[:, None] != labels[None, :]].mean())


def test_the_term_is_low_when_frames_group_by_person_and_high_when_they_do_not() -> None:
    torch.manual_seed(0)
    centres = torch.randn(4, 1, 16) * 3
    grouped = centres + 0.1 * torch.randn(4, 3, 16)  # 4 people x 3 frames, tight clusters
    people = torch.arange(4)
    low = float(losses.identity_contrast_loss(grouped, people))
    shuffled = grouped.flatten(0, 1)[torch.randperm(12)].view(4, 3, 16)  # the same frames, labels scrambled
    high = float(losses.identity_contrast_loss(shuffled, people))
    assert low == pytest.approx(np.log(2), abs=0.01)  # the floor: each frame's share split over its 2 positives
    assert high > 1.5
    # chance: every other frame equally similar -> -log(1/11) whatever the positives
    assert float(losses.identity_contrast_loss(torch.ones(4, 3, 16), people)) == pytest.approx(np.log(11), rel=1e-5)


def test_two_videos_of_one_person_count_as_the_same_person() -> None:
    torch.manual_seed(1)
    same = torch.randn(1, 1, 8).repeat(2, 3, 1) + 0.01 * torch.randn(2, 3, 8)
    other = torch.randn(1, 3, 8)
    embeddings = torch.cat([same, other])
    as_one = float(losses.identity_contrast_loss(embeddings, torch.tensor([5, 5, 9])))
    as_two = float(losses.identity_contrast_loss(embeddings, torch.tensor([5, 6, 9])))
    assert as_one < as_two


def test_one_person_gives_zero_but_stays_in_the_graph_and_bad_shapes_are_refused() -> None:
    embeddings = torch.randn(2, 3, 8, requires_grad=True)
    value = losses.identity_contrast_loss(embeddings, torch.tensor([4, 4]))
    assert float(value.detach()) == 0.0 and value.requires_grad
    with pytest.raises(ValueError, match=r"\[B, K, N\]"):
        losses.identity_contrast_loss(torch.randn(6, 8), torch.tensor([0, 1]))


def test_descending_the_term_pulls_collapsed_people_apart() -> None:
    """ê collapsed as measured on the shipped embedder (people ~7 % apart along one direction): the term's
    gradient alone spreads them."""
    torch.manual_seed(2)
    base = torch.rand(1, 1, 16) + 1.0
    embeddings = (base + 0.05 * torch.randn(4, 1, 16) + 0.01 * torch.randn(4, 3, 16)).requires_grad_(True)
    people = torch.arange(4)
    before = _mean_cosine_between_people(embeddings.detach())
    optimizer = torch.optim.Adam([embeddings], lr=0.05)  # Adam, as training: steps independent of the scale
    for _ in range(50):
        optimizer.zero_grad()
        losses.identity_contrast_loss(embeddings, people).backward()
        optimizer.step()
    after = _mean_cosine_between_people(embeddings.detach())
    assert before > 0.99 and after < 0.8


def test_the_weight_and_temperature_are_checked() -> None:
    assert preset("warp-128").loss.resolved_weights()["identity"] == 0.0  # off unless asked for
    with pytest.raises(ConfigError, match="identity_temperature"):
        apply_overrides(preset("warp-128"), ["loss.identity_temperature=0"]).validate()
    with pytest.raises(ConfigError, match="identity"):
        apply_overrides(preset("warp-128"), ["loss.identity_weight=-1"]).validate()


def test_in_training_the_term_reaches_the_embedder_only_and_is_logged() -> None:
    """With every other weight at 0 the E/G update is the identity term alone: E moves, G and P do not."""
    zero = [f"loss.{name}=0" for name in ("pixel_weight", "adversarial_weight", "feature_matching_weight",
                                          "match_weight")]
    learner = make_learner("loss.identity_weight=1", *zero)
    batch = make_batch(video_index=(1, 3))
    batch["identity_index"] = torch.tensor([0, 1])
    embedder_before = [p.detach().clone() for p in learner.embedder.parameters()]
    generator_before = [p.detach().clone() for p in learner.generator.parameters()]
    embedding, generated = learner.generate(batch)
    logs = learner.generator_step(batch, embedding, generated)
    assert logs is not None and float(logs["loss/identity"]) > 0
    assert any(not torch.equal(a, b) for a, b in zip(embedder_before, learner.embedder.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(generator_before, learner.generator.parameters(), strict=True))


def test_episodes_label_each_video_with_its_person(tmp_path) -> None:
    from talkinghead.data.episodes import EpisodeDataset
    from talkinghead.data.index import build_index, encode_frame, write_video_folder

    rng = np.random.default_rng(0)
    for key, identity in (("b/v1", "bob"), ("a/v1", "ann"), ("b/v2", "bob")):
        points = rng.uniform(4, 28, (3, 68, 2)).astype(np.float32)
        images = [encode_frame(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(3)]
        write_video_folder(tmp_path / "videos" / key, images, points, {"key": key, "identity": identity,
                                                                        "image_size": 32})
    build_index(tmp_path, {"image_size": 32, "crop": {}, "landmark_backend": "test"})
    dataset = EpisodeDataset(tmp_path, 32, frames_per_episode=2)
    people = {dataset.videos[i].key: int(dataset[i]["identity_index"]) for i in range(len(dataset))}
    assert people == {"a/v1": 0, "b/v1": 1, "b/v2": 1}  # sorted names: ann 0, bob 1
    only_bob = EpisodeDataset(tmp_path, 32, frames_per_episode=2, identities=["bob"])
    assert {int(only_bob[i]["identity_index"]) for i in range(len(only_bob))} == {1}  # labels do not move
