import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { DynamoDBClient, GetItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { defaultProvider, MissingEnvCredentialsError } from "../../../functions/core/lambda-credentials.js";

// What the Lambda runtime sets for the function's role (values made up).
const LAMBDA_ENV = {
  AWS_ACCESS_KEY_ID: "ASIAEXAMPLELAMBDAKEY",
  AWS_SECRET_ACCESS_KEY: "lambda-secret-access-key",
  AWS_SESSION_TOKEN: "lambda-session-token",
} as const;
const NAMES = Object.keys(LAMBDA_ENV) as (keyof typeof LAMBDA_ENV)[];

/** A stand-in DynamoDB endpoint on 127.0.0.1 that records each request's headers and answers `{}`. */
let server: Server;
let endpoint: string;
const seen: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    seen.push(request.headers);
    request.resume().on("end", () => {
      response.writeHead(200, { "content-type": "application/x-amz-json-1.0" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const saved = Object.fromEntries(NAMES.map((name) => [name, process.env[name]]));
const setEnv = (values: Partial<Record<keyof typeof LAMBDA_ENV, string>>) => {
  for (const name of NAMES) {
    const value = values[name];
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
};
afterEach(() => {
  setEnv(saved);
  seen.length = 0;
});

/** A client wired the way the aliased bundle wires it: the SDK's default provider is ours. */
const client = () =>
  new DynamoDBClient({
    endpoint,
    region: "eu-west-1",
    maxAttempts: 1,
    credentialDefaultProvider: defaultProvider,
  });
const getItem = (c: DynamoDBClient) =>
  c.send(new GetItemCommand({ TableName: "sessions", Key: { conversationId: { S: "c1" } } }));

describe("env-only credentials of the Lambda bundles", () => {
  it("signs requests with the variables the Lambda runtime sets", async () => {
    setEnv(LAMBDA_ENV);
    const c = client();
    await getItem(c);
    c.destroy();
    const headers = seen[0];
    expect(headers?.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=ASIAEXAMPLELAMBDAKEY\/\d{8}\/eu-west-1\/dynamodb\/aws4_request, SignedHeaders=[^,]*x-amz-security-token[^,]*, Signature=[0-9a-f]{64}$/,
    );
    expect(headers?.["x-amz-security-token"]).toBe(LAMBDA_ENV.AWS_SESSION_TOKEN);
  });

  it("signs with the secret key: another secret gives another signature", async () => {
    const signature = async (secret: string) => {
      setEnv({ ...LAMBDA_ENV, AWS_SECRET_ACCESS_KEY: secret });
      const c = client();
      await getItem(c);
      c.destroy();
      return /Signature=([0-9a-f]+)/.exec(String(seen.at(-1)?.authorization))?.[1];
    };
    const first = await signature("secret-one");
    const second = await signature("secret-two");
    expect(first).toMatch(/^[0-9a-f]{64}$/);
    expect(second).toMatch(/^[0-9a-f]{64}$/);
    expect(first).not.toBe(second);
  });

  it.each([
    ["no variables at all", {}],
    ["an access key without its secret", { AWS_ACCESS_KEY_ID: "ASIAEXAMPLELAMBDAKEY" }],
  ])("fails with a clear error and sends nothing when given %s", async (_label, env) => {
    setEnv(env);
    const c = client();
    const failure = getItem(c);
    await expect(failure).rejects.toBeInstanceOf(MissingEnvCredentialsError);
    await expect(failure).rejects.toThrow(/AWS_ACCESS_KEY_ID.*AWS_SECRET_ACCESS_KEY.*Lambda/);
    c.destroy();
    expect(seen).toHaveLength(0);
  });

  it("keeps the SDK's provider options (the call shape the client runtime config uses)", async () => {
    setEnv(LAMBDA_ENV);
    const credentials = await defaultProvider({})();
    expect(credentials).toMatchObject({
      accessKeyId: LAMBDA_ENV.AWS_ACCESS_KEY_ID,
      secretAccessKey: LAMBDA_ENV.AWS_SECRET_ACCESS_KEY,
      sessionToken: LAMBDA_ENV.AWS_SESSION_TOKEN,
    });
  });
});
