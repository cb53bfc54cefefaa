/**
 * Reads a deployed stage's secrets from Secrets Manager for the operator scripts (`npm run smoke`,
 * `npm run elevenlabs:config`). The SDK client is imported only when a stage is named, so local
 * runs and tests never load it, and it is never part of a Lambda bundle.
 */

/** The secrets the stack creates per stage (`elevenlabs-agent-sessions/<stage>/<name>`). */
export type StageSecretName = "service-token" | "tool-secret" | "webhook-secret";

/** The Secrets Manager name of one of a stage's secrets. */
export const stageSecretId = (stage: string, name: StageSecretName): string =>
  `elevenlabs-agent-sessions/${stage}/${name}`;

/** Thrown when a stage's secret cannot be read: names the secret, never a value. */
export class StageSecretError extends Error {
  override readonly name = "StageSecretError";
}

/**
 * The values of `names` for `stage`, read with the caller's AWS credentials and region
 * (`AWS_PROFILE`, `AWS_REGION`, or `region`).
 */
export const readStageSecrets = async <N extends StageSecretName>(
  stage: string,
  names: readonly N[],
  region?: string,
): Promise<Record<N, string>> => {
  if (!/^[a-z][a-z0-9-]{0,30}$/.test(stage))
    throw new StageSecretError(`--stage must be a lower-case stage name, not "${stage}".`);
  const { GetSecretValueCommand, SecretsManagerClient } = await import("@aws-sdk/client-secrets-manager");
  const client = new SecretsManagerClient(region ? { region } : {});
  try {
    const values = {} as Record<N, string>;
    for (const name of names) {
      const id = stageSecretId(stage, name);
      let value: string | undefined;
      try {
        value = (await client.send(new GetSecretValueCommand({ SecretId: id }))).SecretString;
      } catch (error) {
        throw new StageSecretError(
          `Could not read the secret ${id} (${error instanceof Error ? error.name : "error"}): check AWS credentials, region (--region or AWS_REGION) and the stage name.`,
        );
      }
      if (!value) throw new StageSecretError(`The secret ${id} is empty.`);
      values[name] = value;
    }
    return values;
  } finally {
    client.destroy();
  }
};
