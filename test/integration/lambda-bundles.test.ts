import { execFile } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { TaskMessage } from "../../functions/core/dispatcher.js";
import { ROUTES } from "../../functions/core/routes.js";
import { signRequest } from "../../functions/core/sqs-send.js";
import { LOCAL_REGION } from "../../local/dynamodb-local.js";
import { createLocalTables, type LocalTables } from "../support/dynamo.js";
import { apiEvent } from "../support/events.js";
import { buildAsDeployed } from "../support/lambda-build.js";
import { transcriptionEvent, WEBHOOK_SECRET, webhookRequest } from "../support/post-call-fixtures.js";

/**
 * The Lambda bundles exactly as deployed (lib/bundling.ts: env-only credentials, no event-stream
 * serde, the Map LRU, SQS as one signed request), each run in a fresh Node process with the
 * environment Lambda gives it, against DynamoDB Local and a stand-in SQS endpoint: a whole
 * conversation through every table function. What the aliases replaced is thereby proven unused
 * (or, for the LRU, working) at run time, not only absent from the bytes.
 */
const SERVICE_TOKEN = "bundle-service-token-0123456789";
const TOOL_SECRET = "bundle-tool-secret-0123456789";
// What the Lambda runtime sets for the role (made up; DynamoDB Local accepts any).
const ROLE = {
  accessKeyId: "ASIABUNDLETEST",
  secretAccessKey: "bundle-secret-key",
  sessionToken: "bundle-token",
};

let tables: LocalTables;
let outDir: string;
let sqs: Server;
let sqsOrigin: string;
/** Every SendMessage the stand-in received, with whether its signature verified. */
const received: { queueUrl: string; body: string; signatureValid: boolean; headers: IncomingHttpHeaders }[] =
  [];

/** SQS's answer to SendMessage (JSON protocol), after checking the request's SigV4 signature. */
const startSqs = async (): Promise<void> => {
  sqs = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const payload = Buffer.concat(chunks).toString("utf8");
      const { QueueUrl, MessageBody } = JSON.parse(payload) as { QueueUrl: string; MessageBody: string };
      const amzDate = String(req.headers["x-amz-date"]);
      const atMs = Date.parse(
        `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
      );
      const expected = signRequest(
        {
          method: "POST",
          url: new URL(`${sqsOrigin}${req.url}`),
          headers: {
            "content-type": String(req.headers["content-type"]),
            "x-amz-target": String(req.headers["x-amz-target"]),
            "x-amzn-query-mode": String(req.headers["x-amzn-query-mode"]),
          },
          body: payload,
        },
        ROLE,
        { region: LOCAL_REGION, service: "sqs" },
        atMs,
      );
      received.push({
        queueUrl: QueueUrl,
        body: MessageBody,
        signatureValid: expected.authorization === req.headers.authorization,
        headers: req.headers,
      });
      res.writeHead(200, { "content-type": "application/x-amz-json-1.0" }).end(
        JSON.stringify({
          MessageId: randomUUID(),
          MD5OfMessageBody: createHash("md5").update(MessageBody, "utf8").digest("hex"),
        }),
      );
    });
  });
  await new Promise<void>((ready) => sqs.listen(0, "127.0.0.1", ready));
  sqsOrigin = `http://127.0.0.1:${(sqs.address() as AddressInfo).port}`;
};

beforeAll(async () => {
  tables = await createLocalTables();
  await startSqs();
  outDir = mkdtempSync(join(tmpdir(), "lambda-bundles-"));
  for (const name of new Set(ROUTES.map((r) => r.name))) {
    await buildAsDeployed(`functions/${name}/handler.ts`, join(outDir, `${name}.mjs`));
  }
});
afterAll(async () => {
  await new Promise<void>((done) => sqs.close(() => done()));
  rmSync(outDir, { recursive: true, force: true });
  await tables.drop();
});

interface Invocation {
  readonly statusCode: number;
  readonly body: Record<string, unknown>;
  /** Everything the process wrote (stdout, then stderr): Powertools log lines and EMF blobs. */
  readonly output: string;
}

/**
 * Starts a fresh Node process (a cold start), imports the bundle and invokes its handler once.
 * The environment is what the stack deploys (Powertools at INFO, metrics on) plus the role's
 * credentials, and nothing of this process's own.
 */
const invoke = (
  name: string,
  event: APIGatewayProxyEventV2,
  without: readonly string[] = [],
): Promise<Invocation> => {
  const driver = `
    const { handler } = await import(process.argv[1]);
    const result = await handler(JSON.parse(process.argv[2]), { awsRequestId: "bundle-test", functionName: process.argv[3], getRemainingTimeInMillis: () => 30000 });
    process.stdout.write("\\nRESULT " + JSON.stringify(result) + "\\n");`;
  // Only Lambda's variables, plus a shifted clock when the run has one (.ci/test-clock-ahead):
  // the bundle must read the same time as this process, which signs the webhook events.
  const clock = Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] =>
        /^(LD_PRELOAD|FAKETIME.*|DONT_FAKE_MONOTONIC)$/.test(e[0]) && e[1] !== undefined,
    ),
  );
  const env: Record<string, string> = {
    ...clock,
    PATH: process.env.PATH ?? "",
    AWS_REGION: LOCAL_REGION,
    AWS_ACCESS_KEY_ID: ROLE.accessKeyId,
    AWS_SECRET_ACCESS_KEY: ROLE.secretAccessKey,
    AWS_SESSION_TOKEN: ROLE.sessionToken,
    AWS_LAMBDA_FUNCTION_NAME: name,
    POWERTOOLS_LOG_LEVEL: "INFO",
    SESSIONS_TABLE: tables.names.sessions,
    CONVERSATIONS_TABLE: tables.names.conversations,
    DYNAMODB_ENDPOINT: inject("dynamoEndpoint"),
    PUBLIC_BASE_URL: "https://api.example.test",
    TASK_QUEUE_URL: `${sqsOrigin}/123456789012/tasks`,
    PARKING_QUEUE_URL: `${sqsOrigin}/123456789012/parking`,
    SERVICE_TOKEN,
    TOOL_SECRET,
    WEBHOOK_SECRET,
    NOTIFY_SIGNING_SECRET: "bundle-notify-secret",
  };
  for (const variable of without) delete env[variable];
  return new Promise((done, fail) => {
    execFile(
      process.execPath,
      ["--input-type=module", "-e", driver, join(outDir, `${name}.mjs`), JSON.stringify(event), name],
      { env, cwd: outDir, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) return fail(new Error(`${name} failed: ${error.message}\n${stdout}\n${stderr}`));
        const line = stdout.split("\n").find((l) => l.startsWith("RESULT "));
        if (!line) return fail(new Error(`${name} printed no result:\n${stdout}\n${stderr}`));
        const result = JSON.parse(line.slice("RESULT ".length)) as { statusCode: number; body?: string };
        done({
          statusCode: result.statusCode,
          body: JSON.parse(result.body ?? "{}") as Record<string, unknown>,
          output: `${stdout}\n${stderr}`,
        });
      },
    );
  });
};

const service = { authorization: `Bearer ${SERVICE_TOKEN}` };

describe("the deployed bundles, run as Lambda runs them", () => {
  it("carry a whole conversation: session, tool call over SQS, callback, webhook, history, erasure", async () => {
    const conv = `bundle-${randomUUID()}`;
    const path = `/conversations/${conv}`;
    const pathParameters = { conversationId: conv };

    const registered = await invoke(
      "register-session",
      apiEvent({ path: `${path}/session`, pathParameters, headers: service, body: {} }),
    );
    expect(registered.statusCode, registered.output).toBe(201);
    const session = await invoke(
      "get-session",
      apiEvent({ method: "GET", path: `${path}/session`, pathParameters, headers: service }),
    );
    expect(session.body).toMatchObject({ conversationId: conv, status: "active" });

    const called = await invoke(
      "call-tool",
      apiEvent({
        path: "/tools/lookup_order",
        pathParameters: { toolName: "lookup_order" },
        headers: { "x-tool-secret": TOOL_SECRET },
        body: { conversation_id: conv, order_id: "A1" },
      }),
    );
    expect(called.body, called.output).toMatchObject({ status: "accepted" });
    // The task reached SQS as one SendMessage signed with the role's credentials from the environment.
    const dispatched = received.find((r) => r.queueUrl.endsWith("/tasks"));
    expect(dispatched?.signatureValid).toBe(true);
    expect(dispatched?.headers.authorization).toContain(`Credential=${ROLE.accessKeyId}/`);
    expect(dispatched?.headers["x-amz-security-token"]).toBe(ROLE.sessionToken);
    const message = JSON.parse(String(dispatched?.body)) as TaskMessage;
    expect(message).toMatchObject({
      conversationId: conv,
      toolName: "lookup_order",
      params: { order_id: "A1" },
    });
    // Never in a log line: the callback token, the secrets.
    expect(called.output).not.toContain(message.callbackToken);
    expect(called.output).not.toContain(TOOL_SECRET);

    const reported = await invoke(
      "record-task-result",
      apiEvent({
        path: `${path}/tasks/${message.taskId}/result`,
        pathParameters: { conversationId: conv, taskId: message.taskId },
        headers: { authorization: `Bearer ${message.callbackToken}` },
        body: { result: { order: "A1", status: "shipped" } },
      }),
    );
    expect(reported.body, reported.output).toMatchObject({ outcome: "delivered" });
    const results = await invoke(
      "get-task-result",
      apiEvent({
        path: "/tools/get_task_result",
        headers: { "x-tool-secret": TOOL_SECRET },
        body: { conversation_id: conv, task_id: message.taskId },
      }),
    );
    expect(JSON.stringify(results.body), results.output).toContain("shipped");

    const stored = await invoke(
      "post-call-webhook",
      webhookRequest(
        JSON.stringify(transcriptionEvent(conv, { startSecs: Math.floor(Date.now() / 1000) - 60 })),
      ),
    );
    expect(stored.statusCode, stored.output).toBe(200);
    expect(stored.body).toMatchObject({ status: "stored" });

    const listed = await invoke(
      "list-conversations",
      apiEvent({ method: "GET", path: "/conversations", headers: service, query: { limit: "100" } }),
    );
    expect(
      (listed.body.conversations as { conversationId: string }[]).map((c) => c.conversationId),
    ).toContain(conv);
    const history = await invoke(
      "get-conversation",
      apiEvent({ method: "GET", path, pathParameters, headers: service }),
    );
    expect((history.body.messages as { kind: string }[]).map((m) => m.kind)).toEqual(
      expect.arrayContaining(["session_registered", "task_started", "task_result"]),
    );

    const erased = await invoke(
      "delete-conversation",
      apiEvent({ method: "DELETE", path, pathParameters, headers: service }),
    );
    expect(erased.statusCode, erased.output).toBe(200);
    const gone = await invoke(
      "get-conversation",
      apiEvent({ method: "GET", path, pathParameters, headers: service }),
    );
    expect(gone.statusCode).toBe(404);
  });

  it("post-call-webhook parks a signed but unusable event on the parking queue over SQS", async () => {
    const body = JSON.stringify({ type: "post_call_transcription", event_timestamp: 1, data: {} });
    const answer = await invoke("post-call-webhook", webhookRequest(body));
    expect(answer.body, answer.output).toMatchObject({ status: "unusable" });
    const parked = received.find((r) => r.queueUrl.endsWith("/parking"));
    expect(parked?.signatureValid).toBe(true);
    expect(JSON.parse(String(parked?.body))).toMatchObject({ rawBody: body });
  });

  it("fails a bundle's request clearly when the environment holds no credentials", async () => {
    const conv = `bundle-${randomUUID()}`;
    const answer = await invoke(
      "get-session",
      apiEvent({
        method: "GET",
        path: `/conversations/${conv}/session`,
        pathParameters: { conversationId: conv },
        headers: service,
      }),
      ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"],
    );
    // The env-only provider refuses (no ~/.aws, no instance metadata); the handler answers 500.
    expect(answer.statusCode).toBe(500);
    expect(answer.output).toContain("MissingEnvCredentialsError");
  });
});
