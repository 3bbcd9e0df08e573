"""The editor flywheel inside a turn (seed steps 2.1-2.3), after the character's model card.

This turn's needs_correction edits get their corrected targets (a person's fix from the review
page, else improved-prompt re-runs reviewed like any other image), the corrections become
triplets, the editor LoRA trains once there are at least ``editor.min_triplets`` of them, and the
current editor and the new one enrich the same held-back sources (sources none of the triplets
came from) so their share of unusable edits (needing a correction or rejected) and identity pass
rate can be compared. The next turn
enriches with the winner. An editor LoRA that fails to train or to load is reported, and the turn
goes on with the editor it had.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..data.errors import FlenwheelError
from ..models.registry import family
from ..review.gate import scope_for

if TYPE_CHECKING:
    from ..editor.editor_report import EditorStats
    from .turn import Turn


def editor_label(texts: list[str]) -> str:
    return "+".join(texts) or "base"


def rerun_corrections(turn: Turn, version: str) -> list[str]:
    """Re-run, with an improved prompt, every correction of ``enriched/version`` that has no target yet,
    then review the re-runs; returns the report lines."""
    from ..editor.correction_rerun import rerun_correction
    from ..editor.correction_targets import correction_items, rerun_dataset
    from ..models.qwen_edit_loader import release_qwen_edit

    items, _ = correction_items(turn.project, version)
    todo = [item for item in items if item.target_state == "no target yet"]
    lines = [f"{len(items)} corrections in enriched/{version}, {len(todo)} without a target"]
    seeds = turn.config.editor.rerun_seeds
    if todo and seeds:
        handle = turn.qwen_edit(turn.entry["editor"]["used"])
        try:
            for item in todo:
                made = rerun_correction(turn.project, handle, version, item.record.id, seeds=seeds,
                                        log=lambda text: None)
                lines.append(f"re-ran {item.record.filename}: {len(made.added)} candidates")
        finally:
            del handle
            release_qwen_edit()
    if rerun_dataset(turn.project, version) is not None:
        accepted = turn.review("rerun", scope_for(turn.project, "rerun", version=version))
        lines.append(f"{len(accepted)} re-runs accepted as corrected targets")
    return lines


def build_turn_triplets(turn: Turn, enriched: list[str]) -> tuple[str | None, int, list[str]]:
    """Triplets from the corrections of the turns' enriched versions: (version, count, lines)."""
    from ..editor.triplets import build_triplets

    try:
        build = build_triplets(turn.project, enriched, log=lambda text: None)
    except FlenwheelError as exc:
        return None, 0, [str(exc)]
    assert build.dataset is not None
    return build.dataset.version, len(build.lines), build.summary()


def train_editor(turn: Turn, triplets: str) -> tuple[str | None, list[str]]:
    """Train (or resume) the editor LoRA on ``triplets``; (``ours:vN`` or None when it failed, lines)."""
    from ..training.loss_plot import write_loss_plot
    from ..training.planning import CONFIG_FILE, init_triplets_run
    from ..training.train_version import train_version

    editor = family(turn.config.models.editor)
    versions = turn.entry["versions"]
    version = versions.get("editor_lora")
    try:
        if version is None or not (editor.lora.version_folder(turn.project.root, version) / CONFIG_FILE).is_file():
            overrides = {"model": turn.config.models.qwen_edit, **turn.config.editor.overrides}
            plan = init_triplets_run(turn.project, editor.name, triplets=triplets, overrides=overrides)
            version = versions["editor_lora"] = plan.version
            turn.state.save()
        config_path = editor.lora.version_folder(turn.project.root, version) / CONFIG_FILE
        outcome = train_version(editor.name, config_path, on_event=turn.training_event)
    except FlenwheelError as exc:
        return None, [f"editor LoRA not trained: {exc}; this turn keeps the previous editor"]
    if not outcome.finished:
        return None, [f"editor LoRA {version} did not finish ({outcome.status} at step {outcome.step}); "
                      "this turn keeps the previous editor"]
    loss = write_loss_plot(config_path.parent, f"editor LoRA {version} loss")
    turn.link(f"loss editor {version}", loss)
    return f"ours:{version}", [f"editor LoRA {version} on triplets {triplets} -> {outcome.lora}", f"loss: {loss}"]


def _unusable_rate(stats: EditorStats) -> float | None:
    """Share of reviewed edits that were not good as they came: needing a correction or rejected outright.

    Corrections alone would let an editor whose edits are all rejected (0 corrections) beat one that needs
    a few fixes, so both count."""
    return stats.rate(stats.corrections + stats.rejected)


def choose(current: EditorStats, new: EditorStats) -> tuple[str, str]:
    """("new" or "current", why): fewer unusable edits (corrections + rejects) win; then fewer rejects;
    then the better identity pass rate."""
    a, b = _unusable_rate(current), _unusable_rate(new)
    if a is None or b is None:
        return "current", "the comparison was not reviewed, so nothing was measured"
    if b != a:
        winner = "new" if b < a else "current"
        return winner, (f"edits needing a correction or rejected {b:.0%} (new) vs {a:.0%} (current)")
    ra, rb = current.reject_rate, new.reject_rate
    if ra != rb and ra is not None and rb is not None:
        return ("new" if rb < ra else "current"), (f"same share of unusable edits {a:.0%}; rejected "
                                                    f"{rb:.0%} (new) vs {ra:.0%} (current)")
    ia, ib = current.identity_kept_rate, new.identity_kept_rate
    if ia is not None and ib is not None and ia != ib:
        return ("new" if ib > ia else "current"), (f"same share of unusable edits {a:.0%}; identity pass rate "
                                                   f"{ib:.0%} (new) vs {ia:.0%} (current)")
    return "current", f"same share of unusable edits {a:.0%} and no identity difference: no measured gain"


def compare_editors(turn: Turn, new_lora: str, triplets: str | None) -> dict[str, Any]:
    """Enrich the held-back sources with the current and the new editor, review, and pick the winner.

    The new editor replaces our earlier LoRA (it was trained on every turn's triplets) and keeps the
    other LoRAs of the current editor (an angle LoRA, say), so only our LoRA differs."""
    from ..editor.editor_compare import Editor, held_back_sources, run_comparison
    from ..editor.editor_report import editor_report
    from ..identity.gate import resolve_gate
    from ..models.editor_lora import OURS, resolve_lora
    from ..models.qwen_edit_loader import release_qwen_edit

    current = list(turn.entry["editor"]["used"])
    candidate = [*(text for text in current if not text.startswith(OURS)), new_lora]
    try:
        editors = [Editor(editor_label(texts), tuple(resolve_lora(t, turn.project) for t in texts))
                   for texts in (current, candidate)]
        base = turn.qwen_edit([])
    except (FlenwheelError, OSError, RuntimeError, ValueError) as exc:
        return {"chosen": current, "why": f"the new editor failed to load ({exc}); keeping {editor_label(current)}",
                "figures": None}
    source, note = held_back_sources(turn.project, triplets, turn.config.editor.compare_sources)
    settings = dataclasses.replace(turn.enrich_settings(), per_source=turn.config.editor.compare_per_source)
    scorer = resolve_gate(turn.project, turn.config.enrich.gate, turn.config.enrich.tolerance, log=lambda t: None)
    name = f"turn{turn.entry['turn']}"
    try:
        run = run_comparison(turn.project, base, editors, settings, name, source, scorer, log=lambda text: None)
    except (FlenwheelError, OSError, RuntimeError, ValueError) as exc:
        return {"chosen": current, "why": f"the new editor failed ({exc}); keeping {editor_label(current)}",
                "figures": None}
    finally:
        del base
        release_qwen_edit()
    for entry in run.data["editors"]:
        turn.review("compare editors", scope_for(turn.project, "enriched", version=entry["version"]))
    report = editor_report(turn.project, name, "auto" if scorer is not None else "off")
    stats = {s.label: s for s in report.editors}
    winner, why = choose(stats[editors[0].label], stats[editors[1].label])
    figures = {label: {"enriched": s.version, "edits": s.edits, "correction_rate": s.correction_rate,
                       "reject_rate": s.reject_rate, "identity_pass_rate": s.identity_kept_rate}
               for label, s in stats.items()}
    return {"chosen": candidate if winner == "new" else current, "why": f"{winner} editor: {why}",
            "figures": figures, "sources": f"{len(source)} sources {note}", "comparison": name,
            "report": report.files.get("report"), "files": dict(report.files)}
