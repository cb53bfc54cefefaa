import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../functions/core/routes.js";
import { findFreePort } from "../../local/dynamodb-local.js";
import { LOCAL_SECRETS } from "../../local/local-env.js";
import { signature, transcriptionEvent } from "../support/post-call-fixtures.js";
import { rawRequest } from "../support/raw-http.js";
import { type SpawnedServer, spawnLocalServer, timeLimitForStarts } from "../support/spawn-local-server.js";

/**
 * Every route of the route table over real HTTP, on the service as a developer starts it
 * (`npm start -- --in-memory`, its own process, its own DynamoDB Local), with a 2 s session
 * window so expiry happens during the test. ElevenLabs is a small fake upstream.
 */
const TTL_MS = 2000;
/** ElevenLabs' documented validity of a signed URL. */
const SIGNED_URL_VALIDITY_MS = 15 * 60 * 1000;

/** One answer, with when the request left and when its answer was read (this process's clock). */
interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON read back from the wire; each test asserts its shape.
  readonly body: any;
  readonly sentAt: number;
  readonly receivedAt: number;
}

/** The route-table key (`POST /tools/{toolName}`) a request goes to: the most specific path wins. */
const routeKeyOf = (method: string, path: string): string | undefined => {
  const segments = new URL(path, "http://x").pathname.split("/").filter(Boolean);
  const staticCount = (template: string) => template.split("/").filter((s) => s && !s.startsWith("{")).length;
  const candidates = ROUTES.filter((route) => {
    const template = route.path.split("/").filter(Boolean);
    return (
      route.method === method &&
      template.length === segments.length &&
      template.every((s, i) => s.startsWith("{") || s === segments[i])
    );
  }).sort((a, b) => staticCount(b.path) - staticCount(a.path));
  const route = candidates[0];
  return route ? `${route.method} ${route.path}` : undefined;
};

/** Parses the JSON log lines a process wrote. */
const jsonLines = (output: string): Record<string, unknown>[] =>
  output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe("every route over HTTP, on `npm start -- --in-memory` with 2 s sessions", () => {
  let service: SpawnedServer;
  let upstream: Server;
  let upstreamUrl: string;
  /** What the fake ElevenLabs answers: a signed URL, 401 as for a revoked API key, or 429 when busy. */
  let upstreamMode: "ok" | "unauthorized" | "busy" = "ok";
  const upstreamCalls: { path: string; agentId: string | null; apiKey: string | undefined }[] = [];
  /** The app's endpoint for live pushes (a session's notifyUrl): `/notify` takes them, `/notify-broken` fails. */
  let app: Server;
  let appUrl: string;
  const pushes: { path: string; signature: string | undefined; body: string }[] = [];
  /** Route keys that answered 2xx at least once. */
  const exercised = new Set<string>();
  const suffix = randomUUID().slice(0, 8);
  const serviceAuth = { authorization: `Bearer ${LOCAL_SECRETS.SERVICE_TOKEN}` };
  const toolAuth = { "x-tool-secret": LOCAL_SECRETS.TOOL_SECRET };

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://upstream");
      const apiKey = req.headers["xi-api-key"];
      upstreamCalls.push({
        path: url.pathname,
        agentId: url.searchParams.get("agent_id"),
        apiKey: typeof apiKey === "string" ? apiKey : undefined,
      });
      if (upstreamMode === "busy") {
        res.writeHead(429, { "content-type": "application/json", "retry-after": "7" });
        res.end(JSON.stringify({ detail: { status: "too_many_concurrent_requests" } }));
        return;
      }
      const known =
        url.pathname === "/v1/convai/conversation/get-signed-url" &&
        apiKey === LOCAL_SECRETS.ELEVENLABS_API_KEY &&
        upstreamMode === "ok";
      if (!known) {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ detail: { status: "invalid_api_key", message: "Invalid API key" } }));
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          signed_url: `wss://api.elevenlabs.io/v1/convai/conversation?agent_id=${url.searchParams.get("agent_id")}&conversation_signature=sig_${suffix}`,
        }),
      );
    });
    await new Promise<void>((ready) => upstream.listen(0, "127.0.0.1", ready));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    app = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const header = req.headers["x-signature"];
        pushes.push({
          path: req.url ?? "",
          signature: typeof header === "string" ? header : undefined,
          body: Buffer.concat(chunks).toString("utf8"),
        });
        res.writeHead(req.url === "/notify" ? 204 : 500).end();
      });
    });
    await new Promise<void>((ready) => app.listen(0, "127.0.0.1", ready));
    appUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    service = await spawnLocalServer({
      launcher: "npm",
      args: ["--port", String(await findFreePort()), "--in-memory", "--no-runner"],
      env: { SESSION_TTL_MS: String(TTL_MS), ELEVENLABS_API_BASE_URL: upstreamUrl },
    });
    // Warm DynamoDB Local's JIT up, so the first 2 s window of a test is not spent on it.
    const warm = `warm-${suffix}`;
    for (const method of ["POST", "GET"]) {
      const response = await fetch(`${service.url}/conversations/${warm}/session`, {
        method,
        headers: serviceAuth,
      });
      // Only warming up: on a loaded machine the read may come after the 2 s window (410).
      expect([200, 201, 410]).toContain(response.status);
    }
  }, timeLimitForStarts(1));

  afterAll(async () => {
    await service?.stop("SIGINT");
    await new Promise((closed) => upstream?.close(closed));
    await new Promise((closed) => app?.close(closed));
  });

  /** Sends one request and reads the whole answer; a 2xx marks its route as exercised. */
  const call = async (
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: unknown } = {},
  ): Promise<Answer> => {
    const body =
      init.body === undefined
        ? undefined
        : typeof init.body === "string"
          ? init.body
          : JSON.stringify(init.body);
    const sentAt = Date.now();
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...init.headers },
      ...(body !== undefined ? { body } : {}),
    });
    const text = await response.text();
    const receivedAt = Date.now();
    if (response.ok) {
      const key = routeKeyOf(method, path);
      if (key) exercised.add(key);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, text, body: parsed, sentAt, receivedAt };
  };

  const register = async (conversationId: string, body: unknown = {}) => {
    const answer = await call("POST", `/conversations/${conversationId}/session`, {
      headers: serviceAuth,
      body,
    });
    expect(answer.status).toBe(201);
    return { ...answer, expiresAtMs: Date.parse(answer.body.expiresAt) };
  };

  const startTask = async (conversationId: string, params: Record<string, unknown> = {}) => {
    const answer = await call("POST", "/tools/lookup_order", {
      headers: toolAuth,
      body: { conversation_id: conversationId, ...params },
    });
    expect(answer).toMatchObject({ status: 200, body: { status: "accepted" } });
    return {
      taskId: String(answer.body.taskId),
      callbackPath: new URL(String(answer.body.callbackUrl)).pathname,
      token: String(answer.body.callbackToken),
      body: answer.body,
    };
  };

  const postResult = (callbackPath: string, token: string, body: unknown) =>
    call("POST", callbackPath, { headers: { authorization: `Bearer ${token}` }, body });

  /** Waits until the clock is past `expiresAtMs` (the service shares this machine's clock). */
  const waitUntilExpired = async (expiresAtMs: number) => {
    await sleep(Math.max(0, expiresAtMs - Date.now() + 20));
    expect(Date.now()).toBeGreaterThan(expiresAtMs);
  };

  const postCall = (body: string, secret: string = LOCAL_SECRETS.WEBHOOK_SECRET) =>
    call("POST", "/webhooks/elevenlabs/post-call", {
      headers: { "elevenlabs-signature": signature(body, Math.floor(Date.now() / 1000), secret) },
      body,
    });

  /**
   * The design's error body: JSON, exactly `{ error, message }` plus the documented extra keys,
   * a sentence for people, and nothing internal (stack frames, source paths, secrets).
   */
  const expectErrorBody = (
    answer: Answer,
    status: number,
    error: string,
    extra: Record<string, unknown> = {},
  ) => {
    expect({ status: answer.status, body: answer.body }).toEqual({
      status,
      body: { error, message: expect.any(String), ...extra },
    });
    expect(answer.headers.get("content-type")).toMatch(/^application\/json\b/);
    // Whether a handler or the local server itself answered: errors are never cached.
    expect(answer.headers.get("cache-control")).toBe("no-store");
    expect(answer.body.message).toMatch(/^\S.{8,}\.$/s);
    expect(answer.text).not.toMatch(/\n\s*at |\bat [\w$.<>]+ \(|\.ts:\d+|node_modules|Error: /);
    for (const secret of Object.values(LOCAL_SECRETS)) expect(answer.text).not.toContain(secret);
  };

  it("reports its configuration on GET /health", async () => {
    const health = await call("GET", "/health");
    expect(health).toMatchObject({
      status: 200,
      body: {
        status: "ok",
        sessionTtlMs: TTL_MS,
        dynamodb: "embedded-in-memory",
        callbackInToolResponse: true,
      },
    });
  });

  it("registers a session for the configured window and reads it back while it is active", async () => {
    const conversationId = `live-${suffix}`;
    const registered = await register(conversationId, { agentId: "agent_01", metadata: { plan: "pro" } });
    expect(registered.body).toEqual({
      conversationId,
      sessionId: expect.any(String),
      createdAt: expect.any(String),
      expiresAt: expect.any(String),
      ttlSeconds: TTL_MS / 1000,
      agentId: "agent_01",
      metadata: { plan: "pro" },
    });
    expect(registered.expiresAtMs - Date.parse(registered.body.createdAt)).toBe(TTL_MS);

    const read = await call("GET", `/conversations/${conversationId}/session`, { headers: serviceAuth });
    expect(read).toMatchObject({
      status: 200,
      body: { status: "active", sessionId: registered.body.sessionId, expiresAt: registered.body.expiresAt },
    });

    // Registering again starts a new window; the history shows the first one as replaced.
    const refreshed = await register(conversationId);
    expect(refreshed.body.sessionId).not.toBe(registered.body.sessionId);
    expect(refreshed.expiresAtMs).toBeGreaterThanOrEqual(registered.expiresAtMs);
    const history = await call("GET", `/conversations/${conversationId}`, { headers: serviceAuth });
    // 2 s windows: on a loaded machine the history may be read after the new one ended too.
    const secondStatus =
      history.receivedAt < refreshed.expiresAtMs
        ? "active"
        : history.sentAt >= refreshed.expiresAtMs
          ? "expired"
          : expect.stringMatching(/^(active|expired)$/);
    expect(history.body.sessions).toEqual([
      expect.objectContaining({
        sessionId: registered.body.sessionId,
        status: "replaced",
        endedAt: refreshed.body.createdAt,
      }),
      expect.objectContaining({ sessionId: refreshed.body.sessionId, status: secondStatus }),
    ]);
  });

  it("answers every read around the expiry instant the way the clock says", async () => {
    const conversationId = `boundary-${suffix}`;
    const { expiresAtMs, body: registered } = await register(conversationId);
    const reads: Answer[] = [];
    const path = `/conversations/${conversationId}/session`;
    reads.push(await call("GET", path, { headers: serviceAuth }));
    await sleep(Math.max(0, expiresAtMs - Date.now() - 300));
    // Back to back across the instant, until a few reads were sent after it.
    while (reads.filter((r) => r.sentAt >= expiresAtMs).length < 5)
      reads.push(await call("GET", path, { headers: serviceAuth }));

    const before = reads.filter((r) => r.receivedAt < expiresAtMs);
    const after = reads.filter((r) => r.sentAt >= expiresAtMs);
    expect(before.length).toBeGreaterThan(0);
    expect(after.length).toBeGreaterThan(0);
    for (const read of reads) {
      // The service read its clock between our send and our receive.
      if (read.status === 200) {
        expect(read.sentAt).toBeLessThan(expiresAtMs);
        expect(read.body.remainingMs).toBeGreaterThan(0);
        expect(read.body.remainingMs).toBeLessThanOrEqual(TTL_MS);
        expect(read.body.remainingMs).toBeGreaterThanOrEqual(expiresAtMs - read.receivedAt);
        expect(read.body.remainingMs).toBeLessThanOrEqual(expiresAtMs - read.sentAt);
      } else {
        expectErrorBody(read, 410, "session_expired", {
          conversationId,
          expiredAt: registered.expiresAt,
          expiredForMs: expect.any(Number),
          reason: "timed_out",
        });
        expect(read.receivedAt).toBeGreaterThanOrEqual(expiresAtMs);
        expect(read.body.expiredForMs).toBeGreaterThanOrEqual(Math.max(0, read.sentAt - expiresAtMs));
        expect(read.body.expiredForMs).toBeLessThanOrEqual(read.receivedAt - expiresAtMs);
      }
    }
    for (const read of before) expect(read.status).toBe(200);
    for (const read of after) expect(read.status).toBe(410);
  });

  it("delivers a result while the session is live, answers a repeat with the first outcome, and lets the agent poll it", async () => {
    const conversationId = `delivered-${suffix}`;
    await register(conversationId);
    const task = await startTask(conversationId, { order_id: "A1" });
    expect(task.body).toEqual({
      status: "accepted",
      taskId: expect.stringMatching(/^[\w-]+$/),
      message: expect.any(String),
      callbackUrl: `${service.url}/conversations/${conversationId}/tasks/${task.taskId}/result`,
      callbackToken: expect.stringMatching(/^[\w-]{43}$/),
    });
    const pending = await call("POST", "/tools/get_task_result", {
      headers: toolAuth,
      body: { conversation_id: conversationId, task_id: task.taskId },
    });
    expect(pending).toMatchObject({
      status: 200,
      body: {
        status: "active",
        tasks: [{ taskId: task.taskId, toolName: "lookup_order", status: "pending" }],
      },
    });

    const delivered = await postResult(task.callbackPath, task.token, { result: { eta: "2 days" } });
    expect(delivered).toMatchObject({
      status: 200,
      body: { outcome: "delivered", taskId: task.taskId, pushed: false },
    });
    const repeat = await postResult(task.callbackPath, task.token, { result: { eta: "changed" } });
    expect(repeat).toMatchObject({
      status: 200,
      body: { outcome: "delivered", duplicate: true, taskId: task.taskId },
    });

    const polled = await call("POST", "/tools/get_task_result", {
      headers: toolAuth,
      body: { conversation_id: conversationId },
    });
    expect(polled).toMatchObject({
      status: 200,
      body: {
        status: "active",
        tasks: [
          {
            taskId: task.taskId,
            status: "completed",
            result: { status: "succeeded", result: { eta: "2 days" } },
          },
        ],
      },
    });
  });

  it("pushes a delivered result to the session's notifyUrl once, signed with the local notify secret", async () => {
    const conversationId = `pushed-${suffix}`;
    await register(conversationId, { notifyUrl: `${appUrl}/notify` });
    const task = await startTask(conversationId, { order_id: "P1" });
    pushes.length = 0;

    const delivered = await postResult(task.callbackPath, task.token, { result: { eta: "now" } });
    expect(delivered).toMatchObject({
      status: 200,
      body: { outcome: "delivered", taskId: task.taskId, pushed: true },
    });
    const repeat = await postResult(task.callbackPath, task.token, { result: { eta: "now" } });
    expect(repeat.body).toMatchObject({ outcome: "delivered", duplicate: true });

    expect(pushes).toHaveLength(1);
    const [push] = pushes;
    expect(JSON.parse(push?.body ?? "")).toEqual({
      type: "task_result",
      conversationId,
      taskId: task.taskId,
      toolName: "lookup_order",
      result: { status: "succeeded", result: { eta: "now" } },
      receivedAt: expect.any(String),
    });
    // Signed like ElevenLabs signs its webhooks, so the app reuses one verifier.
    const t = /^t=(\d+),/.exec(push?.signature ?? "")?.[1] ?? "";
    expect(push?.signature).toBe(signature(push?.body ?? "", t, LOCAL_SECRETS.NOTIFY_SIGNING_SECRET));
  });

  it("says delivery_failed when the app's notifyUrl fails, the first time and on a repeat, and in history", async () => {
    const conversationId = `push-failed-${suffix}`;
    await register(conversationId, { notifyUrl: `${appUrl}/notify-broken` });
    const task = await startTask(conversationId);

    const failed = await postResult(task.callbackPath, task.token, { result: { eta: "lost" } });
    expect(failed).toMatchObject({
      status: 200,
      body: { outcome: "delivery_failed", taskId: task.taskId, message: expect.any(String) },
    });
    const repeat = await postResult(task.callbackPath, task.token, { result: { eta: "lost" } });
    expect(repeat.body).toMatchObject({ outcome: "delivery_failed", duplicate: true, taskId: task.taskId });

    const history = await call("GET", `/conversations/${conversationId}`, { headers: serviceAuth });
    expect(history.body.tasks).toEqual([
      expect.objectContaining({ taskId: task.taskId, outcome: "delivery_failed" }),
    ]);
    const resultLine = history.body.messages.find((m: { kind: string }) => m.kind === "task_result");
    expect(resultLine?.data).toMatchObject({ taskId: task.taskId, outcome: "delivery_failed" });
  });

  it("takes a callback that arrives after expiry gracefully: session_expired, a WARN line, the result kept", async () => {
    const conversationId = `late-${suffix}`;
    const { expiresAtMs, body: registered } = await register(conversationId);
    const task = await startTask(conversationId);
    await waitUntilExpired(expiresAtMs);

    const late = await postResult(task.callbackPath, task.token, { result: { eta: "too late" } });
    expect(late).toMatchObject({ status: 200 });
    expect(late.body).toEqual({
      outcome: "session_expired",
      taskId: task.taskId,
      expiredAt: registered.expiresAt,
      expiredForMs: expect.any(Number),
      reason: "timed_out",
      message: expect.any(String),
    });
    expect(late.body.expiredForMs).toBeGreaterThanOrEqual(late.sentAt - expiresAtMs);
    expect(late.body.expiredForMs).toBeLessThanOrEqual(late.receivedAt - expiresAtMs);

    const repeat = await postResult(task.callbackPath, task.token, { result: { eta: "again" } });
    expect(repeat).toMatchObject({
      status: 200,
      body: {
        outcome: "session_expired",
        duplicate: true,
        taskId: task.taskId,
        expiredAt: registered.expiresAt,
        expiredForMs: late.body.expiredForMs,
      },
    });

    // Powertools writes WARN and ERROR lines to stderr, INFO to stdout.
    const warnings = jsonLines(`${service.stdout()}\n${service.stderr()}`).filter(
      (line) => line.message === "Callback arrived after session expired",
    );
    expect(warnings).toEqual([
      expect.objectContaining({
        level: "WARN",
        outcome: "callback_after_expiry",
        conversationId,
        taskId: task.taskId,
        expiredAt: registered.expiresAt,
        expiredForMs: late.body.expiredForMs,
      }),
    ]);
    expect(`${service.stdout()}${service.stderr()}`).not.toContain(task.token);

    const history = await call("GET", `/conversations/${conversationId}`, { headers: serviceAuth });
    expect(history.status).toBe(200);
    expect(history.body.tasks).toEqual([
      expect.objectContaining({
        taskId: task.taskId,
        status: "completed",
        outcome: "session_expired",
        result: { status: "succeeded", result: { eta: "too late" } },
        expiredAt: registered.expiresAt,
      }),
    ]);

    // Once expired, the agent hears it in words instead of starting or polling tasks.
    const tooLate = await call("POST", "/tools/lookup_order", {
      headers: toolAuth,
      body: { conversation_id: conversationId },
    });
    expect(tooLate.body).toEqual({
      status: "session_expired",
      reason: "timed_out",
      message: expect.any(String),
    });
    const poll = await call("POST", "/tools/get_task_result", {
      headers: toolAuth,
      body: { conversation_id: conversationId },
    });
    expect(poll.body).toMatchObject({ status: "session_expired" });
  });

  it("keeps a conversation's history after its session expired, and lists conversations page by page", async () => {
    const conversationId = `history-${suffix}`;
    const { expiresAtMs, body: registered } = await register(conversationId);
    const task = await startTask(conversationId, { order_id: "H1" });
    await postResult(task.callbackPath, task.token, { result: { eta: "tomorrow" } });
    await waitUntilExpired(expiresAtMs);

    const history = await call("GET", `/conversations/${conversationId}`, { headers: serviceAuth });
    expect(history.status).toBe(200);
    expect(history.body.meta).toMatchObject({ conversationId, sessionCount: 1, taskCount: 1 });
    expect(history.body.sessions).toEqual([
      {
        sessionId: registered.sessionId,
        createdAt: registered.createdAt,
        expiresAt: registered.expiresAt,
        status: "expired",
        endedAt: registered.expiresAt,
        reason: "timed_out",
      },
    ]);
    expect(history.body.messages.map((m: { kind: string }) => m.kind)).toEqual([
      "session_registered",
      "task_started",
      "task_result",
    ]);
    expect(history.body.tasks).toEqual([
      expect.objectContaining({
        taskId: task.taskId,
        toolName: "lookup_order",
        params: { order_id: "H1" },
        status: "completed",
        outcome: "delivered",
        result: { status: "succeeded", result: { eta: "tomorrow" } },
      }),
    ]);
    expect(history.text).not.toContain(task.token);
    expect(history.text).not.toContain("tokenHash");

    const all = await call("GET", "/conversations?limit=100", { headers: serviceAuth });
    expect(all.status).toBe(200);
    const ids = all.body.conversations.map((c: { conversationId: string }) => c.conversationId);
    expect(ids).toContain(conversationId);
    const first = await call("GET", "/conversations?limit=1", { headers: serviceAuth });
    expect(first.body).toEqual({ conversations: [expect.any(Object)], nextCursor: expect.any(String) });
    const second = await call(
      "GET",
      `/conversations?limit=1&cursor=${encodeURIComponent(first.body.nextCursor)}`,
      { headers: serviceAuth },
    );
    expect(second.status).toBe(200);
    expect(
      [...first.body.conversations, ...second.body.conversations].map(
        (c: { conversationId: string }) => c.conversationId,
      ),
    ).toEqual(ids.slice(0, 2));
  });

  describe("sessions follow the call (phone agents: no app registers the conversation)", () => {
    const phone = {
      system__agent_id: "agent_phone",
      system__call_sid: "CAe2e",
      system__caller_id: "+15551230000",
      system__called_number: "+15559870000",
    };
    const serviceLines = (message: string) =>
      jsonLines(`${service.stdout()}\n${service.stderr()}`).filter((line) => line.message === message);

    it("the first tool call starts the session: a callback before the expiry is delivered, after it session_expired (timed_out)", async () => {
      const conversationId = `phone-${suffix}`;
      // ElevenLabs' default tool method: GET with the parameters as query strings.
      const query = new URLSearchParams({ conversation_id: conversationId, order_id: "A1", ...phone });
      const first = await call("GET", `/tools/lookup_order?${query}`, { headers: toolAuth });
      expect(first).toMatchObject({ status: 200, body: { status: "accepted" } });
      const second = await startTask(conversationId, { order_id: "A2" });
      const session = await call("GET", `/conversations/${conversationId}/session`, { headers: serviceAuth });
      expect(session).toMatchObject({ status: 200, body: { agentId: "agent_phone" } });
      const expiresAtMs = Date.parse(session.body.expiresAt);
      expect(expiresAtMs - Date.parse(session.body.createdAt)).toBe(TTL_MS);

      const firstPath = new URL(String(first.body.callbackUrl)).pathname;
      const live = await postResult(firstPath, String(first.body.callbackToken), { result: { ok: 1 } });
      expect(live.receivedAt).toBeLessThan(expiresAtMs);
      expect(live).toMatchObject({ status: 200, body: { outcome: "delivered" } });

      await waitUntilExpired(expiresAtMs);
      const late = await postResult(second.callbackPath, second.token, { result: { ok: 2 } });
      expect(late).toMatchObject({
        status: 200,
        body: { outcome: "session_expired", reason: "timed_out", expiredAt: session.body.expiresAt },
      });
      // Never restarted by a tool call once it expired.
      const after = await call("GET", `/tools/lookup_order?${query}`, { headers: toolAuth });
      expect(after).toMatchObject({ status: 200, body: { status: "session_expired", reason: "timed_out" } });

      const history = await call("GET", `/conversations/${conversationId}`, { headers: serviceAuth });
      expect(history.body.meta.sessionStart).toMatchObject({
        by: "first_tool_call",
        callSid: "CAe2e",
        callerId: "+15551230000",
      });
      expect(history.body.sessions).toEqual([
        expect.objectContaining({ status: "expired", reason: "timed_out", endedAt: session.body.expiresAt }),
      ]);
      expect(serviceLines("Session started by the first tool call")).toContainEqual(
        expect.objectContaining({ level: "INFO", conversationId }),
      );
      // The caller's number is kept in the meta, never logged.
      expect(`${service.stdout()}${service.stderr()}`).not.toContain("+15551230000");
    });

    it("a signed post-call webhook ends a live session: the next callback is 200 session_expired (call_ended)", async () => {
      const conversationId = `ended-${suffix}`;
      await register(conversationId);
      const task = await startTask(conversationId);
      const ended = await postCall(JSON.stringify(transcriptionEvent(conversationId)));
      expect(ended).toMatchObject({ status: 200, body: { status: "stored" } });
      const late = await postResult(task.callbackPath, task.token, { result: { eta: "after the call" } });
      expect(late).toMatchObject({ status: 200, body: { outcome: "session_expired", reason: "call_ended" } });
      const tool = await call("POST", "/tools/lookup_order", {
        headers: toolAuth,
        body: { conversation_id: conversationId },
      });
      expect(tool).toMatchObject({ status: 200, body: { status: "session_expired", reason: "call_ended" } });
      const history = await call("GET", `/conversations/${conversationId}`, { headers: serviceAuth });
      expect(history.body.sessions).toEqual([
        expect.objectContaining({ status: "call_ended", reason: "call_ended" }),
      ]);
      expect(serviceLines("Callback arrived after session expired")).toContainEqual(
        expect.objectContaining({ level: "WARN", conversationId, reason: "call_ended" }),
      );
    });

    it("get_task_result: 200 'no tasks yet' before any session; task_id null or \"\" means every task", async () => {
      const conversationId = `poll-${suffix}`;
      const before = await call("POST", "/tools/get_task_result", {
        headers: toolAuth,
        body: { conversation_id: conversationId, task_id: null },
      });
      expect(before).toMatchObject({ status: 200, body: { status: "no_tasks", tasks: [] } });
      await startTask(conversationId);
      for (const taskId of [null, ""]) {
        const all = await call("POST", "/tools/get_task_result", {
          headers: toolAuth,
          body: { conversation_id: conversationId, task_id: taskId },
        });
        expect(all).toMatchObject({ status: 200, body: { status: "active" } });
        expect(all.body.tasks).toHaveLength(1);
      }
      const viaGet = await call("GET", `/tools/get_task_result?conversation_id=${conversationId}&task_id=`, {
        headers: toolAuth,
      });
      expect(viaGet).toMatchObject({ status: 200, body: { status: "active" } });
    });
  });

  it("stores a post-call webhook signed with the local webhook secret; a wrong signature stores nothing", async () => {
    const conversationId = `post-call-${suffix}`;
    const stored = await postCall(JSON.stringify(transcriptionEvent(conversationId)));
    expect(stored).toMatchObject({
      status: 200,
      body: { status: "stored", eventType: "post_call_transcription", conversationId },
    });
    const history = await call("GET", `/conversations/${conversationId}`, { headers: serviceAuth });
    expect(history.status).toBe(200);
    expect(history.body.messages.map((m: { kind: string; text?: string }) => [m.kind, m.text])).toEqual([
      ["transcript", "Hi, how can I help?"],
      ["transcript", undefined],
      ["transcript", "Great, thanks."],
      ["call_analysis", "Caller asked about order A1042; agent confirmed it shipped."],
    ]);
    expect(history.body.meta.call).toMatchObject({ callSuccessful: "success", transcriptLines: 3 });
    // tool_details repeats the tool's request headers, secrets included: never stored.
    expect(history.text).not.toContain("tool-secret-value-in-details");

    const forged = `forged-${suffix}`;
    const rejected = await postCall(JSON.stringify(transcriptionEvent(forged)), "not-the-webhook-secret");
    expectErrorBody(rejected, 401, "invalid_signature");
    const nothing = await call("GET", `/conversations/${forged}`, { headers: serviceAuth });
    expectErrorBody(nothing, 404, "conversation_not_found");
  });

  it("issues a signed URL with the server-side ElevenLabs key, and says so when ElevenLabs rejects the key or is busy", async () => {
    upstreamCalls.length = 0;
    const issued = await call("GET", "/signed-url?agentId=agent_01", { headers: serviceAuth });
    expect(issued.status).toBe(200);
    expect(issued.body).toEqual({
      signedUrl: `wss://api.elevenlabs.io/v1/convai/conversation?agent_id=agent_01&conversation_signature=sig_${suffix}`,
      expiresAt: expect.any(String),
      agentId: "agent_01",
    });
    const expiresAtMs = Date.parse(issued.body.expiresAt);
    expect(expiresAtMs).toBeGreaterThanOrEqual(issued.sentAt + SIGNED_URL_VALIDITY_MS);
    expect(expiresAtMs).toBeLessThanOrEqual(issued.receivedAt + SIGNED_URL_VALIDITY_MS);
    expect(upstreamCalls).toEqual([
      {
        path: "/v1/convai/conversation/get-signed-url",
        agentId: "agent_01",
        apiKey: LOCAL_SECRETS.ELEVENLABS_API_KEY,
      },
    ]);

    try {
      upstreamMode = "unauthorized";
      const refused = await call("GET", "/signed-url?agentId=agent_01", { headers: serviceAuth });
      expectErrorBody(refused, 502, "upstream_auth_failed");
      // A busy ElevenLabs is worth a retry: 503 with its Retry-After passed on.
      upstreamMode = "busy";
      const busy = await call("GET", "/signed-url?agentId=agent_01", { headers: serviceAuth });
      expectErrorBody(busy, 503, "service_unavailable");
      expect(busy.headers.get("retry-after")).toBe("7");
    } finally {
      upstreamMode = "ok";
    }

    const missing = await call("GET", "/signed-url", { headers: serviceAuth });
    expectErrorBody(missing, 400, "invalid_agent_id", { details: ["query.agentId is required"] });
    expect(upstreamCalls).toHaveLength(3);

    // The key and the signed URL (a credential for 15 minutes) never reach a log line.
    const logs = `${service.stdout()}${service.stderr()}`;
    expect(logs).not.toContain(LOCAL_SECRETS.ELEVENLABS_API_KEY);
    expect(logs).not.toContain(`sig_${suffix}`);
  });

  describe("error bodies: a specific code and a sentence, as JSON, never internals", () => {
    it("400 for malformed JSON, an invalid id, unknown fields and a bad limit", async () => {
      const path = `/conversations/bad-json-${suffix}/session`;
      expectErrorBody(
        await call("POST", path, { headers: serviceAuth, body: '{"agentId": ' }),
        400,
        "invalid_json",
      );
      expectErrorBody(
        await call("POST", "/tools/lookup_order", { headers: toolAuth, body: "{not json" }),
        400,
        "invalid_json",
      );
      expectErrorBody(
        await call("GET", `/conversations/${encodeURIComponent("bad id!")}/session`, {
          headers: serviceAuth,
        }),
        400,
        "invalid_conversation_id",
        { details: ["conversationId may only contain letters, digits, '_' and '-'"] },
      );
      expectErrorBody(
        await call("POST", path, { headers: serviceAuth, body: { colour: "red" } }),
        400,
        "invalid_request",
        { details: ["body has unknown field colour"] },
      );
      expectErrorBody(
        await call("POST", "/tools/lookup_order", { headers: toolAuth, body: { order_id: "A1" } }),
        400,
        "invalid_request",
        { details: ["body.conversation_id is required"] },
      );
      for (const limit of ["many", "0", "101"]) {
        expectErrorBody(
          await call("GET", `/conversations?limit=${limit}`, { headers: serviceAuth }),
          400,
          "invalid_limit",
          { details: ["query.limit"] },
        );
      }
      expectErrorBody(
        await call("GET", "/conversations?cursor=not-a-cursor", { headers: serviceAuth }),
        400,
        "invalid_cursor",
        { details: ["query.cursor"] },
      );
    });

    it("401 for a missing or wrong service token, tool secret, callback token or webhook signature", async () => {
      const conversationId = `auth-${suffix}`;
      await register(conversationId);
      const task = await startTask(conversationId);

      expectErrorBody(await call("GET", "/conversations"), 401, "unauthorized");
      expectErrorBody(
        await call("GET", "/conversations", { headers: { authorization: "Bearer local-tool-secret" } }),
        401,
        "unauthorized",
      );
      expectErrorBody(
        await call("POST", "/tools/lookup_order", {
          headers: { "x-tool-secret": "not-the-tool-secret" },
          body: { conversation_id: conversationId },
        }),
        401,
        "unauthorized",
      );
      expectErrorBody(
        await call("POST", "/tools/get_task_result", { body: { conversation_id: conversationId } }),
        401,
        "unauthorized",
      );
      expectErrorBody(
        await postResult(task.callbackPath, "not-the-task-token", { result: 1 }),
        401,
        "unauthorized",
      );
      expectErrorBody(await call("POST", task.callbackPath, { body: { result: 1 } }), 401, "unauthorized");
      expectErrorBody(
        await call("POST", "/webhooks/elevenlabs/post-call", {
          body: JSON.stringify(transcriptionEvent(conversationId)),
        }),
        401,
        "invalid_signature",
      );
      // None of those touched the task: its real token still delivers.
      const delivered = await postResult(task.callbackPath, task.token, { result: 1 });
      expect(delivered.body).toMatchObject({ outcome: "delivered" });
    });

    it("404 for a session never registered, an unknown task, an unknown path and an unknown conversation", async () => {
      const never = `never-${suffix}`;
      expectErrorBody(
        await call("GET", `/conversations/${never}/session`, { headers: serviceAuth }),
        404,
        "session_not_found",
        { conversationId: never },
      );
      expectErrorBody(
        await postResult(`/conversations/${never}/tasks/${randomUUID()}/result`, "some-token", { result: 1 }),
        404,
        "task_not_found",
      );
      // The agent's tools are never a 404: a conversation's first tool call starts its session
      // (SESSION_START=first-tool-call, the default), so phone agents work without an app.
      const tool = await call("POST", "/tools/lookup_order", {
        headers: toolAuth,
        body: { conversation_id: `phone-first-${suffix}` },
      });
      expect(tool).toMatchObject({ status: 200, body: { status: "accepted" } });
      expectErrorBody(await call("GET", "/nope", { headers: serviceAuth }), 404, "route_not_found");
      expectErrorBody(
        await call("GET", `/conversations/${never}/session/extra`, { headers: serviceAuth }),
        404,
        "route_not_found",
      );
      expectErrorBody(
        await call("GET", `/conversations/${never}`, { headers: serviceAuth }),
        404,
        "conversation_not_found",
      );
    });

    it("405 with an Allow header naming each allowed method once", async () => {
      const both = await call("DELETE", `/conversations/x-${suffix}/session`, { headers: serviceAuth });
      expectErrorBody(both, 405, "method_not_allowed");
      expect(both.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "POST"]);

      const tool = await call("DELETE", "/tools/lookup_order", { headers: toolAuth });
      expectErrorBody(tool, 405, "method_not_allowed");
      expect(tool.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "POST"]);

      // Four routes match this path (get_task_result and {toolName}, GET and POST): each method once.
      const poll = await call("DELETE", "/tools/get_task_result", { headers: toolAuth });
      expectErrorBody(poll, 405, "method_not_allowed");
      expect(poll.headers.get("allow")?.split(", ").sort()).toEqual(["GET", "POST"]);
    });

    it("413 for a body over the route's limit, whether the handler or the local server sees it first", async () => {
      const limit = ROUTES.find((r) => r.name === "register-session")?.maxBodyBytes ?? 0;
      const path = `/conversations/big-${suffix}/session`;
      // Whitespace is valid JSON: exactly at the limit is accepted, one byte more is not.
      const atLimit = await call("POST", path, { headers: serviceAuth, body: `{}${" ".repeat(limit - 2)}` });
      expect(atLimit.status).toBe(201);
      expectErrorBody(
        await call("POST", path, { headers: serviceAuth, body: `{}${" ".repeat(limit - 1)}` }),
        413,
        "payload_too_large",
      );
      expectErrorBody(
        await call("POST", path, { headers: serviceAuth, body: `{}${" ".repeat(limit + 128 * 1024)}` }),
        413,
        "payload_too_large",
      );
      // GET routes take no body at all.
      const withBody = await rawRequest(service.url, {
        method: "GET",
        path: "/conversations",
        headers: { ...serviceAuth, "content-type": "application/json" },
        body: "{}",
      });
      expect({ status: withBody.status, body: JSON.parse(withBody.body) }).toEqual({
        status: 413,
        body: { error: "payload_too_large", message: expect.stringMatching(/0 bytes/) },
      });
    });
  });

  it("prints request lines and JSON logs, but no CloudWatch metric documents, on the developer's console", () => {
    const stdout = service.stdout();
    expect(stdout).toMatch(/^GET \/conversations\/[\w-]+\/session -> 200 \(\d+\.\d ms\)$/m);
    expect(jsonLines(stdout).some((line) => line.level === "INFO")).toBe(true);
    // EMF metric documents are for CloudWatch: locally they would bury the log lines.
    const metricDocuments = jsonLines(stdout).filter((line) => "_aws" in line);
    expect(
      metricDocuments.length,
      `metric documents on stdout, e.g. ${JSON.stringify(metricDocuments[0])}`,
    ).toBe(0);
  });

  it("erases a conversation with DELETE, idempotently: its history is gone afterwards", async () => {
    const conversationId = `erase-${randomUUID().slice(0, 8)}`;
    expect(
      (await call("POST", `/conversations/${conversationId}/session`, { headers: serviceAuth, body: {} }))
        .status,
    ).toBe(201);
    const first = await call("DELETE", `/conversations/${conversationId}`, { headers: serviceAuth });
    expect(first.status).toBe(200);
    const again = await call("DELETE", `/conversations/${conversationId}`, { headers: serviceAuth });
    expect(again.status).toBe(200);
    expect((await call("GET", `/conversations/${conversationId}`, { headers: serviceAuth })).status).toBe(
      404,
    );
  });

  it("has exercised every route of the route table with a 2xx answer", () => {
    expect([...exercised].sort()).toEqual(ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });
});
