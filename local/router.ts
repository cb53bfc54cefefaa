import { ROUTES, type Route } from "../functions/core/routes.js";

/** A route matched against a request path. */
export interface Match {
  readonly route: Route;
  readonly pathParameters: Record<string, string>;
}

interface Compiled {
  readonly route: Route;
  readonly pattern: RegExp;
  readonly names: string[];
  /** Static segments count more, so `/tools/get_task_result` beats `/tools/{toolName}` as in API Gateway. */
  readonly specificity: number;
}

const compile = (route: Route): Compiled => {
  const names: string[] = [];
  const segments = route.path.split("/").filter(Boolean);
  const source = segments
    .map((segment) => {
      const param = /^\{(\w+)\}$/.exec(segment);
      if (!param?.[1]) return segment.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      names.push(param[1]);
      return "([^/]+)";
    })
    .join("/");
  return {
    route,
    pattern: new RegExp(`^/${source}/?$`),
    names,
    specificity: segments.filter((s) => !s.startsWith("{")).length * 100 - names.length,
  };
};

const compiled = ROUTES.map(compile).sort((a, b) => b.specificity - a.specificity);

/**
 * Decodes a path segment. Malformed percent-encoding (`%ZZ`, a lone surrogate) stays as sent,
 * so the handler rejects it as an invalid id (400) instead of the decoder throwing (500).
 */
const decodeSegment = (segment: string): string => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
};

/**
 * Finds the route for a method and path, like API Gateway's HTTP API: the most specific path
 * wins; a path that exists with another method is reported so the caller can answer 405.
 */
export const matchRoute = (
  method: string,
  path: string,
): Match | { methodNotAllowed: string[] } | undefined => {
  const allowed: string[] = [];
  for (const candidate of compiled) {
    const found = candidate.pattern.exec(path);
    if (!found) continue;
    if (candidate.route.method !== method) {
      // Two routes can share a path and a method (`/tools/get_task_result`, `/tools/{toolName}`).
      if (!allowed.includes(candidate.route.method)) allowed.push(candidate.route.method);
      continue;
    }
    const pathParameters: Record<string, string> = {};
    candidate.names.forEach((name, i) => {
      pathParameters[name] = decodeSegment(found[i + 1] ?? "");
    });
    return { route: candidate.route, pathParameters };
  }
  return allowed.length > 0 ? { methodNotAllowed: allowed } : undefined;
};
