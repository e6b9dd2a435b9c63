"""Personalize once, animate many frames: `TalkingHead` and `Avatar` (paper §3.3, "Puppeteering results").

    head = TalkingHead.load("run/")                       # an inference export, or a run directory's latest
    avatar = head.personalize(["a.jpg", "b.jpg"])          # feed-forward: ψ̂ = P · mean_t E(x(t), y(t))
    avatar = head.personalize("me.mp4", steps=200)         # fine-tuned (§3.3): ψ′ and G trained on the sources
    for frame in avatar.animate("talk.mp4"):              # streams: one driver frame in, one frame out
        ...
    avatar.save("me.avatar"); avatar = Avatar.load("me.avatar")

Each source goes through the same landmarks and crop policy as the training data. Driving: landmarks of each
driver frame (tracked, smoothed) are retargeted onto the avatar's own face (`landmarks.retarget`, relative by
default; absolute = the paper), drawn as a landmark image and fed to G with the avatar's ψ, computed once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from talkinghead.config import Config, DataConfig
from talkinghead.landmarks.retarget import MODES, Retargeter
from talkinghead.landmarks.retarget import find_best_frame as best_reference_frame

log = logging.getLogger(__name__)

AVATAR_KIND = "avatar"
EXPORT_KIND = "export"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
IDENTITY_THRESHOLD = 0.6
"""dlib face-descriptor distance above which two faces are usually different people (dlib's own rule)."""
MAX_CROP_UPSCALE = 2.0
"""A source face whose crop must be enlarged more than this to reach the model's size gets a warning."""

LandmarkFn = Callable[[np.ndarray, "np.ndarray | None"], "np.ndarray | None"]
"""landmarks(image uint8 [H,W,3], previous [68,2] or None) -> [68,2] float32 in the image's pixels, or None."""
FrameLandmarks = Callable[[np.ndarray], "np.ndarray | None"]
"""track(frame uint8 [H,W,3]) -> [68,2] float32 or None, called on one video's consecutive frames (it keeps state);
made per driver by `driver_tracker`."""


@dataclass
class Source:
    """One personalization source after landmarks and the crop policy."""

    name: str
    image: np.ndarray
    """The full picture, uint8 RGB [H, W, 3]."""
    crop: np.ndarray
    """uint8 RGB [S, S, 3], S = the model's image size."""
    landmarks: np.ndarray
    """[68, 2] float32 in crop pixels."""
    box: tuple[float, float, float]
    """(left, top, side) of the square crop in the full picture's pixels."""


@dataclass
class AnimationFrame:
    """One animated frame with what made it (for side-by-side views and paste-back)."""

    index: int
    image: np.ndarray
    """Generated frame, uint8 RGB [S, S, 3]."""
    landmark_image: np.ndarray
    """The retargeted landmark image fed to G, uint8 RGB [S, S, 3]."""
    landmarks: np.ndarray
    """The retargeted landmarks [68, 2] in the avatar's crop pixels."""
    driver: np.ndarray | None
    """The driver frame, uint8 RGB (None when driven by landmarks only)."""
    held: bool
    """True when no face was found in this driver frame and the last good landmarks were used."""


class TalkingHead:
    """A meta-learned model ready to personalize: embedder E, generator G (with P), discriminator parts."""

    def __init__(self, embedder: nn.Module, generator: nn.Module, discriminator: nn.Module | None, config: Config,
                 landmarks: LandmarkFn | None = None, device: torch.device | str | None = None):
        self.device = torch.device(device) if device is not None else _parameter_device(generator)
        self.embedder = embedder.to(self.device).eval()
        self.generator = generator.to(self.device).eval()
        self.discriminator = discriminator.to(self.device).eval() if discriminator is not None else None
        self.config = config
        self.landmarks = landmarks or default_landmarks()

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str | None = None,
             landmarks: LandmarkFn | None = None, finetune_overrides: Sequence[str] = ()) -> TalkingHead:
        """Load an inference export (a file), or the latest export of a training run directory.

        ``finetune_overrides``: ``finetune.FIELD=VALUE`` items changing how new people are fine-tuned (e.g. the
        learning rates); the trained networks' settings cannot be overridden."""
        from talkinghead.checkpoint import load_checkpoint
        from talkinghead.config import apply_overrides
        from talkinghead.models import Discriminator, Embedder, Generator

        path = resolve_export(path)
        checkpoint = load_checkpoint(path)
        _check_kind(path, checkpoint.kind, EXPORT_KIND)
        config = checkpoint.config
        wrong = [item for item in finetune_overrides if not item.startswith("finetune.")]
        if wrong:
            raise ValueError(f"--set {wrong[0]}: only finetune.* settings can change after training (the other "
                             "sections describe the trained networks)")
        config = apply_overrides(config, list(finetune_overrides))
        parts = _split_prefixes(checkpoint.tensors, ("embedder.", "generator.", "discriminator."))
        missing = [name for name in ("embedder.", "generator.") if not parts[name]]
        if missing:
            raise ValueError(f"{path}: the export holds no {' or '.join(missing)} weights; "
                             "export the run again with the training command")
        embedder = Embedder(config.model)
        generator = Generator(config.model)
        _load_state(embedder, parts["embedder."], path, "embedder")
        _load_state(generator, parts["generator."], path, "generator")
        discriminator = None
        if parts["discriminator."]:
            # The export keeps V (θ), w0 and b; W (one row per training video) is not needed after training.
            discriminator = Discriminator(config.model, num_videos=1)
            state = {k: v for k, v in parts["discriminator."].items() if not k.startswith("video_embeddings")}
            _load_state(discriminator, state, path, "discriminator", ignore=("video_embeddings",))
        return cls(embedder, generator, discriminator, config, landmarks=landmarks, device=device)

    # --- personalization -------------------------------------------------------------------------------

    def prepare(self, images_or_video, max_video_frames: int = 32) -> list[Source]:
        """Landmarks and the crop policy on each source (named image files, a video, or uint8 arrays).
        A list of `Source` objects (already cropped to the model's size, e.g. dataset frames with their stored
        landmarks, as `talkinghead.evaluate` uses) is returned as it is."""
        size = self.config.model.image_size
        if isinstance(images_or_video, (list, tuple)) and images_or_video \
                and all(isinstance(s, Source) for s in images_or_video):
            wrong = [s.name for s in images_or_video if s.crop.shape != (size, size, 3)]
            if wrong:
                raise ValueError(f"sources {wrong[:3]} are not {size}x{size} RGB crops (the model's image size)")
            return list(images_or_video)
        prepared = []
        for name, image in load_sources(images_or_video, max_video_frames):
            points = _find_face(self.landmarks, image, name)
            crop, crop_points, box = crop_face(image, points, size, self.config.data)
            if box[2] * MAX_CROP_UPSCALE < size:
                log.warning("%s: the face is small (crop of %.0f px upscaled to %d px); the avatar will look "
                            "blurry; use a larger picture of the face", name, box[2], size)
            prepared.append(Source(name, image, crop, crop_points, box))
        return prepared

    def personalize(self, images_or_video, steps: int = 0, *, epochs: int | None = None,
                    content_loss: Callable | None = None, seed: int = 0, progress: Callable | None = None,
                    max_video_frames: int = 32, check_identity: bool = True, holdout: int | None = None,
                    early_stopping: bool = True) -> Avatar:
        """Make an avatar from T source pictures (or frames of a video).

        ``steps=0`` and no ``epochs``: feed-forward, ψ̂ = P ê_NEW with ê_NEW = mean_t E(x(t), y(t)) (Eq. 7).
        Otherwise fine-tuning (§3.3) for ``steps`` updates or ``epochs`` passes (`training.finetune`).
        """
        sources = self.prepare(images_or_video, max_video_frames)
        if check_identity and len(sources) > 1:
            warn_if_different_people(sources)
        frames, landmark_images = self._tensors(sources)
        if steps == 0 and epochs is None:
            with torch.no_grad():
                embedding = self.embedder(frames, landmark_images).mean(0)  # ê_NEW [N], Eq. 7
                psi = self.generator.project(embedding[None])[0]  # ψ̂ = P ê_NEW
            generator, info = self.generator, {"mode": "feed-forward", "shots": len(sources)}
        else:
            from talkinghead.training.finetune import finetune

            if self.discriminator is None:
                raise ValueError("fine-tuning needs the discriminator's V, w0 and b, which this export lacks; "
                                 "use steps=0 (feed-forward) or an export that includes them")
            result = finetune(self.embedder, self.generator, self.discriminator, frames, landmark_images,
                              content_loss or default_content_loss(self.config, self.device),
                              self.config.finetune, epochs=epochs, steps=steps or None, holdout=holdout,
                              early_stopping=early_stopping, seed=seed, progress=progress,
                              feature_matching_weight=self.config.loss.resolved_weights()["feature_matching"],
                              adversarial_weight=self.config.loss.resolved_weights()["adversarial"])
            generator, psi = result.generator, result.psi
            info = {"mode": "fine-tuned", "shots": len(sources), "steps": result.steps, "epochs": result.epochs,
                    "stopped_early": result.stopped_early, "best_epoch": result.best_epoch,
                    "holdout": result.holdout_indices, "history": result.history}
        first = sources[0]
        return Avatar(generator, psi, np.stack([s.landmarks for s in sources]), self.config,
                      landmarks=self.landmarks, info=info, picture=first.image, box=first.box)

    def _tensors(self, sources: Sequence[Source]) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.model.image_size
        frames = np.stack([s.crop for s in sources])
        drawings = np.stack([draw_landmarks(s.landmarks, size, self.config) for s in sources])
        return to_tensor(frames, self.device), to_tensor(drawings, self.device)


class Avatar:
    """A personalized generator: G (or G′), the person's ψ (computed once) and the source landmarks."""

    def __init__(self, generator: nn.Module, psi: torch.Tensor, source_landmarks: np.ndarray, config: Config,
                 landmarks: LandmarkFn | None = None, info: dict | None = None,
                 picture: np.ndarray | None = None, box: tuple[float, float, float] | None = None):
        # channels_last: ~2x faster convolutions on CPU (and tensor cores on GPU); values are unchanged.
        self.generator = generator.eval().to(memory_format=torch.channels_last)
        self.device = _parameter_device(generator)
        self.psi = psi.detach().to(self.device).reshape(1, -1)  # [1, num_adain_params]
        self.source_landmarks = np.asarray(source_landmarks, dtype=np.float32).reshape(-1, 68, 2)  # [T, 68, 2]
        self.config = config
        self.landmarks = landmarks or default_landmarks()
        self.info = info or {}
        self.picture = picture
        """The first source's full picture (for paste-back), uint8 RGB, or None."""
        self.box = box

    # --- rendering ----------------------------------------------------------------------------------

    def render(self, landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One frame from landmarks [68, 2] in the avatar's crop pixels -> (image, landmark image), uint8."""
        drawing = draw_landmarks(landmarks, self.config.model.image_size, self.config)
        return self.generate(drawing[None])[0], drawing

    def generate(self, landmark_images: np.ndarray) -> np.ndarray:
        """G(y, ψ) for uint8 landmark images [B, S, S, 3] -> uint8 frames [B, S, S, 3] (ψ computed once)."""
        with torch.inference_mode():
            y = to_tensor(landmark_images, self.device).contiguous(memory_format=torch.channels_last)
            return to_uint8(self.generator(y, self.psi.expand(len(landmark_images), -1)))

    def animate(self, driver, mode: str = "relative", find_best_frame: bool = False,
                stats: dict | None = None) -> Iterator[np.ndarray]:
        """Frames (uint8 RGB [S, S, 3]) driven by a video path, an iterable of uint8 frames, or landmarks
        [T, 68, 2]; see `animate_frames`."""
        for frame in self.animate_frames(driver, mode=mode, find_best_frame=find_best_frame, stats=stats):
            yield frame.image

    def animate_frames(self, driver, mode: str = "relative", find_best_frame: bool = False,
                       stats: dict | None = None, smooth: bool = True) -> Iterator[AnimationFrame]:
        """Stream the animation: memory stays flat with the driver's length.

        mode: "relative" (default; the driver's motion on the avatar's own face shape) or "absolute" (the
        paper: the driver's landmarks, aligned to the source's position and scale). find_best_frame: use the
        driver frame most similar to the source as the reference (needs a first landmarks pass, so the driver
        must be a path, a sequence or a landmarks array). Driver frames without a face reuse the last good
        landmarks; ``stats`` (a dict, if given) receives ``frames`` and ``held`` counts.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        source = self.source_landmarks[0]
        reference = None
        if find_best_frame:
            all_points = np.stack([p for p, _ in self._driver_landmarks(driver, smooth) if p is not None])
            if len(all_points) == 0:
                raise ValueError("no face found in any driver frame")
            best = best_reference_frame(all_points, source)
            reference = all_points[best]
            log.info("reference driver frame for retargeting: %d (most similar to the source)", best)
        retargeter, last, held, count = None, None, 0, 0
        for index, (points, frame) in enumerate(self._driver_landmarks(driver, smooth)):
            count += 1
            missing = points is None
            if missing:
                held += 1
                points = last
            if points is not None:
                last = points
                if retargeter is None:
                    retargeter = Retargeter(source, reference if reference is not None else points, mode)
                target = retargeter(points)
            else:
                target = source  # no face seen yet: the avatar at rest
            image, drawing = self.render(target)
            if stats is not None:
                stats.update(frames=count, held=held)
            yield AnimationFrame(index, image, drawing, target, frame, missing)
        if held:
            log.warning("%d of %d driver frames had no face; the last good landmarks were held", held, count)
        if stats is not None:
            stats.update(frames=count, held=held)

    def _driver_landmarks(self, driver, smooth: bool) -> Iterator[tuple[np.ndarray | None, np.ndarray | None]]:
        """(landmarks or None, frame or None) per driver frame, streamed."""
        if isinstance(driver, np.ndarray) and driver.ndim == 3 and driver.shape[1:] == (68, 2):
            for points in driver:
                yield points.astype(np.float32), None
            return
        fps, name = 25.0, "<driver frames>"
        if isinstance(driver, (str, Path)):
            from talkinghead.video import VideoReader

            reader = VideoReader(driver)
            frames, fps, name = iter(reader), reader.fps, str(driver)
        else:
            frames = driver
        smoother = make_smoother(fps) if smooth else None
        find = driver_tracker(self.landmarks, name)  # detect rarely, track in between (FaceTracker)
        for frame in frames:
            points = find(frame)
            if points is not None and smoother is not None:
                points = smoother(points)
            yield points, frame

    # --- storage ------------------------------------------------------------------------------------

    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """Write what animation needs: G′'s weights, ψ, the source landmarks (and the first source picture
        with its crop box, for paste-back), as one safetensors checkpoint of kind "avatar"."""
        from talkinghead.checkpoint import save_checkpoint

        tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in self.generator.state_dict().items()}
        tensors["psi"] = self.psi[0].detach().cpu().contiguous()
        tensors["source_landmarks"] = torch.from_numpy(self.source_landmarks.copy())
        if self.picture is not None and self.box is not None:
            tensors["picture"] = torch.from_numpy(np.ascontiguousarray(self.picture))
            tensors["box"] = torch.tensor(self.box, dtype=torch.float64)
        info = {k: v for k, v in self.info.items() if k != "history"}
        save_checkpoint(path, tensors, self.config, AVATAR_KIND, {"avatar": info, **(metadata or {})})

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str | None = None,
             landmarks: LandmarkFn | None = None) -> Avatar:
        from talkinghead.checkpoint import load_checkpoint
        from talkinghead.models import Generator

        checkpoint = load_checkpoint(path)
        _check_kind(path, checkpoint.kind, AVATAR_KIND)
        tensors = checkpoint.tensors
        for name in ("psi", "source_landmarks"):
            if name not in tensors:
                raise ValueError(f"{path}: avatar file has no {name!r}; make the avatar again with "
                                 "`talkinghead finetune`")
        generator = Generator(checkpoint.config.model)
        _load_state(generator, _split_prefixes(tensors, ("generator.",))["generator."], path, "generator")
        generator.to(device or "cpu")
        picture = tensors["picture"].numpy() if "picture" in tensors else None
        box = tuple(tensors["box"].tolist()) if "box" in tensors else None
        info = (checkpoint.metadata or {}).get("avatar", {})
        return cls(generator, tensors["psi"], tensors["source_landmarks"].numpy(), checkpoint.config,
                   landmarks=landmarks, info=info, picture=picture, box=box)


# --- writing an animation ------------------------------------------------------------------------------------

SYNTHETIC_TAG = "synthetic: generated by talkinghead (few-shot neural talking head); the face is not real footage"


def write_animation(avatar: Avatar, driver: str | Path, output: str | Path, *, mode: str = "relative",
                    find_best_frame: bool = False, side_by_side: bool = False, paste_back: bool = False,
                    mark: bool = True, overwrite: bool = False, landmarks: np.ndarray | None = None,
                    progress: Callable[[int, int | None], None] | None = None) -> dict:
    """Animate ``avatar`` with the driver video and write an H.264 video at the driver's fps with its audio.

    side_by_side: driver | landmark image | result. paste_back: the generated head composited back into the
    avatar's full first source picture with a soft mask. mark: a visible "synthetic" label (the metadata tag
    is always written). Returns {"frames", "held", "fps", "output"}; refuses an existing output unless
    ``overwrite``. landmarks: the driver's landmarks [T, 68, 2] in its frames' pixels when they are known
    (e.g. a synthetic driver), so no detection runs; the video still gives the frames, fps and audio.
    """
    from talkinghead.video import VideoReader, VideoWriter

    output = Path(output)
    if output.exists() and not overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite (overwrite=True) to replace it")
    if paste_back and (avatar.picture is None or avatar.box is None):
        raise ValueError("paste-back needs the avatar's source picture, which this avatar file does not hold")
    reader = VideoReader(driver)
    total = len(reader) or None
    stats: dict = {}
    metadata = {"comment": SYNTHETIC_TAG, "synthetic": "true", "generator": "talkinghead"}
    audio = driver if reader.has_audio else None
    with VideoWriter(output, fps=reader.fps, audio_from=audio, metadata=metadata) as writer:
        known = iter(reader) if landmarks is not None else None
        source = driver if landmarks is None else np.asarray(landmarks, dtype=np.float32)
        for frame in avatar.animate_frames(source, mode=mode, find_best_frame=find_best_frame, stats=stats):
            if known is not None:
                frame.driver = next(known, None)
            image = frame.image
            if paste_back:
                image = paste_into(avatar.picture, image, avatar.box)
            if side_by_side:
                height = image.shape[0]
                panels = [_fit_height(frame.driver, height) if frame.driver is not None else None,
                          _fit_height(frame.landmark_image, height), image]
                image = np.concatenate([p for p in panels if p is not None], axis=1)
            if mark:
                image = draw_synthetic_mark(image)
            writer.write(image)
            if progress is not None:
                progress(frame.index + 1, total)
    return {"frames": stats.get("frames", 0), "held": stats.get("held", 0), "fps": reader.fps,
            "output": str(output)}


def paste_into(picture: np.ndarray, head: np.ndarray, box: tuple[float, float, float]) -> np.ndarray:
    """Composite the generated crop back into the full picture at its crop box with a soft (feathered
    elliptical) mask. picture uint8 [H, W, 3]; head uint8 [S, S, 3]; box (left, top, side)."""
    import cv2

    left, top, side = box
    size = head.shape[0]
    # Affine map crop pixels -> picture pixels.
    scale = side / size
    matrix = np.array([[scale, 0, left], [0, scale, top]], dtype=np.float64)
    height, width = picture.shape[:2]
    warped = cv2.warpAffine(head, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    mask = np.zeros((size, size), np.float32)
    cv2.ellipse(mask, (size // 2, size // 2), (int(size * 0.36), int(size * 0.44)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=size * 0.06)
    mask = cv2.warpAffine(mask, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    blended = warped.astype(np.float32) * mask + picture.astype(np.float32) * (1.0 - mask)
    return blended.round().clip(0, 255).astype(np.uint8)


def draw_synthetic_mark(image: np.ndarray) -> np.ndarray:
    """A visible "SYNTHETIC" label in the bottom-left corner (white on a dark band), scaled to the image."""
    import cv2

    image = image.copy()
    height, width = image.shape[:2]
    scale = max(width, height) / 640.0
    font_scale = max(0.3, 0.6 * scale)
    thickness = max(1, round(1.5 * scale))
    text = "SYNTHETIC"
    (text_w, text_h), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
    pad = max(2, round(4 * scale))
    y1 = height - pad
    y0 = max(0, y1 - text_h - baseline - 2 * pad)
    image[y0:y1, 0:text_w + 2 * pad] = (image[y0:y1, 0:text_w + 2 * pad] * 0.35).astype(np.uint8)
    cv2.putText(image, text, (pad, y1 - baseline - pad // 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                (255, 255, 255), thickness, cv2.LINE_AA)
    return image


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    if image.shape[0] == height:
        return image
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


# --- sources -------------------------------------------------------------------------------------------------


def load_sources(images_or_video, max_video_frames: int = 32) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB image) for: a path to an image or a video, a uint8 array, or a list of these.
    A video gives up to ``max_video_frames`` evenly spaced frames."""
    items = images_or_video if isinstance(images_or_video, (list, tuple)) else [images_or_video]
    if not items:
        raise ValueError("personalization needs at least one source picture")
    result: list[tuple[str, np.ndarray]] = []
    for number, item in enumerate(items):
        if isinstance(item, np.ndarray):
            result.append((f"source #{number}", _check_image(item, f"source #{number}")))
            continue
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"source {path} does not exist")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            from talkinghead.video import read_image

            result.append((str(path), read_image(path)))
        else:
            result.extend(_video_sources(path, max_video_frames))
    return result


def _video_sources(path: Path, max_frames: int) -> list[tuple[str, np.ndarray]]:
    """Up to ``max_frames`` evenly spaced frames of a video, streamed (only the picked frames are kept)."""
    from talkinghead.video import VideoReader

    reader = VideoReader(path)
    total = reader.num_frames
    if not total:  # no count in the container: read all, then pick
        frames = list(reader)
        total = len(frames)
        if not total:
            raise ValueError(f"source video {path} has no frames")
        picks = np.linspace(0, total - 1, min(max_frames, total)).round().astype(int)
        return [(f"{path} frame {i}", frames[i]) for i in picks]
    picks = set(np.linspace(0, total - 1, min(max_frames, total)).round().astype(int).tolist())
    kept = [(f"{path} frame {i}", frame) for i, frame in enumerate(reader) if i in picks]
    if not kept:
        raise ValueError(f"source video {path} has no frames")
    return kept


def _find_face(landmarks: LandmarkFn, image: np.ndarray, name: str) -> np.ndarray:
    points = landmarks(image, None)
    if points is not None:
        return points
    # A small face may be missed by the detector: look again at 2x and 4x.
    import cv2

    for factor in (2, 4):
        if max(image.shape[:2]) * factor > 4096:
            break
        bigger = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        points = landmarks(bigger, None)
        if points is not None:
            log.warning("%s: the face is small; it was found after upscaling the picture %dx", name, factor)
            return (points / factor).astype(np.float32)
    raise ValueError(f"{name}: no face found; use a picture with one clearly visible, roughly frontal face")


def warn_if_different_people(sources: Sequence[Source], threshold: float = IDENTITY_THRESHOLD,
                             limit: int = 16) -> list[float]:
    """Warn when sources look like different people: dlib face-descriptor distance to the first source above
    ``threshold``. Returns the distances (NaN where no descriptor could be computed). At most ``limit`` sources
    are checked (each descriptor costs ~0.1 s on a CPU)."""
    from talkinghead.metrics.identity import DlibIdentity

    identity = DlibIdentity()
    descriptors = [identity.descriptor(s.image) for s in sources[:limit]]
    distances = []
    for source, descriptor in zip(sources[1:limit], descriptors[1:], strict=False):
        if descriptor is None or descriptors[0] is None:
            distances.append(math.nan)
            continue
        distance = float(np.linalg.norm(np.asarray(descriptor) - np.asarray(descriptors[0])))
        distances.append(distance)
        if distance > threshold:
            log.warning("%s looks like a different person from %s (face descriptor distance %.2f > %.2f); "
                        "an avatar should be made from pictures of one person", source.name, sources[0].name,
                        distance, threshold)
    return distances


# --- tensors ------------------------------------------------------------------------------------------------


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 [B, H, W, 3] -> float32 [B, 3, H, W] in [-1, 1]."""
    tensor = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2).float()
    return tensor / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float [B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3]."""
    scaled = ((images.detach().float().clamp(-1, 1) + 1.0) * 127.5).round()
    return scaled.to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _parameter_device(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _split_prefixes(tensors: dict, prefixes: Iterable[str]) -> dict[str, dict]:
    return {prefix: {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)} for prefix in prefixes}


def _load_state(module: nn.Module, state: dict, path, what: str, ignore: tuple[str, ...] = ()) -> None:
    result = module.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(ignore)]
    if missing or result.unexpected_keys:
        raise ValueError(f"{path}: the {what} weights do not fit this code's {what} "
                         f"(missing {missing[:3]}, unexpected {result.unexpected_keys[:3]}); "
                         "the file was written by another version or for another preset")


_KIND_HINTS = {
    AVATAR_KIND: "an avatar from `talkinghead finetune`: animate it with --avatar",
    EXPORT_KIND: "a model export: personalize it with --checkpoint (and --source) or `talkinghead finetune`",
    "training": "a training checkpoint: pass its run directory or the run's export.safetensors as --checkpoint",
}


def _check_kind(path: str | Path, kind: str, expected: str) -> None:
    """A clear error when a checkpoint of another kind is given (e.g. an export where an avatar is expected)."""
    if kind != expected:
        from talkinghead.checkpoint import CheckpointError

        what = _KIND_HINTS.get(kind, f"a {kind!r} checkpoint")
        raise CheckpointError(f"{path} is a {kind!r} checkpoint, expected {expected!r}; it is {what}")


def resolve_export(path: str | Path) -> Path:
    """A checkpoint file as given, or for a training run directory its newest export (``*.safetensors`` whose
    name contains "export", newest by modification time)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    exports = sorted((p for p in path.rglob("*.safetensors") if "export" in p.name),
                     key=lambda p: (p.stat().st_mtime, p.name))
    if not exports:
        raise FileNotFoundError(f"{path} is a directory without an inference export (*export*.safetensors); "
                                "train longer or pass the export file")
    return exports[-1]


def default_content_loss(config: Config, device: torch.device) -> Callable:
    """The content loss of meta-learning (feature networks from ``config.loss``) for fine-tuning."""
    from talkinghead.losses import ContentLoss
    from talkinghead.perceptual_weights import build_feature_networks

    networks = build_feature_networks(config.loss)
    weights = config.loss.resolved_weights()
    return ContentLoss(networks, {name: weights[name] for name in networks}).to(device)


# --- landmarks, crop, drawing and video: the project's one implementation of each ------------------------


class DetectorLandmarks:
    """The project's landmark backend for inference.

    Called as a `LandmarkFn` (sources: still pictures) it detects faces, keeps the one overlapping
    ``previous`` (else the largest, most central) and fits its 68 points. ``tracker(name)`` gives the
    per-frame function for a driver video: the landmarks room's `FaceTracker` (detects on the first frame,
    every ``detect_every`` frames and when tracking is lost; tracks in between; keeps following the same face).
    """

    def __init__(self, backend: str = "dlib", detect_every: int = 25, verify_every: int = 3):
        from talkinghead.landmarks.backends import get_backend

        self.detector = get_backend(backend)
        self.detect_every = detect_every
        self.verify_every = verify_every

    def __call__(self, image: np.ndarray, previous: np.ndarray | None) -> np.ndarray | None:
        from talkinghead.landmarks.backends import choose_face, landmarks_box

        boxes = self.detector.detect_faces(image)
        if not boxes:
            return None
        previous_box = landmarks_box(previous) if previous is not None else None
        box = choose_face(boxes, (image.shape[1], image.shape[0]), previous_box)
        return np.asarray(self.detector.landmarks(image, box), dtype=np.float32)

    def tracker(self, source: str = "<driver>") -> FrameLandmarks:
        from talkinghead.landmarks.tracking import FaceTracker

        tracker = FaceTracker(self.detector, detect_every=self.detect_every, verify_every=self.verify_every,
                              source=source)

        def track(frame: np.ndarray) -> np.ndarray | None:
            points = tracker(frame)[0]
            return None if points is None else np.asarray(points, dtype=np.float32)

        return track


def default_landmarks(backend: str = "dlib") -> DetectorLandmarks:
    """The project's landmark backend: detection on stills, `FaceTracker` on driver videos."""
    return DetectorLandmarks(backend)


def driver_tracker(landmarks: LandmarkFn, source: str = "<driver>") -> FrameLandmarks:
    """A fresh per-frame landmarks function for one driver's consecutive frames: the landmarks' own
    ``tracker(source)`` when it has one (`DetectorLandmarks`: detect rarely, track in between), else the
    `LandmarkFn` called on every frame with the previous frame's landmarks (e.g. an injected function)."""
    make_tracker = getattr(landmarks, "tracker", None)
    if callable(make_tracker):
        return make_tracker(source)
    previous: np.ndarray | None = None

    def follow(frame: np.ndarray) -> np.ndarray | None:
        nonlocal previous
        points = landmarks(frame, previous)
        if points is not None:
            previous = points
        return points

    return follow


def make_smoother(fps: float) -> Callable[[np.ndarray], np.ndarray]:
    """One-Euro smoothing of driver landmarks, speeds measured in inter-ocular distances per second (the
    same settings as the landmarks room's `smooth_track`)."""
    from talkinghead.landmarks import OneEuroFilter

    smoother = OneEuroFilter(fps, min_cutoff=1.0, beta=0.5)

    def smooth(points: np.ndarray) -> np.ndarray:
        interocular = float(np.linalg.norm(points[36:42].mean(0) - points[42:48].mean(0)))
        return np.asarray(smoother(points, scale=max(interocular, 1.0)), dtype=np.float32)

    return smooth


def crop_face(image: np.ndarray, points: np.ndarray, size: int,
              data: DataConfig) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float]]:
    """The one crop policy, with the same scale and lift as the training data (``config.data``):
    (crop uint8 [size, size, 3], landmarks in crop pixels, (left, top, side))."""
    from talkinghead.landmarks.crop import crop_box, crop_image

    crop, transform = crop_image(image, crop_box(points, scale=data.crop_scale, lift=data.crop_lift), size)
    return crop, transform.to_crop(points), (transform.left, transform.top, size / transform.scale)


def draw_landmarks(points: np.ndarray, size: int, config: Config) -> np.ndarray:
    from talkinghead.landmarks import landmark_image, line_width_for

    return landmark_image(points, size, line_width_for(size, config.data.landmark_line_width))


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected a uint8 RGB image [H, W, 3], got {image.dtype} {image.shape}")
    return image


__all__ = ["Avatar", "AnimationFrame", "DetectorLandmarks", "Source", "TalkingHead", "default_landmarks",
           "driver_tracker", "load_sources", "paste_into", "resolve_export", "warn_if_different_people",
           "write_animation"]
