// @ts-check
// Notifications: the workspace's webhook endpoints, and New endpoint (URL, description,
// events) whose signing secret is shown once, right after it is created.

import { enc, get, isAbort, post } from "./api.js";
import { fmtDate, h, mount } from "./dom.js";
import { action, errorBox, field, InputError, showError } from "./forms.js";
import { eventPicker, eventTypes, revealSecret, secretOnce } from "./notifications-events.js";
import { badge, card, emptyState, newButton, table } from "./widgets.js";
/** @import { PageContext, PageParams } from "./app.js" */
/** @import { EndpointPage, WebhookEndpoint, WebhookEndpointWithSecret, WebhookEventType } from "./notifications-events.js" */

const PAGE_SIZE = 100;

/**
 * @param {HTMLElement} root
 * @param {PageParams} _params
 * @param {PageContext} ctx
 */
export async function render(root, _params, ctx) {
  /** @type {WebhookEventType[]} */
  let types = [];
  const typesProblem = errorBox(null, { "data-testid": "event-types-error" });
  try {
    types = await eventTypes(ctx.signal);
  } catch (err) {
    if (isAbort(err)) throw err;
    showError(typesProblem, err);
  }
  const created = h("div", { "data-testid": "endpoint-created", "aria-live": "polite" });
  const problem = errorBox(null, { "data-testid": "endpoints-error" });
  const list = h("div", { "data-testid": "endpoints-list" });

  async function load() {
    try {
      /** @type {EndpointPage} */
      const page = await get("/webhook-endpoints", { query: { limit: PAGE_SIZE }, signal: ctx.signal });
      if (!ctx.alive) return;
      showError(problem, null);
      draw(page.items);
    } catch (err) {
      if (!isAbort(err)) showError(problem, err);
    }
  }

  /** @param {WebhookEndpoint[]} items */
  function draw(items) {
    if (!items.length) {
      mount(
        list,
        emptyState("No endpoints yet.", {
          hint: "Add your backend's URL with New endpoint above and choose the events it gets (connection errors, failed flow runs, …); or register one with the API:",
          curl: `curl -X POST ${location.origin}/webhook-endpoints \\\n  -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \\\n  -d '{"url": "https://example.com/tether-hooks", "events": ["*"]}'`,
          testid: "endpoints-empty",
        }),
      );
      return;
    }
    const rows = items.map((e) =>
      h(
        "tr",
        { "data-testid": "endpoint-row", "data-endpoint-id": e.id },
        h(
          "td",
          { class: "wrap-anywhere" },
          h("a", { href: `#/endpoint/${enc(e.id)}`, "data-testid": "endpoint-link" }, e.url),
          e.description ? h("div", { class: "small muted" }, e.description) : null,
        ),
        h("td", {}, h("div", { class: "event-badges" }, e.events.map((p) => h("code", { class: "event-pattern" }, p)))),
        h(
          "td",
          {},
          e.enabled ? badge("enabled", "ok", { "data-testid": "endpoint-enabled" }) : badge("disabled", "bad", { "data-testid": "endpoint-enabled", title: e.disabledReason ?? "" }),
          e.disabledReason ? h("div", { class: "small text-danger" }, e.disabledReason) : null,
        ),
        h("td", { class: "nowrap" }, fmtDate(e.createdAt)),
      ),
    );
    mount(list, table(["URL", "Events", "State", "Created"], rows, { "data-testid": "endpoints-table" }));
  }

  /** @param {() => void} close */
  function createForm(close) {
    const url = h("input", { type: "url", "data-testid": "endpoint-url", required: true, maxlength: 2048, autocomplete: "off", placeholder: "https://api.example.com/tether-hooks" });
    const description = h("input", { type: "text", "data-testid": "endpoint-description", maxlength: 500, autocomplete: "off", placeholder: "Production backend" });
    const picker = eventPicker(types);
    const formProblem = errorBox(null, { "data-testid": "endpoint-error" });
    const submit = h("button", { type: "submit", class: "primary", "data-testid": "endpoint-create" }, "Create endpoint");
    return h(
      "form",
      {
        novalidate: true,
        onsubmit: action({ button: submit, problem: formProblem }, async () => {
          const target = url.value.trim();
          if (!target) throw new InputError("Enter the URL Tether should send notifications to.", url);
          const events = picker.read();
          if (!events.length) throw new InputError("Choose at least one event for the endpoint.", picker.first() ?? undefined);
          /** @type {WebhookEndpointWithSecret} */
          const made = await post("/webhook-endpoints", { url: target, events, description: description.value.trim() || null });
          close();
          revealSecret(
            created,
            h(
              "section",
              { class: "card" },
              secretOnce(made.secret, { testid: "endpoint-secret", title: `The endpoint ${made.url} was created.` }),
              h("p", {}, h("a", { href: `#/endpoint/${enc(made.id)}`, "data-testid": "endpoint-open" }, "Open the endpoint"), " to send it a test notification."),
            ),
          );
          await load();
        }),
      },
      field("URL", url, "An https URL of your backend; Tether POSTs each event to it, signed."),
      field("Description (optional)", description),
      picker.element,
      formProblem,
      h("div", { class: "actions" }, submit),
    );
  }

  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Notifications"), newButton("New endpoint", createForm, { testid: "new-endpoint" })),
    h(
      "p",
      { class: "muted" },
      "Tether tells your backend what happened (a connection in error, a flow run that failed, …) by POSTing signed events to its endpoints, retrying until they answer 2xx.",
    ),
    typesProblem,
    created,
    card(null, problem, list),
  );
  await load();
}
