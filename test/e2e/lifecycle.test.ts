import { randomUUID } from "node:crypto";
import { chmodSync, existsSync, readdirSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { findFreePort, LOCAL_CREDENTIALS, LOCAL_REGION } from "../../local/dynamodb-local.js";
import { LOCAL_SECRETS } from "../../local/local-env.js";
import { signature, transcriptionEvent } from "../support/post-call-fixtures.js";
import {
  type Exit,
  isAlive,
  liveProcesses,
  processesInGroup,
  runLocalServer,
  type SpawnedServer,
  type SpawnOptions,
  spawnLocalServer,
  timeLimitForStarts,
} from "../support/spawn-local-server.js";

/**
 * The local service as a process: started the README's way, stopped the way a terminal stops
 * it, its data kept (or not) across a restart, and every start-up problem said in one line.
 */
const STOPPED = "Stopped. Nothing left running.";
const serviceAuth = { authorization: `Bearer ${LOCAL_SECRETS.SERVICE_TOKEN}` };

/** Live processes whose command line mentions `marker` (a test's unique data directory). */
const processesMentioning = (marker: string): Array<[number, string]> =>
  liveProcesses()
    .filter((p) => p.command.includes(marker))
    .map((p): [number, string] => [p.pid, p.command]);

/** The non-empty lines of a stream. */
const linesOf = (text: string) => text.split("\n").filter((line) => line.trim() !== "");

describe("the local service as a process: start, persist, stop", () => {
  let root: string;
  const spawned: SpawnedServer[] = [];
  const suffix = randomUUID().slice(0, 8);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "lifecycle-"));
  });

  afterAll(async () => {
    // Whatever a failed test left behind: its whole process group.
    for (const service of spawned) await service.stop("SIGKILL");
    await rm(root, { recursive: true, force: true });
  });

  const spawn = async (options: SpawnOptions) => {
    const service = await spawnLocalServer(options);
    spawned.push(service);
    return service;
  };

  const portArgs = async () => ["--port", String(await findFreePort())];

  const call = async (service: SpawnedServer, method: string, path: string, body?: string) => {
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: {
        ...serviceAuth,
        ...(body !== undefined
          ? {
              "content-type": "application/json",
              "elevenlabs-signature": signature(
                body,
                Math.floor(Date.now() / 1000),
                LOCAL_SECRETS.WEBHOOK_SECRET,
              ),
            }
          : {}),
      },
      ...(body !== undefined ? { body } : {}),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  /** A registered session and a stored post-call transcript: what a restart must keep, or not. */
  const recordConversation = async (service: SpawnedServer, conversationId: string) => {
    // The transcript first: a post-call webhook ends a live session (the end of the call), and the
    // restart must show a session that is still active.
    const webhook = await call(
      service,
      "POST",
      "/webhooks/elevenlabs/post-call",
      JSON.stringify(transcriptionEvent(conversationId)),
    );
    expect(webhook).toMatchObject({ status: 200, body: { status: "stored" } });
    expect((await call(service, "POST", `/conversations/${conversationId}/session`)).status).toBe(201);
  };

  /** Stopped cleanly: the goodbye line, nothing left in the process group (DynamoDB Local included). */
  const expectStoppedCleanly = async (
    service: SpawnedServer,
    exit: Exit,
    signal: string,
    dynamodb: "embedded" | "external" = "embedded",
  ) => {
    expect(exit.stdout).toContain(
      dynamodb === "embedded"
        ? `${signal}: stopping the HTTP server and DynamoDB Local (pid ${service.dynamoPid})...`
        : `${signal}: stopping the HTTP server...`,
    );
    expect(exit.stdout).toContain(STOPPED);
    // One key press is one stop, even when npm and tsx relay the signal again.
    expect(exit.stdout.split(`${signal}: stopping`)).toHaveLength(2);
    expect(exit.stdout).not.toContain("again: exiting now");
    if (dynamodb === "embedded") expect(service.dynamoPid).toEqual(expect.any(Number));
    const deadline = Date.now() + 5000;
    while (
      (processesInGroup(service.pid).length > 0 || isAlive(service.dynamoPid ?? 0)) &&
      Date.now() < deadline
    )
      await sleep(100);
    expect(isAlive(service.dynamoPid ?? 0)).toBe(false);
    expect(processesInGroup(service.pid)).toEqual([]);
  };

  describe("with a data directory", () => {
    const conversationId = `persisted-${suffix}`;
    let dataDir: string;

    beforeAll(async () => {
      dataDir = join(root, "data");
      await mkdir(dataDir);
    });

    it(
      "stops the service and DynamoDB Local on Ctrl-C in the terminal (SIGINT to the job's group)",
      async () => {
        const service = await spawn({
          launcher: "npm",
          args: [...(await portArgs()), "--data-dir", dataDir],
        });
        expect(isAlive(service.dynamoPid ?? 0)).toBe(true);
        await recordConversation(service, conversationId);

        const exit = await service.stop("SIGINT", "group");

        await expectStoppedCleanly(service, exit, "SIGINT");
        expect(exit.stderr).toBe("");
        // npm waits for its script, then may re-raise the signal the script was stopped by.
        expect([
          { code: 0, signal: null },
          { code: null, signal: "SIGINT" },
        ]).toContainEqual({ code: exit.code, signal: exit.signal });
      },
      timeLimitForStarts(1),
    );

    it(
      "still has the conversation after a restart, and stops cleanly on SIGTERM to the service process alone",
      async () => {
        const service = await spawn({
          launcher: "node",
          args: [...(await portArgs()), "--data-dir", dataDir],
        });

        const history = await call(service, "GET", `/conversations/${conversationId}`);
        expect(history.status).toBe(200);
        expect(history.body).toMatchObject({
          meta: { conversationId, sessionCount: 1 },
          sessions: [{ status: "active" }],
        });
        expect((history.body.messages as { kind: string }[]).map((m) => m.kind)).toEqual([
          // In time order: the call in the fixture happened before this session was registered.
          "transcript",
          "transcript",
          "transcript",
          "call_analysis",
          "session_registered",
        ]);
        expect(await call(service, "GET", `/conversations/${conversationId}/session`)).toMatchObject({
          status: 200,
          body: { status: "active" },
        });

        const exit = await service.stop("SIGTERM", "process");

        expect(exit.stderr).toBe("");
        // npm waits for its script, then may re-raise the signal the script was stopped by.
        expect([
          { code: 0, signal: null },
          { code: null, signal: "SIGINT" },
        ]).toContainEqual({ code: exit.code, signal: exit.signal });
        await expectStoppedCleanly(service, exit, "SIGTERM");
      },
      timeLimitForStarts(1),
    );

    it(
      "refuses a second service on its data directory, and after a kill -9 stops the DynamoDB Local left behind",
      async () => {
        const first = await spawn({ launcher: "node", args: [...(await portArgs()), "--data-dir", dataDir] });
        const leftBehind = first.dynamoPid ?? 0;

        // Two DynamoDB Locals on one SQLite file would fight over it: one line, exit 1.
        const second = await runLocalServer({
          launcher: "node",
          args: [...(await portArgs()), "--data-dir", dataDir],
        });
        expect(second.code).toBe(1);
        expect(linesOf(second.stderr)).toEqual([
          `npm start: Another local service (pid ${first.pid}) is using the data directory ${dataDir}: stop it first, or start with --data-dir <another directory> or --in-memory.`,
        ]);
        expect((await fetch(`${first.url}/health`)).status).toBe(200);

        // kill -9 gives the service no chance to stop Java: DynamoDB Local is left running.
        await first.stop("SIGKILL", "process");
        expect(isAlive(leftBehind)).toBe(true);

        const third = await spawn({ launcher: "node", args: [...(await portArgs()), "--data-dir", dataDir] });
        expect(third.stdout()).toContain(
          `  note              Stopped DynamoDB Local (pid ${leftBehind}) that an earlier run left running on ${dataDir} when it was killed.`,
        );
        expect(isAlive(leftBehind)).toBe(false);
        expect(third.dynamoPid).not.toBe(leftBehind);
        expect((await call(third, "GET", `/conversations/${conversationId}`)).status).toBe(200);
        await expectStoppedCleanly(third, await third.stop("SIGINT"), "SIGINT");
        expect(existsSync(join(dataDir, "dynamodb-local.pid"))).toBe(false);
      },
      timeLimitForStarts(3),
    );
  });

  it(
    "keeps nothing across a restart with --in-memory, not even a temporary directory",
    async () => {
      const conversationId = `forgotten-${suffix}`;
      // The service's own temporary directory, so what it leaves there is this test's to see.
      const tmp = join(root, "tmp");
      await mkdir(tmp);
      const inMemory = async () =>
        spawn({ launcher: "npm", env: { TMPDIR: tmp }, args: [...(await portArgs()), "--in-memory"] });
      const first = await inMemory();
      await recordConversation(first, conversationId);
      await expectStoppedCleanly(first, await first.stop("SIGINT"), "SIGINT");

      const second = await inMemory();
      expect(await call(second, "GET", `/conversations/${conversationId}`)).toMatchObject({
        status: 404,
        body: { error: "conversation_not_found" },
      });
      expect(await call(second, "GET", `/conversations/${conversationId}/session`)).toMatchObject({
        status: 404,
        body: { error: "session_not_found" },
      });
      await expectStoppedCleanly(second, await second.stop("SIGINT"), "SIGINT");
      // (tsx keeps its compile cache there too; that is not the service's.)
      expect(readdirSync(tmp).filter((name) => !name.startsWith("tsx-"))).toEqual([]);
    },
    timeLimitForStarts(2),
  );

  it(
    "uses an already-running DynamoDB Local with --dynamodb-endpoint, and leaves it running when the terminal closes",
    async () => {
      const endpoint = inject("dynamoEndpoint");
      const conversationId = `external-${suffix}`;
      const service = await spawn({
        launcher: "npm",
        args: [...(await portArgs()), "--dynamodb-endpoint", endpoint],
      });
      expect(service.stdout()).toContain(
        `DynamoDB Local    ${endpoint} (already running; not stopped by Ctrl-C)`,
      );
      expect(service.dynamoPid).toBeUndefined();
      expect(await (await fetch(`${service.url}/health`)).json()).toMatchObject({
        status: "ok",
        dynamodb: "external",
      });
      await recordConversation(service, conversationId);
      expect((await call(service, "GET", `/conversations/${conversationId}`)).status).toBe(200);

      // Closing the terminal sends SIGHUP to the job's group.
      await expectStoppedCleanly(service, await service.stop("SIGHUP"), "SIGHUP", "external");

      const client = new DynamoDBClient({ endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS });
      try {
        const tables = await client.send(new ListTablesCommand({}));
        expect(tables.TableNames).toEqual(expect.arrayContaining(["sessions", "conversations"]));
      } finally {
        client.destroy();
      }
    },
    timeLimitForStarts(1),
  );

  describe("start-up problems: exit 1 and one line on stderr, nothing left running", () => {
    /** A data directory no other test uses, so its path identifies this run's processes. */
    const freshDataDir = () => join(root, `never-${randomUUID().slice(0, 8)}`);

    const expectOneLine = (exit: Exit, pattern: RegExp) => {
      expect(exit.code).toBe(1);
      const lines = linesOf(exit.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^npm start: /);
      expect(lines[0]).toMatch(pattern);
      expect(exit.stderr).not.toMatch(/\n\s*at |Error:/);
    };

    it(
      "says the port is in use, before DynamoDB Local is started",
      async () => {
        const holder: Server = createServer();
        await new Promise<void>((ready) => holder.listen(0, "127.0.0.1", ready));
        const port = (holder.address() as { port: number }).port;
        const dataDir = freshDataDir();
        try {
          const exit = await runLocalServer({
            launcher: "npm",
            args: ["--port", String(port), "--data-dir", dataDir],
          });

          expectOneLine(exit, new RegExp(`^npm start: Port ${port} on 127\\.0\\.0\\.1 is already in use`));
          expect(exit.stdout).not.toMatch(/DynamoDB Local\s+\S+ \(pid/);
          // The port is bound before anything else: no data directory, no Java, no process left.
          expect(existsSync(dataDir)).toBe(false);
          expect(processesMentioning(dataDir)).toEqual([]);
        } finally {
          await new Promise((closed) => holder.close(closed));
        }
      },
      timeLimitForStarts(1),
    );

    it(
      "says Java was not found when there is no java on PATH",
      async () => {
        const dataDir = freshDataDir();
        const exit = await runLocalServer({
          launcher: "node",
          env: { PATH: "/nonexistent" },
          args: [...(await portArgs()), "--data-dir", dataDir],
        });

        expectOneLine(exit, /Java was not found.*Java 17 or newer/);
        expect(processesMentioning(dataDir)).toEqual([]);
      },
      timeLimitForStarts(1),
    );

    it(
      "says which Java it found when it is older than 17",
      async () => {
        const bin = join(root, "old-java");
        await mkdir(bin);
        const java = join(bin, "java");
        writeFileSync(java, `#!/bin/sh\necho 'openjdk version "11.0.22" 2024-01-16' >&2\n`);
        chmodSync(java, 0o755);
        const dataDir = freshDataDir();

        // node itself is started by its absolute path, so a PATH with only this java still runs it.
        const exit = await runLocalServer({
          launcher: "node",
          env: { PATH: bin },
          args: [...(await portArgs()), "--data-dir", dataDir],
        });

        expectOneLine(exit, /Java 11 found.*Java 17 or newer/);
        expect(processesMentioning(dataDir)).toEqual([]);
      },
      timeLimitForStarts(1),
    );

    it(
      "names a bad variable before binding the port",
      async () => {
        const args = [...(await portArgs()), "--data-dir", freshDataDir()];
        const exit = await runLocalServer({ launcher: "npm", env: { SESSION_TTL_MS: "abc" }, args });

        expectOneLine(
          exit,
          /^npm start: Invalid configuration: SESSION_TTL_MS must be a positive whole number of ms, not "abc"\.$/,
        );
      },
      timeLimitForStarts(1),
    );

    it(
      "names an unknown flag and where the options are listed",
      async () => {
        const exit = await runLocalServer({ launcher: "npm", args: ["--bogus"] });

        expectOneLine(exit, /^npm start: Unknown option '--bogus'.*--help/);
      },
      timeLimitForStarts(1),
    );
  });
});
