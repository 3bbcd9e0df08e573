// Progress (counts per verdict, a bar, the seed's criteria, placement state) and the coverage
// grid of model-card angles x expressions for the pristine pick.

import { clear, h } from "./elements.js";

export function renderProgress(el, summary, labels) {
  if (!summary) return clear(el);
  const decided = summary.total - summary.pending;
  const segments = labels.map((label) => {
    const count = summary.counts[label.name] || 0;
    const width = summary.total ? (100 * count) / summary.total : 0;
    return h("span", { class: "fw-bar-part", title: `${label.title}: ${count}`,
      style: { width: `${width}%`, background: label.color } });
  });
  const counts = labels.map((label) =>
    h("span", { class: "fw-count", dataset: { label: label.name } },
      h("i", { style: { background: label.color } }), `${label.title} `, h("b", {}, summary.counts[label.name] || 0)),
  );
  const criteria = summary.criteria.map((criterion) =>
    h("li", { class: criterion.passed ? "fw-pass" : "fw-fail", title: criterion.detail },
      `${criterion.passed ? "✓" : "✗"} ${criterion.name}`, h("small", {}, ` ${criterion.detail}`)),
  );
  const placement = summary.placement || {};
  return clear(
    el,
    h("div", { class: "fw-progress-head" },
      h("b", { class: "fw-decided" }, `${decided} / ${summary.total}`), " decided · ",
      h("span", { class: "fw-pending-count" }, `${summary.pending} pending`),
      placement.pending ? h("span", { class: "fw-placing" }, " · placing files…") : null),
    h("div", { class: "fw-bar" }, ...segments),
    h("div", { class: "fw-counts" }, ...counts),
    h("ul", { class: "fw-criteria" }, ...criteria),
    placement.error ? h("div", { class: "fw-error" }, `placement failed: ${placement.error}`) : null,
  );
}

// The training set's grid before and after the picks (and suggestions), and the suggest / confirm
// controls: the page only marks the best N gap-fillers, and the person confirms them.
function trainingLine(coverage, a, e) {
  if (!coverage.training || !coverage.after) return "";
  return ` · training set ${coverage.training[a][e]}→${coverage.after[a][e]}`;
}

function suggestControls(actions) {
  if (!actions) return null;
  const count = h("input", { type: "number", min: "0", max: "1000", value: String(actions.best || 8),
    class: "fw-suggest-count", title: "How many of the best gap-fillers to mark" });
  return h("div", { class: "fw-suggest" },
    h("button", { type: "button", title: "Mark the best N candidates by the gap they fill (nothing is decided)",
      onclick: () => actions.onSuggest(Math.max(0, Math.min(1000, Number.parseInt(count.value, 10) || 0))) },
      "Suggest best"), count,
    actions.suggested ? h("button", { type: "button", class: "fw-confirm",
      title: "Record each marked candidate as pristine, as your decision", onclick: () => actions.onConfirm() },
      `Confirm ${actions.suggested} suggested as pristine`) : null);
}

export function renderCoverage(el, coverage, selected, actions = null) {
  if (!coverage) {
    el.hidden = true;
    return clear(el);
  }
  el.hidden = false;
  const head = h("tr", {}, h("th", {}, ""), ...coverage.expressions.map((e) => h("th", {}, e)));
  const rows = coverage.angles.map((angle, a) =>
    h("tr", {}, h("th", {}, angle), ...coverage.expressions.map((expression, e) => {
      const picked = coverage.picked[a][e];
      const available = coverage.available[a][e];
      const here = selected && selected.angle === angle && selected.expression === expression;
      const state = picked ? "fw-covered" : available ? "fw-gap" : "fw-none";
      const training = trainingLine(coverage, a, e);
      return h("td", { class: `${state}${here ? " fw-here" : ""}`,
        title: `${angle} · ${expression}: ${picked} picked of ${available} candidates${training}` },
        `${picked}/${available}`, training ? h("small", { class: "fw-training" }, training.replace(" · training set ", " ts ")) : null);
    })),
  );
  const gaps = coverage.gaps.length;
  return clear(
    el,
    h("div", { class: "fw-coverage-title" }, "Model-card coverage ",
      h("small", {}, `(pristine picks / candidates; ${gaps} empty cells)`)),
    h("table", { class: "fw-coverage-table" }, h("thead", {}, head), h("tbody", {}, ...rows)),
    coverage.untagged_picked ? h("small", {}, `${coverage.untagged_picked} picks have no angle/expression tags`) : null,
    coverage.training ? h("small", {}, "ts a→b: the training set's measured images in the cell, before → after "
      + "the picks and suggestions") : null,
    suggestControls(actions),
  );
}
