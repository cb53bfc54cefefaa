import { App, RemovalPolicy } from "aws-cdk-lib";
import { describe, expect, it } from "vitest";
import { readAppConfig } from "../../lib/app-config.js";

const configFor = (context: Record<string, unknown>) => readAppConfig(new App({ context }).node);

describe("app config from context", () => {
  it("defaults to a dev stage with safe limits and no optional features", () => {
    expect(configFor({})).toEqual({
      stage: "dev",
      sessionsRemovalPolicy: RemovalPolicy.DESTROY,
      apiRateLimit: 50,
      apiBurstLimit: 100,
      callbackAfterExpiryAlarmThreshold: 20,
      logLevel: "INFO",
      existingSecretArns: {},
      exampleRunner: true,
      taskRunnerBatchSize: 5,
      taskRunnerMaxConcurrency: 10,
      reconcileIntervalMinutes: 5,
      sessionStart: "first-tool-call",
    });
  });

  it("reads numbers given on the command line as strings", () => {
    expect(
      configFor({
        apiRateLimit: "5",
        apiBurstLimit: "10",
        reservedConcurrency: "3",
        callbackAfterExpiryAlarmThreshold: "0",
      }),
    ).toMatchObject({
      apiRateLimit: 5,
      apiBurstLimit: 10,
      reservedConcurrency: 3,
      callbackAfterExpiryAlarmThreshold: 0,
    });
  });

  it("names each bad value in its error", () => {
    expect(() => configFor({ apiBurstLimit: "0" })).toThrow(/apiBurstLimit/);
    expect(() => configFor({ reservedConcurrency: "1.5" })).toThrow(/reservedConcurrency/);
    expect(() => configFor({ logLevel: "LOUD" })).toThrow(/logLevel/);
    expect(() => configFor({ callbackAfterExpiryAlarmThreshold: "-1" })).toThrow(
      /callbackAfterExpiryAlarmThreshold/,
    );
    expect(() => configFor({ elevenlabsApiKeyArn: "my-key" })).toThrow(/elevenlabsApiKeyArn/);
  });

  it("accepts existing secrets by complete ARN for any secret name", () => {
    const arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:elevenlabs/api-key-Xy12Ab";
    expect(configFor({ elevenlabsApiKeyArn: arn }).existingSecretArns).toEqual({ elevenlabsApiKey: arn });
  });
});
