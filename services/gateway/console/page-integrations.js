// @ts-check
// Integrations: the list, a create form (from the catalogue), and an edit panel per key.

import { del, enc, get, isAbort, patch, post } from "./api.js";
import { fmtDate, h, mount, pretty } from "./dom.js";
import { action, errorBox, field, readJSON, statusLine } from "./forms.js";
import { badge, card, confirmButton, emptyRow, loading, table } from "./widgets.js";
/** @import { Integration, Page, Template } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const editBox = h("div", {});
  const listBox = h("div", {});
  const createBox = h("div", {});
  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Integrations")),
    editBox,
    card(null, listBox),
    createBox,
  );
  /** @type {Promise<Page<Integration>>} */
  const listed = get("/integrations", { signal: ctx.signal });
  /** @type {Promise<Page<Template>>} */
  const catalogue = get("/integration-templates", { signal: ctx.signal });
  const [list, templates] = await Promise.allSettled([listed, catalogue]);
  if (!ctx.alive) return;
  if (list.status === "rejected") throw list.reason;
  const items = list.value.items;
  mount(listBox, listView(items, params.id));
  mount(createBox, createCard(templates, ctx));
  if (params.id) {
    mount(editBox, loading());
    try {
      /** @type {Integration} */
      const integration = await get(`/integrations/${enc(params.id)}`, { signal: ctx.signal });
      mount(editBox, editCard(integration, ctx));
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
      h("td", {}, h("a", { href: `#/integrations/${enc(i.key)}` }, h("code", {}, i.key))),
      h("td", {}, i.name),
      h("td", {}, i.template || h("span", { class: "muted" }, "custom")),
      h("td", {}, i.auth?.type || ""),
      h("td", {}, i.clientSecretSet ? badge("set", "ok") : h("span", { class: "muted" }, "not set")),
      h("td", { class: "nowrap" }, fmtDate(i.updatedAt)),
    ),
  );
  return table(
    ["Key", "Name", "Template", "Auth", "Client secret", "Updated"],
    rows.length ? rows : [emptyRow(6, "No integrations yet: create one below.")],
  );
}

/**
 * @param {PromiseSettledResult<Page<Template>>} templates
 * @param {PageContext} ctx
 */
function createCard(templates, ctx) {
  const key = h("input", { type: "text", "data-testid": "int-key", required: true, autocomplete: "off", placeholder: "hubspot" });
  const name = h("input", { type: "text", "data-testid": "int-name", autocomplete: "off", maxlength: 200 });
  const items = templates.status === "fulfilled" ? templates.value.items : [];
  const template = h(
    "select",
    {
      "data-testid": "int-template",
      onchange: () => {
        const t = items.find((x) => x.key === template.value);
        if (t && !key.value.trim()) key.value = t.key;
        if (t && !name.value.trim()) name.value = t.name;
        auth.required = !t;
      },
    },
    h("option", { value: "" }, "— none: give the auth spec below —"),
    items.map((t) => h("option", { value: t.key }, `${t.name} (${t.authType})`)),
  );
  const clientId = h("input", { type: "text", "data-testid": "int-client-id", autocomplete: "off" });
  const clientSecret = h("input", { type: "password", "data-testid": "int-client-secret", autocomplete: "new-password" });
  const auth = h("textarea", {
    "data-testid": "int-auth",
    class: "code",
    rows: 5,
    spellcheck: "false",
    placeholder: pretty({ type: "api_key" }),
  });
  const problem = errorBox(null, { "data-testid": "int-error" });
  const templatesProblem = templates.status === "rejected" ? errorBox(templates.reason) : null;
  const button = h("button", { type: "submit", class: "primary", "data-testid": "int-create" }, "Create integration");
  const form = h(
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
        if (auth.value.trim()) body.auth = readJSON(auth, "Auth spec");
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
    field("Auth spec (JSON, optional with a template)", auth),
    problem,
    h("div", { class: "actions" }, button),
  );
  return card("New integration", form);
}

/**
 * @param {Integration} integration
 * @param {PageContext} ctx
 */
function editCard(integration, ctx) {
  const original = {
    name: integration.name,
    clientId: integration.auth?.clientId ?? "",
    auth: pretty(integration.auth),
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
  const auth = h("textarea", { "data-testid": "edit-auth", class: "code tall", rows: 14, spellcheck: "false", value: original.auth });
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
        if (auth.value.trim() !== original.auth.trim()) body.auth = readJSON(auth, "Auth");
        if (!Object.keys(body).length) {
          saved.set("Nothing changed");
          return;
        }
        /** @type {Integration} */
        const updated = await patch(`/integrations/${enc(integration.key)}`, body);
        clientSecret.value = "";
        original.name = updated.name;
        original.clientId = updated.auth?.clientId ?? "";
        original.auth = pretty(updated.auth);
        name.value = updated.name;
        clientId.value = original.clientId;
        auth.value = original.auth;
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
    field("Auth (JSON)", auth, "The full auth spec (type, URLs, scopes…). A client id above wins over the one here."),
    problem,
    h("div", { class: "actions" }, button, saved),
  );
  clientSecret.id = "edit-client-secret";
  return card(
    null,
    h("div", { class: "page-head" }, h("h2", {}, `Edit ${integration.name}`), h("code", {}, integration.key), h("a", { href: "#/integrations", class: "small" }, "close")),
    h("p", { class: "muted small" }, `Template: ${integration.template || "custom"} · updated ${fmtDate(integration.updatedAt)}`),
    form,
    integration.api ? [h("h3", {}, "API"), h("pre", {}, pretty(integration.api))] : null,
    integration.test ? [h("h3", {}, "Test request"), h("pre", {}, pretty(integration.test))] : null,
    h("h3", {}, "Danger zone"),
    h("div", { class: "actions" }, remove),
    deleteProblem,
  );
}
