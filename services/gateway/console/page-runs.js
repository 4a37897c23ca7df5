// @ts-check
// Runs: built by its owner this session (a placeholder until then).

import { h, mount } from "./dom.js";

/** @param {HTMLElement} root */
export async function render(root) {
  mount(root, h("p", { class: "muted" }, "Runs: not built yet."));
}
