// The ingest baseline: the least a Node webhook receiver can do. It reads the
// body, JSON.parses it and answers 202 with a small JSON body; no validation,
// no Issue, no queue. Run as its own process by bench/ingest.mjs, which reads
// the bound address from the first stdout line ({"address":"127.0.0.1:PORT"}).
import http from "node:http";

const host = process.argv[2] ?? "127.0.0.1";
const port = Number(process.argv[3] ?? 0);
const ACCEPTED = '{"status":"accepted"}\n';

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    let code = 202;
    try {
      JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      code = 400;
    }
    res.writeHead(code, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(ACCEPTED) });
    res.end(ACCEPTED);
  });
});

server.listen(port, host, () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ address: `${a.address}:${a.port}` })}\n`);
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
process.on("SIGINT", () => server.close(() => process.exit(0)));
