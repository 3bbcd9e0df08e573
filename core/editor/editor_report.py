"""The compare-editors report: per editor, what the reviewer and the face check said about its edits.

Per editor (one enriched version each): the share of reviewed edits labelled needs_correction, the
reject rate, the keep rate (labelled good), the mean identity distance of its edits to the
character's reference faces and the identity kept rate (distance within the tolerance). The seed's
success criteria for our editor LoRA follow: fewer corrections and better consistency than every
other editor. Identity numbers come from the scores recorded during the run, else are measured now;
when no face can be measured (the tiny test models, a missing face_recognition) the report says so
rather than printing numbers.
"""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any

from ..data.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..data.criteria import Criterion, criteria_lines
from ..data.images import load_image
from ..data.project import Project
from ..identity.gate import resolve_gate
from ..review.stages import AUTO_REVIEWER
from ..review.store import ReviewStore
from .editor_compare import OURS, comparisons_dir, load_comparison

TABLE_FILE, CHART_FILE, REPORT_FILE = "table.md", "chart.png", "report.json"


@dataclass
class EditorStats:
    label: str
    version: str
    loras: list[dict[str, Any]]
    edits: int = 0
    reviewed: int = 0
    good: int = 0
    corrections: int = 0
    rejected: int = 0
    distances: list[float] = field(default_factory=list)
    kept: int = 0
    faceless: int = 0
    #: decisions made by auto-review (demo only), counted apart so every output can say so
    auto_reviewed: int = 0

    def rate(self, count: int) -> float | None:
        return count / self.reviewed if self.reviewed else None

    @property
    def correction_rate(self) -> float | None:
        return self.rate(self.corrections)

    @property
    def reject_rate(self) -> float | None:
        return self.rate(self.rejected)

    @property
    def keep_rate(self) -> float | None:
        return self.rate(self.good)

    @property
    def mean_distance(self) -> float | None:
        return round(mean(self.distances), 4) if self.distances else None

    @property
    def identity_kept_rate(self) -> float | None:
        scored = len(self.distances) + self.faceless
        return self.kept / scored if scored else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("distances")
        return data | {"correction_rate": self.correction_rate, "reject_rate": self.reject_rate,
                       "keep_rate": self.keep_rate, "mean_identity_distance": self.mean_distance,
                       "identity_scored": len(self.distances), "identity_kept_rate": self.identity_kept_rate}


@dataclass
class EditorReport:
    name: str
    editors: list[EditorStats]
    identity_note: str | None
    verdicts: list[Criterion] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def review_note(self) -> str | None:
        """One line when auto-review made any of the decisions behind the figures, else None."""
        auto, reviewed = sum(s.auto_reviewed for s in self.editors), sum(s.reviewed for s in self.editors)
        return f"{auto} of {reviewed} review decisions by {AUTO_REVIEWER}" if auto else None

    def markdown(self) -> str:
        """table.md: the table, headed by the auto-review note when there is one."""
        return (f"**{self.review_note}**\n\n" if self.review_note else "") + self.table() + "\n"

    def table(self) -> str:
        head = ("| editor | enriched | edits | reviewed | good (keep) | needs correction | reject | "
                "mean identity distance | identity kept |")
        rows = [head, "|" + "---|" * 9]
        for s in self.editors:
            distance = f"{s.mean_distance:.3f}" if s.mean_distance is not None else _no_identity(s, self.identity_note)
            rows.append(f"| {s.label} | {s.version} | {s.edits} | {s.reviewed} | {_pct(s.keep_rate)} | "
                        f"{_pct(s.correction_rate)} | {_pct(s.reject_rate)} | {distance} | "
                        f"{_pct(s.identity_kept_rate)} |")
        return "\n".join(rows)

    def lines(self) -> list[str]:
        out = [f"editor comparison {self.name}", *([self.review_note] if self.review_note else []), self.table()]
        if self.identity_note:
            out.append(f"identity: not measured: {self.identity_note}")
        out += criteria_lines(self.verdicts)
        return out + [f"{kind}: {path}" for kind, path in self.files.items()]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "identity_note": self.identity_note, "review_note": self.review_note,
                "editors": [s.to_json() for s in self.editors],
                "verdicts": [asdict(v) for v in self.verdicts], "files": self.files}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _no_identity(stats: EditorStats, note: str | None) -> str:
    if note:
        return "not measured"
    return f"no face in {stats.faceless}/{stats.edits}" if stats.faceless else "not measured"


def _collect(project: Project, entry: dict[str, Any], scorer: Any) -> EditorStats:
    """Counts from the review log; identity from the records, measured now (and stored) where missing."""
    dataset = project.dataset("enriched", entry["version"])
    stats = EditorStats(entry["label"], entry["version"], entry["loras"])
    decisions = ReviewStore(project).current("enriched", entry["version"])
    measured: dict[str, dict[str, Any]] = {}
    for record in dataset.records:
        stats.edits += 1
        decision = decisions.get(record.id)
        if decision is not None:
            stats.reviewed += 1
            stats.good += decision.label == "good"
            stats.corrections += decision.label == "needs_correction"
            stats.rejected += decision.label == "reject"
            stats.auto_reviewed += decision.reviewer == AUTO_REVIEWER
        score = record.scores.get("identity") if isinstance(record.scores, dict) else None
        if score is None and scorer is not None:
            score = measured[record.id] = scorer.score(load_image(dataset.image_path(record))).to_json()
        if score is None:
            continue
        if score.get("distance") is None:
            stats.faceless += 1
        else:
            stats.distances.append(float(score["distance"]))
            stats.kept += bool(score.get("match"))
    if measured:
        with dataset.edit() as edit:
            for record in edit.records:
                if record.id in measured:
                    record.scores = {**record.scores, "identity": measured[record.id]}
    return stats


def _verdicts(editors: list[EditorStats]) -> list[Criterion]:
    ours = [s for s in editors if s.label.split("+")[0].split(":")[0] == OURS]
    verdicts = []
    for mine in ours:
        for other in (s for s in editors if s is not mine):
            a, b = mine.correction_rate, other.correction_rate
            verdicts.append(Criterion(
                f"{mine.label} needs fewer corrections than {other.label}",
                None if a is None or b is None else a < b,
                "not reviewed yet" if a is None or b is None else f"{_pct(a)} vs {_pct(b)} of reviewed edits"))
            da, db = mine.mean_distance, other.mean_distance
            verdicts.append(Criterion(
                f"{mine.label} keeps the identity better than {other.label}",
                None if da is None or db is None else da < db,
                "identity not measured (no face distances)" if da is None or db is None
                else f"mean face distance {da:.3f} vs {db:.3f}"))
    return verdicts


def _chart(report: EditorReport) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [s.label for s in report.editors]
    series = [("good (keep)", "keep_rate", "#2e9d4f"), ("needs correction", "correction_rate", "#d69a1c"),
              ("reject", "reject_rate", "#c8413b"), ("identity kept", "identity_kept_rate", "#3a6fc4")]
    figure, (rates, identity) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [2, 1]})
    width = 0.8 / len(series)
    for index, (title, attribute, colour) in enumerate(series):
        values = [math.nan if getattr(s, attribute) is None else 100 * getattr(s, attribute)
                  for s in report.editors]
        positions = [i + (index - (len(series) - 1) / 2) * width for i in range(len(labels))]
        bars = rates.bar(positions, values, width, label=title, color=colour)
        rates.bar_label(bars, fmt="%.0f%%", fontsize=7)
    rates.set_xticks(range(len(labels)), labels)
    rates.set_ylabel("% of reviewed edits (identity: % of scored edits)")
    rates.set_ylim(0, 105)
    rates.legend(fontsize=8)
    rates.set_title(f"Editor comparison {report.name}")
    distances = [s.mean_distance for s in report.editors]
    if any(d is not None for d in distances):
        identity.bar(labels, [math.nan if d is None else d for d in distances], color="#3a6fc4")
        identity.set_ylabel("mean identity distance (lower is better)")
    else:
        identity.axis("off")
        why = report.identity_note or "no face found in any edit"
        identity.text(0.5, 0.5, "identity distance\nnot measured:\n" + "\n".join(textwrap.wrap(why, 34)),
                      ha="center", va="center", fontsize=10)
    identity.set_title("Identity")
    if report.review_note:
        figure.suptitle(report.review_note, color="#c8413b")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def editor_report(project: Project, name: str | None = None, identity: str = "auto",
                  write: bool = True) -> EditorReport:
    """Measure a comparison from its review decisions; writes table.md, chart.png and report.json."""
    data = load_comparison(project, name)
    missing = [e["label"] for e in data["editors"] if e.get("version") is None]
    notes: list[str] = []
    scorer = resolve_gate(project, identity, log=notes.append) if identity != "off" else None
    note = notes[0].removeprefix("identity gate off: ") if notes else ("identity check turned off"
                                                                       if identity == "off" else None)
    stats = [_collect(project, entry, scorer) for entry in data["editors"] if entry.get("version")]
    report = EditorReport(data["name"], stats, note, _verdicts(stats))
    if missing:
        report.verdicts.insert(0, Criterion("every editor ran", False, f"not run yet: {', '.join(missing)}"))
    if write:
        folder = comparisons_dir(project) / data["name"]
        files = {"table": folder / TABLE_FILE, "chart": folder / CHART_FILE, "report": folder / REPORT_FILE}
        atomic_write_text(files["table"], report.markdown())
        atomic_write_bytes(files["chart"], _chart(report))
        report.files = {kind: str(path) for kind, path in files.items()}
        atomic_write_json(files["report"], report.to_json())
    return report


def chart_image(report: EditorReport) -> Any:
    """The chart as a Pillow image (for the node's IMAGE output)."""
    return load_image(Path(report.files["chart"]))
