import { fileURLToPath } from "node:url";
import { App, Duration, Stack } from "aws-cdk-lib";
import { Match, Template } from "aws-cdk-lib/assertions";
import { Queue } from "aws-cdk-lib/aws-sqs";
import { beforeAll, describe, expect, it } from "vitest";
import { TaskRunner } from "../../lib/constructs/task-runner.js";
import type { SessionsStack } from "../../lib/sessions-stack.js";
import { onlyResource, refId, statementsOfRole, synthStack } from "./synth.js";

const EXAMPLE_ENTRY = fileURLToPath(new URL("../../examples/runner/handler.ts", import.meta.url));

describe("the example task runner in the stack", () => {
  let stack: SessionsStack;
  let template: Template;
  let ids: { fn: string; role: string; queue: string; topic: string };
  beforeAll(() => {
    ({ stack, template } = synthStack());
    const runner = stack.exampleRunner as TaskRunner;
    expect(runner).toBeDefined();
    const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
    ids = {
      fn: id(runner.function.handler),
      role: id(runner.function.role),
      queue: id(stack.queues.tasks),
      topic: id(stack.observability.topic),
    };
  });

  it("subscribes the runner to the task queue with partial batch responses, batch size and concurrency", () => {
    const { resource } = onlyResource(template, "AWS::Lambda::EventSourceMapping");
    expect(resource.Properties).toMatchObject({
      EventSourceArn: { "Fn::GetAtt": [ids.queue, "Arn"] },
      FunctionName: { Ref: ids.fn },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
      BatchSize: 5,
      ScalingConfig: { MaximumConcurrency: 10 },
    });
    // Lambda checks the role when it creates the mapping: the grant must exist by then.
    expect(JSON.stringify(resource.DependsOn)).toContain("DefaultPolicy");
  });

  it("takes batch size and concurrency from context", () => {
    const { template: custom } = synthStack({ taskRunnerBatchSize: "10", taskRunnerMaxConcurrency: "50" });
    custom.hasResourceProperties("AWS::Lambda::EventSourceMapping", {
      BatchSize: 10,
      ScalingConfig: { MaximumConcurrency: 50 },
    });
  });

  it("grants the runner exactly receive, delete, change-visibility and get-attributes on the task queue, and nothing else", () => {
    const statements = statementsOfRole(template, ids.role);
    const sqs = statements
      .filter((s) => s.Action.some((a) => a.startsWith("sqs:")))
      .map((s) => ({ ...s, Action: [...s.Action].sort() }));
    expect(sqs).toEqual([
      {
        Effect: "Allow",
        Action: [
          "sqs:ChangeMessageVisibility",
          "sqs:DeleteMessage",
          "sqs:GetQueueAttributes",
          "sqs:ReceiveMessage",
        ],
        Resource: [{ "Fn::GetAtt": [ids.queue, "Arn"] }],
      },
    ]);
    const others = statements
      .flatMap((s) => s.Action)
      .filter((a) => !a.startsWith("sqs:"))
      .sort();
    expect(others).toEqual([
      "logs:CreateLogStream",
      "logs:PutLogEvents",
      "xray:PutTelemetryRecords",
      "xray:PutTraceSegments",
    ]);
  });

  it("runs on the project's defaults, with the service's base URL and no secrets layer", () => {
    const fn = template.toJSON().Resources[ids.fn];
    expect(fn.Properties).toMatchObject({
      Runtime: "nodejs24.x",
      Architectures: ["arm64"],
      MemorySize: 512,
      Timeout: 330,
      TracingConfig: { Mode: "Active" },
      Environment: {
        Variables: {
          PUBLIC_BASE_URL: {
            "Fn::GetAtt": [stack.getLogicalId(stack.api.httpApi.node.defaultChild as never), "ApiEndpoint"],
          },
        },
      },
    });
    // Source maps ship as files for offline symbolication, but are not loaded at cold start.
    expect(fn.Properties.Environment.Variables.NODE_OPTIONS).toBeUndefined();
    expect(fn.Properties.Layers).toBeUndefined();
  });

  it("keeps the task queue's visibility timeout at least the runner's timeout", () => {
    const queue = template.toJSON().Resources[ids.queue];
    expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(330);
  });

  it("alarms on runner errors and on the age of the oldest task, notifying the alarm topic", () => {
    const topic = [{ Ref: ids.topic }];
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/Lambda",
      MetricName: "Errors",
      Dimensions: [{ Name: "FunctionName", Value: { Ref: ids.fn } }],
      Threshold: 1,
      AlarmActions: topic,
      OKActions: topic,
    });
    template.hasResourceProperties("AWS::CloudWatch::Alarm", {
      Namespace: "AWS/SQS",
      MetricName: "ApproximateAgeOfOldestMessage",
      Dimensions: [{ Name: "QueueName", Value: { "Fn::GetAtt": [ids.queue, "QueueName"] } }],
      Statistic: "Maximum",
      Threshold: 390,
      AlarmActions: topic,
    });
  });

  it("leaves the runner, its subscription and its alarms out with exampleRunner=false", () => {
    const { stack: without, template: bare } = synthStack({ exampleRunner: "false" });
    expect(without.exampleRunner).toBeUndefined();
    bare.resourceCountIs("AWS::Lambda::EventSourceMapping", 0);
    const alarms = Object.values(bare.findResources("AWS::CloudWatch::Alarm"));
    expect(alarms.some((a) => a.Properties.MetricName === "ApproximateAgeOfOldestMessage")).toBe(false);
    const functions = Object.values(bare.findResources("AWS::Lambda::Function"));
    expect(
      functions.some((f) => String(f.Properties.Description).startsWith("Task runner example-runner")),
    ).toBe(false);
    expect(
      Object.keys(template.findResources("AWS::Lambda::Function")).length -
        Object.keys(bare.findResources("AWS::Lambda::Function")).length,
    ).toBe(1);
  });

  it.each([["maybe"], ["0"]])("refuses exampleRunner=%s", (value) => {
    expect(() => synthStack({ exampleRunner: value })).toThrow(/"exampleRunner" must be true or false/);
  });

  it.each([
    ["taskRunnerBatchSize", "11"],
    ["taskRunnerBatchSize", "0"],
    ["taskRunnerMaxConcurrency", "1"],
    ["taskRunnerMaxConcurrency", "1001"],
  ])("refuses %s=%s", (key, value) => {
    expect(() => synthStack({ [key]: value })).toThrow(new RegExp(`"${key}" must be a whole number`));
  });
});

describe("TaskRunner on its own", () => {
  const build = (
    queueTimeout: Duration,
    props: Partial<ConstructorParameters<typeof TaskRunner>[2]> = {},
  ) => {
    const stack = new Stack(new App({ context: { "aws:cdk:bundling-stacks": [] } }), "Runner");
    const queue = new Queue(stack, "Tasks", { visibilityTimeout: queueTimeout });
    const runner = new TaskRunner(stack, "Mine", {
      name: "my-runner",
      entry: EXAMPLE_ENTRY,
      queue,
      publicBaseUrl: "https://agents.example.com",
      ...props,
    });
    return { stack, runner, template: Template.fromStack(stack) };
  };

  it("refuses a timeout longer than the queue's visibility timeout (Lambda would refuse the mapping)", () => {
    expect(() => build(Duration.seconds(30), { timeout: Duration.seconds(60) })).toThrow(
      /exceeds the queue's visibility timeout/,
    );
  });

  it.each([
    [{ batchSize: 0 }, /batchSize/],
    [{ batchSize: 11 }, /batchSize/],
    [{ maxConcurrency: 1 }, /maxConcurrency/],
  ])("refuses %j", (props, message) => {
    expect(() => build(Duration.minutes(2), props)).toThrow(message);
  });

  it("creates its alarms without actions, for the stack to wire", () => {
    const { runner, template } = build(Duration.minutes(2));
    expect(runner.alarms).toHaveLength(2);
    template.allResourcesProperties("AWS::CloudWatch::Alarm", { AlarmActions: Match.absent() });
    const mapping = onlyResource(template, "AWS::Lambda::EventSourceMapping").resource;
    expect(refId(mapping.Properties.FunctionName)).toBe(
      runner.function.handler.stack.getLogicalId(runner.function.handler.node.defaultChild as never),
    );
  });
});
