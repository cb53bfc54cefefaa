import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { OUTCOMES } from "../../functions/core/outcome-table.js";
import { ROUTES } from "../../functions/core/routes.js";
import { METRICS_NAMESPACE, SERVICE_NAME } from "../../functions/core/service-names.js";
import type { SessionsStack } from "../../lib/sessions-stack.js";
import { functionFacts, onlyResource, refId, synthStack } from "./synth.js";

type Alarm = { Properties: Record<string, unknown> };

const alarmsOf = (template: Template): Alarm[] =>
  Object.values(template.findResources("AWS::CloudWatch::Alarm")) as Alarm[];

/** Alarms on one plain metric (namespace, name, dimensions). */
const alarmsOn = (
  template: Template,
  namespace: string,
  metricName: string,
  dimensions: unknown[],
): Alarm[] =>
  alarmsOf(template).filter(
    (a) =>
      a.Properties.Namespace === namespace &&
      a.Properties.MetricName === metricName &&
      JSON.stringify(a.Properties.Dimensions) === JSON.stringify(dimensions),
  );

describe("observability", () => {
  let stack: SessionsStack;
  let template: Template;
  let topicId: string;
  beforeAll(() => {
    ({ stack, template } = synthStack());
    topicId = onlyResource(template, "AWS::SNS::Topic").id;
  });

  it("alarms on API 5xx answers", () => {
    const apiId = onlyResource(template, "AWS::ApiGatewayV2::Api").id;
    const [alarm] = alarmsOn(template, "AWS/ApiGateway", "5xx", [{ Name: "ApiId", Value: { Ref: apiId } }]);
    expect(alarm?.Properties).toMatchObject({ Statistic: "Sum", Period: 300, Threshold: 5 });
  });

  it("alarms on Errors and Throttles of every function", () => {
    for (const route of ROUTES) {
      const dimensions = [
        { Name: "FunctionName", Value: { Ref: functionFacts(stack, template, route.name).id } },
      ];
      for (const metric of ["Errors", "Throttles"]) {
        const alarms = alarmsOn(template, "AWS/Lambda", metric, dimensions);
        expect(alarms, `${route.name} ${metric}`).toHaveLength(1);
        expect(alarms[0]?.Properties).toMatchObject({
          Statistic: "Sum",
          Threshold: 1,
          ComparisonOperator: "GreaterThanOrEqualToThreshold",
        });
      }
    }
  });

  it("alarms on DynamoDB ThrottledRequests of each table, summed over the operations the stores use", () => {
    for (const table of [stack.tables.sessions, stack.tables.conversations]) {
      const tableId = stack.getLogicalId(table.node.defaultChild as never);
      const alarms = alarmsOf(template).filter((a) => {
        const metrics = (a.Properties.Metrics ?? []) as {
          MetricStat?: { Metric: Record<string, unknown> };
        }[];
        const stats = metrics.flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric] : []));
        return (
          stats.length > 0 &&
          stats.every(
            (m) =>
              m.Namespace === "AWS/DynamoDB" &&
              m.MetricName === "ThrottledRequests" &&
              JSON.stringify(m.Dimensions).includes(`{"Name":"TableName","Value":{"Ref":"${tableId}"}}`),
          )
        );
      });
      expect(alarms, tableId).toHaveLength(1);
      const metrics = alarms[0]?.Properties.Metrics as { Expression?: string; MetricStat?: unknown }[];
      const operations = metrics.flatMap((m) =>
        m.MetricStat
          ? (
              m.MetricStat as { Metric: { Dimensions: { Name: string; Value: unknown }[] } }
            ).Metric.Dimensions.filter((d) => d.Name === "Operation").map((d) => d.Value)
          : [],
      );
      expect(operations).toEqual(
        expect.arrayContaining([
          "GetItem",
          "Query",
          "PutItem",
          "UpdateItem",
          "BatchWriteItem",
          "TransactWriteItems",
        ]),
      );
      // Each operation's series is FILLed, so throttling on one operation alone still adds up.
      expect(metrics.find((m) => m.Expression)?.Expression).toMatch(/^FILL\(\w+, 0\)( \+ FILL\(\w+, 0\))+$/);
    }
  });

  it("alarms when more than 20 callbacks per 5 minutes arrive after their session expired", () => {
    const alarms = alarmsOn(template, METRICS_NAMESPACE, OUTCOMES.callback_after_expiry.metric, [
      // Powertools Metrics adds the `service` dimension to every metric by default.
      { Name: "service", Value: SERVICE_NAME },
    ]);
    expect(alarms).toHaveLength(1);
    expect(alarms[0]?.Properties).toMatchObject({
      Statistic: "Sum",
      Period: 300,
      Threshold: 20,
      ComparisonOperator: "GreaterThanThreshold",
      TreatMissingData: "notBreaching",
    });
  });

  it("takes the late-callback threshold from context", () => {
    const custom = synthStack({ callbackAfterExpiryAlarmThreshold: "7" });
    const [alarm] = alarmsOn(custom.template, METRICS_NAMESPACE, "CallbackAfterExpiry", [
      { Name: "service", Value: SERVICE_NAME },
    ]);
    expect(alarm?.Properties.Threshold).toBe(7);
  });

  it("alarms on dead-lettered tasks and on parked post-call events", () => {
    for (const queue of [stack.queues.tasksDeadLetter, stack.queues.parking]) {
      const queueName = { "Fn::GetAtt": [stack.getLogicalId(queue.node.defaultChild as never), "QueueName"] };
      expect(
        alarmsOn(template, "AWS/SQS", "ApproximateNumberOfMessagesVisible", [
          { Name: "QueueName", Value: queueName },
        ]),
      ).toHaveLength(1);
    }
  });

  it("notifies the alarm topic from every alarm, on alarm and on recovery", () => {
    for (const alarm of alarmsOf(template)) {
      expect(alarm.Properties.AlarmActions).toEqual([{ Ref: topicId }]);
      expect(alarm.Properties.OKActions).toEqual([{ Ref: topicId }]);
    }
    template.hasOutput("AlarmTopicArn", { Value: { Ref: topicId } });
  });

  it("encrypts the topic with a rotating key CloudWatch may use, and refuses non-TLS publishing", () => {
    const topic = template.toJSON().Resources[topicId];
    const keyId = String(refId(topic.Properties.KmsMasterKeyId));
    const key = template.toJSON().Resources[keyId];
    expect(key.Type).toBe("AWS::KMS::Key");
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.Properties.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({
        Effect: "Allow",
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
      }),
    );
    const { resource: policy } = onlyResource(template, "AWS::SNS::TopicPolicy");
    expect((policy.Properties.PolicyDocument as { Statement: unknown[] }).Statement).toContainEqual(
      expect.objectContaining({ Effect: "Deny", Condition: { Bool: { "aws:SecureTransport": "false" } } }),
    );
  });

  it("lets this account's CloudWatch alarms publish, since the TLS policy replaces SNS's default policy", () => {
    const { resource: policy } = onlyResource(template, "AWS::SNS::TopicPolicy");
    const statements = (policy.Properties.PolicyDocument as { Statement: Record<string, unknown>[] })
      .Statement;
    const allows = statements.filter((s) => s.Effect === "Allow");
    expect(allows).toEqual([
      expect.objectContaining({
        Principal: { Service: "cloudwatch.amazonaws.com" },
        Action: "sns:Publish",
        Resource: { Ref: topicId },
        Condition: {
          StringEquals: { "aws:SourceAccount": expect.anything() },
          ArnLike: { "aws:SourceArn": expect.anything() },
        },
      }),
    ]);
    expect(JSON.stringify(allows[0]?.Condition)).toContain(":alarm:*");
  });

  it("subscribes no one by default, and the alarm e-mail from context", () => {
    template.resourceCountIs("AWS::SNS::Subscription", 0);
    const custom = synthStack({ alarmEmail: "oncall@example.com" });
    const { resource } = onlyResource(custom.template, "AWS::SNS::Subscription");
    expect(resource.Properties).toMatchObject({ Protocol: "email", Endpoint: "oncall@example.com" });
    expect(() => synthStack({ alarmEmail: "not-an-address" })).toThrow(/alarmEmail/);
  });

  it("has a dashboard with sessions, callbacks by outcome, API latency p50/p99 and Lambda errors", () => {
    const { resource } = onlyResource(template, "AWS::CloudWatch::Dashboard");
    const body = JSON.stringify(resource.Properties.DashboardBody);
    for (const title of ["Sessions registered", "Callbacks by outcome", "API latency", "Lambda errors"]) {
      expect(body).toContain(title);
    }
    for (const metric of [
      "SessionRegistered",
      "CallbackDelivered",
      "CallbackAfterExpiry",
      "CallbackDeliveryFailed",
      "CallbackDuplicate",
      "CallbackTaskNotFound",
    ]) {
      expect(body).toContain(
        `\\"${METRICS_NAMESPACE}\\",\\"${metric}\\",\\"service\\",\\"${SERVICE_NAME}\\"`,
      );
    }
    expect(body).toMatch(/Latency.*p50/);
    expect(body).toMatch(/Latency.*p99/);
    for (const route of ROUTES) {
      expect(body).toContain(`{"Ref":"${functionFacts(stack, template, route.name).id}"}`);
    }
  });
});
