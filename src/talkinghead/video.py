"""Stream video frames in and out with PyAV (H.264 + AAC), and read still images as uint8 RGB.

Every image this module returns is numpy ``uint8`` RGB ``[H, W, 3]``, the data pipeline's convention.

* `VideoReader(path)`: iterate decoded frames one at a time (bounded memory whatever the length);
  ``fps``, ``num_frames`` (the container's count, or an estimate from duration x fps), ``size`` (W, H after
  the display rotation), ``has_audio``, ``metadata``.
* `VideoWriter(path, fps, audio_from=None, metadata=None)`: a context manager that encodes H.264 (yuv420p)
  into a temporary file beside ``path`` and renames it to ``path`` only when the block ends without an error,
  so a crash or Ctrl-C never leaves a half-written output. ``audio_from`` copies the audio of another media
  file (stream copy when the codec fits the container, else re-encoded to AAC), cut at the video's end.
  yuv420p needs even sizes: odd widths/heights are padded by one pixel (the last row/column repeated) and a
  warning is logged; the stored video is then one pixel wider/taller than the frames given.
* `read_image(path)`: any common still image normalized to uint8 RGB: greyscale is repeated to 3 channels,
  16-bit is scaled by 1/257, EXIF orientation of JPEGs is applied, and an alpha channel is composited on
  BLACK (``rgb * alpha``), so transparent areas become black rather than the undefined colour stored under them.

Unreadable, empty or corrupt inputs raise `MediaError` naming the file.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})
"""File suffixes (lower case) read as still images (`read_image`); the project's one list."""
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".flv", ".m4v", ".mpg", ".mpeg"})
"""File suffixes (lower case) read as videos (`VideoReader`); the project's one list."""

# Audio codecs an MP4/MOV file can carry as they are; anything else is re-encoded to AAC.
_MP4_AUDIO_COPY = {"aac", "mp3", "alac"}
_MP4_LIKE = {".mp4", ".m4v", ".mov"}


class MediaError(RuntimeError):
    """A video or image cannot be read or written. The message names the file and says why."""


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise MediaError(f"{what} {path} does not exist")
    if path.is_dir():
        raise MediaError(f"{what} {path} is a folder, not a file")
    if path.stat().st_size == 0:
        raise MediaError(f"{what} {path} is empty (0 bytes); re-export or remove it")


class VideoReader:
    """Decoded frames of a video file, one at a time, as uint8 RGB ``[H, W, 3]``.

    Iterating twice decodes the file twice (each iteration re-opens it); memory stays at one frame plus
    the decoder's buffers. Rotation metadata (phone videos) is applied, so ``size`` is what a viewer shows.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        _check_file(self.path, "video")
        try:
            with av.open(str(self.path)) as container:
                if not container.streams.video:
                    raise MediaError(f"video {self.path} has no video stream")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                if not rate:
                    raise MediaError(f"video {self.path} has no frame rate in its header")
                self.fps = float(rate)
                self._rate = Fraction(rate)
                self.has_audio = bool(container.streams.audio)
                self.metadata: dict[str, str] = dict(container.metadata)
                frames = int(stream.frames or 0)
                if frames <= 0:
                    if stream.duration is not None and stream.time_base is not None:
                        seconds = float(stream.duration * stream.time_base)
                    elif container.duration is not None:
                        seconds = container.duration / av.time_base
                    else:
                        seconds = 0.0
                    frames = int(round(seconds * self.fps))
                self.num_frames = frames
                """Frame count from the header, or estimated from duration x fps (may be off by a few)."""
                # Decode the first frame: proves the stream is decodable and gives the displayed size.
                first = next(container.decode(stream), None)
                if first is None:
                    raise MediaError(f"video {self.path} contains no decodable frame")
                self._rotation = int(getattr(first, "rotation", 0) or 0) % 360
                width, height = first.width, first.height
                if self._rotation in (90, 270):
                    width, height = height, width
                self.size = (width, height)
                """(width, height) of the frames this reader yields."""
        except MediaError:
            raise
        except (av.error.FFmpegError, StopIteration, UnicodeDecodeError) as error:
            raise MediaError(f"video {self.path} cannot be read (corrupt or not a video): {error}") from error

    def __iter__(self) -> Iterator[np.ndarray]:
        index = 0
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                for frame in container.decode(stream):
                    image = frame.to_ndarray(format="rgb24")
                    if self._rotation:
                        # Display matrix rotation is counter-clockwise in degrees.
                        image = np.ascontiguousarray(np.rot90(image, k=self._rotation // 90))
                    index += 1
                    yield image
        except av.error.FFmpegError as error:
            raise MediaError(f"video {self.path}: decoding failed at frame {index}: {error}") from error

    def __len__(self) -> int:
        return self.num_frames

    def __repr__(self) -> str:
        return (f"VideoReader({str(self.path)!r}, fps={self.fps:.3f}, num_frames={self.num_frames}, "
                f"size={self.size}, has_audio={self.has_audio})")


class VideoWriter:
    """Write uint8 RGB frames to an H.264 (yuv420p) video, atomically, optionally with another file's audio.

    >>> with VideoWriter("out.mp4", fps=25, audio_from="driver.mp4") as writer:
    ...     for frame in frames:
    ...         writer.write(frame)

    The output appears at ``path`` only after a successful exit; on an exception the temporary file is
    deleted and ``path`` is untouched. ``metadata`` entries become container tags (MP4 keeps arbitrary keys).
    """

    def __init__(self, path: str | os.PathLike[str], fps: float, audio_from: str | os.PathLike[str] | None = None,
                 metadata: dict[str, str] | None = None, crf: int = 18, preset: str = "medium") -> None:
        if not fps or fps <= 0 or not math.isfinite(fps):
            raise ValueError(f"VideoWriter({path}): fps must be a positive number, got {fps!r}")
        self.path = Path(path)
        self.fps = fps
        self.audio_from = Path(audio_from) if audio_from is not None else None
        if self.audio_from is not None:
            _check_file(self.audio_from, "audio source")
        self.metadata = {str(k): str(v) for k, v in (metadata or {}).items()}
        self.crf = crf
        self.preset = preset  # x264's speed/size trade: live encodes beside the renderer, on the same cores
        self.num_frames = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._size: tuple[int, int] | None = None
        self._pad: tuple[int, int] = (0, 0)
        self._audio_in: av.container.InputContainer | None = None
        self._audio_out: av.AudioStream | None = None
        self._audio_copy = False
        self._tmp_path: Path | None = None

    # -- context manager -------------------------------------------------------------------------------------
    def __enter__(self) -> VideoWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=f".tmp{self.path.suffix}",
                                   dir=self.path.parent)
        os.close(fd)
        self._tmp_path = Path(tmp)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            try:
                self._finish()
            except BaseException:
                self._abort()
                raise
        else:
            self._abort()

    # -- writing ---------------------------------------------------------------------------------------------
    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 RGB ``[H, W, 3]`` frame; every frame must have the first frame's size."""
        if self._tmp_path is None:
            raise RuntimeError("use VideoWriter as a context manager: `with VideoWriter(...) as writer:`")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"{self.path}: frame {self.num_frames} must be uint8 [H, W, 3] RGB, "
                             f"got {frame.dtype} {frame.shape}")
        height, width = frame.shape[:2]
        if self._container is None:
            self._open(width, height)
        if (width, height) != self._size:
            raise ValueError(f"{self.path}: frame {self.num_frames} is {width}x{height}, "
                             f"but the video is {self._size[0]}x{self._size[1]}")
        if self._pad != (0, 0):
            frame = np.pad(frame, ((0, self._pad[1]), (0, self._pad[0]), (0, 0)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self.num_frames
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.num_frames += 1

    def _open(self, width: int, height: int) -> None:
        self._size = (width, height)
        self._pad = (width % 2, height % 2)
        if self._pad != (0, 0):
            log.warning("%s: frames are %dx%d; H.264 yuv420p needs even sizes, so the video is padded to %dx%d "
                        "(last column/row repeated)", self.path, width, height, width + self._pad[0],
                        height + self._pad[1])
        options = {"movflags": "use_metadata_tags"} if self.path.suffix.lower() in _MP4_LIKE else {}
        self._container = av.open(str(self._tmp_path), mode="w", format=_format_for(self.path), options=options)
        for key, value in self.metadata.items():
            self._container.metadata[key] = value
        rate = Fraction(self.fps).limit_denominator(1001)
        stream = self._container.add_stream("libx264", rate=rate)
        stream.width, stream.height = width + self._pad[0], height + self._pad[1]
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, 1) / rate
        stream.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = stream
        if self.audio_from is not None:
            self._open_audio()

    def _open_audio(self) -> None:
        try:
            self._audio_in = av.open(str(self.audio_from))
        except av.error.FFmpegError as error:
            raise MediaError(f"audio source {self.audio_from} cannot be read: {error}") from error
        if not self._audio_in.streams.audio:
            log.warning("audio source %s has no audio stream; writing %s without audio", self.audio_from, self.path)
            self._audio_in.close()
            self._audio_in = None
            return
        source = self._audio_in.streams.audio[0]
        mp4_like = self.path.suffix.lower() in _MP4_LIKE
        self._audio_copy = source.codec_context.name in _MP4_AUDIO_COPY or not mp4_like
        if self._audio_copy:
            self._audio_out = self._container.add_stream_from_template(source)
        else:
            log.info("re-encoding %s audio of %s to AAC for %s", source.codec_context.name, self.audio_from,
                     self.path)
            self._audio_out = self._container.add_stream("aac", rate=source.rate or 48000)
            channels = source.layout.nb_channels if source.layout else 2
            self._audio_out.layout = "mono" if channels == 1 else "stereo"  # more channels are downmixed

    def _write_audio(self) -> None:
        source = self._audio_in.streams.audio[0]
        video_seconds = self.num_frames / self.fps
        if self._audio_copy:
            for packet in self._audio_in.demux(source):
                if packet.dts is None:
                    continue
                if packet.pts is not None and float(packet.pts * source.time_base) >= video_seconds:
                    break
                packet.stream = self._audio_out
                self._container.mux(packet)
            return
        out = self._audio_out
        resampler = av.AudioResampler(format=out.codec_context.format or "fltp", layout=out.layout,
                                      rate=out.rate)
        written = 0
        limit = int(round(video_seconds * out.rate))
        for frame in self._audio_in.decode(source):
            for resampled in resampler.resample(frame):
                if written >= limit:
                    break
                resampled.pts = written
                written += resampled.samples
                for packet in out.encode(resampled):
                    self._container.mux(packet)
        for packet in out.encode(None):
            self._container.mux(packet)

    def _finish(self) -> None:
        if self._container is None:
            raise MediaError(f"no frames were written to {self.path}; nothing to save")
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        if self._audio_in is not None:
            try:
                self._write_audio()
            except av.error.FFmpegError as error:
                raise MediaError(f"copying audio from {self.audio_from} into {self.path} failed: {error}") from error
            finally:
                self._audio_in.close()
                self._audio_in = None
        self._container.close()
        self._container = None
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(self._tmp_path, self.path)
        self._tmp_path = None

    def _abort(self) -> None:
        for closable in (self._audio_in, self._container):
            if closable is not None:
                try:
                    closable.close()
                except Exception:  # noqa: BLE001 - cleanup after an error already being raised
                    log.debug("closing %s after an error failed", self.path, exc_info=True)
        self._audio_in = self._container = None
        if self._tmp_path is not None:
            self._tmp_path.unlink(missing_ok=True)
            self._tmp_path = None


def _format_for(path: Path) -> str | None:
    return {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}.get(path.suffix.lower())


# -- still images -------------------------------------------------------------------------------------------------
def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a still image as uint8 RGB ``[H, W, 3]``.

    Greyscale -> 3 equal channels; 16-bit -> 8-bit (value / 257, rounded); float images clipped to [0, 1];
    JPEG EXIF orientation applied; alpha composited on black (``rgb * alpha``). Raises `MediaError` naming
    the file when it is missing, empty or not a decodable image.
    """
    path = Path(path)
    _check_file(path, "image")
    data = np.fromfile(str(path), dtype=np.uint8)
    header = data[:12].tobytes()
    # Formats that can carry alpha are decoded unchanged (alpha kept); the others with ANYCOLOR|ANYDEPTH,
    # which lets OpenCV apply the EXIF orientation (IMREAD_UNCHANGED would ignore it).
    may_have_alpha = (header.startswith(b"\x89PNG") or header[8:12] == b"WEBP"
                      or header[:4] in (b"II*\x00", b"MM\x00*"))
    flags = cv2.IMREAD_UNCHANGED if may_have_alpha else (cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    image = cv2.imdecode(data, flags)
    if image is None or image.size == 0:
        raise MediaError(f"image {path} cannot be decoded (corrupt, truncated or not an image)")
    return _to_uint8_rgb(image, path)


def _to_uint8_rgb(image: np.ndarray, path: Path) -> np.ndarray:
    """OpenCV's decoded array (grey, BGR or BGRA, any depth) -> uint8 RGB."""
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:  # the common case, no float detour
        return np.ascontiguousarray(image[:, :, ::-1])
    if image.dtype == np.uint8 and image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    if image.dtype == np.uint8:
        scaled = image.astype(np.float32) / 255.0
    elif image.dtype == np.uint16:
        scaled = image.astype(np.float32) / 65535.0
    elif image.dtype in (np.float32, np.float64):
        scaled = np.clip(image.astype(np.float32), 0.0, 1.0)
    else:
        raise MediaError(f"image {path} has an unsupported pixel type {image.dtype}")
    if scaled.ndim == 2:
        scaled = scaled[:, :, None]
    channels = scaled.shape[2]
    if channels in (2, 4):  # grey+alpha or BGRA: composite on black
        colour, alpha = scaled[:, :, :-1], scaled[:, :, -1:]
        scaled = colour * alpha
        channels -= 1
    if channels == 1:
        rgb = np.repeat(scaled, 3, axis=2)
    elif channels == 3:
        rgb = scaled[:, :, ::-1]
    else:
        raise MediaError(f"image {path} has {image.shape[2]} channels; expected grey, RGB or RGBA")
    return np.ascontiguousarray(np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8))
