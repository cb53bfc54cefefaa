import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");

/**
 * How long one start of the service may take until its ready line: npm, tsx compiling the
 * server, and usually a Java start-up for DynamoDB Local, on a loaded 2-core machine (90 s was
 * exceeded at load 30 with three test runs sharing 2 cores).
 */
export const START_BUDGET_MS = 180_000;
/** How long one stop may take: the HTTP server, then DynamoDB Local's JVM, exiting. */
export const STOP_BUDGET_MS = 30_000;

/**
 * The time limit of a test (or hook) that starts the service `starts` times, stopping each: every
 * start and stop within its own budget, plus `restMs` for the test's own requests. A test that
 * starts Java three times gets three start-ups' worth, not the project's default.
 */
export const timeLimitForStarts = (starts: number, restMs = 30_000): number =>
  starts * (START_BUDGET_MS + STOP_BUDGET_MS) + restMs;

/** How to start the service: the README's `npm start`, or node with the tsx loader directly. */
export type Launcher = "npm" | "node";

export interface SpawnOptions {
  /** Arguments after `--` (e.g. `["--port", "4000", "--in-memory"]`). */
  readonly args?: readonly string[];
  /** Environment on top of this process's (SESSION_TTL_MS, PORT...). */
  readonly env?: Readonly<Record<string, string>>;
  /** @default "node" */
  readonly launcher?: Launcher;
  /** @default {@link START_BUDGET_MS} */
  readonly readyTimeoutMs?: number;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface SpawnedServer {
  /** `http://127.0.0.1:<port>` from the ready line. */
  readonly url: string;
  /** The spawned process; it leads its own process group, like a job in a terminal. */
  readonly pid: number;
  /** DynamoDB Local's PID from the banner (absent with an external endpoint). */
  readonly dynamoPid?: number;
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /**
   * Sends a signal, to the whole process group by default (what Ctrl-C in a terminal does), and
   * waits for the spawned process to exit.
   */
  stop(signal?: NodeJS.Signals, target?: "group" | "process"): Promise<Exit>;
}

const launch = (options: SpawnOptions): ChildProcess => {
  const args = options.args ?? [];
  // A developer's shell, not vitest's TEST_ENV (which points handlers at fake tables and a fake
  // public URL, and silences Powertools): the spawned service logs and links like `npm start`.
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [
    "PUBLIC_BASE_URL",
    "SESSIONS_TABLE",
    "CONVERSATIONS_TABLE",
    "POWERTOOLS_LOG_LEVEL",
    "POWERTOOLS_METRICS_DISABLED",
  ])
    delete env[name];
  Object.assign(env, options.env);
  return (options.launcher ?? "node") === "npm"
    ? spawn("npm", ["start", "--silent", "--", ...args], { cwd: ROOT, env, detached: true })
    : spawn(process.execPath, ["--import", "tsx", "local/server.ts", ...args], {
        cwd: ROOT,
        env,
        detached: true,
      });
};

/**
 * Collects a child's output as it comes, and its end: `close`, not `exit`, so the answer waits
 * until every process holding its output pipes is gone. With `npm start`, npm may exit on a signal
 * (SIGHUP) while the service it started is still printing how it stops.
 */
const collect = (child: ChildProcess): { out: () => string; err: () => string; ended: Promise<Exit> } => {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const ended = new Promise<Exit>((done) =>
    child.once("close", (code, signal) => done({ code, signal, stdout, stderr })),
  );
  return { out: () => stdout, err: () => stderr, ended };
};

/**
 * Runs the local service as a separate process and resolves when it prints its ready line.
 * Rejects with the process output when it exits or stays silent instead.
 */
export const spawnLocalServer = (options: SpawnOptions = {}): Promise<SpawnedServer> => {
  const child = launch(options);
  const { out, err, ended } = collect(child);
  const pid = child.pid;
  if (pid === undefined) return Promise.reject(new Error("the local server could not be spawned"));
  const stop = async (signal: NodeJS.Signals = "SIGINT", target: "group" | "process" = "group") => {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(target === "group" ? -pid : pid, signal);
      } catch {
        // already gone
      }
    }
    return ended;
  };
  return new Promise((ready, fail) => {
    const timer = setTimeout(() => {
      void stop("SIGKILL").then((exit) =>
        fail(new Error(`the local server was not ready in time:\n${exit.stdout}\n${exit.stderr}`)),
      );
    }, options.readyTimeoutMs ?? START_BUDGET_MS);
    const onData = () => {
      const url = /Local service ready on (http:\/\/127\.0\.0\.1:\d+)/.exec(out())?.[1];
      if (!url) return;
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      const dynamoPid = /DynamoDB Local\s+\S+ \(pid (\d+)\)/.exec(out())?.[1];
      ready({
        url,
        pid,
        ...(dynamoPid ? { dynamoPid: Number(dynamoPid) } : {}),
        child,
        stdout: out,
        stderr: err,
        stop,
      });
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      fail(new Error(`the local server exited (${code ?? signal}) before it was ready:\n${out()}\n${err()}`));
    });
  });
};

/** Runs the service to completion (for start-up failures): output and exit code. */
export const runLocalServer = (options: SpawnOptions = {}): Promise<Exit> => {
  const child = launch(options);
  return collect(child).ended;
};

/** The state and process group of a PID from /proc, or undefined when it does not exist. */
const statOf = (pid: number | string): { state: string; pgrp: number } | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "(comm)": state, ppid, pgrp, ...
    const [state = "", , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state, pgrp: Number(pgrp) };
  } catch {
    return undefined;
  }
};

/** Whether a process with this PID exists (zombies of our own children count as gone). */
export const isAlive = (pid: number): boolean => {
  const stat = statOf(pid);
  return stat !== undefined && stat.state !== "Z";
};

/** Every live (non-zombie) process, read from /proc: its PID, process group and command line. */
export const liveProcesses = (): Array<{ pid: number; pgrp: number; command: string }> =>
  readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((entry) => {
      const stat = statOf(entry);
      if (!stat || stat.state === "Z") return [];
      try {
        const command = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim();
        return [{ pid: Number(entry), pgrp: stat.pgrp, command }];
      } catch {
        return []; // the process ended while we looked
      }
    });

/** Live processes in a process group: `[pid, command line]`. */
export const processesInGroup = (pgid: number): Array<[number, string]> =>
  liveProcesses()
    .filter((p) => p.pgrp === pgid)
    .map((p): [number, string] => [p.pid, p.command]);
