// The "Training" sidebar tab (sidebar_tabs.js registers it): FLENwheel trainings, live and on disk.
// The nodes push every trainer event as `flenwheel.train` (phase, start, step, checkpoint, sample,
// done, error); this tab keeps one card per run folder with its phase ("loading models", "caching
// latents 12/40") until the first step, then progress, speed, ETA and the loss curve. Opening the tab
// also lists the runs the projects hold on disk (GET /flenwheel/review/{project}/training), so runs of
// another session or browser show too. The Flywheel panel sits on top (see flywheel_panel.js).

import { api } from "../../scripts/api.js";
import { flywheelPanel } from "./flywheel_panel.js";

const TAB_ID = "flenwheel-training";
const BASE = "/api/flenwheel/review";
const MAX_POINTS = 4000;
const runs = new Map();
let root = null;
let pending = false;
let flywheel = null;
let loaded = false;

export function eta(seconds) {
  if (seconds == null || !isFinite(seconds)) return "-";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${String(m).padStart(2, "0")}m` : m ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

export function smooth(values, window) {
  const out = [];
  let total = 0;
  values.forEach((value, index) => {
    total += value;
    if (index >= window) total -= values[index - window];
    out.push(total / Math.min(index + 1, window));
  });
  return out;
}

// Keep the last report of each step: a resumed run repeats a few steps.
export function record(detail) {
  const key = detail.output || detail.kind || "run";
  const run = runs.get(key) || { key, kind: detail.kind, losses: new Map(), status: "running", checkpoints: [] };
  runs.set(key, run);
  switch (detail.event) {
    case "phase":
      Object.assign(run, { status: "preparing", phase: phaseText(detail), error: null });
      break;
    case "start":
      Object.assign(run, { status: "running", phase: null, total: detail.total, step: detail.step, error: null });
      break;
    case "step":
      Object.assign(run, { step: detail.step, total: detail.total, loss: detail.loss, itS: detail.it_s, eta: detail.eta_s });
      if (typeof detail.loss === "number") run.losses.set(detail.step, detail.loss);
      if (run.losses.size > MAX_POINTS) run.losses.delete(run.losses.keys().next().value);
      break;
    case "checkpoint":
      run.checkpoints.push(detail.step);
      break;
    case "sample":
      run.sampleStep = detail.step;
      break;
    case "done":
      Object.assign(run, { status: detail.status, phase: null, step: detail.step, lora: detail.lora_path });
      if (root) flywheelPanel().then((panel) => { flywheel = panel; schedule(); });
      break;
    case "error":
      Object.assign(run, { status: "error", phase: null, error: detail.message });
      break;
  }
  return run;
}

/** "caching latents 12/40" for a phase event with counts, else its name. */
export function phaseText(detail) {
  return detail.total != null ? `${detail.phase} ${detail.done}/${detail.total}` : detail.phase;
}

/** A run read from a project's training logs; a run this page follows live keeps its own state. */
export function remember(saved) {
  if (runs.has(saved.output)) return runs.get(saved.output);
  const run = { key: saved.output, kind: saved.kind, status: saved.status, phase: saved.phase, step: saved.step,
    total: saved.total, loss: saved.loss, lora: saved.lora, error: saved.error, checkpoints: saved.checkpoints || [],
    losses: new Map(saved.losses || []), time: saved.time };
  runs.set(saved.output, run);
  return run;
}

async function loadSavedRuns() {
  try {
    const { projects } = await (await fetch(`${BASE}/projects`, { cache: "no-store" })).json();
    const lists = await Promise.all(projects.map((p) => fetch(`${BASE}/${encodeURIComponent(p.key)}/training`,
      { cache: "no-store" }).then((r) => (r.ok ? r.json() : { runs: [] }))));
    lists.flatMap((list) => list.runs).sort((a, b) => (a.time || 0) - (b.time || 0)).forEach(remember);
  } catch (error) {
    console.warn("FLENwheel: training runs on disk unavailable", error);
  }
  loaded = true;
  schedule();
}

function chart(run) {
  const points = [...run.losses.entries()].sort((a, b) => a[0] - b[0]);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 300 100");
  svg.setAttribute("class", "fw-train-chart");
  svg.style.cssText = "width:100%;height:110px;background:rgba(127,127,127,0.08);border-radius:4px";
  if (points.length < 2) return svg;
  const steps = points.map((p) => p[0]), losses = points.map((p) => p[1]);
  const lo = Math.min(...losses), hi = Math.max(...losses), first = steps[0], last = steps[steps.length - 1];
  const x = (s) => ((s - first) / Math.max(1, last - first)) * 296 + 2;
  const y = (v) => 98 - ((v - lo) / Math.max(1e-12, hi - lo)) * 96;
  const line = (values, color, width, cls) => {
    const path = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    path.setAttribute("points", values.map((v, i) => `${x(steps[i]).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", color);
    path.setAttribute("stroke-width", width);
    path.setAttribute("class", cls);
    svg.append(path);
  };
  line(losses, "#9bb7d4", "0.8", "fw-train-raw");
  line(smooth(losses, Math.max(1, Math.floor(losses.length / 20))), "#4f8fdc", "2", "fw-train-avg");
  return svg;
}

function card(run) {
  const box = document.createElement("div");
  box.className = "fw-train-run";
  box.dataset.status = run.status;
  box.style.cssText = "padding:8px;margin:6px 0;border:1px solid rgba(127,127,127,0.3);border-radius:6px";
  const parts = run.key.split(/[\\/]/).filter(Boolean);
  const name = parts[parts.length - 1];
  const projectName = parts.length >= 4 ? parts[parts.length - 4] : "";  // <project>/models/<family>/<version>
  const total = run.total || 0, step = run.step || 0;
  const percent = total ? Math.min(100, (100 * step) / total) : 0;
  const title = document.createElement("div");
  title.style.cssText = "display:flex;justify-content:space-between;font-weight:600";
  title.style.gap = "6px";
  title.append(Object.assign(document.createElement("span"), { textContent: `${run.kind || "train"} ${name}`,
    title: run.key, style: "overflow-wrap:anywhere" }),
    Object.assign(document.createElement("span"), { className: "fw-train-status", textContent: run.status }));
  const where = Object.assign(document.createElement("div"), { className: "fw-train-project", title: run.key,
    textContent: projectName, style: "font-size:11px;opacity:0.7;overflow-wrap:anywhere" });
  const bar = document.createElement("div");
  bar.style.cssText = "height:6px;background:rgba(127,127,127,0.2);border-radius:3px;margin:6px 0";
  bar.append(Object.assign(document.createElement("div"), { className: "fw-train-bar" }));
  bar.firstChild.style.cssText = `height:100%;width:${percent.toFixed(1)}%;background:#4f8fdc;border-radius:3px`;
  const facts = document.createElement("div");
  facts.className = "fw-train-facts";
  facts.style.cssText = "font-size:12px;opacity:0.85";
  const loss = typeof run.loss === "number" ? run.loss.toFixed(4) : "-";
  facts.textContent = run.phase ? `${run.phase}…`
    : `step ${step}/${total} · loss ${loss} · ${run.itS ? run.itS.toFixed(2) : "-"} it/s · ETA ${eta(run.eta)}`
      + (run.checkpoints.length ? ` · saved at ${run.checkpoints[run.checkpoints.length - 1]}` : "");
  box.append(title, where, bar, facts);
  if (!run.phase) box.append(chart(run));
  if (run.error) box.append(Object.assign(document.createElement("div"), { className: "fw-train-error", textContent: run.error }));
  if (run.lora) {
    const lora = Object.assign(document.createElement("div"), { className: "fw-train-lora", title: run.lora,
      textContent: `LoRA: ${run.lora}` });
    lora.style.cssText = "font-size:12px;margin-top:4px;overflow-wrap:anywhere;user-select:all";  // the whole path, wrapped
    box.append(lora);
  }
  return box;
}

function render() {
  pending = false;
  if (!root) return;
  root.replaceChildren();
  if (flywheel) root.append(flywheel);
  const list = [...runs.values()].reverse();
  if (!list.length) {
    root.append(Object.assign(document.createElement("div"), {
      className: "fw-train-empty",
      textContent: loaded ? "No training yet: queue a FLENwheel Train FLUX LoRA or Train Qwen-Edit LoRA node."
        : "Looking for training runs…",
    }));
  }
  list.forEach((run) => root.append(card(run)));
}

function schedule() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(render);
}

let listening = false;

/** The Training tab (registered by sidebar_tabs.js, so the pack's tabs keep one order). */
export function trainingTab() {
  if (!listening) {
    listening = true;
    api.addEventListener("flenwheel.train", ({ detail }) => {
      record(detail);
      schedule();
    });
  }
  return {
    id: TAB_ID,
    icon: "pi pi-chart-line",
    title: "Training",
    tooltip: "FLENwheel training: progress and loss of LoRA trainings, and the flywheel's turns",
    type: "custom",
    render: (element) => {
      root = element;
      root.style.padding = "8px";
      render();
      flywheelPanel().then((panel) => {
        flywheel = panel;
        schedule();
      });
      loadSavedRuns();
    },
    destroy: () => {
      root = null;
    },
  };
}
