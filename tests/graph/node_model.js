// A Seldon model served by Node.js, to join a daneel graph as a remote node.
// POST /predict with a SeldonMessage {data: {ndarray}} answers the values tripled.
// Usage: node node_model.js PORT
"use strict";
const http = require("http");

function reply(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function failure(res, status, info) {
  reply(res, status, { status: { code: status, info: info, reason: "BAD_REQUEST", status: "FAILURE" } });
}

const server = http.createServer((req, res) => {
  let text = "";
  req.on("data", (chunk) => (text += chunk));
  req.on("end", () => {
    if (req.method !== "POST" || req.url !== "/predict") return failure(res, 404, `no route ${req.url}`);
    let message;
    try {
      message = JSON.parse(text);
    } catch (err) {
      return failure(res, 400, `body is not JSON: ${err.message}`);
    }
    const rows = message.data && message.data.ndarray;
    if (!Array.isArray(rows)) return failure(res, 400, "data.ndarray: expected a list of rows");
    const tripled = rows.map((row) => row.map((x) => x * 3));
    reply(res, 200, { data: { names: message.data.names || [], ndarray: tripled }, meta: { tags: { language: "javascript" } } });
  });
});

server.listen(Number(process.argv[2]), "127.0.0.1", () => console.log("listening"));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
