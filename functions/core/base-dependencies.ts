import { secretsExtensionFetcher } from "./aws-secrets.js";
import { type Clock, systemClock } from "./clock.js";
import { type Config, type ConfigNeed, loadConfig } from "./config.js";
import type { HttpDeps } from "./handler.js";
import { logger, metrics } from "./powertools.js";
import { createSecrets, type SecretFetcher, type Secrets } from "./secrets.js";

/**
 * What every function needs, whatever its route touches: config, clock, Powertools and secrets.
 * No AWS SDK import, so a function whose route touches no table (get-signed-url) bundles none.
 */
export interface BaseDependencies extends HttpDeps {
  readonly config: Config;
  readonly now: Clock;
  readonly secrets: Secrets;
}

/** Overrides for tests and the local server. */
export interface BaseOverrides {
  readonly now?: Clock;
  readonly secretFetcher?: SecretFetcher;
  readonly logger?: BaseDependencies["logger"];
  readonly metrics?: BaseDependencies["metrics"];
}

/** Reads the config (failing fast when a variable is missing); built once per container. */
export const createBaseDependencies = (
  env: NodeJS.ProcessEnv = process.env,
  overrides: BaseOverrides = {},
  needs: readonly ConfigNeed[] = [],
): BaseDependencies => ({
  config: loadConfig(env, needs),
  now: overrides.now ?? systemClock,
  logger: overrides.logger ?? logger,
  metrics: overrides.metrics ?? metrics,
  secrets: createSecrets(env, overrides.secretFetcher ?? secretsExtensionFetcher(env)),
});
