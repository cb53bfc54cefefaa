import { RemovalPolicy, Stack, type StackProps } from "aws-cdk-lib";
import type { Construct } from "constructs";
import type { AppConfig } from "./app-config.js";
import { Api } from "./constructs/api.js";
import { Observability } from "./constructs/observability.js";
import { ServiceSecrets } from "./constructs/secrets.js";
import { Tables } from "./constructs/tables.js";
import { TaskQueues } from "./constructs/task-queues.js";

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

  constructor(scope: Construct, id: string, props: SessionsStackProps) {
    super(scope, id, props);
    const { config } = props;
    const { stage } = config;
    this.tables = new Tables(this, "Tables", { stage, sessionsRemovalPolicy: config.sessionsRemovalPolicy });
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
      // Logs of a production stage outlive the stack; dev stages clean up after themselves.
      logRemovalPolicy: stage === "prod" ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      ...optional({
        publicBaseUrl: config.publicBaseUrl,
        reservedConcurrency: config.reservedConcurrency,
        sessionTtlMs: config.sessionTtlMs,
      }),
    });
    this.observability = new Observability(this, "Observability", {
      stage,
      api: this.api,
      tables: this.tables,
      queues: this.queues,
      callbackAfterExpiryThreshold: config.callbackAfterExpiryAlarmThreshold,
      ...optional({ alarmEmail: config.alarmEmail }),
    });
  }
}

/** Drops undefined values, so construct defaults apply. */
const optional = <T extends Record<string, unknown>>(values: T): Partial<T> =>
  Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>;
