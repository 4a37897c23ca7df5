// Unit tests of the SDK's pure parts, with a fake fetch: `node --test sdk/js/test/`.
// The popup, CORS and postMessage are tested in Chromium (tests/sdk/test_browser_sdk.py).
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { isConnectionMessage, Tether, TetherError, VERSION } from "../tether.js";

const BASE = "https://tether.example.com";

/**
 * A fetch that answers from a list and records what it was asked.
 * @param {Array<Response | Error | ((url: string, init: RequestInit) => Response)>} answers
 */
function fakeFetch(answers) {
  /** @type {Array<{url: string, init: RequestInit}>} */
  const calls = [];
  /** @type {typeof fetch} */
  const fetchImpl = async (input, init = {}) => {
    const url = String(input);
    calls.push({ url, init });
    if (init.signal?.aborted) throw new DOMException("aborted", "AbortError");
    const next = answers.shift();
    if (next === undefined) throw new Error(`unexpected call ${url}`);
    if (next instanceof Error) throw next;
    return typeof next === "function" ? next(url, init) : next;
  };
  return { fetch: fetchImpl, calls };
}

/** @param {unknown} body @param {number} [status] @param {Record<string, string>} [headers] */
function json(body, status = 200, headers = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/** @param {number} exp seconds since the epoch */
function jwt(exp) {
  const part = (/** @type {object} */ value) =>
    Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "HS256" })}.${part({ iss: "ws", id: "c", exp })}.sig`;
}

/** @param {Headers | Record<string, string> | undefined | HeadersInit} headers */
function header(headers, name) {
  return new Headers(headers).get(name);
}

describe("urls", () => {
  test("paths are joined to the base without a double slash and ids are encoded", async () => {
    const fake = fakeFetch([json({ id: "x" })]);
    const tether = new Tether({ baseUrl: `${BASE}/tether/`, token: "t", fetch: fake.fetch });
    assert.equal(tether.baseUrl, `${BASE}/tether`);
    await tether.connections.get("a/b?c");
    assert.equal(fake.calls[0].url, `${BASE}/tether/connections/a%2Fb%3Fc`);
  });

  test("list parameters become the query; undefined and null are left out", async () => {
    const fake = fakeFetch([json({ items: [], cursor: null })]);
    const tether = new Tether({ baseUrl: BASE, token: "t", fetch: fake.fetch });
    await tether.flowRuns.list({
      flowInstanceId: "fi 1",
      state: "failed",
      from: new Date("2026-01-02T03:04:05Z"),
      customerId: undefined,
      limit: 5,
    });
    const url = new URL(fake.calls[0].url);
    assert.equal(url.pathname, "/flow-runs");
    assert.deepEqual(Object.fromEntries(url.searchParams), {
      flowInstanceId: "fi 1",
      state: "failed",
      from: "2026-01-02T03:04:05.000Z",
      limit: "5",
    });
  });

  test("a bad baseUrl or token is refused at once", () => {
    assert.throws(() => new Tether({ baseUrl: "/relative", token: "t" }), TypeError);
    assert.throws(() => new Tether({ baseUrl: "ftp://x", token: "t" }), TypeError);
    // @ts-expect-error: a number is not a token
    assert.throws(() => new Tether({ baseUrl: BASE, token: 5 }), TypeError);
  });
});

describe("requests", () => {
  test("bearer token, JSON body, idempotency key and no cookies", async () => {
    const fake = fakeFetch([json({ output: 1, actionRunId: "r", replayed: false })]);
    const tether = new Tether({ baseUrl: BASE, token: "tok", fetch: fake.fetch });
    const result = await tether.actions.run("create contact", {
      connectionId: "c1",
      input: { email: "a@b.c" },
      idempotencyKey: "k-1",
    });
    assert.equal(result.actionRunId, "r");
    const { url, init } = fake.calls[0];
    assert.equal(url, `${BASE}/actions/create%20contact/run`);
    assert.equal(init.method, "POST");
    assert.equal(header(init.headers, "Authorization"), "Bearer tok");
    assert.equal(header(init.headers, "Content-Type"), "application/json");
    assert.equal(header(init.headers, "Idempotency-Key"), "k-1");
    assert.equal(init.credentials, "omit");
    assert.deepEqual(JSON.parse(String(init.body)), {
      connectionId: "c1",
      input: { email: "a@b.c" },
    });
  });

  test("flowInstances.run sends {input}; a GET has no body or content type", async () => {
    const fake = fakeFetch([json({ id: "run-1", state: "queued" }, 202), json({ id: "run-1" })]);
    const tether = new Tether({ baseUrl: BASE, token: "t", fetch: fake.fetch });
    const run = await tether.flowInstances.run("fi-1", { n: 1 });
    assert.equal(run.id, "run-1");
    assert.deepEqual(JSON.parse(String(fake.calls[0].init.body)), { input: { n: 1 } });
    await tether.flowRuns.get("run-1");
    assert.equal(fake.calls[1].init.body, undefined);
    assert.equal(header(fake.calls[1].init.headers, "Content-Type"), null);
  });
});

describe("errors", () => {
  test("the API's envelope becomes a TetherError with status, code, requestId, details", async () => {
    const envelope = {
      error: {
        code: "invalid_input",
        message: "input.email: required",
        details: [{ field: "input.email", message: "required" }],
        requestId: "req-1",
      },
    };
    const fake = fakeFetch([json(envelope, 422, { "X-Request-Id": "req-1" })]);
    const tether = new Tether({ baseUrl: BASE, token: "t", fetch: fake.fetch });
    const error = await tether.flowInstances.run("fi", {}).catch((e) => e);
    assert.ok(error instanceof TetherError);
    assert.ok(error instanceof Error);
    assert.equal(error.name, "TetherError");
    assert.equal(error.status, 422);
    assert.equal(error.code, "invalid_input");
    assert.equal(error.message, "input.email: required");
    assert.equal(error.requestId, "req-1");
    assert.deepEqual(error.details, [{ field: "input.email", message: "required" }]);
  });

  test("an answer that is not the envelope still gives status, a code and the request id", async () => {
    const page = new Response("<html>Bad gateway</html>", {
      status: 502,
      statusText: "Bad Gateway",
      headers: { "X-Request-Id": "edge-7" },
    });
    const fake = fakeFetch([page]);
    const tether = new Tether({ baseUrl: BASE, token: "t", fetch: fake.fetch });
    const error = await tether.connections.list().catch((e) => e);
    assert.ok(error instanceof TetherError);
    assert.equal(error.code, "http_502");
    assert.equal(error.status, 502);
    assert.equal(error.requestId, "edge-7");
  });

  test("a network failure is network_error with status 0 and the cause kept", async () => {
    const cause = new TypeError("Failed to fetch");
    const fake = fakeFetch([cause]);
    const tether = new Tether({ baseUrl: BASE, token: "t", fetch: fake.fetch });
    const error = await tether.connections.get("c").catch((e) => e);
    assert.ok(error instanceof TetherError);
    assert.equal(error.code, "network_error");
    assert.equal(error.status, 0);
    assert.equal(error.cause, cause);
  });

  test("an aborted call is aborted, before or during the fetch", async () => {
    const controller = new AbortController();
    controller.abort(new Error("user left"));
    const fake = fakeFetch([]);
    const tether = new Tether({ baseUrl: BASE, token: "t", fetch: fake.fetch });
    const before = await tether.connections
      .get("c", { signal: controller.signal })
      .catch((e) => e);
    assert.equal(before.code, "aborted");
    assert.equal(fake.calls.length, 0);

    const later = new AbortController();
    const slow = fakeFetch([
      () => {
        later.abort();
        throw new DOMException("aborted", "AbortError");
      },
    ]);
    const during = await new Tether({ baseUrl: BASE, token: "t", fetch: slow.fetch }).flowRuns
      .get("r", { signal: later.signal })
      .catch((e) => e);
    assert.equal(during.code, "aborted");
  });

  test("a success that is not JSON is invalid_response", async () => {
    const fake = fakeFetch([new Response("not json", { status: 200 })]);
    const tether = new Tether({ baseUrl: BASE, token: "t", fetch: fake.fetch });
    const error = await tether.connections.get("c").catch((e) => e);
    assert.equal(error.code, "invalid_response");
    assert.equal(error.status, 200);
  });
});

describe("tokens", () => {
  test("a token function is asked once for concurrent calls and its token reused", async () => {
    let asked = 0;
    const token = async () => {
      asked += 1;
      await new Promise((resolve) => setTimeout(resolve, 5));
      return jwt(Date.now() / 1000 + 3600);
    };
    const fake = fakeFetch([json({ id: 1 }), json({ id: 2 }), json({ id: 3 })]);
    const tether = new Tether({ baseUrl: BASE, token, fetch: fake.fetch });
    await Promise.all([tether.connections.get("a"), tether.connections.get("b")]);
    await tether.connections.get("c");
    assert.equal(asked, 1);
  });

  test("a JWT about to expire is replaced before the call", async () => {
    const tokens = [jwt(Date.now() / 1000 + 10), jwt(Date.now() / 1000 + 3600)];
    const fake = fakeFetch([json({}), json({})]);
    const tether = new Tether({
      baseUrl: BASE,
      token: () => tokens.shift() ?? "none",
      fetch: fake.fetch,
    });
    await tether.connections.get("a");
    await tether.connections.get("b");
    const sent = fake.calls.map((c) => header(c.init.headers, "Authorization"));
    assert.notEqual(sent[0], sent[1]);
    assert.equal(tokens.length, 0);
  });

  test("a 401 asks for a new token once and repeats the call", async () => {
    const tokens = ["old", "new"];
    const expired = json({ error: { code: "token_expired", message: "expired" } }, 401);
    const fake = fakeFetch([expired, json({ id: "c" })]);
    const tether = new Tether({
      baseUrl: BASE,
      token: async () => tokens.shift() ?? "none",
      fetch: fake.fetch,
    });
    const connection = await tether.connections.get("c");
    assert.deepEqual(connection, { id: "c" });
    const sent = fake.calls.map((c) => header(c.init.headers, "Authorization"));
    assert.deepEqual(sent, ["Bearer old", "Bearer new"]);
  });

  test("a second 401, or a 401 with a fixed token, is the API's error", async () => {
    const refused = () => json({ error: { code: "token_invalid", message: "no" } }, 401);
    const fake = fakeFetch([refused(), refused()]);
    const tether = new Tether({ baseUrl: BASE, token: async () => "same", fetch: fake.fetch });
    const error = await tether.connections.get("c").catch((e) => e);
    assert.equal(error.code, "token_invalid");
    assert.equal(fake.calls.length, 2);

    const fixed = fakeFetch([refused()]);
    const once = new Tether({ baseUrl: BASE, token: "fixed", fetch: fixed.fetch });
    assert.equal((await once.connections.get("c").catch((e) => e)).status, 401);
    assert.equal(fixed.calls.length, 1);
  });

  test("a token function that fails or returns nothing is token_error", async () => {
    const failing = new Tether({
      baseUrl: BASE,
      token: async () => {
        throw new Error("backend down");
      },
      fetch: fakeFetch([]).fetch,
    });
    const error = await failing.connections.list().catch((e) => e);
    assert.equal(error.code, "token_error");
    assert.equal(error.cause.message, "backend down");
    const empty = new Tether({ baseUrl: BASE, token: () => "", fetch: fakeFetch([]).fetch });
    assert.equal((await empty.connections.list().catch((e) => e)).code, "token_error");
  });
});

describe("pages", () => {
  test("list gives {items, nextCursor}; iterate walks every page", async () => {
    const fake = fakeFetch([
      json({ items: [{ id: 1 }, { id: 2 }], cursor: "p2" }),
      json({ items: [{ id: 3 }], cursor: null }),
      json({ items: [{ id: 9 }], cursor: "more" }),
    ]);
    const tether = new Tether({ baseUrl: BASE, token: "t", fetch: fake.fetch });
    const ids = [];
    for await (const connection of tether.connections.iterate({ state: "connected", limit: 2 })) {
      ids.push(connection.id);
    }
    assert.deepEqual(ids, [1, 2, 3]);
    assert.equal(new URL(fake.calls[1].url).searchParams.get("cursor"), "p2");
    assert.equal(new URL(fake.calls[1].url).searchParams.get("state"), "connected");
    const page = await tether.connections.list();
    assert.deepEqual(page, { items: [{ id: 9 }], nextCursor: "more" });
  });

  test("a list without a cursor (integrations) is one page", async () => {
    const fake = fakeFetch([json({ items: [{ key: "crm" }] })]);
    const tether = new Tether({ baseUrl: BASE, token: "t", fetch: fake.fetch });
    assert.deepEqual(await tether.integrations.list(), {
      items: [{ key: "crm" }],
      nextCursor: null,
    });
  });
});

describe("messages", () => {
  const popup = /** @type {MessageEventSource} */ (/** @type {unknown} */ ({ name: "popup" }));
  const other = /** @type {MessageEventSource} */ (/** @type {unknown} */ ({ name: "other" }));
  /** @param {string} origin @param {unknown} data @param {MessageEventSource | null} source */
  const event = (origin, data, source = popup) =>
    /** @type {MessageEvent} */ (/** @type {unknown} */ ({ origin, data, source }));
  const ok = { type: "tether:connection", status: "connected", connectionId: "c1" };

  test("only the Connect UI's origin and window count", () => {
    assert.equal(isConnectionMessage(event(BASE, ok), BASE, popup), true);
    assert.equal(isConnectionMessage(event(BASE, ok), BASE), true);
    assert.equal(isConnectionMessage(event("https://evil.example", ok), BASE, popup), false);
    assert.equal(isConnectionMessage(event(`${BASE}.evil.example`, ok), BASE, popup), false);
    assert.equal(isConnectionMessage(event(BASE, ok, other), BASE, popup), false);
  });

  test("only the result's shape counts", () => {
    for (const data of [
      null,
      "tether:connection",
      [ok],
      { ...ok, type: "other" },
      { ...ok, status: "maybe" },
      { ...ok, connectionId: 5 },
    ]) {
      assert.equal(isConnectionMessage(event(BASE, data), BASE, popup), false, JSON.stringify(data));
    }
    const failed = { type: "tether:connection", status: "error", connectionId: null, error: "x" };
    assert.equal(isConnectionMessage(event(BASE, failed), BASE, popup), true);
  });

  test("connect() outside a browser is unsupported_environment", async () => {
    const tether = new Tether({ baseUrl: BASE, token: "t", fetch: fakeFetch([]).fetch });
    const error = await tether.connect({ integrationKey: "crm" }).catch((e) => e);
    assert.ok(error instanceof TetherError);
    assert.equal(error.code, "unsupported_environment");
  });

  test("the version is a semver string", () => {
    assert.match(VERSION, /^\d+\.\d+\.\d+$/);
  });
});
