import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

// What of a caller's JSON DynamoDB can store, decided in one place. Every write path runs its
// caller data through `unstorable` (the HTTP routes: a 400 naming the field before any write) or
// `toStorable` (the signed post-call webhook, which must store what it can: the field is
// replaced and a note says so). Keys are stored faithfully by `useStorableKeys`.

/**
 * Levels of nesting a caller's JSON may have (its root is level 0). DynamoDB allows 32 levels in
 * an item; the items that carry caller data add a few (a history line's `data.result`, the meta's
 * `call.dataCollectionResults`), so 24 leaves room for them.
 */
export const MAX_JSON_DEPTH = 24;

/** A lone (unpaired) UTF-16 surrogate: not Unicode text, so not storable as a DynamoDB string. */
const LONE_SURROGATE = /\p{Cs}/u;
const isWellFormed = (text: string) => !LONE_SURROGATE.test(text);
const toWellFormed = (text: string) => text.replace(/\p{Cs}/gu, "\uFFFD");

/** DynamoDB numbers: 38 significant digits, magnitudes from 1e-130 to below 1e126. */
const MIN_MAGNITUDE = 1e-130;

/** Why one JSON value (not its children) cannot be stored, or undefined. */
const scalarProblem = (value: unknown): string | undefined => {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return "is not a finite number (JSON numbers like 1e400 overflow)";
    // Beyond ±2^53 the parser has already rounded the number: refusing it is the only faithful answer.
    if (Number.isInteger(value) && !Number.isSafeInteger(value))
      return "is an integer beyond ±2^53; send it as a string";
    if (value !== 0 && Math.abs(value) < MIN_MAGNITUDE) return "is a number too close to zero to store";
    return undefined;
  }
  if (typeof value === "string" && !isWellFormed(value)) return "is not valid Unicode (a lone surrogate)";
  return undefined;
};

const keyProblem = (key: string): string | undefined => {
  if (key === "") return "has an empty key";
  if (!isWellFormed(key)) return "has a key that is not valid Unicode (a lone surrogate)";
  return undefined;
};

const childPath = (path: string, key: string | number) =>
  typeof key === "number"
    ? `${path}[${key}]`
    : /^[A-Za-z_$][\w$]*$/.test(key)
      ? `${path}.${key}`
      : `${path}[${JSON.stringify(key)}]`;

const isContainer = (value: unknown): value is Record<string, unknown> | unknown[] =>
  typeof value === "object" && value !== null;

const entriesOf = (value: Record<string, unknown> | unknown[]): [string | number, unknown][] =>
  Array.isArray(value) ? value.map((item, i) => [i, item]) : Object.entries(value);

/**
 * Why DynamoDB could not store this JSON value, naming the field (`body.result.n is not a finite
 * number ...`), or undefined when it can be stored exactly as given. Never deeper than
 * {@link MAX_JSON_DEPTH} levels: a value nested 500 000 deep costs as much as one 25 deep.
 */
export const unstorable = (value: unknown, path: string, depth = 0): string | undefined => {
  if (depth > MAX_JSON_DEPTH) return `${path} is nested more than ${MAX_JSON_DEPTH} levels deep`;
  if (!isContainer(value)) {
    const problem = scalarProblem(value);
    return problem ? `${path} ${problem}` : undefined;
  }
  for (const [key, item] of entriesOf(value)) {
    if (typeof key === "string") {
      const problem = keyProblem(key);
      if (problem) return `${path} ${problem}`;
    }
    const problem = unstorable(item, childPath(path, key), depth + 1);
    if (problem) return problem;
  }
  return undefined;
};

/**
 * A storable copy of `value` for data that must be kept even when part of it cannot be (a signed
 * webhook is always stored): an unstorable number becomes its JSON text, a lone surrogate U+FFFD,
 * an empty key `(empty key)`, and anything nested deeper than `maxDepth` the text
 * `[removed: nested too deep]`. Each change is noted in `notes` as `<path> <why>`.
 */
export const toStorable = (
  value: unknown,
  path: string,
  notes: string[],
  depth = 0,
  maxDepth = MAX_JSON_DEPTH,
): unknown => {
  if (depth > maxDepth) {
    notes.push(`${path} was nested more than ${maxDepth} levels deep and was removed`);
    return "[removed: nested too deep]";
  }
  if (!isContainer(value)) {
    const problem = scalarProblem(value);
    if (!problem) return value;
    notes.push(`${path} ${problem}; stored as text`);
    return typeof value === "string" ? toWellFormed(value) : String(value);
  }
  if (Array.isArray(value))
    return value.map((item, i) => toStorable(item, childPath(path, i), notes, depth + 1, maxDepth));
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    let storedKey = key;
    const problem = keyProblem(key);
    if (problem) {
      storedKey = key === "" ? "(empty key)" : toWellFormed(key);
      notes.push(`${path} ${problem}; stored as ${JSON.stringify(storedKey)}`);
    }
    defineKey(copy, storedKey, toStorable(item, childPath(path, key), notes, depth + 1, maxDepth));
  }
  return copy;
};

// ---------------------------------------------------------------------------------------------
// Keys. The DocumentClient's marshaller decides what a JS object is from `value.constructor`, so
// `{"constructor": "Ferrari"}` is "a class instance" and throws, and both it and its unmarshaller
// assign keys with `map[key] = ...`, which turns a `__proto__` key into a prototype (the key is
// lost). Those keys are escaped on the way in and restored on the way out, reversibly:
// `constructor` ⇄ `~constructor`, `__proto__` ⇄ `~__proto__`, `~x` ⇄ `~~x`. Every other key is
// stored as is, so items stay readable in the console.
// ---------------------------------------------------------------------------------------------

const ESCAPE = "~";
const mustEscape = (key: string) => key === "__proto__" || key === "constructor" || key.startsWith(ESCAPE);

/** Sets an own, enumerable property, even one named `__proto__`. */
const defineKey = (target: Record<string, unknown>, key: string, value: unknown) => {
  if (key === "__proto__")
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
};

const isPlainObject = (value: unknown): value is Record<string, unknown> => {
  if (typeof value !== "object" || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

const mapKeys = (value: unknown, rename: (key: string) => string): unknown => {
  if (Array.isArray(value)) return value.map((item) => mapKeys(item, rename));
  if (!isPlainObject(value)) return value;
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) defineKey(copy, rename(key), mapKeys(item, rename));
  return copy;
};

/** `value` with every object key escaped for DynamoDB (see above). */
export const escapeKeys = (value: unknown): unknown =>
  mapKeys(value, (key) => (mustEscape(key) ? `${ESCAPE}${key}` : key));

/** The inverse of {@link escapeKeys}: the keys as the caller sent them. */
export const restoreKeys = <T>(value: T): T =>
  mapKeys(value, (key) => (key.startsWith(ESCAPE) ? key.slice(ESCAPE.length) : key)) as T;

/**
 * Makes a DocumentClient store every key faithfully: its commands' input is escaped before the
 * marshaller sees it and its output restored after the unmarshaller (one middleware at the
 * `initialize` step, so every store and every command gets it). Items read back from a
 * cancelled transaction go through {@link restoreKeys} in dynamo.ts.
 */
export const useStorableKeys = <T extends DynamoDBDocumentClient>(doc: T): T => {
  doc.middlewareStack.add(
    (next) => async (args) => {
      const result = await next({ ...args, input: escapeKeys(args.input) as typeof args.input });
      return { ...result, output: restoreKeys(result.output) };
    },
    { step: "initialize", name: "storableKeys", override: true },
  );
  return doc;
};
