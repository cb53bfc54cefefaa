import { defineConfig } from "vitest/config";

// One test command (`npm test`) runs every level; each level is a project so it can be run alone:
// `npx vitest run --project unit|integration|infra`. The timeouts below are defaults for small
// tests; a test that does more work declares its own limit, derived from that work
// (test/support/budget.ts, timeLimitForStarts in test/support/spawn-local-server.ts).
/** Quiet Powertools, and the variables handler modules read when they build their default deps at import. */
const TEST_ENV = {
  POWERTOOLS_LOG_LEVEL: "SILENT",
  POWERTOOLS_METRICS_DISABLED: "true",
  SESSIONS_TABLE: "sessions",
  CONVERSATIONS_TABLE: "conversations",
  PUBLIC_BASE_URL: "https://api.example.test",
  AWS_REGION: "us-east-1",
};

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          setupFiles: ["test/setup/matchers.ts"],
          env: TEST_ENV,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts", "test/e2e/**/*.test.ts"],
          setupFiles: ["test/setup/matchers.ts"],
          globalSetup: ["test/setup/dynamodb-local.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          env: TEST_ENV,
        },
      },
      {
        test: {
          name: "infra",
          include: ["test/infra/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
