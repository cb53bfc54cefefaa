import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Sha256 } from "@smithy/core/checksum";
import { SignatureV4 } from "@smithy/signature-v4";
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MissingEnvCredentialsError } from "../../../functions/core/lambda-credentials.js";
import {
  createSqsSend,
  SQS_SEND_SETTINGS,
  SqsSendError,
  type SqsSendOptions,
  signRequest,
} from "../../../functions/core/sqs-send.js";

const EXAMPLE = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };
const AT = Date.UTC(2015, 7, 30, 12, 36, 0);

describe("signRequest (SigV4)", () => {
  // The published AWS Signature Version 4 test suite (aws-sig-v4-test-suite), region us-east-1, service "service".
  it.each([
    [
      "get-vanilla",
      "GET",
      "/",
      {},
      "",
      "host;x-amz-date",
      "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
    ],
    [
      "post-vanilla",
      "POST",
      "/",
      {},
      "",
      "host;x-amz-date",
      "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
    ],
    [
      "get-vanilla-query-order-key-case",
      "GET",
      "/?Param2=value2&Param1=value1",
      {},
      "",
      "host;x-amz-date",
      "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
    ],
    [
      "post-x-www-form-urlencoded",
      "POST",
      "/",
      { "Content-Type": "application/x-www-form-urlencoded" },
      "Param1=value1",
      "content-type;host;x-amz-date",
      "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
    ],
  ] as const)(
    "matches the AWS test suite: %s",
    (_name, method, path, headers, body, signedHeaders, signature) => {
      const url = new URL(`https://example.amazonaws.com${path}`);
      const signed = signRequest(
        { method, url, headers, body },
        EXAMPLE,
        { region: "us-east-1", service: "service" },
        AT,
      );
      expect(signed.authorization).toBe(
        `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=${signedHeaders}, Signature=${signature}`,
      );
      expect(signed["x-amz-date"]).toBe("20150830T123600Z");
    },
  );

  it("signs exactly as the SDK's SignatureV4 for any header values, body, query, token and time", async () => {
    const token = fc
      .string({ minLength: 1, maxLength: 40 })
      .filter((t) => t.trim() === t && /^[\x21-\x7e]+$/.test(t));
    const headerValue = fc.string({ maxLength: 30 }).filter((v) => /^[\x20-\x7e]*$/.test(v));
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          body: fc.string({ maxLength: 200 }),
          target: headerValue,
          extra: headerValue,
          query: fc.dictionary(fc.stringMatching(/^[A-Za-z0-9_.~-]{1,8}$/), fc.string({ maxLength: 10 }), {
            maxKeys: 3,
          }),
          token: fc.option(token, { nil: undefined }),
          atMs: fc.integer({ min: Date.UTC(2001, 0, 1), max: Date.UTC(2099, 0, 1) }),
          region: fc.constantFrom("us-east-1", "eu-west-1", "ap-southeast-2"),
        }),
        async ({ body, target, extra, query, token: sessionToken, atMs, region }) => {
          const credentials = { ...EXAMPLE, ...(sessionToken ? { sessionToken } : {}) };
          const url = new URL("https://sqs.example.amazonaws.com/");
          for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
          const headers = {
            "content-type": "application/x-amz-json-1.0",
            "x-amz-target": target,
            "x-extra": extra,
          };
          const ours = signRequest(
            { method: "POST", url, headers, body },
            credentials,
            { region, service: "sqs" },
            atMs,
          );
          const sdk = await new SignatureV4({
            credentials,
            region,
            service: "sqs",
            sha256: Sha256,
            applyChecksum: false,
          }).sign(
            {
              method: "POST",
              protocol: "https:",
              hostname: url.hostname,
              path: url.pathname,
              query: Object.fromEntries(url.searchParams),
              headers: { host: url.host, ...headers },
              body,
            },
            { signingDate: new Date(atMs) },
          );
          expect(ours.authorization).toBe(sdk.headers.authorization);
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** A stand-in SQS endpoint: answers each request with the next scripted reply and records it. */
interface Seen {
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}
type Reply = (res: ServerResponse, body: Record<string, unknown>) => void;
let server: Server;
let origin: string;
const seen: Seen[] = [];
let replies: Reply[] = [];

const md5 = (text: string) => createHash("md5").update(text, "utf8").digest("hex");
const ok: Reply = (res, body) =>
  res
    .writeHead(200, { "content-type": "application/x-amz-json-1.0" })
    .end(JSON.stringify({ MessageId: "m-1", MD5OfMessageBody: md5(String(body.MessageBody)) }));
const fail =
  (status: number, type: string, queryError?: string): Reply =>
  (res) =>
    res
      .writeHead(status, {
        "content-type": "application/x-amz-json-1.0",
        ...(queryError ? { "x-amzn-query-error": queryError } : {}),
      })
      .end(JSON.stringify({ __type: type, message: "the queue said no" }));

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ url: String(req.url), headers: req.headers, body });
      const reply = replies.shift();
      if (reply) reply(res, JSON.parse(body) as Record<string, unknown>);
      // No reply scripted: never answer (a hung endpoint).
    });
  });
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => {
  seen.length = 0;
  replies = [];
});
afterAll(() => new Promise<void>((done) => server.close(() => done())));

const CREDS = { accessKeyId: "ASIALAMBDA", secretAccessKey: "lambda-secret", sessionToken: "lambda-token" };
const sleeps: number[] = [];
const sender = (options: SqsSendOptions = {}) =>
  createSqsSend(
    {
      credentials: async () => CREDS,
      region: "eu-west-1",
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      random: () => 1,
      ...options,
    },
    {},
  );
afterEach(() => {
  sleeps.length = 0;
});

describe("createSqsSend", () => {
  it("keeps the SDK client's deliberate limits: 3 attempts of at most 2 s", () => {
    expect(SQS_SEND_SETTINGS).toEqual({ maxAttempts: 3, attemptTimeoutMs: 2000 });
    // Worst case (every attempt hangs, plus the largest throttled backoff) stays inside the 10 s Lambda timeout.
    expect(SQS_SEND_SETTINGS.maxAttempts * SQS_SEND_SETTINGS.attemptTimeoutMs + 500 + 1000).toBeLessThan(
      10_000,
    );
  });

  it("POSTs one signed AWS JSON SendMessage to the queue URL's origin", async () => {
    replies = [ok];
    const queueUrl = `${origin}/123456789012/tasks`;
    await expect(sender()(queueUrl, '{"taskId":"t1"}')).resolves.toBe("m-1");
    expect(seen).toHaveLength(1);
    const [request] = seen;
    expect(request?.url).toBe("/");
    expect(JSON.parse(String(request?.body))).toEqual({ QueueUrl: queueUrl, MessageBody: '{"taskId":"t1"}' });
    expect(request?.headers).toMatchObject({
      "content-type": "application/x-amz-json-1.0",
      "x-amz-target": "AmazonSQS.SendMessage",
      "x-amz-security-token": "lambda-token",
    });
    expect(request?.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=ASIALAMBDA\/\d{8}\/eu-west-1\/sqs\/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target;x-amzn-query-mode, Signature=[0-9a-f]{64}$/,
    );
  });

  it("signs what it sends: the server's recomputed signature matches", async () => {
    replies = [ok];
    const at = Date.UTC(2026, 11, 2, 10, 0, 0);
    await sender({ now: () => at })(`${origin}/1/q`, "body");
    const request = seen[0] as Seen;
    const resigned = signRequest(
      {
        method: "POST",
        url: new URL(`${origin}/`),
        headers: {
          "content-type": String(request.headers["content-type"]),
          "x-amz-target": String(request.headers["x-amz-target"]),
          "x-amzn-query-mode": String(request.headers["x-amzn-query-mode"]),
        },
        body: request.body,
      },
      CREDS,
      { region: "eu-west-1", service: "sqs" },
      at,
    );
    expect(request.headers.authorization).toBe(resigned.authorization);
  });

  it("retries 5xx and throttling with the SDK's backoff, then succeeds", async () => {
    replies = [
      fail(500, "com.amazonaws.sqs#InternalError"),
      fail(400, "com.amazonaws.sqs#RequestThrottled"),
      ok,
    ];
    await expect(sender()(`${origin}/1/q`, "x")).resolves.toBe("m-1");
    expect(seen).toHaveLength(3);
    // random() = 1: 100 ms × 2^0 after the 5xx, 500 ms × 2^1 after the throttle.
    expect(sleeps).toEqual([100, 1000]);
  });

  it("gives up after 3 attempts with the last error", async () => {
    replies = [
      fail(503, "ServiceUnavailable"),
      fail(503, "ServiceUnavailable"),
      fail(503, "ServiceUnavailable"),
    ];
    const error = await sender()(`${origin}/1/q`, "x").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SqsSendError);
    expect(error).toMatchObject({ status: 503, code: "ServiceUnavailable" });
    expect(seen).toHaveLength(3);
  });

  it("does not retry a client error such as a missing queue, and names its code", async () => {
    replies = [
      fail(400, "com.amazonaws.sqs#QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue;Sender"),
    ];
    await expect(sender()(`${origin}/1/q`, "x")).rejects.toMatchObject({
      name: "SqsSendError",
      status: 400,
      code: "QueueDoesNotExist",
      message: "SQS SendMessage failed: HTTP 400 QueueDoesNotExist: the queue said no",
    });
    expect(seen).toHaveLength(1);
  });

  it("takes the code from x-amzn-query-error when the body has none", async () => {
    replies = [(res) => res.writeHead(403, { "x-amzn-query-error": "AccessDenied;Sender" }).end("not json")];
    await expect(sender()(`${origin}/1/q`, "x")).rejects.toMatchObject({ status: 403, code: "AccessDenied" });
  });

  it("rejects an answer whose body checksum does not match the message, as the SDK does", async () => {
    replies = [
      (res) => res.writeHead(200).end(JSON.stringify({ MessageId: "m", MD5OfMessageBody: md5("other") })),
    ];
    await expect(sender()(`${origin}/1/q`, "x")).rejects.toThrow(/checksum/);
    expect(seen).toHaveLength(1);
  });

  it("aborts an attempt that gets no answer, retries, and fails instead of hanging", async () => {
    // No replies scripted: the endpoint accepts and never answers.
    const error = await sender({ attemptTimeoutMs: 300 })(`${origin}/1/q`, "x").catch((e: unknown) => e);
    server.closeAllConnections();
    expect(error).toBeInstanceOf(SqsSendError);
    expect((error as Error).message).toBe("SQS SendMessage got no answer within 300 ms");
    expect(seen).toHaveLength(3);
  });

  it("fails on an unreachable endpoint after its retries", async () => {
    const closed = createServer();
    await new Promise<void>((ready) => closed.listen(0, "127.0.0.1", ready));
    const { port } = closed.address() as AddressInfo;
    await new Promise<void>((done) => closed.close(() => done()));
    await expect(sender()(`http://127.0.0.1:${port}/1/q`, "x")).rejects.toThrow(
      "SQS SendMessage could not reach the queue endpoint",
    );
    expect(sleeps).toHaveLength(2);
  });

  it("reads the Lambda's credentials and region from the environment by default", async () => {
    replies = [ok];
    const send = createSqsSend({ sleep: async () => undefined }, { AWS_REGION: "ap-southeast-2" });
    // The default provider reads process.env (as the SDK's fromEnv does): set it for this call.
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ACCESS_KEY_ID: "ASIAFROMENV",
      AWS_SECRET_ACCESS_KEY: "s",
      AWS_SESSION_TOKEN: "t",
    });
    try {
      await send(`${origin}/1/q`, "x");
    } finally {
      for (const name of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
    }
    expect(seen[0]?.headers.authorization).toMatch(/Credential=ASIAFROMENV\/\d{8}\/ap-southeast-2\/sqs\//);
  });

  it("says clearly when the environment has no credentials or no region, sending nothing", async () => {
    const saved = { ...process.env };
    for (const name of ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"])
      delete process.env[name];
    try {
      await expect(
        createSqsSend({}, { AWS_REGION: "eu-west-1" })(`${origin}/1/q`, "x"),
      ).rejects.toBeInstanceOf(MissingEnvCredentialsError);
    } finally {
      Object.assign(process.env, saved);
    }
    await expect(createSqsSend({ credentials: async () => CREDS }, {})(`${origin}/1/q`, "x")).rejects.toThrow(
      "AWS_REGION is not set",
    );
    expect(seen).toHaveLength(0);
  });
});
