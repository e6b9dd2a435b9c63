"""Optional landmark backends: face-alignment (the paper's detector) and MediaPipe.

Neither is needed offline; each is imported on construction and raises `BackendUnavailable` naming the
pip extra when its package is missing. face-alignment downloads its network weights on first use (online
only). MediaPipe's 468-point mesh is reduced to the 68 iBUG points with the correspondence table below.
Both are thin adapters to the `LandmarkBackend` protocol and are not exercised by the offline test suite.
"""

from __future__ import annotations

import numpy as np

from talkinghead.landmarks.backends import BackendUnavailable, FaceBox, check_image

# iBUG 68 point -> MediaPipe face-mesh vertex (mesh topology facts; left/right as in iBUG order).
MEDIAPIPE_TO_IBUG68 = np.array([
    # jaw 0-16, from the image-left ear over the chin (152) to the image-right ear; mirror pairs
    127, 234, 93, 132, 58, 172, 136, 150, 152, 379, 365, 397, 288, 361, 323, 454, 356,
    70, 63, 105, 66, 107,  # right brow 17-21
    336, 296, 334, 293, 300,  # left brow 22-26
    168, 197, 5, 4,  # nose bridge 27-30
    75, 97, 2, 326, 305,  # lower nose 31-35
    33, 160, 158, 133, 153, 144,  # right eye 36-41
    362, 385, 387, 263, 373, 380,  # left eye 42-47
    61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91,  # outer lips 48-59
    78, 81, 13, 311, 308, 402, 14, 178,  # inner lips 60-67
])


def _missing(package: str, extra: str) -> BackendUnavailable:
    return BackendUnavailable(f"the {extra} landmark backend needs the `{package}` package: "
                              f"pip install 'talkinghead[{extra}]' (or use the offline default backend 'dlib')")


class FaceAlignmentBackend:
    """Bulat & Tzimiropoulos' FAN (package ``face-alignment``), the detector the paper used."""

    name = "face-alignment"

    def __init__(self, device: str = "cpu", face_detector: str = "sfd") -> None:
        try:
            import face_alignment
        except ImportError as error:
            raise _missing("face-alignment", "face-alignment") from error
        landmarks_type = getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
        self._model = face_alignment.FaceAlignment(landmarks_type, device=device, face_detector=face_detector)

    def detect_faces(self, image: np.ndarray) -> list[FaceBox]:
        image = check_image(image)
        detections = self._model.face_detector.detect_from_image(np.ascontiguousarray(image[..., ::-1]))
        return [FaceBox(float(d[0]), float(d[1]), float(d[2]), float(d[3]), float(d[4]) if len(d) > 4 else 0.0)
                for d in detections or []]

    def landmarks(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        image = check_image(image)
        result = self._model.get_landmarks_from_image(image, detected_faces=[
            np.array([box.left, box.top, box.right, box.bottom, 1.0])])
        if not result:
            raise RuntimeError(f"face-alignment returned no landmarks for the box {box}")
        return np.asarray(result[0][:, :2], dtype=np.float32)


class MediaPipeBackend:
    """MediaPipe face detection + face mesh (``mediapipe==0.10.21`` ships its models)."""

    name = "mediapipe"

    def __init__(self, min_confidence: float = 0.5) -> None:
        try:
            import mediapipe
        except ImportError as error:
            raise _missing("mediapipe", "mediapipe") from error
        solutions = mediapipe.solutions
        self._detector = solutions.face_detection.FaceDetection(model_selection=1,
                                                                min_detection_confidence=min_confidence)
        self._mesh = solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                                  min_detection_confidence=min_confidence)

    def detect_faces(self, image: np.ndarray) -> list[FaceBox]:
        image = check_image(image)
        height, width = image.shape[:2]
        result = self._detector.process(image)
        boxes = []
        for detection in result.detections or []:
            rel = detection.location_data.relative_bounding_box
            boxes.append(FaceBox(rel.xmin * width, rel.ymin * height, (rel.xmin + rel.width) * width,
                                 (rel.ymin + rel.height) * height, float(detection.score[0])))
        return boxes

    def landmarks(self, image: np.ndarray, box: FaceBox) -> np.ndarray:
        image = check_image(image)
        height, width = image.shape[:2]
        # The mesh model wants a face with context: run it on the box grown 1.6x, clipped to the image.
        cx, cy = box.center
        half = 0.8 * max(box.width, box.height)
        x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
        x1, y1 = min(int(cx + half), width), min(int(cy + half), height)
        window = np.ascontiguousarray(image[y0:y1, x0:x1])
        result = self._mesh.process(window)
        if not result.multi_face_landmarks:
            raise RuntimeError(f"mediapipe found no face mesh in the box {box}")
        mesh = result.multi_face_landmarks[0].landmark
        points = np.array([(mesh[i].x * (x1 - x0) + x0, mesh[i].y * (y1 - y0) + y0) for i in MEDIAPIPE_TO_IBUG68])
        return points.astype(np.float32)
