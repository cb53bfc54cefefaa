import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findFreePort } from "../../local/dynamodb-local.js";
import { LOCAL_SECRETS } from "../../local/local-env.js";
import { type SpawnedServer, spawnLocalServer, timeLimitForStarts } from "../support/spawn-local-server.js";

/**
 * `npm start` with its default flags runs the example task runner in process: a tool call is
 * done without anyone holding its callback token, and the token never shows in an answer or in
 * the stored history. Bounds are poll counts, never timed assertions.
 */
/** Long enough for the first calls on a loaded machine, short enough to wait out. */
const TTL_MS = 10_000;
/** A base64url run as long as a task token (32 random bytes): what a leaked token looks like. */
const TOKEN_SHAPE = /[A-Za-z0-9_-]{43}/;

describe("npm start runs the example runner in process (default flags)", () => {
  let service: SpawnedServer;
  const rawAnswers: string[] = [];

  const call = async (method: string, path: string, body?: unknown, tool = false) => {
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: {
        "content-type": "application/json",
        ...(tool
          ? { "x-tool-secret": LOCAL_SECRETS.TOOL_SECRET }
          : { authorization: `Bearer ${LOCAL_SECRETS.SERVICE_TOKEN}` }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    rawAnswers.push(text);
    return { status: response.status, body: JSON.parse(text) as Record<string, unknown> };
  };
  const tool = (name: string, body: Record<string, unknown>) => call("POST", `/tools/${name}`, body, true);

  beforeAll(async () => {
    service = await spawnLocalServer({
      launcher: "npm",
      args: ["--port", String(await findFreePort()), "--in-memory", "--quiet"],
      env: {
        SESSION_TTL_MS: String(TTL_MS),
        RUNNER_URL: "",
        EXPOSE_CALLBACK_IN_TOOL_RESPONSE: "",
        TOOL_INLINE_WAIT_MS: "",
      },
    });
  }, timeLimitForStarts(1));
  afterAll(async () => {
    await service?.stop();
  });

  it("says so in its banner", () => {
    expect(service.stdout()).toMatch(/task dispatch\s+in-process example runner \(lookup_order, sleep\)/);
  });

  it("answers lookup_order within 3 s of polling, a late sleep as session_expired, and never shows a token", async () => {
    const id = `conv-runner-${Date.now()}`;
    const registered = await call("POST", `/conversations/${id}/session`, { agentId: "agent_e2e" });
    expect(registered.status).toBe(201);
    const expiresAtMs = Date.parse(String(registered.body.expiresAt));

    // lookup_order: answered inline when the runner beats TOOL_INLINE_WAIT_MS (it nearly always
    // does), else accepted; either way without a callback, and the agent's poll has the result
    // within 30 polls 100 ms apart (3 s).
    const lookup = await tool("lookup_order", { conversation_id: id, order_id: "A-1001" });
    expect(lookup.body).toMatchObject({ taskId: expect.any(String) });
    expect(["completed", "accepted"]).toContain(lookup.body.status);
    expect(lookup.body).not.toHaveProperty("callbackToken");
    expect(lookup.body).not.toHaveProperty("callbackUrl");
    const expectedResult = { status: "succeeded", result: { orderId: "A-1001", currency: "EUR" } };
    if (lookup.body.status === "completed") expect(lookup.body.result).toMatchObject(expectedResult);
    let polled: Record<string, unknown> | undefined;
    for (let poll = 0; poll < 30; poll++) {
      const answer = await tool("get_task_result", { conversation_id: id, task_id: lookup.body.taskId });
      const [task] = answer.body.tasks as Record<string, unknown>[];
      if (task?.status === "completed") {
        polled = task;
        break;
      }
      await sleep(100);
    }
    expect(polled).toMatchObject({ toolName: "lookup_order", status: "completed", result: expectedResult });

    // sleep outlives the session: its callback is answered session_expired, the result kept.
    const seconds = Math.ceil((expiresAtMs - Date.now()) / 1000) + 1;
    const nap = await tool("sleep", { conversation_id: id, seconds });
    expect(nap.body).toMatchObject({ status: "accepted" });
    let history: Record<string, unknown> | undefined;
    for (let read = 0; read < 4 * (seconds + 10); read++) {
      await sleep(250);
      const answer = await call("GET", `/conversations/${id}`);
      const tasks = answer.body.tasks as Record<string, unknown>[];
      if (tasks.some((t) => t.taskId === nap.body.taskId && t.status === "completed")) {
        history = answer.body;
        break;
      }
    }
    expect(history?.tasks).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          taskId: nap.body.taskId,
          toolName: "sleep",
          status: "completed",
          outcome: "session_expired",
          result: { status: "succeeded", result: { slept: seconds } },
        }),
        expect.objectContaining({ taskId: lookup.body.taskId, outcome: "delivered" }),
      ]),
    );
    // The session is over: the agent's next tool call is told so.
    expect((await tool("lookup_order", { conversation_id: id, order_id: "A-1" })).body).toMatchObject({
      status: "session_expired",
    });

    // No answer and no stored history line carries a callback token, searched in the raw JSON.
    for (const raw of rawAnswers) {
      expect(raw).not.toMatch(/callbackToken|Bearer/i);
      expect(raw).not.toMatch(TOKEN_SHAPE);
    }
  });
});
