"""Personalize once, animate many frames: `TalkingHead` and `Avatar` (paper §3.3, "Puppeteering results").

    head = TalkingHead.load("run/")                       # an inference export, or a run directory's latest
    head = TalkingHead.load()                             # the shipped real-face model (talkinghead.shipped)
    avatar = head.personalize(["a.jpg", "b.jpg"])          # feed-forward: ψ̂ = P · mean_t E(x(t), y(t))
    avatar = head.personalize("me.mp4", steps=200)         # fine-tuned (§3.3): ψ′ and G trained on the sources
    for frame in avatar.animate("talk.mp4"):              # streams: one driver frame in, one frame out
        ...
    avatar.save("me.avatar"); avatar = Avatar.load("me.avatar")

Each source goes through the same landmarks and crop policy as the training data. Driving: landmarks of each
driver frame (tracked, smoothed) are retargeted onto the avatar's own face (`landmarks.retarget`, relative by
default; absolute = the paper), drawn as a landmark image and fed to G with the avatar's ψ, computed once. A
generator that renders from the sources (``generator.needs_sources``: the warp family) also gets, per frame, the
``model.inference_sources`` = N sources nearest to the target landmarks with their mesh grids (`Avatar.warp_sources`);
the avatar keeps the T source crops for that. The per-frame loop is `talkinghead.animation.FrameAnimator`,
shared with live mode; `animation.write_animation` writes a video. Landmark detection, tracking, smoothing and the
crop policy are the landmarks room's (`landmarks/`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from talkinghead.animation import AnimationFrame, FrameAnimator, NoFaceInDriver
from talkinghead.config import Config
from talkinghead.landmarks.crop import CropBox, crop_face, crop_image
from talkinghead.landmarks.detector import LandmarkFn, NoFaceFound, default_landmarks, find_face
from talkinghead.landmarks.drawing import draw_landmarks
from talkinghead.landmarks.lip_normalization import DEFAULT as LIP_NORMALIZATION
from talkinghead.landmarks.mesh import normalized_landmark_distance, sampling_grids
from talkinghead.landmarks.mouth_region import mouth_source_weights
from talkinghead.landmarks.retarget import find_best_frame as best_reference_frame
from talkinghead.landmarks.synthesis_prior import synthesis_prior
from talkinghead.models.source_choice import choose_sources
from talkinghead.models.warp_generator import WarpSources
from talkinghead.pixels import to_tensor, to_uint8
from talkinghead.runtime import DEFAULT_RUNTIME, GeneratorRunner
from talkinghead.video import IMAGE_SUFFIXES

log = logging.getLogger(__name__)

AVATAR_KIND = "avatar"
EXPORT_KIND = "export"
IDENTITY_THRESHOLD = 0.6
"""dlib face-descriptor distance above which two faces are usually different people (dlib's own rule)."""
MAX_CROP_UPSCALE = 2.0
"""A source face whose crop must be enlarged more than this to reach the model's size gets a warning."""
MIN_VIDEO_FACES = 4
"""A source video must show a face in at least this many of the frames looked at (in all of them when fewer are
looked at): frames without one (the face out of view, a blur) are skipped, but a video that rarely shows a face
more likely holds a wrong detection than a usable avatar."""
MAX_DETAIL_SIDE = 1024
"""Largest side of the full-resolution source crops an avatar keeps for rendering above the model's size."""


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
    detail: np.ndarray | None = None
    """The same crop at the picture's own resolution (its side: the box's, between S and `MAX_DETAIL_SIDE`),
    uint8 RGB; what the warp family samples when it renders above the model's size. None: ``crop`` serves."""


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
    def load(cls, path: str | Path | None = None, device: torch.device | str | None = None,
             landmarks: LandmarkFn | None = None, finetune_overrides: Sequence[str] = ()) -> TalkingHead:
        """Load an inference export (a file), or the latest export of a training run directory; without a path,
        the shipped real-face model (`talkinghead.shipped`, one log line says which file and what it saw).

        ``finetune_overrides``: ``finetune.FIELD=VALUE`` items changing how new people are fine-tuned (e.g. the
        learning rates); the trained networks' settings cannot be overridden."""
        from talkinghead.checkpoint import load_checkpoint, load_model_state
        from talkinghead.config import INFERENCE_MODEL_FIELDS, apply_overrides
        from talkinghead.models import Discriminator, Embedder, build_generator
        from talkinghead.shipped import resolve_checkpoint

        path = resolve_export(resolve_checkpoint(path))
        checkpoint = load_checkpoint(path)
        _check_kind(path, checkpoint.kind, EXPORT_KIND)
        config = checkpoint.config
        allowed = ("finetune.", *(f"model.{name}=" for name in INFERENCE_MODEL_FIELDS))
        wrong = [item for item in finetune_overrides if not item.startswith(allowed)]
        if wrong:
            raise ValueError(f"--set {wrong[0]}: only finetune.* settings and how the warp generator is run "
                             f"(model.{', model.'.join(INFERENCE_MODEL_FIELDS)}) can change after training (the "
                             "rest describes the trained networks)")
        config = apply_overrides(config, list(finetune_overrides))
        tensors = checkpoint.tensors
        missing = [name for name in ("embedder.", "generator.") if not any(k.startswith(name) for k in tensors)]
        if missing:
            raise ValueError(f"{path}: the export holds no {' or '.join(missing)} weights; "
                             "export the run again with the training command")
        embedder = Embedder(config.model)
        generator = build_generator(config.model)  # the config's family: the paper's G or the warp generator
        load_model_state(embedder, tensors, prefix="embedder.", source=path)
        load_model_state(generator, tensors, prefix="generator.", source=path)
        discriminator = None
        if any(k.startswith("discriminator.") for k in tensors):
            # The export keeps V (θ), w0 and b; W (one row per training video) is not needed after training:
            # the discriminator keeps its own one-row W, which personalization replaces by w′.
            discriminator = Discriminator(config.model, num_videos=1)
            unused_w = "discriminator.video_embeddings"
            state = {k: v for k, v in tensors.items() if k.startswith("discriminator.") and not k.startswith(unused_w)}
            state.update({f"discriminator.{k}": v for k, v in discriminator.state_dict().items()
                          if k.startswith("video_embeddings")})
            load_model_state(discriminator, state, prefix="discriminator.", source=path)
        return cls(embedder, generator, discriminator, config, landmarks=landmarks, device=device)

    @classmethod
    def load_shipped(cls, device: torch.device | str | None = None, landmarks: LandmarkFn | None = None,
                     finetune_overrides: Sequence[str] = ()) -> TalkingHead:
        """The shipped real-face model (warp-128, docs/model-card.md): ``TalkingHead.load()`` with no path."""
        return cls.load(None, device=device, landmarks=landmarks, finetune_overrides=finetune_overrides)

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
        looked: dict[Path, list[int]] = {}  # source video -> [frames looked at, frames without a face]
        for name, image, video in _sources_with_origin(images_or_video, max_video_frames):
            if video is not None:
                looked.setdefault(video, [0, 0])[0] += 1
            try:
                points = find_face(self.landmarks, image, name)
            except NoFaceFound:
                if video is None:  # a picture the user chose: its face is needed
                    raise
                looked[video][1] += 1  # one frame of a selfie video: skipped, counted below
                continue
            crop, crop_points, box = crop_face(image, points, size, self.config.data.crop_scale,
                                               self.config.data.crop_lift)
            if box[2] * MAX_CROP_UPSCALE < size:
                log.warning("%s: the face is small (crop of %.0f px upscaled to %d px); the avatar will look "
                            "blurry; use a larger picture of the face", name, box[2], size)
            prepared.append(Source(name, image, crop, crop_points, box, detail_crop(image, box, size)))
        for video, (frames, faceless) in looked.items():
            _check_video_faces(video, frames, faceless)
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
                              weights=self.config.loss.resolved_weights(), betas=self.config.train.betas,
                              variant=self.config.train.variant,  # an FF model is refused
                              landmarks=torch.from_numpy(np.stack([s.landmarks for s in sources])).float())
            generator, psi = result.generator, result.psi
            info = {"mode": "fine-tuned", "shots": len(sources), "steps": result.steps, "epochs": result.epochs,
                    "stopped_early": result.stopped_early, "best_epoch": result.best_epoch,
                    "holdout": result.holdout_indices, "history": result.history}
        first = sources[0]
        details = [s.detail for s in sources]
        detail_crops = None
        if all(d is not None for d in details):  # one side for all: the largest any source offers
            side = max(d.shape[0] for d in details)
            detail_crops = np.stack([_resize_square(d, side) for d in details])
        return Avatar(generator, psi, np.stack([s.landmarks for s in sources]), self.config,
                      landmarks=self.landmarks, info=info, picture=first.image, box=first.box,
                      source_crops=np.stack([s.crop for s in sources]), detail_crops=detail_crops)

    def _tensors(self, sources: Sequence[Source]) -> tuple[torch.Tensor, torch.Tensor]:
        size = self.config.model.image_size
        frames = np.stack([s.crop for s in sources])
        drawings = np.stack([draw_landmarks(s.landmarks, size, self.config) for s in sources])
        return to_tensor(frames, self.device), to_tensor(drawings, self.device)


class Avatar:
    """A personalized generator: G (or G′), the person's ψ (computed once) and the T sources' landmarks; for a
    generator that renders from the sources (``generator.needs_sources``, the warp family) also their crops."""

    def __init__(self, generator: nn.Module, psi: torch.Tensor, source_landmarks: np.ndarray, config: Config,
                 landmarks: LandmarkFn | None = None, info: dict | None = None,
                 picture: np.ndarray | None = None, box: tuple[float, float, float] | None = None,
                 source_crops: np.ndarray | None = None, detail_crops: np.ndarray | None = None):
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
        self.source_crops = None if source_crops is None else _check_crops(source_crops, self.source_landmarks,
                                                                           config.model.image_size)
        """The T source crops, uint8 RGB [T, S, S, 3] (None for an avatar loaded from a paper-family file)."""
        self.detail_crops = None if detail_crops is None else np.ascontiguousarray(detail_crops)
        """The same crops at the pictures' own resolution, uint8 RGB [T, D, D, 3] (D >= S), sampled when rendering
        above the model's size; None (an avatar file from before issue 26): the S crops are upsampled instead."""
        if self.detail_crops is not None and (self.detail_crops.dtype != np.uint8 or self.detail_crops.ndim != 4
                                              or len(self.detail_crops) != len(self.source_landmarks)):
            raise ValueError(f"detail_crops must be uint8 [T, D, D, 3] with T = {len(self.source_landmarks)}, "
                             f"got {self.detail_crops.dtype} {self.detail_crops.shape}")
        self._detail: tuple[int, torch.Tensor] | None = None  # (R, `detail_images` at R), the last R used
        self.needs_sources = bool(getattr(self.generator, "needs_sources", False))
        if self.needs_sources:
            self._prepare_sources()
        # The warp family renders through the fastest runtime measured (talkinghead.runtime, issue 17).
        self.runtime = GeneratorRunner(self.generator, DEFAULT_RUNTIME if self.needs_sources else "eager")

    def _prepare_sources(self) -> None:
        """The sources as the generator takes them, once: images and landmark images [T, 3, S, S] in [-1, 1]."""
        if self.source_crops is None:
            raise ValueError(f"the {self.config.model.generator!r} generator renders from the source frames, but the "
                             "avatar was given no source_crops [T, S, S, 3]; personalize again with "
                             "TalkingHead.personalize (it keeps them)")
        size = self.config.model.image_size
        drawings = np.stack([draw_landmarks(points, size, self.config) for points in self.source_landmarks])
        self._source_images = to_tensor(self.source_crops, self.device)  # [T, 3, S, S]
        self._source_landmark_images = to_tensor(drawings, self.device)  # [T, 3, S, S]
        shots = len(self.source_landmarks)
        self.inference_sources = self.config.model.inference_sources
        self.info["inference_sources"] = self.inference_sources
        log.info("avatar from %d source frame(s): each frame is rendered from the %d nearest (model.inference_sources"
                 " = %d)", shots, min(shots, self.inference_sources), self.inference_sources)

    # --- rendering ----------------------------------------------------------------------------------

    def landmark_image(self, landmarks: np.ndarray) -> np.ndarray:
        """The landmark image y of landmarks [68, 2] in the avatar's crop pixels, uint8 [S, S, 3]."""
        return draw_landmarks(landmarks, self.config.model.image_size, self.config)

    def render(self, landmarks: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One frame from landmarks [68, 2] in the avatar's crop pixels -> (image [R, R, 3], landmark image
        [S, S, 3]), uint8; R = ``size`` (default: the model's S)."""
        drawing = self.landmark_image(landmarks)
        return self._generate(np.asarray(landmarks, np.float32)[None], drawing[None], size=size)[0], drawing

    def render_batch(self, landmarks: np.ndarray, size: int | None = None) -> np.ndarray:
        """Frames for landmarks [B, 68, 2] in one generator call -> uint8 [B, R, R, 3] (what `render` gives for
        each: G is per-sample, with the same ψ for every frame)."""
        landmarks = np.asarray(landmarks, np.float32)
        if landmarks.ndim != 3 or landmarks.shape[1:] != (68, 2):
            raise ValueError(f"render_batch: expected landmarks [B, 68, 2], got {landmarks.shape}")
        return self._generate(landmarks, np.stack([self.landmark_image(points) for points in landmarks]), size=size)

    def _generate(self, landmarks: np.ndarray, landmark_images: np.ndarray,
                  sources: WarpSources | None = None, size: int | None = None) -> np.ndarray:
        """G(y, ψ[, sources]) for landmarks [B, 68, 2] and their uint8 landmark images [B, S, S, 3] -> uint8
        [B, R, R, 3], R = ``size`` (default S). ψ is computed once; the sources (when the generator needs them) are
        chosen per frame (``sources``: already chosen with `warp_sources` at this size, e.g. by another pipeline
        stage). The warp family renders at R from the full-resolution crops; the paper's G synthesizes at S, and
        its frames are resized (nothing sharper exists)."""
        with torch.inference_mode():
            y = to_tensor(landmark_images, self.device).contiguous(memory_format=torch.channels_last)
            psi = self.psi.expand(len(landmark_images), -1)
            if self.needs_sources:
                sources = sources if sources is not None else self.warp_sources(landmarks, size)
                return to_uint8(self.runtime(y, psi, sources))
            images = to_uint8(self.generator(y, psi))
        if size is None or size == images.shape[1]:
            return images
        return np.stack([_resize_square(image, size) for image in images])

    def detail_images(self, size: int) -> torch.Tensor | None:
        """The T sources at R = ``size``, uint8 [T, 3, R, R], made once per size (resized from the full-resolution
        crops, or from the S crops for an old avatar file); None at the model's own size, where the S crops serve
        and the output is exactly the model's. Kept as bytes (a quarter of the floats: 32 video frames at 512 px are
        25 MB); only the N sources a frame uses are converted."""
        if size == self.config.model.image_size:
            return None
        if size < 16:
            raise ValueError(f"output size must be at least 16 px, got {size}")
        if self._detail is None or self._detail[0] != size:
            crops = self.detail_crops if self.detail_crops is not None else self.source_crops
            resized = np.stack([_resize_square(c, size) for c in crops]).transpose(0, 3, 1, 2)
            self._detail = (size, torch.from_numpy(np.ascontiguousarray(resized)).to(self.device))
        return self._detail[1]

    def warp_sources(self, landmarks: np.ndarray, size: int | None = None) -> WarpSources:
        """The N = ``model.inference_sources`` sources nearest to each target (all T when T <= N), nearest first,
        with the mesh grid from the target to each: landmarks [B, 68, 2] -> `WarpSources` of B x min(N, T); with
        ``size`` R (not the model's), also those sources at R (`detail_images`) for rendering at R."""
        detail = self.detail_images(size) if size is not None else None
        model = self.config.model
        size = model.image_size
        targets = np.asarray(landmarks, np.float32).reshape(-1, 68, 2)
        picks, shares, grids, distances = [], [], [], []
        for target in targets:
            distance = normalized_landmark_distance(self.source_landmarks, target)  # [T]
            nearest, weights = choose_sources(distance, self.inference_sources, model.source_blend,
                                              model.source_blend_power)  # [N], nearest first (source_choice)
            picks.append(nearest)
            shares.append(weights)
            grids.append(sampling_grids(self.source_landmarks[nearest], target, size))  # the target's mesh once
            distances.append(distance[nearest])
        picks, shares = np.stack(picks), np.stack(shares)  # [B, N] each
        index = torch.from_numpy(picks).to(self.device)
        grid = torch.from_numpy(np.stack(grids))  # [B, N, S, S, 2], on the CPU until the prior is made
        # The rule's weights only when they are not the nearest alone (the generator's default): old exports and
        # the nearest rule keep their traced inputs.
        weights = torch.from_numpy(shares).to(self.device) if model.source_blend != "nearest" else None
        prior_shares = torch.from_numpy(shares)  # [B, N]: the shares the synthesis prior counts
        if model.mouth_blend_power > 0:  # the mouth's own shares inside its region: weights [B, N, S, S]
            weights, prior_shares = mouth_source_weights(targets, self.source_landmarks[picks], shares,
                                                         model.mouth_blend_power, size)
            weights = weights.to(self.device)
        prior = None
        if model.synthesis_prior:
            prior = synthesis_prior(torch.from_numpy(targets),  # [B, 1 or 3, S, S]
                                    torch.from_numpy(self.source_landmarks[picks]), grid,
                                    prior_shares, model.stretch_limit,
                                    model.lid_prior, parts=model.prior_input).to(self.device)
        return WarpSources(self._source_images[index], self._source_landmark_images[index],  # [B, N, 3, S, S]
                           grid.to(self.device), torch.from_numpy(np.stack(distances)).float().to(self.device),
                           None if detail is None else detail[index].float().div_(127.5).sub_(1.0),  # [B, N, 3, R, R]
                           weights, prior)

    def animate(self, driver, mode: str = "relative", find_best_frame: bool = False,
                stats: dict | None = None, size: int | None = None) -> Iterator[np.ndarray]:
        """Frames (uint8 RGB [R, R, 3], R = ``size``, default the model's) driven by a video path, an iterable of
        uint8 frames, or landmarks [T, 68, 2]; see `animate_frames`."""
        for frame in self.animate_frames(driver, mode=mode, find_best_frame=find_best_frame, stats=stats,
                                         size=size):
            yield frame.image

    def animate_frames(self, driver, mode: str = "relative", find_best_frame: bool = False,
                       stats: dict | None = None, smooth: bool = True,
                       size: int | None = None,
                       lip_normalization: bool = LIP_NORMALIZATION) -> Iterator[AnimationFrame]:
        """Stream the animation: memory stays flat with the driver's length.

        mode: "relative" (default; the driver's motion on the avatar's own face shape) or "absolute" (the
        paper: the driver's landmarks, aligned to the source's position and scale). find_best_frame: use the
        driver frame most similar to the source as the reference (needs a first landmarks pass, so the driver
        must be a path, a sequence or a landmarks array). Driver frames without a face reuse the last good
        landmarks; ``stats`` (a dict, if given) receives ``frames`` and ``held`` counts. size: the frames' side
        in pixels (default: the model's; the warp family renders there from the full-resolution source crops).
        lip_normalization: relative mode measures the driver's motion between closed mouths
        (`landmarks.lip_normalization`), so a source with its mouth open follows the driver's opening.
        """
        reference = None
        if find_best_frame:
            locate = self._animator(driver, mode, smooth)
            found = [p for p in self._driver_points(driver, locate) if p is not None]
            if not found:
                raise NoFaceInDriver(f"{locate.source}: no face found in any driver frame; drive with a video "
                                     "that shows one clearly visible, roughly frontal face")
            all_points = np.stack(found)
            best = best_reference_frame(all_points, self.source_landmarks[0])
            reference = all_points[best]
            log.info("reference driver frame for retargeting: %d (most similar to the source)", best)
        animator = self._animator(driver, mode, smooth, reference)
        animator.size = size
        animator.lip_normalization = lip_normalization
        if isinstance(driver, np.ndarray) and driver.ndim == 3 and driver.shape[1:] == (68, 2):
            frames = (animator.drive(points.astype(np.float32)) for points in driver)
        else:
            frames = animator.stream(self._driver_frames(driver))  # decode | locate | render threads
        for frame in frames:
            if stats is not None:
                stats.update(frames=animator.frames, held=animator.held)
            yield frame
        animator.finish()  # NoFaceInDriver when no frame had a face
        if stats is not None:
            stats.update(frames=animator.frames, held=animator.held)

    def _animator(self, driver, mode: str, smooth: bool, reference: np.ndarray | None = None) -> FrameAnimator:
        """The per-frame loop for one pass over ``driver`` (smoothing at the video's fps, 25 otherwise)."""
        fps, name = 25.0, "<driver frames>"
        if isinstance(driver, (str, Path)):
            from talkinghead.video import VideoReader

            fps, name = VideoReader(driver).fps, str(driver)
        return FrameAnimator(self, mode, smooth=smooth, fps=fps, source=name, reference=reference)

    @staticmethod
    def _driver_frames(driver) -> Iterator[np.ndarray]:
        """The driver's frames, streamed: a video path, or an iterable of uint8 RGB frames."""
        if isinstance(driver, (str, Path)):
            from talkinghead.video import VideoReader

            return iter(VideoReader(driver))
        return iter(driver)

    def _driver_points(self, driver, animator: FrameAnimator) -> Iterator[np.ndarray | None]:
        """Landmarks (or None) of each driver frame: a first pass for ``find_best_frame``."""
        if isinstance(driver, np.ndarray) and driver.ndim == 3 and driver.shape[1:] == (68, 2):
            yield from driver.astype(np.float32)
            return
        for frame in self._driver_frames(driver):
            yield animator.locate(frame)

    # --- storage ------------------------------------------------------------------------------------

    def save(self, path: str | Path, metadata: dict | None = None) -> None:
        """Write what animation needs: G′'s weights, ψ, the source landmarks, the source crops when the generator
        renders from them (and the first source picture with its crop box, for paste-back), as one safetensors
        checkpoint of kind "avatar"."""
        from talkinghead.checkpoint import save_checkpoint

        tensors = {f"generator.{k}": v.detach().cpu().contiguous() for k, v in self.generator.state_dict().items()}
        tensors["psi"] = self.psi[0].detach().cpu().contiguous()
        tensors["source_landmarks"] = torch.from_numpy(self.source_landmarks.copy())
        if self.needs_sources:  # the warp family renders from them
            tensors["source_crops"] = torch.from_numpy(np.ascontiguousarray(self.source_crops))  # uint8 [T, S, S, 3]
            if self.detail_crops is not None:  # for rendering above S (issue 26)
                tensors["detail_crops"] = torch.from_numpy(self.detail_crops)  # uint8 [T, D, D, 3]
        if self.picture is not None and self.box is not None:
            tensors["picture"] = torch.from_numpy(np.ascontiguousarray(self.picture))
            tensors["box"] = torch.tensor(self.box, dtype=torch.float64)
        info = {k: v for k, v in self.info.items() if k != "history"}
        save_checkpoint(path, tensors, self.config, AVATAR_KIND, {"avatar": info, **(metadata or {})})

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str | None = None,
             landmarks: LandmarkFn | None = None) -> Avatar:
        from talkinghead.checkpoint import load_checkpoint, load_model_state
        from talkinghead.models import build_generator

        checkpoint = load_checkpoint(path)
        _check_kind(path, checkpoint.kind, AVATAR_KIND)
        tensors = checkpoint.tensors
        for name in ("psi", "source_landmarks"):
            if name not in tensors:
                raise ValueError(f"{path}: avatar file has no {name!r}; make the avatar again with "
                                 "`talkinghead finetune`")
        generator = build_generator(checkpoint.config.model)  # an avatar file from before the warp family: paper
        load_model_state(generator, tensors, prefix="generator.", source=path)
        generator.to(device or "cpu")
        crops = tensors["source_crops"].numpy() if "source_crops" in tensors else None
        detail = tensors["detail_crops"].numpy() if "detail_crops" in tensors else None  # absent before issue 26
        if generator.needs_sources and crops is not None and detail is None:
            log.info("%s: an avatar file without full-resolution crops; above %d px it upsamples its %d px crops "
                     "(make the avatar again for sharper output)", path, crops.shape[1], crops.shape[1])
        if generator.needs_sources and crops is None:
            raise ValueError(f"{path}: a {checkpoint.config.model.generator!r}-family avatar file without "
                             "'source_crops'; make the avatar again with `talkinghead finetune`")
        picture = tensors["picture"].numpy() if "picture" in tensors else None
        box = tuple(tensors["box"].tolist()) if "box" in tensors else None
        info = (checkpoint.metadata or {}).get("avatar", {})
        return cls(generator, tensors["psi"], tensors["source_landmarks"].numpy(), checkpoint.config,
                   landmarks=landmarks, info=info, picture=picture, box=box, source_crops=crops, detail_crops=detail)


# --- sources -------------------------------------------------------------------------------------------------


def load_sources(images_or_video, max_video_frames: int = 32) -> list[tuple[str, np.ndarray]]:
    """(name, uint8 RGB image) for: a path to an image or a video, a uint8 array, or a list of these.
    A video gives up to ``max_video_frames`` evenly spaced frames."""
    return [(name, image) for name, image, _ in _sources_with_origin(images_or_video, max_video_frames)]


def _sources_with_origin(images_or_video, max_video_frames: int) -> list[tuple[str, np.ndarray, Path | None]]:
    """`load_sources` with each picture's video (None for a picture given as such): a video's frames without a
    face are skipped, a picture's are an error."""
    items = images_or_video if isinstance(images_or_video, (list, tuple)) else [images_or_video]
    if not items:
        raise ValueError("personalization needs at least one source picture")
    result: list[tuple[str, np.ndarray, Path | None]] = []
    for number, item in enumerate(items):
        if isinstance(item, np.ndarray):
            result.append((f"source #{number}", _check_image(item, f"source #{number}"), None))
            continue
        path = Path(item)
        if not path.exists():
            raise FileNotFoundError(f"source {path} does not exist")
        if path.suffix.lower() in IMAGE_SUFFIXES:
            from talkinghead.video import read_image

            result.append((str(path), read_image(path), None))
        else:
            result.extend((name, frame, path) for name, frame in _video_sources(path, max_video_frames))
    return result


def _check_video_faces(video: Path, frames: int, faceless: int) -> None:
    """One log line when frames of a source video had no face (they were skipped); a ValueError naming the video
    and the counts when fewer than `MIN_VIDEO_FACES` frames (all, for a shorter video) showed one."""
    found, needed = frames - faceless, min(MIN_VIDEO_FACES, frames)
    if found < needed:
        raise ValueError(f"source video {video}: a face was found in only {found} of the {frames} frames looked at, "
                         f"at least {needed} are needed; use a video where the face stays in view")
    if faceless:
        log.warning("source video %s: no face found in %d of the %d frames looked at; they are skipped (the avatar "
                    "uses the other %d)", video, faceless, frames, found)


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


def _parameter_device(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


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


def _check_crops(crops: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """The source crops, uint8 [T, S, S, 3], one per source landmark set; else a ValueError saying what is wrong."""
    crops = np.ascontiguousarray(crops)
    expected = (len(landmarks), size, size, 3)
    if crops.dtype != np.uint8 or crops.shape != expected:
        raise ValueError(f"source_crops must be uint8 {expected} (one {size}x{size} crop per source landmark set), "
                         f"got {crops.dtype} {crops.shape}")
    return crops


def detail_crop(image: np.ndarray, box: tuple[float, float, float], size: int) -> np.ndarray:
    """The crop ``box`` (left, top, side) of ``image`` at the picture's own resolution: its side is the box's,
    at least ``size`` (the model's) and at most `MAX_DETAIL_SIDE`. uint8 [D, D, 3]."""
    side = int(min(max(round(box[2]), size), MAX_DETAIL_SIDE))
    return crop_image(image, CropBox(*box), side)[0]


def _resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """A square uint8 image resized to ``size`` (area interpolation when shrinking, cubic when enlarging)."""
    if image.shape[0] == size:
        return image
    interpolation = cv2.INTER_AREA if size < image.shape[0] else cv2.INTER_CUBIC
    return cv2.resize(image, (size, size), interpolation=interpolation)


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{name}: expected a uint8 RGB image [H, W, 3], got {image.dtype} {image.shape}")
    return image


__all__ = ["Avatar", "Source", "TalkingHead", "load_sources", "resolve_export", "warn_if_different_people"]
