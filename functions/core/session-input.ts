import * as z from "zod/mini";
import { ID_PATTERN } from "./ids.js";
import { once } from "./objects.js";

/** What a caller may attach to a session, checked before anything is written. */
const METADATA_MAX_BYTES = 2048;

export const sessionInputSchema = once(() =>
  z.strictObject({
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
  }),
);

type ParsedSessionInput = z.infer<ReturnType<typeof sessionInputSchema>>;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Copies `record` with `from` renamed to `to`, defining `__proto__` as an own key (never a prototype). */
const renameKey = <T>(record: Record<string, T>, from: string, to: string): Record<string, T> => {
  const copy: Record<string, T> = {};
  for (const [key, value] of Object.entries(record)) {
    Object.defineProperty(copy, key === from ? to : key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
};

/**
 * Parses a session input with {@link sessionInputSchema}, keeping a metadata key named `__proto__`:
 * zod rebuilds records by assignment, which would silently drop it (it is ordinary data here). It
 * is checked under a stand-in name of the same length, so every limit applies to it unchanged.
 */
export const parseSessionInput = (
  input: unknown,
  parse: (input: unknown) => ParsedSessionInput,
): ParsedSessionInput => {
  const metadata = isObject(input) && isObject(input.metadata) ? input.metadata : undefined;
  if (!metadata || !Object.hasOwn(metadata, "__proto__")) return parse(input);
  let standIn = "__proto__";
  for (let i = 0; Object.hasOwn(metadata, standIn); i++) standIn = `__p${String(i).padStart(4, "0")}__`;
  const parsed = parse({ ...(input as object), metadata: renameKey(metadata, "__proto__", standIn) });
  return parsed.metadata ? { ...parsed, metadata: renameKey(parsed.metadata, standIn, "__proto__") } : parsed;
};
