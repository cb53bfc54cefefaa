import type { SecretName } from "./routes.js";
import { SECRET_ENV } from "./secret-env.js";

/**
 * A secret during rotation: the value now handed out and, while the other side switches over,
 * the one it replaces. Both are accepted where the secret is checked; only `current` is used to
 * sign or call out.
 */
export interface SecretVersions {
  readonly current: string;
  readonly previous?: string;
}

/** Reads a secret by name. Values are cached per container and never logged. */
export interface Secrets {
  /** The current value. */
  get(name: SecretName): Promise<string>;
  /** The current value and, during a rotation, the previous one. */
  versions(name: SecretName): Promise<SecretVersions>;
}

/**
 * A stored secret string: JSON `{"current": "...", "previous": "..."}` while rotating (or after),
 * any other string is the current value alone (secrets created before rotation existed keep
 * working). An empty or missing `previous` means none.
 */
export const parseSecretVersions = (stored: string): SecretVersions | undefined => {
  if (stored.startsWith("{")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(stored);
    } catch {
      return { current: stored };
    }
    if (typeof parsed !== "object" || parsed === null || !("current" in parsed)) return { current: stored };
    const { current, previous } = parsed as { current: unknown; previous?: unknown };
    if (typeof current !== "string" || current.length === 0) return undefined;
    if (previous !== undefined && previous !== null && typeof previous !== "string") return undefined;
    return previous ? { current, previous } : { current };
  }
  return stored.length > 0 ? { current: stored } : undefined;
};

/** Fetches a secret value from a remote store (Secrets Manager in AWS). */
export type SecretFetcher = (secretId: string) => Promise<string | undefined>;

/** Thrown when a secret is not configured: a deploy problem, answered as a 500 and logged. */
export class SecretNotConfiguredError extends Error {
  override readonly name = "SecretNotConfiguredError";
}

/**
 * Secrets from Secrets Manager when `<NAME>_SECRET_ARN` is set (fetched once, then cached for
 * `maxAgeMs` so rotation is picked up), otherwise from the `<NAME>` environment variable and,
 * during a rotation, `<NAME>_PREVIOUS` (local).
 */
export const createSecrets = (
  env: NodeJS.ProcessEnv,
  fetcher?: SecretFetcher,
  options: { maxAgeMs?: number; now?: () => number } = {},
): Secrets => {
  const maxAgeMs = options.maxAgeMs ?? 300_000;
  const now = options.now ?? Date.now;
  const cache = new Map<SecretName, { value: Promise<SecretVersions>; at: number }>();
  const load = async (name: SecretName): Promise<SecretVersions> => {
    const variable = SECRET_ENV[name];
    const arn = env[`${variable}_SECRET_ARN`];
    if (arn) {
      if (!fetcher)
        throw new SecretNotConfiguredError(
          `${variable}_SECRET_ARN is set but no secret fetcher is available`,
        );
      const stored = await fetcher(arn);
      const versions = stored ? parseSecretVersions(stored) : undefined;
      if (!versions)
        throw new SecretNotConfiguredError(`Secret ${variable} (${arn}) is empty or has no usable "current"`);
      return versions;
    }
    const value = env[variable];
    if (!value) throw new SecretNotConfiguredError(`Secret ${variable} is not configured`);
    const previous = env[`${variable}_PREVIOUS`];
    return previous ? { current: value, previous } : { current: value };
  };
  const versions = (name: SecretName): Promise<SecretVersions> => {
    const cached = cache.get(name);
    if (cached && now() - cached.at < maxAgeMs) return cached.value;
    const value = load(name);
    cache.set(name, { value, at: now() });
    // A failed fetch must not be cached: the next request tries again.
    value.catch(() => cache.delete(name));
    return value;
  };
  return {
    versions,
    get: async (name) => (await versions(name)).current,
  };
};
