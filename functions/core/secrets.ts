import type { SecretName } from "./routes.js";
import { SECRET_ENV } from "./secret-env.js";

/** Reads a secret by name. Values are cached per container and never logged. */
export interface Secrets {
  get(name: SecretName): Promise<string>;
}

/** Fetches a secret value from a remote store (Secrets Manager in AWS). */
export type SecretFetcher = (secretId: string) => Promise<string | undefined>;

/** Thrown when a secret is not configured: a deploy problem, answered as a 500 and logged. */
export class SecretNotConfiguredError extends Error {
  override readonly name = "SecretNotConfiguredError";
}

/**
 * Secrets from Secrets Manager when `<NAME>_SECRET_ARN` is set (fetched once, then cached for
 * `maxAgeMs` so rotation is picked up), otherwise from the `<NAME>` environment variable (local).
 */
export const createSecrets = (
  env: NodeJS.ProcessEnv,
  fetcher?: SecretFetcher,
  options: { maxAgeMs?: number; now?: () => number } = {},
): Secrets => {
  const maxAgeMs = options.maxAgeMs ?? 300_000;
  const now = options.now ?? Date.now;
  const cache = new Map<SecretName, { value: Promise<string>; at: number }>();
  const load = async (name: SecretName): Promise<string> => {
    const variable = SECRET_ENV[name];
    const arn = env[`${variable}_SECRET_ARN`];
    if (arn) {
      if (!fetcher)
        throw new SecretNotConfiguredError(
          `${variable}_SECRET_ARN is set but no secret fetcher is available`,
        );
      const value = await fetcher(arn);
      if (!value) throw new SecretNotConfiguredError(`Secret ${variable} (${arn}) is empty`);
      return value;
    }
    const value = env[variable];
    if (!value) throw new SecretNotConfiguredError(`Secret ${variable} is not configured`);
    return value;
  };
  return {
    get(name) {
      const cached = cache.get(name);
      if (cached && now() - cached.at < maxAgeMs) return cached.value;
      const value = load(name);
      cache.set(name, { value, at: now() });
      // A failed fetch must not be cached: the next request tries again.
      value.catch(() => cache.delete(name));
      return value;
    },
  };
};
