"""Training episodes (paper §3.2): one sample = one video, K source frames and one different target frame.

`EpisodeDataset(root, image_size, frames_per_episode, seed)` is a map-style torch ``Dataset`` over the
videos of a dataset folder (see `talkinghead.data.index`): item ``i`` is the i-th usable video (in
``video_index`` order, after the identity filter). Each item is a dict of

* ``source_images`` float32 [K, 3, H, W] and ``source_landmark_images`` [K, 3, H, W]: the embedder's input;
* ``target_image`` [3, H, W] and ``target_landmark_image`` [3, H, W]: the generator's target and input;
* ``video_index`` long (the discriminator's row of W), ``source_frames`` long [K], ``target_frame`` long;
* ``identity_index`` long: the person's place among the index's identities (sorted names), the same for every
  video of one person (the label of the embedder's identity term, `losses.identity_contrast_loss`);
* ``source_landmarks`` float32 [K, 68, 2] and ``target_landmarks`` [68, 2]: pixel coordinates at ``image_size``
  (pixel centres at integers), the points the landmark images are drawn from;
* with ``warp_sources=True`` (the warp generator, issue 15) also ``source_grids`` float32 [K, H, W, 2], the mesh
  grid from the target to each source (`talkinghead.landmarks.mesh.sampling_grid`, grid_sample coordinates,
  align_corners=False), and ``source_distances`` float32 [K], the normalized landmark distance of each source
  to the target (`normalized_landmark_distance`).

Episodes that need invention (issue 25, ``gap_fraction`` > 0): most random pairs have a source near the target,
so the warp is already right and nothing rewards the generator for inventing pixels. With probability
``gap_fraction`` an episode is a MOUTH-GAP episode instead: the target is a frame whose mouth is open (inner-lip
gap > `MOUTH_OPEN` inter-ocular distances) and every source a frame whose mouth is closed (< `MOUTH_CLOSED`), the
situation of the mouth-open evaluation split and of a closed-mouth portrait driven by a talker. A video without
both kinds of frames gives a random episode. With probability ``eye_gap_fraction`` (drawn from the same number, after
the mouth's share) an episode is an EYE-GAP episode: the target blinks (eye openness under ``eye_gap_shut``, by
default `metrics.eyes.EYES_CLOSED`, of its video's median) and every source has the eyes open (over `EYES_OPEN`),
the situation of the eyes-closed evaluation split and of the lid prior (``lid_prior``). The item's ``gap`` key says
which it was: 1 mouth gap, 2 eye gap, 0 random.

Generator sources (``generator_sources`` = N < K, issue 25): the embedder still sees all K sources, but they come
nearest to the target first, and ``source_weights`` [K] (the ``source_blend`` rule's share of each, 0 beyond the
N nearest) is added, so the generator trains on what inference gives it (`WarpSources.first`). With
``synthesis_prior`` also ``synthesis_prior`` [1, H, W] (`talkinghead.landmarks.synthesis_prior`, over those N; with
``stretch_limit`` > 0 it also covers where the mesh stretches or folds a source, with ``lid_prior`` the driver's shut
eye where the sources' are open); with ``prior_parts`` its three parts [3, H, W] instead (``model.prior_input``).

Images are in [-1, 1] (a black landmark-image background is -1). Landmark images are drawn at load time
with `talkinghead.landmarks.landmark_image` from the stored landmarks (scaled to ``image_size``), so the
line width and palette always follow the one drawing function (drawing costs ~0.1 ms a frame: no cache).

The target is never among the K sources: the target is drawn first and the sources from the other frames
(without replacement when the video has at least K + 1 frames, else with replacement from the other frames;
a video needs 2 frames at least, shorter ones are left out with a log line).

Determinism: the frames of item ``i`` depend only on ``(seed, epoch, video_index)`` through
``numpy.random.default_rng``, never on worker ids, load order or the process, so any sampler (also
``torch.utils.data.distributed.DistributedSampler``, which only chooses which ``i`` each rank loads) gives
the same episodes for the same seed. Call ``set_epoch(epoch)`` (as with ``DistributedSampler.set_epoch``)
before each epoch to draw new frames; DataLoader workers copy the dataset when an iterator is created, so
with ``persistent_workers=True`` the new epoch would not reach them: keep it False (the default), or pass
the step count as the epoch in step-based loops.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from talkinghead.data.index import DatasetError, DatasetIndex, decode_frame, load_index
from talkinghead.pixels import to_tensor

log = logging.getLogger(__name__)

MOUTH_GAP, EYE_GAP = 1, 2
"""The item's ``gap`` value of a mouth-gap and of an eye-gap episode (0: a random one)."""


def sample_gap_frames(target_frames: np.ndarray, source_frames: np.ndarray, frames_per_episode: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A gap episode: (K sources drawn from ``source_frames``, sorted; one target from ``target_frames``). Both must
    be non-empty and disjoint (mouth gap: the target's mouth open, the sources' closed; eye gap: the target's eyes
    shut, the sources' open)."""
    target = int(rng.choice(target_frames))
    replace = source_frames.size < frames_per_episode
    sources = np.sort(rng.choice(source_frames, size=frames_per_episode, replace=replace))
    return sources, target


def sample_episode_frames(num_frames: int, frames_per_episode: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Draw (K source frame numbers, sorted; one target frame number not among them) from a video of
    ``num_frames`` frames. Needs ``num_frames >= 2``."""
    if num_frames < 2:
        raise ValueError(f"an episode needs a video of at least 2 frames, got {num_frames}")
    target = int(rng.integers(num_frames))
    others = np.delete(np.arange(num_frames), target)
    replace = others.size < frames_per_episode
    sources = np.sort(rng.choice(others, size=frames_per_episode, replace=replace))
    return sources, target


class EpisodeDataset(Dataset):
    """Episodes of K source frames + 1 target frame per video, as tensors in [-1, 1] (module docstring)."""

    def __init__(self, root: str | os.PathLike[str], image_size: int | None = None, frames_per_episode: int = 8,
                 seed: int = 0, identities: Iterable[str] | None = None, line_width: float | None = None,
                 warp_sources: bool = False, gap_fraction: float = 0.0, generator_sources: int | None = None,
                 source_blend: str = "nearest", source_blend_power: float = 4.0,
                 synthesis_prior: bool = False, stretch_limit: float = 0.0, eye_gap_fraction: float = 0.0,
                 lid_prior: bool = False, prior_parts: bool = False, eye_gap_shut: float = 0.5) -> None:
        """``image_size``: frames are resized when it differs from the dataset's (None = as stored).
        ``identities``: keep only these identities' videos (e.g. the train side of `split_identities`);
        ``video_index`` stays the dataset's, so W's rows do not move. ``line_width``: passed to
        `landmark_image` (None = its default). ``warp_sources``: add the mesh grids and landmark distances the warp
        generator needs (~2 ms per source at 128 px). ``gap_fraction``, ``generator_sources``, ``source_blend``,
        ``source_blend_power``, ``synthesis_prior``, ``stretch_limit``, ``eye_gap_fraction``, ``lid_prior``,
        ``prior_parts``: see the module docstring (issue 25). ``eye_gap_shut``: a blink episode's target openness is
        under this share of its video's median (`train.eye_gap_shut`)."""
        if not 0.0 <= gap_fraction <= 1.0:
            raise ValueError(f"gap_fraction must be in [0, 1], got {gap_fraction}")
        if not 0.0 <= eye_gap_fraction <= 1.0 - gap_fraction:
            raise ValueError(f"eye_gap_fraction must be in [0, 1 - gap_fraction], got {eye_gap_fraction}")
        if generator_sources is not None and generator_sources < 1:
            raise ValueError(f"generator_sources must be >= 1, got {generator_sources}")
        if (generator_sources is not None or synthesis_prior) and not warp_sources:
            raise ValueError("generator_sources and synthesis_prior need warp_sources=True (the warp generator)")
        if (stretch_limit or lid_prior or prior_parts) and not synthesis_prior:
            raise ValueError("stretch_limit, lid_prior and prior_parts extend the synthesis prior: they need "
                             "synthesis_prior=True")
        self.gap_fraction = float(gap_fraction)
        self.generator_sources = generator_sources
        self.source_blend = source_blend
        self.source_blend_power = float(source_blend_power)
        self.synthesis_prior = bool(synthesis_prior)
        self.stretch_limit = float(stretch_limit)
        self.eye_gap_fraction = float(eye_gap_fraction)
        self.lid_prior = bool(lid_prior)
        self.prior_parts = bool(prior_parts)
        self.eye_gap_shut = float(eye_gap_shut)
        self._gap_frames: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # (kind, video) -> frames
        if frames_per_episode < 1:
            raise ValueError(f"frames_per_episode must be >= 1, got {frames_per_episode}")
        self.index: DatasetIndex = load_index(root)
        self.root = self.index.root
        self.image_size = int(image_size or self.index.image_size)
        self.frames_per_episode = int(frames_per_episode)
        self.seed = int(seed)
        self.line_width = line_width
        self.warp_sources = bool(warp_sources)
        self.epoch = 0
        keep = None
        if identities is not None:
            keep = set(identities)
            unknown = keep - set(self.index.identities)
            if unknown:
                raise DatasetError(f"{self.root / 'index.json'}: no identities named {sorted(unknown)[:5]}")
        self.videos = [v for v in self.index.videos if (keep is None or v.identity in keep)]
        self._identity_index = {name: place for place, name in enumerate(sorted(self.index.identities))}
        short = [v.key for v in self.videos if v.num_frames < 2]
        if short:
            log.info("%s: %d videos have fewer than 2 frames and are left out of episodes (e.g. %s)",
                     self.root, len(short), short[0])
            self.videos = [v for v in self.videos if v.num_frames >= 2]
        if not self.videos:
            raise DatasetError(f"{self.root}: no video with at least 2 frames"
                               + (" among the chosen identities" if keep is not None else ""))
        self._scale = self.image_size / self.index.image_size

    def __len__(self) -> int:
        return len(self.videos)

    @property
    def num_videos(self) -> int:
        """Rows the discriminator's W needs: all videos of the dataset, not only the filtered ones."""
        return self.index.num_videos

    def set_epoch(self, epoch: int) -> None:
        """Reseed: epoch ``e`` draws other frames than epoch ``e - 1`` (deterministically)."""
        self.epoch = int(epoch)

    def episode_frames(self, item: int, epoch: int | None = None) -> tuple[np.ndarray, int]:
        """The (source frames, target frame) item ``item`` gives in ``epoch`` (default: the current one)."""
        return self._episode(item, epoch)[:2]

    def _episode(self, item: int, epoch: int | None = None) -> tuple[np.ndarray, int, int]:
        """(source frames, target frame, the kind of episode: 0 random, 1 mouth gap, 2 eye gap)."""
        video = self.videos[item]
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch), video.video_index])
        if self.gap_fraction > 0 or self.eye_gap_fraction > 0:
            draw = rng.random()  # one number: the mouth's share first, then the eyes' (random episodes unchanged)
            kind = MOUTH_GAP if draw < self.gap_fraction else (
                EYE_GAP if draw < self.gap_fraction + self.eye_gap_fraction else 0)
            if kind:
                targets, sources = self._gap_split(item, kind)
                if targets.size and sources.size:
                    return (*sample_gap_frames(targets, sources, self.frames_per_episode, rng), kind)
        return (*sample_episode_frames(video.num_frames, self.frames_per_episode, rng), 0)

    def _gap_split(self, item: int, kind: int) -> tuple[np.ndarray, np.ndarray]:
        """(target frames, source frames) of a gap episode of video ``item``, from its landmarks: for `MOUTH_GAP`
        the frames whose mouth is open and those whose mouth is closed; for `EYE_GAP` the frames in a blink and those
        with the eyes open."""
        video = self.videos[item]
        key = (kind, video.video_index)
        if key not in self._gap_frames:
            points = np.asarray(np.load(self.root / video.path / "landmarks.npy", mmap_mode="r"), dtype=np.float64)
            if kind == MOUTH_GAP:
                from talkinghead.metrics.mouth import MOUTH_CLOSED, MOUTH_OPEN, mouth_openness

                openness = np.asarray(mouth_openness(points))
                self._gap_frames[key] = (np.flatnonzero(openness > MOUTH_OPEN), np.flatnonzero(openness < MOUTH_CLOSED))
            else:
                from talkinghead.metrics.eyes import EYES_OPEN, relative_eye_openness

                openness = relative_eye_openness(points)
                self._gap_frames[key] = (np.flatnonzero(openness < self.eye_gap_shut),
                                         np.flatnonzero(openness > EYES_OPEN))
        return self._gap_frames[key]

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        from talkinghead.landmarks.drawing import landmark_image

        video = self.videos[item]
        folder = self.root / video.path
        landmarks = np.load(folder / "landmarks.npy", mmap_mode="r")
        if landmarks.shape[0] != video.num_frames:
            raise DatasetError(f"{folder / 'landmarks.npy'}: {landmarks.shape[0]} frames, index says "
                               f"{video.num_frames}; rebuild the index with `talkinghead prepare --index-only`")
        sources, target, gap = self._episode(item)
        if self.generator_sources is not None:  # nearest to the target first (the generator takes the first N)
            from talkinghead.landmarks.mesh import normalized_landmark_distance

            # Position and scale are normalized away: the stored landmarks order them as the resized ones would.
            distance = normalized_landmark_distance(np.asarray(landmarks[sources], np.float32),
                                                    np.asarray(landmarks[target], np.float32))
            sources = sources[np.argsort(distance, kind="stable")]
        frame_numbers = [*sources.tolist(), target]
        size = self.image_size
        images = np.empty((len(frame_numbers), size, size, 3), dtype=np.uint8)
        drawings = np.empty_like(images)
        points_all = np.empty((len(frame_numbers), 68, 2), dtype=np.float32)
        for slot, t in enumerate(frame_numbers):
            image = decode_frame(self.index.frame_path(video.video_index, t))
            points = np.asarray(landmarks[t], dtype=np.float32)
            if self._scale != 1.0:
                image = _resize(image, size)
                points = (points + 0.5) * self._scale - 0.5  # pixel centres stay centres
            images[slot] = image
            points_all[slot] = points
            drawings[slot] = landmark_image(points, size, line_width=self.line_width)
        images_t = to_tensor(images)  # [K+1, 3, H, W] in [-1, 1]
        drawings_t = to_tensor(drawings)
        k = self.frames_per_episode
        item_tensors = {
            "source_images": images_t[:k],
            "source_landmark_images": drawings_t[:k],
            "target_image": images_t[k],
            "target_landmark_image": drawings_t[k],
            "video_index": torch.tensor(video.video_index, dtype=torch.long),
            "identity_index": torch.tensor(self._identity_index[video.identity], dtype=torch.long),
            "source_frames": torch.from_numpy(sources.astype(np.int64)),
            "target_frame": torch.tensor(target, dtype=torch.long),
            "source_landmarks": torch.from_numpy(points_all[:k].copy()),
            "target_landmarks": torch.from_numpy(points_all[k].copy()),
            "gap": torch.tensor(int(gap), dtype=torch.long),
        }
        if self.warp_sources:
            from talkinghead.landmarks.mesh import normalized_landmark_distance, sampling_grid

            target_points = points_all[k]
            item_tensors["source_grids"] = torch.from_numpy(
                np.stack([sampling_grid(points_all[slot], target_points, size) for slot in range(k)]))
            distances = normalized_landmark_distance(points_all[:k], target_points)
            item_tensors["source_distances"] = torch.from_numpy(distances.astype(np.float32))
            weights = np.zeros(k, dtype=np.float32)
            if self.generator_sources is not None:
                from talkinghead.models.source_choice import choose_sources

                chosen, shares = choose_sources(distances, self.generator_sources, self.source_blend,  # type: ignore[arg-type]
                                                self.source_blend_power)
                weights[chosen] = shares
                item_tensors["source_weights"] = torch.from_numpy(weights)
            else:  # the generator takes all K and the nearest alone where the gate keeps to the rule
                weights[int(np.argmin(distances))] = 1.0
            if self.synthesis_prior:
                from talkinghead.landmarks.synthesis_prior import synthesis_prior

                item_tensors["synthesis_prior"] = synthesis_prior(
                    torch.from_numpy(target_points)[None], torch.from_numpy(points_all[:k].copy())[None],
                    item_tensors["source_grids"][None], torch.from_numpy(weights)[None],
                    self.stretch_limit, self.lid_prior, parts=self.prior_parts)[0]  # [1 or 3, H, W]
        return item_tensors


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    interpolation = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interpolation)


# -- identity split for evaluation ------------------------------------------------------------------------------

def split_identities(identities: Iterable[str], test_fraction: float = 0.1, seed: int = 0,
                     test_file: str | os.PathLike[str] | None = None) -> tuple[list[str], list[str]]:
    """Split identities into (train, test), both sorted, no identity on both sides.

    With ``test_file`` (a text file, one identity per line, ``#`` comments) its identities are the test set
    and every listed name must exist. Otherwise identity ``name`` is a test identity when
    ``sha256(f"{seed}:{name}")``, read as a fraction of 2**256, is below ``test_fraction``: each identity's
    side depends only on its own name and the seed, so adding identities never moves existing ones. With at
    least 2 identities both sides get one at least (the lowest-hash identity moves to test, or the highest to
    train).
    """
    names = sorted(set(identities))
    if test_file is not None:
        path = Path(test_file)
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            raise FileNotFoundError(f"identity split file {path} does not exist") from None
        listed = {line.split("#", 1)[0].strip() for line in lines} - {""}
        unknown = sorted(listed - set(names))
        if unknown:
            raise DatasetError(f"{path}: identities not in the dataset: {unknown[:5]}")
        test = sorted(listed)
        return [n for n in names if n not in listed], test
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")

    def fraction(name: str) -> float:
        return int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest(), 16) / 2.0**256

    ranked = sorted(names, key=fraction)
    test = [n for n in ranked if fraction(n) < test_fraction]
    if len(names) >= 2 and test_fraction > 0:
        if not test:
            test = ranked[:1]
        if len(test) == len(names):
            test = test[:-1]
    test_set = set(test)
    return [n for n in names if n not in test_set], sorted(test_set)
