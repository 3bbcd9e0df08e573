// ComfyUI entry: node names in the node library wrap between words.
// Frontend 1.27 styles library labels with `word-break: break-all`, so "FLENwheel Face Identity
// Filter" breaks as "FLENwheel Face Identi / ty Filter" at the default sidebar width. Normal word
// wrapping (break-word, not anywhere: that would let flex layout shrink a label to one letter wide,
// and a word longer than the row still breaks) reads better for every pack's names.

const STYLE_ID = "fw-library-names";

if (!document.getElementById(STYLE_ID)) {
  document.head.append(Object.assign(document.createElement("style"), {
    id: STYLE_ID,
    // !important: the frontend's scoped rule has the same specificity and may load after this one.
    textContent: ".p-tree .editable-text span { word-break: normal !important; overflow-wrap: break-word !important; }",
  }));
}
