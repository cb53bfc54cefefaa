import { readFileSync } from "node:fs";
import { join } from "node:path";
import { App, Stack, Validations } from "aws-cdk-lib";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { createApp } from "../../lib/create-app.js";
import { SKIP_BUNDLING } from "./synth.js";

interface ValidationReport {
  pluginReports: { summary: { status: string }; violations: { ruleName: string }[] }[];
}

describe("cdk-nag AwsSolutions", () => {
  it("reports no unacknowledged finding on the stack, for dev, prod and prod with every option", () => {
    const everyOption = {
      stage: "prod",
      alarmEmail: "oncall@example.com",
      reservedConcurrency: "10",
      publicBaseUrl: "https://agents.example.com",
      historyRetentionDays: "365",
      webhookSecretArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ops/webhook-AbC123",
      elevenlabsApiKeyArn: "arn:aws:secretsmanager:us-east-1:123456789012:secret:ops/api-key-XyZ789",
    };
    for (const context of [{ stage: "dev" }, { stage: "prod" }, everyOption]) {
      // Bundling is skipped (it changes no resource cdk-nag looks at); `cdk synth` bundles for real.
      const { app } = createApp({ context: { ...SKIP_BUNDLING, ...context } });
      // A finding makes synth throw "Validation failed", with the report in the assembly.
      const assembly = app.synth();
      const report = JSON.parse(
        readFileSync(join(assembly.directory, "validation-report.json"), "utf8"),
      ) as ValidationReport;
      const violations = report.pluginReports.flatMap((r) => r.violations.map((v) => v.ruleName));
      expect(violations, JSON.stringify(context)).toEqual([]);
    }
  });

  it("is wired so that a finding fails synth (a queue without DLQ or TLS policy)", () => {
    const app = new App();
    new Queue(new Stack(app, "Bad"), "Queue");
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3[\s\S]*AwsSolutions-SQS4/);
  });
});
