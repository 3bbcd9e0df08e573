// ComfyUI entry: node names in the node library wrap between words.
// Frontend 1.27 styles library labels with `word-break: break-all`, so "FLENwheel Face Identity
// Filter" breaks as "FLENwheel Face Identi / ty Filter" at the default sidebar width. Normal word
// wrapping (a word longer than the row may still break) reads better for every pack's names.

const STYLE_ID = "fw-library-names";

if (!document.getElementById(STYLE_ID)) {
  document.head.append(Object.assign(document.createElement("style"), {
    id: STYLE_ID,
    textContent: ".p-tree-node-content .editable-text span { word-break: normal; overflow-wrap: anywhere; }",
  }));
}
