import { mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { resolve } from "node:path";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createTables } from "./create-tables.js";
import { LOCAL_CREDENTIALS, LOCAL_REGION, startDynamoDbLocal } from "./dynamodb-local.js";

/**
 * `npm start`: the whole service in one Node process on an embedded DynamoDB Local
 * (persisted under `.local-data/`), listening on 127.0.0.1:${PORT:-3000}.
 */
const main = async () => {
  const dataDir = resolve(process.env.LOCAL_DATA_DIR ?? ".local-data");
  mkdirSync(dataDir, { recursive: true });
  const dynamo = await startDynamoDbLocal({ dbPath: dataDir });
  const client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
  });
  await createTables(client, { sessions: "sessions", conversations: "conversations" });

  const port = Number(process.env.PORT ?? 3000);
  const server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.method === "GET" && req.url === "/health") {
      res.writeHead(200).end(JSON.stringify({ status: "ok", dynamodb: dynamo.endpoint }));
      return;
    }
    res
      .writeHead(404)
      .end(JSON.stringify({ error: "route_not_found", message: "No route matches this request." }));
  });
  server.listen(port, "127.0.0.1", () => {
    console.log(
      JSON.stringify({
        message: "Local server listening",
        url: `http://127.0.0.1:${port}`,
        dynamodb: dynamo.endpoint,
      }),
    );
  });

  const shutdown = async () => {
    server.close();
    client.destroy();
    await dynamo.stop();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
};

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
