import { ValidationError } from "./errors.js";

/** Conversation, agent and task ids: 1–128 of `[A-Za-z0-9_-]`. Nothing else is ever written. */
export const ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;
export const ID_MAX_LENGTH = 128;

/** Describes why an id is invalid, or returns undefined when it is valid. */
export const idProblem = (value: unknown): string | undefined => {
  if (typeof value !== "string") return "must be a string";
  if (value.length === 0) return "must not be empty";
  if (value.length > ID_MAX_LENGTH) return `must be at most ${ID_MAX_LENGTH} characters`;
  if (!ID_PATTERN.test(value)) return "may only contain letters, digits, '_' and '-'";
  return undefined;
};

/** Throws a {@link ValidationError} (code `invalid_<field>`) unless `value` is a valid id. */
export function assertValidId(value: unknown, field = "conversationId"): asserts value is string {
  const problem = idProblem(value);
  if (problem) {
    throw new ValidationError(`${field} ${problem}.`, [`${field} ${problem}`], `invalid_${toSnake(field)}`);
  }
}

const toSnake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
