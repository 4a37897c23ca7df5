// @ts-check
// One webhook endpoint: edit its URL, events and state; rotate its secret (the new one shown
// once); send a test; its delivery log with every attempt, Redeliver, and Replay a time range.

import { enc, get, isAbort, patch, post } from "./api.js";
import { fmtDate, h, mount, pretty } from "./dom.js";
import { action, errorBox, field, InputError, showError, statusLine } from "./forms.js";
import { eventPicker, eventTypes, revealSecret, secretOnce } from "./notifications-events.js";
import { badge, card, confirmButton, copyValue, emptyRow, emptyState, loadMore, loading, statusBadge, table } from "./widgets.js";
/** @import { PageContext, PageParams } from "./app.js" */
/**
 * @import {
 *   DeliveryAttempt, WebhookDelivery, WebhookDeliveryDetail, WebhookEndpoint,
 *   WebhookEndpointWithSecret, WebhookEventType,
 * } from "./notifications-events.js"
 */
/** @import { Page } from "./api-types.js" */

const DELIVERIES_SHOWN = 50;
const BUSY_REFRESH_MS = 2000; // while a delivery is pending
const IDLE_REFRESH_MS = 8000;
const HOUR_MS = 3600 * 1000;

/**
 * A Date as a datetime-local input's value (local time, minutes).
 * @param {Date} date
 */
function localInput(date) {
  const pad = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const id = params.id || "";
  if (!id) throw new Error("Choose an endpoint on the Notifications page.");
  /** @type {[WebhookEndpoint, WebhookEventType[]]} */
  const [first, types] = await Promise.all([
    /** @type {Promise<WebhookEndpoint>} */ (get(`/webhook-endpoints/${enc(id)}`, { signal: ctx.signal })),
    eventTypes(ctx.signal),
  ]);
  const head = h("div", { class: "page-head" });
  const notice = h("div", {});
  const log = deliveryLog(id, ctx);

  /** @param {WebhookEndpoint} e */
  function drawHead(e) {
    mount(
      head,
      h("h1", {}, "Endpoint"),
      e.enabled ? badge("enabled", "ok", { "data-testid": "endpoint-state" }) : badge("disabled", "bad", { "data-testid": "endpoint-state" }),
      copyValue(e.id, { testid: "endpoint-id" }),
      h("p", { class: "endpoint-url wrap-anywhere" }, h("code", { "data-testid": "endpoint-url-shown" }, e.url)),
    );
    mount(
      notice,
      e.disabledReason
        ? h("div", { class: "warning", role: "note", "data-testid": "endpoint-disabled-reason" }, h("p", {}, `Tether disabled this endpoint: ${e.disabledReason}. Enable it below once your backend answers again.`))
        : null,
    );
  }
  drawHead(first);

  mount(
    root,
    head,
    notice,
    h(
      "div",
      { class: "endpoint-grid" },
      h("div", { class: "endpoint-side" }, testCard(id, log.load), replayCard(id, log.load), secretCard(id)),
      h("div", { class: "endpoint-log" }, log.element),
    ),
    settingsCard(first, types, drawHead),
  );
  await log.load();
  log.start();
}

// --- settings -------------------------------------------------------------------------------

/**
 * @param {WebhookEndpoint} e
 * @param {WebhookEventType[]} types
 * @param {(e: WebhookEndpoint) => void} saved shows the saved endpoint in the page head
 */
function settingsCard(e, types, saved) {
  const url = h("input", { type: "url", "data-testid": "endpoint-edit-url", value: e.url, required: true, maxlength: 2048, autocomplete: "off" });
  const description = h("input", { type: "text", "data-testid": "endpoint-edit-description", value: e.description ?? "", maxlength: 500, autocomplete: "off" });
  const enabled = h("input", { type: "checkbox", "data-testid": "endpoint-edit-enabled", checked: e.enabled });
  const picker = eventPicker(types, e.events);
  const problem = errorBox(null, { "data-testid": "endpoint-edit-error" });
  const done = statusLine({ "data-testid": "endpoint-saved" });
  const submit = h("button", { type: "submit", class: "primary", "data-testid": "endpoint-save" }, "Save endpoint");
  const form = h(
    "form",
    {
      novalidate: true,
      onsubmit: action({ button: submit, problem, status: done }, async () => {
        const target = url.value.trim();
        if (!target) throw new InputError("Enter the URL Tether should send notifications to.", url);
        const events = picker.read();
        if (!events.length) throw new InputError("Choose at least one event for the endpoint.", picker.first() ?? undefined);
        /** @type {WebhookEndpoint} */
        const next = await patch(`/webhook-endpoints/${enc(e.id)}`, { url: target, events, enabled: enabled.checked, description: description.value.trim() || null });
        enabled.checked = next.enabled;
        saved(next);
        done.set("Saved");
      }),
    },
    field("URL", url),
    field("Description", description),
    h("div", { class: "field endpoint-enabled" }, h("label", {}, enabled, " Enabled: send notifications to this endpoint")),
    picker.element,
    problem,
    h("div", { class: "actions" }, submit, done),
  );
  return card("Settings", form);
}

// --- test, secret, replay -------------------------------------------------------------------

/**
 * @param {string} id
 * @param {() => Promise<void>} sent refreshes the delivery log
 */
function testCard(id, sent) {
  const result = h("div", { "data-testid": "endpoint-test-result", "aria-live": "polite" });
  const problem = errorBox(null, { "data-testid": "endpoint-test-error" });
  const button = h("button", { type: "button", class: "primary", "data-testid": "endpoint-test" }, "Send test");
  button.onclick = action({ button, problem }, async () => {
    mount(result);
    /** @type {WebhookDeliveryDetail} */
    const delivery = await post(`/webhook-endpoints/${enc(id)}/test`, {});
    const attempt = delivery.attempts.at(-1);
    const ok = delivery.status === "succeeded";
    const how = attempt ? `${attempt.statusCode === null ? "no answer" : `answered ${attempt.statusCode}`} in ${attempt.durationMs} ms` : "not sent yet";
    mount(
      result,
      h(
        "div",
        { class: ok ? "success" : "error", role: ok ? "status" : "alert" },
        h("p", {}, ok ? `Delivered: your endpoint ${how}.` : `Not delivered: your endpoint ${how}${attempt?.error ? ` (${attempt.error})` : ""}.`),
      ),
    );
    await sent();
  });
  return card(
    "Send test",
    h("p", { class: "muted" }, "Send a ", h("code", {}, "test"), " event now and see what your endpoint answered."),
    h("div", { class: "actions" }, button),
    problem,
    result,
  );
}

/** @param {string} id */
function secretCard(id) {
  const out = h("div", {});
  const problem = errorBox(null, { "data-testid": "rotate-endpoint-error" });
  const rotate = confirmButton({
    label: "Rotate secret",
    confirmLabel: "Rotate now",
    question: "The current secret keeps signing beside the new one for a while. Rotate?",
    testid: "rotate-endpoint-secret",
    cls: "secondary",
    action: action({ problem }, async () => {
      /** @type {WebhookEndpointWithSecret} */
      const rotated = await post(`/webhook-endpoints/${enc(id)}/rotate-secret`, {});
      revealSecret(out, secretOnce(rotated.secret, { testid: "rotated-secret", title: "A new secret was issued.", previousExpiresAt: rotated.previousSecretExpiresAt }));
    }),
  });
  return card(
    "Signing secret",
    h("p", { class: "muted" }, "The secret was shown once, when the endpoint was created. Rotate it to get a new one; both sign notifications during the overlap."),
    h("div", { class: "actions" }, rotate),
    problem,
    out,
  );
}

/**
 * @param {string} id
 * @param {() => Promise<void>} queued refreshes the delivery log
 */
function replayCard(id, queued) {
  const now = new Date();
  const from = h("input", { type: "datetime-local", "data-testid": "replay-from", value: localInput(new Date(now.getTime() - HOUR_MS)) });
  const to = h("input", { type: "datetime-local", "data-testid": "replay-to", value: localInput(new Date(now.getTime() + 5 * 60 * 1000)) });
  const which = h(
    "select",
    { "data-testid": "replay-status" },
    h("option", { value: "" }, "every finished delivery"),
    h("option", { value: "failed" }, "failed ones only"),
    h("option", { value: "succeeded" }, "succeeded ones only"),
  );
  const problem = errorBox(null, { "data-testid": "replay-error" });
  const done = statusLine({ "data-testid": "replay-result" });
  const submit = h("button", { type: "submit", class: "secondary", "data-testid": "replay-submit" }, "Replay");
  return card(
    "Replay a time range",
    h("p", { class: "muted" }, "After an outage, send again the deliveries created in a time range (your local time); pending ones are already being sent."),
    h(
      "form",
      {
        novalidate: true,
        onsubmit: action({ button: submit, problem, status: done }, async () => {
          const start = new Date(from.value);
          const end = new Date(to.value);
          if (!from.value || Number.isNaN(start.getTime())) throw new InputError("Enter when the range starts.", from);
          if (!to.value || Number.isNaN(end.getTime())) throw new InputError("Enter when the range ends.", to);
          if (end <= start) throw new InputError("The range must end after it starts.", to);
          /** @type {{count: number}} */
          const reply = await post(`/webhook-endpoints/${enc(id)}/replay`, { from: start.toISOString(), to: end.toISOString(), status: which.value || null });
          done.set(reply.count === 1 ? "1 delivery queued again." : `${reply.count} deliveries queued again.`);
          await queued();
        }),
      },
      field("From", from),
      field("To", to),
      field("Which", which),
      problem,
      h("div", { class: "actions" }, submit, done),
    ),
  );
}

// --- delivery log ----------------------------------------------------------------------------

/**
 * The delivery log, newest first, refreshed while the page is open; a delivery opens to its
 * attempts and payload (read when opened), with Redeliver.
 * @param {string} endpointId
 * @param {PageContext} ctx
 */
function deliveryLog(endpointId, ctx) {
  const list = h("div", { class: "delivery-log", "data-testid": "deliveries" });
  const problem = errorBox(null, { "data-testid": "deliveries-error" });
  const filter = h(
    "select",
    {
      "data-testid": "deliveries-status",
      onchange: () => {
        more.reset();
        load();
      },
    },
    h("option", { value: "" }, "all"),
    h("option", { value: "pending" }, "pending"),
    h("option", { value: "succeeded" }, "succeeded"),
    h("option", { value: "failed" }, "failed"),
  );
  const refresh = h("button", { type: "button", class: "secondary small", "data-testid": "deliveries-refresh", onclick: () => load() }, "Refresh");
  const more = loadMore({ step: DELIVERIES_SHOWN, label: "Load older deliveries", testid: "deliveries-more", reload: () => load() });
  /** @type {Map<string, {sig: string, el: HTMLDetailsElement}>} */
  const shown = new Map();
  let seq = 0;
  let busy = false;

  async function load() {
    const mine = ++seq;
    try {
      /** @type {Page<WebhookDelivery>} */
      const page = await get(`/webhook-endpoints/${enc(endpointId)}/deliveries`, { query: { limit: more.limit, status: filter.value }, signal: ctx.signal });
      if (mine !== seq || !ctx.alive) return;
      showError(problem, null);
      busy = page.items.some((d) => d.status === "pending");
      draw(page.items);
      more.update(page.cursor);
    } catch (err) {
      if (isAbort(err) || mine !== seq) return;
      showError(problem, err);
    }
  }

  /** @param {WebhookDelivery[]} items */
  function draw(items) {
    if (!items.length) {
      shown.clear();
      mount(
        list,
        emptyState(filter.value ? `No ${filter.value} deliveries.` : "No deliveries yet.", {
          hint: "Send a test above: it shows here with its attempt. Events the endpoint asked for show here as they happen.",
          testid: "deliveries-empty",
        }),
      );
      return;
    }
    const els = items.map((d) => {
      const sig = JSON.stringify(d);
      const old = shown.get(d.id);
      if (old && old.sig === sig) return old.el;
      const el = deliveryItem(d, load);
      if (old?.el.open) el.open = true; // changed while open: read its attempts again
      shown.set(d.id, { sig, el });
      return el;
    });
    const ids = new Set(items.map((d) => d.id));
    for (const key of Array.from(shown.keys())) if (!ids.has(key)) shown.delete(key);
    mount(list, els);
  }

  function start() {
    const tick = () => {
      ctx.after(busy ? BUSY_REFRESH_MS : IDLE_REFRESH_MS, async () => {
        await load();
        tick();
      });
    };
    tick();
  }

  const element = h(
    "section",
    { class: "card" },
    h("div", { class: "endpoint-log-head" }, h("h2", {}, "Deliveries"), h("label", { class: "endpoint-filter" }, "Status ", filter), refresh),
    problem,
    list,
    h("div", { class: "actions" }, more.button),
  );
  return { element, load, start };
}

/**
 * One delivery; opening it reads its attempts and payload.
 * @param {WebhookDelivery} d
 * @param {() => Promise<void>} changed refreshes the log
 */
function deliveryItem(d, changed) {
  const body = h("div", { class: "delivery-body" });
  const el = h(
    "details",
    { class: ["delivery", d.status === "failed" ? "failed" : ""], "data-testid": "delivery", "data-delivery-id": d.id, "data-status": d.status },
    h(
      "summary",
      {},
      statusBadge(d.status, { "data-testid": "delivery-status" }),
      h("code", { "data-testid": "delivery-type" }, d.eventType),
      h("span", { class: "small", "data-testid": "delivery-attempts" }, d.attemptCount === 1 ? "1 attempt" : `${d.attemptCount} attempts`),
      d.lastStatusCode !== null ? h("span", { class: "small muted" }, `last answer ${d.lastStatusCode}`) : null,
      h("span", { class: "small muted nowrap" }, fmtDate(d.createdAt)),
      d.status === "pending" && d.nextAttemptAt ? h("span", { class: "small muted" }, `next try ${fmtDate(d.nextAttemptAt)}`) : null,
    ),
    body,
  );
  let read = false;
  const open = async () => {
    read = true;
    mount(body, loading());
    try {
      /** @type {WebhookDeliveryDetail} */
      const detail = await get(`/webhook-deliveries/${enc(d.id)}`);
      mount(body, deliveryDetail(detail, changed));
    } catch (err) {
      if (!isAbort(err)) mount(body, errorBox(err, { "data-testid": "delivery-error" }));
    }
  };
  el.addEventListener("toggle", () => {
    if (el.open && !read) open();
  });
  return el;
}

/**
 * @param {WebhookDeliveryDetail} d
 * @param {() => Promise<void>} changed
 */
function deliveryDetail(d, changed) {
  const problem = errorBox(null, { "data-testid": "redeliver-error" });
  const done = statusLine({ "data-testid": "redeliver-done" });
  const redeliver = h("button", { type: "button", class: "secondary small", "data-testid": "delivery-redeliver", disabled: d.status === "pending", title: d.status === "pending" ? "It is still being sent" : "" }, "Redeliver");
  redeliver.onclick = action({ button: redeliver, problem, status: done }, async () => {
    await post(`/webhook-deliveries/${enc(d.id)}/redeliver`, {});
    done.set("Queued again.");
    await changed();
  });
  /** @param {DeliveryAttempt} a */
  const attemptRow = (a) =>
    h(
      "tr",
      { "data-testid": "delivery-attempt", class: a.error ? "failed" : "" },
      h("td", { class: "nowrap" }, fmtDate(a.attemptedAt)),
      h("td", { "data-testid": "attempt-status" }, a.statusCode === null ? h("span", { class: "muted" }, "no answer") : String(a.statusCode)),
      h("td", { class: "nowrap" }, `${a.durationMs} ms`),
      h("td", { class: "wrap-anywhere", "data-testid": "attempt-error" }, a.error ? h("span", { class: "text-danger" }, a.error) : ""),
      h("td", { class: "wrap-anywhere small" }, a.response ? h("code", {}, a.response) : ""),
    );
  return [
    h("div", { class: "delivery-actions" }, h("span", { class: "small muted" }, "webhook-id "), copyValue(d.id, { testid: "delivery-id" }), redeliver, done),
    problem,
    table(["Attempted", "Answer", "Took", "Error", "Response"], d.attempts.length ? d.attempts.map(attemptRow) : [emptyRow(5, "No attempt yet.")], { "data-testid": "delivery-attempts-table" }),
    h("details", { class: "delivery-payload" }, h("summary", {}, "Payload sent"), h("pre", { class: "code", "data-testid": "delivery-payload" }, pretty(d.payload))),
  ];
}
