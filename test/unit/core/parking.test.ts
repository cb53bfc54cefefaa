import { appendFile, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fileParker, noParker, PARKING_FILE, readParkedFile } from "../../../functions/core/parking.js";
import { createParker, sqsParker } from "../../../functions/core/parking-sqs.js";

const event = (n: number) => ({
  receivedAt: `2026-11-27T10:00:0${n}.000Z`,
  rawBody: `{"type":"post_call_transcription","n":${n},"text":"line\\nwith newline"}`,
  reason: "storage_unavailable",
});

describe("fileParker", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "parking-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("appends one JSON line per event, owner-readable only, and reads them back in order", async () => {
    const parker = fileParker(join(dir, "nested"));
    await parker.park(event(1));
    await parker.park(event(2));
    const path = join(dir, "nested", PARKING_FILE);
    expect((await readFile(path, "utf8")).split("\n")).toHaveLength(3);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readParkedFile(join(dir, "nested"))).toEqual([event(1), event(2)]);
  });

  it("skips a torn last line instead of failing the whole replay", async () => {
    await fileParker(dir).park(event(1));
    await appendFile(join(dir, PARKING_FILE), '{"receivedAt":"2026-11-27T1');
    expect(await readParkedFile(dir)).toEqual([event(1)]);
  });

  it("reads nothing when nothing was ever parked", async () => {
    expect(await readParkedFile(join(dir, "absent"))).toEqual([]);
  });
});

describe("sqsParker and createParker", () => {
  it("sends the parked event as the message body", async () => {
    const sent: [string, string][] = [];
    await sqsParker("https://sqs.example/parking", async (queueUrl, body) => {
      sent.push([queueUrl, body]);
      return "m1";
    }).park(event(1));
    expect(sent).toEqual([["https://sqs.example/parking", JSON.stringify(event(1))]]);
  });

  it("rejects when SQS fails, so the webhook can answer 503", async () => {
    await expect(
      sqsParker("https://sqs.example/parking", async () => {
        throw new Error("unreachable");
      }).park(event(1)),
    ).rejects.toThrow("unreachable");
  });

  it("picks SQS in AWS, a file locally, and otherwise a parker that always fails", async () => {
    expect(createParker({ parkingQueueUrl: "https://sqs.example/q", parkingDir: "/tmp/x" }).kind).toBe("sqs");
    expect(createParker({ parkingDir: "/tmp/x" }).kind).toBe("file");
    expect(createParker({})).toBe(noParker);
    await expect(noParker.park(event(1))).rejects.toThrow(/No parking is configured/);
  });
});
