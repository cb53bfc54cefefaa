import { CfnOutput, Duration, RemovalPolicy, Stack } from "aws-cdk-lib";
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { type ITableV2, Operation } from "aws-cdk-lib/aws-dynamodb";
import { PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { Key } from "aws-cdk-lib/aws-kms";
import { Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import { Construct } from "constructs";
import { OUTCOMES } from "../../functions/core/outcome-table.js";
import { METRICS_NAMESPACE, SERVICE_NAME } from "../../functions/core/service-names.js";
import type { Api } from "./api.js";
import type { Tables } from "./tables.js";
import type { TaskQueues } from "./task-queues.js";
import type { TaskRunner } from "./task-runner.js";

/** Properties of {@link Observability}. */
export interface ObservabilityProps {
  /** Deployment stage, used in alarm and dashboard names. */
  readonly stage: string;
  /** The API and its functions: 5xx, latency, and each function's errors and throttles. */
  readonly api: Api;
  /** Both tables: throttled requests. */
  readonly tables: Tables;
  /** Dead-lettered tasks and parked post-call events. */
  readonly queues: TaskQueues;
  /**
   * Task runners whose alarms (errors, oldest task age) notify the topic and whose errors are graphed.
   * @default - none
   */
  readonly taskRunners?: readonly TaskRunner[];
  /**
   * Callbacks arriving after their session expired, per 5 minutes, above which the alarm fires.
   * A few are normal (slow tools); many mean runners are too slow or sessions too short.
   * Defaulted in `readAppConfig`.
   */
  readonly callbackAfterExpiryThreshold: number;
  /**
   * API 5xx answers per 5 minutes at which the alarm fires. The service answers 503 with
   * Retry-After when DynamoDB throttles, so a handful is tolerated.
   * @default 5
   */
  readonly api5xxThreshold?: number;
  /**
   * E-mail address subscribed to the alarm topic (the recipient must confirm).
   * @default - no subscription; subscribe on-call tooling to the `AlarmTopicArn` output
   */
  readonly alarmEmail?: string;
}

const FIVE_MINUTES = Duration.minutes(5);

/** The DynamoDB operations the stores issue; each reports its own ThrottledRequests. */
const STORE_OPERATIONS = [
  Operation.GET_ITEM,
  Operation.QUERY,
  Operation.PUT_ITEM,
  Operation.UPDATE_ITEM,
  Operation.DELETE_ITEM,
  Operation.BATCH_WRITE_ITEM,
  Operation.TRANSACT_WRITE_ITEMS,
];

/** A metric the functions emit through Powertools (dimension `service`, added by Powertools). */
export const serviceMetric = (metricName: string, label?: string): Metric =>
  new Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: SERVICE_NAME },
    statistic: "Sum",
    period: FIVE_MINUTES,
    ...(label ? { label } : {}),
  });

/**
 * ThrottledRequests of a table summed over the stores' operations. Each operation reports its own
 * series only when it is used, so each is FILLed with 0 before adding (a missing point would
 * otherwise drop the sum). Metric ids are prefixed so two tables can share one graph.
 */
export const throttledRequests = (table: ITableV2, idPrefix: string, label: string): MathExpression => {
  const usingMetrics: Record<string, IMetric> = {};
  for (const operation of STORE_OPERATIONS) {
    usingMetrics[`${idPrefix}${operation.toLowerCase()}`] = new Metric({
      namespace: "AWS/DynamoDB",
      metricName: "ThrottledRequests",
      dimensionsMap: { TableName: table.tableName, Operation: operation },
      statistic: "Sum",
      period: FIVE_MINUTES,
    });
  }
  return new MathExpression({
    expression: Object.keys(usingMetrics)
      .map((id) => `FILL(${id}, 0)`)
      .join(" + "),
    usingMetrics,
    label,
    period: FIVE_MINUTES,
  });
};

/**
 * Alarms, their SNS topic and one dashboard: API 5xx, errors and throttles of every function,
 * DynamoDB throttling per table, dead-lettered tasks, parked post-call events, and callbacks
 * that arrive after their session expired.
 */
export class Observability extends Construct {
  /** Every alarm notifies this topic (KMS-encrypted, TLS only). */
  public readonly topic: Topic;
  /** Every alarm created here. */
  public readonly alarms: Alarm[] = [];
  /** The service dashboard, `elevenlabs-agent-sessions-<stage>`. */
  public readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const { api, tables, queues } = props;

    // CloudWatch cannot use the AWS-managed SNS key, so the topic gets its own key that CloudWatch may use.
    const key = new Key(this, "AlarmTopicKey", {
      description: `Encrypts alarm notifications of elevenlabs-agent-sessions (${props.stage})`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
      pendingWindow: Duration.days(7),
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["kms:Decrypt", "kms:GenerateDataKey*"],
        resources: ["*"],
      }),
    );
    this.topic = new Topic(this, "AlarmTopic", {
      displayName: `elevenlabs-agent-sessions ${props.stage} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    // enforceSSL gives the topic a policy, which replaces SNS's default one: without this statement
    // CloudWatch could not publish ("no resource-based policy allows the SNS:Publish action").
    const { account, region, partition } = Stack.of(this);
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: "AllowCloudWatchAlarmsOfThisAccount",
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["sns:Publish"],
        resources: [this.topic.topicArn],
        conditions: {
          StringEquals: { "aws:SourceAccount": account },
          ArnLike: { "aws:SourceArn": `arn:${partition}:cloudwatch:${region}:${account}:alarm:*` },
        },
      }),
    );
    if (props.alarmEmail) this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
    const action = new SnsAction(this.topic);

    const alarm = (
      alarmId: string,
      metric: IMetric,
      description: string,
      threshold = 1,
      comparisonOperator = ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    ) => {
      const created = new Alarm(this, alarmId, {
        metric,
        threshold,
        comparisonOperator,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      created.addAlarmAction(action);
      created.addOkAction(action);
      this.alarms.push(created);
      return created;
    };

    alarm(
      "Api5xx",
      api.httpApi.metricServerError({ period: FIVE_MINUTES, statistic: "Sum" }),
      "The API answered 5xx: DynamoDB throttling or timeouts (503), or a function crashed or timed out.",
      props.api5xxThreshold ?? 5,
    );

    for (const fn of Object.values(api.functions)) {
      const prefix = fn.node.id;
      // The HTTP adapter never throws, so any Lambda error is a crash, a timeout or a bad deploy.
      alarm(
        `${prefix}Errors`,
        fn.handler.metricErrors({ period: FIVE_MINUTES, statistic: "Sum" }),
        `${fn.name} failed (crash, timeout or missing configuration at cold start).`,
      );
      alarm(
        `${prefix}Throttles`,
        fn.handler.metricThrottles({ period: FIVE_MINUTES, statistic: "Sum" }),
        `${fn.name} was throttled by Lambda (account or reserved concurrency exhausted).`,
      );
    }

    for (const runner of props.taskRunners ?? []) {
      for (const runnerAlarm of runner.alarms) {
        runnerAlarm.addAlarmAction(action);
        runnerAlarm.addOkAction(action);
        this.alarms.push(runnerAlarm);
      }
    }

    const tableThrottles = [
      throttledRequests(tables.sessions, "sessions", "sessions"),
      throttledRequests(tables.conversations, "conversations", "conversations"),
    ];
    for (const metric of tableThrottles) {
      alarm(
        `${pascalCase(metric.label ?? "")}TableThrottles`,
        metric,
        `DynamoDB throttled requests on the ${metric.label} table; callers got 503 with Retry-After.`,
      );
    }

    const callbackAfterExpiry = serviceMetric(OUTCOMES.callback_after_expiry.metric);
    alarm(
      "CallbackAfterExpiry",
      callbackAfterExpiry,
      "Many task callbacks arrived after their session expired: task runners are slow or backed up. Results are still stored in history.",
      props.callbackAfterExpiryThreshold,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
    );

    alarm(
      "TaskDeadLetters",
      queues.tasksDeadLetter.metricApproximateNumberOfMessagesVisible({
        period: FIVE_MINUTES,
        statistic: "Maximum",
      }),
      "Task messages were dead-lettered: the runners failed them repeatedly.",
    );
    alarm(
      "ParkedPostCallEvents",
      queues.parking.metricApproximateNumberOfMessagesVisible({ period: FIVE_MINUTES, statistic: "Maximum" }),
      "Post-call events are parked because they could not be stored: replay them once DynamoDB is healthy.",
    );

    this.dashboard = new Dashboard(this, "Dashboard", {
      dashboardName: `elevenlabs-agent-sessions-${props.stage}`,
      defaultInterval: Duration.hours(6),
    });
    const callbacks = [
      OUTCOMES.callback_delivered,
      OUTCOMES.callback_after_expiry,
      OUTCOMES.callback_delivery_failed,
      OUTCOMES.callback_duplicate,
      OUTCOMES.task_not_found,
    ].map((outcome) => serviceMetric(outcome.metric, outcome.metric));
    const functions = Object.values(api.functions);
    this.dashboard.addWidgets(
      new TextWidget({
        markdown: `# elevenlabs-agent-sessions (${props.stage})\nSessions last 10 minutes; late callbacks are stored and answered 200.`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Sessions registered",
        left: [serviceMetric(OUTCOMES.session_registered.metric, "SessionRegistered")],
        width: 8,
      }),
      new GraphWidget({ title: "Callbacks by outcome", left: callbacks, stacked: true, width: 8 }),
      new GraphWidget({
        title: "API latency",
        left: [
          api.httpApi.metricLatency({ statistic: "p50", period: FIVE_MINUTES, label: "p50" }),
          api.httpApi.metricLatency({ statistic: "p99", period: FIVE_MINUTES, label: "p99" }),
        ],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new GraphWidget({
        title: "Lambda errors",
        left: [...functions, ...(props.taskRunners ?? []).map((runner) => runner.function)].map((fn) =>
          fn.handler.metricErrors({ period: FIVE_MINUTES, label: fn.name }),
        ),
        width: 8,
      }),
      new GraphWidget({
        title: "API requests and errors",
        left: [api.httpApi.metricCount({ period: FIVE_MINUTES, label: "requests" })],
        right: [
          api.httpApi.metricClientError({ period: FIVE_MINUTES, label: "4xx" }),
          api.httpApi.metricServerError({ period: FIVE_MINUTES, label: "5xx" }),
        ],
        width: 8,
      }),
      new GraphWidget({
        title: "DynamoDB throttled requests",
        left: tableThrottles,
        width: 8,
      }),
    );

    new CfnOutput(scope, "AlarmTopicArn", {
      value: this.topic.topicArn,
      description: `Alarm notifications (${props.stage}); subscribe on-call here`,
    });
    new CfnOutput(scope, "DashboardName", { value: `elevenlabs-agent-sessions-${props.stage}` });
  }
}

const pascalCase = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);
