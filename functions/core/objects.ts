/**
 * A copy of `value` without its `undefined` entries: items and responses stay free of empty
 * attributes, and optional fields can be written inline (`agentId: input.agentId`).
 */
export const withoutUndefined = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
