// Data only: lib/ (the CDK app) reads it at synth to bind each secret to its functions.
import type { SecretName } from "./routes.js";

/** Environment variable holding each secret's value locally (and its ARN, with `_ARN`, in AWS). */
export const SECRET_ENV: Readonly<Record<SecretName, string>> = {
  serviceToken: "SERVICE_TOKEN",
  toolSecret: "TOOL_SECRET",
  webhookSecret: "WEBHOOK_SECRET",
  elevenlabsApiKey: "ELEVENLABS_API_KEY",
  notifySigningSecret: "NOTIFY_SIGNING_SECRET",
};
