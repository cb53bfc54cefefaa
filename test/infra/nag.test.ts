import { readFileSync } from "node:fs";
import { join } from "node:path";
import { App, Stack, Validations } from "aws-cdk-lib";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { AwsSolutionsChecks } from "cdk-nag";
import { describe, expect, it } from "vitest";
import { createApp } from "../../lib/create-app.js";

interface ValidationReport {
  pluginReports: { summary: { status: string }; violations: { ruleName: string }[] }[];
}

describe("cdk-nag AwsSolutions", () => {
  it("reports no unacknowledged finding on the stack, for dev and prod", () => {
    for (const stage of ["dev", "prod"]) {
      const { app } = createApp({ context: { stage } });
      // A finding makes synth throw "Validation failed", with the report in the assembly.
      const assembly = app.synth();
      const report = JSON.parse(
        readFileSync(join(assembly.directory, "validation-report.json"), "utf8"),
      ) as ValidationReport;
      const violations = report.pluginReports.flatMap((r) => r.violations.map((v) => v.ruleName));
      expect(violations).toEqual([]);
    }
  });

  it("is wired so that a finding fails synth (a queue without DLQ or TLS policy)", () => {
    const app = new App();
    new Queue(new Stack(app, "Bad"), "Queue");
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3[\s\S]*AwsSolutions-SQS4/);
  });
});
