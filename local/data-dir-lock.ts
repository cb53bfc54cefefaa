import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { LocalSetupError } from "./errors.js";

/**
 * One DynamoDB Local per data directory. The service records which Java process serves a data
 * directory (and which Node process started it) in `dynamodb-local.pid`, so the next start can:
 *
 * - refuse, in one line, while another local service still uses the directory (two DynamoDB
 *   Locals on one SQLite file fight over it);
 * - stop a DynamoDB Local that an earlier run left behind because it was killed (`kill -9`, a
 *   crash of the terminal) before it could stop Java itself.
 */
export const PID_FILE = "dynamodb-local.pid";

interface Owner {
  readonly javaPid: number;
  readonly ownerPid: number;
  /** Where that DynamoDB Local listens, so `npm run reconcile` finds the running service's data. */
  readonly endpoint?: string;
}

/** `ps` works on Linux and macOS alike; undefined when the process does not exist. */
const ps = (pid: number, field: "command" | "ppid"): string | undefined => {
  const probe = spawnSync("ps", ["-p", String(pid), "-o", `${field}=`], { encoding: "utf8" });
  return probe.status === 0 ? probe.stdout.trim() : undefined;
};

const readOwner = (dataDir: string): Owner | undefined => {
  try {
    const owner = JSON.parse(readFileSync(join(dataDir, PID_FILE), "utf8")) as Partial<Owner>;
    return Number.isInteger(owner.javaPid) && Number.isInteger(owner.ownerPid) ? (owner as Owner) : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Makes the data directory ours before DynamoDB Local starts on it. Throws a LocalSetupError while
 * another live service uses it; stops a DynamoDB Local left behind by a killed run and says so.
 * @returns a sentence for the console when it had to clean up, else undefined
 */
export const claimDataDir = async (dataDir: string): Promise<string | undefined> => {
  const owner = readOwner(dataDir);
  const command = owner ? ps(owner.javaPid, "command") : undefined;
  // The PID may have been reused since: only a DynamoDB Local on this very directory counts.
  if (!owner || !command?.includes("DynamoDBLocal.jar") || !command.includes(dataDir)) {
    releaseDataDir(dataDir);
    return undefined;
  }
  if (ps(owner.javaPid, "ppid") === String(owner.ownerPid)) {
    throw new LocalSetupError(
      `Another local service (pid ${owner.ownerPid}) is using the data directory ${dataDir}: stop it first, or start with --data-dir <another directory> or --in-memory.`,
    );
  }
  process.kill(owner.javaPid, "SIGTERM");
  for (let waited = 0; waited < 5000 && ps(owner.javaPid, "command") !== undefined; waited += 100)
    await sleep(100);
  if (ps(owner.javaPid, "command") !== undefined) process.kill(owner.javaPid, "SIGKILL");
  releaseDataDir(dataDir);
  return `Stopped DynamoDB Local (pid ${owner.javaPid}) that an earlier run left running on ${dataDir} when it was killed.`;
};

/** Records that this process's DynamoDB Local serves the data directory, and where it listens. */
export const recordDataDirOwner = (dataDir: string, javaPid: number, endpoint?: string): void => {
  writeFileSync(
    join(dataDir, PID_FILE),
    JSON.stringify({ javaPid, ownerPid: process.pid, ...(endpoint ? { endpoint } : {}) }),
    { mode: 0o600 },
  );
};

/**
 * The endpoint of the DynamoDB Local a running local service uses for this data directory, or
 * undefined when no live service owns it (none started, or it was killed and left a stale file).
 */
export const runningDataDirEndpoint = (dataDir: string): string | undefined => {
  const owner = readOwner(dataDir);
  if (!owner?.endpoint) return undefined;
  const command = ps(owner.javaPid, "command");
  return command?.includes("DynamoDBLocal.jar") ? owner.endpoint : undefined;
};

/** Gives the data directory up when DynamoDB Local has stopped. */
export const releaseDataDir = (dataDir: string): void => {
  rmSync(join(dataDir, PID_FILE), { force: true });
};
