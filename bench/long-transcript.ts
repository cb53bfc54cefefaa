import { readFileSync } from "node:fs";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ConversationStore } from "../functions/core/conversation-store.js";
import { createDocumentClient } from "../functions/core/dependencies.js";
import { storePostCallEvent } from "../functions/core/post-call-api.js";
import { interpretPostCallEvent } from "../functions/core/post-call-payload.js";
import { createTables } from "../local/create-tables.js";
import { LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal } from "../local/dynamodb-local.js";
import { fmtSpread, loadAverage, spread } from "./stats.js";

/**
 * How long storing one long post-call transcript takes on an in-memory DynamoDB Local (issue 19:
 * 20 000 lines took 10–16 s written one batch after the other, against a 30 s limit).
 *
 * `npx tsx bench/long-transcript.ts [lines] [runs]`. Each run stores the transcript once per
 * setting of batch writes in flight (the service's 8 and the sequential baseline 1), the settings
 * interleaved and their order alternated run by run. Per store it reads wall time, the time spent
 * interpreting the body, and the CPU time of this Node process and of DynamoDB Local's JVM (from
 * /proc), so a figure from a busy machine can be told from one from an idle one.
 * Outside CI: a figure to keep in bench/RESULTS.md, never an assertion.
 */
const lines = Number(process.argv[2] ?? 20_000);
const runs = Number(process.argv[3] ?? 5);
const SETTINGS = [8, 1] as const;

/** CPU ms (user + system) a process has used so far, from /proc (Linux only; NaN elsewhere). */
const processCpuMs = (pid: number): number => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    // After "pid (comm) ": state is field 0, utime field 11, stime field 12, in clock ticks (100/s).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return Number.NaN;
  }
};

const transcriptBody = (conversationId: string): string =>
  JSON.stringify({
    type: "post_call_transcription",
    event_timestamp: Math.floor(Date.now() / 1000),
    data: {
      conversation_id: conversationId,
      status: "done",
      transcript: Array.from({ length: lines }, (_, i) => ({
        role: i % 2 ? "user" : "agent",
        message: `Line ${i} of a long call, about as long as a spoken sentence usually is.`,
        time_in_call_secs: i,
      })),
      metadata: { start_time_unix_secs: Math.floor(Date.now() / 1000) - lines, call_duration_secs: lines },
    },
  });

interface Sample {
  readonly ms: number;
  readonly interpretMs: number;
  readonly nodeCpuMs: number;
  readonly javaCpuMs: number;
}

const main = async () => {
  const local = await startDynamoDbLocal();
  try {
    process.env.AWS_ACCESS_KEY_ID = LOCAL_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = LOCAL_CREDENTIALS.secretAccessKey;
    const names = { sessions: "bench-sessions", conversations: "bench-conversations" };
    await createTables(
      new DynamoDBClient({ endpoint: local.endpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS }),
      names,
    );
    const doc = createDocumentClient({ dynamoEndpoint: local.endpoint }, LOCAL_REGION);
    const stores = new Map(
      SETTINGS.map((batchConcurrency) => [
        batchConcurrency,
        new ConversationStore({ client: doc, tableName: names.conversations, batchConcurrency }),
      ]),
    );
    // A fresh JVM is slow until it has compiled its hot paths: warm it up with short writes first.
    for (let warm = 0; warm < 5; warm++) {
      for (const [setting, store] of stores) {
        await store.appendMessages(
          `warm-up-${warm}-${setting}`,
          Array.from({ length: 500 }, (_, i) => ({
            kind: "transcript" as const,
            atMs: i,
            seq: i,
            id: `t-${i}`,
            text: "warm",
          })),
        );
      }
    }
    const samples = new Map<number, Sample[]>(SETTINGS.map((setting) => [setting, []]));
    const load: string[] = [loadAverage()];
    for (let run = 0; run < runs; run++) {
      const order = run % 2 === 0 ? [...SETTINGS] : [...SETTINGS].reverse();
      for (const batchConcurrency of order) {
        const conversations = stores.get(batchConcurrency);
        if (!conversations) throw new Error(`no store for ${batchConcurrency}`);
        const body = transcriptBody(`long-${run}-${batchConcurrency}-${Date.now()}`);
        const javaBefore = processCpuMs(local.pid);
        const cpuBefore = process.cpuUsage();
        const started = performance.now();
        const event = interpretPostCallEvent(body, Date.now());
        const interpretMs = performance.now() - started;
        if (event.kind !== "transcription") throw new Error(`unexpected ${event.kind}`);
        await storePostCallEvent({ conversations }, event);
        const ms = performance.now() - started;
        const cpu = process.cpuUsage(cpuBefore);
        const sample = {
          ms,
          interpretMs,
          nodeCpuMs: (cpu.user + cpu.system) / 1000,
          javaCpuMs: processCpuMs(local.pid) - javaBefore,
        };
        samples.get(batchConcurrency)?.push(sample);
        console.log(JSON.stringify({ run, batchConcurrency, lines, bodyBytes: body.length, ...sample }));
      }
    }
    load.push(loadAverage());
    const whole = (ms: number) => `${Math.round(ms)}`;
    console.log(`\nload average (1/5/15 min) at start ${load[0]}, at end ${load[1]}\n`);
    console.log("| batches in flight | wall ms | interpreting ms | Node CPU ms | DynamoDB Local CPU ms |");
    console.log("|---:|---:|---:|---:|---:|");
    for (const setting of SETTINGS) {
      const list = samples.get(setting) ?? [];
      const col = (pick: (s: Sample) => number) => fmtSpread(list.map(pick), whole);
      console.log(
        `| ${setting} | ${col((s) => s.ms)} | ${col((s) => s.interpretMs)} | ${col((s) => s.nodeCpuMs)} | ${col((s) => s.javaCpuMs)} |`,
      );
    }
    const service = spread((samples.get(8) ?? []).map((s) => s.ms));
    console.log(
      JSON.stringify({ lines, runs, medianMs: service.median, minMs: service.min, maxMs: service.max }),
    );
  } finally {
    await local.stop();
  }
};

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
