import * as z from "zod/mini";
import { ID_PATTERN } from "./ids.js";

/** What a caller may attach to a session, checked before anything is written. */
const METADATA_MAX_BYTES = 2048;

export const sessionInputSchema = z.strictObject({
  agentId: z.optional(z.string().check(z.regex(ID_PATTERN))),
  notifyUrl: z.optional(z.url({ protocol: /^https?$/ }).check(z.maxLength(2048))),
  metadata: z.optional(
    z
      .record(
        z.string().check(z.maxLength(64)),
        z.union([z.string().check(z.maxLength(512)), z.number(), z.boolean()]),
      )
      .check(
        z.refine((m) => Object.keys(m).length <= 20, "must have at most 20 keys"),
        z.refine(
          (m) => Buffer.byteLength(JSON.stringify(m)) <= METADATA_MAX_BYTES,
          `must be at most ${METADATA_MAX_BYTES} bytes as JSON`,
        ),
      ),
  ),
});
