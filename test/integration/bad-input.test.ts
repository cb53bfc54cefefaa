import { createHash, createHmac, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { enableInvocationScopes } from "../../local/invocation-scope.js";
import { type LocalServer, startLocalServer } from "../../local/local-service.js";
import { ALL_CASES, CORPUS, type CorpusCase } from "../corpus/index.js";
import type { SignWith } from "../corpus/types.js";
import { DYNAMODB_LOCAL_RUN_MS, timeLimitForRuns } from "../support/budget.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { NOTIFY_SECRET, SERVICE_TOKEN, TOOL_SECRET } from "../support/live-fixtures.js";
import { ELEVENLABS_API_KEY, WEBHOOK_SECRET } from "../support/post-call-fixtures.js";
import { type RawResponse, rawRequest } from "../support/raw-http.js";
import { isStorable } from "../support/storable.js";
import { snapshotTables } from "../support/table-snapshot.js";

/**
 * The bad-input corpus (test/corpus) and property-based requests, sent over HTTP to the local
 * server (every route, the same handler modules as the Lambdas) on a fresh pair of tables.
 * Every bad request gets a JSON `{ error, message }` 4xx (or its documented outcome), never a
 * 5xx, and leaves both tables exactly as they were.
 */
/** Runs per property; each test's time limit follows from its count (see budget.ts). */
const RUNS = { ANY_BODY: 150, ANY_ID: 150, ROUND_TRIP: 25, ANY_TASK_JSON: 60 } as const;

describe("bad input over HTTP, on every route", () => {
  let tables: LocalTables;
  let server: LocalServer;
  let upstream: Server;
  let upstreamCalls = 0;
  let dataDir: string;
  const fixtures: Record<string, string> = {};

  beforeAll(async () => {
    // The in-process server scopes each request as Lambda does; that must start before this
    // process's first AWS SDK call (createLocalTables below is one).
    await enableInvocationScopes();
    tables = await createLocalTables();
    dataDir = await mkdtemp(join(tmpdir(), "bad-input-"));
    // Stands in for ElevenLabs: no corpus case may ever reach it.
    upstream = createServer((_req, res) => {
      upstreamCalls++;
      res.writeHead(500).end();
    });
    await new Promise<void>((ready) => upstream.listen(0, "127.0.0.1", ready));
    // The server keeps variables already set (the integration project sets table names).
    delete process.env.SESSIONS_TABLE;
    delete process.env.CONVERSATIONS_TABLE;
    server = await startLocalServer({
      port: 0,
      quiet: true,
      dynamoEndpoint: inject("dynamoEndpoint"),
      tables: tables.names,
      dataDir,
      env: {
        SERVICE_TOKEN,
        TOOL_SECRET,
        WEBHOOK_SECRET,
        NOTIFY_SIGNING_SECRET: NOTIFY_SECRET,
        ELEVENLABS_API_KEY,
        ELEVENLABS_API_BASE_URL: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
        PARKING_DIR: join(dataDir, "parked"),
        EXPOSE_CALLBACK_IN_TOOL_RESPONSE: "true",
      },
    });

    // One live conversation with two pending tasks; one conversation never seen.
    const conversationId = `corpus-${randomUUID()}`;
    const send = (method: string, path: string, headers: Record<string, string>, body?: unknown) =>
      rawRequest(server.url, {
        method,
        path,
        headers: { "content-type": "application/json", ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const registered = await send("POST", `/conversations/${conversationId}/session`, {
      authorization: `Bearer ${SERVICE_TOKEN}`,
    });
    expect(registered.status).toBe(201);
    const startTask = async () => {
      const response = await send(
        "POST",
        "/tools/lookup_order",
        { "x-tool-secret": TOOL_SECRET },
        { conversation_id: conversationId, order_id: "A1" },
      );
      return JSON.parse(response.body) as { taskId: string; callbackToken: string };
    };
    const first = await startTask();
    const second = await startTask();
    Object.assign(fixtures, {
      conversationId,
      idleConversationId: `idle-${randomUUID()}`,
      taskId: first.taskId,
      taskToken: first.callbackToken,
      taskTokenHash: createHash("sha256").update(first.callbackToken).digest("hex"),
      otherTaskId: second.taskId,
      otherTaskToken: second.callbackToken,
      serviceToken: SERVICE_TOKEN,
      toolSecret: TOOL_SECRET,
      toolSecretButLast: TOOL_SECRET.slice(0, -1),
    });
  });

  afterAll(async () => {
    await server?.close();
    await new Promise<void>((done) => upstream.close(() => done()));
    await rm(dataDir, { recursive: true, force: true });
    await tables.drop();
  });

  /** Replaces the corpus placeholders (only known names: `{{7*7}}` stays as sent). */
  const fill = (text: string): string =>
    text.replace(/\{\{(\w+)\}\}/g, (whole, name: string) =>
      name === "now" ? String(Math.floor(Date.now() / 1000)) : (fixtures[name] ?? whole),
    );

  const signatureFor = (body: string, sign: SignWith): string => {
    const t = Math.floor(Date.now() / 1000) - (sign.ageSeconds ?? 0);
    const secret = sign.secret === "wrong" ? "not-the-webhook-secret" : WEBHOOK_SECRET;
    const digest = createHmac("sha256", secret)
      .update(`${t}.${sign.signedBody === undefined ? body : fill(sign.signedBody)}`)
      .digest("hex");
    switch (sign.transform) {
      case "uppercase-hex":
        return `t=${t},v0=${digest.toUpperCase()}`;
      case "t-as-ms":
        return `t=${t * 1000},v0=${digest}`;
      case "spaces":
        return `t=${t}, v0=${digest}`;
      case "v1-instead-of-v0":
        return `t=${t},v1=${digest}`;
      case "drop-t":
        return `v0=${digest}`;
      case "drop-v0":
        return `t=${t}`;
      default:
        return `t=${t},v0=${digest}`;
    }
  };

  const sendCase = (c: CorpusCase): Promise<RawResponse> => {
    const body = typeof c.body === "string" ? fill(c.body) : c.body;
    const headers = Object.fromEntries(Object.entries(c.headers ?? {}).map(([k, v]) => [k, fill(v)]));
    if (c.sign && typeof body === "string") headers["elevenlabs-signature"] = signatureFor(body, c.sign);
    return rawRequest(server.url, {
      method: c.method,
      path: fill(c.path),
      headers,
      ...(body === undefined ? {} : { body }),
    });
  };

  /** What is wrong with one answer, if anything. */
  const problemsOf = (c: CorpusCase, response: RawResponse): string[] => {
    const problems: string[] = [];
    if (response.status >= 500) problems.push(`5xx: ${response.status} ${response.body.slice(0, 200)}`);
    if (response.status !== c.expectStatus)
      problems.push(`status ${response.status}, expected ${c.expectStatus}`);
    if (c.method === "HEAD") return problems;
    if (!String(response.headers["content-type"]).startsWith("application/json")) problems.push("not JSON");
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(response.body) as Record<string, unknown>;
    } catch {
      problems.push(`unparseable body ${response.body.slice(0, 100)}`);
    }
    if (response.status >= 400) {
      if (typeof json.error !== "string" || !/^[a-z_]+$/.test(json.error))
        problems.push(`error ${String(json.error)}`);
      if (typeof json.message !== "string" || json.message.length < 10)
        problems.push("no message a person understands");
      if (c.expectError && json.error !== c.expectError)
        problems.push(`error ${String(json.error)}, expected ${c.expectError}`);
    }
    if (c.documented && json.status !== "unusable")
      problems.push(`documented outcome not met: ${response.body}`);
    if (/\bat .+:\d+:\d+|Exception|stack/i.test(response.body)) problems.push("leaks internals");
    for (const secret of [
      SERVICE_TOKEN,
      TOOL_SECRET,
      WEBHOOK_SECRET,
      ELEVENLABS_API_KEY,
      fixtures.taskToken ?? "?",
    ]) {
      if (response.body.includes(secret)) problems.push("echoes a credential");
    }
    return problems;
  };

  /** Sends every case; returns one line per case that was not answered as it must be. */
  const runCases = async (cases: readonly CorpusCase[]): Promise<string[]> => {
    const failures: string[] = [];
    let before = await snapshotTables(tables.doc, tables.names);
    for (const c of cases) {
      const response = await sendCase(c);
      const problems = problemsOf(c, response);
      const after = await snapshotTables(tables.doc, tables.names);
      if (after !== before) problems.push("wrote to a table");
      before = after;
      if (problems.length > 0) failures.push(`${c.name}: ${problems.join("; ")}`);
    }
    return failures;
  };

  for (const [group, all] of Object.entries(CORPUS)) {
    const cases = all.filter((c) => !c.knownBug);
    const knownBugs = all.filter((c) => c.knownBug);
    if (cases.length > 0) {
      it(
        `${group}: ${cases.length} bad requests each get a clear JSON error (never a 5xx) and write nothing`,
        async () => {
          expect(await runCases(cases)).toEqual([]);
          expect(upstreamCalls).toBe(0);
        },
        timeLimitForRuns(cases.length, DYNAMODB_LOCAL_RUN_MS),
      );
    }
    for (const c of knownBugs) {
      // KNOWN BUG (expected to fail until fixed; then remove `knownBug` from the case).
      it.fails(`KNOWN BUG ${c.name} — ${c.knownBug}`, async () => {
        expect(await runCases([c])).toEqual([]);
      });
    }
  }

  it("the corpus covers every route of the route table with every kind of bad input", async () => {
    const { ROUTES } = await import("../../functions/core/routes.js");
    const routes = new Set(ALL_CASES.map((c) => c.route));
    for (const route of ROUTES) expect(routes, route.name).toContain(route.name);
    console.log(`bad-input corpus: ${ALL_CASES.length} cases`);
    expect(ALL_CASES.length).toBeGreaterThan(300);
  });

  describe("property-based: request schemas", () => {
    const json = (body: unknown) => ({ "content-type": "application/json", body: JSON.stringify(body) });
    const live = () => fixtures.conversationId ?? "";

    /** Sends, and checks: never a 5xx; a 4xx is JSON `{error, message}` and wrote nothing. */
    const probe = async (request: Parameters<typeof rawRequest>[1]) => {
      const before = await snapshotTables(tables.doc, tables.names);
      const response = await rawRequest(server.url, request);
      expect(response.status, response.body).toBeLessThan(500);
      if (response.status >= 400) {
        expect(JSON.parse(response.body)).toMatchObject({
          error: expect.any(String),
          message: expect.any(String),
        });
        expect(await snapshotTables(tables.doc, tables.names)).toBe(before);
      }
      return response;
    };

    it(
      "any JSON body to any JSON route is never a 5xx, and a rejected one writes nothing",
      async () => {
        const routes: {
          path: () => string;
          headers: Record<string, string>;
          filter?: (v: unknown) => boolean;
        }[] = [
          {
            path: () => `/conversations/${fixtures.idleConversationId}/session`,
            headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
          },
          { path: () => "/tools/lookup_order", headers: { "x-tool-secret": TOOL_SECRET } },
          { path: () => "/tools/get_task_result", headers: { "x-tool-secret": TOOL_SECRET } },
          {
            path: () => `/conversations/${live()}/tasks/${fixtures.otherTaskId}/result`,
            headers: { authorization: `Bearer ${fixtures.otherTaskToken}` },
            // Only bodies the result schema rejects: a stored result would end the property.
            filter: (v: unknown) =>
              !(
                v &&
                typeof v === "object" &&
                !Array.isArray(v) &&
                Object.keys(v).every((k) => ["status", "result", "error"].includes(k))
              ),
          },
        ];
        await fc.assert(
          fc.asyncProperty(
            fc.constantFrom(...routes),
            fc.jsonValue({ maxDepth: 4 }),
            async (route, value) => {
              fc.pre(isStorable(value) && (!route.filter || route.filter(value)));
              const { body, ...type } = json(value);
              await probe({
                method: "POST",
                path: route.path(),
                headers: { ...route.headers, ...type },
                body,
              });
            },
          ),
          { numRuns: RUNS.ANY_BODY },
        );
      },
      timeLimitForRuns(RUNS.ANY_BODY, DYNAMODB_LOCAL_RUN_MS),
    );

    it(
      "any string as a conversationId is either a valid id or a 400 that writes nothing",
      async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.oneof(fc.string({ maxLength: 140 }), fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/)),
            async (id) => {
              fc.pre(id.length > 0 && !/^\.{1,2}$/.test(id));
              let encoded: string;
              try {
                encoded = encodeURIComponent(id);
              } catch {
                return; // a lone surrogate cannot be sent as UTF-8; the corpus covers raw bytes
              }
              const response = await probe({
                method: "GET",
                path: `/conversations/${encoded}/session`,
                headers: { authorization: `Bearer ${SERVICE_TOKEN}` },
              });
              if (/^[A-Za-z0-9_-]{1,128}$/.test(id)) expect([200, 404, 410]).toContain(response.status);
              else expect(response.status).toBe(400);
            },
          ),
          { numRuns: RUNS.ANY_ID },
        );
      },
      timeLimitForRuns(RUNS.ANY_ID, DYNAMODB_LOCAL_RUN_MS),
    );

    it(
      "valid ids round-trip: a registered id comes back unchanged, in the session and its history",
      async () => {
        await fc.assert(
          fc.asyncProperty(fc.stringMatching(/^[A-Za-z0-9_-]{1,128}$/), async (raw) => {
            const id = `${raw}-${randomUUID().slice(0, 8)}`.slice(-128);
            const auth = { authorization: `Bearer ${SERVICE_TOKEN}` };
            const registered = await rawRequest(server.url, {
              method: "POST",
              path: `/conversations/${id}/session`,
              headers: auth,
            });
            expect(registered.status).toBe(201);
            expect(JSON.parse(registered.body).conversationId).toBe(id);
            const read = await rawRequest(server.url, {
              method: "GET",
              path: `/conversations/${id}`,
              headers: auth,
            });
            expect(JSON.parse(read.body).meta.conversationId).toBe(id);
          }),
          { numRuns: RUNS.ROUND_TRIP },
        );
      },
      timeLimitForRuns(RUNS.ROUND_TRIP, DYNAMODB_LOCAL_RUN_MS),
    );

    it(
      "any JSON as tool parameters or as a task result is stored as sent, or refused with a 400 — never a 5xx",
      async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 4 }),
            fc.jsonValue({ maxDepth: 3 }),
            async (params, result) => {
              fc.pre(!("conversation_id" in params) && !("parameters" in params));
              // Un-storable values are a known bug (corpus: "un-storable JSON"); everything else must work.
              fc.pre(isStorable(params) && isStorable({ result }));
              const started = await probe({
                method: "POST",
                path: "/tools/lookup_order",
                headers: { "x-tool-secret": TOOL_SECRET, "content-type": "application/json" },
                body: JSON.stringify({ ...params, conversation_id: live() }),
              });
              if (started.status !== 200) return;
              const task = JSON.parse(started.body) as { taskId: string; callbackToken: string };
              const stored = await probe({
                method: "POST",
                path: `/conversations/${live()}/tasks/${task.taskId}/result`,
                headers: {
                  authorization: `Bearer ${task.callbackToken}`,
                  "content-type": "application/json",
                },
                body: JSON.stringify({ result }),
              });
              expect(stored.status).toBe(200);
              // Stored as sent: the task holds exactly the parameters and the result that came in.
              const item = await tables.doc.send(
                new GetCommand({
                  TableName: tables.names.conversations,
                  Key: { conversationId: live(), sk: `task#${task.taskId}` },
                  ConsistentRead: true,
                }),
              );
              // Top-level null and "" mean "absent" (what LLMs send for optional parameters) and
              // `system__*` values are call context, not parameters: nothing else is changed.
              const sent = Object.fromEntries(
                Object.entries(params).filter(
                  ([k, v]) => v !== null && v !== "" && !k.startsWith("system__"),
                ),
              );
              expect(canonical(item.Item?.params)).toBe(canonical(sent));
              expect(canonical(item.Item?.result)).toBe(canonical({ status: "succeeded", result }));
            },
          ),
          { numRuns: RUNS.ANY_TASK_JSON },
        );
      },
      timeLimitForRuns(RUNS.ANY_TASK_JSON, DYNAMODB_LOCAL_RUN_MS),
    );
  });
});

/** JSON with sorted keys: DynamoDB keeps a map's content, not its key order. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
