/**
 * SQS `SendMessage`, the one SQS request a Lambda of this service makes (task dispatch from
 * call-tool, parking from post-call-webhook), as one signed HTTPS POST in the AWS JSON 1.0
 * protocol instead of `@aws-sdk/client-sqs`. The SDK client registers every SQS operation's
 * error classes and schemas at import: about 28 KB of each of those two bundles, which kept them
 * over the 300 KB budget. What the SDK client did for this call is kept:
 *
 * - credentials from the environment Lambda sets (as the bundles' aliased provider,
 *   `lambda-credentials.ts`), SigV4-signed for service `sqs` in `AWS_REGION`;
 * - the queue URL's origin as the endpoint (the SDK's `useQueueUrlAsEndpoint`);
 * - "standard" retries: 3 attempts, full-jitter backoff (100 ms base, 500 ms when throttled), on
 *   network errors, timeouts, 5xx, 429 and throttling error codes, never on other 4xx;
 * - a deadline per attempt that really aborts it (2 s, the SDK's `requestTimeout`);
 * - the body's MD5 checked against `MD5OfMessageBody`, as the SDK's SQS middleware does.
 */
import { createHash, createHmac } from "node:crypto";
import { defaultProvider } from "./lambda-credentials.js";

/** The deliberate limits, as the SDK client had them: worst case well inside the 10 s timeout. */
export const SQS_SEND_SETTINGS = { maxAttempts: 3, attemptTimeoutMs: 2000 } as const;

/** What signs a request: the Lambda role's credentials. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** Sends one message body to one queue; resolves with the message id once SQS has it. */
export type SqsSend = (queueUrl: string, body: string) => Promise<string>;

/** SendMessage failed after its retries (or at once when not worth retrying). */
export class SqsSendError extends Error {
  override readonly name = "SqsSendError";
  /** The HTTP status, when SQS answered. */
  readonly status?: number;
  /** SQS's error code (`QueueDoesNotExist`, `RequestThrottled`...), when it sent one. */
  readonly code?: string;
  constructor(message: string, details: { status?: number; code?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    if (details.status !== undefined) this.status = details.status;
    if (details.code !== undefined) this.code = details.code;
  }
}

/** Error codes the SDK's standard retry strategy treats as throttling or transient. */
const THROTTLING_CODES = new Set([
  "Throttling",
  "ThrottlingException",
  "ThrottledException",
  "RequestThrottledException",
  "RequestThrottled",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "TransactionInProgressException",
  "RequestLimitExceeded",
  "BandwidthLimitExceeded",
  "LimitExceededException",
  "SlowDown",
  "PriorRequestNotComplete",
  "EC2ThrottledException",
]);
const TRANSIENT_CODES = new Set(["TimeoutError", "RequestTimeout", "RequestTimeoutException"]);

const sha256Hex = (data: string): string => createHash("sha256").update(data, "utf8").digest("hex");
const hmac = (key: string | Buffer, data: string): Buffer =>
  createHmac("sha256", key).update(data, "utf8").digest();

/** A request to sign: its headers are sent as given plus the ones `signRequest` adds. */
export interface UnsignedRequest {
  readonly method: string;
  readonly url: URL;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

/**
 * AWS Signature Version 4 over the whole request (every header given, `host`, `x-amz-date`, the
 * session token): the headers to send, `authorization` included.
 */
export const signRequest = (
  request: UnsignedRequest,
  credentials: AwsCredentials,
  scope: { readonly region: string; readonly service: string },
  atMs: number,
): Record<string, string> => {
  const amzDate = new Date(atMs)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
  const day = amzDate.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) headers[name.toLowerCase()] = value;
  headers.host = request.url.host;
  headers["x-amz-date"] = amzDate;
  if (credentials.sessionToken) headers["x-amz-security-token"] = credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const canonicalHeaders = names
    .map((name) => `${name}:${String(headers[name]).trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const signedHeaders = names.join(";");
  const query = [...request.url.searchParams]
    .map(([k, v]) => [encodeRfc3986(k), encodeRfc3986(v)])
    .sort(([a = "", x = ""], [b = "", y = ""]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
  // As the SDK signs every service but S3: each segment of the (already encoded) path escaped again.
  const path = request.url.pathname
    .split("/")
    .map((segment) => encodeRfc3986(segment))
    .join("/");
  const canonicalRequest = [
    request.method,
    path || "/",
    query,
    canonicalHeaders,
    signedHeaders,
    sha256Hex(request.body),
  ].join("\n");
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = ["AWS4-HMAC-SHA256", amzDate, credentialScope, sha256Hex(canonicalRequest)].join("\n");
  const key = hmac(
    hmac(hmac(hmac(`AWS4${credentials.secretAccessKey}`, day), scope.region), scope.service),
    "aws4_request",
  );
  const signature = createHmac("sha256", key).update(stringToSign, "utf8").digest("hex");
  const { host: _host, ...sent } = headers;
  return {
    ...sent,
    authorization: `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
  };
};

const encodeRfc3986 = (text: string): string =>
  encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Options; the defaults are the Lambda's. Tests pass credentials, a clock and a sleep. */
export interface SqsSendOptions {
  readonly credentials?: () => Promise<AwsCredentials>;
  readonly region?: string;
  readonly maxAttempts?: number;
  readonly attemptTimeoutMs?: number;
  readonly fetchImpl?: typeof fetch;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

/** One attempt's result: done, or failed (and whether another attempt may help). */
type Attempt =
  | { readonly ok: true; readonly messageId: string }
  | { readonly ok: false; readonly error: SqsSendError; readonly retry: "throttled" | "transient" | "no" };

/**
 * The sender every Lambda builds once per container. Region from `AWS_REGION` (set by Lambda);
 * credentials read when the first message is sent.
 */
export const createSqsSend = (
  options: SqsSendOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): SqsSend => {
  const maxAttempts = options.maxAttempts ?? SQS_SEND_SETTINGS.maxAttempts;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? SQS_SEND_SETTINGS.attemptTimeoutMs;
  const credentials = options.credentials ?? defaultProvider();
  const fetchImpl = options.fetchImpl ?? fetch;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((done) => setTimeout(done, ms)));
  const random = options.random ?? Math.random;

  const attempt = async (queueUrl: string, body: string): Promise<Attempt> => {
    const region = options.region ?? env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
    if (!region) return { ok: false, retry: "no", error: new SqsSendError("AWS_REGION is not set") };
    const url = new URL("/", new URL(queueUrl).origin);
    const payload = JSON.stringify({ QueueUrl: queueUrl, MessageBody: body });
    const headers = signRequest(
      {
        method: "POST",
        url,
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amz-target": "AmazonSQS.SendMessage",
          // SQS answers old-style error codes (AWS.SimpleQueueService.X) in x-amzn-query-error.
          "x-amzn-query-mode": "true",
        },
        body: payload,
      },
      await credentials(),
      { region, service: "sqs" },
      now(),
    );
    let response: Response;
    let text: string;
    try {
      response = await fetchImpl(url, {
        method: "POST",
        headers,
        body: payload,
        signal: AbortSignal.timeout(attemptTimeoutMs),
      });
      text = await response.text();
    } catch (cause) {
      const timedOut =
        cause instanceof Error && (cause.name === "TimeoutError" || cause.name === "AbortError");
      return {
        ok: false,
        retry: "transient",
        error: new SqsSendError(
          timedOut
            ? `SQS SendMessage got no answer within ${attemptTimeoutMs} ms`
            : "SQS SendMessage could not reach the queue endpoint",
          { cause },
        ),
      };
    }
    return readAnswer(response, text, body);
  };

  return async (queueUrl, body) => {
    for (let attempts = 1; ; attempts++) {
      const result = await attempt(queueUrl, body);
      if (result.ok) return result.messageId;
      if (result.retry === "no" || attempts >= maxAttempts) throw result.error;
      const base = result.retry === "throttled" ? 500 : 100;
      await sleep(Math.floor(Math.min(20_000, random() * 2 ** (attempts - 1) * base)));
    }
  };
};

/** What an SQS answer means: the message id, or the error and whether a retry may help. */
const readAnswer = (response: Response, text: string, body: string): Attempt => {
  const parsed = parseJson(text);
  if (response.ok) {
    const messageId = typeof parsed.MessageId === "string" ? parsed.MessageId : "";
    const md5 = createHash("md5").update(body, "utf8").digest("hex");
    if (parsed.MD5OfMessageBody !== md5)
      return {
        ok: false,
        retry: "no",
        error: new SqsSendError("SQS SendMessage answered a body checksum that does not match the message"),
      };
    return { ok: true, messageId };
  }
  const code = errorCode(parsed, response.headers.get("x-amzn-query-error"));
  const error = new SqsSendError(
    `SQS SendMessage failed: HTTP ${response.status}${code ? ` ${code}` : ""}${
      typeof parsed.message === "string" ? `: ${parsed.message}` : ""
    }`,
    { status: response.status, ...(code ? { code } : {}) },
  );
  const throttled = response.status === 429 || (code !== undefined && THROTTLING_CODES.has(code));
  const transient = response.status >= 500 || (code !== undefined && TRANSIENT_CODES.has(code));
  return { ok: false, error, retry: throttled ? "throttled" : transient ? "transient" : "no" };
};

const parseJson = (text: string): Record<string, unknown> => {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
};

/**
 * The error code: `x-amzn-query-error` (`AWS.SimpleQueueService.NonExistentQueue;Sender`) when
 * present, else the JSON `__type` without its namespace (`com.amazonaws.sqs#QueueDoesNotExist`).
 */
const errorCode = (body: Record<string, unknown>, queryError: string | null): string | undefined => {
  const type = typeof body.__type === "string" ? body.__type : typeof body.code === "string" ? body.code : "";
  const fromType = type.split("#").at(-1)?.split(":")[0];
  if (fromType) return fromType;
  return queryError?.split(";")[0] || undefined;
};
