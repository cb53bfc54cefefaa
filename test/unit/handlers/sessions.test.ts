import { PutCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { makeHandler as makeGet } from "../../../functions/get-session/handler.js";
import { makeHandler as makeRegister } from "../../../functions/register-session/handler.js";
import { createDocClient } from "../../support/doc-client.js";
import { apiEvent, bodyOf } from "../../support/events.js";
import { fakeLiveTables, type LiveState } from "../../support/fake-live-table.js";
import { SERVICE_TOKEN, sessionItem, T0, TEN_MIN, testDependencies } from "../../support/live-fixtures.js";

const doc = createDocClient();
const ddb = mockClient(doc);
const auth = { Authorization: `Bearer ${SERVICE_TOKEN}` };
const sessionPath = (id: string) => ({
  path: `/conversations/${id}/session`,
  pathParameters: { conversationId: id },
});

describe("session routes", () => {
  let state: LiveState;
  let setup: ReturnType<typeof testDependencies>;

  beforeEach(() => {
    ddb.reset();
    vi.useFakeTimers();
    vi.setSystemTime(T0);
    state = fakeLiveTables(ddb, { tasks: new Map(), messages: [] });
    setup = testDependencies({ doc });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("registers a session: 201 with createdAt, expiresAt and ttlSeconds", async () => {
    const response = await makeRegister(setup.deps)(
      apiEvent({
        method: "POST",
        ...sessionPath("conv-1"),
        headers: auth,
        body: { agentId: "agent_1", notifyUrl: "https://app.example.test/live" },
      }),
    );
    expect(response.statusCode).toBe(201);
    expect(bodyOf(response)).toMatchObject({
      conversationId: "conv-1",
      createdAt: "2026-11-27T10:00:00.000Z",
      expiresAt: "2026-11-27T10:10:00.000Z",
      ttlSeconds: 600,
      agentId: "agent_1",
    });
    expect(ddb).toHaveReceivedCommandTimes(TransactWriteCommand, 1);
    expect(setup.metrics.counts).toEqual({ SessionRegistered: 1 });
  });

  it("accepts an empty body", async () => {
    const response = await makeRegister(setup.deps)(
      apiEvent({ method: "POST", ...sessionPath("conv-1"), headers: auth }),
    );
    expect(response.statusCode).toBe(201);
  });

  it.each([
    ["no Authorization header", {}],
    ["a wrong token", { Authorization: "Bearer wrong" }],
    ["a non-bearer scheme", { Authorization: `Basic ${SERVICE_TOKEN}` }],
  ])("answers 401 for %s and writes nothing", async (_label, headers) => {
    const response = await makeRegister(setup.deps)(
      apiEvent({ method: "POST", ...sessionPath("conv-1"), headers }),
    );
    expect(response.statusCode).toBe(401);
    expect(bodyOf(response)).toEqual({
      error: "unauthorized",
      message: "Missing or invalid credentials: this route expects Authorization: Bearer <service token>.",
    });
    expect(ddb.calls()).toHaveLength(0);
  });

  it.each([
    ["an invalid conversation id", "conv 1", {}],
    ["invalid JSON", "conv-1", "{"],
    ["a non-URL notifyUrl", "conv-1", { notifyUrl: "nope" }],
    ["an unknown field", "conv-1", { ttl: 5 }],
    ["metadata that is not flat", "conv-1", { metadata: { a: [1] } }],
  ])("answers 400 for %s with a readable message and writes nothing", async (_label, id, body) => {
    const response = await makeRegister(setup.deps)(
      apiEvent({ method: "POST", ...sessionPath(id), headers: auth, body }),
    );
    expect(response.statusCode).toBe(400);
    const payload = bodyOf(response);
    expect(payload.error).toMatch(/^[a-z_]+$/);
    expect(String(payload.message)).toMatch(/\.$/);
    expect(ddb).not.toHaveReceivedCommand(TransactWriteCommand);
    expect(ddb).not.toHaveReceivedCommand(PutCommand);
  });

  it("answers 200 with remainingMs while active", async () => {
    state.session = sessionItem("conv-1");
    vi.setSystemTime(T0 + 599_999);
    const response = await makeGet(setup.deps)(
      apiEvent({ method: "GET", ...sessionPath("conv-1"), headers: auth }),
    );
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ status: "active", remainingMs: 1, ttlSeconds: 600 });
  });

  it("answers 410 session_expired with expiredAt at 600 000 ms", async () => {
    state.session = sessionItem("conv-1");
    vi.setSystemTime(T0 + TEN_MIN);
    const response = await makeGet(setup.deps)(
      apiEvent({ method: "GET", ...sessionPath("conv-1"), headers: auth }),
    );
    expect(response.statusCode).toBe(410);
    expect(bodyOf(response)).toMatchObject({
      error: "session_expired",
      expiredAt: "2026-11-27T10:10:00.000Z",
      expiredForMs: 0,
    });
  });

  it("answers 404 session_not_found when no session was ever registered", async () => {
    const response = await makeGet(setup.deps)(
      apiEvent({ method: "GET", ...sessionPath("conv-1"), headers: auth }),
    );
    expect(response.statusCode).toBe(404);
    expect(bodyOf(response)).toMatchObject({ error: "session_not_found" });
  });

  it("answers 503 with Retry-After when DynamoDB times out", async () => {
    ddb.reset();
    ddb.onAnyCommand().rejects(Object.assign(new Error("socket hang up"), { name: "TimeoutError" }));
    const response = await makeGet(setup.deps)(
      apiEvent({ method: "GET", ...sessionPath("conv-1"), headers: auth }),
    );
    expect(response.statusCode).toBe(503);
    expect(response.headers?.["retry-after"]).toBeDefined();
    expect(bodyOf(response)).toMatchObject({ error: "service_unavailable" });
  });

  it("answers a generic 500 JSON (no stack trace) for an unexpected error", async () => {
    ddb.reset();
    ddb.onAnyCommand().rejects(new TypeError("Cannot read properties of undefined (reading 'x')"));
    const response = await makeGet(setup.deps)(
      apiEvent({ method: "GET", ...sessionPath("conv-1"), headers: auth }),
    );
    expect(response.statusCode).toBe(500);
    expect(response.body).not.toMatch(/TypeError|reading 'x'|\.ts:/);
    expect(setup.metrics.counts).toEqual({ UnexpectedError: 1 });
  });
});
