// A recording MCP upstream on the official TypeScript SDK (@modelcontextprotocol/sdk), for
// tests-e2e/differential.sh. Same surface and same recording as upstream_python.py: one JSON line
// per execution, appended to --record FILE (or $DIFF_RECORD) and written at once:
//   {"kind":"tool"|"resource"|"subscribe"|"prompt"|"completion","target":"<name or uri>","args":{...}}
//
// Why this SDK is a witness: it parses with JSON.parse (a duplicated key keeps its LAST value),
// its stdio reader splits on "\n" only, and its Streamable HTTP transport accepts batches.
// The low-level Server is used so every handler sees the params exactly as they arrived.
//
//   node upstream_ts.mjs --stdio --record FILE
//   node upstream_ts.mjs --http 127.0.0.1:0 --record FILE    (prints "listening on http://…/mcp")
//
// The SDK is found in the test cache: --node-modules DIR (or $DIFF_NODE_MODULES), the directory
// that holds node_modules/@modelcontextprotocol/sdk (lib.sh's ensure_npm_tools installs it).

import { appendFileSync, openSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import process from 'node:process';

function parseArgs(argv) {
  const opts = { http: null, record: process.env.DIFF_RECORD, nodeModules: process.env.DIFF_NODE_MODULES };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--stdio') opts.http = null;
    else if (a === '--http') opts.http = argv[++i];
    else if (a === '--record') opts.record = argv[++i];
    else if (a === '--node-modules') opts.nodeModules = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.record) throw new Error('--record FILE (or DIFF_RECORD) is required');
  if (!opts.nodeModules) throw new Error('--node-modules DIR (or DIFF_NODE_MODULES) is required');
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
// Resolve the SDK through its package exports, from the cache directory rather than from here.
const require = createRequire(path.join(path.resolve(opts.nodeModules), 'package.json'));
const { Server } = require('@modelcontextprotocol/sdk/server/index.js');
const { StdioServerTransport } = require('@modelcontextprotocol/sdk/server/stdio.js');
const { StreamableHTTPServerTransport } = require('@modelcontextprotocol/sdk/server/streamableHttp.js');
const { McpError, ErrorCode, ...schemas } = require('@modelcontextprotocol/sdk/types.js');

const fd = openSync(opts.record, 'a');
// One appendFileSync per line: a single write(2) on an O_APPEND descriptor, visible at once.
// JSON.stringify leaves U+2028/U+2029 raw; escape them so every reader sees one line per record.
function record(kind, target, args) {
  const line = JSON.stringify({ kind, target, args }).replace(/[\u2028\u2029\u0085]/g, (c) =>
    `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  appendFileSync(fd, `${line}\n`);
}

const TOOLS = {
  echo: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] },
  admin_tool: { type: 'object', properties: {} },
  denied_tool: { type: 'object', properties: {} },
};
const RESOURCES = { 'test://public': 'public content', 'test://admin': 'admin content' };
const PROMPTS = { greet: ['name'], admin_prompt: [] };
const has = (obj, key) => typeof key === 'string' && Object.hasOwn(obj, key);
const invalid = (message) => new McpError(ErrorCode.InvalidParams, message);

function build() {
  const server = new Server(
    { name: 'differential-typescript', version: '1' },
    { capabilities: { tools: {}, resources: { subscribe: true }, prompts: {}, completions: {} } },
  );
  server.setRequestHandler(schemas.ListToolsRequestSchema, async () => ({
    tools: Object.entries(TOOLS).map(([name, inputSchema]) => ({ name, description: `differential ${name}`, inputSchema })),
  }));
  server.setRequestHandler(schemas.CallToolRequestSchema, async (req) => {
    const { name } = req.params;
    const args = req.params.arguments ?? {};
    if (!has(TOOLS, name)) throw invalid(`unknown tool ${JSON.stringify(name)}`);
    let text = `${name} ran`;
    if (name === 'echo') {
      if (typeof args.text !== 'string') throw invalid("echo needs a string argument 'text'");
      text = args.text;
    }
    record('tool', name, args);
    return { content: [{ type: 'text', text }] };
  });
  server.setRequestHandler(schemas.ListResourcesRequestSchema, async () => ({
    resources: Object.keys(RESOURCES).map((uri) => ({ uri, name: uri.replace('test://', '') })),
  }));
  server.setRequestHandler(schemas.ReadResourceRequestSchema, async (req) => {
    const { uri } = req.params;
    if (!has(RESOURCES, uri)) throw new McpError(-32002, `no resource ${JSON.stringify(uri)}`);
    record('resource', uri, {});
    return { contents: [{ uri, text: RESOURCES[uri] }] };
  });
  server.setRequestHandler(schemas.SubscribeRequestSchema, async (req) => {
    const { uri } = req.params;
    if (!has(RESOURCES, uri)) throw new McpError(-32002, `no resource ${JSON.stringify(uri)}`);
    record('subscribe', uri, {});
    return {};
  });
  server.setRequestHandler(schemas.UnsubscribeRequestSchema, async () => ({}));
  server.setRequestHandler(schemas.ListPromptsRequestSchema, async () => ({
    prompts: Object.entries(PROMPTS).map(([name, args]) => ({ name, arguments: args.map((a) => ({ name: a, required: true })) })),
  }));
  server.setRequestHandler(schemas.GetPromptRequestSchema, async (req) => {
    const { name } = req.params;
    const args = req.params.arguments ?? {};
    if (!has(PROMPTS, name)) throw invalid(`unknown prompt ${JSON.stringify(name)}`);
    if (name === 'greet' && typeof args.name !== 'string') throw invalid("greet needs a string argument 'name'");
    record('prompt', name, args);
    return { messages: [{ role: 'user', content: { type: 'text', text: `${name}: ${JSON.stringify(args)}` } }] };
  });
  server.setRequestHandler(schemas.CompleteRequestSchema, async (req) => {
    const { ref, argument } = req.params;
    const target = ref.type === 'ref/prompt' ? ref.name : ref.uri;
    if (!has(PROMPTS, target) && !has(RESOURCES, target)) return { completion: { values: [] } };
    record('completion', target, { argument: argument.name, value: argument.value });
    return { completion: { values: [`${target}-suggestion`] } };
  });
  return server;
}

async function serveHttp(address) {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at);
  const port = Number(address.slice(at + 1));
  const sessions = new Map();
  const http = createServer(async (req, res) => {
    try {
      if (new URL(req.url, 'http://x').pathname !== '/mcp') {
        res.writeHead(404).end();
        return;
      }
      const sid = req.headers['mcp-session-id'];
      let transport = sid ? sessions.get(sid) : undefined;
      if (sid && !transport) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } }));
        return;
      }
      if (!transport) {
        const created = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => sessions.set(id, created),
        });
        created.onclose = () => created.sessionId && sessions.delete(created.sessionId);
        await build().connect(created);
        transport = created;
      }
      // No parsed body: the SDK reads and parses the bytes itself (JSON.parse).
      await transport.handleRequest(req, res);
    } catch (error) {
      process.stderr.write(`request failed: ${error?.stack ?? error}\n`);
      if (!res.headersSent) res.writeHead(500).end();
    }
  });
  await new Promise((resolve, reject) => http.once('error', reject).listen(port, host, resolve));
  process.stderr.write(`listening on http://${host}:${http.address().port}/mcp\n`);
}

if (opts.http) {
  await serveHttp(opts.http);
} else {
  const transport = new StdioServerTransport();
  transport.onerror = (error) => process.stderr.write(`stdio: ${error?.message ?? error}\n`);
  await build().connect(transport);
}
