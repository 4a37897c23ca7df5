// @ts-check
// What the notifications pages share: the endpoint and delivery types, the event picker
// (checkboxes from GET /webhook-event-types) and the secret shown once.

import { get } from "./api.js";
import { fmtDate, h, mount, uid } from "./dom.js";
import { badge, copyButton, readonlyText } from "./widgets.js";
/** @import { JsonObject, Page } from "./api-types.js" */

// The notifications replies (libs/common/contracts/notifications.py), as the pages read them.

/**
 * @typedef {object} WebhookEndpoint
 * @property {string} id
 * @property {string} url
 * @property {string[]} events
 * @property {boolean} enabled
 * @property {string | null} description
 * @property {string | null} disabledReason why Tether disabled it (410, failing)
 * @property {string | null} previousSecretExpiresAt
 * @property {string} createdAt
 * @property {string} updatedAt
 */

/** @typedef {WebhookEndpoint & {secret: string}} WebhookEndpointWithSecret shown once */

/**
 * @typedef {object} WebhookEventType
 * @property {string} type
 * @property {string} description
 * @property {boolean} inWildcard false: only an explicit pattern matches it
 * @property {boolean} available false: no service emits it yet
 * @property {JsonObject} payloadSchema
 */

/**
 * @typedef {object} DeliveryAttempt
 * @property {string} attemptedAt
 * @property {number | null} statusCode
 * @property {number} durationMs
 * @property {string | null} response the first 1 KB of the answer
 * @property {string | null} error
 */

/**
 * @typedef {object} WebhookDelivery
 * @property {string} id the webhook-id (msg_…)
 * @property {string} endpointId
 * @property {string} eventType
 * @property {string | null} eventId
 * @property {"pending" | "succeeded" | "failed"} status
 * @property {number} attemptCount
 * @property {number | null} lastStatusCode
 * @property {string | null} lastError
 * @property {string | null} nextAttemptAt
 * @property {string} createdAt
 * @property {string} updatedAt
 */

/** @typedef {WebhookDelivery & {payload: JsonObject, attempts: DeliveryAttempt[]}} WebhookDeliveryDetail */

/** @typedef {Page<WebhookEndpoint>} EndpointPage */

/**
 * The event types endpoints may ask for.
 * @param {AbortSignal} signal
 * @returns {Promise<WebhookEventType[]>}
 */
export async function eventTypes(signal) {
  /** @type {{items: WebhookEventType[]}} */
  const reply = await get("/webhook-event-types", { signal });
  return reply.items;
}

/**
 * Event checkboxes: `*`, each entity's `<entity>.*`, and each type; patterns that are none of
 * these (typed through the API) are kept as they are. Test ids `event-<pattern>`.
 * @param {WebhookEventType[]} types
 * @param {string[]} [selected]
 * @returns {{element: HTMLFieldSetElement, read: () => string[], first: () => HTMLInputElement | null}}
 */
export function eventPicker(types, selected = []) {
  const chosen = new Set(selected);
  /** @type {Map<string, HTMLInputElement>} */
  const boxes = new Map();
  /**
   * @param {string} pattern
   * @param {import("./dom.js").Child} label
   * @param {string} [hint]
   * @param {string} [cls]
   */
  const box = (pattern, label, hint, cls = "") => {
    const input = h("input", { type: "checkbox", value: pattern, "data-testid": `event-${pattern}`, checked: chosen.has(pattern) });
    input.id = uid("event");
    boxes.set(pattern, input);
    return h(
      "div",
      { class: ["event-choice", cls] },
      input,
      h("label", { for: input.id }, label, hint ? h("span", { class: "hint event-hint" }, hint) : null),
    );
  };
  /** @type {Map<string, WebhookEventType[]>} */
  const groups = new Map();
  for (const t of types) {
    const entity = t.type.includes(".") ? t.type.slice(0, t.type.indexOf(".")) : t.type;
    groups.set(entity, [...(groups.get(entity) ?? []), t]);
  }
  const extra = selected.filter((p) => p !== "*" && !p.endsWith(".*") && !types.some((t) => t.type === p));
  const extraGroups = selected.filter((p) => p.endsWith(".*") && !groups.has(p.slice(0, -2)));
  const element = h(
    "fieldset",
    { class: "event-picker", "data-testid": "events-picker" },
    h("legend", {}, "Events"),
    box("*", h("strong", {}, "Every event (*)"), "all the types below except those marked “only when chosen”", "event-all"),
    h(
      "div",
      { class: "event-groups" },
      Array.from(groups, ([entity, list]) =>
        h(
          "div",
          { class: "event-group" },
          box(`${entity}.*`, h("strong", {}, `All ${entity.replace(/_/g, " ")} events (${entity}.*)`)),
          list.map((t) =>
            box(
              t.type,
              [
                h("code", {}, t.type),
                t.inWildcard ? null : badge("only when chosen", "warn", { title: "* and <entity>.* leave it out: it is high-volume" }),
                t.available ? null : badge("not emitted yet", "", { title: "Listed, but no service emits it yet" }),
              ],
              t.description,
              "event-type",
            ),
          ),
        ),
      ),
    ),
    [...extraGroups, ...extra].map((p) => box(p, h("code", {}, p), "a pattern set through the API")),
  );
  return {
    element,
    read: () => Array.from(boxes.values()).filter((b) => b.checked).map((b) => b.value),
    first: () => boxes.get("*") ?? null,
  };
}

/**
 * The secret of a created or rotated endpoint, with a copy button and the warning that it is
 * never shown again. Test ids `<testid>` (the textarea) and `<testid>-copy`.
 * @param {string} secret
 * @param {{testid: string, title: string, previousExpiresAt?: string | null}} options
 */
export function secretOnce(secret, { testid, title, previousExpiresAt }) {
  const area = readonlyText(secret, { "data-testid": testid, rows: 2, "aria-label": "Signing secret" });
  const el = h(
    "div",
    { class: "secret-once", "data-testid": `${testid}-box` },
    h("div", { class: "success" }, h("p", {}, title)),
    h(
      "div",
      { class: "warning", role: "note" },
      h("p", {}, "Copy this signing secret now: it is shown this once and never again. Your backend verifies each notification's signature with it (Standard Webhooks)."),
    ),
    h("div", { class: "copy-row" }, area, copyButton(area, { "data-testid": `${testid}-copy` })),
    previousExpiresAt
      ? h("p", { class: "small muted" }, "Notifications are also signed with the previous secret until ", h("time", { datetime: previousExpiresAt }, fmtDate(previousExpiresAt)), ".")
      : null,
  );
  return el;
}

/**
 * Show the secret in `box` and select it (so Ctrl+C copies it).
 * @param {HTMLElement} box
 * @param {HTMLElement} shown from secretOnce
 */
export function revealSecret(box, shown) {
  mount(box, shown);
  const area = shown.querySelector("textarea");
  if (area) {
    area.focus();
    area.select();
  }
}
