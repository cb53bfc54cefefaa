import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { SecretFetcher } from "./secrets.js";

/** Reads secret strings from AWS Secrets Manager. Create once per container. */
export const secretsManagerFetcher = (
  client = new SecretsManagerClient({ maxAttempts: 3 }),
): SecretFetcher => {
  return async (secretId) => {
    const output = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    return output.SecretString;
  };
};
