import { App, type AppProps, Tags, Validations } from "aws-cdk-lib";
import { AwsSolutionsChecks } from "cdk-nag";
import { readAppConfig } from "./app-config.js";
import { SessionsStack } from "./sessions-stack.js";

/**
 * Builds the CDK app: one stack per stage, cdk-nag AwsSolutions checks on every synth
 * (an unacknowledged finding fails `cdk synth` and `cdk deploy`). Shared by `bin/app.ts`
 * and the infra tests so both check the same thing.
 */
export const createApp = (props: AppProps = {}): { app: App; stack: SessionsStack } => {
  const app = new App(props);
  const config = readAppConfig(app.node);
  const stack = new SessionsStack(app, `ElevenlabsSessions-${config.stage}`, {
    stage: config.stage,
    sessionsRemovalPolicy: config.sessionsRemovalPolicy,
    apiRateLimit: config.apiRateLimit,
    apiBurstLimit: config.apiBurstLimit,
    callbackAfterExpiryAlarmThreshold: config.callbackAfterExpiryAlarmThreshold,
    logLevel: config.logLevel,
    existingSecretArns: config.existingSecretArns,
    exampleRunner: config.exampleRunner,
    taskRunnerBatchSize: config.taskRunnerBatchSize,
    taskRunnerMaxConcurrency: config.taskRunnerMaxConcurrency,
    ...(config.publicBaseUrl !== undefined ? { publicBaseUrl: config.publicBaseUrl } : {}),
    ...(config.alarmEmail !== undefined ? { alarmEmail: config.alarmEmail } : {}),
    ...(config.reservedConcurrency !== undefined ? { reservedConcurrency: config.reservedConcurrency } : {}),
    ...(config.sessionTtlMs !== undefined ? { sessionTtlMs: config.sessionTtlMs } : {}),
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  });
  // CloudFormation accepts Tags on a dashboard but cfn-lint's schema does not know them yet; CI runs
  // cfn-lint, so the dashboard stays untagged.
  const tagOptions = { excludeResourceTypes: ["AWS::CloudWatch::Dashboard"] };
  Tags.of(stack).add("service", "elevenlabs-agent-sessions", tagOptions);
  Tags.of(stack).add("stage", config.stage, tagOptions);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
  return { app, stack };
};
