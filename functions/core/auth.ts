import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { UnauthorizedError } from "./errors.js";
import type { SecretVersions } from "./secrets.js";

/** Header the ElevenLabs server tool sends its secret in (configured on the tool as a secret header). */
export const TOOL_SECRET_HEADER = "x-tool-secret";

const sha256 = (value: string | Buffer) => createHash("sha256").update(value).digest();

/**
 * Compares two secrets in constant time. Both sides are hashed first, so neither the content
 * nor the length of the expected value leaks through timing.
 */
export const constantTimeEquals = (given: string, expected: string): boolean =>
  expected.length > 0 && timingSafeEqual(sha256(given), sha256(expected));

/** Which value of a rotating secret a request presented; nothing more is ever logged about it. */
export type SecretVersion = "current" | "previous";

/**
 * Checks a presented value against the current and, during a rotation, the previous value. Both
 * comparisons always run (constant time each), so timing does not tell which one matched.
 */
export const matchSecret = (given: string, expected: string | SecretVersions): SecretVersion | undefined => {
  const versions = typeof expected === "string" ? { current: expected } : expected;
  const current = constantTimeEquals(given, versions.current);
  const previous = versions.previous !== undefined && constantTimeEquals(given, versions.previous);
  if (current) return "current";
  return previous ? "previous" : undefined;
};

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export const bearerToken = (headers: Readonly<Record<string, string>>): string | undefined => {
  const match = /^Bearer\s+(\S{1,4096})\s*$/i.exec(headers.authorization ?? "");
  return match?.[1];
};

/**
 * What a route's 401 tells the caller to send: the header, never its value (a caller that knows
 * the header but not the value learns nothing it could not read in the README).
 */
export const SERVICE_TOKEN_HINT =
  "Missing or invalid credentials: this route expects Authorization: Bearer <service token>.";
export const TOOL_SECRET_HINT =
  "Missing or invalid credentials: this route expects the X-Tool-Secret header (the tool secret).";

/** Throws 401 unless the request carries the expected bearer token; says which value matched. */
export const requireBearer = (
  headers: Readonly<Record<string, string>>,
  expected: string | SecretVersions,
  hint = SERVICE_TOKEN_HINT,
): SecretVersion => {
  const token = bearerToken(headers);
  const matched = token === undefined ? undefined : matchSecret(token, expected);
  if (!matched) throw new UnauthorizedError(hint);
  return matched;
};

/** Throws 401 unless the tool secret header matches; says which value matched. */
export const requireToolSecret = (
  headers: Readonly<Record<string, string>>,
  expected: string | SecretVersions,
): SecretVersion => {
  const given = headers[TOOL_SECRET_HEADER];
  const matched = given === undefined ? undefined : matchSecret(given, expected);
  if (!matched) throw new UnauthorizedError(TOOL_SECRET_HINT);
  return matched;
};

/** A new per-task bearer token: 256 random bits, base64url. */
export const newTaskToken = (): string => randomBytes(32).toString("base64url");

/** The stored form of a task token: SHA-256 hex. The token itself is never stored or logged. */
export const hashToken = (token: string): string => sha256(token).toString("hex");

/** Constant-time check of a presented task token against the stored hash. */
export const taskTokenMatches = (token: string, storedHash: string): boolean => {
  const expected = Buffer.from(storedHash, "hex");
  const given = sha256(token);
  return expected.length === given.length && timingSafeEqual(given, expected);
};
