// @ts-check
// Integrations: the list, a "New integration" form (from the catalogue, or with an auth spec
// edited in the form of its auth type), and an edit panel per key.

import { del, enc, get, isAbort, patch, post } from "./api.js";
import { fmtDate, h, mount, pretty } from "./dom.js";
import { action, errorBox, field, statusLine } from "./forms.js";
import { loadTypes, typedForm, withoutKeys } from "./typed-form.js";
import { badge, card, confirmButton, copyValue, emptyState, loading, newButton, table } from "./widgets.js";
/** @import { Integration, Page, Template } from "./api-types.js" */
/** @import { SchemaType } from "./typed-form.js" */

/** The client id is a field of its own (beside the secret), not part of the auth form. */
const OWN_FIELDS = ["clientId"];

/** The curl line of the empty state: an integration created through the API. */
const CURL_BODY = { key: "hubspot", template: "hubspot", clientId: "<client id>", clientSecret: "<client secret>" };
/** @import { PageContext, PageParams } from "./app.js" */

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const editBox = h("div", {});
  const listBox = h("div", {});
  const head = h("div", { class: "page-head" }, h("h1", {}, "Integrations"));
  mount(root, head, editBox, card(null, listBox));
  /** @type {Promise<Page<Integration>>} */
  const listed = get("/integrations", { signal: ctx.signal });
  /** @type {Promise<Page<Template>>} */
  const catalogue = get("/integration-templates", { signal: ctx.signal });
  /** @type {Promise<{items: SchemaType[], error: unknown}>} */
  const authTypesRead = loadTypes("/integration-auth-types", ctx.signal);
  const [list, templates, authTypes] = await Promise.allSettled([listed, catalogue, authTypesRead]);
  if (!ctx.alive) return;
  if (list.status === "rejected") throw list.reason;
  const types = authTypes.status === "fulfilled" ? authTypes.value.items : [];
  const items = list.value.items;
  const create = newButton("New integration", () => createForm(templates, types, ctx), { testid: "new-integration" });
  head.append(create);
  if (items.length) {
    mount(listBox, listView(items, params.id));
  } else {
    const curl = `curl -X POST ${location.origin}/integrations -H "Authorization: Bearer $TETHER_ADMIN_TOKEN" -H 'Content-Type: application/json' -d '${JSON.stringify(CURL_BODY)}'`;
    mount(
      listBox,
      emptyState("No integrations yet.", {
        hint: "An integration is an external app your customers connect: pick one from the catalogue or describe its auth. Or create it through the API:",
        button: h("button", {
          type: "button",
          class: "secondary",
          "data-testid": "empty-new-integration",
          onclick: () => create.open(),
        }, "New integration"),
        curl,
        testid: "integrations-empty",
      }),
    );
  }
  if (params.id) {
    mount(editBox, loading());
    try {
      /** @type {Integration} */
      const integration = await get(`/integrations/${enc(params.id)}`, { signal: ctx.signal });
      mount(editBox, editCard(integration, types, ctx));
    } catch (err) {
      if (!isAbort(err)) mount(editBox, card(`Integration ${params.id}`, errorBox(err)));
    }
  }
}

/**
 * @param {Integration[]} items
 * @param {string | undefined} selected the key being edited
 */
function listView(items, selected) {
  const rows = items.map((i) =>
    h(
      "tr",
      { "data-testid": "integration-row", class: i.key === selected ? "selected" : "" },
      h("td", { class: "nowrap" }, h("a", { href: `#/integrations/${enc(i.key)}`, "data-testid": "integration-link" }, i.name)),
      h("td", {}, copyValue(i.key, { testid: "integration-key" })),
      h("td", {}, i.template || h("span", { class: "muted" }, "custom")),
      h("td", {}, i.auth?.type || ""),
      h("td", {}, i.clientSecretSet ? badge("set", "ok") : h("span", { class: "muted" }, "not set")),
      h("td", { class: "nowrap" }, fmtDate(i.updatedAt)),
    ),
  );
  return table(["Name", "Key", "Template", "Auth", "Client secret", "Updated"], rows);
}

/**
 * The "New integration" form: key and name, a template from the catalogue or an auth spec
 * (type select → the form of that auth type), client id and secret.
 * @param {PromiseSettledResult<Page<Template>>} templates
 * @param {SchemaType[]} authTypes
 * @param {PageContext} ctx
 */
function createForm(templates, authTypes, ctx) {
  const key = h("input", { type: "text", "data-testid": "int-key", required: true, autocomplete: "off", placeholder: "hubspot" });
  const name = h("input", { type: "text", "data-testid": "int-name", autocomplete: "off", maxlength: 200 });
  const items = templates.status === "fulfilled" ? templates.value.items : [];
  const ownAuth = h("input", { type: "checkbox", "data-testid": "int-auth-own", checked: true });
  const auth = typedForm(authTypes, { value: { type: authTypes.some((t) => t.type === "oauth2") ? "oauth2" : authTypes[0]?.type ?? "api_key" }, testid: "int-auth", label: "Auth", omit: OWN_FIELDS });
  const authBox = h("div", { class: "auth-box", "data-testid": "int-auth-box" }, auth.element);
  // Without a template the auth is required (no checkbox); with one it overrides, if asked.
  const ownAuthLabel = h("label", { class: "checkbox" }, ownAuth, " Override the template's auth");
  ownAuthLabel.hidden = true;
  const syncAuth = () => {
    authBox.hidden = !ownAuth.checked;
  };
  ownAuth.addEventListener("change", syncAuth);
  const template = h(
    "select",
    {
      "data-testid": "int-template",
      onchange: () => {
        const t = items.find((x) => x.key === template.value);
        if (t && !key.value.trim()) key.value = t.key;
        if (t && !name.value.trim()) name.value = t.name;
        ownAuth.checked = !t;
        ownAuthLabel.hidden = !t;
        syncAuth();
      },
    },
    h("option", { value: "" }, "— none: describe the auth below —"),
    items.map((t) => h("option", { value: t.key }, `${t.name} (${t.authType})`)),
  );
  const clientId = h("input", { type: "text", "data-testid": "int-client-id", autocomplete: "off" });
  const clientSecret = h("input", { type: "password", "data-testid": "int-client-secret", autocomplete: "new-password" });
  const problem = errorBox(null, { "data-testid": "int-error" });
  const templatesProblem = templates.status === "rejected" ? errorBox(templates.reason) : null;
  const button = h("button", { type: "submit", class: "primary", "data-testid": "int-create" }, "Create integration");
  return h(
    "form",
    {
      novalidate: true,
      onsubmit: action({ button, problem }, async () => {
        /** @type {Record<string, unknown>} */
        const body = { key: key.value.trim() };
        if (name.value.trim()) body.name = name.value.trim();
        if (template.value) body.template = template.value;
        if (clientId.value.trim()) body.clientId = clientId.value.trim();
        if (clientSecret.value) body.clientSecret = clientSecret.value;
        if (ownAuth.checked) body.auth = auth.read();
        /** @type {Integration} */
        const created = await post("/integrations", body);
        clientSecret.value = "";
        ctx.navigate(`#/integrations/${enc(created.key)}`);
      }),
    },
    templatesProblem,
    h("div", { class: "form-row" }, field("Key", key, "Lowercase letters, digits, - and _."), field("Name", name)),
    field("Template", template, "An app from the catalogue; its auth and API settings are filled in for you."),
    h("div", { class: "form-row" }, field("Client id", clientId), field("Client secret", clientSecret, "Write-only: never shown again.")),
    ownAuthLabel,
    authBox,
    problem,
    h("div", { class: "actions" }, button),
  );
}

/**
 * @param {Integration} integration
 * @param {SchemaType[]} authTypes
 * @param {PageContext} ctx
 */
function editCard(integration, authTypes, ctx) {
  const original = {
    name: integration.name,
    clientId: integration.auth?.clientId ?? "",
    auth: JSON.stringify(withoutKeys(integration.auth, OWN_FIELDS)),
  };
  const name = h("input", { type: "text", "data-testid": "edit-name", value: integration.name, maxlength: 200, autocomplete: "off" });
  const clientId = h("input", { type: "text", "data-testid": "edit-client-id", value: original.clientId, autocomplete: "off" });
  const clientSecret = h("input", {
    type: "password",
    "data-testid": "edit-client-secret",
    autocomplete: "new-password",
    placeholder: integration.clientSecretSet ? "set — leave empty to keep" : "not set",
  });
  const secretState = h(
    "span",
    { "data-testid": "secret-set" },
    integration.clientSecretSet ? badge("set", "ok") : badge("not set"),
  );
  let auth = typedForm(authTypes, { value: integration.auth, testid: "edit-auth", label: "Auth", omit: OWN_FIELDS });
  const authBox = h("div", { class: "auth-box" }, auth.element);
  const problem = errorBox(null, { "data-testid": "edit-error" });
  const saved = statusLine({ "data-testid": "edit-saved" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "edit-save" }, "Save changes");
  const deleteProblem = errorBox(null, { "data-testid": "delete-error" });
  const remove = confirmButton({
    label: "Delete integration",
    confirmLabel: "Delete",
    question: "Delete this integration? Only possible without live connections.",
    testid: "int-delete",
    cls: "secondary",
    action: action({ problem: deleteProblem }, async () => {
      await del(`/integrations/${enc(integration.key)}`);
      ctx.navigate("#/integrations");
    }),
  });
  const form = h(
    "form",
    {
      novalidate: true,
      onsubmit: action({ button, problem, status: saved }, async () => {
        /** @type {Record<string, unknown>} */
        const body = {};
        if (name.value.trim() && name.value.trim() !== original.name) body.name = name.value.trim();
        if (clientId.value.trim() !== original.clientId) body.clientId = clientId.value.trim() || null;
        if (clientSecret.value) body.clientSecret = clientSecret.value;
        const authNow = auth.read();
        if (JSON.stringify(authNow) !== original.auth) body.auth = { ...authNow, ...(clientId.value.trim() ? { clientId: clientId.value.trim() } : {}) };
        if (!Object.keys(body).length) {
          saved.set("Nothing changed");
          return;
        }
        /** @type {Integration} */
        const updated = await patch(`/integrations/${enc(integration.key)}`, body);
        clientSecret.value = "";
        original.name = updated.name;
        original.clientId = updated.auth?.clientId ?? "";
        original.auth = JSON.stringify(withoutKeys(updated.auth, OWN_FIELDS));
        name.value = updated.name;
        clientId.value = original.clientId;
        auth = typedForm(authTypes, { value: updated.auth, testid: "edit-auth", label: "Auth", omit: OWN_FIELDS });
        mount(authBox, auth.element);
        clientSecret.placeholder = updated.clientSecretSet ? "set — leave empty to keep" : "not set";
        mount(secretState, updated.clientSecretSet ? badge("set", "ok") : badge("not set"));
        saved.set("Saved");
      }),
    },
    h("div", { class: "form-row" }, field("Name", name), field("Client id", clientId)),
    h(
      "div",
      { class: "field" },
      h("label", { for: "edit-client-secret" }, "Client secret ", secretState),
      clientSecret,
      h("p", { class: "hint" }, "Leave empty to keep the current secret. It is write-only."),
    ),
    h("h3", {}, "Auth"),
    h("p", { class: "hint" }, "The auth spec (type, URLs, scopes…); the client id is the field above."),
    authBox,
    problem,
    h("div", { class: "actions" }, button, saved),
  );
  clientSecret.id = "edit-client-secret";
  return card(
    null,
    h("div", { class: "page-head" }, h("h2", {}, `Edit ${integration.name}`), copyValue(integration.key, { testid: "edit-key" }), h("a", { href: "#/integrations", class: "small" }, "close")),
    h("p", { class: "muted small" }, `Template: ${integration.template || "custom"} · updated ${fmtDate(integration.updatedAt)}`),
    form,
    integration.api ? [h("h3", {}, "API"), h("pre", {}, pretty(integration.api))] : null,
    integration.test ? [h("h3", {}, "Test request"), h("pre", {}, pretty(integration.test))] : null,
    h("h3", {}, "Danger zone"),
    h("div", { class: "actions" }, remove),
    deleteProblem,
  );
}
