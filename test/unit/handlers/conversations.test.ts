import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { beforeEach, describe, expect, it } from "vitest";
import { encodeCursor } from "../../../functions/core/conversation-items.js";
import { makeHandler as makeGet } from "../../../functions/get-conversation/handler.js";
import { makeHandler as makeList } from "../../../functions/list-conversations/handler.js";
import { createDocClient } from "../../support/doc-client.js";
import { apiEvent, bodyOf } from "../../support/events.js";
import { SERVICE_TOKEN, T0, taskItem, testDependencies } from "../../support/live-fixtures.js";

const doc = createDocClient();
const ddb = mockClient(doc);
const auth = { Authorization: `Bearer ${SERVICE_TOKEN}` };
const meta = { conversationId: "conv_1", sk: "meta", createdAt: "2026-11-27T10:00:00.000Z", updatedAt: "u" };

const getRequest = (conversationId: string, query?: Record<string, string>, headers = auth) =>
  apiEvent({
    method: "GET",
    path: `/conversations/${conversationId}`,
    pathParameters: { conversationId },
    headers,
    ...(query ? { query } : {}),
  });
const listRequest = (query?: Record<string, string>) =>
  apiEvent({ method: "GET", path: "/conversations", headers: auth, ...(query ? { query } : {}) });

describe("history routes (mocked DynamoDB)", () => {
  let setup: ReturnType<typeof testDependencies>;
  beforeEach(() => {
    ddb.reset();
    setup = testDependencies({ doc });
  });

  it("answers 404 conversation_not_found for a conversation never seen", async () => {
    ddb.on(GetCommand).resolves({});
    const response = await makeGet(setup.deps)(getRequest("conv_unknown"));
    expect(response.statusCode).toBe(404);
    expect(bodyOf(response)).toEqual({
      error: "conversation_not_found",
      message: "No history exists for this conversation.",
    });
    expect(setup.metrics.counts).toEqual({ HistoryNotFound: 1 });
  });

  it("returns tasks with their outcomes but never their token hash", async () => {
    ddb.on(GetCommand).resolves({ Item: meta });
    ddb.on(QueryCommand).resolves({ Items: [] });
    ddb.on(QueryCommand, { ExpressionAttributeValues: { ":id": "conv_1", ":prefix": "task#" } }).resolves({
      Items: [taskItem("conv_1", "task_1", { status: "completed", outcome: "session_expired" })],
    });
    const response = await makeGet({ ...setup.deps, now: () => T0 })(getRequest("conv_1"));
    expect(response.statusCode).toBe(200);
    const body = bodyOf(response);
    expect(body.tasks).toEqual([expect.objectContaining({ taskId: "task_1", outcome: "session_expired" })]);
    expect(response.body).not.toContain("tokenHash");
    expect(setup.metrics.counts).toEqual({ HistoryRead: 1 });
  });

  it.each([
    ["limit=0", { limit: "0" }, "invalid_limit"],
    ["limit=101", { limit: "101" }, "invalid_limit"],
    ["limit=abc", { limit: "abc" }, "invalid_limit"],
    ["limit=-5", { limit: "-5" }, "invalid_limit"],
    ["a cursor that is not base64url JSON", { cursor: "%%%" }, "invalid_cursor"],
    ["a forged cursor", { cursor: encodeCursor({ conversationId: "conv_1", sk: "meta" }) }, "invalid_cursor"],
    [
      "another conversation's cursor",
      { cursor: encodeCursor({ conversationId: "conv_2", sk: "msg#1" }) },
      "invalid_cursor",
    ],
  ])(
    "answers 400 for %s on GET /conversations/{id}, before reading anything",
    async (_label, query, code) => {
      const response = await makeGet(setup.deps)(getRequest("conv_1", query));
      expect(response.statusCode).toBe(400);
      // Either way the caller is pointed at the query parameter it sent.
      expect(bodyOf(response)).toMatchObject({ error: code, details: [`query.${Object.keys(query)[0]}`] });
      expect(ddb.calls()).toHaveLength(0);
    },
  );

  it.each([
    ["limit=1000", { limit: "1000" }, "invalid_limit"],
    ["a cursor that is not JSON", { cursor: "bm90LWpzb24" }, "invalid_cursor"],
  ])("answers 400 for %s on GET /conversations", async (_label, query, code) => {
    const response = await makeList(setup.deps)(listRequest(query));
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response)).toMatchObject({ error: code, details: [`query.${Object.keys(query)[0]}`] });
    expect(ddb.calls()).toHaveLength(0);
  });

  it("answers 400 invalid_conversation_id for a malformed id", async () => {
    const response = await makeGet(setup.deps)(getRequest("conv 1"));
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response)).toMatchObject({ error: "invalid_conversation_id" });
  });

  it("answers 401 without the service token", async () => {
    const list = await makeList(setup.deps)(apiEvent({ method: "GET", path: "/conversations" }));
    const get = await makeGet(setup.deps)(getRequest("conv_1", undefined, { Authorization: "Bearer wrong" }));
    expect([list.statusCode, get.statusCode]).toEqual([401, 401]);
    expect(ddb.calls()).toHaveLength(0);
  });

  it("answers 503 with Retry-After when DynamoDB throttles a history read", async () => {
    ddb.on(QueryCommand).rejects(Object.assign(new Error("slow down"), { name: "ThrottlingException" }));
    const response = await makeList(setup.deps)(listRequest());
    expect(response.statusCode).toBe(503);
    expect(response.headers?.["retry-after"]).toBeDefined();
  });
});
