// The Flywheel panel of the Training tab: per-turn figures of every project, read from
// reports/flywheel.json through the read-only review route GET /flenwheel/review/{project}/flywheel.
// One column per turn and one row per figure, so three turns fit a 250 px sidebar; more turns scroll
// sideways inside the panel while the figure names stay. Two projects of one name show their folders.

const BASE = "/api/flenwheel/review";

const pct = (value) => (value == null ? "-" : `${Math.round(value * 100)}%`);

/** Row name -> the cell text of one turn (a line break where a cell holds two figures). */
export const FIGURES = [
  ["LoRA", (turn) => turn.char_lora || "-"],
  ["first try", (turn) => (turn.cells ? `${pct(turn.rate)}\n${turn.verified}/${turn.cells} verified` : "-")],
  ["unverified", (turn) => turn.unverified ?? "-"],
  ["gain", (turn) => (turn.gain == null ? "-" : `${turn.gain >= 0 ? "+" : ""}${Math.round(turn.gain * 100)} pts`)],
  ["corrections", (turn) => pct(turn.correction_rate)],
  ["pristine", (turn) => turn.images.pristine ?? "-"],
  ["editor", (turn) => turn.editor],
];

function cell(row, text, head) {
  const element = head ? document.createElement("th") : row.insertCell();
  if (head) row.append(element);
  element.textContent = String(text);
  element.style.cssText = "padding:2px 4px;text-align:left;vertical-align:top;white-space:pre-line;"
    + "overflow-wrap:anywhere;border-bottom:1px solid rgba(127,127,127,0.3);"
    + (head ? "position:sticky;left:0;background:var(--comfy-menu-bg,#202020);font-weight:400;opacity:0.75" : "");
  return element;
}

function figures(turns) {
  const grid = document.createElement("table");
  grid.className = "fw-flywheel-table";
  grid.style.cssText = "border-collapse:collapse;font-size:12px";
  const header = grid.insertRow();
  cell(header, "turn", true);
  turns.forEach((turn) => { cell(header, `${turn.turn}${turn.finished ? "" : " …"}`).style.fontWeight = "600"; });
  for (const [name, value] of FIGURES) {
    const row = grid.insertRow();
    cell(row, name, true);
    turns.forEach((turn) => cell(row, value(turn)));
  }
  const scroller = document.createElement("div");
  scroller.className = "fw-flywheel-scroll";
  scroller.style.cssText = "overflow-x:auto;max-width:100%";
  scroller.append(grid);
  return scroller;
}

function heading(data, entry, repeated) {
  const head = document.createElement("div");
  head.className = "fw-flywheel-head";
  head.append(Object.assign(document.createElement("div"), { textContent: data.project || entry.name,
    style: "font-weight:600" }));
  if (repeated) {
    head.append(Object.assign(document.createElement("div"), { className: "fw-flywheel-folder", title: entry.folder,
      textContent: entry.folder, style: "font-size:11px;opacity:0.75;overflow-wrap:anywhere" }));
  }
  if (data.auto_review) {
    head.append(Object.assign(document.createElement("div"), { textContent: "auto-review: demo only, not a human",
      style: "font-size:11px;opacity:0.75" }));
  }
  if (data.report) {
    head.append(Object.assign(document.createElement("a"), {
      className: "fw-flywheel-report", textContent: "flywheel report ↗", target: "_blank", rel: "noopener",
      href: `${BASE}/${encodeURIComponent(entry.key)}/flywheel/flywheel.html`, style: "font-size:12px",
    }));
  }
  return head;
}

function project(data, entry, repeated) {
  const box = document.createElement("div");
  box.className = "fw-flywheel-project";
  box.style.cssText = "margin:6px 0;font-size:12px;max-width:100%";
  box.append(heading(data, entry, repeated), figures(data.turns));
  const target = data.target == null ? "" : `target ${pct(data.target)} verified first-try success · `;
  const stopped = data.stopped ? `stopped: ${data.stopped.reason}` : "running or waiting";
  box.append(Object.assign(document.createElement("div"), { className: "fw-flywheel-stop", textContent: `${target}${stopped}`,
    style: "margin-top:2px;overflow-wrap:anywhere" }));
  return box;
}

export async function flywheelPanel() {
  const panel = document.createElement("div");
  panel.className = "fw-flywheel";
  panel.style.cssText = "max-width:100%;overflow:hidden";
  panel.append(Object.assign(document.createElement("h4"), { textContent: "Flywheel", style: "margin:4px 0" }));
  try {
    const { projects } = await (await fetch(`${BASE}/projects`, { cache: "no-store" })).json();
    const all = await Promise.all(projects.map((p) =>
      fetch(`${BASE}/${encodeURIComponent(p.key)}/flywheel`, { cache: "no-store" }).then((r) => r.json())));
    const names = new Map();
    projects.forEach((p) => names.set(p.name, (names.get(p.name) || 0) + 1));
    const started = all.map((data, index) => [data, projects[index]]).filter(([data]) => data.turns?.length);
    if (!started.length) panel.append("No flywheel turn yet: queue the whole-turn template or run flenwheel run.");
    started.forEach(([data, entry]) => panel.append(project(data, entry, names.get(entry.name) > 1)));
  } catch (error) {
    panel.append(`Flywheel figures unavailable: ${error.message}`);
  }
  return panel;
}
