import { App } from "aws-cdk-lib";
import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { METRICS_NAMESPACE } from "../../functions/core/service-names.js";
import { readAppConfig } from "../../lib/app-config.js";
import type { SessionsStack } from "../../lib/sessions-stack.js";
import {
  actionsByResource,
  functionFacts,
  type Resource,
  refId,
  statementsOfRole,
  synthStack,
} from "./synth.js";

type Alarm = { Properties: Record<string, unknown> };

describe("reconciliation of transcripts whose webhook never came", () => {
  let stack: SessionsStack;
  let template: Template;
  let fnId: string;
  let fn: Resource;
  let names: Record<string, string>;
  beforeAll(() => {
    ({ stack, template } = synthStack());
    fnId = stack.getLogicalId(stack.reconciliation.function.handler.node.defaultChild as never);
    fn = template.toJSON().Resources[fnId] as Resource;
    names = {
      [stack.getLogicalId(stack.tables.sessions.node.defaultChild as never)]: "sessions",
      [stack.getLogicalId(stack.tables.conversations.node.defaultChild as never)]: "conversations",
      [stack.getLogicalId(stack.secrets.byName.elevenlabsApiKey.node.defaultChild as never)]:
        "elevenlabs-api-key",
    };
  });

  const alarms = (): Alarm[] => Object.values(template.findResources("AWS::CloudWatch::Alarm")) as Alarm[];

  it("adds a sparse, keys-only awaiting-transcript index to the conversations table", () => {
    const tables = Object.values(template.findResources("AWS::DynamoDB::GlobalTable"));
    const conversations = tables.find((t) => JSON.stringify(t.Properties.KeySchema).includes('"sk"'));
    expect(conversations?.Properties.GlobalSecondaryIndexes).toContainEqual({
      IndexName: "awaiting-transcript",
      KeySchema: [
        { AttributeName: "reconcileShard", KeyType: "HASH" },
        { AttributeName: "reconcileDueAtMs", KeyType: "RANGE" },
      ],
      Projection: { ProjectionType: "KEYS_ONLY" },
    });
    expect(conversations?.Properties.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: "reconcileShard", AttributeType: "S" },
        { AttributeName: "reconcileDueAtMs", AttributeType: "N" },
      ]),
    );
  });

  it("runs the reconcile-transcripts function every 5 minutes, without EventBridge retries", () => {
    const rules = Object.values(template.findResources("AWS::Events::Rule"));
    expect(rules).toHaveLength(1);
    expect(rules[0]?.Properties).toMatchObject({ ScheduleExpression: "rate(5 minutes)", State: "ENABLED" });
    const targets = rules[0]?.Properties.Targets as { Arn: unknown; RetryPolicy?: unknown }[];
    expect(targets.map((t) => refId(t.Arn))).toEqual([fnId]);
    expect(targets[0]?.RetryPolicy).toEqual({ MaximumRetryAttempts: 0 });
    template.hasResourceProperties("AWS::Lambda::Permission", {
      Action: "lambda:InvokeFunction",
      Principal: "events.amazonaws.com",
      FunctionName: { "Fn::GetAtt": [fnId, "Arn"] },
    });
  });

  it("follows the reconcileIntervalMinutes context, and refuses a bad one", () => {
    const custom = synthStack({ reconcileIntervalMinutes: "15" });
    custom.template.hasResourceProperties("AWS::Events::Rule", { ScheduleExpression: "rate(15 minutes)" });
    const config = (value: string) =>
      readAppConfig(new App({ context: { reconcileIntervalMinutes: value } }).node);
    expect(() => config("0")).toThrow(/reconcileIntervalMinutes/);
    expect(() => config("2.5")).toThrow(/reconcileIntervalMinutes/);
    expect(() => config("1441")).toThrow(/reconcileIntervalMinutes/);
  });

  it("grants only what a pass sends: no table Query or Scan, the index by exact ARN, one secret", () => {
    const statements = statementsOfRole(template, String(refId(fn.Properties.Role)));
    expect(actionsByResource(statements, names, "dynamodb:")).toEqual({
      conversations: ["dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:UpdateItem"],
      "conversations/index/awaiting-transcript": ["dynamodb:Query"],
    });
    expect(actionsByResource(statements, names, "secretsmanager:")).toEqual({
      "elevenlabs-api-key": ["secretsmanager:GetSecretValue"],
    });
    expect(actionsByResource(statements, names, "sqs:")).toEqual({});
  });

  it("gives the function its settings, and every API function the same RECONCILE_AFTER_MS", () => {
    const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env).toMatchObject({ RECONCILE_AFTER_MS: "2700000" });
    expect(refId(env.ELEVENLABS_API_KEY_SECRET_ARN)).toBeDefined();
    expect(fn.Properties.Timeout).toBe(180);
    // Windows are recorded (and their due time computed) where sessions are registered.
    expect(functionFacts(stack, template, "register-session").env).toMatchObject({
      RECONCILE_AFTER_MS: "2700000",
    });
    const custom = synthStack({ reconcileAfterMs: "600000" });
    expect(functionFacts(custom.stack, custom.template, "register-session").env).toMatchObject({
      RECONCILE_AFTER_MS: "600000",
    });
  });

  it("alarms on refused API keys, on failures, on function errors and on the backlog age", () => {
    const byMetric = (name: string) =>
      alarms().filter(
        (a) => a.Properties.Namespace === METRICS_NAMESPACE && a.Properties.MetricName === name,
      );
    expect(byMetric("ReconcileAuthError")).toEqual([
      expect.objectContaining({
        Properties: expect.objectContaining({ Threshold: 1, Statistic: "Sum", Period: 300 }),
      }),
    ]);
    expect(byMetric("ReconcileBacklogAgeMs")).toEqual([
      expect.objectContaining({
        Properties: expect.objectContaining({
          Threshold: 3_600_000,
          Statistic: "Maximum",
          Period: 900,
          ComparisonOperator: "GreaterThanThreshold",
          TreatMissingData: "breaching",
        }),
      }),
    ]);
    const failures = alarms().filter((a) =>
      (a.Properties.Metrics as { Expression?: string }[] | undefined)?.some((m) =>
        m.Expression?.includes("FILL"),
      ),
    );
    const failureMetrics = failures
      .flatMap((a) => a.Properties.Metrics as { MetricStat?: { Metric: { MetricName: string } } }[])
      .map((m) => m.MetricStat?.Metric.MetricName)
      .filter((name) => name?.startsWith("Reconcile"));
    expect(failureMetrics.sort()).toEqual([
      "ReconcileError",
      "ReconcileGaveUp",
      "ReconcileMalformedAnswer",
      "ReconcileStoreFailed",
    ]);
    expect(
      alarms().filter(
        (a) =>
          a.Properties.MetricName === "Errors" &&
          JSON.stringify(a.Properties.Dimensions) ===
            JSON.stringify([{ Name: "FunctionName", Value: { Ref: fnId } }]),
      ),
    ).toHaveLength(1);
  });
});
