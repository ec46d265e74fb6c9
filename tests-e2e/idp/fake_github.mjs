// A stand-in for GitHub's OAuth web flow and the few REST endpoints a sign-in needs, for mcpgate's
// end-to-end tests. Plain node:http, no dependencies, everything in memory, on 127.0.0.1. Both
// "github.com" (the OAuth pages) and "api.github.com" (REST) are this one server; REST paths are
// also served under /api/v3 as GitHub Enterprise Server has them. See tests-e2e/idp/README.md.
//
//   node fake_github.mjs --redirect-uris URL[,URL...] --accounts FILE \
//       [--port N] [--client-id ID] [--client-secret SECRET]
//
// The environment works too (a flag wins): PORT, CLIENT_ID, CLIENT_SECRET, REDIRECT_URIS,
// ACCOUNTS_FILE. Once listening it prints exactly one line on stdout, `READY http://127.0.0.1:<port>`
// (PORT=0 lets the OS pick the port), and logs requests that fail to stderr.
//
// Behaviour follows GitHub's documentation for OAuth apps ("Authorizing OAuth apps", "Troubleshooting
// authorization request errors", "... access token request errors") and the REST reference:
//   GET  /login/oauth/authorize     client_id, redirect_uri, state, scope, login, code_challenge(+_method=S256)
//                                   no page: approves at once as the account `login` names (the first
//                                   account without it); login=deny -> error=access_denied
//   POST /login/oauth/access_token  client_id + client_secret (form, JSON, query or Basic), code,
//                                   redirect_uri, code_verifier; answers 200 even for errors, as
//                                   JSON (Accept: application/json), XML (application/xml) or a form
//   GET  /user, /user/emails, /user/orgs, /user/teams, /user/memberships/orgs/{org},
//        /orgs/{org}/members/{user}, /orgs/{org}/public_members/{user}
//   DELETE /applications/{client_id}/token  (Basic client auth, JSON {"access_token": ...}) revokes
// REST calls need `Authorization: Bearer <token>` or `token <token>`, and a User-Agent header
// (GitHub answers 403 without one). Token scopes are enforced like GitHub does for OAuth apps.

import http from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import process from 'node:process';

const DENY = 'deny';
const DOCS = 'https://docs.github.com';
const CREATED = '2020-01-01T00:00:00Z';
const CODE_TTL_MS = 10 * 60 * 1000; // GitHub: "The temporary code will expire after 10 minutes."

// ---- options ----------------------------------------------------------------------------------
const FLAGS = {
  '--port': 'PORT',
  '--client-id': 'CLIENT_ID',
  '--client-secret': 'CLIENT_SECRET',
  '--redirect-uris': 'REDIRECT_URIS',
  '--accounts': 'ACCOUNTS_FILE',
};

function options(argv, env) {
  const o = {};
  for (const name of Object.values(FLAGS)) if (env[name] !== undefined && env[name] !== '') o[name] = env[name];
  for (let i = 0; i < argv.length; i++) {
    const name = FLAGS[argv[i]];
    if (!name || i + 1 >= argv.length) throw new Error(`unknown option or missing value: ${argv[i]}`);
    o[name] = argv[++i];
  }
  const out = {
    port: Number(o.PORT ?? 0),
    clientId: o.CLIENT_ID ?? 'mcpgate-test',
    clientSecret: o.CLIENT_SECRET ?? 'mcpgate-test-secret',
    callbacks: (o.REDIRECT_URIS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    accountsFile: o.ACCOUNTS_FILE,
  };
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) throw new Error(`bad port ${o.PORT}`);
  if (!out.callbacks.length) throw new Error('--redirect-uris (REDIRECT_URIS) is required: the app\'s callback URL(s)');
  for (const c of out.callbacks) new URL(c); // throws on a malformed one
  if (!out.accountsFile) throw new Error('--accounts (ACCOUNTS_FILE) is required');
  return out;
}

// ---- accounts ---------------------------------------------------------------------------------
// A JSON array of {login, id?, name?, email?, emails?, orgs?, teams?}:
//   email   the public profile email that /user shows (null when absent)
//   emails  [{email, primary, verified, visibility?}]; default: `email` as the primary, verified one
//   orgs    ["acme", {"login": "initech", "public": true, "role": "admin"}]; memberships are private
//           and "member" unless said otherwise
//   teams   [{"org": "acme", "slug": "platform", "name": "Platform"}]; a team's org is joined too
// Read again when the file changes (a broken edit keeps the last good list).
function normalizeAccounts(list) {
  if (!Array.isArray(list) || list.length === 0) throw new Error('the accounts file must hold a non-empty JSON array');
  const seen = new Set();
  return list.map((a, i) => {
    if (typeof a?.login !== 'string' || !/^[A-Za-z0-9-]+$/.test(a.login)) throw new Error('every account needs a "login" (letters, digits, -)');
    if (a.login.toLowerCase() === DENY) throw new Error(`"${DENY}" is reserved (login=${DENY} refuses the authorization)`);
    if (seen.has(a.login.toLowerCase())) throw new Error(`duplicate login ${a.login}`);
    seen.add(a.login.toLowerCase());
    const orgs = new Map();
    for (const o of a.orgs ?? []) {
      const org = typeof o === 'string' ? { login: o } : o;
      orgs.set(org.login.toLowerCase(), { login: org.login, public: org.public === true, role: org.role ?? 'member' });
    }
    const teams = (a.teams ?? []).map((t) => ({ org: t.org, slug: t.slug, name: t.name ?? t.slug, description: t.description ?? null }));
    for (const t of teams) if (!orgs.has(t.org.toLowerCase())) orgs.set(t.org.toLowerCase(), { login: t.org, public: false, role: 'member' });
    const emails = a.emails ?? (a.email ? [{ email: a.email, primary: true, verified: true, visibility: 'public' }] : []);
    return {
      id: Number.isInteger(a.id) ? a.id : 1000 + i,
      login: a.login,
      name: a.name ?? null,
      email: a.email ?? null,
      emails: emails.map((e) => ({ email: e.email, primary: e.primary === true, verified: e.verified === true, visibility: e.visibility ?? (e.primary ? 'private' : null) })),
      orgs,
      teams,
    };
  });
}

function accountsLoader(file) {
  let stamp = '';
  let list = null;
  return () => {
    try {
      const st = statSync(file);
      const now = `${st.mtimeMs}:${st.size}`;
      if (now !== stamp) {
        list = normalizeAccounts(JSON.parse(readFileSync(file, 'utf8')));
        stamp = now;
      }
    } catch (err) {
      if (!list) throw err;
      console.error(`[github] accounts file ${file} unreadable, keeping the last good one: ${err.message}`);
    }
    return list;
  };
}

// ---- small helpers ----------------------------------------------------------------------------
const BASE62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function base62(n) {
  return [...randomBytes(n)].map((b) => BASE62[b % 62]).join('');
}
function sameSecret(a, b) {
  const x = Buffer.from(String(a ?? ''));
  const y = Buffer.from(String(b ?? ''));
  return x.length === y.length && timingSafeEqual(x, y);
}
// GitHub's legacy global node ids are base64("<len>:<Type><id>").
function nodeId(type, id) {
  return Buffer.from(`0${type.length}:${type}${id}`).toString('base64');
}
// A stable id for an org or team named only by its login/slug.
function stableId(s) {
  return 100000 + (parseInt(createHash('sha256').update(s.toLowerCase()).digest('hex').slice(0, 7), 16) % 900000);
}
function readBody(req, limit = 64 * 1024) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
function send(res, status, body, headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}
function redirect(res, location) {
  res.writeHead(302, { Location: location, 'Content-Length': 0 });
  res.end();
}
function withParams(url, params) {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, v);
  return u.href;
}
// application/x-www-form-urlencoded decoding of one value (the raw value if it is not encoded).
function formDecode(s) {
  try { return decodeURIComponent(s.replace(/\+/g, ' ')); } catch { return s; }
}
function scopesOf(s) {
  return [...new Set(String(s ?? '').split(/[\s,]+/).filter(Boolean))];
}

// GitHub's redirect URL rule: same scheme and host; the path is the callback's path or below it;
// the port must match too, except on a loopback host, where any port is accepted.
function redirectAllowed(candidate, callbacks) {
  let r;
  try { r = new URL(candidate); } catch { return false; }
  return callbacks.some((c) => {
    const cb = new URL(c);
    const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(cb.hostname);
    const base = cb.pathname.replace(/\/$/, '');
    return r.protocol === cb.protocol && r.hostname === cb.hostname
      && (loopback || r.port === cb.port)
      && (r.pathname === cb.pathname || r.pathname === base || r.pathname.startsWith(`${base}/`));
  });
}

// ---- the server -------------------------------------------------------------------------------
function createServer(opts, accounts) {
  const codes = new Map(); // code -> {login, scopes, redirectUri, challenge, expires}
  const tokens = new Map(); // token -> {login, scopes}
  let base = ''; // http://127.0.0.1:PORT, set once listening

  const findAccount = (login) => accounts().find((a) => a.login.toLowerCase() === String(login).toLowerCase());

  // ---- OAuth: authorize ------------------------------------------------------------------------
  function authorize(req, res, q) {
    if (q.get('client_id') !== opts.clientId) return send(res, 404, 'Not Found (unknown client_id)\n');
    const state = q.get('state') ?? undefined;
    const redirectUri = q.get('redirect_uri') || opts.callbacks[0];
    if (!redirectAllowed(redirectUri, opts.callbacks)) {
      // GitHub sends the user to the registered callback with this error.
      return redirect(res, withParams(opts.callbacks[0], {
        error: 'redirect_uri_mismatch',
        error_description: 'The redirect_uri MUST match the registered callback URL for this application.',
        error_uri: `${DOCS}/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#redirect-uri-mismatch`,
        state,
      }));
    }
    const challenge = q.get('code_challenge');
    const method = q.get('code_challenge_method');
    if (challenge !== null || method !== null) {
      if (method !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(challenge ?? '')) {
        return redirect(res, withParams(redirectUri, {
          error: 'invalid_request',
          error_description: 'code_challenge must be a 43-character S256 challenge and code_challenge_method must be S256.',
          state,
        }));
      }
    }
    const login = q.get('login');
    const account = login ? findAccount(login) : accounts()[0];
    if (!account) {
      return redirect(res, withParams(redirectUri, {
        error: 'access_denied',
        error_description: login === DENY ? 'The user has denied your application access.' : `No test account has the login ${login}.`,
        error_uri: `${DOCS}/apps/managing-oauth-apps/troubleshooting-authorization-request-errors/#access-denied`,
        state,
      }));
    }
    const code = randomBytes(10).toString('hex'); // 20 hex characters, like GitHub's
    codes.set(code, {
      login: account.login,
      scopes: scopesOf(q.get('scope')),
      redirectUri,
      challenge,
      expires: Date.now() + CODE_TTL_MS,
    });
    return redirect(res, withParams(redirectUri, { code, state }));
  }

  // ---- OAuth: access_token ---------------------------------------------------------------------
  function tokenAnswer(req, res, fields) {
    const accept = String(req.headers.accept ?? '');
    if (accept.includes('application/json')) return send(res, 200, fields);
    if (accept.includes('application/xml')) {
      const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      const xml = `<OAuth>${Object.entries(fields).map(([k, v]) => `<${k}>${esc(v)}</${k}>`).join('')}</OAuth>`;
      res.writeHead(200, { 'Content-Type': 'application/xml; charset=utf-8' });
      return res.end(xml);
    }
    const form = new URLSearchParams(fields).toString();
    res.writeHead(200, { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' });
    return res.end(form);
  }

  function tokenError(req, res, error, description, anchor) {
    console.error(`[github] access_token: ${error}: ${description}`);
    return tokenAnswer(req, res, {
      error,
      error_description: description,
      error_uri: `${DOCS}/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#${anchor}`,
    });
  }

  async function accessToken(req, res, q) {
    if (req.method !== 'POST') return send(res, 404, { message: 'Not Found' });
    // Parameters from the query string, then the body (form or JSON), then Basic credentials.
    const p = Object.fromEntries(q);
    const raw = await readBody(req);
    const type = String(req.headers['content-type'] ?? '');
    if (type.includes('application/json') && raw.trim()) Object.assign(p, JSON.parse(raw));
    else if (raw) Object.assign(p, Object.fromEntries(new URLSearchParams(raw)));
    // Basic credentials count whether or not the client form-encoded them first (RFC 6749 2.3.1).
    const creds = [[p.client_id, p.client_secret]];
    const auth = String(req.headers.authorization ?? '');
    if (/^basic /i.test(auth)) {
      const decoded = Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0) {
        const [id, secret] = [decoded.slice(0, colon), decoded.slice(colon + 1)];
        creds.push([id, secret], [formDecode(id), formDecode(secret)]);
      }
    }
    const clientOk = creds.some(([id, secret]) => id === opts.clientId && sameSecret(secret, opts.clientSecret));

    if (p.grant_type !== undefined && p.grant_type !== 'authorization_code') {
      return tokenError(req, res, 'unsupported_grant_type', `grant_type ${p.grant_type} is not supported here.`, 'unsupported-grant-type');
    }
    if (!clientOk) {
      return tokenError(req, res, 'incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.', 'incorrect-client-credentials');
    }
    const grant = codes.get(p.code ?? '');
    codes.delete(p.code ?? ''); // a code is good for one try
    if (!grant || grant.expires < Date.now()) {
      return tokenError(req, res, 'bad_verification_code', 'The code passed is incorrect or expired.', 'bad-verification-code');
    }
    if (p.redirect_uri !== undefined && p.redirect_uri !== grant.redirectUri) {
      return tokenError(req, res, 'redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.', 'redirect-uri-mismatch');
    }
    // PKCE (GitHub does not document this error; a code that cannot be proven is a bad code).
    if (grant.challenge !== null || p.code_verifier !== undefined) {
      const verifier = String(p.code_verifier ?? '');
      const ok = grant.challenge !== null && /^[A-Za-z0-9._~-]{43,128}$/.test(verifier)
        && createHash('sha256').update(verifier).digest('base64url') === grant.challenge;
      if (!ok) {
        return tokenError(req, res, 'bad_verification_code', 'The code passed is incorrect or expired (code_verifier does not match the code_challenge).', 'bad-verification-code');
      }
    }
    const token = `gho_${base62(36)}`;
    tokens.set(token, { login: grant.login, scopes: grant.scopes });
    return tokenAnswer(req, res, { access_token: token, token_type: 'bearer', scope: grant.scopes.join(',') });
  }

  // ---- REST --------------------------------------------------------------------------------------
  const orgObject = (login) => {
    const id = stableId(`org:${login}`);
    return {
      login,
      id,
      node_id: nodeId('Organization', id),
      url: `${base}/orgs/${login}`,
      repos_url: `${base}/orgs/${login}/repos`,
      events_url: `${base}/orgs/${login}/events`,
      hooks_url: `${base}/orgs/${login}/hooks`,
      issues_url: `${base}/orgs/${login}/issues`,
      members_url: `${base}/orgs/${login}/members{/member}`,
      public_members_url: `${base}/orgs/${login}/public_members{/member}`,
      avatar_url: `${base}/avatars/${login}`,
      description: null,
    };
  };
  const userObject = (a) => ({
    login: a.login,
    id: a.id,
    node_id: nodeId('User', a.id),
    avatar_url: `${base}/avatars/${a.login}`,
    gravatar_id: '',
    url: `${base}/users/${a.login}`,
    html_url: `${base}/${a.login}`,
    organizations_url: `${base}/users/${a.login}/orgs`,
    repos_url: `${base}/users/${a.login}/repos`,
    type: 'User',
    site_admin: false,
    name: a.name,
    company: null,
    blog: '',
    location: null,
    email: a.email,
    hireable: null,
    bio: null,
    twitter_username: null,
    public_repos: 0,
    public_gists: 0,
    followers: 0,
    following: 0,
    created_at: CREATED,
    updated_at: CREATED,
  });
  const teamObject = (t, orgLogin) => {
    const id = stableId(`team:${orgLogin}/${t.slug}`);
    return {
      id,
      node_id: nodeId('Team', id),
      url: `${base}/organizations/${stableId(`org:${orgLogin}`)}/team/${id}`,
      html_url: `${base}/orgs/${orgLogin}/teams/${t.slug}`,
      name: t.name,
      slug: t.slug,
      description: t.description,
      privacy: 'closed',
      notification_setting: 'notifications_enabled',
      permission: 'pull',
      members_url: `${base}/organizations/${stableId(`org:${orgLogin}`)}/team/${id}/members{/member}`,
      repositories_url: `${base}/organizations/${stableId(`org:${orgLogin}`)}/team/${id}/repos`,
      parent: null,
      members_count: accounts().filter((a) => a.teams.some((x) => x.org.toLowerCase() === orgLogin.toLowerCase() && x.slug === t.slug)).length,
      repos_count: 0,
      created_at: CREATED,
      updated_at: CREATED,
      organization: { ...orgObject(orgLogin), name: orgLogin, type: 'Organization', created_at: CREATED, updated_at: CREATED },
    };
  };

  const apiError = (res, status, message, headers = {}) => send(res, status, { message, documentation_url: `${DOCS}/rest`, status: String(status) }, headers);

  // A list with GitHub's per_page/page and Link header.
  function sendList(res, q, items, headers, path) {
    const perPage = Math.min(Math.max(Number(q.get('per_page') ?? 30) || 30, 1), 100);
    const page = Math.max(Number(q.get('page') ?? 1) || 1, 1);
    const last = Math.max(Math.ceil(items.length / perPage), 1);
    const links = [];
    const at = (n) => `<${base}${path}?per_page=${perPage}&page=${n}>`;
    if (page < last) links.push(`${at(page + 1)}; rel="next"`, `${at(last)}; rel="last"`);
    if (page > 1) links.push(`${at(1)}; rel="first"`, `${at(page - 1)}; rel="prev"`);
    return send(res, 200, items.slice((page - 1) * perPage, page * perPage), { ...headers, ...(links.length ? { Link: links.join(', ') } : {}) });
  }

  function api(req, res, path, q) {
    if (!req.headers['user-agent']) {
      return send(res, 403, 'Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). Check https://developer.github.com for other possible causes.\n');
    }
    const auth = String(req.headers.authorization ?? '');
    const m = /^(?:bearer|token)\s+(\S+)\s*$/i.exec(auth);
    if (!m) return apiError(res, 401, 'Requires authentication');
    const tok = tokens.get(m[1]);
    const me = tok && findAccount(tok.login);
    if (!me) return apiError(res, 401, 'Bad credentials');
    const scopes = new Set(tok.scopes);
    const headers = { 'X-OAuth-Scopes': tok.scopes.join(', '), 'X-GitHub-Media-Type': 'github.v3; format=json' };
    const has = (...any) => any.some((s) => scopes.has(s));
    const readOrg = () => has('user', 'read:org', 'write:org', 'admin:org');
    const accepted = (s) => ({ ...headers, 'X-Accepted-OAuth-Scopes': s });
    if (req.method !== 'GET' && req.method !== 'HEAD') return apiError(res, 404, 'Not Found', headers);

    let mm;
    if (path === '/user') return send(res, 200, userObject(me), accepted(''));
    if (path === '/user/emails') {
      // Without user or user:email GitHub answers 404, not 403.
      if (!has('user', 'user:email')) return apiError(res, 404, 'Not Found', accepted('user, user:email'));
      return sendList(res, q, me.emails, accepted('user, user:email'), path);
    }
    if (path === '/user/orgs') {
      if (!readOrg()) return apiError(res, 403, 'You need at least read:org scope or user scope to list your organizations.', accepted('admin:org, read:org, repo, user, write:org'));
      return sendList(res, q, [...me.orgs.values()].map((o) => orgObject(o.login)), accepted('admin:org, read:org, repo, user, write:org'), path);
    }
    if (path === '/user/teams') {
      if (!has('user', 'repo', 'read:org', 'write:org', 'admin:org')) return apiError(res, 403, 'Resource not accessible by integration', accepted('read:org, repo, user'));
      return sendList(res, q, me.teams.map((t) => teamObject(t, me.orgs.get(t.org.toLowerCase()).login)), accepted('read:org, repo, user'), path);
    }
    if ((mm = /^\/user\/memberships\/orgs\/([^/]+)$/.exec(path))) {
      const org = me.orgs.get(decodeURIComponent(mm[1]).toLowerCase());
      if (!readOrg()) return apiError(res, 403, 'Resource not accessible by integration', accepted('read:org, repo, user'));
      if (!org) return apiError(res, 404, 'Not Found', headers);
      return send(res, 200, {
        url: `${base}/orgs/${org.login}/memberships/${me.login}`,
        state: 'active',
        role: org.role,
        organization_url: `${base}/orgs/${org.login}`,
        organization: orgObject(org.login),
        user: userObject(me),
      }, headers);
    }
    if ((mm = /^\/orgs\/([^/]+)\/(members|public_members)\/([^/]+)$/.exec(path))) {
      const orgName = decodeURIComponent(mm[1]).toLowerCase();
      const user = findAccount(decodeURIComponent(mm[3]));
      const membership = user?.orgs.get(orgName);
      const orgKnown = accounts().some((a) => a.orgs.has(orgName));
      if (!orgKnown) return apiError(res, 404, 'Not Found', headers);
      if (mm[2] === 'public_members') {
        if (membership?.public) return send(res, 204, '', headers);
        return apiError(res, 404, 'Not Found', headers);
      }
      // Only an org member may see private memberships; anyone else is sent to public_members.
      if (!me.orgs.has(orgName)) return redirect(res, `${base}/orgs/${mm[1]}/public_members/${mm[3]}`);
      if (membership) return send(res, 204, '', headers);
      return apiError(res, 404, 'Not Found', headers);
    }
    return apiError(res, 404, 'Not Found', headers);
  }

  // DELETE /applications/{client_id}/token: the app revokes one of its tokens.
  async function revoke(req, res, clientId) {
    const auth = String(req.headers.authorization ?? '');
    const decoded = /^basic /i.test(auth) ? Buffer.from(auth.slice(6).trim(), 'base64').toString('utf8') : '';
    const colon = decoded.indexOf(':');
    if (clientId !== opts.clientId || colon < 0 || decoded.slice(0, colon) !== opts.clientId
      || !sameSecret(decoded.slice(colon + 1), opts.clientSecret)) {
      return apiError(res, 404, 'Not Found');
    }
    let body = {};
    try { body = JSON.parse((await readBody(req)) || '{}'); } catch { return apiError(res, 400, 'Problems parsing JSON'); }
    if (!tokens.delete(String(body.access_token ?? ''))) return apiError(res, 404, 'Not Found');
    res.writeHead(204);
    return res.end();
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const path = url.pathname.startsWith('/api/v3/') ? url.pathname.slice('/api/v3'.length) : url.pathname;
    const q = url.searchParams;
    let work;
    if (path === '/login/oauth/authorize' && req.method === 'GET') work = authorize(req, res, q);
    else if (path === '/login/oauth/access_token') work = accessToken(req, res, q);
    else if (req.method === 'DELETE' && /^\/applications\/[^/]+\/token$/.test(path)) work = revoke(req, res, decodeURIComponent(path.split('/')[2]));
    else work = api(req, res, path, q);
    Promise.resolve(work).catch((err) => {
      console.error(`[github] ${req.method} ${path}: ${err.stack || err}`);
      if (!res.headersSent) apiError(res, 400, `Bad request: ${err.message}`);
      else res.end();
    });
  });
  server.setBase = (b) => { base = b; };
  return server;
}

async function main() {
  const opts = options(process.argv.slice(2), process.env);
  const accounts = accountsLoader(opts.accountsFile);
  accounts(); // fail at start on a bad file
  const server = createServer(opts, accounts);
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${server.address().port}`;
  server.setBase(base);
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(`READY ${base}`);
}

main().catch((err) => {
  console.error(`[github] ${err.stack || err}`);
  process.exit(1);
});
