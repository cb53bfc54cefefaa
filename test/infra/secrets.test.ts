import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { ROUTES, type SecretName } from "../../functions/core/routes.js";
import { SECRET_ENV } from "../../functions/core/secret-env.js";
import type { SessionsStack } from "../../lib/sessions-stack.js";
import { actionsByResource, functionFacts, refId, synthStack } from "./synth.js";

const SECRET_NAMES = Object.keys(SECRET_ENV) as SecretName[];
const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const EXISTING_WEBHOOK_ARN =
  "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ops/elevenlabs-webhook-AbC123";

describe("secrets", () => {
  let stack: SessionsStack;
  let template: Template;
  /** Logical id of each secret, by its secret name (read from the secret's Name in the template). */
  let idOf: Record<SecretName, string>;
  beforeAll(() => {
    ({ stack, template } = synthStack());
    idOf = {} as Record<SecretName, string>;
    for (const [id, secret] of Object.entries(template.findResources("AWS::SecretsManager::Secret"))) {
      const name = SECRET_NAMES.find(
        (n) => secret.Properties.Name === `elevenlabs-agent-sessions/dev/${kebab(n)}`,
      );
      if (name) idOf[name] = id;
    }
  });

  it("creates one secret per secret name of the route table, named by stage, with a random value", () => {
    template.resourceCountIs("AWS::SecretsManager::Secret", SECRET_NAMES.length);
    expect(Object.keys(idOf).sort()).toEqual([...SECRET_NAMES].sort());
    for (const id of Object.values(idOf)) {
      const secret = template.toJSON().Resources[id];
      // Even the ElevenLabs-issued ones start random: a known placeholder would be a valid HMAC key.
      expect(secret.Properties.GenerateSecretString).toMatchObject({ PasswordLength: 48 });
      expect(secret.Properties.SecretString).toBeUndefined();
    }
  });

  it("gives each function exactly the <VAR>_SECRET_ARN variables of its route's secrets", () => {
    for (const route of ROUTES) {
      const { env } = functionFacts(stack, template, route.name);
      const secretVars = Object.fromEntries(
        Object.entries(env).filter(([key]) => key.endsWith("_SECRET_ARN")),
      );
      expect(secretVars, route.name).toEqual(
        Object.fromEntries(
          route.access.secrets.map((name) => [`${SECRET_ENV[name]}_SECRET_ARN`, { Ref: idOf[name] }]),
        ),
      );
    }
  });

  it("lets each function read only its route's secrets, with GetSecretValue only", () => {
    const names = Object.fromEntries(Object.entries(idOf).map(([name, id]) => [id, name]));
    for (const route of ROUTES) {
      const granted = actionsByResource(
        functionFacts(stack, template, route.name).statements,
        names,
        "secretsmanager:",
      );
      expect(granted, route.name).toEqual(
        Object.fromEntries(route.access.secrets.map((name) => [name, ["secretsmanager:GetSecretValue"]])),
      );
    }
  });

  it("outputs every secret's ARN so ops can set the values", () => {
    for (const name of SECRET_NAMES) {
      const outputs = template.findOutputs("*", { Value: { Ref: idOf[name] } });
      expect(Object.keys(outputs), name).toHaveLength(1);
    }
  });

  it("uses an existing secret by complete ARN from context instead of creating one", () => {
    const existing = synthStack({ webhookSecretArn: EXISTING_WEBHOOK_ARN });
    existing.template.resourceCountIs("AWS::SecretsManager::Secret", SECRET_NAMES.length - 1);
    for (const route of ROUTES.filter((r) => r.access.secrets.includes("webhookSecret"))) {
      const fn = functionFacts(existing.stack, existing.template, route.name);
      expect(fn.env.WEBHOOK_SECRET_SECRET_ARN).toBe(EXISTING_WEBHOOK_ARN);
      expect(
        actionsByResource(fn.statements, {}, "secretsmanager:")[JSON.stringify(EXISTING_WEBHOOK_ARN)],
      ).toEqual(["secretsmanager:GetSecretValue"]);
    }
  });

  it("rejects a partial secret ARN, which could not be granted exactly", () => {
    expect(() =>
      synthStack({ webhookSecretArn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ops/webhook" }),
    ).toThrow(/webhookSecretArn/);
  });

  it("never puts a secret value in a function's environment", () => {
    for (const route of ROUTES) {
      const { env } = functionFacts(stack, template, route.name);
      for (const variable of Object.values(SECRET_ENV)) expect(env[variable], route.name).toBeUndefined();
      for (const [key, value] of Object.entries(env)) {
        if (key.endsWith("_SECRET_ARN")) expect(refId(value), key).toBeDefined();
      }
    }
  });
});
