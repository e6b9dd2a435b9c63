"""Episodes, the dataset format's checks, the identity split and the synthetic dataset writer (no shared data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from talkinghead.data.episodes import EpisodeDataset, sample_episode_frames, split_identities
from talkinghead.data.index import DatasetError, build_index, encode_frame, load_index, write_video_folder
from talkinghead.data.prepare import write_synthetic_dataset

SIZE = 64


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(root, num_identities=3, videos_per_identity=2, frames_per_video=12, size=SIZE, seed=3)
    return root


def _hand_made(root: Path, frame_counts: dict[str, int]) -> Path:
    """A dataset with random frames and landmarks, one video per key (identity = the key's first part)."""
    for key, count in frame_counts.items():
        rng = np.random.default_rng(list(key.encode()))
        frames = [encode_frame(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)) for _ in range(count)]
        points = rng.uniform(8, SIZE - 8, (count, 68, 2)).astype(np.float32)
        write_video_folder(root / "videos" / key, frames, points,
                           {"key": key, "identity": key.split("/")[0], "image_size": SIZE})
    build_index(root, {"image_size": SIZE, "crop": {}, "landmark_backend": "test"})
    return root


def test_sampled_target_is_never_a_source():
    rng = np.random.default_rng(1)
    for _ in range(3000):
        num_frames = int(rng.integers(2, 20))
        k = int(rng.integers(1, 10))
        sources, target = sample_episode_frames(num_frames, k, rng)
        assert sources.shape == (k,)
        assert target not in sources
        assert 0 <= target < num_frames and sources.min() >= 0 and sources.max() < num_frames
        if num_frames - 1 >= k:
            assert len(set(sources.tolist())) == k  # without replacement when the video is long enough
    with pytest.raises(ValueError, match="at least 2 frames"):
        sample_episode_frames(1, 4, rng)


def test_episode_items_never_leak_the_target(tmp_path):
    root = _hand_made(tmp_path, {"a/v1": 12, "a/v2": 3, "b/v1": 9, "c/one": 1})
    dataset = EpisodeDataset(root, SIZE, frames_per_episode=8, seed=5)
    assert len(dataset) == 3  # the 1-frame video is left out
    assert dataset.num_videos == 4  # W still needs a row for every video of the index
    for epoch in range(60):
        dataset.set_epoch(epoch)
        for item in range(len(dataset)):
            sources, target = dataset.episode_frames(item)
            assert target not in sources.tolist()
    sample = dataset[1]  # the 3-frame video: sources drawn with replacement from the 2 other frames
    assert int(sample["target_frame"]) not in sample["source_frames"].tolist()
    # The target image is the stored target frame, not one of the sources' pixels.
    for k in range(8):
        assert not torch.equal(sample["source_images"][k], sample["target_image"])


def test_warp_keys_come_from_the_stored_landmarks_and_never_the_target(tmp_path):
    from talkinghead.landmarks.mesh import identity_grid, normalized_landmark_distance, sampling_grid

    root = _hand_made(tmp_path, {"a/v1": 12, "a/v2": 3, "b/v1": 9})
    dataset = EpisodeDataset(root, SIZE, frames_per_episode=8, seed=5, warp_sources=True)
    plain = EpisodeDataset(root, SIZE, frames_per_episode=8, seed=5)
    assert "source_grids" not in plain[0] and "source_landmarks" in plain[0]
    index = load_index(root)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for item in range(len(dataset)):
            sample = dataset[item]
            video = dataset.videos[item]
            stored = np.load(root / video.path / "landmarks.npy")
            sources, target = sample["source_frames"].numpy(), int(sample["target_frame"])
            assert target not in sources.tolist()
            assert sample["source_landmarks"].shape == (8, 68, 2) and sample["source_landmarks"].dtype == torch.float32
            np.testing.assert_array_equal(sample["source_landmarks"].numpy(), stored[sources])
            np.testing.assert_array_equal(sample["target_landmarks"].numpy(), stored[target])
            assert sample["source_grids"].shape == (8, SIZE, SIZE, 2)
            for k in (0, 7):
                np.testing.assert_array_equal(sample["source_grids"][k].numpy(),
                                              sampling_grid(stored[sources[k]], stored[target], SIZE))
            # random landmarks per frame: no source grid is the identity (that needs the target's own landmarks)
            identity = torch.from_numpy(identity_grid(SIZE, SIZE))
            assert all(not torch.equal(grid, identity) for grid in sample["source_grids"])
            np.testing.assert_allclose(sample["source_distances"].numpy(),
                                       normalized_landmark_distance(stored[sources], stored[target]), rtol=1e-6)
    assert index.num_videos == 3


def test_item_shapes_ranges_and_values(synthetic_root):
    dataset = EpisodeDataset(synthetic_root, SIZE, frames_per_episode=4, seed=0)
    item = dataset[2]
    assert item["source_images"].shape == (4, 3, SIZE, SIZE)
    assert item["source_landmark_images"].shape == (4, 3, SIZE, SIZE)
    assert item["target_image"].shape == (3, SIZE, SIZE)
    assert item["target_landmark_image"].shape == (3, SIZE, SIZE)
    assert item["video_index"].dtype == torch.long and int(item["video_index"]) == 2
    for key in ("source_images", "source_landmark_images", "target_image", "target_landmark_image"):
        assert item[key].dtype == torch.float32
        assert item[key].min() >= -1.0 and item[key].max() <= 1.0
    # Landmark image: black (-1) background, some bright lines.
    drawing = item["target_landmark_image"]
    assert (drawing == -1.0).float().mean() > 0.8 and drawing.max() > 0.5
    # The frame is the stored JPEG, mapped to [-1, 1].
    index = load_index(synthetic_root)
    from talkinghead.data.index import decode_frame

    stored = decode_frame(index.frame_path(2, int(item["target_frame"])))
    expected = torch.from_numpy(stored.copy()).permute(2, 0, 1).float() / 127.5 - 1.0
    assert torch.allclose(item["target_image"], expected)


def test_resized_items_scale_landmarks(synthetic_root):
    full = EpisodeDataset(synthetic_root, SIZE, frames_per_episode=2, seed=0)
    half = EpisodeDataset(synthetic_root, SIZE // 2, frames_per_episode=2, seed=0)
    a, b = full[0], half[0]
    assert b["target_image"].shape == (3, SIZE // 2, SIZE // 2)
    assert torch.equal(a["source_frames"], b["source_frames"])
    # The drawn lines' centre of mass moves with the image: half the coordinates (within a pixel).
    def centre(drawing: torch.Tensor) -> torch.Tensor:
        mass = (drawing + 1).sum(0)
        ys, xs = torch.meshgrid(torch.arange(mass.shape[0]), torch.arange(mass.shape[1]), indexing="ij")
        return torch.stack([(xs * mass).sum(), (ys * mass).sum()]) / mass.sum()
    assert torch.allclose(centre(b["target_landmark_image"]), (centre(a["target_landmark_image"]) + 0.5) / 2 - 0.5,
                          atol=1.0)


def test_determinism_and_reseeding(synthetic_root):
    first = EpisodeDataset(synthetic_root, SIZE, frames_per_episode=4, seed=11)
    second = EpisodeDataset(synthetic_root, SIZE, frames_per_episode=4, seed=11)
    for item in range(len(first)):
        a, b = first[item], second[item]
        for key in a:
            assert torch.equal(a[key], b[key]), key
    frames = [first.episode_frames(i) for i in range(len(first))]
    first.set_epoch(1)
    moved = [first.episode_frames(i) for i in range(len(first))]
    assert any(f[1] != m[1] or not np.array_equal(f[0], m[0]) for f, m in zip(frames, moved, strict=True))
    other_seed = EpisodeDataset(synthetic_root, SIZE, frames_per_episode=4, seed=12)
    assert any(other_seed.episode_frames(i)[1] != frames[i][1] or
               not np.array_equal(other_seed.episode_frames(i)[0], frames[i][0]) for i in range(len(first)))


def test_distributed_sampler_and_workers_give_the_same_episodes(synthetic_root):
    dataset = EpisodeDataset(synthetic_root, SIZE, frames_per_episode=3, seed=2)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        sampler.set_epoch(0)
        indices = list(sampler)
        seen.extend(indices)
        loader = DataLoader(dataset, batch_size=len(indices), sampler=sampler, num_workers=0)
        batch = next(iter(loader))
        assert batch["source_images"].shape == (len(indices), 3, 3, SIZE, SIZE)
        for row, item in enumerate(indices):
            # Same episode whichever rank and batch position loads the video.
            assert torch.equal(batch["target_frame"][row], dataset[item]["target_frame"])
            assert torch.equal(batch["source_images"][row], dataset[item]["source_images"])
            assert int(batch["video_index"][row]) == dataset.videos[item].video_index
    assert sorted(seen) == list(range(len(dataset)))
    # Worker processes draw the same frames as the main process.
    loader = DataLoader(dataset, batch_size=2, shuffle=False, num_workers=2)
    targets = torch.cat([batch["target_frame"] for batch in loader])
    assert targets.tolist() == [int(dataset[i]["target_frame"]) for i in range(len(dataset))]


def test_identity_filter_keeps_video_indices(synthetic_root):
    train, test = split_identities(load_index(synthetic_root).identities, test_fraction=0.34, seed=0)
    dataset = EpisodeDataset(synthetic_root, SIZE, frames_per_episode=2, identities=train)
    assert {v.identity for v in dataset.videos} == set(train)
    assert dataset.num_videos == 6
    assert [v.video_index for v in dataset.videos] == sorted(
        i for name in train for i in load_index(synthetic_root).identities[name])
    with pytest.raises(DatasetError, match="nobody"):
        EpisodeDataset(synthetic_root, SIZE, identities=["nobody"])


def test_split_identities_rules(tmp_path):
    names = [f"id{i:05d}" for i in range(200)]
    train, test = split_identities(names, test_fraction=0.1, seed=0)
    assert not set(train) & set(test) and sorted(train + test) == names
    assert 8 <= len(test) <= 35
    assert (train, test) == split_identities(list(reversed(names)), test_fraction=0.1, seed=0)
    # Adding identities never moves an existing one.
    _, test_more = split_identities(names + [f"new{i}" for i in range(50)], test_fraction=0.1, seed=0)
    assert set(test) == {n for n in test_more if n in set(names)}
    assert split_identities(names, 0.1, seed=1)[1] != test
    # Both sides non-empty with few identities.
    small_train, small_test = split_identities(["a", "b"], test_fraction=0.01)
    assert len(small_train) == 1 and len(small_test) == 1
    listed = tmp_path / "test_ids.txt"
    listed.write_text("# held out\nid00003\nid00007  # another\n\n")
    train_f, test_f = split_identities(names, test_file=listed)
    assert test_f == ["id00003", "id00007"] and len(train_f) == 198
    listed.write_text("id99999\n")
    with pytest.raises(DatasetError, match="test_ids.txt"):
        split_identities(names, test_file=listed)


def test_video_index_is_stable_and_sorted_by_key(tmp_path):
    root = _hand_made(tmp_path / "one", {"b/x": 2, "a/y": 3, "a/x": 2})
    index = load_index(root)
    assert [v.key for v in index.videos] == ["a/x", "a/y", "b/x"]
    assert index.identities == {"a": [0, 1], "b": [2]}
    # Written in another order: the same index.
    other = _hand_made(tmp_path / "two", {"a/x": 2, "b/x": 2, "a/y": 3})
    assert load_index(other).content_hash == index.content_hash


def test_index_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="index.json is missing"):
        load_index(tmp_path)
    root = _hand_made(tmp_path / "ds", {"a/x": 2, "b/x": 3})
    raw = json.loads((root / "index.json").read_text())
    raw["videos"][0]["num_frames"] = 7
    (root / "index.json").write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="content_hash"):
        load_index(root)
    build_index(root, {"image_size": SIZE})
    (root / "videos/b/x/landmarks.npy").unlink()
    with pytest.raises(DatasetError, match=r"videos/b/x/landmarks.npy is missing"):
        load_index(root)
    np.save(root / "videos/b/x/landmarks.npy", np.zeros((2, 68, 2), np.float32))
    with pytest.raises(DatasetError, match="landmarks.npy"):
        load_index(root, deep=True)
    (root / "videos/a/x/frames/000001.jpg").unlink()
    np.save(root / "videos/b/x/landmarks.npy", np.zeros((3, 68, 2), np.float32))
    with pytest.raises(DatasetError, match="000001.jpg"):
        load_index(root, deep=True)
    with pytest.raises(DatasetError, match="expected .3, 68, 2."):
        write_video_folder(tmp_path / "bad", [b"x"] * 3, np.zeros((2, 68, 2)), {})


def test_synthetic_dataset_is_loadable_and_idempotent(synthetic_root, tmp_path):
    index = load_index(synthetic_root, deep=True)
    assert index.num_videos == 6 and index.num_frames == 72
    assert sorted(index.identities) == ["syn0000", "syn0001", "syn0002"]
    assert index.landmark_backend == "synthetic" and index.image_size == SIZE
    meta = index.meta(0)
    assert {"identity_seed", "motion_seed", "crop_boxes"} <= set(meta) and len(meta["crop_boxes"]) == 12
    landmarks = index.landmarks(0)
    assert landmarks.shape == (12, 68, 2)
    extent = (landmarks.max(axis=1) - landmarks.min(axis=1)).max(axis=1)
    assert np.all((extent > 0.3 * SIZE) & (extent < 0.7 * SIZE))  # the crop policy framed the face
    copy = tmp_path / "again"
    shutil.copytree(synthetic_root, copy)
    shutil.rmtree(copy / "videos" / "syn0001")  # as if killed part-way: re-run completes it identically
    again = write_synthetic_dataset(copy, num_identities=3, videos_per_identity=2, frames_per_video=12, size=SIZE,
                                    seed=3)
    assert again["content_hash"] == index.content_hash
    with pytest.raises(ValueError, match="other settings"):
        write_synthetic_dataset(copy, 3, 2, 12, size=32, seed=3)
