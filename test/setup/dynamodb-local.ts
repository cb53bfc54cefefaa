import type { TestProject } from "vitest/node";
import { type DynamoDbLocal, startDynamoDbLocal } from "../../local/dynamodb-local.js";

declare module "vitest" {
  export interface ProvidedContext {
    dynamoEndpoint: string;
  }
}

let instance: DynamoDbLocal | undefined;

/** Starts one DynamoDB Local for the integration project; each test file creates its own tables. */
export const setup = async (project: TestProject): Promise<void> => {
  // Java may take minutes to start on a loaded 2-core machine (over 60 s seen at load 25-30).
  instance = await startDynamoDbLocal({ readyTimeoutMs: 180_000 });
  project.provide("dynamoEndpoint", instance.endpoint);
};

/** Kills the child by PID so no Java process outlives the test run. */
export const teardown = async (): Promise<void> => {
  await instance?.stop();
};
