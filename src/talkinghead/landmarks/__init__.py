"""Landmarks: detect and track 68 iBUG points, smooth them, retarget them, draw the landmark image, and the one
crop policy. `geometry.inter_ocular_distance` (outer eye corners) is the one face-size unit; `detector` holds the
functions personalization and animation call (`default_landmarks`, `driver_tracker`, `find_face`).

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
from talkinghead.landmarks.crop import CropBox, CropTransform, crop_box, crop_boxes, crop_face, crop_image
from talkinghead.landmarks.detector import (
    DetectorLandmarks,
    FrameLandmarks,
    LandmarkFn,
    NoFaceFound,
    default_landmarks,
    driver_tracker,
    find_face,
)
from talkinghead.landmarks.drawing import draw_landmarks, landmark_image, line_width_for
from talkinghead.landmarks.geometry import inter_ocular_distance
from talkinghead.landmarks.smoothing import LandmarkSmoother, OneEuroFilter, smooth_track
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
    "DetectorLandmarks",
    "FaceBox",
    "FaceTracker",
    "FrameLandmarks",
    "LandmarkFn",
    "LandmarkBackend",
    "LandmarkSmoother",
    "LandmarkTrack",
    "MISSING",
    "NoFaceError",
    "NoFaceFound",
    "OneEuroFilter",
    "TRACKED",
    "choose_face",
    "crop_box",
    "crop_boxes",
    "crop_face",
    "crop_image",
    "default_landmarks",
    "detect_landmarks",
    "draw_landmarks",
    "driver_tracker",
    "find_face",
    "get_backend",
    "inter_ocular_distance",
    "landmark_image",
    "landmarks_box",
    "line_width_for",
    "smooth_track",
    "track_video",
]
