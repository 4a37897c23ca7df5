// @ts-check
// What the data pages share: one badge per data state, coloured by what it asks of the reader.

import { badge } from "./widgets.js";
/** @import { Attrs } from "./dom.js" */

/** @type {Record<string, string>} */
const TONES = {
  ready: "ok",
  idle: "ok",
  completed: "ok",
  queued: "info",
  running: "info",
  held: "warn",
  failed: "bad",
  archived: "state-archived",
  discarded: "state-archived",
};

/**
 * A badge for a data-source status, sync state or pass status.
 * @param {string | null | undefined} state
 * @param {Attrs} [attrs]
 */
export function dataBadge(state, attrs = {}) {
  const text = state || "unknown";
  return badge(text, TONES[text] ?? "", attrs);
}
