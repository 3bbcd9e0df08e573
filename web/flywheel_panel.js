// The Flywheel panel of the Training tab: per-turn figures of every project, read from
// reports/flywheel.json through the read-only review route GET /flenwheel/review/{project}/flywheel.

const BASE = "/api/flenwheel/review";

const pct = (value) => (value == null ? "-" : `${Math.round(value * 100)}%`);

export function turnRow(turn) {
  const first = turn.cells ? `${turn.verified}/${turn.cells} (${pct(turn.rate)})` : "-";
  const gain = turn.gain == null ? "-" : `${turn.gain >= 0 ? "+" : ""}${Math.round(turn.gain * 100)} pts`;
  return [`${turn.turn}${turn.finished ? "" : " …"}`, turn.char_lora || "-", first, turn.unverified ?? "-", gain,
    pct(turn.correction_rate), turn.images.pristine ?? "-", turn.editor];
}

function table(data) {
  const box = document.createElement("div");
  box.className = "fw-flywheel-project";
  box.style.cssText = "margin:6px 0;font-size:12px";
  const head = `${data.project}${data.auto_review ? " (auto-review: demo only, not a human)" : ""}`;
  box.append(Object.assign(document.createElement("div"), { textContent: head, style: "font-weight:600" }));
  const grid = document.createElement("table");
  grid.style.cssText = "border-collapse:collapse;width:100%";
  const names = ["turn", "LoRA", "first try (verified)", "unverified", "gain", "corrections", "pristine", "editor"];
  [names, ...data.turns.map(turnRow)].forEach((cells, index) => {
    const row = grid.insertRow();
    cells.forEach((text) => {
      const cell = row.insertCell();
      cell.textContent = text;
      cell.style.cssText = `padding:2px 4px;border-bottom:1px solid rgba(127,127,127,0.3);${index ? "" : "opacity:0.7"}`;
    });
  });
  box.append(grid);
  const target = data.target == null ? "" : `target ${pct(data.target)} verified first-try success`;
  const stopped = data.stopped ? `stopped: ${data.stopped.reason}` : "running or waiting";
  box.append(Object.assign(document.createElement("div"), { className: "fw-flywheel-stop", textContent: `${target} · ${stopped}` }));
  return box;
}

export async function flywheelPanel() {
  const panel = document.createElement("div");
  panel.className = "fw-flywheel";
  panel.append(Object.assign(document.createElement("h4"), { textContent: "Flywheel", style: "margin:4px 0" }));
  try {
    const { projects } = await (await fetch(`${BASE}/projects`, { cache: "no-store" })).json();
    const all = await Promise.all(projects.map((p) =>
      fetch(`${BASE}/${encodeURIComponent(p.key)}/flywheel`, { cache: "no-store" }).then((r) => r.json())));
    const started = all.filter((data) => data.turns && data.turns.length);
    if (!started.length) panel.append("No flywheel turn yet: queue the whole-turn template or run flenwheel run.");
    started.forEach((data) => panel.append(table(data)));
  } catch (error) {
    panel.append(`Flywheel figures unavailable: ${error.message}`);
  }
  return panel;
}
