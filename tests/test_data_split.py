"""Identity splits: a written-down who-is-who decides identities, keeps validation and held-out people out of
training, and lets evaluate refuse a dataset that is not the part it claims to be."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkinghead.cli import build_parser, main
from talkinghead.data.index import build_index, encode_frame, load_index, write_video_folder
from talkinghead.data.prepare import PrepareSettings, discover_sources, prepare_dataset
from talkinghead.data.split import IdentitySplit, check_dataset_part, per_file_identity

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SPLIT = REPO_ROOT / "docs" / "splits" / "shared-dev-data.json"

SPLIT = {
    "format": "talkinghead-identity-split/1",
    "identities": {"alice": ["alice/*", "web/alice_talk.png"], "bob": ["bob/*"]},
    "excluded": {"web/crowd*": "several people"},
    "held_out": ["alice"],
    "unmatched": "per-file",
}
WITH_VALIDATION = {**SPLIT, "validation": ["bob"]}


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
    ({"validation": ["zoe"]}, "validation names.*zoe"),
    ({"validation": ["alice"]}, "both 'held_out' and 'validation'"),
    ({"validation": "bob"}, "'validation' must be a list"),
])
def test_bad_split_files_are_refused_with_the_field(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        IdentitySplit.load(_write_split(tmp_path, {**SPLIT, **change}))


def test_split_files_with_and_without_validation(tmp_path):
    """Files written before 'validation' existed stay valid (no validation people, same records); with it, the
    validation people form their own part, carved out of training."""
    old = IdentitySplit.load(_write_split(tmp_path, SPLIT))
    assert old.validation == frozenset()
    assert [old.part_of(name) for name in ("alice", "bob", "web-carol")] == ["test", "train", "train"]
    assert "validation" not in old.record("train")
    new = IdentitySplit.load(_write_split(tmp_path, WITH_VALIDATION))
    assert new.validation == {"bob"} and new.held_out == {"alice"}
    assert [new.part_of(name) for name in ("alice", "bob", "web-carol")] == ["test", "validation", "train"]
    assert new.record("validation")["validation"] == ["bob"]


def test_the_three_parts_are_disjoint_and_train_leaves_validation_out(folder, tmp_path):
    split = IdentitySplit.load(_write_split(tmp_path, WITH_VALIDATION))
    parts = {part: {item.key: item.identity for item in discover_sources(folder, split, part)}
             for part in ("train", "validation", "test", "all")}
    assert parts["train"] == {"web/carol.png": "web-carol"}  # bob is a validation person: never trained on
    assert parts["validation"] == {"bob/b.png": "bob"}
    assert parts["test"] == {"alice/a.png": "alice", "web/alice_talk.png": "alice"}
    assert {**parts["train"], **parts["validation"], **parts["test"]} == parts["all"]
    people = [set(parts[part].values()) for part in ("train", "validation", "test")]
    assert sum(len(p) for p in people) == len(set().union(*people))
    args = build_parser().parse_args(["prepare", str(folder), "-o", "out", "--split", "s.json", "--part", "validation"])
    assert args.part == "validation"


def _dataset(root: Path, people: dict[str, str]) -> Path:
    """A prepared-looking dataset of 2 blank frames per clip: ``people`` maps clip keys to recorded identities."""
    for key, identity in people.items():
        write_video_folder(root / "videos" / key, [encode_frame(np.zeros((8, 8, 3), np.uint8))] * 2,
                           np.zeros((2, 68, 2), np.float32), {"key": key, "identity": identity, "image_size": 8})
    build_index(root, {"image_size": 8})
    return root


def test_evaluate_part_check_refuses_a_dataset_with_a_test_person(tmp_path):
    split = IdentitySplit.load(_write_split(tmp_path, WITH_VALIDATION))
    validation = load_index(_dataset(tmp_path / "validation", {"bob/b.png": "bob"}))
    mixed = load_index(_dataset(tmp_path / "mixed", {"bob/b.png": "bob", "web/alice_talk.png": "alice"}))
    check_dataset_part(validation, split, "validation")
    with pytest.raises(ValueError, match=r"not the validation part.*web/alice_talk.png shows 'alice', a test person"):
        check_dataset_part(mixed, split, "validation")
    with pytest.raises(ValueError, match="bob/b.png shows 'bob', a validation person"):
        check_dataset_part(mixed, split, "test")
    # named by the folder layout instead of the split: refused, not trusted
    layout = load_index(_dataset(tmp_path / "layout", {"bob/b.png": "bob", "web/carol.png": "web"}))
    with pytest.raises(ValueError, match="'web' in the dataset but 'web-carol' in the split"):
        check_dataset_part(layout, split, "validation")


def test_evaluate_cli_checks_the_part_and_records_it(tmp_path, monkeypatch, capsys):
    import talkinghead.evaluate

    split_path = _write_split(tmp_path, WITH_VALIDATION)
    mixed = _dataset(tmp_path / "mixed", {"bob/b.png": "bob", "web/alice_talk.png": "alice"})
    validation = _dataset(tmp_path / "validation", {"bob/b.png": "bob"})
    seen = []
    monkeypatch.setattr(talkinghead.evaluate, "evaluate", lambda checkpoint, data, out, settings: seen.append(settings))
    monkeypatch.setattr(talkinghead.evaluate, "format_summary", lambda summary: "")
    command = ["evaluate", "--checkpoint", "ckpt", "--out", str(tmp_path / "eval")]
    assert main([*command, "--data", str(mixed), "--identity-split", str(split_path), "--part", "validation"]) == 2
    assert "a test person" in capsys.readouterr().err and seen == []
    assert main([*command, "--data", str(validation), "--part", "validation"]) == 2
    assert "--identity-split" in capsys.readouterr().err and seen == []
    assert main([*command, "--data", str(validation), "--identity-split", str(split_path), "--part", "validation"]) == 0
    recorded = seen[0].record()["identity_split"]
    assert recorded == {"sha256": IdentitySplit.load(split_path).sha256, "part": "validation"}
    assert main([*command, "--data", str(validation)]) == 0
    assert "identity_split" not in seen[1].record()  # older evaluations' settings.json still match


def test_ambiguous_and_unmatched_clips_are_errors(folder, tmp_path):
    overlapping = {**SPLIT, "identities": {**SPLIT["identities"], "carol": ["web/alice*"]}}
    with pytest.raises(ValueError, match="web/alice_talk.png matches several identities"):
        discover_sources(folder, IdentitySplit.load(_write_split(tmp_path, overlapping)))
    strict = {**SPLIT, "unmatched": "error"}
    with pytest.raises(ValueError, match="no identity pattern matches web/carol.png"):
        discover_sources(folder, IdentitySplit.load(_write_split(tmp_path, strict)))
    assert per_file_identity("more/deep_avsr_lrs2/00001.mp4") == "more-deep_avsr_lrs2-00001"


def test_prepared_parts_share_no_person_and_remember_the_split(shared_data, tmp_path):
    """Real clips: the train, validation and test parts of one split are disjoint in people, the index records the
    split, re-running a folder with another part is refused (it would mix the parts), and evaluate's part check
    accepts each held-out dataset for its own part only."""
    import os

    root = tmp_path / "videos"
    for key in ("voxceleb2/id00017/OLguY5ofUrY/00041.mp4", "lp__d0_man_greenscreen.mp4", "more/lia_x/driving1.mp4"):
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(shared_data / "videos" / key, root / key)
    split_path = _write_split(tmp_path, {"format": "talkinghead-identity-split/1",
                                         "identities": {"vox": ["voxceleb2/id00017/*"], "liax": ["more/lia_x/*"]},
                                         "held_out": ["vox"], "validation": ["liax"]})
    split = IdentitySplit.load(split_path)
    datasets = {}
    for part in ("train", "validation", "test"):
        settings = PrepareSettings(image_size=64, max_frames=4, min_frames=2, identity_split_sha256=split.sha256,
                                   split_part=part)
        prepare_dataset(root, tmp_path / part, settings, split=split)
        datasets[part] = load_index(tmp_path / part)
    assert {v.identity for v in datasets["test"].videos} == {"vox"}
    assert {v.identity for v in datasets["validation"].videos} == {"liax"}
    assert {v.identity for v in datasets["train"].videos} == {"lp__d0_man_greenscreen"}
    check_dataset_part(datasets["validation"], split, "validation")
    check_dataset_part(datasets["test"], split, "test")
    with pytest.raises(ValueError, match="a test person"):
        check_dataset_part(datasets["test"], split, "validation")
    recorded = json.loads((tmp_path / "test" / "index.json").read_text())["identity_split"]
    assert recorded == {"sha256": split.sha256, "part": "test"}
    assert main(["prepare", str(root), "-o", str(tmp_path / "test"), "--size", "64", "--max-frames", "4",
                 "--split", str(split_path), "--part", "train"]) == 2
    assert main(["prepare", str(root), "-o", str(tmp_path / "other"), "--part", "test"]) == 2


def test_the_repository_split_of_the_shared_clips(shared_data):
    """The committed split of ../shared/data/videos: >= 10 held-out people from several source collections, no
    held-out or validation person's clip in the training part, and every held-out person really has clips."""
    split = IdentitySplit.load(SHARED_SPLIT)
    train = discover_sources(shared_data / "videos", split, "train")
    test = discover_sources(shared_data / "videos", split, "test")
    validation = {item.identity for item in discover_sources(shared_data / "videos", split, "validation")}
    test_people = {item.identity for item in test}
    assert test_people == set(split.held_out) and len(test_people) >= 10
    assert not test_people & {item.identity for item in train}
    assert validation == split.validation and not validation & ({item.identity for item in train} | test_people)
    collections = {item.key.split("/")[1] if item.key.startswith("more/") else item.key.split("/")[0]
                   for item in test}
    assert len(collections) >= 6


def test_the_repository_validation_people_have_usable_clips(shared_data):
    """About 10 validation people, each with a clip present of >= 100 frames at >= 25 fps, from several collections,
    and none seen by the shipped model (so they validate it honestly)."""
    import cv2

    from talkinghead.checkpoint import load_checkpoint
    from talkinghead.shipped import shipped_model_path

    split = IdentitySplit.load(SHARED_SPLIT)
    validation = discover_sources(shared_data / "videos", split, "validation")
    assert {item.identity for item in validation} == split.validation and 8 <= len(split.validation) <= 12
    usable = set()
    for item in validation:
        video = cv2.VideoCapture(item.path)
        if video.get(cv2.CAP_PROP_FPS) >= 25 and video.get(cv2.CAP_PROP_FRAME_COUNT) >= 100:
            usable.add(item.identity)
        video.release()
    assert usable == split.validation
    assert len({item.key.split("/")[1] for item in validation}) >= 8
    assert not split.validation & set(load_checkpoint(shipped_model_path()).metadata["dataset"]["identities"])
