"""Video and image I/O: round trips, audio pass-through, atomic writes, image normalization, bad inputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from talkinghead.video import MediaError, VideoReader, VideoWriter, read_image


def _frames(count: int, width: int = 64, height: int = 48) -> list[np.ndarray]:
    """Frames whose mean brightness encodes their index (survives lossy coding)."""
    frames = []
    for index in range(count):
        frame = np.zeros((height, width, 3), dtype=np.uint8)
        frame[:, :, 0] = 20 + 7 * (index % 30)
        frame[: height // 2, : width // 2, 1] = 200  # a fixed green quadrant: orientation check
        frames.append(frame)
    return frames


def _write_audio(path: Path, codec: str, seconds: float = 2.0, rate: int = 16000) -> None:
    """A sine tone in ``path`` (``aac`` in .m4a or ``pcm_s16le`` in .wav), made with PyAV."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        fmt = "fltp" if codec == "aac" else "s16"
        samples = int(seconds * rate)
        t = np.arange(samples) / rate
        wave = 0.3 * np.sin(2 * np.pi * 440 * t)
        data = wave.astype(np.float32) if fmt == "fltp" else (wave * 32767).astype(np.int16)
        chunk = 1024
        for start in range(0, samples, chunk):
            piece = data[start:start + chunk][None, :]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format=fmt, layout="mono")
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def _audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float(sum(frame.samples for frame in container.decode(stream)) / stream.rate)


def test_round_trip_frame_count_fps_size(tmp_path: Path) -> None:
    path = tmp_path / "out.mp4"
    frames = _frames(12)
    with VideoWriter(path, fps=25, metadata={"talkinghead": "synthetic"}) as writer:
        for frame in frames:
            writer.write(frame)
    reader = VideoReader(path)
    assert reader.fps == pytest.approx(25.0)
    assert reader.size == (64, 48)
    assert reader.num_frames == 12
    assert not reader.has_audio
    assert reader.metadata.get("talkinghead") == "synthetic"
    decoded = list(reader)
    assert len(decoded) == 12
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in decoded)
    # Content survives: per-frame red level and the green quadrant's place.
    for original, back in zip(frames, decoded, strict=True):
        assert abs(float(back[..., 0].mean()) - float(original[..., 0].mean())) < 4
    assert decoded[0][5, 5, 1] > 150 and decoded[0][40, 60, 1] < 50


def test_odd_size_is_padded_not_squashed(tmp_path: Path) -> None:
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, fps=10) as writer:
        for frame in _frames(3, width=33, height=21):
            writer.write(frame)
    reader = VideoReader(path)
    assert reader.size == (34, 22)
    assert len(list(reader)) == 3


@pytest.mark.parametrize(("codec", "suffix"), [("aac", ".m4a"), ("pcm_s16le", ".wav")])
def test_audio_pass_through(tmp_path: Path, codec: str, suffix: str) -> None:
    """AAC is copied, PCM re-encoded to AAC; audio is cut at the video's end (1 s of video, 2 s of audio)."""
    audio = tmp_path / f"tone{suffix}"
    _write_audio(audio, codec)
    path = tmp_path / "with_audio.mp4"
    with VideoWriter(path, fps=25, audio_from=audio) as writer:
        for frame in _frames(25):
            writer.write(frame)
    reader = VideoReader(path)
    assert reader.has_audio and reader.num_frames == 25
    with av.open(str(path)) as container:
        assert container.streams.audio[0].codec_context.name == "aac"
    assert 0.8 < _audio_seconds(path) < 1.2


def test_writer_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "never.mp4"
    with pytest.raises(RuntimeError, match="boom"), VideoWriter(path, fps=25) as writer:
        writer.write(_frames(1)[0])
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_mixed_sizes_and_no_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frame 1"), VideoWriter(tmp_path / "a.mp4", fps=25) as writer:
        writer.write(_frames(1)[0])
        writer.write(_frames(1, width=32)[0])
    with pytest.raises(MediaError, match="no frames"), VideoWriter(tmp_path / "b.mp4", fps=25):
        pass
    assert list(tmp_path.iterdir()) == []


def test_bad_videos_name_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(MediaError, match=r"empty\.mp4.*empty"):
        VideoReader(empty)
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 20)
    with pytest.raises(MediaError, match=r"notes\.mp4"):
        VideoReader(text)
    with pytest.raises(MediaError, match="does not exist"):
        VideoReader(tmp_path / "missing.mp4")


def test_read_image_rgba_composites_on_black(tmp_path: Path) -> None:
    bgra = np.zeros((4, 6, 4), dtype=np.uint8)
    bgra[..., :3] = (255, 255, 255)  # white everywhere, but...
    bgra[:, :2, 3] = 0  # transparent
    bgra[:, 2:4, 3] = 128  # half
    bgra[:, 4:, 3] = 255  # opaque
    bgra[:, 4:, :3] = (0, 0, 255)  # opaque red (BGR)
    path = tmp_path / "rgba.png"
    cv2.imwrite(str(path), bgra)
    image = read_image(path)
    assert image.shape == (4, 6, 3) and image.dtype == np.uint8
    assert (image[:, :2] == 0).all()
    assert abs(int(image[0, 2, 0]) - 128) <= 1
    assert tuple(image[0, 5]) == (255, 0, 0)


def test_read_image_grey_and_16_bit(tmp_path: Path) -> None:
    grey = (np.arange(20, dtype=np.uint8).reshape(4, 5) * 10)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)
    image = read_image(tmp_path / "grey.png")
    assert image.shape == (4, 5, 3)
    assert (image[..., 0] == grey).all() and (image[..., 2] == grey).all()

    deep = np.zeros((3, 3, 3), dtype=np.uint16)
    deep[..., 2] = 65535  # red in BGR
    deep[..., 1] = 257 * 100
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    image = read_image(tmp_path / "deep.png")
    assert image.dtype == np.uint8
    assert tuple(image[1, 1]) == (255, 100, 0)


def test_read_image_applies_exif_rotation(tmp_path: Path) -> None:
    pil = pytest.importorskip("PIL.Image")
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:10, :10] = (255, 0, 0)  # red block at the stored top-left
    image = pil.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # orientation 6: display = stored rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    result = read_image(path)
    assert result.shape == (40, 20, 3)
    assert result[3, 16, 0] > 200 and result[3, 16, 1] < 60  # stored top-left -> displayed top-right
    assert result[36, 3, 0] < 60


def test_read_image_bad_inputs(tmp_path: Path) -> None:
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(MediaError, match=r"empty\.png"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(MediaError, match=r"text\.jpg.*cannot be decoded"):
        read_image(tmp_path / "text.jpg")


def test_reader_streams_a_shared_clip(shared_data: Path) -> None:
    path = shared_data / "videos" / "lp__d13_man_selfie_vertical.mp4"
    reader = VideoReader(path)
    assert reader.size == (720, 1280) and reader.fps == pytest.approx(30.0)
    assert reader.num_frames == 352
    first = next(iter(reader))
    assert first.shape == (1280, 720, 3)
