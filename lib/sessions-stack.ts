import { fileURLToPath } from "node:url";
import { Duration, RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import { DEFAULT_RECONCILE_AFTER_MS } from "../functions/core/table-schema.js";
import type { AppConfig } from "./app-config.js";
import { Api } from "./constructs/api.js";
import { Observability } from "./constructs/observability.js";
import { Reconciliation } from "./constructs/reconciliation.js";
import { ServiceSecrets } from "./constructs/secrets.js";
import { Tables } from "./constructs/tables.js";
import { TaskQueues } from "./constructs/task-queues.js";
import { TaskRunner } from "./constructs/task-runner.js";

/** The example runner's handler (`lookup_order`, `sleep`). */
const EXAMPLE_RUNNER_ENTRY = fileURLToPath(new URL("../examples/runner/handler.ts", import.meta.url));

/** Properties of {@link SessionsStack}. */
export interface SessionsStackProps extends StackProps {
  /** The validated deployment settings, defaults applied (`readAppConfig`): the one home of every default. */
  readonly config: AppConfig;
}

/** The whole service: tables, secrets, queues, the API with its functions, alarms. */
export class SessionsStack extends Stack {
  public readonly tables: Tables;
  public readonly secrets: ServiceSecrets;
  public readonly queues: TaskQueues;
  public readonly api: Api;
  public readonly observability: Observability;
  /** The example runner, unless `exampleRunner` is false. */
  public readonly exampleRunner?: TaskRunner;
  public readonly reconciliation: Reconciliation;

  constructor(scope: Construct, id: string, props: SessionsStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { stage } = config;
    this.tables = new Tables(this, "Tables", {
      stage,
      sessionsRemovalPolicy: config.sessionsRemovalPolicy,
      historyRetention: config.historyRetentionDays !== undefined,
    });
    this.secrets = new ServiceSecrets(this, "Secrets", {
      stage,
      existingSecretArns: config.existingSecretArns,
    });
    this.queues = new TaskQueues(this, "Queues", { stage });
    this.api = new Api(this, "Api", {
      stage,
      tables: this.tables,
      secrets: this.secrets,
      queues: this.queues,
      rateLimit: config.apiRateLimit,
      burstLimit: config.apiBurstLimit,
      logLevel: config.logLevel,
      sessionStart: config.sessionStart,
      // Logs of a production stage outlive the stack; dev stages clean up after themselves.
      logRemovalPolicy: stage === "prod" ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      ...optional({
        publicBaseUrl: config.publicBaseUrl,
        reservedConcurrency: config.reservedConcurrency,
        sessionTtlMs: config.sessionTtlMs,
        toolInlineWaitMs: config.toolInlineWaitMs,
        historyRetentionDays: config.historyRetentionDays,
      }),
    });
    if (config.exampleRunner) {
      this.exampleRunner = new TaskRunner(this, "ExampleRunner", {
        name: "example-runner",
        entry: EXAMPLE_RUNNER_ENTRY,
        queue: this.queues.tasks,
        publicBaseUrl: this.api.url,
        // A `sleep` may last 300 s; the rest is for delivering its result.
        timeout: Duration.seconds(330),
        logRemovalPolicy: stage === "prod" ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
        batchSize: config.taskRunnerBatchSize,
        maxConcurrency: config.taskRunnerMaxConcurrency,
        logLevel: config.logLevel,
      });
    }
    this.observability = new Observability(this, "Observability", {
      stage,
      api: this.api,
      tables: this.tables,
      queues: this.queues,
      taskRunners: this.exampleRunner ? [this.exampleRunner] : [],
      callbackAfterExpiryThreshold: config.callbackAfterExpiryAlarmThreshold,
      ...optional({ alarmEmail: config.alarmEmail }),
    });
    const reconcileAfterMs = config.reconcileAfterMs ?? DEFAULT_RECONCILE_AFTER_MS;
    for (const fn of Object.values(this.api.functions))
      fn.addEnvironment("RECONCILE_AFTER_MS", String(reconcileAfterMs));
    this.reconciliation = new Reconciliation(this, "Reconciliation", {
      reconcileAfterMs,
      stage,
      tables: this.tables,
      elevenlabsApiKey: this.secrets.byName.elevenlabsApiKey,
      alarmTopic: this.observability.topic,
      logRemovalPolicy: stage === "prod" ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      intervalMinutes: config.reconcileIntervalMinutes,
      logLevel: config.logLevel,
      ...optional({ historyRetentionDays: config.historyRetentionDays }),
    });
  }
}

/** Drops undefined values, so construct defaults apply. */
const optional = <T extends Record<string, unknown>>(values: T): Partial<T> =>
  Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
