import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type LocalServer, startLocalServer } from "../../local/server.js";

/** The whole service over real HTTP: the local server, the same handlers, DynamoDB Local. */
describe("local server end to end", () => {
  let server: LocalServer;
  const suffix = randomUUID().slice(0, 8);

  beforeAll(async () => {
    server = await startLocalServer({
      port: 0,
      quiet: true,
      dynamoEndpoint: inject("dynamoEndpoint"),
      tables: { sessions: `e2e-sessions-${suffix}`, conversations: `e2e-conversations-${suffix}` },
      dataDir: `/tmp/e2e-${suffix}`,
    });
  });
  afterAll(async () => {
    await server?.close();
  });

  const call = async (
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: unknown } = {},
  ) => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { "content-type": "application/json", ...init.headers },
      ...(init.body !== undefined
        ? { body: typeof init.body === "string" ? init.body : JSON.stringify(init.body) }
        : {}),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const service = () => ({ authorization: `Bearer ${server.env.SERVICE_TOKEN}` });
  const tool = () => ({ "x-tool-secret": server.env.TOOL_SECRET ?? "" });

  it("registers, calls a tool, delivers the callback and shows it all in history", async () => {
    const conv = `e2e-${suffix}`;
    expect(
      (await call("POST", `/conversations/${conv}/session`, { headers: service(), body: {} })).status,
    ).toBe(201);
    const session = await call("GET", `/conversations/${conv}/session`, { headers: service() });
    expect(session).toMatchObject({ status: 200, body: { status: "active" } });

    const accepted = await call("POST", "/tools/lookup_order", {
      headers: tool(),
      body: { conversation_id: conv, order_id: "A1" },
    });
    expect(accepted.body).toMatchObject({
      status: "accepted",
      callbackUrl: expect.stringContaining(server.url),
    });
    const callbackPath = new URL(String(accepted.body.callbackUrl)).pathname;
    const token = String(accepted.body.callbackToken);

    const delivered = await call("POST", callbackPath, {
      headers: { authorization: `Bearer ${token}` },
      body: { result: { eta: "2 days" } },
    });
    expect(delivered).toMatchObject({ status: 200, body: { outcome: "delivered" } });
    const duplicate = await call("POST", callbackPath, {
      headers: { authorization: `Bearer ${token}` },
      body: { result: {} },
    });
    expect(duplicate.body).toMatchObject({ outcome: "delivered", duplicate: true });

    const polled = await call("POST", "/tools/get_task_result", {
      headers: tool(),
      body: { conversation_id: conv },
    });
    expect(polled.body).toMatchObject({
      status: "active",
      tasks: [expect.objectContaining({ status: "completed" })],
    });

    const history = await call("GET", `/conversations/${conv}`, { headers: service() });
    expect(history.status).toBe(200);
    expect(JSON.stringify(history.body)).toContain("2 days");
    expect(JSON.stringify(history.body)).not.toContain(token);
  });

  it("answers 405 for a wrong method and 404 for an unknown path, as JSON", async () => {
    const wrong = await call("DELETE", "/conversations/x/session", { headers: service() });
    expect(wrong).toMatchObject({ status: 405, body: { error: "method_not_allowed" } });
    const unknown = await call("GET", "/nope", {});
    expect(unknown).toMatchObject({ status: 404, body: { error: "route_not_found" } });
  });
});
