// The corrected target of an edit reviewed as needs correction (Flywheel 2, step 2.1): the
// reviewer picks a file, the server checks it (size, aspect, not the edit itself) and stores it
// as corrections/fixed/<edit name>.png, where the Triplet Writer finds it.

import { h } from "./elements.js";

const ACCEPT = "image/png,image/jpeg,image/webp,image/bmp,image/tiff,image/gif";

/** The picker line for `item`; `fix.upload(item, file)` sends the chosen file. */
export function fixPicker(item, fix) {
  const input = h("input", {
    type: "file",
    accept: ACCEPT,
    class: "fw-fix-input",
    onchange: () => {
      if (input.files[0]) fix.upload(item, input.files[0]);
    },
  });
  const current = item.fix ? `${item.fix.file}${item.fix.count > 1 ? ` (+${item.fix.count - 1} more: keep one)` : ""}` : "none yet";
  return h("div", { class: "fw-fix" },
    h("b", {}, "corrected target "), current, " · ",
    h("label", { class: "fw-fix-pick", title: "Same aspect ratio as the edit; it is scaled to the edit's size" },
      item.fix ? "replace…" : "pick a file…", input));
}
