"""Inference with the warp-guided generator family (issue 15): the avatar keeps its source crops and renders each
frame from the ``model.inference_sources`` = N sources nearest to the target landmarks, with their mesh grids.

Everything is the real thing at warp-tiny (64 px): the untrained WarpGenerator (which outputs exactly the mesh warp
of the nearest source), the landmark mesh, the checkpoint format; the sources are synthetic frames with their own
landmarks (`inference.Source`s, as the evaluation passes them), so no landmark detector runs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from talkinghead.checkpoint import model_state, prefixed, save_checkpoint
from talkinghead.config import preset
from talkinghead.data.synthetic import SyntheticVideo
from talkinghead.inference import Avatar, Source, TalkingHead
from talkinghead.landmarks.mesh import normalized_landmark_distance, sampling_grid, warp_image
from talkinghead.models import Discriminator, Embedder, Generator, WarpGenerator

SIZE = 64


def no_detection(image, previous):
    raise AssertionError("the sources carry their landmarks; nothing should detect")


def warp_head(seed: int = 0, discriminator: bool = False, **model) -> TalkingHead:
    """A freshly built (untrained) warp-tiny TalkingHead (with D when it will be fine-tuned); ``model`` overrides
    ModelConfig fields."""
    config = preset("warp-tiny")
    if model:
        import dataclasses

        config = dataclasses.replace(config, model=dataclasses.replace(config.model, **model))
    torch.manual_seed(seed)
    return TalkingHead(Embedder(config.model), WarpGenerator(config.model),
                       Discriminator(config.model, 1) if discriminator else None, config, landmarks=no_detection)


def synthetic_frames(count: int, identity: int = 0, motion: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 frames [count, 64, 64, 3], landmarks [count, 68, 2]) of one synthetic talking head."""
    frames, landmarks, _ = SyntheticVideo(identity, motion, count).render(SIZE)
    return frames, landmarks.astype(np.float32)


def personalize(head: TalkingHead, frames: np.ndarray, landmarks: np.ndarray, **options) -> Avatar:
    """Feed-forward (or ``steps``) from frames with their own landmarks (no dlib identity check: one person)."""
    return head.personalize(as_sources(frames, landmarks), check_identity=False, **options)


def as_sources(frames: np.ndarray, landmarks: np.ndarray) -> list[Source]:
    return [Source(f"frame {i}", image, image, points, (0.0, 0.0, float(SIZE)))
            for i, (image, points) in enumerate(zip(frames, landmarks, strict=True))]


def mesh_warp_of(frames: np.ndarray, landmarks: np.ndarray, source: int, target: np.ndarray) -> np.ndarray:
    return warp_image(frames[source], sampling_grid(landmarks[source], target, SIZE))


def grey_levels(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_frames(33)


def test_untrained_warp_avatar_renders_the_mesh_warp_of_the_nearest_source(clip):
    frames, landmarks = clip
    sources, target = [0, 12, 24], landmarks[30]
    avatar = personalize(warp_head(), frames[sources], landmarks[sources])
    assert avatar.info["mode"] == "feed-forward" and avatar.info["inference_sources"] == 2
    assert avatar.source_crops.shape == (3, SIZE, SIZE, 3) and avatar.source_crops.dtype == np.uint8
    nearest = int(np.argmin(normalized_landmark_distance(landmarks[sources], target)))
    image, drawing = avatar.render(target)
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8 and drawing.shape == (SIZE, SIZE, 3)
    expected = mesh_warp_of(frames[sources], landmarks[sources], nearest, target)
    assert grey_levels(image, expected) <= 1
    # Not vacuous: the other sources' warps, and the nearest source unwarped, look different.
    for other in set(range(3)) - {nearest}:
        assert np.abs(image.astype(int) - mesh_warp_of(frames[sources], landmarks[sources], other, target)).mean() > 2
    assert np.abs(image.astype(int) - frames[sources][nearest].astype(int)).mean() > 1
    # The batch method gives the same frames.
    batch = avatar.render_batch(landmarks[[30, 5]])
    assert batch.shape == (2, SIZE, SIZE, 3) and grey_levels(batch[0], image) <= 1


def test_warp_avatar_saves_and_loads_and_renders_the_same_frame(clip, tmp_path):
    frames, landmarks = clip
    avatar = personalize(warp_head(), frames[:3], landmarks[:3])
    avatar.save(tmp_path / "warp.avatar")
    with safe_open(tmp_path / "warp.avatar", "pt") as reader:
        crops = reader.get_tensor("source_crops")
    assert crops.dtype == torch.uint8 and tuple(crops.shape) == (3, SIZE, SIZE, 3)
    loaded = Avatar.load(tmp_path / "warp.avatar", landmarks=no_detection)
    assert isinstance(loaded.generator, WarpGenerator) and loaded.info["inference_sources"] == 2
    np.testing.assert_array_equal(loaded.source_crops, frames[:3])
    np.testing.assert_array_equal(loaded.render(landmarks[20])[0], avatar.render(landmarks[20])[0])


def test_a_warp_avatar_file_without_its_source_crops_is_refused(clip, tmp_path):
    frames, landmarks = clip
    personalize(warp_head(), frames[:2], landmarks[:2]).save(tmp_path / "warp.avatar")
    with safe_open(tmp_path / "warp.avatar", "pt") as reader:
        header = reader.metadata()
    tensors = {k: v for k, v in load_file(tmp_path / "warp.avatar").items() if k != "source_crops"}
    save_file(tensors, tmp_path / "cropless.avatar", metadata=header)
    with pytest.raises(ValueError, match=r"cropless.avatar.*source_crops"):
        Avatar.load(tmp_path / "cropless.avatar")
    with pytest.raises(ValueError, match="source_crops"):
        Avatar(WarpGenerator(preset("warp-tiny").model), torch.zeros(1), landmarks[:2], preset("warp-tiny"),
               landmarks=no_detection)


def test_only_the_n_nearest_of_32_sources_render_a_frame(clip):
    frames, landmarks = clip
    head = warp_head()
    avatar = personalize(head, frames[:32], landmarks[:32])
    target = landmarks[32]
    distances = normalized_landmark_distance(landmarks[:32], target)
    order = np.argsort(distances, kind="stable")
    chosen = avatar.warp_sources(target[None])
    assert chosen.count == 2
    np.testing.assert_allclose(chosen.distances[0].numpy(), distances[order[:2]], rtol=1e-6)
    np.testing.assert_array_equal(chosen.grids[0, 1].numpy(), sampling_grid(landmarks[order[1]], target, SIZE))
    # A generator that mixes its N sources (gate < 1: the confidences' softmax counts) sees the second nearest
    # source, but never a farther one.
    generator = avatar.generator
    with torch.no_grad():
        generator.gate_head.bias.fill_(0.5)

    def render_with(crops: np.ndarray) -> np.ndarray:
        other = Avatar(generator, avatar.psi, landmarks[:32], head.config, landmarks=no_detection,
                       source_crops=crops)
        return other.render(target)[0]

    reference = render_with(frames[:32])
    far, second = frames[:32].copy(), frames[:32].copy()
    far[order[2:]] = 255 - far[order[2:]]
    second[order[1]] = 255 - second[order[1]]
    np.testing.assert_array_equal(render_with(far), reference)
    assert grey_levels(render_with(second), reference) > 10


def test_load_builds_the_exported_family(tmp_path):
    config = preset("warp-tiny")
    torch.manual_seed(0)
    embedder, generator = Embedder(config.model), WarpGenerator(config.model)
    tensors = {**prefixed("embedder.", model_state(embedder)), **prefixed("generator.", model_state(generator))}
    path = save_checkpoint(tmp_path / "export.safetensors", tensors, config, kind="export")
    head = TalkingHead.load(path, landmarks=no_detection)
    assert isinstance(head.generator, WarpGenerator) and head.discriminator is None
    for name, value in model_state(generator).items():
        torch.testing.assert_close(head.generator.state_dict()[name], value, rtol=0, atol=0)


def test_an_avatar_file_from_before_the_warp_family_still_loads(tmp_path):
    """A paper-family avatar whose config predates the warp fields (no model.generator, warp_*, synthesis_*,
    inference_sources) and which has no source crops loads as the paper family and renders as before."""
    config = preset("tiny-64")
    torch.manual_seed(0)
    generator = Generator(config.model)
    _, landmarks = synthetic_frames(2)
    avatar = Avatar(generator, torch.randn(generator.num_adain_params), landmarks[:1], config, landmarks=no_detection)
    avatar.save(tmp_path / "new.avatar")
    with safe_open(tmp_path / "new.avatar", "pt") as reader:
        header = dict(reader.metadata())
    assert "source_crops" not in load_file(tmp_path / "new.avatar")  # the paper family does not need them
    old_config = json.loads(header["config"])
    new_fields = [k for k in old_config["model"] if k == "generator" or k.startswith(("warp_", "synthesis_"))
                  or k == "inference_sources"]
    assert "generator" in new_fields
    for name in new_fields:
        del old_config["model"][name]
    header["config"] = json.dumps(old_config)
    save_file(load_file(tmp_path / "new.avatar"), tmp_path / "old.avatar", metadata=header)
    loaded = Avatar.load(tmp_path / "old.avatar", landmarks=no_detection)
    assert isinstance(loaded.generator, Generator) and loaded.source_crops is None
    np.testing.assert_array_equal(loaded.render(landmarks[1])[0], avatar.render(landmarks[1])[0])


def test_a_warp_avatar_fine_tunes_from_its_source_frames_and_landmarks(clip):
    """Fine-tuning (§3.3) gets the sources' landmarks (`training.finetune`'s ``landmarks``) and gives G′; the
    fine-tuned avatar still renders from its own source crops. (ψ′ is not asserted to move: at the start the
    synthesis branch is masked out, so ψ′ gets no gradient until the mask opens.)"""
    frames, landmarks = clip
    head = warp_head(discriminator=True)
    feed_forward = personalize(head, frames[:3], landmarks[:3])
    tuned = personalize(head, frames[:3], landmarks[:3], steps=2, content_loss=lambda a, b: (a - b).abs().mean())
    assert tuned.info["mode"] == "fine-tuned" and tuned.info["steps"] == 2 and tuned.info["inference_sources"] == 2
    assert tuned.generator is not head.generator and tuned.psi.shape == feed_forward.psi.shape
    changed = [name for name, value in tuned.generator.state_dict().items()
               if not torch.equal(value, head.generator.state_dict()[name])]
    assert changed  # G′ was trained
    image = tuned.render(landmarks[30])[0]
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
