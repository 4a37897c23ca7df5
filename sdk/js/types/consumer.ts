// How a TypeScript app uses the SDK: `tsc -p sdk/js` compiles this against tether.d.ts
// (an import of "../tether.js" resolves to its declarations). Nothing here runs.
import {
  type Connection,
  type FlowRun,
  isConnectionMessage,
  Tether,
  TetherError,
  VERSION,
} from "../tether.js";

export async function example(): Promise<string[]> {
  const tether = new Tether({
    baseUrl: "https://tether.example.com",
    token: async () => "eyJ…",
  });
  const seen: string[] = [VERSION, tether.baseUrl];
  try {
    const connection: Connection = await tether.connect({ integrationKey: "hubspot" });
    seen.push(connection.id, connection.state);
  } catch (error) {
    if (error instanceof TetherError && error.code === "popup_closed") seen.push(error.message);
    if (error instanceof TetherError) seen.push(String(error.status), error.requestId ?? "");
  }
  const page = await tether.connections.list({ integrationKey: "hubspot", limit: 10 });
  seen.push(...page.items.map((c) => c.name), page.nextCursor ?? "");
  for await (const connection of tether.connections.iterate({ state: "connected" })) {
    seen.push(connection.integrationKey);
  }
  const run: FlowRun = await tether.flowInstances.run("instance-id", { email: "a@b.c" });
  const again = await tether.flowRuns.get(run.id, { signal: new AbortController().signal });
  seen.push(again.state);
  const result = await tether.actions.run("create-contact", {
    connectionId: "connection-id",
    input: { email: "a@b.c" },
    idempotencyKey: "signup-42",
  });
  seen.push(result.actionRunId, String(result.replayed));
  const raw = await tether.request<{ status: string }>("GET", "/healthz");
  seen.push(raw.status);
  window.addEventListener("message", (event) => {
    if (isConnectionMessage(event, "https://tether.example.com")) seen.push(event.data.status);
  });
  return seen;
}
