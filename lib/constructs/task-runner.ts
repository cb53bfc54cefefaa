import { Duration, type RemovalPolicy, Token } from "aws-cdk-lib";
import { Alarm, ComparisonOperator, TreatMissingData } from "aws-cdk-lib/aws-cloudwatch";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import { EventSourceMapping } from "aws-cdk-lib/aws-lambda";
import { type CfnQueue, type IQueue, Queue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { ServiceFunction } from "./service-function.js";

/**
 * The SQS actions the runner needs on the queue, and nothing else: the three the event source
 * mapping's poller calls (as AWS's `AWSLambdaSQSQueueExecutionRole`), and `ChangeMessageVisibility`,
 * which the runner library calls itself so a message it hands back for a transient failure returns
 * after its back-off rather than the queue's visibility timeout. CDK's `SqsEventSource` would also
 * grant `GetQueueUrl`, which neither calls.
 */
export const TASK_RUNNER_QUEUE_ACTIONS = [
  "sqs:ReceiveMessage",
  "sqs:DeleteMessage",
  "sqs:ChangeMessageVisibility",
  "sqs:GetQueueAttributes",
];

/** Properties of {@link TaskRunner}. */
export interface TaskRunnerProps {
  /** Short kebab-case name, shown in the function description and alarm texts (e.g. `example-runner`). */
  readonly name: string;
  /** Absolute path of the handler file: it exports `handler = defineTools({...}).handler`. */
  readonly entry: string;
  /** The task queue the service's `call-tool` function sends to. */
  readonly queue: IQueue;
  /** This service's public base URL: the runner calls back only under it (`PUBLIC_BASE_URL`). */
  readonly publicBaseUrl: string;
  /**
   * Task messages per invocation (1–10); they run in parallel and fail alone.
   * @default 5
   */
  readonly batchSize?: number;
  /**
   * Most concurrent invocations the queue may start (2–1000): caps the load on whatever the tools call.
   * @default 10
   */
  readonly maxConcurrency?: number;
  /**
   * Hard limit of one invocation: the longest tool plus the callback's retries. Must not exceed the
   * queue's visibility timeout (Lambda refuses the mapping otherwise).
   * @default Duration.minutes(1)
   */
  readonly timeout?: Duration;
  /**
   * Memory in MB.
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * The oldest waiting task at which the queue-age alarm fires. Tasks a runner is still working on
   * count too, so it must exceed the longest tool.
   * @default - the timeout plus one minute
   */
  readonly oldestTaskAlarmAge?: Duration;
  /** @default "INFO" */
  readonly logLevel?: string;
  /** @default RemovalPolicy.RETAIN */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Extra environment variables for the tools.
   * @default - none
   */
  readonly environment?: Readonly<Record<string, string>>;
}

const FIVE_MINUTES = Duration.minutes(5);

/**
 * A task runner on Lambda: a {@link ServiceFunction} (the project's defaults, no secrets layer)
 * subscribed to the task queue with partial batch responses (`ReportBatchItemFailures`), so only
 * the messages that failed come back. Its role may receive, delete and change the visibility of
 * messages of that one queue, and nothing else. Two alarms, without actions until `Observability` wires them to its topic:
 * function errors (a crash or a timeout: the library itself never throws) and the age of the
 * oldest task (runners down, throttled, or too few).
 */
export class TaskRunner extends Construct {
  public readonly function: ServiceFunction;
  public readonly eventSourceMapping: EventSourceMapping;
  /** The runner's alarms: errors and age of the oldest task. */
  public readonly alarms: Alarm[];
  public readonly name: string;

  constructor(scope: Construct, id: string, props: TaskRunnerProps) {
    super(scope, id);
    this.name = props.name;
    const timeout = props.timeout ?? Duration.minutes(1);
    const batchSize = props.batchSize ?? 5;
    const maxConcurrency = props.maxConcurrency ?? 10;
    assertWhole("batchSize", batchSize, 1, 10);
    assertWhole("maxConcurrency", maxConcurrency, 2, 1000);
    const visibility = visibilityTimeoutSeconds(props.queue);
    if (visibility !== undefined && timeout.toSeconds() > visibility) {
      throw new Error(
        `TaskRunner "${props.name}": its timeout (${timeout.toSeconds()} s) exceeds the queue's visibility timeout (${visibility} s); Lambda would refuse the subscription.`,
      );
    }

    this.function = new ServiceFunction(this, "Runner", {
      name: props.name,
      entry: props.entry,
      description: `Task runner ${props.name}: runs tool tasks from the task queue and reports their results`,
      timeout,
      secretsExtension: false,
      ...(props.memorySize !== undefined ? { memorySize: props.memorySize } : {}),
      ...(props.logLevel !== undefined ? { logLevel: props.logLevel } : {}),
      ...(props.logRemovalPolicy !== undefined ? { logRemovalPolicy: props.logRemovalPolicy } : {}),
      environment: { ...props.environment, PUBLIC_BASE_URL: props.publicBaseUrl },
    });
    this.function.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: [...TASK_RUNNER_QUEUE_ACTIONS], resources: [props.queue.queueArn] }),
    );
    if (props.queue.encryptionMasterKey) props.queue.encryptionMasterKey.grantDecrypt(this.function.role);

    // A mapping, not `SqsEventSource`: that one grants more than the runner uses (see above).
    this.eventSourceMapping = new EventSourceMapping(this, "Subscription", {
      target: this.function.handler,
      eventSourceArn: props.queue.queueArn,
      batchSize,
      maxConcurrency,
      reportBatchItemFailures: true,
    });
    // The mapping is validated against the role when it is created: the policy must exist first.
    const policy = this.function.role.node.tryFindChild("DefaultPolicy");
    if (policy) this.eventSourceMapping.node.addDependency(policy);

    const alarmAge = props.oldestTaskAlarmAge ?? timeout.plus(Duration.minutes(1));
    this.alarms = [
      new Alarm(this, "Errors", {
        metric: this.function.handler.metricErrors({ period: FIVE_MINUTES, statistic: "Sum" }),
        threshold: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: `Task runner ${props.name} crashed or timed out; its batch comes back after the visibility timeout.`,
      }),
      new Alarm(this, "OldestTaskAge", {
        metric: props.queue.metricApproximateAgeOfOldestMessage({
          period: FIVE_MINUTES,
          statistic: "Maximum",
        }),
        threshold: alarmAge.toSeconds(),
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: `A task waited ${alarmAge.toSeconds()} s or more in the task queue: runners are down, throttled or too few (maxConcurrency).`,
      }),
    ];
  }
}

const assertWhole = (name: string, value: number, min: number, max: number) => {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`TaskRunner ${name} must be a whole number from ${min} to ${max} (got ${value}).`);
  }
};

/** The queue's visibility timeout in seconds when this app defines it, else undefined (imported queue). */
const visibilityTimeoutSeconds = (queue: IQueue): number | undefined => {
  if (!(queue instanceof Queue)) return undefined;
  const value = (queue.node.defaultChild as CfnQueue).visibilityTimeout;
  if (value === undefined) return 30; // SQS's default
  return Token.isUnresolved(value) ? undefined : value;
};
