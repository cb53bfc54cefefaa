import { CfnOutput, Validations } from "aws-cdk-lib";
import { type ISecret, Secret } from "aws-cdk-lib/aws-secretsmanager";
import { Construct } from "constructs";
import type { SecretName } from "../../functions/core/routes.js";
import { SECRET_ENV } from "../../functions/core/secret-env.js";

/** Where each secret's value comes from. */
interface SecretSpec {
  /** One line for the console and the output. */
  readonly description: string;
  /**
   * `generated`: a random value we own and hand to the other side (app, tool config, runners).
   * `external`: a value another party issues (ElevenLabs); created with a random placeholder that
   * matches nothing, so nothing is accepted or called until ops put the real value in.
   */
  readonly source: "generated" | "external";
}

/** One entry per `SecretName` of the route table: adding a name without a spec fails to compile. */
export const SECRET_SPECS: Readonly<Record<SecretName, SecretSpec>> = {
  serviceToken: { source: "generated", description: "Bearer token of the app and ops (service routes)" },
  toolSecret: {
    source: "generated",
    description: "Secret header value configured on the ElevenLabs server tools",
  },
  notifySigningSecret: {
    source: "generated",
    description: "HMAC key signing live pushes to a session's notifyUrl",
  },
  webhookSecret: { source: "external", description: "ElevenLabs post-call webhook HMAC secret (set by ops)" },
  elevenlabsApiKey: { source: "external", description: "ElevenLabs API key for signed URLs (set by ops)" },
};

/** Properties of {@link ServiceSecrets}. */
export interface ServiceSecretsProps {
  /** Deployment stage: secrets are named `elevenlabs-agent-sessions/<stage>/<name>`. */
  readonly stage: string;
  /**
   * Existing secrets to use instead of creating them, by complete ARN. Such secrets must be
   * encrypted with the account's default `aws/secretsmanager` key.
   * @default - every secret is created by this stack
   */
  readonly existingSecretArns?: Readonly<Partial<Record<SecretName, string>>>;
}

/**
 * One Secrets Manager secret per secret name in the route table. Functions read them by ARN
 * (`<VAR>_SECRET_ARN`), each only the ones its route lists.
 */
export class ServiceSecrets extends Construct {
  /** The secret behind each name. */
  public readonly byName: Readonly<Record<SecretName, ISecret>>;

  constructor(scope: Construct, id: string, props: ServiceSecretsProps) {
    super(scope, id);
    const byName = {} as Record<SecretName, ISecret>;
    for (const [name, spec] of Object.entries(SECRET_SPECS) as [SecretName, SecretSpec][]) {
      const existingArn = props.existingSecretArns?.[name];
      const constructId = name.charAt(0).toUpperCase() + name.slice(1);
      if (existingArn) {
        byName[name] = Secret.fromSecretCompleteArn(this, constructId, existingArn);
      } else {
        const secret = new Secret(this, constructId, {
          secretName: `elevenlabs-agent-sessions/${props.stage}/${kebab(name)}`,
          description:
            spec.source === "external"
              ? `${spec.description}. Created with a random placeholder: put the real value.`
              : spec.description,
          // Random either way: a known placeholder would let anyone sign webhooks until ops set the value.
          generateSecretString: { passwordLength: 48, excludePunctuation: true },
        });
        Validations.of(secret).acknowledge({
          id: "AwsSolutions-SMG4",
          reason:
            spec.source === "external"
              ? "The value is issued by ElevenLabs; it is rotated there and put here by ops per the runbook, not by a rotation Lambda."
              : "A shared secret also configured outside AWS (app, ElevenLabs tool config, notify receivers); rotated manually per the runbook so both sides change together.",
        });
        byName[name] = secret;
      }
      new CfnOutput(scope, `${constructId}SecretArn`, {
        value: byName[name].secretArn,
        description: `${spec.description} (${SECRET_ENV[name]}_SECRET_ARN)`,
      });
    }
    this.byName = byName;
  }
}

const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
