import type { Template } from "aws-cdk-lib/assertions";
import { beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../functions/core/routes.js";
import type { SessionsStack } from "../../lib/sessions-stack.js";
import { functionFacts, onlyResource, refId, synthStack } from "./synth.js";

const routeKey = (route: { method: string; path: string }) => `${route.method} ${route.path}`;

describe("HTTP API", () => {
  let stack: SessionsStack;
  let template: Template;
  let apiId: string;
  beforeAll(() => {
    ({ stack, template } = synthStack());
    apiId = onlyResource(template, "AWS::ApiGatewayV2::Api").id;
  });

  it("is one HTTP API with CORS off", () => {
    const { resource } = onlyResource(template, "AWS::ApiGatewayV2::Api", { ProtocolType: "HTTP" });
    expect(resource.Properties.CorsConfiguration).toBeUndefined();
  });

  it("has exactly one route per route-table entry, with its method and path", () => {
    const keys = Object.values(template.findResources("AWS::ApiGatewayV2::Route")).map(
      (r) => r.Properties.RouteKey,
    );
    expect(keys.sort()).toEqual(ROUTES.map(routeKey).sort());
  });

  it("sends each route to its own function through a payload 2.0 Lambda proxy integration", () => {
    const integrations = template.findResources("AWS::ApiGatewayV2::Integration");
    const targets = new Set<string>();
    for (const route of ROUTES) {
      const { resource } = onlyResource(template, "AWS::ApiGatewayV2::Route", { RouteKey: routeKey(route) });
      const target = resource.Properties.Target as { "Fn::Join": [string, unknown[]] };
      expect(target["Fn::Join"][1][0], route.name).toBe("integrations/");
      const integrationId = String(refId(target["Fn::Join"][1][1]));
      const integration = integrations[integrationId];
      expect(integration?.Properties, route.name).toMatchObject({
        ApiId: { Ref: apiId },
        IntegrationType: "AWS_PROXY",
        PayloadFormatVersion: "2.0",
      });
      expect(refId(integration?.Properties.IntegrationUri), route.name).toBe(
        functionFacts(stack, template, route.name).id,
      );
      targets.add(integrationId);
    }
    // One integration per route: a function with two routes (POST and GET) has two.
    expect(targets.size).toBe(ROUTES.length);
  });

  it("lets API Gateway invoke each function only through its own route", () => {
    for (const route of ROUTES) {
      const fn = functionFacts(stack, template, route.name);
      const permissions = Object.values(template.findResources("AWS::Lambda::Permission")).filter(
        (p) => refId(p.Properties.FunctionName) === fn.id,
      );
      // One permission per route of the function (the tool routes: POST and GET on one path).
      const ownRoutes = ROUTES.filter((r) => r.name === route.name);
      expect(permissions, route.name).toHaveLength(ownRoutes.length);
      for (const permission of permissions) {
        expect(permission.Properties.Principal).toBe("apigateway.amazonaws.com");
        const sourceArn = JSON.stringify(permission.Properties.SourceArn);
        expect(sourceArn, route.name).toContain(`/*/*${route.path}"`);
        expect(sourceArn, route.name).toContain(`{"Ref":"${apiId}"}`);
      }
    }
  });

  it("puts no API Gateway authorizer on any route: callers are authenticated inside the functions", () => {
    template.resourceCountIs("AWS::ApiGatewayV2::Authorizer", 0);
    for (const route of Object.values(template.findResources("AWS::ApiGatewayV2::Route"))) {
      expect(route.Properties.AuthorizationType ?? "NONE").toBe("NONE");
    }
  });

  it("throttles the $default stage (50 rps, burst 100) and writes JSON access logs to a log group", () => {
    const { resource } = onlyResource(template, "AWS::ApiGatewayV2::Stage");
    expect(resource.Properties).toMatchObject({
      ApiId: { Ref: apiId },
      StageName: "$default",
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
      AccessLogSettings: { DestinationArn: { "Fn::GetAtt": [expect.any(String), "Arn"] } },
    });
    const logs = resource.Properties.AccessLogSettings as { DestinationArn: unknown; Format: string };
    expect(template.toJSON().Resources[String(refId(logs.DestinationArn))].Type).toBe("AWS::Logs::LogGroup");
    const format = JSON.parse(logs.Format);
    expect(format).toMatchObject({ requestId: "$context.requestId", status: "$context.status" });
    // Headers and query strings may carry tokens: never logged.
    expect(logs.Format).not.toMatch(/header|querystring|authorizer/i);
  });

  it("takes the stage throttling from context", () => {
    const { template: custom } = synthStack({ apiRateLimit: "10", apiBurstLimit: "20" });
    expect(onlyResource(custom, "AWS::ApiGatewayV2::Stage").resource.Properties.DefaultRouteSettings).toEqual(
      {
        ThrottlingRateLimit: 10,
        ThrottlingBurstLimit: 20,
      },
    );
    expect(() => synthStack({ apiRateLimit: "fast" })).toThrow(/apiRateLimit/);
  });

  it("gives the task-dispatching function the API's own URL as PUBLIC_BASE_URL, and no one else", () => {
    for (const route of ROUTES) {
      const { env } = functionFacts(stack, template, route.name);
      if (route.access.taskQueue) {
        expect(env.PUBLIC_BASE_URL, route.name).toEqual({ "Fn::GetAtt": [apiId, "ApiEndpoint"] });
      } else {
        expect(env.PUBLIC_BASE_URL, route.name).toBeUndefined();
      }
    }
    template.hasOutput("ApiUrl", { Value: { "Fn::GetAtt": [apiId, "ApiEndpoint"] } });
  });

  it("uses the custom domain from context for callback URLs and the output", () => {
    const custom = synthStack({ publicBaseUrl: "https://agents.example.com/" });
    for (const route of ROUTES.filter((r) => r.access.taskQueue)) {
      expect(functionFacts(custom.stack, custom.template, route.name).env.PUBLIC_BASE_URL).toBe(
        "https://agents.example.com",
      );
    }
    custom.template.hasOutput("ApiUrl", { Value: "https://agents.example.com" });
    expect(() => synthStack({ publicBaseUrl: "http://insecure.example.com" })).toThrow(/publicBaseUrl/);
  });
});
