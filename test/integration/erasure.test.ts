import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeHandler as makeDelete } from "../../functions/delete-conversation/handler.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { apiEvent, bodyOf } from "../support/events.js";
import { SERVICE_TOKEN } from "../support/live-fixtures.js";
import { createLiveHarness, harnessEnv, type LiveHarness, liveRequests } from "../support/live-harness.js";
import { conversationItems } from "../support/table-snapshot.js";

const erase = (conversationId: string, token = SERVICE_TOKEN) =>
  apiEvent({
    method: "DELETE",
    path: `/conversations/${conversationId}`,
    pathParameters: { conversationId },
    headers: { authorization: `Bearer ${token}` },
  });

describe("erasure and rotation on DynamoDB Local", () => {
  let tables: LocalTables;
  let live: LiveHarness;
  let del: ReturnType<typeof makeDelete>;
  const itemsOf = (conversationId: string) =>
    conversationItems(tables.doc, tables.names.conversations, conversationId);

  beforeAll(async () => {
    tables = await createLocalTables();
    live = createLiveHarness({ doc: tables.doc, tables: tables.names });
    del = makeDelete(live.deps);
  });
  afterAll(async () => tables?.drop());

  it("ends the live session, deletes meta, lines and tasks; a late callback is 404 and re-creates nothing", async () => {
    const id = `conv_erase_${Date.now()}`;
    expect((await live.handlers.register(liveRequests.register(id))).statusCode).toBe(201);
    expect((await live.handlers.callTool(liveRequests.callTool(id))).statusCode).toBe(200);
    const message = live.dispatched.at(-1);
    if (!message) throw new Error("no task dispatched");
    expect((await itemsOf(id)).length).toBeGreaterThan(2);

    const response = await del(erase(id));
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ conversationId: id, erased: true });
    expect(await itemsOf(id)).toEqual([]);
    // The session ended at the erasure, and says so without any of the erased data.
    const session = await live.handlers.getSession(liveRequests.getSession(id));
    expect(session.statusCode).toBe(410);
    expect(bodyOf(session)).toMatchObject({ error: "session_expired", reason: "deleted" });

    const late = await live.handlers.result(liveRequests.result(message));
    expect(late.statusCode).toBe(404);
    expect(bodyOf(late).error).toBe("task_not_found");
    // The call goes on at ElevenLabs: its next tool call starts no new session and writes nothing.
    const tool = await live.handlers.callTool(liveRequests.callTool(id));
    expect(bodyOf(tool)).toMatchObject({ status: "session_expired", reason: "deleted" });
    expect(live.dispatched.at(-1)).toBe(message);
    expect(await itemsOf(id)).toEqual([]);

    const again = await del(erase(id));
    expect(again.statusCode).toBe(200);
    expect(bodyOf(again).itemsDeleted).toBe(0);
  });

  it("after an erasure, only the app's registration starts a new session (a first tool call does not)", async () => {
    const id = `conv_reuse_${Date.now()}`;
    expect((await live.handlers.callTool(liveRequests.callTool(id))).statusCode).toBe(200);
    expect((await del(erase(id))).statusCode).toBe(200);
    expect(bodyOf(await live.handlers.callTool(liveRequests.callTool(id)))).toMatchObject({
      status: "session_expired",
      reason: "deleted",
    });
    expect(await itemsOf(id)).toEqual([]);

    expect((await live.handlers.register(liveRequests.register(id))).statusCode).toBe(201);
    expect(bodyOf(await live.handlers.callTool(liveRequests.callTool(id))).status).toBe("accepted");
  });

  it("a callback racing the erasure either lands before it (and is erased) or is refused", async () => {
    const id = `conv_race_${Date.now()}`;
    await live.handlers.register(liveRequests.register(id));
    await live.handlers.callTool(liveRequests.callTool(id));
    const message = live.dispatched.at(-1);
    if (!message) throw new Error("no task dispatched");
    const [, callback] = await Promise.all([
      del(erase(id)),
      live.handlers.result(liveRequests.result(message)),
    ]);
    expect([200, 404]).toContain(callback.statusCode);
    // Whatever order they ran in, a retry of the erasure leaves nothing (and the first left at most
    // what the callback wrote before the session item was gone).
    await del(erase(id));
    expect(await itemsOf(id)).toEqual([]);
  });

  it("erases a conversation with thousands of lines in bounded pages", async () => {
    const id = `conv_long_${Date.now()}`;
    const now = Date.now();
    await live.deps.conversations.appendMessages(
      id,
      Array.from({ length: 2100 }, (_, i) => ({
        kind: "transcript" as const,
        atMs: now + i,
        id: `l${i}`,
        data: {},
      })),
    );
    const response = await del(erase(id));
    expect(bodyOf(response).itemsDeleted).toBe(2101);
    expect(await itemsOf(id)).toEqual([]);
  });

  it("accepts the previous service token during a rotation and refuses it after", async () => {
    const rotating = createLiveHarness({
      doc: tables.doc,
      tables: tables.names,
      env: { ...harnessEnv(tables.names), SERVICE_TOKEN: "tok_new", SERVICE_TOKEN_PREVIOUS: SERVICE_TOKEN },
    });
    const id = `conv_rot_${Date.now()}`;
    expect((await makeDelete(rotating.deps)(erase(id, SERVICE_TOKEN))).statusCode).toBe(200);
    expect((await makeDelete(rotating.deps)(erase(id, "tok_new"))).statusCode).toBe(200);
    const after = createLiveHarness({
      doc: tables.doc,
      tables: tables.names,
      env: { ...harnessEnv(tables.names), SERVICE_TOKEN: "tok_new" },
    });
    expect((await makeDelete(after.deps)(erase(id, SERVICE_TOKEN))).statusCode).toBe(401);
    expect((await makeDelete(after.deps)(erase(id, "tok_new"))).statusCode).toBe(200);
  });
});
