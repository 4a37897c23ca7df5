// @ts-check
// Customers: search, a page of customers at a time, and a "New customer" form behind a button.

import { enc, get, isAbort, post } from "./api.js";
import { fmtDate, h, mount } from "./dom.js";
import { action, errorBox, field, InputError, readOptionalJSON } from "./forms.js";
import { badge, card, copyValue, emptyRow, emptyState, loading, newButton, table } from "./widgets.js";
/** @import { Customer, Page } from "./api-types.js" */
/** @import { PageContext, PageParams } from "./app.js" */

const PAGE_SIZE = 50;

/**
 * The curl line that creates a customer through the API, for this gateway.
 * @param {string} [id]
 */
export function createCustomerCurl(id = "cus_1") {
  return `curl -X POST ${location.origin}/customers -H "Authorization: Bearer $TETHER_ADMIN_TOKEN" -H 'Content-Type: application/json' -d '${JSON.stringify({ id, name: "Ada" })}'`;
}

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  /** @type {{search: string, cursors: (string | null | undefined)[], page: number, seq: number}} */
  const state = { search: params.query.get("search") || "", cursors: [null], page: 0, seq: 0 };
  const results = h("div", { "aria-live": "polite" });
  const search = h("input", {
    type: "search",
    "data-testid": "customer-search",
    value: state.search,
    placeholder: "Id or name starts with…",
    autocomplete: "off",
  });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let debounce;
  const startSearch = () => {
    state.search = search.value.trim();
    state.cursors = [null];
    state.page = 0;
    load();
  };
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(startSearch, 300);
  });
  ctx.onLeave(() => clearTimeout(debounce));
  const create = newButton("New customer", (close) => createForm(ctx, close));

  async function load() {
    const seq = ++state.seq;
    mount(results, loading());
    try {
      /** @type {Page<Customer>} */
      const page = await get("/customers", {
        query: { search: state.search, limit: PAGE_SIZE, cursor: state.cursors[state.page] },
        signal: ctx.signal,
      });
      if (seq !== state.seq) return;
      state.cursors[state.page + 1] = page.cursor;
      mount(results, listView(page));
    } catch (err) {
      if (isAbort(err) || seq !== state.seq) return;
      mount(results, errorBox(err));
    }
  }

  /** @param {Page<Customer>} page */
  function listView(page) {
    if (!page.items.length && !state.search && state.page === 0) {
      return emptyState("No customers yet.", {
        hint: "Customers appear when your backend creates them, or the first time a token names one. Create one here, or with:",
        curl: createCustomerCurl(),
        button: h("button", { type: "button", class: "secondary", "data-testid": "empty-new-customer", onclick: () => create.open() }, "New customer"),
        testid: "customers-empty",
      });
    }
    const rows = page.items.map((c) =>
      h(
        "tr",
        { "data-testid": "customer-row" },
        h("td", { class: "id-cell", "data-testid": "customer-id-cell" }, copyValue(c.id, { href: `#/customers/${enc(c.id)}`, testid: "customer-id" })),
        h("td", { class: "name-cell" }, c.name || h("span", { class: "muted" }, "—")),
        h(
          "td",
          {},
          c.fieldsValid === false ? badge("invalid fields", "bad") : null,
          c.archived ? badge("archived") : null,
        ),
        h("td", { class: "nowrap", "data-label": "Created" }, fmtDate(c.createdAt)),
      ),
    );
    const pager = h(
      "div",
      { class: "pager" },
      state.page > 0
        ? h("button", { type: "button", class: "secondary", "data-testid": "customers-prev", onclick: () => { state.page -= 1; load(); } }, "Previous page")
        : null,
      page.cursor
        ? h("button", { type: "button", class: "secondary", "data-testid": "customers-next", onclick: () => { state.page += 1; load(); } }, "Next page")
        : null,
    );
    return [
      table(["Id", "Name", "", "Created"], rows.length ? rows : [emptyRow(4, "No customer matches.")], { "data-testid": "customers-table", class: "stack-on-phone" }),
      pager,
    ];
  }

  mount(
    root,
    h("div", { class: "page-head" }, h("h1", {}, "Customers"), create),
    card(
      null,
      h(
        "form",
        { role: "search", onsubmit: (event) => { event.preventDefault(); clearTimeout(debounce); startSearch(); } },
        field("Search customers", search),
      ),
      results,
    ),
  );
  await load();
}

/**
 * @param {PageContext} ctx
 * @param {() => void} close
 */
function createForm(ctx, close) {
  const id = h("input", { type: "text", "data-testid": "new-customer-id", required: true, maxlength: 256, autocomplete: "off", placeholder: "cus_1" });
  const name = h("input", { type: "text", "data-testid": "new-customer-name", maxlength: 512, autocomplete: "off" });
  const fields = h("textarea", { "data-testid": "new-customer-fields", class: "code", spellcheck: "false", rows: 3, placeholder: '{"plan": "pro"}' });
  const problem = errorBox(null, { "data-testid": "new-customer-error" });
  const button = h("button", { type: "submit", class: "primary", "data-testid": "new-customer-create" }, "Create customer");
  return h(
    "form",
    {
      onsubmit: action({ button, problem }, async () => {
        const customerId = id.value.trim();
        if (!customerId) throw new InputError("Enter the id your app uses for this customer.", id);
        const values = readOptionalJSON(fields, "Fields");
        /** @type {Customer} */
        const created = await post("/customers", { id: customerId, name: name.value.trim() || null, fields: values ?? {} });
        close();
        ctx.navigate(`#/customers/${enc(created.id)}`);
      }),
    },
    h("div", { class: "form-row" }, field("Customer id", id, "The id your app uses for them."), field("Name (optional)", name)),
    field("Fields (optional JSON)", fields, "Checked against the customer fields schema (Settings)."),
    problem,
    h("div", { class: "actions" }, button),
  );
}
