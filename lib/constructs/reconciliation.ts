import { Duration, type RemovalPolicy } from "aws-cdk-lib";
import {
  Alarm,
  ComparisonOperator,
  type IMetric,
  MathExpression,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import { Rule, Schedule } from "aws-cdk-lib/aws-events";
import { LambdaFunction } from "aws-cdk-lib/aws-events-targets";
import { PolicyStatement } from "aws-cdk-lib/aws-iam";
import type { ISecret } from "aws-cdk-lib/aws-secretsmanager";
import type { ITopic } from "aws-cdk-lib/aws-sns";
import { Construct } from "constructs";
import { RECONCILE_OUTCOMES } from "../../functions/core/reconcile-outcomes.js";
import { SECRET_ENV } from "../../functions/core/secret-env.js";
import { CONVERSATIONS_TABLE } from "../../functions/core/table-schema.js";
import { serviceMetric } from "./observability.js";
import { ServiceFunction } from "./service-function.js";
import type { Tables } from "./tables.js";

/**
 * IAM actions of a reconciliation pass on the conversations table, from what it sends:
 * GetItem (the meta, `transcriptStored`), UpdateItem (claim, reschedule, finish, the stored
 * call facts) and BatchWriteItem (the transcript lines, through the webhook's storage). It
 * queries only the awaiting-transcript index, never the table, and never deletes or scans.
 */
export const RECONCILE_TABLE_ACTIONS = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"];

/** Properties of {@link Reconciliation}. */
export interface ReconciliationProps {
  readonly stage: string;
  readonly tables: Tables;
  /** The ElevenLabs API key secret: the only secret the function may read. */
  readonly elevenlabsApiKey: ISecret;
  /** Alarms notify this topic. */
  readonly alarmTopic: ITopic;
  /**
   * Minutes between two passes.
   * @default 5
   */
  readonly intervalMinutes?: number;
  /**
   * Grace period after a session window ends before the transcript is fetched (`RECONCILE_AFTER_MS`).
   * @default - 2 700 000 (45 minutes, the code's default)
   */
  readonly reconcileAfterMs?: number;
  /**
   * Days conversation history is kept (`HISTORY_RETENTION_DAYS`): the transcript lines a pass
   * stores carry `purgeAt` like every other writer's. @default - kept until erased
   */
  readonly historyRetentionDays?: number;
  /**
   * ElevenLabs API base URL (`ELEVENLABS_API_BASE_URL`), e.g. a data-residency endpoint.
   * @default - https://api.elevenlabs.io
   */
  readonly elevenlabsApiBaseUrl?: string;
  /**
   * How overdue (ms) the oldest due conversation may be before the backlog alarm fires.
   * @default 3 600 000 (1 hour)
   */
  readonly backlogAgeAlarmMs?: number;
  readonly logRemovalPolicy?: RemovalPolicy;
  readonly logLevel?: string;
}

/**
 * Reconciliation of transcripts whose webhook never came: a scheduled function that reads the
 * conversations' awaiting-transcript index, its schedule, and alarms on auth errors (a wrong
 * API key), failures (gave up, malformed answers, storage errors, crashes) and backlog age.
 */
export class Reconciliation extends Construct {
  public readonly function: ServiceFunction;
  public readonly rule: Rule;
  public readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: ReconciliationProps) {
    super(scope, id);
    const intervalMinutes = props.intervalMinutes ?? 5;
    const { tables } = props;

    this.function = new ServiceFunction(this, "ReconcileTranscripts", {
      name: "reconcile-transcripts",
      description: "Fetches from ElevenLabs the transcripts whose post-call webhook never arrived",
      // A pass starts no new conversation after 2 minutes; the rest is for the one in flight.
      timeout: Duration.minutes(3),
      ...(props.logRemovalPolicy ? { logRemovalPolicy: props.logRemovalPolicy } : {}),
      ...(props.logLevel ? { logLevel: props.logLevel } : {}),
      environment: {
        ...(props.reconcileAfterMs !== undefined
          ? { RECONCILE_AFTER_MS: String(props.reconcileAfterMs) }
          : {}),
        ...(props.elevenlabsApiBaseUrl ? { ELEVENLABS_API_BASE_URL: props.elevenlabsApiBaseUrl } : {}),
        ...(props.historyRetentionDays !== undefined
          ? { HISTORY_RETENTION_DAYS: String(props.historyRetentionDays) }
          : {}),
      },
    });
    // loadConfig needs both table names; the sessions table is named, never granted.
    this.function.bindTable(tables.sessionsBinding);
    this.function.bindTable(tables.conversationsBinding);
    const table = tables.conversations;
    this.function.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: RECONCILE_TABLE_ACTIONS, resources: [table.tableArn] }),
    );
    this.function.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ["dynamodb:Query"],
        resources: [`${table.tableArn}/index/${CONVERSATIONS_TABLE.reconcileIndex.name}`],
      }),
    );
    this.function.bindSecret(props.elevenlabsApiKey, `${SECRET_ENV.elevenlabsApiKey}_SECRET_ARN`);

    this.rule = new Rule(this, "Schedule", {
      description: `Reconciliation pass every ${intervalMinutes} minutes (${props.stage})`,
      schedule: Schedule.rate(Duration.minutes(intervalMinutes)),
      // A missed pass is not retried: the next one reads the same due entries.
      targets: [new LambdaFunction(this.function.handler, { retryAttempts: 0 })],
    });

    const action = new SnsAction(props.alarmTopic);
    const alarm = (
      alarmId: string,
      metric: IMetric,
      description: string,
      threshold: number,
      comparison: ComparisonOperator,
      missing = TreatMissingData.NOT_BREACHING,
    ) => {
      const created = new Alarm(this, alarmId, {
        metric,
        threshold,
        comparisonOperator: comparison,
        evaluationPeriods: 1,
        treatMissingData: missing,
        alarmDescription: description,
      });
      created.addAlarmAction(action);
      created.addOkAction(action);
      this.alarms.push(created);
    };

    alarm(
      "ReconcileAuthError",
      serviceMetric(RECONCILE_OUTCOMES.auth_error.metric),
      "ElevenLabs refused the API key during reconciliation: set the elevenlabs-api-key secret. Missing transcripts wait and are fetched once it works.",
      1,
      ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    );

    const failureKinds = ["gave_up", "malformed_answer", "store_failed", "error"] as const;
    const usingMetrics = Object.fromEntries(
      failureKinds.map((kind) => [kind.replace("_", ""), serviceMetric(RECONCILE_OUTCOMES[kind].metric)]),
    );
    alarm(
      "ReconcileFailures",
      new MathExpression({
        expression: Object.keys(usingMetrics)
          .map((metricId) => `FILL(${metricId}, 0)`)
          .join(" + "),
        usingMetrics,
        label: "reconciliation failures",
        period: Duration.minutes(5),
      }),
      "Reconciliation failed for some conversations: it gave up after repeated failures, ElevenLabs answered in an unexpected shape, or storing failed. See the reconcile-transcripts logs.",
      1,
      ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    );

    alarm(
      "ReconcileErrors",
      this.function.handler.metricErrors({ period: Duration.minutes(5), statistic: "Sum" }),
      "The reconciliation function failed (crash, timeout, DynamoDB unavailable or missing configuration).",
      1,
      ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    );

    // Every pass reports the backlog age (0 when nothing is due), so no data means no pass ran.
    const backlogPeriod = Duration.minutes(Math.max(15, 3 * intervalMinutes));
    alarm(
      "ReconcileBacklogAge",
      serviceMetric("ReconcileBacklogAgeMs").with({ statistic: "Maximum", period: backlogPeriod }),
      "Conversations have waited too long for their transcript to be reconciled, or no pass has run: check the reconcile-transcripts function and the ElevenLabs API.",
      props.backlogAgeAlarmMs ?? 3_600_000,
      ComparisonOperator.GREATER_THAN_THRESHOLD,
      TreatMissingData.BREACHING,
    );
  }
}
