import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { TaskMessage } from "../../functions/core/dispatcher.js";
import { fileParker } from "../../functions/core/parking.js";
import { replayParkingFile } from "../../functions/core/replay-parked.js";
import { DYNAMODB_LOCAL_RUN_MS, timeLimitForRuns } from "../support/budget.js";
import { apiEvent, bodyOf } from "../support/events.js";
import { useHistoryHarness } from "../support/history-harness.js";
import { TOOL_SECRET } from "../support/live-fixtures.js";
import { liveRequests } from "../support/live-harness.js";
import { line, transcriptionEvent } from "../support/post-call-fixtures.js";

/**
 * Issue 19: any JSON a caller sends is either stored faithfully or refused with a 400 before any
 * write, on DynamoDB Local through the real DocumentClient and the route handlers; a signed
 * webhook is always stored (what cannot be is noted); tampered cursors are a 400.
 * Each reproduction of the issue is named "reproduction N".
 */
const RUNS = { RESULT: 40, PARAMS: 30, QUERY: 20, METADATA: 25, WEBHOOK: 15 } as const;

/** JSON with sorted keys (DynamoDB keeps a map's content, not its key order); own `__proto__` keys kept. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );

/** Keys that broke the marshaller or vanish on assignment, the escape character, and anything else. */
const jsonKey = fc.oneof(
  fc.constantFrom(
    "constructor",
    "__proto__",
    "toString",
    "valueOf",
    "hasOwnProperty",
    "~",
    "~constructor",
    "",
    "a",
  ),
  fc.string({ maxLength: 6, unit: "binary" }),
);

/** Number texts at DynamoDB's edges: overflow to Infinity, underflow, beyond 2^53, the 1e-130 limit. */
const numberText = fc.oneof(
  fc.constantFrom(
    "1e400",
    "-1e400",
    "5e-324",
    "18446744073709551616",
    "1e-130",
    "1e-131",
    "-0",
    "0.1",
    "1e125",
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.integer().map(String),
);

/** Raw JSON texts (so numbers like 1e400 and lone surrogates can be written at all), nested up to 30 deep. */
const { json: jsonText } = fc.letrec<{ json: string; object: string }>((tie) => ({
  json: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    numberText,
    fc.string({ maxLength: 8, unit: "binary" }).map((s) => JSON.stringify(s)),
    fc.constantFrom("true", "false", "null"),
    tie("object"),
    fc.array(tie("json"), { maxLength: 3 }).map((items) => `[${items.join(",")}]`),
  ),
  object: fc
    .array(fc.tuple(jsonKey, tie("json")), { maxLength: 4 })
    .map((entries) => `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`),
}));
const objectText = jsonText.filter((text) => text.startsWith("{"));
/** A few values nested past DynamoDB's 32 levels, the other way to be unstorable. */
const deepText = fc.integer({ min: 20, max: 40 }).map((depth) => `${"[".repeat(depth)}1${"]".repeat(depth)}`);

describe("caller JSON on DynamoDB Local: stored faithfully, or a 400 that writes nothing", () => {
  const harness = useHistoryHarness();

  const liveConversation = async () => {
    const h = harness();
    const conv = `storable-${randomUUID()}`;
    expect((await h.handlers.register(liveRequests.register(conv, {}))).statusCode).toBe(201);
    return conv;
  };
  const startTask = async (conv: string, body: string = `{"conversation_id":"${conv}"}`) => {
    const h = harness();
    const before = h.dispatched.length;
    const response = await h.handlers.callTool(toolEvent(body));
    return { response, message: h.dispatched[before] as TaskMessage | undefined };
  };
  const toolEvent = (body: string, toolName = "lookup_order", query?: Record<string, string>) =>
    apiEvent({
      method: "POST",
      path: `/tools/${toolName}`,
      ...(toolName === "get_task_result" ? {} : { pathParameters: { toolName } }),
      headers: { "x-tool-secret": TOOL_SECRET, "content-type": "application/json" },
      body,
      ...(query ? { query } : {}),
    });
  const readTask = async (conv: string, taskId: string) => {
    const answer = bodyOf(await harness().handlers.poll(liveRequests.poll(conv, taskId)));
    return (answer.tasks as Record<string, unknown>[])[0];
  };

  it("reproduction 1: a task result with a `constructor` key is stored and read back exactly (was a 500 forever)", async () => {
    const h = harness();
    const conv = await liveConversation();
    const { message } = await startTask(conv);
    if (!message) throw new Error("no task dispatched");
    const body = '{"result":{"team":"Scuderia","constructor":"Ferrari","__proto__":{"x":1},"toString":"t"}}';
    const response = await h.handlers.result(liveRequests.result(message, body));
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ outcome: "delivered" });
    // The task stores { status, result } as the runner posted it.
    const expected = canonical({ status: "succeeded", ...JSON.parse(body) });
    const task = await readTask(conv, message.taskId);
    expect(canonical(task?.result)).toBe(expected);
    const history = await h.readAll(conv);
    const tasks = history.tasks as Record<string, unknown>[];
    expect(canonical(tasks[0]?.result)).toBe(expected);
  });

  it("reproduction 1: tool parameters and session metadata keep `constructor`, `__proto__` and `toString` keys", async () => {
    const h = harness();
    const conv = `storable-${randomUUID()}`;
    const metadata = '{"constructor":"x","__proto__":"y","toString":1,"plan":"pro"}';
    const registered = await h.handlers.register(liveRequests.register(conv, `{"metadata":${metadata}}`));
    expect(registered.statusCode).toBe(201);
    expect(canonical(bodyOf(registered).metadata)).toBe(canonical(JSON.parse(metadata)));
    const read = bodyOf(await h.handlers.getSession(liveRequests.getSession(conv)));
    expect(canonical(read.metadata)).toBe(canonical(JSON.parse(metadata)));

    const params = '{"constructor":{"name":"Set"},"__proto__":{"polluted":true},"toString":"s"}';
    const { response, message } = await startTask(conv, `{"conversation_id":"${conv}",${params.slice(1)}`);
    expect(response.statusCode).toBe(200);
    expect(canonical(message?.params)).toBe(canonical(JSON.parse(params)));
    const history = await h.readAll(conv);
    expect(canonical((history.tasks as Record<string, unknown>[])[0]?.params)).toBe(
      canonical(JSON.parse(params)),
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("reproduction 1 (GET): a phone call's first tool call keeps query parameters named `constructor`, `__proto__` and `toString`", async () => {
    const h = harness();
    const conv = `storable-get-${randomUUID()}`;
    const query = new URLSearchParams([
      ["conversation_id", conv],
      ["constructor", "Ferrari"],
      ["__proto__", "x"],
      ["toString", "t"],
      ["system__call_sid", "CA-constructor"],
      ["system__caller_id", "+15550100"],
    ]);
    const before = h.dispatched.length;
    // No session yet: this call starts it (SESSION_START's default) and writes the call context.
    const response = await h.handlers.callTool(
      apiEvent({
        method: "GET",
        path: "/tools/lookup_order",
        pathParameters: { toolName: "lookup_order" },
        headers: { "x-tool-secret": TOOL_SECRET },
        query: Object.fromEntries(query),
      }),
    );
    expect(response.statusCode, JSON.stringify(bodyOf(response))).toBe(200);
    expect(bodyOf(response)).toMatchObject({ status: "accepted" });
    const expected = canonical(JSON.parse('{"constructor":"Ferrari","__proto__":"x","toString":"t"}'));
    expect(canonical(h.dispatched[before]?.params)).toBe(expected);
    const history = await h.readAll(conv);
    expect(canonical((history.tasks as Record<string, unknown>[])[0]?.params)).toBe(expected);
    expect((history.meta as Record<string, unknown>).sessionStart).toMatchObject({
      by: "first_tool_call",
      callSid: "CA-constructor",
      callerId: "+15550100",
    });
  });

  it("reproduction 1: 1e400 (Infinity once parsed) is a 400 naming the field, and nothing is written", async () => {
    const h = harness();
    const conv = await liveConversation();
    const { message } = await startTask(conv);
    if (!message) throw new Error("no task dispatched");
    const before = canonical(await h.items(conv));
    const response = await h.handlers.result(liveRequests.result(message, '{"result":{"lap":{"ms":1e400}}}'));
    expect(response.statusCode).toBe(400);
    expect(bodyOf(response).message).toContain("body.result.lap.ms is not a finite number");
    expect(canonical(await h.items(conv))).toBe(before);
    // The same task still takes a storable result afterwards: nothing is stuck.
    expect((await h.handlers.result(liveRequests.result(message, '{"result":1}'))).statusCode).toBe(200);
  });

  it(
    "property: any JSON as a task result is stored and reads back equal, or is a 400 that writes nothing",
    async () => {
      const h = harness();
      const conv = await liveConversation();
      await fc.assert(
        fc.asyncProperty(
          fc.oneof({ weight: 6, arbitrary: jsonText }, { weight: 1, arbitrary: deepText }),
          async (text) => {
            const { message } = await startTask(conv);
            if (!message) throw new Error("no task dispatched");
            const before = canonical(await h.items(conv));
            const response = await h.handlers.result(liveRequests.result(message, `{"result":${text}}`));
            if (response.statusCode === 400) {
              expect(bodyOf(response).error).toBe("invalid_request");
              expect(canonical(await h.items(conv))).toBe(before);
              return;
            }
            expect(response.statusCode).toBe(200);
            const task = await readTask(conv, message.taskId);
            expect(canonical((task?.result as { result?: unknown } | undefined)?.result)).toBe(
              canonical(JSON.parse(text)),
            );
          },
        ),
        { numRuns: RUNS.RESULT },
      );
    },
    timeLimitForRuns(RUNS.RESULT * 4, DYNAMODB_LOCAL_RUN_MS),
  );

  it(
    "property: any JSON object as tool parameters (flat or wrapped) is stored as sent, or is a 400 that writes nothing",
    async () => {
      const h = harness();
      const conv = await liveConversation();
      await fc.assert(
        fc.asyncProperty(objectText, fc.boolean(), async (params, wrapped) => {
          const parsed = JSON.parse(params) as Record<string, unknown>;
          fc.pre(!Object.hasOwn(parsed, "conversation_id") && !Object.hasOwn(parsed, "parameters"));
          const body = wrapped
            ? `{"conversation_id":"${conv}","tool_name":"lookup_order","parameters":${params}}`
            : `{"conversation_id":"${conv}"${params === "{}" ? "" : `,${params.slice(1, -1)}`}}`;
          const before = canonical(await h.items(conv));
          const { response, message } = await startTask(conv, body);
          if (response.statusCode === 400) {
            expect(canonical(await h.items(conv))).toBe(before);
            return;
          }
          expect(response.statusCode).toBe(200);
          // Issue 15: a null or "" parameter means "absent".
          const expected = Object.fromEntries(
            Object.entries(parsed).filter(([, value]) => value !== null && value !== ""),
          );
          expect(canonical(message?.params)).toBe(canonical(expected));
          const history = await h.readAll(conv);
          const task = (history.tasks as Record<string, unknown>[]).find((t) => t.taskId === message?.taskId);
          expect(canonical(task?.params)).toBe(canonical(expected));
        }),
        { numRuns: RUNS.PARAMS },
      );
    },
    timeLimitForRuns(RUNS.PARAMS * 4, DYNAMODB_LOCAL_RUN_MS),
  );

  it(
    "property: any GET query as tool parameters is stored as sent, or is a 400 that writes nothing",
    async () => {
      const h = harness();
      const conv = await liveConversation();
      await fc.assert(
        fc.asyncProperty(
          fc.dictionary(
            jsonKey.filter((key) => key !== "conversation_id" && !key.startsWith("system__")),
            fc.string({ maxLength: 8 }),
            { maxKeys: 4 },
          ),
          async (params) => {
            const before = canonical(await h.items(conv));
            const dispatched = h.dispatched.length;
            const response = await h.handlers.callTool(
              apiEvent({
                method: "GET",
                path: "/tools/lookup_order",
                pathParameters: { toolName: "lookup_order" },
                headers: { "x-tool-secret": TOOL_SECRET },
                query: { ...params, conversation_id: conv },
              }),
            );
            if (response.statusCode === 400) {
              expect(canonical(await h.items(conv))).toBe(before);
              expect(h.dispatched).toHaveLength(dispatched);
              return;
            }
            expect(response.statusCode).toBe(200);
            const expected = Object.fromEntries(Object.entries(params).filter(([, value]) => value !== ""));
            const message = h.dispatched[dispatched];
            expect(canonical(message?.params)).toBe(canonical(expected));
            const history = await h.readAll(conv);
            const task = (history.tasks as Record<string, unknown>[]).find(
              (t) => t.taskId === message?.taskId,
            );
            expect(canonical(task?.params)).toBe(canonical(expected));
          },
        ),
        { numRuns: RUNS.QUERY },
      );
    },
    timeLimitForRuns(RUNS.QUERY * 4, DYNAMODB_LOCAL_RUN_MS),
  );

  it(
    "property: any flat metadata is stored and reads back equal, or is a 400 that writes nothing",
    async () => {
      const h = harness();
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.tuple(
              jsonKey,
              fc.oneof(
                numberText,
                fc.string({ maxLength: 8, unit: "binary" }).map((s) => JSON.stringify(s)),
                fc.constantFrom("true", "false"),
              ),
            ),
            { maxLength: 5 },
          ),
          async (entries) => {
            const conv = `storable-${randomUUID()}`;
            const metadata = `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
            const response = await h.handlers.register(
              liveRequests.register(conv, `{"metadata":${metadata}}`),
            );
            if (response.statusCode === 400) {
              expect(await h.items(conv)).toEqual([]);
              expect((await h.handlers.getSession(liveRequests.getSession(conv))).statusCode).toBe(404);
              return;
            }
            expect(response.statusCode).toBe(201);
            const read = bodyOf(await h.handlers.getSession(liveRequests.getSession(conv)));
            const expected = JSON.parse(metadata) as Record<string, unknown>;
            if (Object.keys(expected).length > 0) expect(canonical(read.metadata)).toBe(canonical(expected));
          },
        ),
        { numRuns: RUNS.METADATA },
      );
    },
    timeLimitForRuns(RUNS.METADATA * 3, DYNAMODB_LOCAL_RUN_MS),
  );
});

describe("a signed post-call webhook is always a 200 and its transcript is stored (issue 19)", () => {
  const harness = useHistoryHarness();

  const deliver = async (mutate: (event: ReturnType<typeof transcriptionEvent>) => string) => {
    const h = harness();
    const conv = `webhook-${randomUUID()}`;
    const event = transcriptionEvent(conv, {
      startSecs: Math.floor(Date.now() / 1000) - 60,
      transcript: [line("agent", "Hi!", 0), line("user", "Hello", 2)],
    });
    const response = await h.deliver(mutate(event));
    return { h, conv, response };
  };
  const storedHistory = async (h: ReturnType<typeof harness>, conv: string) => {
    const history = await h.readAll(conv);
    const messages = history.messages;
    return {
      transcript: messages.filter((m) => m.kind === "transcript").map((m) => m.text),
      call: (history.meta as Record<string, unknown>).call as Record<string, unknown>,
    };
  };

  it.each([
    [
      "start_time_unix_secs: 1e20",
      (text: string) => text.replace(/"start_time_unix_secs":\d+/, '"start_time_unix_secs":1e20'),
    ],
    [
      "call_duration_secs: 1e300",
      (text: string) => text.replace(/"call_duration_secs":\d+/, '"call_duration_secs":1e300'),
    ],
    [
      "time_in_call_secs: 1e300",
      (text: string) => text.replace('"time_in_call_secs":2', '"time_in_call_secs":1e300'),
    ],
  ])("reproduction 2: %s is stored with a note, not a 500", async (_what, edit) => {
    const { h, conv, response } = await deliver((event) => {
      const text = edit(
        JSON.stringify({
          ...event,
          data: { ...event.data, metadata: { ...event.data.metadata, call_duration_secs: 40 } },
        }),
      );
      expect(text).toMatch(/1e(20|300|400)/);
      return text;
    });
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ status: "stored" });
    const stored = await storedHistory(h, conv);
    expect(stored.transcript).toEqual(["Hi!", "Hello"]);
    expect(String(stored.call.storageNotes)).toMatch(/out of range/);
  });

  it("reproduction 2: analysis nested 500 000 deep is stored (the deep part replaced, noted), not a stack overflow", async () => {
    const deep = `${"[".repeat(500_000)}1${"]".repeat(500_000)}`;
    const { h, conv, response } = await deliver((event) =>
      JSON.stringify(event).replace(
        '"data_collection_results":{',
        `"data_collection_results":{"deep":${deep},`,
      ),
    );
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ status: "stored" });
    const stored = await storedHistory(h, conv);
    expect(stored.transcript).toEqual(["Hi!", "Hello"]);
    expect(String(stored.call.storageNotes)).toMatch(/data_collection_results\.deep.*nested more than/);
  });

  it("reproduction 3: one unstorable field is replaced with a note and the rest of the event is stored, not parked", async () => {
    const fields =
      '"constructor":{"value":"Ferrari"},"__proto__":{"value":1},"big":18446744073709551616,"tiny":5e-324,' +
      `"deep":${"[".repeat(40)}1${"]".repeat(40)},"inf":1e400`;
    const { h, conv, response } = await deliver((event) =>
      JSON.stringify(event).replace('"data_collection_results":{', `"data_collection_results":{${fields},`),
    );
    expect(response.statusCode).toBe(200);
    expect(bodyOf(response)).toMatchObject({ status: "stored" });
    const stored = await storedHistory(h, conv);
    expect(stored.transcript).toEqual(["Hi!", "Hello"]);
    const collected = stored.call.dataCollectionResults as Record<string, unknown>;
    expect(canonical(collected.constructor)).toBe('{"value":"Ferrari"}');
    expect(Object.getOwnPropertyDescriptor(collected, "__proto__")?.value).toEqual({ value: 1 });
    expect(collected.big).toBe("18446744073709552000");
    expect(collected.tiny).toBe("5e-324");
    expect(collected.inf).toBe("Infinity");
    const notes = (stored.call.storageNotes as string[]).join("\n");
    for (const field of ["big", "tiny", "deep", "inf"])
      expect(notes).toContain(`data_collection_results.${field}`);
  });

  it(
    "property: any JSON in data_collection_results is a 200 and the transcript is stored",
    async () => {
      const h = harness();
      await fc.assert(
        fc.asyncProperty(fc.oneof(jsonText, deepText), async (value) => {
          const conv = `webhook-${randomUUID()}`;
          const event = transcriptionEvent(conv, {
            startSecs: Math.floor(Date.now() / 1000) - 60,
            transcript: [line("agent", "Hi!", 0)],
          });
          const text = JSON.stringify(event).replace(
            '"data_collection_results":{',
            `"data_collection_results":{"v":${value},`,
          );
          const response = await h.deliver(text);
          expect(response.statusCode).toBe(200);
          expect(bodyOf(response)).toMatchObject({ status: "stored" });
          const history = await h.readAll(conv);
          const call = (history.meta as Record<string, unknown>).call as Record<string, unknown>;
          const stored = (call.dataCollectionResults as Record<string, unknown>).v;
          // Stored exactly, or replaced with a note that names it.
          if (canonical(stored) !== canonical(JSON.parse(value))) {
            expect((call.storageNotes as string[]).join("\n")).toContain("data_collection_results.v");
          }
          expect(history.messages.filter((m) => m.kind === "transcript")).toHaveLength(1);
        }),
        { numRuns: RUNS.WEBHOOK },
      );
    },
    timeLimitForRuns(RUNS.WEBHOOK * 3, DYNAMODB_LOCAL_RUN_MS),
  );

  it("reproduction 3: replay stores a parked event with unstorable fields, and reports an uninterpretable one as permanent", async () => {
    const h = harness();
    const dir = await mkdtemp(join(tmpdir(), "parked-19-"));
    try {
      const conv = `replay-${randomUUID()}`;
      const event = JSON.stringify(
        transcriptionEvent(conv, { transcript: [line("agent", "Hi!", 0)] }),
      ).replace(
        '"data_collection_results":{',
        `"data_collection_results":{"constructor":"x","deep":${"[".repeat(40)}1${"]".repeat(40)},`,
      );
      const parker = fileParker(dir);
      await parker.park({
        receivedAt: new Date().toISOString(),
        rawBody: event,
        reason: "storage_failed: Error",
      });
      await parker.park({ receivedAt: new Date().toISOString(), rawBody: "{not json", reason: "unusable" });
      const summary = await replayParkingFile({ conversations: h.deps.conversations }, dir);
      expect(summary).toMatchObject({ read: 2, stored: 1, keptParked: 0, failedPermanently: 1 });
      const again = await replayParkingFile({ conversations: h.deps.conversations }, dir);
      expect(again).toMatchObject({ read: 0 });
      const history = await h.readAll(conv);
      expect(history.messages.filter((m) => m.kind === "transcript")).toHaveLength(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the system conversation_id always wins over what the LLM fills (issue 19)", () => {
  const harness = useHistoryHarness();

  it("reproduction 4: parameters.conversation_id in a wrapped body neither starts nor reads tasks in another conversation", async () => {
    const h = harness();
    const mine = `mine-${randomUUID()}`;
    const victim = `victim-${randomUUID()}`;
    for (const conv of [mine, victim])
      expect((await h.handlers.register(liveRequests.register(conv, {}))).statusCode).toBe(201);
    const toolEvent = (body: unknown, toolName: string, query?: Record<string, string>) =>
      apiEvent({
        method: "POST",
        path: `/tools/${toolName}`,
        ...(toolName === "get_task_result" ? {} : { pathParameters: { toolName } }),
        headers: { "x-tool-secret": TOOL_SECRET, "content-type": "application/json" },
        body,
        ...(query ? { query } : {}),
      });
    const before = h.dispatched.length;
    // Wrapped: the LLM-filled parameters name the victim.
    const wrapped = await h.handlers.callTool(
      toolEvent(
        {
          tool_name: "lookup_order",
          conversation_id: mine,
          parameters: { conversation_id: victim, order_id: "A1" },
        },
        "lookup_order",
      ),
    );
    expect(wrapped.statusCode).toBe(200);
    // Flat, with the victim in the query string.
    const flat = await h.handlers.callTool(
      toolEvent({ conversation_id: mine, order_id: "A2" }, "lookup_order", { conversation_id: victim }),
    );
    expect(flat.statusCode).toBe(200);
    const started = h.dispatched.slice(before);
    expect(started.map((m) => m.conversationId)).toEqual([mine, mine]);
    expect(started.map((m) => m.params)).toEqual([{ order_id: "A1" }, { order_id: "A2" }]);
    expect((await h.readAll(victim)).tasks).toEqual([]);

    // Reading: the wrapped poll with the victim in its parameters reads only the caller's tasks.
    const polls = [
      toolEvent(
        { tool_name: "get_task_result", conversation_id: mine, parameters: { conversation_id: victim } },
        "get_task_result",
      ),
      toolEvent({ conversation_id: mine }, "get_task_result", { conversation_id: victim }),
    ];
    for (const poll of polls) {
      const tasks = bodyOf(await h.handlers.poll(poll)).tasks as Record<string, unknown>[];
      expect(tasks.map((t) => t.taskId).sort()).toEqual(started.map((m) => m.taskId).sort());
    }
    // A wrapped body whose only conversation_id is the LLM's is refused.
    const onlyLlm = await h.handlers.callTool(
      toolEvent({ tool_name: "lookup_order", parameters: { conversation_id: victim } }, "lookup_order"),
    );
    expect(onlyLlm.statusCode).toBe(400);
    expect((await h.readAll(victim)).tasks).toEqual([]);
  });
});

describe("history cursors are checked against the key schema and the conversation (issue 19)", () => {
  const harness = useHistoryHarness();
  const forge = (key: unknown) => Buffer.from(JSON.stringify(key)).toString("base64url");
  const decode = (cursor: string) =>
    JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as Record<string, unknown>;

  it("reproduction 6: a tampered cursor is a 400 invalid_cursor, never a 500", async () => {
    const h = harness();
    const convs = [`cursor-${randomUUID()}`, `cursor-${randomUUID()}`];
    for (const conv of convs) {
      const event = transcriptionEvent(conv, {
        startSecs: Math.floor(Date.now() / 1000) - 60,
        transcript: [line("agent", "a", 0), line("user", "b", 1), line("agent", "c", 2)],
      });
      expect((await h.deliver(event)).statusCode).toBe(200);
    }
    const [mine, other] = convs as [string, string];
    const page = bodyOf(await h.readPage(mine, { limit: "1" }));
    const real = decode(String(page.nextCursor));
    const listPage = bodyOf(await h.listPage({ limit: "1" }));
    const realList = decode(String(listPage.nextCursor));

    const historyForgeries = [
      { ...real, extra: "x" },
      { ...real, sk: "msg#zzz" },
      { ...real, sk: `${String(real.sk)}#more` },
      { ...real, conversationId: other },
      { conversationId: mine },
      { ...real, sk: 5 },
    ];
    for (const key of historyForgeries) {
      const response = await h.readPage(mine, { cursor: forge(key) });
      expect(response.statusCode, JSON.stringify(key)).toBe(400);
      expect(bodyOf(response).error).toBe("invalid_cursor");
    }
    const listForgeries = [
      { conversationId: mine, sk: "meta" },
      { ...realList, extra: "x" },
      { ...realList, listSk: "zzz" },
      { ...realList, listPk: "other" },
      { ...realList, sk: "msg#1" },
      { ...realList, listSk: `${String(realList.listSk)} x` },
      { ...realList, listSk: `2026-13-45T99:99:99.999Z#${mine}` },
      { ...realList, listSk: 5 },
      real,
    ];
    // A listing cursor is a position (`<createdAt>#<id>`), only ever used as a sort-key bound:
    // any well-formed position pages from there (nothing else it could reach).
    for (const key of listForgeries) {
      const response = await h.listPage({ cursor: forge(key) });
      expect(response.statusCode, JSON.stringify(key)).toBe(400);
      expect(bodyOf(response).error).toBe("invalid_cursor");
    }
    // The real cursors still page.
    expect((await h.readPage(mine, { cursor: String(page.nextCursor) })).statusCode).toBe(200);
    expect((await h.listPage({ cursor: String(listPage.nextCursor) })).statusCode).toBe(200);
  });
});
