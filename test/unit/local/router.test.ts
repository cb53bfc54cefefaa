import { describe, expect, it } from "vitest";
import { ROUTES } from "../../../functions/core/routes.js";
import { matchRoute } from "../../../local/router.js";

/** The local router must choose routes the way API Gateway's HTTP API does. */
describe("local router", () => {
  it("lets a static segment beat a path parameter", () => {
    expect(matchRoute("POST", "/tools/get_task_result")).toMatchObject({
      route: { name: "get-task-result" },
      pathParameters: {},
    });
    expect(matchRoute("POST", "/tools/lookup_order")).toMatchObject({
      route: { name: "call-tool" },
      pathParameters: { toolName: "lookup_order" },
    });
  });

  it("names each allowed method once for a 405, even when two routes share the path", () => {
    expect(matchRoute("DELETE", "/tools/get_task_result")).toEqual({
      methodNotAllowed: expect.arrayContaining(["POST", "GET"]),
    });
    expect(
      (matchRoute("DELETE", "/tools/get_task_result") as { methodNotAllowed: string[] }).methodNotAllowed,
    ).toHaveLength(2);
    // The tool routes answer GET too (ElevenLabs' default tool method), the static path first.
    expect(matchRoute("GET", "/tools/get_task_result")).toMatchObject({ route: { name: "get-task-result" } });
    expect(matchRoute("GET", "/tools/lookup_order")).toMatchObject({
      route: { name: "call-tool" },
      pathParameters: { toolName: "lookup_order" },
    });
    expect(matchRoute("DELETE", "/conversations/c-1/session")).toEqual({
      methodNotAllowed: expect.arrayContaining(["POST", "GET"]),
    });
    expect(
      (matchRoute("DELETE", "/conversations/c-1/session") as { methodNotAllowed: string[] }).methodNotAllowed,
    ).toHaveLength(2);
  });

  it("decodes path parameters, and leaves malformed percent-encoding for the handler to reject", () => {
    expect(matchRoute("GET", "/conversations/conv%2D1/session")).toMatchObject({
      pathParameters: { conversationId: "conv-1" },
    });
    expect(matchRoute("GET", "/conversations/%ZZ/session")).toMatchObject({
      pathParameters: { conversationId: "%ZZ" },
    });
  });

  it("matches every route of the route table with its own template, and nothing else", () => {
    for (const route of ROUTES) {
      const path = route.path.replace(/\{(\w+)\}/g, "x1");
      const match = matchRoute(route.method, path);
      expect(match && "route" in match ? match.route.name : undefined).toBe(route.name);
    }
    expect(matchRoute("GET", "/nope")).toBeUndefined();
    expect(matchRoute("GET", "/conversations/a/b/c")).toBeUndefined();
  });
});
