// The console's only way to the server: the public REST API on the same origin.

const TOKEN_KEY = "tether.token";

/** The admin token lives in sessionStorage only (gone when the tab closes). */
export const session = {
  get() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set(token) {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear() {
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage unavailable: nothing to clear
    }
  },
};

/** An API failure: status (0 = network), code, message and details as the API sent them. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details ?? null;
  }
}

let unauthorized = () => {};

/** Register what happens when the API answers 401 to an authenticated call. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** "?a=1&b=x" from an object, leaving out empty values. */
export function qs(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export const enc = encodeURIComponent;

/**
 * Call the API: JSON in, JSON out. Throws ApiError on failure.
 * Options: body (JSON), query (object), headers, auth (default true), signal.
 */
export async function api(method, path, options = {}) {
  const { body, query, headers = {}, auth = true, signal } = options;
  const init = {
    method,
    headers: { Accept: "application/json", ...headers },
    credentials: "same-origin",
    cache: "no-store",
    signal,
  };
  if (auth) {
    const token = session.get();
    if (token) init.headers.Authorization = `Bearer ${token}`;
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path + qs(query), init);
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", `Could not reach the gateway (${err && err.message ? err.message : "network error"})`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const wire = data && typeof data === "object" && data.error ? data.error : null;
    const error = new ApiError(
      response.status,
      wire?.code || `http_${response.status}`,
      wire?.message || `The gateway answered ${response.status} ${response.statusText}`.trim(),
      wire?.details,
    );
    if (response.status === 401 && auth) {
      session.clear();
      unauthorized(error);
    }
    throw error;
  }
  return data;
}

export const get = (path, options) => api("GET", path, options);
export const post = (path, body, options = {}) => api("POST", path, { ...options, body: body ?? {} });
export const patch = (path, body, options = {}) => api("PATCH", path, { ...options, body });
export const put = (path, body, options = {}) => api("PUT", path, { ...options, body });
export const del = (path, options) => api("DELETE", path, options);

/** Whether an error is only the page being left mid-request. */
export function isAbort(err) {
  return Boolean(err && err.name === "AbortError");
}
