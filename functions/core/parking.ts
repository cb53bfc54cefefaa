import { mkdir, open, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as z from "zod/mini";
import { once } from "./objects.js";

/**
 * A correctly signed post-call event that could not be stored. It is kept verbatim so it can be
 * replayed later through the same code path (see `replayParked` in `post-call.ts`).
 */
export interface ParkedEvent {
  /** When the webhook arrived (ISO). */
  readonly receivedAt: string;
  /** The exact body ElevenLabs sent, as UTF-8 text. Its signature was verified before parking. */
  readonly rawBody: string;
  /** Why it was parked (`storage_unavailable`, `unusable: ...`); never contains secrets. */
  readonly reason: string;
}

/** Keeps events that could not be stored: an SQS parking queue in AWS, a local file otherwise. */
export interface Parker {
  /** A short label for logs (`sqs`, `file`, `none`). */
  readonly kind: string;
  /** Resolves once the event is durably kept; rejects otherwise. */
  park(event: ParkedEvent): Promise<void>;
}

/** The file a {@link fileParker} appends to, one JSON object a line. */
export const PARKING_FILE = "parked-post-call-events.jsonl";

/**
 * Appends each event as one JSON line to `<dir>/parked-post-call-events.jsonl` and fsyncs it
 * before resolving, so a parked event survives a crash of the local process.
 */
export const fileParker = (dir: string): Parker => {
  const path = join(dir, PARKING_FILE);
  let directorySynced = false;
  return {
    kind: "file",
    async park(event) {
      await mkdir(dir, { recursive: true });
      const file = await open(path, "a", 0o600);
      try {
        // One write of one line: appends of a line are not interleaved with other appends.
        await file.write(`${JSON.stringify(event)}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      if (!directorySynced) {
        // A new file's directory entry is only durable once the directory itself is synced.
        const directory = await open(dir, "r");
        try {
          await directory.sync();
        } finally {
          await directory.close();
        }
        directorySynced = true;
      }
    },
  };
};

/** No parking configured: parking fails, so the webhook answers 503 and ElevenLabs may retry. */
export const noParker: Parker = {
  kind: "none",
  park: async () => {
    throw new Error("No parking is configured (set PARKING_QUEUE_URL or PARKING_DIR)");
  },
};

const parkedEventSchema = once(() =>
  z.object({ receivedAt: z.string(), rawBody: z.string(), reason: z.string() }),
);

/** Reads the events a {@link fileParker} kept in `dir`, oldest first (none when there is no file). */
export const readParkedFile = async (dir: string): Promise<ParkedEvent[]> => {
  let text: string;
  try {
    text = await readFile(join(dir, PARKING_FILE), "utf8");
  } catch (error) {
    if ((error as { code?: unknown }).code === "ENOENT") return [];
    throw error;
  }
  return parseParkedLines(text);
};

/** Parses JSON lines of parked events; a damaged line (a torn write) is skipped, not fatal. */
export const parseParkedLines = (text: string): ParkedEvent[] =>
  text.split("\n").flatMap((line) => {
    if (line.trim() === "") return [];
    try {
      const parsed = parkedEventSchema().safeParse(JSON.parse(line));
      return parsed.success ? [parsed.data] : [];
    } catch {
      return [];
    }
  });
