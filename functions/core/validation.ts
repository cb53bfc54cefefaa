import type * as z from "zod/mini";
import { ValidationError } from "./errors.js";

type Issue = z.core.$ZodIssue;

const describeIssue = (issue: Issue): string => {
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined ? "is required" : `must be ${article(issue.expected)}`;
    case "too_big":
      return issue.origin === "string"
        ? `must be at most ${issue.maximum} characters`
        : issue.origin === "array"
          ? `must have at most ${issue.maximum} items`
          : `must be at most ${issue.maximum}`;
    case "too_small":
      return issue.origin === "string"
        ? Number(issue.minimum) <= 1
          ? "must not be empty"
          : `must be at least ${issue.minimum} characters`
        : issue.origin === "array"
          ? `must have at least ${issue.minimum} items`
          : `must be at least ${issue.minimum}`;
    case "invalid_format":
      return issue.format === "regex"
        ? "contains characters that are not allowed"
        : `must be a valid ${issue.format}`;
    case "unrecognized_keys":
      return `has unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.join(", ")}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "invalid_union":
      return "has a value of the wrong type";
    default:
      return issue.message && issue.message !== "Invalid input" ? issue.message : "is invalid";
  }
};

const article = (word: string) => (/^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`);

/** Turns zod issues into short, human sentences: `body.notifyUrl must be a valid url`. */
export const formatIssues = (issues: readonly Issue[], root: string): string[] =>
  issues.map((issue) => {
    const path = [root, ...issue.path.map(String)].filter(Boolean).join(".");
    return `${path} ${describeIssue(issue)}`;
  });

/**
 * Parses `input` with a zod/mini schema or throws a {@link ValidationError} whose message lists
 * every problem, so a caller fixes everything in one round trip.
 */
export const parseWith = <T>(schema: z.ZodMiniType<T>, input: unknown, root: string): T => {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const details = formatIssues(result.error.issues, root);
  throw new ValidationError(`Invalid request: ${details.join("; ")}.`, details);
};
