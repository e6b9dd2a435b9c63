"""Personalization and animation (talkinghead.inference) with tiny random networks.

Landmark detection is replaced by a fake that reads a face id from the picture's top-left block (so the
tests control which frames have a face, and where); everything else is the real thing: the landmarks room's
landmark image, crop policy and smoothing, the checkpoint format, the tiny-64 networks.
"""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch

from _inference_helpers import face, tiny_networks
from _memory import MemoryTrace
from talkinghead import compose
from talkinghead.animation import FrameAnimator, NoFaceInDriver, write_animation
from talkinghead.inference import Avatar, TalkingHead

SIZE = 64
BLOCK = 16
# Face id -> landmarks in a 160x160 picture. Id 0 = no face.
FACES = {
    1: face(centre=(80, 80), scale=30),
    2: face(centre=(80, 80), scale=30, jaw_width=0.8, mouth_width=0.4),
    3: face(centre=(30, 30), scale=5),  # tiny face
    **{10 + i: face(centre=(80 + i, 80), scale=30 + i / 2, mouth_open=0.3 * np.sin(i / 3)) for i in range(8)},
}


def picture(face_id: int, size: int = 160) -> np.ndarray:
    """A picture whose top-left block encodes the face id (robust to H.264 compression: steps of 8)."""
    rng = np.random.default_rng(face_id)
    image = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    image[:BLOCK, :BLOCK] = min(255, face_id * 8)
    return image


def fake_landmarks(image: np.ndarray, previous):
    face_id = int(round(float(image[:BLOCK, :BLOCK].mean()) / 8))
    points = FACES.get(face_id)
    return None if points is None else points.copy()


@pytest.fixture
def head():
    config, embedder, generator, discriminator = tiny_networks()
    return TalkingHead(embedder, generator, discriminator, config, landmarks=fake_landmarks)


def test_feed_forward_psi_is_projection_of_mean_embedding(head):
    avatar = head.personalize([picture(1), picture(2)])
    frames, landmark_images = head._tensors(head.prepare([picture(1), picture(2)]))
    with torch.no_grad():
        expected = head.generator.project(head.embedder(frames, landmark_images).mean(0, keepdim=True))
    assert torch.allclose(avatar.psi, expected, atol=1e-6)
    assert avatar.source_landmarks.shape == (2, 68, 2)
    assert avatar.info["mode"] == "feed-forward"
    # The landmarks are in crop pixels: inside the crop.
    assert (avatar.source_landmarks >= 0).all() and (avatar.source_landmarks < SIZE).all()


def test_fine_tuned_avatar_changes_psi(head):
    feed_forward = head.personalize([picture(1)])
    fine_tuned = head.personalize([picture(1)], steps=2, content_loss=lambda a, b: (a - b).abs().mean())
    assert fine_tuned.info["mode"] == "fine-tuned" and fine_tuned.info["steps"] == 2
    assert not torch.equal(fine_tuned.psi, feed_forward.psi)
    assert fine_tuned.generator is not head.generator


def test_source_without_a_face_is_an_error_naming_it(head, tmp_path):
    with pytest.raises(ValueError, match=r"source #1: no face found"):
        head.personalize([picture(1), picture(0)])


def test_tiny_source_face_is_upscaled_with_a_warning(head, caplog):
    with caplog.at_level(logging.WARNING, logger="talkinghead.inference"):
        avatar = head.personalize([picture(3)])
    assert "small" in caplog.text and "upscaled" in caplog.text
    assert avatar.source_landmarks.max() < SIZE


def driver_frames(ids):
    for face_id in ids:
        yield picture(face_id)


def test_animation_holds_the_last_landmarks_when_a_driver_frame_has_no_face(head, caplog):
    avatar = head.personalize([picture(1)])
    stats = {}
    with caplog.at_level(logging.WARNING, logger="talkinghead.animation"):
        frames = list(avatar.animate_frames(driver_frames([0, 10, 11, 0, 0, 12]), stats=stats))[1:]
    assert stats == {"frames": 6, "held": 3}
    assert "3 of 6 driver frames had no face" in caplog.text
    assert [f.held for f in frames] == [False, False, True, True, False]
    np.testing.assert_array_equal(frames[2].image, frames[1].image)  # held landmarks -> same frame
    assert all(f.image.shape == (SIZE, SIZE, 3) and f.image.dtype == np.uint8 for f in frames)
    # Driving with the first driver frame = the reference reproduces the source's own landmarks.
    np.testing.assert_allclose(frames[0].landmarks, avatar.source_landmarks[0], atol=1e-3)


def test_find_best_frame_and_modes(head):
    avatar = head.personalize([picture(1)])
    ids = [14, 13, 10, 12]
    relative = list(avatar.animate_frames(driver_frames(ids), mode="relative"))
    absolute = list(avatar.animate_frames(driver_frames(ids), mode="absolute"))
    assert len(relative) == len(absolute) == 4
    best = list(avatar.animate_frames(list(driver_frames(ids)), find_best_frame=True, smooth=False))
    # The driver frame closest to the source (id 10: same neutral face) is the reference: exactly the source.
    np.testing.assert_allclose(best[2].landmarks, avatar.source_landmarks[0], atol=1e-3)
    with pytest.raises(ValueError, match="mode"):
        next(avatar.animate(driver_frames(ids), mode="sideways"))


def test_psi_is_computed_once_not_per_frame(head, monkeypatch):
    avatar = head.personalize([picture(1)])
    calls = []
    monkeypatch.setattr(head.embedder, "forward", lambda *a: calls.append(1))
    monkeypatch.setattr(head.generator, "project", lambda *a: calls.append(1))
    assert len(list(avatar.animate(driver_frames([10, 11, 12])))) == 3
    assert calls == []


def test_streaming_memory_is_flat_with_driver_length(head):
    """RSS and live torch tensors at every streamed frame, for 20 vs 120 driver frames (480-px pictures, 675 KiB
    each) after a warm-up: keeping the 100 extra pictures would add 69 MB of RSS (measured noise: about 5 MB),
    keeping one tensor per frame 100 tensors (noise: a few)."""
    avatar = head.personalize([picture(1)])

    def stream(n: int) -> MemoryTrace:
        trace = MemoryTrace()
        trace.sample()
        for _ in avatar.animate(picture(10 + i % 8, size=480) for i in range(n)):
            trace.sample()
        assert len(trace.rss) == n + 1
        return trace

    stream(5)  # warm-up (lazy imports, caches)
    short, long = stream(20), stream(120)
    assert long.growth < short.growth + 20_000_000, (short.growth, long.growth)
    assert max(long.tensors) <= max(short.tensors) + 16, (short.tensors, long.tensors)


def test_avatar_save_load_round_trip_gives_identical_frames(head, tmp_path):
    avatar = head.personalize([picture(1), picture(2)], steps=1, content_loss=lambda a, b: (a - b).abs().mean())
    path = tmp_path / "person.avatar"
    avatar.save(path)
    loaded = Avatar.load(path, landmarks=fake_landmarks)
    torch.testing.assert_close(loaded.psi, avatar.psi, rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.source_landmarks, avatar.source_landmarks)
    a = list(avatar.animate(driver_frames([10, 11, 12])))
    b = list(loaded.animate(driver_frames([10, 11, 12])))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    # Only what animation needs: no embedder, no discriminator.
    from safetensors import safe_open

    with safe_open(str(path), "pt") as handle:
        keys = list(handle.keys())
    assert not any(k.startswith(("embedder.", "discriminator.")) for k in keys)
    assert "psi" in keys and "source_landmarks" in keys
    # Another kind of file is refused with a clear error.
    with pytest.raises(ValueError):
        TalkingHead.load(path)


def test_paste_back_and_mark():
    picture_ = np.full((100, 120, 3), 50, np.uint8)
    head_image = np.full((64, 64, 3), 250, np.uint8)
    pasted = compose.paste_into(picture_, head_image, (30.0, 20.0, 60.0))
    assert pasted.shape == picture_.shape
    assert pasted[50, 60].mean() > 240  # centre of the box: the generated head
    assert pasted[2, 2].mean() == 50  # far outside: the picture
    # A soft edge: along the row through the centre, from the picture (x=30) to the head (x=60) the values rise
    # monotonically through several intermediate values, in steps far smaller than the hard jump (200).
    row = pasted[50, 30:61].mean(-1)
    assert row[0] < 60 and row[-1] > 240
    assert np.all(np.diff(row) >= -1)
    assert ((row > 60) & (row < 240)).sum() >= 4, row
    assert np.diff(row).max() < 80, row
    marked = compose.draw_synthetic_mark(np.zeros((64, 64, 3), np.uint8))
    assert marked.max() > 200 and marked[:32].max() == 0  # a bright label, bottom only


def write_driver(path, ids, fps=12, with_audio=True):
    """A small driver video (frames encode face ids) with a sine-tone AAC audio track."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = video.height = 160
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=16000) if with_audio else None
        for i, face_id in enumerate(ids):
            frame = av.VideoFrame.from_ndarray(picture(face_id), format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        if audio is not None:
            samples = int(16000 * len(ids) / fps)
            tone = (0.2 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 16000)).astype(np.float32)[None]
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]), format="fltp",
                                                   layout="mono")
                chunk.sample_rate, chunk.pts = 16000, start
                for packet in audio.encode(chunk):
                    container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)


def test_output_video_has_driver_frames_fps_audio_and_tag(head, tmp_path):
    import av

    driver = tmp_path / "driver.mp4"
    ids = [10, 11, 12, 0, 13, 14, 15, 16, 17]
    write_driver(driver, ids)
    avatar = head.personalize([picture(1)])
    avatar.landmarks = fake_landmarks
    output = tmp_path / "out.mp4"
    result = write_animation(avatar, driver, output, side_by_side=True)  # the whole picture: the default
    assert result["frames"] == len(ids) and result["held"] == 1
    with av.open(str(output)) as container:
        stream = container.streams.video[0]
        assert float(stream.average_rate) == pytest.approx(12, abs=0.01)
        assert len(container.streams.audio) == 1
        assert "synthetic" in " ".join(f"{k}={v}" for k, v in container.metadata.items()).lower()
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == len(ids)
    assert frames[0].shape[1] > frames[0].shape[0]  # driver | landmarks | pasted-back picture
    with pytest.raises(FileExistsError, match="overwrite"):
        write_animation(avatar, driver, output)
    write_animation(avatar, driver, output, overwrite=True, mark=False)


def test_a_driver_without_any_face_is_an_error_naming_it(head, tmp_path):
    """Animating from landmarks never seen would write the avatar at rest: refused, and no video is written."""
    avatar = head.personalize([picture(1)])
    with pytest.raises(NoFaceInDriver, match=r"<driver frames>: no face found in any of its 3 frames"):
        list(avatar.animate_frames(driver_frames([0, 0, 0])))
    with pytest.raises(NoFaceInDriver, match="no face found in any driver frame"):
        list(avatar.animate_frames([picture(0)] * 2, find_best_frame=True))
    driver = tmp_path / "faceless.mp4"
    write_driver(driver, [0, 0, 0, 0], with_audio=False)
    output = tmp_path / "out.mp4"
    with pytest.raises(NoFaceInDriver, match=re.escape(f"{driver}: no face found in any of its 4 frames")) as error:
        write_animation(avatar, driver, output)
    assert isinstance(error.value, ValueError)  # the CLI's user errors: exit 2, one line
    assert not output.exists()


def test_live_and_animate_render_the_same_frames_through_one_loop(head, monkeypatch, tmp_path):
    """`talkinghead live` runs `FrameAnimator`, the loop of `Avatar.animate_frames`: for the same driver frames
    (no frame dropped, smoothing off since live measures the rate from capture times) the avatar frames agree
    exactly; and with smoothing at capture times spaced 1/fps, live's landmarks are animate's."""
    import threading

    import cv2

    from talkinghead import live

    avatar = head.personalize([picture(1)])
    ids = [0, 10, 11, 0, 12, 13, 14]
    expected = [f.image for f in avatar.animate_frames(driver_frames(ids), smooth=False)]

    used = []
    monkeypatch.setattr(live, "FrameAnimator", lambda *a, **k: used.append(1) or FrameAnimator(*a, **k))
    rendered = threading.Event()

    class LockstepSource:
        """Hands over the next frame only after the previous one was rendered: nothing is dropped."""

        fps, name = 25.0, "lockstep"

        def frames(self):
            for face_id in ids:
                yield picture(face_id)
                assert rendered.wait(30)
                rendered.clear()

        def close(self):
            pass

    shown = []

    def on_frame(captured, image, latency_ms):
        shown.append(image)
        rendered.set()

    stats = live.run_live(avatar, LockstepSource(), output=tmp_path / "live.mp4", smooth=False, on_frame=on_frame)
    assert used == [1] and (stats.rendered, stats.dropped, stats.held) == (len(ids), 0, 2)
    band = 22  # live draws its text on a band at the top; the avatar panel is the right 256 x 256
    for image, generated in zip(shown, expected, strict=True):
        panel = compose.draw_synthetic_mark(cv2.resize(generated, (256, 256), interpolation=cv2.INTER_LINEAR))
        np.testing.assert_array_equal(image[band:, -256:], panel[band:])

    # Smoothing: live's capture times 1/fps apart give animate's smoothed landmarks (a gap in the capture times,
    # a dropped or faceless frame, is measured as a lower rate: live's one difference).
    faces = [face_id for face_id in ids if face_id]
    animated = [f.landmarks for f in avatar.animate_frames(driver_frames(faces))]
    animator = FrameAnimator(avatar, fps=1000.0)  # the nominal rate is replaced by the measured one
    timed = [animator(picture(face_id), at=100.0 + i / 25.0).landmarks for i, face_id in enumerate(faces)]
    np.testing.assert_allclose(np.stack(timed), np.stack(animated), atol=1e-3)


def test_measured_animation_counts_pops_against_the_driver_crop_and_never_across_a_faceless_frame(head, tmp_path):
    """``measure_pops`` (animate --stats): consecutive frames with a driver face form pairs; the faceless frame
    breaks the run, so 4 + 4 face frames give 3 + 3 pairs. Each driver picture is fresh noise, so its crop changes
    far more than the avatar does: no pair pops."""
    from talkinghead.animation import driver_crop
    from talkinghead.landmarks.crop import crop_face

    driver = tmp_path / "driver.mp4"
    write_driver(driver, [10, 11, 12, 13, 0, 14, 15, 16, 17])
    avatar = head.personalize([picture(1)])
    avatar.landmarks = fake_landmarks
    result = write_animation(avatar, driver, tmp_path / "out.mp4", measure_pops=True)
    stability = result["stability"]
    assert stability["pairs"] == 6 and stability["pop_rate"] == 0.0 and stability["change_ratio"] < 0.5
    assert "stability" not in write_animation(avatar, driver, tmp_path / "plain.mp4")
    frames = list(avatar.animate_frames(str(driver)))
    crop = driver_crop(frames[0], SIZE)
    assert np.array_equal(crop, crop_face(frames[0].driver, frames[0].driver_landmarks, SIZE)[0])
    assert frames[4].held and driver_crop(frames[4], SIZE) is None


def test_animate_closes_an_open_source_mouth_on_a_closed_driver_with_lip_normalization(head):
    """An avatar made from an open-mouth picture follows a closed driver's mouth only when the lips are normalized
    (`landmarks.lip_normalization`); `animate --no-lip-normalization` turns it off, the default is the module's."""
    from talkinghead.cli import build_parser
    from talkinghead.landmarks import lip_normalization
    from talkinghead.metrics.mouth import MOUTH_CLOSED, mouth_openness

    avatar = head.personalize([picture(14)])  # mouth open by 0.29 face units
    assert mouth_openness(avatar.source_landmarks[0]) > 0.2
    driver = np.stack([FACES[10], FACES[10]])  # a closed mouth, held
    opened = [mouth_openness(f.landmarks) for f in avatar.animate_frames(driver, smooth=False,
                                                                        lip_normalization=False)]
    closed = [mouth_openness(f.landmarks) for f in avatar.animate_frames(driver, smooth=False,
                                                                        lip_normalization=True)]
    assert min(opened) > 0.2 and max(closed) < MOUTH_CLOSED
    default = [mouth_openness(f.landmarks) for f in avatar.animate_frames(driver, smooth=False)]
    assert default == (closed if lip_normalization.DEFAULT else opened)
    parse = build_parser().parse_args
    base = ["animate", "--source", "a.png", "--driver", "d.mp4", "-o", "o.mp4"]
    assert parse(base).lip_normalization is None  # write_animation's default applies
    assert parse([*base, "--no-lip-normalization"]).lip_normalization is False
    assert parse([*base, "--lip-normalization"]).lip_normalization is True
