import { request } from "node:http";

/** A request sent byte for byte as written: any method, any path, a body even on GET. */
export interface RawRequest {
  readonly method: string;
  /** Already percent-encoded where needed (Node refuses unescaped characters in a path). */
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
}

/** What came back. */
export interface RawResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** Sends one HTTP/1.1 request to a server on 127.0.0.1 and reads the whole answer. */
export const rawRequest = (baseUrl: string, input: RawRequest): Promise<RawResponse> =>
  new Promise((resolve, reject) => {
    const url = new URL(baseUrl);
    if (url.hostname !== "127.0.0.1") throw new Error("raw requests only go to 127.0.0.1");
    const body = input.body === undefined ? undefined : Buffer.from(input.body);
    const req = request(
      {
        host: "127.0.0.1",
        port: Number(url.port),
        method: input.method,
        path: input.path,
        headers: {
          ...input.headers,
          ...(body ? { "content-length": String(body.length) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
