// Settings: workspace name, customer fields schema, signing secret; test customer.

import { get, patch, post } from "./api.js";
import {
  card, confirmButton, copyButton, errorBox, field, fmtDate, h, mount, parseJSON, pretty,
  readonlyText, showError, statusLine, tabs,
} from "./dom.js";

const SCHEMA_PLACEHOLDER = pretty({
  type: "object",
  properties: { plan: { type: "string" } },
  required: [],
});

function announce(ws) {
  document.dispatchEvent(new CustomEvent("tether:workspace", { detail: ws }));
}

export async function render(root, params, ctx) {
  const ws = await get("/workspace", { signal: ctx.signal });
  const state = { ws };
  const built = {}; // panels are built once, so switching tabs keeps unsaved edits
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
    h("div", { class: "page-head" }, h("h1", {}, "Settings"), h("span", { class: "muted" }, "Workspace ", h("code", {}, ws.key))),
    view.el,
  );
  view.select(params.tab === "testing" ? "testing" : "general");
}

// --- General -----------------------------------------------------------------------------

function generalPanel(state) {
  return [nameCard(state), schemaCard(state), secretCard(state)];
}

function nameCard(state) {
  const input = h("input", { type: "text", "data-testid": "ws-name", value: state.ws.name, maxlength: 200, required: true, autocomplete: "off" });
  const saved = statusLine({ "data-testid": "ws-saved" });
  const problem = errorBox(null, { "data-testid": "ws-error" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "ws-save" }, "Save name");
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        saved.set("");
        showError(problem, null);
        const name = input.value.trim();
        if (!name) {
          showError(problem, "The workspace name cannot be empty.");
          return;
        }
        button.disabled = true;
        try {
          state.ws = await patch("/workspace", { name });
          announce(state.ws);
          saved.set("Saved");
        } catch (err) {
          showError(problem, err);
        } finally {
          button.disabled = false;
        }
      },
    },
    field("Workspace name", input),
    problem,
    h("div", { class: "actions" }, button, saved),
  );
  return card("Workspace", form);
}

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
      onsubmit: async (event) => {
        event.preventDefault();
        saved.set("");
        showError(problem, null);
        const parsed = parseJSON(area.value, { allowEmpty: true });
        if (parsed.error) {
          showError(problem, parsed.error);
          area.focus();
          return;
        }
        button.disabled = true;
        try {
          state.ws = await patch("/workspace", { settings: { customerFieldsSchema: parsed.value } });
          const now = state.ws.settings?.customerFieldsSchema;
          area.value = now ? pretty(now) : "";
          saved.set("Saved");
        } catch (err) {
          showError(problem, err);
        } finally {
          button.disabled = false;
        }
      },
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

function secretCard(state) {
  const result = h("div", { class: "secret-box" });
  const problem = errorBox(null, { "data-testid": "rotate-error" });
  const graceHours = Math.round((state.ws.settings?.secretGrace ?? 86400) / 360) / 10;
  const rotate = confirmButton({
    label: "Rotate secret",
    confirmLabel: "Rotate now",
    question: `Tokens signed with the current secret keep working for ${graceHours} h. Rotate?`,
    testid: "rotate-secret",
    action: async () => {
      showError(problem, null);
      try {
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
      } catch (err) {
        showError(problem, err);
      }
    },
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

function testingPanel(state) {
  return [testCustomerCard(state), testTokenCard()];
}

function testCustomerCard(state) {
  const tc = state.ws.settings?.testCustomer || null;
  const id = h("input", { type: "text", "data-testid": "test-id", value: tc?.id ?? "", placeholder: "test-customer", maxlength: 256, autocomplete: "off" });
  const name = h("input", { type: "text", "data-testid": "test-name", value: tc?.name ?? "", placeholder: "Test customer", autocomplete: "off" });
  const fields = h("textarea", {
    "data-testid": "test-fields",
    class: "code",
    spellcheck: "false",
    rows: 8,
    value: pretty(tc?.fields ?? {}),
  });
  const problem = errorBox(null, { "data-testid": "test-error" });
  const saved = statusLine({ "data-testid": "test-saved" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "test-save" }, "Save test customer");
  const form = h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        saved.set("");
        showError(problem, null);
        const customerId = id.value.trim();
        if (!customerId) {
          showError(problem, "The test customer needs an id.");
          id.focus();
          return;
        }
        const parsed = parseJSON(fields.value.trim() ? fields.value : "{}");
        if (parsed.error) {
          showError(problem, `Fields: ${parsed.error}`);
          fields.focus();
          return;
        }
        button.disabled = true;
        try {
          state.ws = await patch("/workspace", {
            settings: { testCustomer: { id: customerId, name: name.value.trim() || null, fields: parsed.value } },
          });
          saved.set("Saved");
        } catch (err) {
          showError(problem, err);
        } finally {
          button.disabled = false;
        }
      },
    },
    h(
      "p",
      { class: "muted" },
      "The customer your team uses to try integrations: the Connections page connects accounts for it, and you can mint a token for it below.",
    ),
    h("div", { class: "form-row" }, field("Test customer id", id), field("Name", name)),
    field("Fields (JSON)", fields, "Sent as the customer's fields; checked against the customer fields schema."),
    problem,
    h("div", { class: "actions" }, button, saved),
  );
  return card("Test customer", form);
}

function testTokenCard() {
  const out = h("div", {});
  const problem = errorBox(null, { "data-testid": "test-token-error" });
  const button = h(
    "button",
    {
      type: "button",
      class: "primary",
      "data-testid": "test-token",
      onclick: async () => {
        showError(problem, null);
        button.disabled = true;
        try {
          const reply = await post("/workspace/test-customer/token", {});
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
        } catch (err) {
          showError(problem, err);
        } finally {
          button.disabled = false;
        }
      },
    },
    "Get test customer token",
  );
  return card(
    "Test customer token",
    h("p", { class: "muted" }, "A one-hour token that acts as the test customer (what your app's frontend would hold)."),
    h("div", { class: "actions" }, button),
    problem,
    out,
  );
}
