"""Landmarks: detect and track 68 iBUG points, smooth them, draw the landmark image, and the one crop policy.

Imports numpy, cv2 and (lazily, in the dlib backend) dlib; never torch models.
"""

from talkinghead.landmarks.backends import (
    BackendUnavailable,
    FaceBox,
    LandmarkBackend,
    NoFaceError,
    choose_face,
    get_backend,
    landmarks_box,
)
from talkinghead.landmarks.crop import CropBox, CropTransform, crop_box, crop_boxes, crop_image
from talkinghead.landmarks.drawing import landmark_image, line_width_for
from talkinghead.landmarks.smoothing import OneEuroFilter, smooth_track
from talkinghead.landmarks.tracking import (
    DETECTED,
    MISSING,
    TRACKED,
    FaceTracker,
    LandmarkTrack,
    detect_landmarks,
    track_video,
)

__all__ = [
    "BackendUnavailable",
    "CropBox",
    "CropTransform",
    "DETECTED",
    "FaceBox",
    "FaceTracker",
    "LandmarkBackend",
    "LandmarkTrack",
    "MISSING",
    "NoFaceError",
    "OneEuroFilter",
    "TRACKED",
    "choose_face",
    "crop_box",
    "crop_boxes",
    "crop_image",
    "detect_landmarks",
    "get_backend",
    "landmark_image",
    "landmarks_box",
    "line_width_for",
    "smooth_track",
    "track_video",
]
