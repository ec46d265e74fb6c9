// The official TypeScript SDK's OAuth client (@modelcontextprotocol/sdk, tests-e2e/package.json)
// against mcpgate's own authorization server, end to end over real HTTP. See tests-e2e/ts_oauth.sh.
//
// The SDK's `OAuthClientProvider` interface, implemented in memory (a public client, a loopback
// redirect URI, authorization_code + refresh_token), is the `authProvider` of the SDK's
// StreamableHTTPClientTransport, used the way the SDK documents it:
//   1. client.connect() without a token: the gateway answers 401, the transport runs auth():
//      RFC 9728 + RFC 8414 discovery, dynamic client registration, PKCE, and then calls
//      redirectToAuthorization(url). That method is the person's browser: it fetches the URL with
//      redirect: 'manual', signed in by `X-API-Key: <key>` (the gateway's header sign-in), expects
//      a 303 to the redirect URI and reads code, state and iss from its Location (iss must be the
//      issuer, state the one sent). connect() then rejects with UnauthorizedError.
//   2. transport.finishAuth(code) exchanges the code; a new transport + client connect with the
//      token: initialize, tools/list, echo, the gateway's whoami (the key's user, auth_method
//      "oauth").
//   3. Refresh, forced: the stored access token is replaced by a tampered copy, so the gateway
//      answers 401; the transport runs auth() again, which refreshes with the refresh token (no
//      new sign-in), both tokens rotate, and whoami succeeds. Then auth() is called directly and
//      refreshes once more (AUTHORIZED, rotated again), and the next call uses the new token.
//
// Each check prints `PASS ts_oauth/<name>` or `FAIL ts_oauth/<name>: reason` (appended to
// $E2E_RESULTS when set); exit status 1 if any check failed. The key comes from $OAUTH_E2E_KEY.
//
//   OAUTH_E2E_KEY=mcp_… node ts_oauth.mjs --url http://127.0.0.1:PORT/mcp --expect-user USER \
//       --node-modules DIR [--redirect-port N] [--timeout 20] [--secrets-out FILE]
// DIR holds node_modules/@modelcontextprotocol/sdk (lib.sh's ensure_npm_tools: $NPM_TOOLS_DIR).

import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import process from 'node:process';

const P = 'ts_oauth';
const results = [];
const secrets = [];

function parseArgs(argv) {
  const o = { url: null, expectUser: null, nodeModules: process.env.TS_OAUTH_NODE_MODULES, redirectPort: 53683, timeout: 20, secretsOut: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--url') o.url = argv[++i];
    else if (a === '--expect-user') o.expectUser = argv[++i];
    else if (a === '--node-modules') o.nodeModules = argv[++i];
    else if (a === '--redirect-port') o.redirectPort = Number(argv[++i]);
    else if (a === '--timeout') o.timeout = Number(argv[++i]);
    else if (a === '--secrets-out') o.secretsOut = argv[++i];
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.url || !o.expectUser || !o.nodeModules) throw new Error('--url, --expect-user and --node-modules are required');
  return o;
}

function record(name, ok, reason = '') {
  const line = ok ? `PASS ${P}/${name}` : `FAIL ${P}/${name}: ${reason}`;
  results.push({ name, ok });
  console.log(line);
  if (process.env.E2E_RESULTS) appendFileSync(process.env.E2E_RESULTS, `${line}\n`);
  return ok;
}
const check = (name, cond, reason) => record(name, !!cond, cond ? '' : reason());
const keep = (s) => { if (s) secrets.push(s); };
const describe = (e) => (e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e));

function jwtClaims(token) {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
  } catch {
    return {};
  }
}

function texts(result) {
  return (result?.content ?? []).filter((c) => c.type === 'text').map((c) => c.text);
}
function whoamiOf(result) {
  if (result?.structuredContent && typeof result.structuredContent === 'object') return result.structuredContent;
  for (const t of texts(result)) {
    try {
      return JSON.parse(t);
    } catch { /* not JSON */ }
  }
  return {};
}

function withTimeout(promise, seconds, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${seconds}s`)), seconds * 1000);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

const opts = parseArgs(process.argv.slice(2));
// The SDK from the test cache, through its package exports (CommonJS build: one module graph,
// so `instanceof UnauthorizedError` sees the class the transport throws).
const require = createRequire(path.join(path.resolve(opts.nodeModules), 'package.json'));
const { Client } = require('@modelcontextprotocol/sdk/client/index.js');
const { StreamableHTTPClientTransport } = require('@modelcontextprotocol/sdk/client/streamableHttp.js');
const { auth, UnauthorizedError } = require('@modelcontextprotocol/sdk/client/auth.js');
const sdkVersion = JSON.parse(readFileSync(path.join(path.resolve(opts.nodeModules), 'node_modules/@modelcontextprotocol/sdk/package.json'), 'utf8')).version;

const key = process.env.OAUTH_E2E_KEY ?? '';
const url = opts.url.replace(/\/+$/, '');
const base = url.endsWith('/mcp') ? url.slice(0, -'/mcp'.length) : url;
const issuer = base; // public_url = the gateway's own address; the issuer defaults to it
const redirectUrl = `http://127.0.0.1:${opts.redirectPort}/callback`;

// Every HTTP exchange the SDK makes (MCP, discovery, registration, token), for the checks.
const traffic = [];
async function loggingFetch(input, init) {
  const target = input instanceof Request ? input.url : String(input);
  const method = init?.method ?? (input instanceof Request ? input.method : 'GET');
  const res = await fetch(input, init);
  let grant = null;
  const body = init?.body;
  if (typeof body === 'string' || body instanceof URLSearchParams) grant = new URLSearchParams(String(body)).get('grant_type');
  traffic.push({ method, path: new URL(target).pathname, status: res.status, grant });
  return res;
}
const tokenPosts = () => traffic.filter((t) => t.method === 'POST' && t.path === '/token');

/** The SDK's OAuthClientProvider, in memory; redirectToAuthorization is the headless browser. */
class MemoryProvider {
  constructor() {
    this.client = undefined;
    this.tokenSet = undefined;
    this.history = [];
    this.verifier = undefined;
    this.sentState = undefined;
    this.visits = [];
    this.pendingCode = null;
  }
  get redirectUrl() {
    return redirectUrl;
  }
  get clientMetadata() {
    return {
      client_name: 'mcpgate e2e (TypeScript SDK)',
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this.sentState = randomBytes(16).toString('hex');
    return this.sentState;
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
  }
  tokens() {
    return this.tokenSet;
  }
  saveTokens(tokens) {
    this.tokenSet = tokens;
    this.history.push(tokens);
    keep(tokens.access_token);
    keep(tokens.refresh_token);
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    if (!this.verifier) throw new Error('no code verifier saved');
    return this.verifier;
  }
  async redirectToAuthorization(authorizationUrl) {
    const u = new URL(authorizationUrl);
    this.visits.push(u.href);
    const n = this.visits.length;
    const q = u.searchParams;
    check(`sign-in-${n}/authorize-request`,
      u.origin === issuer && u.pathname === '/authorize'
        && q.get('response_type') === 'code'
        && q.get('code_challenge_method') === 'S256' && !!q.get('code_challenge')
        && q.get('redirect_uri') === redirectUrl
        && q.get('state') === this.sentState
        && q.get('client_id') === this.client?.client_id
        && q.get('resource') === url,
      () => `the SDK's authorization URL: ${[...q.entries()].filter(([k]) => k !== 'code_challenge').map(([k, v]) => `${k}=${v}`).join(' ')}`
        + ` (want S256, state ${this.sentState}, redirect ${redirectUrl}, resource ${url})`);
    console.log(`  authorize: resource=${q.get('resource')} scope=${q.get('scope')}`);
    // The browser: signed in by header, not following the redirect.
    const r = await fetch(u, { redirect: 'manual', headers: { 'X-API-Key': key } });
    const loc = r.headers.get('location') ?? '';
    let back = new URLSearchParams();
    try {
      back = new URL(loc).searchParams;
    } catch { /* no Location */ }
    const body = r.status === 303 ? '' : (await r.text()).slice(0, 300);
    const ok = check(`sign-in-${n}/303-with-code`,
      r.status === 303 && loc.startsWith(`${redirectUrl}?`) && back.getAll('code').length === 1 && !!back.get('code') && !back.has('error'),
      () => `GET /authorize with X-API-Key: ${r.status}, Location ${loc.replace(/code=[^&]*/, 'code=<code>')}, body ${JSON.stringify(body)}`);
    check(`sign-in-${n}/iss`, back.getAll('iss').length === 1 && back.get('iss') === issuer,
      () => `iss ${JSON.stringify(back.getAll('iss'))}, expected the issuer ${issuer}`);
    check(`sign-in-${n}/state`, back.get('state') === q.get('state'),
      () => `state ${back.get('state')} came back, ${q.get('state')} was sent`);
    if (!ok) throw new Error(`the sign-in did not redirect back with a code (${r.status})`);
    this.pendingCode = back.get('code');
    keep(this.pendingCode);
  }
}

async function whoamiCheck(client, name) {
  try {
    const r = await withTimeout(client.callTool({ name: 'whoami', arguments: {} }), opts.timeout, 'whoami');
    const who = whoamiOf(r);
    return check(name, !r.isError && who.user_id === opts.expectUser && who.auth_method === 'oauth',
      () => `want user_id ${opts.expectUser} and auth_method oauth, got ${JSON.stringify(who)}`);
  } catch (e) {
    return record(name, false, describe(e));
  }
}

function tamper(token) {
  const tail = token.slice(-6) === 'AAAAAA' ? 'BBBBBB' : 'AAAAAA';
  return token.slice(0, -6) + tail;
}

async function run() {
  if (!key) {
    record('setup', false, 'OAUTH_E2E_KEY is not set');
    return;
  }
  console.log(`  @modelcontextprotocol/sdk ${sdkVersion} against ${url}`);
  const provider = new MemoryProvider();
  const open = () => {
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider, fetch: loggingFetch });
    const client = new Client({ name: 'mcpgate-e2e-ts-oauth', version: '0' });
    return { transport, client };
  };

  // 1. No token yet: connect() signs in through the "browser" and rejects with UnauthorizedError.
  let { transport, client } = open();
  let first = null;
  try {
    await withTimeout(client.connect(transport), opts.timeout * 2, 'connect');
  } catch (e) {
    first = e;
  }
  const registered = traffic.filter((t) => t.method === 'POST' && t.path === '/register').map((t) => t.status);
  check('unauthorized-error',
    first instanceof UnauthorizedError && provider.visits.length === 1 && !!provider.pendingCode,
    () => `connect() without a token: ${first ? describe(first) : 'connected'}, browser visits ${provider.visits.length}`);
  check('registered', !!provider.client?.client_id && registered.length === 1 && registered[0] === 201,
    () => `DCR: client_id ${provider.client?.client_id}, POST /register statuses ${JSON.stringify(registered)}`);
  const challenge = traffic.find((t) => t.path === '/mcp');
  check('no-token-401', challenge?.status === 401, () => `the first MCP request: ${JSON.stringify(challenge)}`);
  if (!provider.pendingCode) return;
  await client.close().catch(() => {});

  // 2. finishAuth(code): the code exchange; then connect with the token.
  try {
    await withTimeout(transport.finishAuth(provider.pendingCode), opts.timeout, 'finishAuth');
    const t = provider.tokens();
    const claims = t ? jwtClaims(t.access_token) : {};
    const exchange = tokenPosts().map((x) => `${x.grant}:${x.status}`);
    check('finish-auth/tokens',
      t && String(t.token_type).toLowerCase() === 'bearer' && !!t.refresh_token
        && claims.iss === issuer && (claims.aud === url || (Array.isArray(claims.aud) && claims.aud.includes(url)))
        && exchange.length === 1 && exchange[0] === 'authorization_code:200',
      () => `token_type ${t?.token_type}, refresh token ${!!t?.refresh_token}, claims iss=${claims.iss} aud=${JSON.stringify(claims.aud)}, POST /token ${JSON.stringify(exchange)}`);
    if (t) console.log(`  granted scope ${JSON.stringify(t.scope)}, expires_in ${t.expires_in}`);
  } catch (e) {
    record('finish-auth/tokens', false, describe(e));
    return;
  }
  ({ transport, client } = open());
  try {
    await withTimeout(client.connect(transport), opts.timeout, 'connect');
    record('connect', true);
    console.log(`  server ${JSON.stringify(client.getServerVersion())}`);
  } catch (e) {
    record('connect', false, describe(e));
    return;
  }
  try {
    const listed = await withTimeout(client.listTools(), opts.timeout, 'tools/list');
    const names = listed.tools.map((t) => t.name);
    check('tools-list', names.includes('echo'), () => `echo not listed: ${JSON.stringify(names)}`);
  } catch (e) {
    record('tools-list', false, describe(e));
  }
  const text = "hello through mcpgate's OAuth ✓ (TypeScript)";
  try {
    const r = await withTimeout(client.callTool({ name: 'echo', arguments: { text } }), opts.timeout, 'echo');
    check('echo', !r.isError && texts(r).some((t) => t.includes(text)), () => `got ${JSON.stringify(r).slice(0, 300)}`);
  } catch (e) {
    record('echo', false, describe(e));
  }
  await whoamiCheck(client, 'whoami');

  // 3a. Forced refresh through the transport: the stored access token no longer verifies.
  const old = provider.tokens();
  const visitsBefore = provider.visits.length;
  let mark = tokenPosts().length;
  provider.tokenSet = { ...old, access_token: tamper(old.access_token) };
  await whoamiCheck(client, 'after-refresh/whoami');
  let now = provider.tokens();
  let refreshes = tokenPosts().slice(mark).map((x) => `${x.grant}:${x.status}`);
  const refused = traffic.filter((t) => t.path === '/mcp' && t.status === 401).length;
  check('refresh/rotated',
    refreshes.length === 1 && refreshes[0] === 'refresh_token:200'
      && now.access_token !== old.access_token && !!now.refresh_token && now.refresh_token !== old.refresh_token
      && provider.visits.length === visitsBefore,
    () => `POST /token since the access token was spoilt ${JSON.stringify(refreshes)}, access token changed ${now.access_token !== old.access_token},`
      + ` refresh token changed ${now.refresh_token !== old.refresh_token}, sign-ins ${provider.visits.length} (was ${visitsBefore})`);
  check('refresh/tampered-token-refused', refused >= 2, () => `only ${refused} MCP request(s) were refused with 401 (the first sign-in and the tampered token)`);

  // 3b. auth() called directly: it refreshes (the stored tokens carry a refresh token).
  const before = provider.tokens();
  mark = tokenPosts().length;
  try {
    const result = await withTimeout(auth(provider, { serverUrl: url, fetchFn: loggingFetch }), opts.timeout, 'auth()');
    now = provider.tokens();
    refreshes = tokenPosts().slice(mark).map((x) => `${x.grant}:${x.status}`);
    check('auth-direct/refreshed',
      result === 'AUTHORIZED' && refreshes.length === 1 && refreshes[0] === 'refresh_token:200'
        && now.access_token !== before.access_token && now.refresh_token !== before.refresh_token
        && provider.visits.length === visitsBefore,
      () => `auth() returned ${result}, POST /token ${JSON.stringify(refreshes)}, rotated ${now.refresh_token !== before.refresh_token}, sign-ins ${provider.visits.length}`);
  } catch (e) {
    record('auth-direct/refreshed', false, describe(e));
  }
  mark = traffic.length;
  await whoamiCheck(client, 'auth-direct/whoami');
  const sent = traffic.slice(mark).filter((t) => t.path === '/mcp').map((t) => t.status);
  check('auth-direct/new-token-used', sent.length >= 1 && sent.every((s) => s === 200),
    () => `MCP statuses after the direct refresh: ${JSON.stringify(sent)} (a 401 means the old token was still sent)`);
  await client.close().catch(() => {});
}

try {
  await run();
} catch (e) {
  console.error(e);
  record('run', false, `unexpected exception: ${describe(e)}`);
} finally {
  if (opts.secretsOut) writeFileSync(opts.secretsOut, secrets.map((s) => `${s}\n`).join(''));
  console.log(`  traffic: ${traffic.map((t) => `${t.method} ${t.path}${t.grant ? `(${t.grant})` : ''} ${t.status}`).join(', ')}`);
}
process.exit(results.some((r) => !r.ok) || results.length === 0 ? 1 : 0);
