/**
 * Cold init of each bundle in a fresh Node process: the time from process start
 * (`performance.timeOrigin`) until `await import(bundle)` has run the module's top-level code.
 * The handler is never invoked (init only). Started with the environment a deployed function has.
 */
import { spawnSync } from "node:child_process";
import { pathToFileURL } from "node:url";
import { median } from "./stats.js";

/**
 * What a deployed function's environment holds at init (lib/constructs/service-function.ts and
 * the Lambda runtime): INFO logs, metrics on, table names, queue URLs, secret ARNs and the
 * role's credentials. No NODE_OPTIONS. Nothing is ever called.
 */
export const DEPLOYED_ENV: Readonly<Record<string, string>> = {
  POWERTOOLS_SERVICE_NAME: "elevenlabs-agent-sessions",
  POWERTOOLS_METRICS_NAMESPACE: "ElevenlabsAgentSessions",
  POWERTOOLS_LOG_LEVEL: "INFO",
  SESSIONS_TABLE: "ElevenlabsSessions-bench-Sessions",
  CONVERSATIONS_TABLE: "ElevenlabsSessions-bench-Conversations",
  PUBLIC_BASE_URL: "https://api.example.test",
  TASK_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/tasks",
  PARKING_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/123456789012/parking",
  SERVICE_TOKEN_SECRET_ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:service-token-AbC123",
  TOOL_SECRET_SECRET_ARN: "arn:aws:secretsmanager:us-east-1:123456789012:secret:tool-secret-AbC123",
  AWS_REGION: "us-east-1",
  AWS_DEFAULT_REGION: "us-east-1",
  AWS_LAMBDA_FUNCTION_NAME: "bench-function",
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "512",
  AWS_ACCESS_KEY_ID: "ASIABENCHEXAMPLE",
  AWS_SECRET_ACCESS_KEY: "bench-secret",
  AWS_SESSION_TOKEN: "bench-session-token",
  // Belt and braces: nothing here may ever reach AWS.
  AWS_EC2_METADATA_DISABLED: "true",
};

/**
 * Runs in the child. `performance.now()` counts from the process's time origin, so `done` is
 * process start → module imported and its top-level code run. `process.cpuUsage()` at the same
 * instant is the CPU time spent so far: it does not grow while the process waits for a busy core.
 */
const LOADER =
  "await import(process.argv[1]);const done=performance.now();const c=process.cpuUsage();" +
  "process.stdout.write(JSON.stringify({done,cpu:(c.user+c.system)/1000}));process.exit(0);";

/** A bundle to start. */
export interface InitTarget {
  readonly name: string;
  readonly file: string;
}

/** Per-run medians of one bundle (one entry per run), or why it could not be started. */
export interface InitRuns {
  /** Process start → imported (ms), the median of each run. */
  readonly wall: number[];
  /** CPU time from process start to imported (ms), the median of each run. */
  readonly cpu: number[];
  error?: string;
}

const startOnce = (file: string): { done: number; cpu: number } => {
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", LOADER, pathToFileURL(file).href], {
    // A clean environment: no NODE_OPTIONS or loaders inherited from tsx.
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...DEPLOYED_ENV },
    encoding: "utf8",
    timeout: 30_000,
  });
  if (child.status !== 0) {
    const reason = (child.stderr || child.error?.message || `exit ${child.status}`).trim().split("\n");
    throw new Error(reason.find((line) => /Error/.test(line)) ?? reason[0] ?? "failed");
  }
  return JSON.parse(child.stdout) as { done: number; cpu: number };
};

/**
 * `runs` runs of `startsPerRun` fresh starts of every bundle, round-robin with the order rotated
 * each round, so all bundles share the same machine state; one uncounted start per bundle first
 * warms the file cache. Each run yields one median per bundle.
 */
export const measureColdInit = (
  targets: readonly InitTarget[],
  runs: number,
  startsPerRun: number,
): Map<string, InitRuns> => {
  const result = new Map<string, InitRuns>(targets.map((t) => [t.name, { wall: [], cpu: [] }]));
  const attempt = (target: InitTarget) => {
    const entry = result.get(target.name);
    if (!entry || entry.error) return undefined;
    try {
      return startOnce(target.file);
    } catch (error) {
      entry.error = error instanceof Error ? error.message : String(error);
      return undefined;
    }
  };
  for (const target of targets) attempt(target);
  let round = 0;
  for (let run = 0; run < runs; run++) {
    const samples = new Map(targets.map((t) => [t.name, { wall: [] as number[], cpu: [] as number[] }]));
    for (let k = 0; k < startsPerRun; k++, round++) {
      for (let j = 0; j < targets.length; j++) {
        const target = targets[(j + round) % targets.length];
        if (!target) continue;
        const start = attempt(target);
        if (!start) continue;
        samples.get(target.name)?.wall.push(start.done);
        samples.get(target.name)?.cpu.push(start.cpu);
      }
    }
    for (const [name, s] of samples) {
      const entry = result.get(name);
      if (!entry || entry.error) continue;
      entry.wall.push(median(s.wall));
      entry.cpu.push(median(s.cpu));
    }
  }
  return result;
};
