// Keyboard map: label keys come from the stage's label specs (1/2/3 or g/c/r for enriched),
// the rest is fixed: arrows move, z undoes, Enter/Space opens the large view, Esc closes it.

const FIXED = {
  ArrowLeft: { type: "move", delta: -1 },
  ArrowRight: { type: "move", delta: 1 },
  ArrowUp: { type: "rows", rows: -1 },
  ArrowDown: { type: "rows", rows: 1 },
  Home: { type: "jump", to: "first" },
  End: { type: "jump", to: "last" },
  n: { type: "jump", to: "pending" },
  z: { type: "undo" },
  Enter: { type: "toggle" },
  " ": { type: "toggle" },
  Escape: { type: "close" },
  "?": { type: "help" },
};

export function buildKeymap(stage) {
  const map = new Map(Object.entries(FIXED));
  for (const label of stage.labels) {
    for (const key of label.keys) map.set(key, { type: "label", label: label.name });
  }
  const accept = stage.labels.find((label) => label.slot === "accept");
  if (stage.notes?.length && accept) map.set("f", { type: "label", label: accept.name, note: stage.notes[0] });
  return map;
}

/** The action for a key press, or null (modifier combinations belong to the browser/ComfyUI). */
export function actionFor(keymap, event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return null;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  return keymap.get(key) || keymap.get(event.key) || null;
}

export function describeKeys(stage) {
  const rows = stage.labels.map((label) => [label.keys.join(" / "), label.title]);
  const accept = stage.labels.find((label) => label.slot === "accept");
  if (stage.notes?.length && accept) rows.push(["f", `${accept.title} + "${stage.notes[0]}" note`]);
  return [
    ...rows,
    ["← → ↑ ↓", "move"],
    ["Home / End / n", "first / last / next pending"],
    ["Enter / Space", "large view on/off"],
    ["z", "undo the last decision"],
    ["Esc", "close the large view or the reason picker"],
  ];
}
