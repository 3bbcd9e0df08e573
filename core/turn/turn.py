"""One whole turn of both flywheels, headless.

The character flywheel: curate (first turn), enrich with the current editor, review, train
char_vN, generate, filter, review (pristine picks), model card of char_vN. Then the editor
flywheel (``editor_turn``): corrections -> re-runs -> triplets -> editor LoRA -> editor comparison,
whose winner enriches the next turn. ``loop.run_flywheel`` repeats turns until the stop rule holds.

Every stage is the same engine the nodes and the stage commands use, and every stage resumes, so
running the same turn again after a crash, an interrupt or a review break continues where it
stopped instead of starting over. Models are loaded one at a time and released before a trainer
starts, because the trainer is a separate process that needs the GPU memory.

Reviews wait for a person in the review page (served while waiting), or take the person's
decisions from a file. ``auto_review`` exists for demos and tests only: its decisions are stored
under a reviewer name that says so, and every summary that counts them says so too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..curate.curation import add_sources, check_sources
from ..data.criteria import criteria_lines
from ..data.errors import FlenwheelError
from ..data.handles import DatasetHandle
from ..data.project import Project
from ..data.records import utc_now
from ..models.device_memory import free_memory
from ..models.registry import family
from ..review.gate import GateScope, finish, scope_for, wait_for_review
from ..review.scripted import apply_decisions, auto_review, read_decisions
from .config import TurnConfig
from .state import FlywheelState

Log = Callable[[str], None]
REPORT_FILE = "turn_report.json"


@dataclass
class TurnReport:
    """What the turn did, stage by stage, and where its reports are."""

    project: Path
    auto_review: bool
    started: str = field(default_factory=utc_now)
    stages: dict[str, list[str]] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"project": str(self.project), "auto_review": self.auto_review, "started": self.started,
                "seconds": round(self.seconds, 1), "stages": self.stages, "reports": self.reports}


class Turn:
    """Runs the stages of one turn on one project with one config."""

    def __init__(self, project: Project, config: TurnConfig, auto: bool, log: Log) -> None:
        self.project = project
        self.config = config
        self.auto = auto
        self.log = log
        self.report = TurnReport(project.root, auto)
        self._flux: Any = None
        self.state = FlywheelState.load(project, auto)
        self.entry: dict[str, Any] = {"turn": 1, "versions": {}, "editor": {"used": list(config.models.edit_loras)}}
        self.summaries: dict[str, Any] = {}
        self.decisions: dict[str, Any] = {}
        if config.review.mode == "file" and not auto:
            if not config.review.decisions:
                raise FlenwheelError("review.mode is 'file' but review.decisions names no file")
            self.decisions = read_decisions(config.review.decisions)

    def link(self, name: str, path: str | Path) -> None:
        """A report, chart or loss curve of this turn: in the turn report, and in flywheel.json's entry
        (``reports``, relative to the project) so flywheel.html links every one, resumed runs included."""
        self.report.reports[name] = str(path)
        absolute = Path(path).resolve()
        relative = absolute.relative_to(self.project.root) if absolute.is_relative_to(self.project.root) else absolute
        self.entry.setdefault("reports", {})[name] = relative.as_posix()

    def record(self, stage: str, lines: list[str]) -> None:
        self.report.stages[stage] = lines
        for line in lines:
            self.log(f"  {line}")

    # 1.1 ----------------------------------------------------------------------------------
    def curate(self) -> None:
        from ..curate.face_checks import source_checks

        self.log("1.1 sources")
        checks, notice = source_checks(self.project)
        if notice:
            self.log(f"  {notice}")
        if not self.project.versions("source"):
            if not self.config.sources.add:
                raise FlenwheelError("the project has no sources; list photos under sources.add in the turn "
                                     "config, or run: flenwheel source add PROJECT PHOTOS...")
            for entry in self.config.sources.add:
                add_sources(self.project, [entry.path], caption=entry.caption, angle=entry.angle,
                            expression=entry.expression, mirror=entry.mirror, checks=checks)
        report = check_sources(self.project, checks=checks)
        self.record("sources", criteria_lines(report.criteria))
        if not report.passed and self.config.sources.require_check:
            raise FlenwheelError("the sources fail step 1.1's criteria (see above); fix them, or set "
                                 "sources.require_check: false to go on anyway")

    # 1.2 ----------------------------------------------------------------------------------
    def enrich_settings(self) -> Any:
        """This turn's enrichment settings: the run seed moves on by one per turn, so each turn's
        enrichment brings new edits instead of repeating the last turn's."""
        from ..enrich.plan import EnrichSettings

        cfg = self.config.enrich
        seed = cfg.seed + self.entry["turn"] - 1
        return EnrichSettings(per_source=cfg.per_source, families=tuple(cfg.families), seed=seed,
                              steps=cfg.steps, true_cfg=cfg.true_cfg, width=cfg.width, height=cfg.height,
                              pixels=cfg.pixels, vae_pixels=cfg.vae_pixels,
                              condition_pixels=cfg.condition_pixels, max_retries=cfg.retries, aim=cfg.aim)

    def qwen_edit(self, editor: list[str]) -> Any:
        """The Qwen-Edit pipeline with the LoRAs of ``editor`` (``ours:vN``, PATH[:STRENGTH])."""
        from ..models.editor_lora import resolve_lora
        from ..models.qwen_edit_loader import load_qwen_edit

        models = self.config.models
        loras = [resolve_lora(text, self.project) for text in editor]
        return load_qwen_edit(models.qwen_edit, models.qwen_transformer_file, models.load_options(), loras)

    def enrich(self, version: str | None = None) -> DatasetHandle:
        """Enrich with this turn's editor into ``version`` (made, or resumed when it exists)."""
        from ..enrich.enrich import enrich
        from ..identity.gate import resolve_gate
        from ..models.qwen_edit_loader import release_qwen_edit

        editor = self.entry["editor"]["used"]
        self.log(f"1.2 enrichment with the {'+'.join(editor) or 'base'} editor")
        cfg = self.config.enrich
        handle = self.qwen_edit(editor)
        try:
            scorer = resolve_gate(self.project, cfg.gate, cfg.tolerance, log=self.log)
            result = enrich(self.project, handle, self.enrich_settings(), scorer=scorer, version=version,
                            log=lambda text: None)
        finally:
            del handle
            release_qwen_edit()
            free_memory()
        self.entry["enrich_aim"] = result.dataset.load().info.get("aim")
        self.record("enrich", [f"{len(result.added)} new edits, {result.resumed} resumed -> {result.dataset.label}",
                               *result.summary.lines()])
        return DatasetHandle(result.dataset)

    # 1.3 / 1.7 ----------------------------------------------------------------------------
    def review(self, stage: str, scope: GateScope) -> DatasetHandle:
        """Get every image of ``scope`` decided (page, file or auto), place them, hand on the accepted."""
        if self.auto:
            auto_review(scope)
        elif self.config.review.mode == "file":
            found = apply_decisions(scope, self.decisions)
            if found.unknown:
                self.log(f"  decisions file: no image named {', '.join(found.unknown[:5])}")
        pending = scope.pending()
        if pending and self.config.review.mode == "wait" and not self.auto:
            from ..review.server import serving
            from .flywheel_routes import review_extensions

            review = self.config.review
            with serving(self.project, review.host, review.port, review_extensions()) as url:
                self.log(f"  {len(pending)} images wait for review: open {url}?stage={scope.stage.name}"
                         f"&version={scope.version}")
                wait_for_review(scope, review.timeout_minutes * 60, "fail")
        elif pending:
            raise FlenwheelError(f"{len(pending)} images of {scope.dataset.label} have no decision in the "
                                 "decisions file; add them, or use review.mode: wait")
        result = finish(scope)
        self.summaries[stage] = result.summary
        self.record(f"review {stage}", result.summary.lines())
        return result.handles["accept"]

    # 1.4 / 1.8 ----------------------------------------------------------------------------
    def prepare(self, version: str) -> Path:
        """The config of FLUX LoRA ``version``, written now unless an earlier run prepared it.

        v1 trains on the sources and the good enriched images; later versions are built by
        ``iterate``, which adds the pristine picks.
        """
        from ..training.planning import CONFIG_FILE, init_images_run, iterate

        base = family(self.config.models.character_base)
        self.log(f"{'1.4' if version == 'v1' else '1.8'} {base.title} character LoRA char_{version}")
        config_path = base.lora.version_folder(self.project.root, version) / CONFIG_FILE
        if not config_path.is_file():
            overrides = {"model": self.config.models.flux, **self.config.train.overrides}
            plan = (init_images_run(self.project, base.name, version, overrides) if version == "v1"
                    else iterate(self.project, overrides, base.name))
            self.log(f"  training set: {plan.describe()}")
            config_path = plan.config_path
        return config_path

    def train(self, version: str) -> str:
        """Train (or resume, or reuse the finished) FLUX LoRA ``version``; returns the LoRA file."""
        from ..training.train_version import train_version

        base = family(self.config.models.character_base)
        config_path = self.prepare(version)
        outcome = train_version(base.name, config_path, on_event=self.training_event)
        if not outcome.finished:
            raise FlenwheelError(f"training char_{version} stopped ({outcome.status}) at step {outcome.step}; "
                                 "run the turn again to resume from its last checkpoint")
        how = "already trained" if outcome.reused else f"trained {outcome.step} steps"
        self.project.set_current(base.lora.project_key, base.lora.version_folder(self.project.root, version).name)
        lines = [f"char_{version}: {how} -> {outcome.lora}", *self._training_pictures(version, config_path.parent)]
        self.record(f"train char_{version}", lines)
        return str(outcome.lora)

    def _training_pictures(self, version: str, run_dir: Path) -> list[str]:
        """The run's loss plot and samples, linked from the turn report."""
        from ..training.loss_plot import write_loss_plot

        links = {f"loss char_{version}": write_loss_plot(run_dir, f"char_{version} loss")}
        samples = run_dir / "samples"
        if samples.is_dir() and any(samples.glob("*.png")):
            links[f"samples char_{version}"] = samples
        for name, path in links.items():
            self.link(name, path)
        return [f"{name}: {path}" for name, path in links.items()]

    def training_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "step" and (event.get("step", 0) % 25 == 0 or event.get("step") == event.get("total")):
            self.log(f"  step {event['step']}/{event['total']} loss {event.get('loss', float('nan')):.4f}")
        elif kind in ("checkpoint", "error"):
            self.log(f"  {kind}: {event.get('path') or event.get('message')}")

    # 1.5 - 1.6 ----------------------------------------------------------------------------
    def generate_and_filter(self, lora: str) -> GateScope:
        from ..generate.generate import run_generation
        from ..identity.filter import run_filter
        from ..models.character_lora import parse_lora_ref

        self.log(f"1.5 generating synthetic images with {Path(lora).name}")
        handle = self.flux().with_loras([parse_lora_ref(lora, self.project)])
        aimed, needs = self.generation_plan()
        allocation = aimed.allocation.to_json() if aimed.allocation else None
        self.entry["coverage"] = needs.coverage.to_json() if needs.coverage else None
        self.entry["allocation"] = allocation
        generated = run_generation(self.project, handle, aimed.plan, info={"aim": allocation})
        self.record("generate", [*needs.coverage.lines(), *(aimed.allocation.lines() if aimed.allocation else []),
                                 *generated.lines()])
        self.log("1.6 identity filter")
        filtered = run_filter(self.project, generated.dataset.version, tolerance=self.config.filter.tolerance)
        self.record("filter", [filtered.summary_line()])
        self.entry.setdefault("images", {}).update(synthetic=len(generated.dataset.records), kept=len(filtered.kept))
        self.entry["versions"]["synthetic"] = generated.dataset.version
        if self.config.filter.send_to_review == "all":
            return scope_for(self.project, "synthetic", version=generated.dataset.version)
        kept = DatasetHandle(generated.dataset, tuple(outcome.record_id for outcome in filtered.kept))
        return scope_for(self.project, "synthetic", handle=kept)

    def generation_plan(self, number: int | None = None) -> tuple[Any, Any]:
        """Turn ``number``'s (default this turn's) generation plan and its needs: the newest card of an
        earlier turn and the coverage of char_vN's training set. ``generate.aim: false`` plans unaimed."""
        from ..generate.aim import aimed_plan, load_needs

        cfg = self.config.generate
        number = number or self.entry["turn"]
        needs = load_needs(self.project, f"char_v{number}", card_up_to=number - 1)
        settings = {"width": cfg.width, "height": cfg.height, "steps": cfg.steps, "guidance": cfg.guidance}
        aimed = aimed_plan(self.project, needs if cfg.aim else None, cfg.prompt_files,
                           families=cfg.families or None, variants=cfg.variants, base_seed=cfg.seed,
                           run_settings={k: v for k, v in settings.items() if v is not None})
        return aimed, needs

    # model card ---------------------------------------------------------------------------
    def benchmark(self, lora: str) -> str | None:
        from ..benchmark.model_card import load_card
        from ..benchmark.results import write_outputs
        from ..benchmark.run import FluxRenderer, run_benchmark
        from ..models.character_lora import parse_lora_ref

        cfg = self.config.benchmark
        if not cfg.enabled:
            return None
        self.log(f"model card benchmark of {Path(lora).name}")
        render = {key: value for key, value in (("width", cfg.width), ("height", cfg.height), ("steps", cfg.steps))
                  if value is not None}
        card = load_card(cfg.card_files, tries=cfg.tries, render=render or None)
        renderer = FluxRenderer(self.flux().with_loras([parse_lora_ref(lora, self.project)]))
        run = run_benchmark(self.project, renderer, card, checks=cfg.checks)
        if self.decisions:
            apply_decisions(scope_for(self.project, "benchmark", version=run.dataset.version), self.decisions)
        outputs = write_outputs(self.project, run.label, run.dataset)
        self.record(f"benchmark {run.label}", [*run.lines(), *outputs.lines()])
        self.link(f"model card {run.label}", outputs.report_path)
        return run.label

    # models -------------------------------------------------------------------------------
    def flux(self) -> Any:
        """The character base's pipeline, loaded on first use and kept until a trainer needs the memory."""
        if self._flux is None:
            from ..models.character_base import load_character_base
            from ..models.flux_single_file import FluxFiles

            models = self.config.models
            files = FluxFiles(transformer=models.flux_transformer_file, vae=models.flux_vae_file,
                              clip_l=models.clip_l_file, t5=models.t5_file)
            self._flux = load_character_base(models.character_base, models.flux, files, models.load_options())
        return self._flux

    def release_flux(self) -> None:
        self._flux = None
        free_memory()
