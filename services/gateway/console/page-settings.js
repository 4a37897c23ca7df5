// @ts-check
// Settings: workspace name, customer fields schema, signing secret; test customer.

import { ApiError, enc, get, patch, post } from "./api.js";
import { fmtDate, h, mount, pretty } from "./dom.js";
import {
  action, errorBox, field, InputError, readOptionalJSON, showError, statusLine,
} from "./forms.js";
import { card, confirmButton, copyButton, copyValue, newButton, readonlyText, tabs } from "./widgets.js";
/** @import { SecretRotated, TestCustomerToken, Workspace } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */

/** @typedef {{ws: Workspace}} State the workspace as last read or saved, shared by the panels */

/** The identity service's test customer while the settings name none. */
const DEFAULT_TEST_CUSTOMER_ID = "test-customer";

const SCHEMA_PLACEHOLDER = pretty({
  type: "object",
  properties: { plan: { type: "string" } },
  required: [],
});

/**
 * Tell the shell the workspace changed (it shows the name).
 * @param {Workspace} ws
 */
function announce(ws) {
  document.dispatchEvent(new CustomEvent("tether:workspace", { detail: ws }));
}

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  /** @type {Workspace} */
  const ws = await get("/workspace", { signal: ctx.signal });
  /** @type {State} */
  const state = { ws };
  /** @type {Record<string, HTMLElement[]>} panels are built once, so switching tabs keeps unsaved edits */
  const built = {};
  const view = tabs(
    [
      { key: "general", label: "General", testid: "tab-general" },
      { key: "testing", label: "Testing", testid: "tab-testing" },
    ],
    (key, panel) => {
      built[key] = built[key] || (key === "testing" ? testingPanel(state) : generalPanel(state));
      mount(panel, built[key]);
    },
  );
  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Settings"), h("span", { class: "muted workspace-key" }, "Workspace key ", copyValue(ws.key, { testid: "workspace-key" }))),
    view.el,
  );
  view.select(params.tab === "testing" ? "testing" : "general");
}

// --- General -----------------------------------------------------------------------------

/** @param {State} state */
function generalPanel(state) {
  return [nameCard(state), schemaCard(state), secretCard(state)];
}

/** @param {State} state */
function nameCard(state) {
  const input = h("input", { type: "text", "data-testid": "ws-name", value: state.ws.name, maxlength: 200, required: true, autocomplete: "off" });
  const saved = statusLine({ "data-testid": "ws-saved" });
  const problem = errorBox(null, { "data-testid": "ws-error" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "ws-save" }, "Save name");
  const form = h(
    "form",
    {
      onsubmit: action({ button, problem, status: saved }, async () => {
        const name = input.value.trim();
        if (!name) throw new InputError("The workspace name cannot be empty.", input);
        state.ws = await patch("/workspace", { name });
        announce(state.ws);
        saved.set("Saved");
      }),
    },
    field("Workspace name", input),
    problem,
    h("div", { class: "actions" }, button, saved),
  );
  return card("Workspace", form);
}

/** @param {State} state */
function schemaCard(state) {
  const schema = state.ws.settings?.customerFieldsSchema;
  const area = h("textarea", {
    "data-testid": "fields-schema",
    class: "code tall",
    spellcheck: "false",
    rows: 14,
    placeholder: SCHEMA_PLACEHOLDER,
    value: schema ? pretty(schema) : "",
  });
  const problem = errorBox(null, { "data-testid": "fields-error" });
  const saved = statusLine({ "data-testid": "fields-saved" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "fields-save" }, "Save schema");
  const form = h(
    "form",
    {
      onsubmit: action({ button, problem, status: saved }, async () => {
        const schema = readOptionalJSON(area);
        state.ws = await patch("/workspace", { settings: { customerFieldsSchema: schema } });
        const now = state.ws.settings?.customerFieldsSchema;
        area.value = now ? pretty(now) : "";
        saved.set("Saved");
      }),
    },
    field(
      "Customer fields schema (JSON Schema)",
      area,
      "Customers' fields (from their tokens or the API) are checked against this schema. Leave empty for no schema.",
    ),
    problem,
    h("div", { class: "actions" }, button, saved),
  );
  return card("Customer fields", form);
}

/** @param {State} state */
function secretCard(state) {
  const result = h("div", { class: "secret-box" });
  const problem = errorBox(null, { "data-testid": "rotate-error" });
  const graceHours = Math.round((state.ws.settings?.secretGrace ?? 86400) / 360) / 10;
  const rotate = confirmButton({
    label: "Rotate secret",
    confirmLabel: "Rotate now",
    question: `Tokens signed with the current secret keep working for ${graceHours} h. Rotate?`,
    testid: "rotate-secret",
    action: action({ problem }, async () => {
      /** @type {SecretRotated} */
      const reply = await post("/workspace/secret/rotate", {});
      const secret = readonlyText(reply.secret, { "data-testid": "new-secret", rows: 2 });
      const label = h("label", { for: "new-secret-value" }, "New signing secret (shown once — store it now)");
      secret.id = "new-secret-value";
      mount(
        result,
        h(
          "div",
          { class: "success" },
          h("p", {}, "The secret was rotated."),
        ),
        h("div", { class: "field" }, label, secret),
        h("div", { class: "actions" }, copyButton(secret, { "data-testid": "new-secret-copy" })),
        h(
          "p",
          { class: "muted small" },
          "The previous secret verifies tokens until ",
          h("time", { datetime: reply.previousSecretExpiresAt, "data-testid": "previous-secret-expires" }, fmtDate(reply.previousSecretExpiresAt)),
          ".",
        ),
      );
      secret.focus();
      secret.select();
    }),
  });
  return card(
    "Signing secret",
    h("p", { class: "muted" }, "Your backend signs customer tokens with this secret (HS256). It is never shown again after a rotation."),
    h("div", { class: "actions" }, rotate),
    problem,
    result,
  );
}

// --- Testing -------------------------------------------------------------------------------

/** @param {State} state */
function testingPanel(state) {
  const customer = testCustomerCard(state);
  return [customer.card, testTokenCard(customer.showProblem)];
}

/**
 * Whether an API error is about the test customer's settings (it belongs by their form).
 * @param {unknown} err
 * @returns {err is ApiError}
 */
function aboutTestCustomer(err) {
  return (
    err instanceof ApiError &&
    Array.isArray(err.details) &&
    err.details.some((d) => typeof d?.field === "string" && d.field.startsWith("settings.testCustomer"))
  );
}

/**
 * The test customer (the default one until set) with an "Edit test customer" form behind a
 * button, and a way to show an error about it in that form.
 * @param {State} state
 * @returns {{card: HTMLElement, showProblem: (err: ApiError) => void}}
 */
function testCustomerCard(state) {
  const id = h("input", { type: "text", "data-testid": "test-id", placeholder: "test-customer", maxlength: 256, autocomplete: "off" });
  const name = h("input", { type: "text", "data-testid": "test-name", placeholder: "Test customer", autocomplete: "off" });
  const fields = h("textarea", { "data-testid": "test-fields", class: "code", spellcheck: "false", rows: 6 });
  const problem = errorBox(null, { "data-testid": "test-error" });
  const saved = statusLine({ "data-testid": "test-saved" });
  const summary = h("div", { "data-testid": "test-customer" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "test-save" }, "Save test customer");
  const current = () => state.ws.settings?.testCustomer || null;
  const drawSummary = () => {
    const tc = current();
    const customerId = tc?.id ?? DEFAULT_TEST_CUSTOMER_ID;
    mount(
      summary,
      h(
        "dl",
        { class: "meta" },
        h("dt", {}, "Id"),
        h("dd", { "data-testid": "test-customer-id" }, copyValue(customerId, { href: `#/customers/${enc(customerId)}` }), tc ? null : h("span", { class: "muted small" }, " (the default)")),
        h("dt", {}, "Name"),
        h("dd", {}, tc ? tc.name || "—" : "Test Customer"),
        h("dt", {}, "Fields"),
        h("dd", {}, tc && Object.keys(tc.fields || {}).length ? h("pre", {}, pretty(tc.fields)) : h("span", { class: "muted" }, "none")),
      ),
    );
  };
  /** @param {() => void} close */
  const form = (close) => {
    const tc = current();
    id.value = tc?.id ?? "";
    name.value = tc?.name ?? "";
    fields.value = pretty(tc?.fields ?? {});
    showError(problem, null);
    return h(
      "form",
      {
        onsubmit: action({ button, problem }, async () => {
          const customerId = id.value.trim();
          if (!customerId) throw new InputError("The test customer needs an id.", id);
          const values = readOptionalJSON(fields, "Fields") ?? {};
          state.ws = await patch("/workspace", {
            settings: { testCustomer: { id: customerId, name: name.value.trim() || null, fields: values } },
          });
          drawSummary();
          close();
          saved.set("Saved");
        }),
      },
      h("div", { class: "form-row" }, field("Test customer id", id), field("Name", name)),
      field("Fields (JSON)", fields, "Sent as the customer's fields; checked against the customer fields schema."),
      problem,
      h("div", { class: "actions" }, button),
    );
  };
  const editor = newButton("Edit test customer", (close) => {
    saved.set("");
    return form(close);
  }, { testid: "edit-test-customer" });
  drawSummary();
  const showProblem = (/** @type {ApiError} */ err) => {
    editor.open();
    showError(problem, err);
    saved.set("");
    fields.focus();
  };
  return {
    card: card(
      "Test customer",
      h(
        "p",
        { class: "muted" },
        "The customer your team uses to try integrations: the Connections page connects accounts for it, and you can mint a token for it below.",
      ),
      summary,
      saved,
      editor,
    ),
    showProblem,
  };
}

/** @param {(err: ApiError) => void} showAtTestCustomer shows an error about the test customer by their form */
function testTokenCard(showAtTestCustomer) {
  const out = h("div", {});
  const problem = errorBox(null, { "data-testid": "test-token-error" });
  const button = h("button", { type: "button", class: "primary", "data-testid": "test-token" }, "Get test customer token");
  button.onclick = action({ button, problem }, async () => {
    /** @type {TestCustomerToken} */
    let reply;
    try {
      reply = await post("/workspace/test-customer/token", {});
    } catch (err) {
      if (!aboutTestCustomer(err)) throw err;
      mount(out, h("p", { class: "muted" }, "Fix the test customer above, then try again."));
      showAtTestCustomer(err); // e.g. a field the customer fields schema requires
      return;
    }
    const area = readonlyText(reply.token, { "data-testid": "test-token-value", rows: 5 });
    mount(
      out,
      field("Test customer token", area, `For customer ${reply.customer?.id ?? ""}; expires ${fmtDate(reply.expiresAt)}.`),
      h("div", { class: "actions" }, copyButton(area, { "data-testid": "test-token-copy" })),
      h(
        "p",
        { class: "muted small" },
        "Try it: ",
        h("code", {}, `curl -H "Authorization: Bearer $TOKEN" ${location.origin}/connections`),
      ),
    );
  });
  return card(
    "Test customer token",
    h("p", { class: "muted" }, "A one-hour token that acts as the test customer (what your app's frontend would hold)."),
    h("div", { class: "actions" }, button),
    problem,
    out,
  );
}
