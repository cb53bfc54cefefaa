import { Template } from "aws-cdk-lib/assertions";
import { expect } from "vitest";
import { createApp } from "../../lib/create-app.js";
import type { SessionsStack } from "../../lib/sessions-stack.js";

/**
 * Skips esbuild: these tests assert wiring, not bundles (bundling all functions takes seconds per
 * app). `cdk synth` in CI and the one bundling test in functions.test.ts bundle for real.
 */
export const SKIP_BUNDLING = { "aws:cdk:bundling-stacks": [] } as const;

/** The app's stack for a context (bundling skipped) and its template. Call once per file, in beforeAll. */
export const synthStack = (
  context: Record<string, unknown> = {},
): { stack: SessionsStack; template: Template } => {
  const { stack } = createApp({ context: { ...SKIP_BUNDLING, ...context } });
  return { stack, template: Template.fromStack(stack) };
};

/** A template resource. */
export interface Resource {
  readonly Type: string;
  readonly Properties: Record<string, unknown>;
  readonly DependsOn?: unknown;
  readonly DeletionPolicy?: string;
}

/** An IAM statement with Action and Resource always as arrays. */
export interface Statement {
  readonly Effect: string;
  readonly Action: string[];
  readonly Resource: unknown[];
}

const asArray = <T>(value: T | T[] | undefined): T[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** The one resource of a type whose properties match, with its logical id. */
export const onlyResource = (
  template: Template,
  type: string,
  props: Record<string, unknown> = {},
): { id: string; resource: Resource } => {
  const found = Object.entries(template.findResources(type, { Properties: props }));
  expect(found, `exactly one ${type} matching ${JSON.stringify(props)}`).toHaveLength(1);
  const [id, resource] = found[0] as [string, Resource];
  return { id, resource };
};

/** Logical id of a `{ Ref }` or `{ "Fn::GetAtt": [id, attr] }` value, else undefined. */
export const refId = (value: unknown): string | undefined => {
  if (value && typeof value === "object") {
    const v = value as { Ref?: string; "Fn::GetAtt"?: [string, string] };
    return v.Ref ?? v["Fn::GetAtt"]?.[0];
  }
  return undefined;
};

/** Every Allow statement of every policy attached to the role with this logical id. */
export const statementsOfRole = (template: Template, roleId: string): Statement[] =>
  Object.values(template.findResources("AWS::IAM::Policy"))
    .filter((policy) => asArray(policy.Properties.Roles).some((role) => refId(role) === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement as Record<string, unknown>[])
    .map((s) => ({
      Effect: String(s.Effect),
      Action: asArray(s.Action as string | string[]),
      Resource: asArray(s.Resource),
    }));

/** What the template says about the function behind a route. */
export interface FunctionFacts {
  readonly id: string;
  readonly resource: Resource;
  readonly roleId: string;
  readonly env: Record<string, unknown>;
  readonly statements: Statement[];
}

/** The function the stack built for a route, read from the template. */
export const functionFacts = (stack: SessionsStack, template: Template, routeName: string): FunctionFacts => {
  const fn = stack.api.functions[routeName];
  if (!fn) throw new Error(`The stack built no function for route ${routeName}`);
  const id = stack.getLogicalId(fn.handler.node.defaultChild as never);
  const resource = template.toJSON().Resources[id] as Resource;
  const roleId = refId(resource.Properties.Role);
  if (!roleId) throw new Error(`Function ${routeName} has no role reference`);
  return {
    id,
    resource,
    roleId,
    env: ((resource.Properties.Environment as { Variables?: Record<string, unknown> })?.Variables ??
      {}) as Record<string, unknown>,
    statements: statementsOfRole(template, roleId),
  };
};

/**
 * Actions granted per resource, keyed by a readable name for each resource: `name` for a
 * `{ Ref | GetAtt }` of a known logical id, `name/index/x` for an index ARN built from it,
 * and the raw JSON for anything else (so unexpected grants show up in the diff).
 */
export const actionsByResource = (
  statements: readonly Statement[],
  names: Readonly<Record<string, string>>,
  actionPrefix: string,
): Record<string, string[]> => {
  const result: Record<string, Set<string>> = {};
  for (const statement of statements) {
    const actions = statement.Action.filter((a) => a.startsWith(actionPrefix) || a === "*");
    if (statement.Effect !== "Allow" || actions.length === 0) continue;
    for (const resource of statement.Resource) {
      const key = resourceName(resource, names);
      result[key] ??= new Set();
      for (const action of actions) result[key].add(action);
    }
  }
  return Object.fromEntries(Object.entries(result).map(([k, v]) => [k, [...v].sort()]));
};

const resourceName = (resource: unknown, names: Readonly<Record<string, string>>): string => {
  const direct = refId(resource);
  if (direct && names[direct]) return names[direct];
  const join = (resource as { "Fn::Join"?: [string, unknown[]] })?.["Fn::Join"];
  if (join && join[0] === "" && join[1].length === 2 && typeof join[1][1] === "string") {
    const base = refId(join[1][0]);
    if (base && names[base]) return `${names[base]}${join[1][1]}`;
  }
  return JSON.stringify(resource);
};
