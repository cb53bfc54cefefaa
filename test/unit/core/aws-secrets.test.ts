import { describe, expect, it, vi } from "vitest";
import { secretsExtensionFetcher } from "../../../functions/core/aws-secrets.js";
import { ServiceUnavailableError } from "../../../functions/core/errors.js";

const ARN =
  "arn:aws:secretsmanager:eu-west-1:123456789012:secret:elevenlabs-agent-sessions/dev/tool-secret-AbC123";

describe("secretsExtensionFetcher (AWS Parameters and Secrets Lambda Extension)", () => {
  it("asks the local extension with the session token and returns SecretString", async () => {
    const fetchImpl = vi.fn(async () => new Response(JSON.stringify({ SecretString: "s3cret", Name: "x" })));
    const fetcher = secretsExtensionFetcher(
      { AWS_SESSION_TOKEN: "session-token" },
      fetchImpl as unknown as typeof fetch,
    );
    expect(await fetcher(ARN)).toBe("s3cret");
    expect(fetchImpl).toHaveBeenCalledWith(
      `http://localhost:2773/secretsmanager/get?secretId=${encodeURIComponent(ARN)}`,
      expect.objectContaining({ headers: { "X-Aws-Parameters-Secrets-Token": "session-token" } }),
    );
  });

  it("honours PARAMETERS_SECRETS_EXTENSION_HTTP_PORT", async () => {
    const fetchImpl = vi.fn(async () => new Response(JSON.stringify({ SecretString: "v" })));
    await secretsExtensionFetcher(
      { AWS_SESSION_TOKEN: "t", PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: "9999" },
      fetchImpl as unknown as typeof fetch,
    )(ARN);
    expect(String((fetchImpl.mock.calls[0] as unknown[])[0])).toMatch(/^http:\/\/localhost:9999\//);
  });

  it("turns an unreachable or failing extension into a retryable 503 error", async () => {
    const down = secretsExtensionFetcher({ AWS_SESSION_TOKEN: "t" }, (async () =>
      Promise.reject(new TypeError("fetch failed"))) as typeof fetch);
    await expect(down(ARN)).rejects.toBeInstanceOf(ServiceUnavailableError);
    const busy = secretsExtensionFetcher(
      { AWS_SESSION_TOKEN: "t" },
      (async () => new Response("", { status: 500 })) as typeof fetch,
    );
    await expect(busy(ARN)).rejects.toBeInstanceOf(ServiceUnavailableError);
  });

  it("treats a refused secret (4xx) as a deploy problem, not a retry", async () => {
    const denied = secretsExtensionFetcher(
      { AWS_SESSION_TOKEN: "t" },
      (async () => new Response("AccessDenied", { status: 400 })) as typeof fetch,
    );
    const error = await denied(ARN).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ServiceUnavailableError);
  });

  it("refuses to run without AWS_SESSION_TOKEN", async () => {
    await expect(secretsExtensionFetcher({}, fetch)(ARN)).rejects.toThrow(/AWS_SESSION_TOKEN/);
  });
});
