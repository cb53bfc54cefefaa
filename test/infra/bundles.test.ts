import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Metafile } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../functions/core/routes.js";
import { bundleBudget } from "../../lib/bundling.js";
import { buildAsDeployed } from "../support/lambda-build.js";

/**
 * Bytes, not time: each handler bundled exactly as deployed (lib/bundling.ts) must fit its
 * budget and carry only what its route's `access` names. `npm run bench` reports the same sizes
 * with the cold-init times that go with them.
 */

interface Built {
  readonly bytes: number;
  /** Input paths with bytes in the output. */
  readonly inputs: readonly string[];
}

let outDir: string;
const built = new Map<string, Built>();

/** The example task runner (examples/runner, deployed by the stack): not a route, bundled the same way. */
const RUNNER = { name: "example-runner", entry: "examples/runner/handler.ts" };

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), "bundle-size-"));
  const entries = [
    ...ROUTES.map((route) => ({ name: route.name, entry: `functions/${route.name}/handler.ts` })),
    RUNNER,
  ];
  for (const route of entries) {
    const outfile = join(outDir, `${route.name}.mjs`);
    const result = await buildAsDeployed(route.entry, outfile);
    const output = Object.entries(result.metafile.outputs).find(([file]) => file.endsWith(".mjs"))?.[1];
    built.set(route.name, {
      bytes: statSync(outfile).size,
      // Only inputs that left bytes in the output: a module tree-shaken to nothing is not carried.
      inputs: Object.entries((output as Metafile["outputs"][string]).inputs)
        .filter(([, input]) => input.bytesInOutput > 0)
        .map(([path]) => path),
    });
  }
});
afterAll(() => rmSync(outDir, { recursive: true, force: true }));

const bundleOf = (name: string): Built => {
  const result = built.get(name);
  if (!result) throw new Error(`${name} was not bundled`);
  return result;
};
const route = (name: string) => {
  const found = ROUTES.find((r) => r.name === name);
  if (!found) throw new Error(`${name} is not a route`);
  return found;
};
const carries = (name: string, pattern: RegExp) => bundleOf(name).inputs.some((input) => pattern.test(input));

describe("Lambda bundles", () => {
  it.each(ROUTES.map((r) => r.name))("%s fits its byte budget", (name) => {
    const { bytes } = bundleOf(name);
    expect(bytes, `${name}: ${(bytes / 1024).toFixed(1)} KB`).toBeLessThanOrEqual(bundleBudget(name));
  });

  it("holds get-signed-url to 60 KB and every other function to 300 KB", () => {
    expect(bundleBudget("get-signed-url")).toBe(60 * 1024);
    for (const route of ROUTES.filter((r) => r.name !== "get-signed-url"))
      expect(bundleBudget(route.name), route.name).toBe(300 * 1024);
  });

  it.each(ROUTES)("$name carries a DynamoDB client, stores and queues only as its access names", (route) => {
    const { access, name } = route;
    const tables = Boolean(access.sessions || access.conversations);
    expect(carries(name, /@aws-sdk\/client-dynamodb\//), `${name}: DynamoDB client`).toBe(tables);
    expect(carries(name, /functions\/core\/session-store\.ts$/), `${name}: session store`).toBe(
      Boolean(access.sessions),
    );
    expect(carries(name, /functions\/core\/conversation-store\.ts$/), `${name}: conversation store`).toBe(
      Boolean(access.conversations),
    );
    expect(carries(name, /functions\/core\/task-store\.ts$/), `${name}: task store`).toBe(
      Boolean(access.tasks),
    );
    // SQS is one signed SendMessage (functions/core/sqs-send.ts), never the SDK client.
    expect(carries(name, /functions\/core\/sqs-send\.ts$/), `${name}: SQS sender`).toBe(
      Boolean(access.taskQueue || access.parkingQueue),
    );
    expect(carries(name, /@aws-sdk\/client-sqs\//), `${name}: SQS client`).toBe(false);
  });

  it.each(ROUTES)("$name carries no event-stream serde and no mnemonist (aliased away)", ({ name }) => {
    expect(
      carries(name, /@smithy\/core\/dist-es\/submodules\/event-streams\//),
      `${name}: event streams`,
    ).toBe(false);
    expect(carries(name, /node_modules\/(mnemonist|obliterator)\//), `${name}: mnemonist`).toBe(false);
    const tables = Boolean(route(name).access.sessions || route(name).access.conversations);
    expect(carries(name, /functions\/core\/lambda-lru-cache\.ts$/), `${name}: Map LRU`).toBe(tables);
  });

  it.each(ROUTES.filter((r) => !r.access.sessions && r.access.conversations !== "write"))(
    "$name (reads no session, writes nothing) carries no zod",
    ({ name }) => {
      expect(carries(name, /node_modules\/zod\//)).toBe(false);
    },
  );

  it("the example task runner, which emits no metrics, carries the Logger and not Powertools Metrics", () => {
    expect(carries(RUNNER.name, /@aws-lambda-powertools\/logger\//)).toBe(true);
    expect(carries(RUNNER.name, /@aws-lambda-powertools\/metrics\//)).toBe(false);
    // 55 KB before the runner changed message visibility itself; 232 KB since, the SQS client and
    // the SDK core under it (ChangeMessageVisibility through functions/core/sqs-send.ts's signer
    // instead would bring it back near 60 KB).
    expect(bundleOf(RUNNER.name).bytes).toBeLessThanOrEqual(240 * 1024);
  });

  it("the example task runner carries the one SQS command it sends, and no other", () => {
    const commands = bundleOf(RUNNER.name).inputs.filter((input) =>
      /client-sqs\/dist-es\/commands\/\w+Command\.js$/.test(input),
    );
    expect(commands.map((c) => c.replace(/^.*\//, ""))).toEqual(["ChangeMessageVisibilityCommand.js"]);
  });

  it.each(ROUTES)("$name carries Powertools Metrics (every route counts its outcome)", ({ name }) => {
    expect(carries(name, /@aws-lambda-powertools\/metrics\//)).toBe(true);
  });

  it.each(ROUTES)("$name reads credentials from the environment only", ({ name }) => {
    expect(
      carries(name, /functions\/core\/lambda-credentials\.ts$/) || !carries(name, /@aws-sdk\/core\//),
    ).toBe(true);
    for (const chainLink of [
      "credential-provider-node",
      "credential-provider-ini",
      "credential-provider-sso",
    ])
      expect(carries(name, new RegExp(`@aws-sdk/${chainLink}/`)), `${name}: ${chainLink}`).toBe(false);
  });
});
