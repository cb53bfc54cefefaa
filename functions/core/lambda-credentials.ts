/**
 * What the Lambda bundles use instead of the SDK's default credential chain: esbuild aliases
 * `@aws-sdk/credential-provider-node` to this module (see `lib/bundling.ts`). Lambda hands every
 * function its role's credentials in AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN, so the chain's other links (INI files, SSO, process, web identity, the
 * container and instance metadata services: about 130 KB and 30 ms of every cold start) can never
 * be the one that answers. Code run outside a bundle (tests, `npm start`) keeps the full chain.
 */
import { fromEnv } from "@aws-sdk/credential-provider-env";

/** Thrown when the environment holds no credentials: a broken deploy or a bundle run outside Lambda. */
export class MissingEnvCredentialsError extends Error {
  override readonly name = "MissingEnvCredentialsError";
}

const MISSING =
  "No AWS credentials in the environment: this Lambda bundle reads only AWS_ACCESS_KEY_ID, " +
  "AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (set by the Lambda runtime), not ~/.aws, SSO or " +
  "instance metadata. Set them to run the bundle outside Lambda.";

/**
 * Same name and call shape as `@aws-sdk/credential-provider-node`'s `defaultProvider`, which the
 * SDK clients' runtime config imports. Reads the variables on each call; the client memoizes.
 */
export const defaultProvider = (init: Parameters<typeof fromEnv>[0] = {}): ReturnType<typeof fromEnv> => {
  const fromEnvironment = fromEnv(init);
  return async () => {
    try {
      return await fromEnvironment();
    } catch (error) {
      throw new MissingEnvCredentialsError(MISSING, { cause: error });
    }
  };
};
