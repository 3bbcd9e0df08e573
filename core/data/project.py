"""The character project: one folder holding a character's data, models, reviews and reports.

``flenwheel.json`` names the character and its instance token, and records the current version
of each artefact. Everything else is found by the layout in DESIGN.md section 3, which keeps the
seed's paths so people who know the process recognise them.

Versions, labels, item keys, stage, LoRA and family names come from widgets, files and requests,
so they are untrusted. ``check_name`` is the one pattern a name must match before it becomes part
of a path, and ``inside`` the one join of user text into a path: it refuses a part that is not a
name and a result that leads (through ``..`` or a symlink) outside the folder it starts from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .atomic import atomic_write_json
from .errors import ProjectError
from .records import STAGES, utc_now

if TYPE_CHECKING:
    from .dataset import DatasetVersion

PROJECT_FILE = "flenwheel.json"
SCHEMA_VERSION = 1
DEFAULT_TOKEN = "ohwx_char"
DEFAULT_CLASS_WORD = "person"

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_VERSION_RE = re.compile(r"^v([1-9][0-9]{0,5})$")
#: A name that may become one path part: no separators, no leading dot (so never ``.`` or ``..``), no spaces.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-]{0,127}$")

#: Folders created by ``init``: the seed's layout (version folders appear as data arrives).
LAYOUT = (
    *(f"data/{stage}" for stage in STAGES),
    "models/flux_lora",
    "models/qwen_lora",
    "benchmarks",
    "cache",
)


class ProjectConfig(BaseModel):
    """Contents of ``flenwheel.json``."""

    model_config = ConfigDict(extra="allow")

    schema_version: int = SCHEMA_VERSION
    name: str
    instance_token: str = DEFAULT_TOKEN
    class_word: str = DEFAULT_CLASS_WORD
    created: str = Field(default_factory=utc_now)
    current: dict[str, str] = Field(default_factory=dict)

    @field_validator("instance_token")
    @classmethod
    def _token_is_one_word(cls, value: str) -> str:
        if not _TOKEN_RE.match(value):
            raise ValueError("the instance token must be one word of letters, digits, '_' or '-' (e.g. ohwx_char)")
        return value

    @field_validator("name", "class_word")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


def check_name(value: object, what: str = "name") -> str:
    """``value`` when it is a name (``NAME_RE``), else an error saying what a name may hold."""
    if not isinstance(value, str) or not NAME_RE.match(value):
        shown = value if isinstance(value, str) and len(value) <= 80 else f"{str(value)[:80]}..."
        raise ProjectError(f"{what} '{shown}' is not a name: use letters, digits, '_', '-', '.' or '+' "
                           "(no '/', no leading '.', at most 128 characters)")
    return value


def inside(root: str | Path, *parts: str, what: str = "name", within: str | Path | None = None) -> Path:
    """``root/part/...`` after checking every part is a name and the result stays in ``within`` (default ``root``).

    The one way user text is joined into a path: a name cannot hold a separator or be ``..``, and a
    symlink planted inside the project cannot lead a read or write elsewhere (symlinks are followed
    for the check; ``within`` is the project folder).
    """
    base = Path(root)
    path = base.joinpath(*(check_name(part, what) for part in parts))
    fence = Path(within if within is not None else root).resolve()
    if not path.resolve().is_relative_to(fence):
        raise ProjectError(f"{path} leads outside the project ({fence}) through a symlink; remove the link")
    return path


def parse_version(name: str) -> int:
    """``"v3"`` -> 3; anything else is a clear error (version folders are always ``vN``)."""
    match = _VERSION_RE.match(name) if isinstance(name, str) else None
    if not match:
        raise ProjectError(f"'{name}' is not a dataset version; versions are named v1, v2, ...")
    return int(match.group(1))


@dataclass
class Project:
    """An opened character project. Create one with ``Project.init`` or ``Project.open``."""

    root: Path
    config: ProjectConfig

    @classmethod
    def init(
        cls,
        root: str | Path,
        name: str,
        instance_token: str = DEFAULT_TOKEN,
        class_word: str = DEFAULT_CLASS_WORD,
    ) -> Project:
        """Create the folder layout and ``flenwheel.json``; refuses to touch an existing project."""
        folder = Path(root).expanduser().resolve()
        if (folder / PROJECT_FILE).exists():
            raise ProjectError(f"{folder} is already a FLENwheel project ({PROJECT_FILE} exists); open it instead")
        if folder.exists() and not folder.is_dir():
            raise ProjectError(f"{folder} exists and is not a folder")
        try:
            config = ProjectConfig(name=name, instance_token=instance_token, class_word=class_word)
        except ValidationError as exc:
            raise ProjectError(_validation_message(exc)) from None
        for sub in LAYOUT:
            (folder / sub).mkdir(parents=True, exist_ok=True)
        project = cls(folder, config)
        project.save()
        return project

    @classmethod
    def open(cls, root: str | Path) -> Project:
        """Open an existing project, with a message that says what to do when it is not one."""
        folder = Path(root).expanduser().resolve()
        if not folder.exists():
            raise ProjectError(
                f"project folder {folder} does not exist; create it with: flenwheel init {root} --name NAME"
            )
        config_file = folder / PROJECT_FILE
        if not config_file.is_file():
            raise ProjectError(
                f"{folder} is not a FLENwheel project (no {PROJECT_FILE}); create one with: "
                f"flenwheel init {root} --name NAME"
            )
        try:
            raw = json.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ProjectError(f"{config_file} is not valid JSON ({exc}); restore it from a backup") from None
        if not isinstance(raw, dict):
            raise ProjectError(f"{config_file} must hold a JSON object")
        schema = raw.get("schema_version", SCHEMA_VERSION)
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise ProjectError(
                f"{config_file} has schema_version {schema}, newer than this FLENwheel understands "
                f"({SCHEMA_VERSION}); upgrade FLENwheel (pip install -U flenwheel) to open it"
            )
        try:
            config = ProjectConfig.model_validate(raw)
        except ValidationError as exc:
            raise ProjectError(f"{config_file}: {_validation_message(exc)}") from None
        return cls(folder, config)

    def save(self) -> None:
        atomic_write_json(self.root / PROJECT_FILE, self.config.model_dump(mode="json"))

    # Names and captions -------------------------------------------------------------------
    @property
    def token(self) -> str:
        return self.config.instance_token

    @property
    def subject(self) -> str:
        """The phrase captions and prompts use for the character, e.g. ``ohwx_char person``."""
        return f"{self.config.instance_token} {self.config.class_word}"

    # Paths ------------------------------------------------------------------------------
    def stage_dir(self, stage: str) -> Path:
        if stage not in STAGES:
            raise ProjectError(f"unknown dataset stage '{stage}'; expected one of {', '.join(STAGES)}")
        return inside(self.root, "data", stage)

    @property
    def review_db(self) -> Path:
        return self.root / "review.sqlite"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def benchmarks_dir(self) -> Path:
        return self.root / "benchmarks"

    def benchmark_dir(self, label: str) -> Path:
        """``benchmarks/<label>/``: the label is a name, checked here (it comes from widgets and options)."""
        return inside(self.root, "benchmarks", label, what="benchmark label")

    def dataset_dir(self, stage: str, version: str) -> Path:
        """``data/<stage>/<version>/`` once both are checked: the only way a version becomes a folder."""
        parse_version(version)
        return inside(self.stage_dir(stage), version, what="dataset version", within=self.root)

    def flux_lora_dir(self, version: str) -> Path:
        parse_version(version)
        return inside(self.root, "models", "flux_lora", f"char_{version}")

    def qwen_lora_dir(self, version: str) -> Path:
        parse_version(version)
        return inside(self.root, "models", "qwen_lora", version)

    # Versions ---------------------------------------------------------------------------
    def versions(self, stage: str) -> list[str]:
        """Existing version folders of a stage, oldest first (``v2`` before ``v10``)."""
        folder = self.stage_dir(stage)
        if not folder.is_dir():
            return []
        names = [p.name for p in folder.iterdir() if p.is_dir() and _VERSION_RE.match(p.name)]
        return sorted(names, key=parse_version)

    def latest_version(self, stage: str) -> str | None:
        found = self.versions(stage)
        return found[-1] if found else None

    def next_version(self, stage: str) -> str:
        latest = self.latest_version(stage)
        return f"v{parse_version(latest) + 1}" if latest else "v1"

    def dataset(self, stage: str, version: str | None = None) -> DatasetVersion:
        """An existing dataset version (the latest when ``version`` is None)."""
        from .dataset import DatasetVersion

        chosen = version or self.latest_version(stage)
        if chosen is None:
            raise ProjectError(f"the project has no {stage} dataset yet ({self.stage_dir(stage)} is empty)")
        parse_version(chosen)
        dataset = DatasetVersion(self, stage, chosen)
        if not dataset.exists():
            have = ", ".join(self.versions(stage)) or "none"
            raise ProjectError(f"{stage} dataset {chosen} does not exist (have: {have})")
        return dataset

    def create_dataset(self, stage: str, version: str | None = None, info: dict | None = None) -> DatasetVersion:
        """Create a new, empty version folder (``next_version`` by default)."""
        from .dataset import DatasetVersion

        chosen = version or self.next_version(stage)
        parse_version(chosen)
        return DatasetVersion.create(self, stage, chosen, info=info or {})

    def set_current(self, key: str, value: str) -> None:
        """Record the current version of an artefact (e.g. ``flux_lora`` -> ``char_v2``)."""
        self.config.current[key] = value
        self.save()


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
