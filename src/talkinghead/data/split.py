"""Identity splits: who is who in a folder of clips, and which people are kept for validation and for the test.

A folder's layout does not always say who is in a clip (``more/deep_avsr_lrs2/00001.mp4``), and the same person
can appear under several folders (a celebrity clip in two collections). Training, validation and evaluation must
never share a person, so the assignment is written down once, in a JSON file that `talkinghead prepare --split
FILE --part train|validation|test` reads::

    {
      "format": "talkinghead-identity-split/1",
      "description": "why these people, how identities were decided",
      "identities": {"vox-id00017": ["voxceleb2/id00017/*"], "trump": ["fom__trump.mp4", "*/trump_clip1.mp4"],
                     "vox-id07414": ["more/pcavs_vox2/Audio_Source__00104.mp4", "more/pcavs_vox2/Pose_*163.mp4"]},
      "excluded": {"more/eamm_mead/*": "identity unknown: may be a MEAD speaker of either part"},
      "held_out": ["vox-id00017"],
      "validation": ["vox-id07414"],
      "unmatched": "per-file"
    }

Patterns are `fnmatch` globs over a clip's key (its posix path relative to the input folder; ``*`` also matches
``/``). A key matching patterns of two identities is an error; so is one matching an identity and an exclusion.
``unmatched``: ``"per-file"`` makes every other clip its own identity (named after its key), ``"error"`` refuses
them. Excluded clips are in no part.

Parts: held-out people form the ``test`` part, ``validation`` people (optional; files written before it existed
have none, and stay valid under the same format name) the ``validation`` part, everyone else the ``train`` part.
The rule the parts serve: every choice (config, checkpoint step, fine-tuning rates, early stopping, thresholds) is
made on the validation people; the test people are read once per shipped model, to report it. Validation people
are carved out of the training part, so ``--part train`` leaves them out; a name may not be in both lists.
`check_dataset_part` lets ``talkinghead evaluate --part`` check a prepared dataset against a part.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from talkinghead.data.index import DatasetIndex

FORMAT = "talkinghead-identity-split/1"
PARTS = ("train", "validation", "test", "all")
EVALUATED_PARTS = ("validation", "test")
"""The parts `talkinghead evaluate --part` may check a dataset against (training people are not evaluated)."""


@dataclass(frozen=True)
class IdentitySplit:
    """A parsed split file (see the module docstring)."""

    identities: dict[str, tuple[str, ...]]
    held_out: frozenset[str]
    excluded: dict[str, str] = field(default_factory=dict)
    unmatched: str = "per-file"
    sha256: str = ""
    path: str = "<memory>"
    validation: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> IdentitySplit:
        """Read and validate a split file; errors name the file and the field."""
        path = Path(path)
        try:
            raw = path.read_bytes()
            data = json.loads(raw)
        except FileNotFoundError:
            raise FileNotFoundError(f"identity split {path} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"identity split {path} is not valid JSON: {error}") from None
        return cls.from_dict(data, sha256=hashlib.sha256(raw).hexdigest(), path=str(path))

    @classmethod
    def from_dict(cls, data: dict, sha256: str = "", path: str = "<memory>") -> IdentitySplit:
        def fail(message: str) -> ValueError:
            return ValueError(f"identity split {path}: {message}")

        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise fail(f"field 'format' must be {FORMAT!r}")
        identities = data.get("identities")
        if not isinstance(identities, dict) or not identities:
            raise fail("field 'identities' must map identity names to lists of glob patterns")
        for name, patterns in identities.items():
            if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
                raise fail(f"identities[{name!r}] must be a non-empty list of glob patterns")
        held_out = data.get("held_out", [])
        if not isinstance(held_out, list):
            raise fail("field 'held_out' must be a list of identity names")
        unknown = sorted(set(held_out) - set(identities))
        if unknown:
            raise fail(f"held_out names identities that 'identities' does not define: {unknown}")
        validation = data.get("validation", [])
        if not isinstance(validation, list) or not all(isinstance(name, str) for name in validation):
            raise fail("field 'validation' must be a list of identity names")
        unknown = sorted(set(validation) - set(identities))
        if unknown:
            raise fail(f"validation names identities that 'identities' does not define: {unknown}")
        both = sorted(set(validation) & set(held_out))
        if both:
            raise fail(f"{both} are in both 'held_out' and 'validation'; a person belongs to one part")
        excluded = data.get("excluded", {})
        if not isinstance(excluded, dict):
            raise fail("field 'excluded' must map glob patterns to the reason they are left out")
        unmatched = data.get("unmatched", "per-file")
        if unmatched not in ("per-file", "error"):
            raise fail(f"field 'unmatched' must be 'per-file' or 'error', got {unmatched!r}")
        return cls(identities={k: tuple(v) for k, v in identities.items()}, held_out=frozenset(held_out),
                   excluded=dict(excluded), unmatched=unmatched, sha256=sha256, path=path,
                   validation=frozenset(validation))

    def identity_of(self, key: str) -> str | None:
        """The identity of the clip ``key``, or None when the clip is excluded."""
        named = sorted({name for name, patterns in self.identities.items()
                        if any(fnmatch.fnmatchcase(key, p) for p in patterns)})
        exclusions = [p for p in self.excluded if fnmatch.fnmatchcase(key, p)]
        if len(named) > 1:
            raise ValueError(f"identity split {self.path}: {key} matches several identities {named}; make the "
                             "patterns disjoint")
        if named and exclusions:
            raise ValueError(f"identity split {self.path}: {key} matches identity {named[0]!r} and exclusion "
                             f"{exclusions[0]!r}")
        if exclusions:
            return None
        if named:
            return named[0]
        if self.unmatched == "error":
            raise ValueError(f"identity split {self.path}: no identity pattern matches {key}; add it to "
                             "'identities' or 'excluded'")
        return per_file_identity(key)

    def part_of(self, identity: str) -> str:
        """``test`` for held-out people, ``validation`` for validation people, else ``train``."""
        if identity in self.held_out:
            return "test"
        return "validation" if identity in self.validation else "train"

    def record(self, part: str) -> dict:
        """What a dataset or an evaluation remembers of the split it was built with (``validation`` only when the
        file has validation people, so records of older files stay as they were)."""
        record = {"path": self.path, "sha256": self.sha256, "part": part, "held_out": sorted(self.held_out)}
        if self.validation:
            record["validation"] = sorted(self.validation)
        return record


def per_file_identity(key: str) -> str:
    """``more/lrs2/00001.mp4`` -> ``more-lrs2-00001``: one clip, one person, named after its key."""
    stem = key.rsplit(".", 1)[0] if "." in key.rsplit("/", 1)[-1] else key
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-")


def check_part(part: str) -> str:
    if part not in PARTS:
        raise ValueError(f"--part must be one of {list(PARTS)}, got {part!r}")
    return part


def check_dataset_part(index: DatasetIndex, split: IdentitySplit, part: str) -> None:
    """Refuse (ValueError) a prepared dataset unless every one of its clips is a person of ``part`` of ``split``.

    This is what keeps choices off the test people: `talkinghead evaluate --part validation` must not read a held-out
    person, and a test report must hold only test people. Each clip is judged by its key through the split's
    patterns, and the identity the dataset recorded must be the one the split gives that key: a dataset prepared
    without this split (identities from the folder layout) or from another input folder (keys that match no
    pattern, hence per-file training people) is refused rather than trusted.
    """
    if part not in EVALUATED_PARTS:
        raise ValueError(f"--part must be one of {list(EVALUATED_PARTS)} to check a dataset, got {part!r}")
    problems = []
    for video in index.videos:
        try:
            named = split.identity_of(video.key)
        except ValueError as error:
            problems.append(str(error))
            continue
        if named is None:
            problems.append(f"{video.key} is excluded by the split")
        elif named != video.identity:
            problems.append(f"{video.key} is {video.identity!r} in the dataset but {named!r} in the split")
        elif split.part_of(named) != part:
            problems.append(f"{video.key} shows {named!r}, a {split.part_of(named)} person")
    if not index.videos:
        problems.append("the dataset has no videos")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValueError(f"{index.root} is not the {part} part of {split.path} ({len(problems)} of "
                         f"{len(index.videos)} videos do not belong): {shown}. Prepare it with `talkinghead prepare "
                         f"--split {split.path} --part {part}` from the folder the split's patterns are written for")
