"""Identity splits: a written-down who-is-who decides identities and keeps held-out people out of training."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.data.index import load_index
from talkinghead.data.prepare import PrepareSettings, discover_sources, prepare_dataset
from talkinghead.data.split import IdentitySplit, per_file_identity

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SPLIT = REPO_ROOT / "docs" / "splits" / "shared-dev-data.json"

SPLIT = {
    "format": "talkinghead-identity-split/1",
    "identities": {"alice": ["alice/*", "web/alice_talk.png"], "bob": ["bob/*"]},
    "excluded": {"web/crowd*": "several people"},
    "held_out": ["alice"],
    "unmatched": "per-file",
}


def _write_split(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "split.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Still images laid out so that the folders do NOT say who is who (web/ mixes people)."""
    import cv2

    root = tmp_path / "videos"
    for key in ("alice/a.png", "bob/b.png", "web/alice_talk.png", "web/crowd1.png", "web/carol.png"):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / key), np.zeros((8, 8, 3), np.uint8))
    return root


def test_split_names_people_across_folders_and_parts(folder, tmp_path):
    split = IdentitySplit.load(_write_split(tmp_path, SPLIT))
    everyone = {item.key: item.identity for item in discover_sources(folder, split, "all")}
    # web/alice_talk.png is alice although it lies in web/; the crowd is excluded; carol is her own person.
    assert everyone == {"alice/a.png": "alice", "bob/b.png": "bob", "web/alice_talk.png": "alice",
                        "web/carol.png": "web-carol"}
    test = {item.key for item in discover_sources(folder, split, "test")}
    train = {item.key for item in discover_sources(folder, split, "train")}
    assert test == {"alice/a.png", "web/alice_talk.png"}
    assert train == {"bob/b.png", "web/carol.png"}
    # without the split, the layout would have made web/alice_talk.png a different person ("web")
    assert {i.key: i.identity for i in discover_sources(folder)}["web/alice_talk.png"] == "web"


@pytest.mark.parametrize("change, message", [
    ({"format": "other"}, "'format'"),
    ({"held_out": ["zoe"]}, "does not define.*zoe"),
    ({"identities": {"alice": []}}, r"identities\['alice'\]"),
    ({"unmatched": "guess"}, "'unmatched'"),
])
def test_bad_split_files_are_refused_with_the_field(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        IdentitySplit.load(_write_split(tmp_path, {**SPLIT, **change}))


def test_ambiguous_and_unmatched_clips_are_errors(folder, tmp_path):
    overlapping = {**SPLIT, "identities": {**SPLIT["identities"], "carol": ["web/alice*"]}}
    with pytest.raises(ValueError, match="web/alice_talk.png matches several identities"):
        discover_sources(folder, IdentitySplit.load(_write_split(tmp_path, overlapping)))
    strict = {**SPLIT, "unmatched": "error"}
    with pytest.raises(ValueError, match="no identity pattern matches web/carol.png"):
        discover_sources(folder, IdentitySplit.load(_write_split(tmp_path, strict)))
    assert per_file_identity("more/deep_avsr_lrs2/00001.mp4") == "more-deep_avsr_lrs2-00001"


def test_prepared_parts_share_no_person_and_remember_the_split(shared_data, tmp_path):
    """Real clips: the train and test parts of one split are disjoint in people, the index records the split,
    and re-running a folder with the other part is refused (it would mix the parts)."""
    import os

    root = tmp_path / "videos"
    for key in ("voxceleb2/id00017/OLguY5ofUrY/00041.mp4", "lp__d0_man_greenscreen.mp4"):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(shared_data / "videos" / key, root / key)
    split_path = _write_split(tmp_path, {"format": "talkinghead-identity-split/1",
                                         "identities": {"vox": ["voxceleb2/id00017/*"]}, "held_out": ["vox"]})
    split = IdentitySplit.load(split_path)
    datasets = {}
    for part in ("train", "test"):
        settings = PrepareSettings(image_size=64, max_frames=4, min_frames=2, identity_split_sha256=split.sha256,
                                   split_part=part)
        prepare_dataset(root, tmp_path / part, settings, split=split)
        datasets[part] = load_index(tmp_path / part)
    assert {v.identity for v in datasets["test"].videos} == {"vox"}
    assert {v.identity for v in datasets["train"].videos} == {"lp__d0_man_greenscreen"}
    recorded = json.loads((tmp_path / "test" / "index.json").read_text())["identity_split"]
    assert recorded == {"sha256": split.sha256, "part": "test"}
    assert main(["prepare", str(root), "-o", str(tmp_path / "test"), "--size", "64", "--max-frames", "4",
                 "--split", str(split_path), "--part", "train"]) == 2
    assert main(["prepare", str(root), "-o", str(tmp_path / "other"), "--part", "test"]) == 2


def test_the_repository_split_of_the_shared_clips(shared_data):
    """The committed split of ../shared/data/videos: >= 10 held-out people from several source collections, no
    held-out person's clip in the training part, and every held-out person really has clips."""
    split = IdentitySplit.load(SHARED_SPLIT)
    train = discover_sources(shared_data / "videos", split, "train")
    test = discover_sources(shared_data / "videos", split, "test")
    test_people = {item.identity for item in test}
    assert test_people == set(split.held_out) and len(test_people) >= 10
    assert not test_people & {item.identity for item in train}
    collections = {item.key.split("/")[1] if item.key.startswith("more/") else item.key.split("/")[0]
                   for item in test}
    assert len(collections) >= 6
