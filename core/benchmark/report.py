"""report.html: one self-contained page (images embedded as data URIs) per benchmark run.

It shows the card, the rates, which checks were automatic and which were left to a person, a
table of every cell and try with its checks and verdict, the failures with their reasons, the
run's settings and, when the LoRA was trained in the project, how it trained: its loss curve and
its newest training samples. The same helpers render the v1 -> v2 comparison page.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from .model_card import CHECKS

THUMB = 160
STYLE = """
body{font-family:system-ui,sans-serif;background:#181818;color:#e8e8e8;margin:24px;max-width:1500px}
h1,h2{font-weight:600} a{color:#8cc4ff} img.card{max-width:100%;border:1px solid #444}
table{border-collapse:collapse;margin:8px 0 24px} td,th{border:1px solid #3a3a3a;padding:4px 8px;vertical-align:top}
th{background:#262626;text-align:left} .pass{color:#5fd37f} .fail{color:#ff7a70} .na{color:#888}
.ok{background:#1f3a26} .bad{background:#44201e} .big{font-size:1.4em} .muted{color:#999}
td.thumb img{width:THUMBpx;height:THUMBpx;object-fit:contain;background:#000;display:block}
pre{background:#111;padding:12px;overflow:auto}
""".replace("THUMB", str(THUMB))

ImageLoader = Callable[[str], Image.Image]


def data_uri(image: Image.Image, side: int | None = None, quality: int = 85) -> str:
    """A JPEG data URI of ``image`` (shrunk to ``side`` px when given) for a self-contained page."""
    picture = image.convert("RGB")
    if side:
        picture = picture.copy()
        picture.thumbnail((side, side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=quality)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
            f"<style>{STYLE}</style></head><body>{body}</body></html>\n")


def _status_cell(check: dict[str, Any] | None) -> str:
    status = (check or {}).get("status", "n/a")
    css = {"pass": "pass", "fail": "fail"}.get(status, "na")
    value = (check or {}).get("value")
    shown = "" if value is None or isinstance(value, dict) else f"<br><span class='muted'>{esc(value)}</span>"
    title = esc((check or {}).get("detail") or "")
    return f"<td class='{css}' title='{title}'>{esc(status)}{shown}</td>"


def _verdict_cell(verdict: dict[str, Any] | None) -> str:
    if verdict is None:
        return "<td class='na'>none yet</td>"
    css = "pass" if verdict["label"] == "correct" else "fail"
    reason = f"<br><span class='muted'>{esc(verdict['reason_text'])}</span>" if verdict.get("reason_text") else ""
    return f"<td class='{css}'>{esc(verdict['label'])}{reason}</td>"


def _rates_table(summary: dict[str, Any]) -> str:
    rows = []
    for group, values in (("rows (expression)", summary["rows"]), ("columns (angle)", summary["columns"]),
                          ("poses", {"all poses": summary["poses"]})):
        for name, rate in values.items():
            rows.append(f"<tr><td>{esc(group)}</td><td>{esc(name)}</td>"
                        f"<td>{rate['first_try']['successes']}/{rate['first_try']['cells']} "
                        f"({rate['first_try']['rate']:.0%})</td><td>{rate['any_of_k']['rate']:.0%}</td></tr>")
    return ("<table><tr><th>group</th><th>name</th><th>first try</th><th>any of k</th></tr>"
            + "".join(rows) + "</table>")


def _checks_table(results: dict[str, Any]) -> str:
    counts = results["summary"]["checks"]
    rows = []
    for name in CHECKS:
        meta = results["checks"][name]
        how = meta["how"] if meta["by"] != "human" else f"left to the human verdict: {meta.get('status')}"
        c = counts[name]
        rate = "-" if c["pass_rate"] is None else f"{c['pass_rate']:.0%}"
        rows.append(f"<tr><td>{esc(name)}</td><td>{esc(meta['by'])}</td>"
                    f"<td>{esc(how)}</td><td>{c['pass']}</td><td>{c['fail']}</td><td>{c['n/a']}</td><td>{rate}</td></tr>")
    rows.append("<tr><td>human verdict</td><td>human</td><td>correct / incorrect in the review page "
                "(stage benchmark); an incorrect verdict fails the image</td><td colspan=4>"
                f"{results['summary']['human']['first_try_cells_with_verdict']} of "
                f"{results['summary']['cells']} first tries judged</td></tr>")
    return ("<table><tr><th>check</th><th>by</th><th>how</th><th>pass</th><th>fail</th><th>n/a</th>"
            "<th>pass rate (first tries)</th></tr>" + "".join(rows) + "</table>")


def _cells_table(results: dict[str, Any], load: ImageLoader) -> str:
    head = "".join(f"<th>{esc(n)}</th>" for n in CHECKS)
    rows = []
    for cell in results["cells"]:
        for entry in cell["tries"]:
            picture = ("<td class='na'>missing</td>" if entry["status"] != "done"
                       else f"<td class='thumb'><img src='{data_uri(load(entry['file']), THUMB * 2)}'></td>")
            checks = "".join(_status_cell(entry["checks"].get(n)) for n in CHECKS)
            css = "ok" if entry["success"] else "bad"
            rows.append(f"<tr class='{css}'><td>{esc(cell['label'])}<br><span class='muted'>{esc(cell['id'])}"
                        f"</span></td><td>{entry['try']}</td><td>{entry['seed']}</td>{picture}{checks}"
                        f"{_verdict_cell(entry['verdict'])}<td>{'yes' if entry['success'] else 'no'}</td></tr>")
    return (f"<table><tr><th>cell</th><th>try</th><th>seed</th><th>image</th>{head}<th>human</th>"
            f"<th>success</th></tr>{''.join(rows)}</table>")


def _failures(results: dict[str, Any]) -> str:
    items = []
    for cell in results["cells"]:
        first = cell["tries"][0] if cell["tries"] else None
        if first is not None and not first["success"]:
            items.append(f"<li><b>{esc(cell['label'])}</b> (first try, seed {first['seed']}): "
                         + "; ".join(esc(f) for f in first["failures"]) + "</li>")
    return "<ul>" + "".join(items) + "</ul>" if items else "<p>No first-try failures.</p>"


def _training_section(run_dir: Path | None, samples_shown: int = 4) -> str:
    """The LoRA's loss curve (raw and averaged) and newest samples, from its run folder."""
    from ...trainers.protocol import LOG_FILE
    from ..training.loss_plot import plot_losses

    if run_dir is None or not (run_dir / LOG_FILE).is_file():
        return ""
    plot = plot_losses(run_dir, title=f"{run_dir.name} loss")
    samples = sorted((run_dir / "samples").glob("*.png"))[-samples_shown:]
    pictures = "".join(f"<figure><img src='{data_uri(Image.open(p).convert('RGB'), 256)}' alt='{esc(p.name)}'>"
                       f"<figcaption class='muted'>{esc(p.name)}</figcaption></figure>" for p in samples)
    found = (f"<p>Newest training samples (all in <code>{esc(run_dir / 'samples')}</code>):</p>"
             f"<div style='display:flex;gap:8px'>{pictures}</div>") if samples else "<p class='muted'>No samples.</p>"
    return (f"<h2>Training</h2><p>Run folder <code>{esc(run_dir)}</code>.</p>"
            f"<img class='card' src='{data_uri(plot)}' alt='loss curve'>{found}")


def render_report(results: dict[str, Any], card: Image.Image, load: ImageLoader,
                  run_dir: Path | None = None) -> str:
    """The run's report page (see the module docstring)."""
    s = results["summary"]
    first, anyk = s["first_try"], s["any_of_k"]
    verdict = "met" if s["target_met"] else "not met"
    incomplete = ("" if s["complete"] else f"<p class='fail'>Incomplete: {s['images_expected'] - s['images_done']} "
                  "tries are not generated yet; they count as failures.</p>")
    body = f"""
<h1>Model card: {esc(results['lora_version'])} <span class='muted'>({esc(results['project'])})</span></h1>
<p class='big {"pass" if s["target_met"] else "fail"}'>First-try success {first['successes']}/{first['cells']}
 = {first['rate']:.0%}: target {s['target']:.0%} {verdict}.</p>
<p>Any of {s['tries']} tries: {anyk['successes']}/{anyk['cells']} = {anyk['rate']:.0%}.
 Human verdicts: {s['human']['first_try_cells_with_verdict']} of {first['cells']} first tries
 ({s['human']['images_with_verdict']} images in all); {s['human']['first_try_successes_without_verdict']}
 first-try successes rest on the automatic checks alone. Dataset: {esc(results['dataset'])};
 written {esc(results['created'])}.</p>
{incomplete}
<img class='card' src='{data_uri(card, quality=88)}' alt='model card'>
<h2>Rates</h2>{_rates_table(s)}
<h2>Checks: automatic and human</h2>{_checks_table(results)}
<h2>First-try failures</h2>{_failures(results)}
<h2>Every cell and try</h2>{_cells_table(results, load)}
{_training_section(run_dir)}
<h2>Settings</h2><pre>{esc(json.dumps(results['settings'], indent=2))}</pre>
"""
    return page(f"Model card {results['lora_version']}", body)
