import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  DynamoDBClient,
  GetItemCommand,
  ProvisionedThroughputExceededException,
  ThrottlingException,
  TransactionConflictException,
} from "@aws-sdk/client-dynamodb";
import { GetCommand, TransactWriteCommand } from "@aws-sdk/lib-dynamodb";
import { mockClient } from "aws-sdk-client-mock";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { secretsExtensionFetcher } from "../../../functions/core/aws-secrets.js";
import {
  createDependencies,
  createDocumentClient,
  DYNAMO_CLIENT_SETTINGS,
} from "../../../functions/core/dependencies.js";
import { mapTransientErrors, transactWrite } from "../../../functions/core/dynamo.js";
import { isTransientError, ServiceUnavailableError } from "../../../functions/core/errors.js";
import type { HttpResponse } from "../../../functions/core/http.js";
import { makeHandler as makeGetSession } from "../../../functions/get-session/handler.js";
import { createDocClient } from "../../support/doc-client.js";
import { bodyOf } from "../../support/events.js";
import { fakeLiveTables, type LiveState } from "../../support/fake-live-table.js";
import {
  FAULT_KINDS,
  type FaultKind,
  faultError,
  faultsFor,
  faultyClient,
} from "../../support/fault-client.js";
import {
  captureMetrics,
  SERVICE_TOKEN,
  sessionItem,
  T0,
  TASK_TOKEN,
  TEN_MIN,
  taskItem,
} from "../../support/live-fixtures.js";
import { createLiveHarness, harnessEnv, type LiveHarness, liveRequests } from "../../support/live-harness.js";
import { captureLogger } from "../../support/log-capture.js";

const CONV = "conv-1";
const TASK = { conversationId: CONV, taskId: "task-1", callbackToken: TASK_TOKEN };

describe("DynamoDB client retry settings", () => {
  it("are standard mode, 3 attempts, 1 s to connect, 2.5 s per attempt, and the timeout aborts the attempt", () => {
    expect(DYNAMO_CLIENT_SETTINGS).toEqual({
      maxAttempts: 3,
      retryMode: "standard",
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2500, throwOnRequestTimeout: true },
    });
  });

  it("keep the worst case (every attempt timing out, plus backoff) inside the 10 s Lambda timeout", () => {
    const { maxAttempts, requestHandler } = DYNAMO_CLIENT_SETTINGS;
    // Smithy's standard strategy waits at most base × 2^n before retry n (n = 1, 2): base 100 ms
    // after a timeout, 500 ms after throttling (whose answers come back fast).
    const timeoutBackoffMs = 100 * 2 + 100 * 4;
    const throttlingBackoffMs = 500 * 2 + 500 * 4;
    expect(maxAttempts * requestHandler.requestTimeout + timeoutBackoffMs).toBeLessThan(10_000);
    expect(throttlingBackoffMs + maxAttempts * 200).toBeLessThan(10_000);
  });

  it("are what createDocumentClient actually configures", async () => {
    const doc = createDocumentClient({}, "us-east-1");
    const config = doc.config as unknown as {
      maxAttempts: () => Promise<number>;
      retryMode: string | (() => Promise<string>);
      requestHandler: { httpHandlerConfigs(): Record<string, unknown> };
    };
    expect(await config.maxAttempts()).toBe(3);
    const mode = typeof config.retryMode === "function" ? await config.retryMode() : config.retryMode;
    expect(mode).toBe("standard");
    // The handler resolves its options lazily; one configured request handler holds them.
    const handler = config.requestHandler as unknown as { configProvider: Promise<Record<string, unknown>> };
    expect(await handler.configProvider).toMatchObject({
      connectionTimeout: 1000,
      requestTimeout: 2500,
      throwOnRequestTimeout: true,
    });
    doc.destroy();
  });
});

describe("the real SDK client against a misbehaving endpoint on 127.0.0.1", () => {
  let server: Server;
  let requests = 0;
  let behaviour: "throttle" | "reset" | "hang" = "throttle";
  let endpoint = "";

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      req.resume();
      if (behaviour === "throttle") {
        res.writeHead(400, { "content-type": "application/x-amz-json-1.0" });
        res.end(
          JSON.stringify({
            __type: "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            message: "The level of configured provisioned throughput for the table was exceeded.",
          }),
        );
      } else if (behaviour === "reset") {
        req.socket.destroy();
      }
      // "hang": never answers.
    });
    await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  });
  beforeEach(() => {
    requests = 0;
  });

  /** The service's settings, with a shorter per-attempt timeout so the test stays fast. */
  const client = (requestTimeout: number = DYNAMO_CLIENT_SETTINGS.requestHandler.requestTimeout) =>
    new DynamoDBClient({
      ...DYNAMO_CLIENT_SETTINGS,
      requestHandler: { ...DYNAMO_CLIENT_SETTINGS.requestHandler, requestTimeout },
      endpoint,
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
  const getItem = (c: DynamoDBClient) =>
    mapTransientErrors(() =>
      c.send(new GetItemCommand({ TableName: "sessions", Key: { conversationId: { S: "c" } } })),
    );

  it("retries throttling 3 times, then surfaces a 503-able error", async () => {
    behaviour = "throttle";
    const c = client();
    const error = await getItem(c).catch((e: unknown) => e);
    c.destroy();
    expect(requests).toBe(3);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
  });

  it("retries a reset connection 3 times, then surfaces a 503-able error", async () => {
    behaviour = "reset";
    const c = client();
    const error = await getItem(c).catch((e: unknown) => e);
    c.destroy();
    expect(requests).toBe(3);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
  });

  it("abandons an attempt that gets no answer within requestTimeout, retries, then surfaces a 503-able error", async () => {
    behaviour = "hang";
    const c = client(150);
    const error = await getItem(c).catch((e: unknown) => e);
    c.destroy();
    expect(requests).toBe(3);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
  });

  it("maps a refused connection to a 503-able error", async () => {
    const closed = new DynamoDBClient({
      ...DYNAMO_CLIENT_SETTINGS,
      endpoint: "http://127.0.0.1:1",
      region: "us-east-1",
      credentials: { accessKeyId: "test", secretAccessKey: "test" },
    });
    const error = await getItem(closed).catch((e: unknown) => e);
    closed.destroy();
    expect(error).toBeInstanceOf(ServiceUnavailableError);
  });
});

describe("isTransientError", () => {
  it.each(FAULT_KINDS.filter((k) => k !== "TransactionConflict"))("treats %s as transient", (kind) => {
    expect(isTransientError(faultError(kind))).toBe(true);
  });

  it("treats the SDK's own exception classes as transient", () => {
    const meta = { $metadata: {}, message: "x" };
    expect(isTransientError(new ProvisionedThroughputExceededException(meta))).toBe(true);
    expect(isTransientError(new ThrottlingException(meta))).toBe(true);
    expect(isTransientError(new TransactionConflictException(meta))).toBe(true);
  });

  it("treats an ECONNRESET socket error ('socket hang up', name Error) as transient", () => {
    expect(
      isTransientError(Object.assign(new Error("socket hang up"), { name: "Error", code: "ECONNRESET" })),
    ).toBe(true);
  });

  it.each([
    [
      "a validation error",
      Object.assign(new Error("One or more parameter values were invalid"), {
        name: "ValidationException",
        $metadata: { httpStatusCode: 400 },
      }),
    ],
    [
      "a failed condition",
      Object.assign(new Error("The conditional request failed"), { name: "ConditionalCheckFailedException" }),
    ],
    ["a programming error", new TypeError("x is undefined")],
    ["a non-error", "boom"],
  ])("does not treat %s as transient", (_label, error) => {
    expect(isTransientError(error)).toBe(false);
  });
});

describe("transactWrite and TransactionConflict", () => {
  const doc = createDocClient();
  const ddb = mockClient(doc);
  beforeEach(() => {
    ddb.reset();
  });

  it("retries a transaction cancelled by a concurrent one and commits", async () => {
    ddb.on(TransactWriteCommand).rejectsOnce(faultError("TransactionConflict", 1)).resolves({});
    await expect(transactWrite(doc, [{ ConditionCheck: {} as never }])).resolves.toEqual({ committed: true });
    expect(ddb).toHaveReceivedCommandTimes(TransactWriteCommand, 2);
  });

  it("gives up after 7 conflicting attempts with a 503 that asks for a retry in 1 s", async () => {
    ddb.on(TransactWriteCommand).rejects(faultError("TransactionConflict", 1));
    const error = await transactWrite(doc, [{ ConditionCheck: {} as never }]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect((error as ServiceUnavailableError).retryAfterSeconds).toBe(1);
    expect(ddb).toHaveReceivedCommandTimes(TransactWriteCommand, 7);
  });

  it("turns throttling on a transaction into a 503", async () => {
    ddb.on(TransactWriteCommand).rejects(faultError("Throttling"));
    await expect(transactWrite(doc, [])).rejects.toBeInstanceOf(ServiceUnavailableError);
  });
});

describe("each live-path handler with a fault at each DynamoDB call (mocked client)", () => {
  const inner = createDocClient();
  const ddb = mockClient(inner);
  let state: LiveState;
  let faulty: ReturnType<typeof faultyClient>;
  let h: LiveHarness;

  beforeEach(() => {
    ddb.reset();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(T0 + 1_000);
    state = fakeLiveTables(ddb, {
      session: sessionItem(CONV, T0, { notifyUrl: "https://app.example.test/live" }),
      tasks: new Map([
        ["task#task-1", taskItem(CONV, "task-1", { notifyUrl: "https://app.example.test/live" })],
      ]),
      messages: [],
    });
    faulty = faultyClient(inner);
    h = createLiveHarness({ doc: faulty.doc });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const routes: Record<
    string,
    {
      send: () => Promise<HttpResponse>;
      ok: (r: HttpResponse) => boolean;
      at?: number;
      /** A call whose fault is answered as success on purpose (the request already did its work). */
      toleratedCall?: string;
    }
  > = {
    "register-session": {
      send: () => h.handlers.register(liveRequests.register(CONV)),
      ok: (r) => r.statusCode === 201,
    },
    "get-session": {
      send: () => h.handlers.getSession(liveRequests.getSession(CONV)),
      ok: (r) => r.statusCode === 200,
    },
    "call-tool": {
      send: () => h.handlers.callTool(liveRequests.callTool(CONV)),
      ok: (r) => bodyOf(r).status === "accepted",
      // The dispatch mark comes after the task was handed to the runner: still accepted (WARN).
      toleratedCall: "UpdateCommand",
    },
    "get-task-result": {
      send: () => h.handlers.poll(liveRequests.poll(CONV)),
      ok: (r) => bodyOf(r).status === "active",
    },
    "record-task-result (live)": {
      send: () => h.handlers.result(liveRequests.result(TASK)),
      ok: (r) => r.statusCode === 200 && bodyOf(r).outcome === "delivered",
    },
    "record-task-result (after expiry)": {
      send: () => h.handlers.result(liveRequests.result(TASK)),
      ok: (r) => r.statusCode === 200 && bodyOf(r).outcome === "session_expired",
      at: T0 + TEN_MIN + 5,
    },
  };

  for (const [route, spec] of Object.entries(routes)) {
    it(`${route}: 503 with Retry-After for each fault at each call, then the retry succeeds`, async () => {
      if (spec.at) vi.setSystemTime(spec.at);
      const snapshot = structuredClone({ tasks: [...state.tasks.entries()], messages: state.messages });
      faulty.control.reset();
      expect(spec.ok(await spec.send())).toBe(true);
      const calls = [...faulty.control.calls];
      const tried: string[] = [];
      for (const [k, call] of calls.entries()) {
        for (const kind of faultsFor(call).filter(
          (f): f is Exclude<FaultKind, "TransactionConflict"> => f !== "TransactionConflict",
        )) {
          // Back to the state before the request, then the fault, then a clean retry.
          state.tasks = new Map(structuredClone(snapshot.tasks));
          state.messages.splice(0, state.messages.length, ...structuredClone(snapshot.messages));
          h.pushes.length = 0;
          faulty.control.reset({ atCall: k, kind, when: "before" });
          const faulted = await spec.send();
          expect(faulty.control.injected, `${call} ${kind}`).toBe(1);
          if (call === spec.toleratedCall) {
            expect(spec.ok(faulted), `${route} ${k}:${call} ${kind}`).toBe(true);
            tried.push(`${k}:${call}:${kind}`);
            continue;
          }
          expect(faulted.statusCode, `${route} ${k}:${call} ${kind}`).toBe(503);
          expect(Number(faulted.headers?.["retry-after"])).toBeGreaterThanOrEqual(1);
          expect(bodyOf(faulted)).toEqual({ error: "service_unavailable", message: expect.any(String) });
          faulty.control.reset();
          const retry = await spec.send();
          expect(spec.ok(retry) || bodyOf(retry).duplicate === true, `${route} retry after ${kind}`).toBe(
            true,
          );
          expect(state.messages.filter((m) => m.kind === "task_result").length).toBeLessThanOrEqual(1);
          expect(h.pushes.length).toBeLessThanOrEqual(1);
          tried.push(`${k}:${call}:${kind}`);
        }
      }
      expect(tried.length).toBeGreaterThanOrEqual(calls.length * 4);
    });
  }

  it("a task result arriving while DynamoDB is down gets 503 + Retry-After; the runner's retry stores it once and pushes once", async () => {
    ddb.on(GetCommand).rejects(faultError("Throttling"));
    ddb.on(TransactWriteCommand).rejects(faultError("Timeout"));
    for (let attempt = 0; attempt < 3; attempt++) {
      const down = await h.handlers.result(liveRequests.result(TASK));
      expect(down.statusCode).toBe(503);
      expect(down.headers?.["retry-after"]).toBe("2");
    }
    expect(state.tasks.get("task#task-1")?.outcome).toBeUndefined();
    expect(state.messages).toEqual([]);
    expect(h.pushes).toEqual([]);

    // DynamoDB is back.
    ddb.reset();
    fakeLiveTables(ddb, state);
    const back = await h.handlers.result(liveRequests.result(TASK));
    expect(bodyOf(back)).toMatchObject({ outcome: "delivered", pushed: true });
    const again = await h.handlers.result(liveRequests.result(TASK));
    expect(bodyOf(again)).toMatchObject({ outcome: "delivered", duplicate: true });
    expect(state.messages.filter((m) => m.kind === "task_result")).toHaveLength(1);
    expect(h.pushes).toHaveLength(1);
  });
});

describe("other dependencies of every route", () => {
  it("a throttled Secrets Manager (through the Lambda extension) is a 503 with Retry-After, and the next request reads the secret again", async () => {
    const inner = createDocClient();
    const ddb = mockClient(inner);
    fakeLiveTables(ddb, { session: sessionItem(CONV, Date.now()), tasks: new Map(), messages: [] });
    let fetches = 0;
    const extension = secretsExtensionFetcher({ AWS_SESSION_TOKEN: "session-token" }, async () => {
      fetches++;
      return fetches === 1
        ? new Response("Rate exceeded", { status: 429 })
        : Response.json({ SecretString: SERVICE_TOKEN });
    });
    const deps = createDependencies(
      {
        ...harnessEnv(),
        SERVICE_TOKEN_SECRET_ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:svc",
      },
      { doc: inner, logger: captureLogger(), metrics: captureMetrics(), secretFetcher: extension },
    );
    const getSession = makeGetSession(deps);
    const throttled = await getSession(liveRequests.getSession(CONV));
    expect(throttled.statusCode).toBe(503);
    expect(Number(throttled.headers?.["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(bodyOf(throttled).error).toBe("service_unavailable");
    const next = await getSession(liveRequests.getSession(CONV));
    expect(next.statusCode).toBe(200);
    expect(fetches).toBe(2);
  });
});
