import { readFileSync } from "node:fs";
import { compileErrors, validate } from "@readme/openapi-parser";
import { describe, expect, it } from "vitest";
import { openApiDocument } from "../../../functions/core/openapi.js";
import { ROUTES } from "../../../functions/core/routes.js";
import { OPENAPI_PATH, renderOpenApi } from "../../../local/openapi.js";

type Operation = {
  security: Record<string, string[]>[];
  requestBody?: { required: boolean; content: Record<string, { schema: Record<string, unknown> }> };
  responses: Record<
    string,
    { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }
  >;
};
const operation = (doc: Record<string, unknown>, method: string, path: string): Operation | undefined =>
  (doc.paths as Record<string, Record<string, Operation>>)[path]?.[method.toLowerCase()];

describe("openapi.json", () => {
  it("is what npm run openapi generates from the route table and schemas today (run it after a change)", () => {
    expect(readFileSync(OPENAPI_PATH, "utf8")).toBe(renderOpenApi());
  });

  it("is a valid OpenAPI 3.1 document", async () => {
    const result = await validate(JSON.parse(readFileSync(OPENAPI_PATH, "utf8")));
    expect(result.valid, result.valid ? "" : compileErrors(result)).toBe(true);
    expect(result.specification).toBe("OpenAPI");
  });

  it("describes every route-table entry with its method, its auth scheme and every error status", () => {
    const doc = openApiDocument();
    const schemes = {
      service: "serviceToken",
      tool: "toolSecret",
      task: "taskToken",
      signature: "elevenLabsSignature",
    };
    for (const route of ROUTES) {
      const op = operation(doc, route.method, route.path);
      expect(op, `${route.method} ${route.path}`).toBeDefined();
      expect(op?.security).toEqual([{ [schemes[route.auth]]: [] }]);
      expect(Object.keys(op?.responses ?? {})).toEqual(expect.arrayContaining(["401", "500", "503"]));
      if (route.maxBodyBytes > 0) expect(Object.keys(op?.responses ?? {})).toContain("413");
      for (const [status, response] of Object.entries(op?.responses ?? {})) {
        if (Number(status) < 400) continue;
        const props = response.content?.["application/json"]?.schema.properties;
        expect(props, `${route.name} ${status}`).toHaveProperty("error");
        expect(props, `${route.name} ${status}`).toHaveProperty("message");
      }
    }
  });

  it("takes request bodies from the schemas the handlers validate with", () => {
    const doc = openApiDocument();
    const body = (method: string, path: string) =>
      operation(doc, method, path)?.requestBody?.content["application/json"]?.schema;
    expect(body("POST", "/conversations/{conversationId}/tasks/{taskId}/result")).toMatchObject({
      additionalProperties: false,
      properties: { status: { enum: ["succeeded", "failed"] }, error: { maxLength: 2000 } },
    });
    expect(body("POST", "/tools/{toolName}")).toMatchObject({ required: ["conversation_id"] });
    expect(body("POST", "/conversations/{conversationId}/session")).toMatchObject({
      additionalProperties: false,
      properties: { notifyUrl: { format: "uri" } },
    });
    expect(operation(doc, "POST", "/conversations/{conversationId}/session")?.requestBody?.required).toBe(
      false,
    );
  });

  it("refuses to describe a route it has no entry for, so a new route cannot go undocumented", () => {
    const [first] = ROUTES;
    if (!first) throw new Error("empty route table");
    expect(() => openApiDocument(undefined, [...ROUTES, { ...first, name: "erase-conversation" }])).toThrow(
      /Route erase-conversation has no OpenAPI description/,
    );
  });
});
