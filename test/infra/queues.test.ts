import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../functions/core/routes.js";
import type { SessionsStack } from "../../lib/sessions-stack.js";
import { actionsByResource, functionFacts, refId, statementsOfRole, synthStack } from "./synth.js";

describe("task and parking queues", () => {
  let stack: SessionsStack;
  let template: Template;
  let ids: { tasks: string; tasksDlq: string; parking: string; parkingDlq: string };
  let queueNames: Record<string, string>;
  beforeAll(() => {
    ({ stack, template } = synthStack());
    const id = (construct: { node: { defaultChild?: unknown } }) =>
      stack.getLogicalId(construct.node.defaultChild as never);
    ids = {
      tasks: id(stack.queues.tasks),
      tasksDlq: id(stack.queues.tasksDeadLetter),
      parking: id(stack.queues.parking),
      parkingDlq: id(stack.queues.parkingDeadLetter),
    };
    queueNames = {
      [ids.tasks]: "tasks",
      [ids.tasksDlq]: "tasks-dlq",
      [ids.parking]: "parking",
      [ids.parkingDlq]: "parking-dlq",
    };
  });

  it("creates the task and parking queues, each dead-lettering after 5 receives", () => {
    template.resourceCountIs("AWS::SQS::Queue", 4);
    const queues = template.toJSON().Resources;
    expect(queues[ids.tasks].Properties.RedrivePolicy).toEqual({
      deadLetterTargetArn: { "Fn::GetAtt": [ids.tasksDlq, "Arn"] },
      maxReceiveCount: 5,
    });
    expect(queues[ids.parking].Properties.RedrivePolicy).toEqual({
      deadLetterTargetArn: { "Fn::GetAtt": [ids.parkingDlq, "Arn"] },
      maxReceiveCount: 5,
    });
  });

  it("encrypts every queue and refuses every request that is not TLS", () => {
    const policies = Object.values(template.findResources("AWS::SQS::QueuePolicy"));
    for (const [id, queue] of Object.entries(template.findResources("AWS::SQS::Queue"))) {
      expect(queue.Properties.SqsManagedSseEnabled, id).toBe(true);
      const tlsOnly = policies.some(
        (policy) =>
          policy.Properties.Queues.some((q: unknown) => refId(q) === id) &&
          policy.Properties.PolicyDocument.Statement.some(
            (s: { Effect: string; Action: string; Condition?: unknown }) =>
              s.Effect === "Deny" &&
              s.Action === "sqs:*" &&
              JSON.stringify(s.Condition) === JSON.stringify({ Bool: { "aws:SecureTransport": "false" } }),
          ),
      );
      expect(tlsOnly, id).toBe(true);
    }
  });

  it("lets only the task-dispatching function send tasks, and only the webhook park events (SendMessage only)", () => {
    const senders: Record<string, string[]> = {};
    for (const route of ROUTES) {
      const granted = actionsByResource(
        functionFacts(stack, template, route.name).statements,
        queueNames,
        "sqs:",
      );
      expect(granted, route.name).toEqual({
        ...(route.access.taskQueue ? { tasks: ["sqs:SendMessage"] } : {}),
        ...(route.access.parkingQueue ? { parking: ["sqs:SendMessage"] } : {}),
      });
      // Two routes (POST and GET /tools/{toolName}) share one function: count each function once.
      for (const queue of Object.keys(granted))
        senders[queue] = [...new Set([...(senders[queue] ?? []), route.name])];
    }
    expect(senders).toEqual({ tasks: ["call-tool"], parking: ["post-call-webhook"] });
  });

  it("grants no role in the stack anything on the queues beyond that, except the runner's consuming of tasks", () => {
    const runnerRole = stack.getLogicalId(stack.exampleRunner?.function.role.node.defaultChild as never);
    for (const roleId of Object.keys(template.findResources("AWS::IAM::Role"))) {
      const granted = actionsByResource(statementsOfRole(template, roleId), queueNames, "sqs:");
      if (roleId === runnerRole) {
        expect(granted).toEqual({
          tasks: [
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            "sqs:ReceiveMessage",
          ],
        });
        continue;
      }
      for (const actions of Object.values(granted)) expect(actions).toEqual(["sqs:SendMessage"]);
    }
  });

  it("hands the queue URLs to their senders", () => {
    expect(functionFacts(stack, template, "call-tool").env.TASK_QUEUE_URL).toEqual({ Ref: ids.tasks });
    expect(functionFacts(stack, template, "post-call-webhook").env.PARKING_QUEUE_URL).toEqual({
      Ref: ids.parking,
    });
  });

  it("outputs the queue URLs and ARNs for the task runners and ops", () => {
    template.hasOutput("TaskQueueUrl", { Value: { Ref: ids.tasks } });
    template.hasOutput("TaskQueueArn", { Value: { "Fn::GetAtt": [ids.tasks, "Arn"] } });
    template.hasOutput("TaskDeadLetterQueueUrl", { Value: { Ref: ids.tasksDlq } });
    template.hasOutput("ParkingQueueUrl", { Value: { Ref: ids.parking } });
    template.hasOutput("ParkingQueueArn", { Value: { "Fn::GetAtt": [ids.parking, "Arn"] } });
  });
});
