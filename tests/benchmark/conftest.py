"""Fixtures for the model card benchmark: a character project whose sources are real photos,
real photos standing in for generated images, and small cards that keep tiny-model runs quick."""

from __future__ import annotations

import pytest

from flenwheel.core.vision.body_pose import LANDMARKS

#: Render settings that keep a tiny-model image well under a second (the resolution check then fails).
TINY_RENDER = {"width": 64, "height": 64, "steps": 2}
#: Three cells instead of 23: front/neutral, front/smiling and the T-pose.
SMALL_CARD = """
portraits:
  angles: [front]
  expressions: [neutral, smiling]
poses:
  items:
    - {id: t-pose, pose: t-pose, view: front, prompt: "full body photo of [trigger] in T-pose, front view"}
"""


@pytest.fixture
def no_pose_env(monkeypatch):
    """Engine tests expect body pose left to people, even where a developer configured MediaPipe."""
    from flenwheel.core.vision.body_pose import ENV_PYTHON

    monkeypatch.delenv(ENV_PYTHON, raising=False)


@pytest.fixture
def tiny_render():
    return dict(TINY_RENDER)


@pytest.fixture(scope="session")
def photo(faces):
    """Load a shared photo by its path under the faces folder (e.g. ``obama/obama2.jpg``)."""
    from flenwheel.core.data.images import load_image

    cache = {}

    def load(name: str):
        if name not in cache:
            cache[name] = load_image(faces / name)
        return cache[name]

    return load


def _init_character(root, faces):
    from flenwheel.core.curate.curation import add_sources
    from flenwheel.core.data.project import Project

    project = Project.init(root, name="Barack Obama")
    report = add_sources(project, [faces / "obama" / "obama3.jpg", faces / "obama" / "obama4.jpg"])
    assert len(report.added) == 2
    return project


@pytest.fixture
def character(tmp_path, faces):
    """A fresh project whose sources are two Obama photos (obama.jpg and obama2.jpg stay unseen)."""
    return _init_character(tmp_path / "obama_project", faces)


@pytest.fixture(scope="module")
def shared_character(tmp_path_factory, faces):
    """The same, shared by a module's tests (its identity cache is then encoded once)."""
    return _init_character(tmp_path_factory.mktemp("shared") / "obama_project", faces)


@pytest.fixture(scope="session")
def flux_pipe(tiny_flux):
    """The tiny FLUX pipeline in fp32 on the CPU, loaded once for the session."""
    from flenwheel.core.models.flux_single_file import load_flux
    from flenwheel.core.models.pipelines import LoadOptions

    return load_flux(str(tiny_flux), options=LoadOptions(dtype="fp32", device="cpu"))


@pytest.fixture
def lora_character(character, tiny_flux):
    """The character project with random tiny character LoRAs v1 and v2 where the trainer puts them."""
    from flenwheel.core.testing.tiny_lora import make_tiny_lora

    for version, seed in (("v1", 1), ("v2", 2)):
        folder = character.flux_lora_dir(version)
        folder.mkdir(parents=True)
        make_tiny_lora(tiny_flux, folder / f"char_lora_{version}.safetensors", seed=seed)
    return character


@pytest.fixture
def small_card_file(tmp_path):
    path = tmp_path / "small_card.yaml"
    path.write_text(SMALL_CARD, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def photo_renderer():
    from flenwheel.core.benchmark.photo_renderer import PhotoRenderer

    return PhotoRenderer


def _skeleton(**points):
    """33 landmarks, all visible; ``points`` place the named ones (x, y as fractions, optional visibility)."""
    landmarks = [[0.5, 0.5, 0.0, 1.0] for _ in range(33)]
    for name, value in points.items():
        x, y, *visibility = value
        landmarks[LANDMARKS[name]] = [x, y, 0.0, visibility[0] if visibility else 1.0]
    return landmarks


LEGS_STANDING = dict(left_hip=(0.45, 0.55), right_hip=(0.55, 0.55), left_knee=(0.45, 0.75), right_knee=(0.55, 0.75),
                     left_ankle=(0.45, 0.95), right_ankle=(0.55, 0.95))
FRONT_SHOULDERS = dict(left_shoulder=(0.4, 0.3), right_shoulder=(0.6, 0.3))
STANDING = _skeleton(**FRONT_SHOULDERS, **LEGS_STANDING, left_elbow=(0.38, 0.42), right_elbow=(0.62, 0.42),
                    left_wrist=(0.37, 0.54), right_wrist=(0.63, 0.54))
T_POSE = _skeleton(**FRONT_SHOULDERS, **LEGS_STANDING, left_elbow=(0.3, 0.3), right_elbow=(0.7, 0.3),
                  left_wrist=(0.2, 0.31), right_wrist=(0.8, 0.29))
SITTING_SIDE = _skeleton(left_shoulder=(0.5, 0.3), right_shoulder=(0.52, 0.3), left_hip=(0.5, 0.55),
                        right_hip=(0.52, 0.55), left_knee=(0.7, 0.56), right_knee=(0.72, 0.56),
                        left_ankle=(0.7, 0.8), right_ankle=(0.72, 0.8), left_elbow=(0.55, 0.45),
                        right_elbow=(0.57, 0.45), left_wrist=(0.65, 0.55), right_wrist=(0.67, 0.55))
ARMS_CROSSED = _skeleton(**FRONT_SHOULDERS, **LEGS_STANDING, left_elbow=(0.42, 0.45), right_elbow=(0.58, 0.45),
                        left_wrist=(0.56, 0.42), right_wrist=(0.44, 0.42))


@pytest.fixture(scope="session")
def skeletons():
    """MediaPipe-style landmark sets (x/y fractions, all visible) for known poses."""
    return {"standing": STANDING, "t-pose": T_POSE, "sitting": SITTING_SIDE, "arms-crossed": ARMS_CROSSED}
