// @ts-check
// A data-source instance: its sync (state, last pass, a held mass delete to confirm or
// discard, Sync now), the app's records page by page with each record's JSON, the synced
// copy, the fields the connection's app describes, and the field mappings built on them.

import { enc, get, isAbort, post } from "./api.js";
import { fmtDate, h, mount, pretty } from "./dom.js";
import { dataBadge } from "./data-common.js";
import { action, errorBox, showError, statusLine } from "./forms.js";
import { badge, card, confirmButton, copyValue, emptyRow, emptyState, loading, table, tabs } from "./widgets.js";
/** @import { PageContext, PageParams } from "./app.js" */
/** @import { Page } from "./api-types.js" */
/** @import { DataRecord, DataSource, DataSourceInstance, FieldMappingInstance, SyncPass, SyncedRecord, SyncStatus } from "./data-types.js" */

const BUSY = new Set(["queued", "running"]);
const BUSY_MS = 1500; // while a pass is queued or running
const IDLE_MS = 8000; // otherwise, to notice scheduled passes
const SYNCED_PAGE = 25;
const PASSES = 10; // the newest passes shown
const DEFAULT_THRESHOLD = 50; // percent, when the data source has no sync spec (as the service does)

/**
 * @param {HTMLElement} root
 * @param {PageParams} params
 * @param {PageContext} ctx
 */
export async function render(root, params, ctx) {
  const id = params.id ?? "";
  const base = `/data-source-instances/${enc(id)}`;
  /** @type {DataSourceInstance} */
  let instance;
  try {
    instance = await get(base, { signal: ctx.signal });
  } catch (err) {
    if (isAbort(err)) throw err;
    mount(
      root,
      h("div", { class: "page-head" }, h("h1", {}, "Data source")),
      errorBox(err, { "data-testid": "data-source-error" }),
      h("p", {}, h("a", { href: "#/data" }, "Back to the data sources")),
    );
    return;
  }
  /** @type {DataSource | null} */
  let definition = null;
  try {
    definition = await get(`/data-sources/${enc(instance.dataSourceKey)}`, { signal: ctx.signal });
  } catch (err) {
    if (isAbort(err)) throw err; // the definition only adds the sync settings
  }

  const head = h("div", { class: "page-head" });
  const meta = h("dl", { class: "meta data-meta", "data-testid": "data-source-meta" });
  const syncBox = h("div", { "data-testid": "data-source-sync-card" });
  /** @type {(() => void) | null} */
  let timer = null;
  let seq = 0;
  /** @type {{items: SyncPass[], more: boolean} | null} the newest passes (null: unknown) */
  let passes = null;
  let passesKey = "";

  function drawHead() {
    mount(
      head,
      h("h1", {}, "Data source ", h("code", {}, instance.dataSourceKey)),
      dataBadge(instance.status, { "data-testid": "data-source-status" }),
    );
    mount(
      meta,
      h("dt", {}, "Id"), h("dd", {}, copyValue(instance.id, { testid: "data-source-id" })),
      h("dt", {}, "Customer"), h("dd", {}, h("a", { href: `#/customers/${enc(instance.customerId)}` }, instance.customerId)),
      h("dt", {}, "Connection"), h("dd", {}, copyValue(instance.connectionId)),
      definition ? [h("dt", {}, "Integration"), h("dd", {}, `${definition.name} · ${definition.integrationKey}`)] : null,
      h("dt", {}, "Updated"), h("dd", {}, fmtDate(instance.updatedAt)),
      instance.lastError ? [h("dt", {}, "Last error"), h("dd", { class: "text-danger", "data-testid": "data-source-last-error" }, instance.lastError)] : null,
    );
  }

  function drawSync() {
    mount(syncBox, syncCard(instance, definition, base, apply, passes));
  }

  /** Read the newest passes again (on failure the card shows the last pass only). */
  async function loadPasses() {
    const key = passKey(instance.lastPass);
    try {
      /** @type {Page<SyncPass>} */
      const page = await get(`${base}/sync/passes`, { query: { limit: PASSES }, signal: ctx.signal });
      passes = { items: page.items, more: Boolean(page.cursor) };
      passesKey = key;
    } catch (err) {
      if (isAbort(err)) throw err;
      passes = null;
    }
  }

  /** @param {SyncStatus} status */
  async function apply(status) {
    seq += 1; // a refresh already under way would show the state before this one
    instance = { ...instance, syncState: status.syncState, lastPass: status.lastPass };
    if (passKey(instance.lastPass) !== passesKey) await loadPasses();
    if (!ctx.alive) return;
    drawSync();
    schedule();
  }

  function schedule() {
    if (timer) timer();
    timer = ctx.after(BUSY.has(instance.syncState || "") ? BUSY_MS : IDLE_MS, refresh);
  }

  async function refresh() {
    const mine = ++seq;
    try {
      /** @type {DataSourceInstance} */
      const fresh = await get(base, { signal: ctx.signal });
      if (mine !== seq || !ctx.alive) return;
      const changed = JSON.stringify(fresh) !== JSON.stringify(instance);
      instance = fresh;
      // Keep the sync card (and a half-done confirm step) while nothing changed.
      if (changed) {
        if (passKey(instance.lastPass) !== passesKey) await loadPasses();
        if (mine !== seq || !ctx.alive) return;
        drawHead();
        drawSync();
      }
    } catch (err) {
      if (isAbort(err)) return;
    }
    schedule();
  }

  const view = tabs(
    [
      { key: "records", label: "Records in the app", testid: "ds-tab-records" },
      { key: "synced", label: "Synced records", testid: "ds-tab-synced" },
      { key: "fields", label: "Fields", testid: "ds-tab-fields" },
      { key: "mappings", label: "Field mappings", testid: "ds-tab-mappings" },
    ],
    (key, panel) => {
      if (key === "records") recordsBrowser(panel, base, ctx);
      else if (key === "synced") syncedBrowser(panel, base, ctx);
      else if (key === "fields") fieldsView(panel, instance, base, (fresh) => {
        instance = fresh;
        drawHead();
      });
      else mappingsView(panel, instance, ctx);
    },
  );

  await loadPasses();
  drawHead();
  drawSync();
  mount(root, head, card(null, meta), syncBox, card(null, view.el));
  view.select(params.query.get("tab") || "records");
  schedule();
}

// --- sync -------------------------------------------------------------------------------------

/**
 * The sync card: state, Sync now, the last pass, and a held mass delete with Confirm/Discard.
 * @param {DataSourceInstance} instance
 * @param {DataSource | null} definition
 * @param {string} base
 * @param {(status: SyncStatus) => Promise<void>} apply
 * @param {{items: SyncPass[], more: boolean} | null} passes the newest passes, if known
 */
function syncCard(instance, definition, base, apply, passes) {
  const problem = errorBox(null, { "data-testid": "sync-error" });
  const done = statusLine({ "data-testid": "sync-status-line" });
  const state = instance.syncState;
  const spec = definition?.sync;
  const syncNow = h("button", { type: "button", class: "primary", "data-testid": "sync-now", disabled: state === "held" || BUSY.has(state || "") }, "Sync now");
  syncNow.onclick = action({ button: syncNow, problem, status: done }, async () => {
    /** @type {SyncStatus} */
    const status = await post(`${base}/sync`);
    await apply(status);
  });
  const last = instance.lastPass;
  const held = state === "held" && last?.status === "held" ? heldBox(last, spec?.massDeleteThreshold ?? DEFAULT_THRESHOLD, base, apply, problem) : null;
  return card(
    "Sync",
    h(
      "p",
      { class: "sync-summary" },
      state ? dataBadge(state, { "data-testid": "sync-state" }) : dataBadge("no sync", { "data-testid": "sync-state" }),
      " ",
      spec
        ? `${spec.mode === "full" ? "Full" : "Incremental"} passes every ${spec.intervalMinutes} min; a full pass that would delete over ${spec.massDeleteThreshold}% of the records is held for you.`
        : "This data source has no schedule: full passes run when you press Sync now (or call POST …/sync); one that would delete over 50% of the records is held for you.",
    ),
    held,
    h("div", { class: "actions" }, syncNow, done),
    problem,
    h("h3", {}, passes?.more ? `The ${passes.items.length} newest passes` : "Passes"),
    last ? passTable(passes?.items.length ? passes.items : [last]) : emptyState("No pass has run yet.", { testid: "sync-no-pass", hint: "Press Sync now to read every record from the app and store a copy." }),
  );
}

/**
 * A held pass: what it would delete, and the two ways out.
 * @param {SyncPass} pass
 * @param {number} threshold
 * @param {string} base
 * @param {(status: SyncStatus) => Promise<void>} apply
 * @param {HTMLElement} problem
 */
function heldBox(pass, threshold, base, apply, problem) {
  const would = pass.wouldDelete ?? 0;
  const live = pass.liveRecords ?? 0;
  const pct = live ? Math.round((would / live) * 100) : 100;
  const discard = h("button", { type: "button", class: "secondary", "data-testid": "sync-discard" }, "Discard: keep the records");
  discard.onclick = action({ button: discard, problem }, async () => {
    /** @type {SyncStatus} */
    const status = await post(`${base}/sync/discard`);
    await apply(status);
  });
  return h(
    "div",
    { class: "warning held-box", role: "alert", "data-testid": "sync-held" },
    h("p", {}, h("strong", {}, "Mass delete held. "), `The last full pass no longer saw ${would} of the ${live} stored records (${pct}%, over the ${threshold}% threshold). Nothing is deleted until you decide; no pass runs meanwhile.`),
    h("p", { class: "small" }, "Confirm deletes them from the synced copy and sends a data_record.deleted event for each; Discard keeps them and ends the pass."),
    h(
      "div",
      { class: "actions" },
      confirmButton({
        label: `Confirm: delete ${would}`,
        confirmLabel: `Yes, delete ${would} record(s)`,
        testid: "sync-confirm",
        cls: "danger",
        action: async () => {
          showError(problem, null);
          try {
            /** @type {SyncStatus} */
            const status = await post(`${base}/sync/confirm`);
            await apply(status);
          } catch (err) {
            if (!isAbort(err)) showError(problem, err);
          }
        },
      }),
      discard,
    ),
  );
}

/**
 * A pass's identity and progress: when it changes, the list of passes is read again.
 * @param {SyncPass | null | undefined} p
 */
function passKey(p) {
  return p ? `${p.id}:${p.status}:${p.pages}:${p.endedAt}` : "";
}

/**
 * The passes, newest first.
 * @param {SyncPass[]} list
 */
function passTable(list) {
  return table(
    ["Status", "Mode", "Started", "Ended", "Pages", "Records", "Created", "Updated", "Deleted"],
    list.map((p) => [
      h(
        "tr",
        { "data-testid": "sync-pass", "data-pass-id": p.id },
        h("td", {}, dataBadge(p.status, { "data-testid": "sync-pass-status" })),
        h("td", {}, p.mode),
        h("td", { class: "nowrap" }, fmtDate(p.startedAt)),
        h("td", { class: "nowrap" }, fmtDate(p.endedAt)),
        h("td", {}, String(p.pages)),
        h("td", { "data-testid": "sync-pass-records" }, String(p.records)),
        h("td", {}, String(p.created)),
        h("td", {}, String(p.updated)),
        h("td", { "data-testid": "sync-pass-deleted" }, p.status === "held" ? `${p.deleted} (${p.wouldDelete ?? 0} held)` : String(p.deleted)),
      ),
      p.error ? h("tr", { class: "failed" }, h("td", { colspan: 9, class: "text-danger wrap-anywhere", "data-testid": "sync-pass-error" }, p.error)) : null,
    ]),
    { "data-testid": "sync-passes" },
  );
}

// --- records ----------------------------------------------------------------------------------

/**
 * A paged list with Previous/Next over cursors, and the JSON of the record picked.
 * @template {{id: string, data: unknown}} R
 * @param {HTMLElement} panel
 * @param {object} how
 * @param {string} how.prefix test ids: `<prefix>-row`, `<prefix>-next`, `<prefix>-prev`, `<prefix>-page`, `<prefix>-json`
 * @param {string[]} how.headers
 * @param {(item: R) => import("./dom.js").Child[]} how.cells the cells after the id
 * @param {(cursor: string | null) => Promise<{items: R[], cursor: string | null}>} how.fetch
 * @param {import("./dom.js").Child} how.empty
 * @param {PageContext} ctx
 */
function pagedBrowser(panel, { prefix, headers, cells, fetch, empty }, ctx) {
  /** @type {(string | null)[]} */
  const cursors = [null];
  let index = 0;
  let seq = 0;
  const problem = errorBox(null, { "data-testid": `${prefix}-error` });
  const grid = table(["Id", ...headers], [], { "data-testid": `${prefix}-table` });
  const json = h("div", { class: "record-json", "data-testid": `${prefix}-json-box` });
  const label = h("span", { class: "small muted", "data-testid": `${prefix}-page` });
  const prev = h("button", { type: "button", class: "secondary", "data-testid": `${prefix}-prev`, onclick: () => go(index - 1) }, "Previous");
  const next = h("button", { type: "button", class: "secondary", "data-testid": `${prefix}-next`, onclick: () => go(index + 1) }, "Next");
  const again = h("button", { type: "button", class: "secondary", "data-testid": `${prefix}-reload`, title: "Read this page again", onclick: () => go(index) }, "Reload");
  const body = h("div", { class: "records-layout" }, h("div", {}, grid, h("div", { class: "pager" }, prev, label, next, again)), json);

  /** @param {number} to */
  async function go(to) {
    const mine = ++seq;
    prev.disabled = true;
    next.disabled = true;
    mount(grid.tbody, emptyRow(headers.length + 1, "Loading…"));
    try {
      const page = await fetch(cursors[to]);
      if (mine !== seq || !ctx.alive) return;
      showError(problem, null);
      index = to;
      cursors[to + 1] = page.cursor;
      cursors.length = to + 2;
      if (!page.items.length && to === 0) {
        mount(panel, problem, empty);
        return;
      }
      label.textContent = `Page ${to + 1} · ${page.items.length} record(s)`;
      mount(grid.tbody, page.items.map((item) => rowOf(item)));
      prev.disabled = to === 0;
      next.disabled = !page.cursor;
      mount(json, h("p", { class: "small muted" }, "Pick a record to see its JSON."));
    } catch (err) {
      if (isAbort(err) || mine !== seq) return;
      mount(grid.tbody, emptyRow(headers.length + 1, "—"));
      prev.disabled = index === 0;
      next.disabled = !cursors[index + 1];
      showError(problem, err);
    }
  }

  /** @param {R} item */
  function rowOf(item) {
    const show = h("button", { type: "button", class: "link", "data-testid": `${prefix}-open`, title: "Show its JSON" }, item.id);
    const row = h("tr", { "data-testid": `${prefix}-row`, "data-record-id": item.id }, h("td", { class: "wrap-anywhere" }, show), cells(item).map((c) => h("td", {}, c)));
    show.onclick = () => {
      for (const other of Array.from(grid.tbody.rows)) other.classList.toggle("selected", other === row);
      mount(json, h("h3", {}, "Record ", h("code", {}, item.id)), h("pre", { class: "code", "data-testid": `${prefix}-json` }, pretty(item.data)));
    };
    return row;
  }

  mount(panel, problem, body);
  go(0);
}

/**
 * The app's live records, page by page (each page is a call through the connection).
 * @param {HTMLElement} panel
 * @param {string} base
 * @param {PageContext} ctx
 */
function recordsBrowser(panel, base, ctx) {
  pagedBrowser(
    panel,
    {
      prefix: "records",
      headers: ["Updated in the app"],
      /** @param {DataRecord} r */
      cells: (r) => [fmtDate(r.updatedAt)],
      fetch: (cursor) => get(`${base}/records`, { query: { cursor }, signal: ctx.signal }),
      empty: emptyState("The app has no records in this collection.", { testid: "records-empty", hint: "Records the app creates show here (read live through the connection)." }),
    },
    ctx,
  );
}

/**
 * The copy the syncs stored, oldest change first.
 * @param {HTMLElement} panel
 * @param {string} base
 * @param {PageContext} ctx
 */
function syncedBrowser(panel, base, ctx) {
  pagedBrowser(
    panel,
    {
      prefix: "synced",
      headers: ["Updated in the app", "Last change", "Deleted"],
      /** @param {SyncedRecord} r */
      cells: (r) => [fmtDate(r.updatedAt), fmtDate(r.lastModifiedAt), r.deletedAt ? h("span", { class: "text-danger" }, fmtDate(r.deletedAt)) : "—"],
      fetch: (cursor) => get(`${base}/synced-records`, { query: { cursor, limit: SYNCED_PAGE }, signal: ctx.signal }),
      empty: emptyState("Nothing synced yet.", { testid: "synced-empty", hint: "Press Sync now above: a pass stores a copy of every record and keeps it current." }),
    },
    ctx,
  );
}

// --- fields and field mappings ----------------------------------------------------------------

/**
 * The fields the connection's app describes (the instance's fieldsSchema), with a refresh.
 * @param {HTMLElement} panel
 * @param {DataSourceInstance} instance
 * @param {string} base
 * @param {(fresh: DataSourceInstance) => void} onFresh
 */
function fieldsView(panel, instance, base, onFresh) {
  const problem = errorBox(null, { "data-testid": "fields-error" });
  const refresh = h("button", { type: "button", class: "secondary", "data-testid": "fields-refresh" }, "Fetch the fields again");
  refresh.onclick = action({ button: refresh, problem }, async () => {
    /** @type {DataSourceInstance} */
    const fresh = await post(`${base}/refresh-schema`);
    onFresh(fresh);
    fieldsView(panel, fresh, base, onFresh);
  });
  const props = Object.entries(instance.fieldsSchema?.properties || {});
  const required = new Set(instance.fieldsSchema?.required || []);
  mount(
    panel,
    props.length
      ? table(
          ["Field", "Type", "Title", "Required"],
          props.map(([name, p]) => h("tr", { "data-testid": "field-row" }, h("td", {}, h("code", {}, name)), h("td", {}, Array.isArray(p.type) ? p.type.join(" | ") : p.type || "any"), h("td", {}, p.title || ""), h("td", {}, required.has(name) ? "yes" : ""))),
          { "data-testid": "fields-table" },
        )
      : emptyState("The app described no fields for this data source.", { testid: "fields-empty", hint: "Give the data source a fields spec (GET path and itemsPath), then fetch the fields again." }),
    h("div", { class: "actions" }, refresh),
    problem,
  );
}

/**
 * The field mappings deployed on this connection for this data source.
 * @param {HTMLElement} panel
 * @param {DataSourceInstance} instance
 * @param {PageContext} ctx
 */
async function mappingsView(panel, instance, ctx) {
  mount(panel, loading());
  try {
    /** @type {Page<FieldMappingInstance>} */
    const page = await get("/field-mapping-instances", { query: { connectionId: instance.connectionId, limit: 100 }, signal: ctx.signal });
    const mine = page.items.filter((fm) => fm.dataSourceKey === instance.dataSourceKey);
    mount(
      panel,
      mine.length
        ? table(
            ["Field mapping", "State", "Revision"],
            mine.map((fm) =>
              h(
                "tr",
                { "data-testid": "ds-mapping-row" },
                h("td", {}, h("a", { href: `#/field-mapping/${enc(fm.id)}` }, fm.fieldMappingKey)),
                h("td", {}, fm.broken ? badge("broken", "bad", { title: fm.problems.map((p) => p.message).join("; ") }) : badge("ok", "ok")),
                h("td", {}, String(fm.baseRevision)),
              ),
            ),
          )
        : emptyState("No field mapping uses this data source on this connection.", { testid: "ds-mappings-empty", button: h("a", { href: "#/data?tab=mappings" }, "Define a field mapping") }),
    );
  } catch (err) {
    if (!isAbort(err)) mount(panel, errorBox(err));
  }
}
