/**
 * A copy of `value` without its `undefined` entries: items and responses stay free of empty
 * attributes, and optional fields can be written inline (`agentId: input.agentId`).
 */
export const withoutUndefined = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

/**
 * `build()` run once, on the first call, then remembered. Request schemas are built this way: a
 * function never builds (at cold start or later) a schema its route does not use.
 */
export const once = <T>(build: () => T): (() => T) => {
  let built: { value: T } | undefined;
  return () => {
    built ??= { value: build() };
    return built.value;
  };
};
