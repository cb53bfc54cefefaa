import { ServiceUnavailableError } from "./errors.js";
import type { SecretFetcher } from "./secrets.js";

/**
 * Reads secret strings through the AWS Parameters and Secrets Lambda Extension (a layer the stack
 * adds): a local HTTP call authenticated with the function's session token. It keeps the Secrets
 * Manager SDK client out of every bundle (about 13 KB minified and its init work) and the
 * extension caches values across invocations. Only usable during invocations, not at init.
 */
export const secretsExtensionFetcher = (
  env: NodeJS.ProcessEnv = process.env,
  fetchImpl: typeof fetch = fetch,
  timeoutMs = 2000,
): SecretFetcher => {
  return async (secretId) => {
    const token = env.AWS_SESSION_TOKEN;
    if (!token) throw new Error("AWS_SESSION_TOKEN is not set, so the secrets extension cannot be called");
    const port = env.PARAMETERS_SECRETS_EXTENSION_HTTP_PORT ?? "2773";
    let response: Response;
    try {
      response = await fetchImpl(
        `http://localhost:${port}/secretsmanager/get?secretId=${encodeURIComponent(secretId)}`,
        {
          headers: { "X-Aws-Parameters-Secrets-Token": token },
          signal: AbortSignal.timeout(timeoutMs),
        },
      );
    } catch {
      throw new ServiceUnavailableError(
        "Credentials could not be checked right now. Please retry shortly.",
        1,
      );
    }
    if (response.status >= 500 || response.status === 429) {
      throw new ServiceUnavailableError(
        "Credentials could not be checked right now. Please retry shortly.",
        1,
      );
    }
    // 4xx: the secret does not exist or the role may not read it, a deploy problem (500, logged).
    if (!response.ok) throw new Error(`Secrets extension refused ${secretId}: HTTP ${response.status}`);
    const body = (await response.json()) as { SecretString?: unknown };
    return typeof body.SecretString === "string" ? body.SecretString : undefined;
  };
};
