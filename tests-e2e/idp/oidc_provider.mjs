// A real OpenID Provider for mcpgate's end-to-end tests: panva's `oidc-provider` (pinned in
// tests-e2e/package.json), on 127.0.0.1, with one confidential client and a file of test accounts.
// See tests-e2e/idp/README.md for the whole story; tests-e2e/idp/smoke.sh runs it.
//
//   node oidc_provider.mjs --node-modules DIR --redirect-uris URI[,URI...] --accounts FILE \
//       [--port N] [--client-id ID] [--client-secret SECRET] [--client-auth-method METHOD] \
//       [--id-token-alg RS256|ES256] [--clients FILE] [--access-token-ttl SECONDS]
//
// Every option can also come from the environment (the flag wins): PORT, CLIENT_ID, CLIENT_SECRET,
// CLIENT_AUTH_METHOD, REDIRECT_URIS, ACCOUNTS_FILE, ID_TOKEN_ALG, CLIENTS_FILE, ACCESS_TOKEN_TTL,
// IDP_NODE_MODULES. DIR is the folder whose node_modules holds oidc-provider (tests-e2e/lib.sh's
// ensure_npm_tools: $NPM_TOOLS_DIR); without it a plain `import 'oidc-provider'` is tried.
//
// Once listening it prints exactly one line on stdout, `READY http://127.0.0.1:<port>` (the issuer;
// PORT=0 lets the OS pick the port), and logs to stderr. SIGTERM/SIGINT stop it.
//
// Sign-in needs no browser: the interaction step signs in the account that the authorization
// request's `login_hint` names (its sub or email; the first account when there is none) and grants
// every requested scope at once. `login_hint=deny` (or a hint that names no account) ends the
// request with error=access_denied at the client's redirect URI.

import http from 'node:http';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import path from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

const DENY = 'deny';

// ---- options ----------------------------------------------------------------------------------
const FLAGS = {
  '--port': 'PORT',
  '--client-id': 'CLIENT_ID',
  '--client-secret': 'CLIENT_SECRET',
  '--client-auth-method': 'CLIENT_AUTH_METHOD',
  '--redirect-uris': 'REDIRECT_URIS',
  '--accounts': 'ACCOUNTS_FILE',
  '--id-token-alg': 'ID_TOKEN_ALG',
  '--clients': 'CLIENTS_FILE',
  '--access-token-ttl': 'ACCESS_TOKEN_TTL',
  '--node-modules': 'IDP_NODE_MODULES',
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
    clientAuthMethod: o.CLIENT_AUTH_METHOD ?? 'client_secret_basic',
    redirectUris: (o.REDIRECT_URIS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    accountsFile: o.ACCOUNTS_FILE,
    idTokenAlg: o.ID_TOKEN_ALG ?? 'RS256',
    clientsFile: o.CLIENTS_FILE,
    accessTokenTtl: Number(o.ACCESS_TOKEN_TTL ?? 3600),
    nodeModules: o.IDP_NODE_MODULES,
  };
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) throw new Error(`bad port ${o.PORT}`);
  if (!out.redirectUris.length) throw new Error('--redirect-uris (REDIRECT_URIS) is required');
  if (!out.accountsFile) throw new Error('--accounts (ACCOUNTS_FILE) is required');
  if (!['RS256', 'ES256'].includes(out.idTokenAlg)) throw new Error('--id-token-alg must be RS256 or ES256');
  if (!(out.accessTokenTtl > 0)) throw new Error('--access-token-ttl must be a positive number of seconds');
  return out;
}

// ---- accounts ---------------------------------------------------------------------------------
// The file is a JSON array of accounts: {sub, email?, email_verified?, name?, given_name?,
// family_name?, preferred_username?, groups?, roles?}. A claim is issued only when the account
// has it, exactly as written. The file is read again when it changes (tests may edit it while
// the provider runs, e.g. to take a group away); a broken edit keeps the last good list.
const PROFILE_CLAIMS = ['name', 'given_name', 'family_name', 'preferred_username'];

function validateAccounts(list) {
  if (!Array.isArray(list) || list.length === 0) throw new Error('the accounts file must hold a non-empty JSON array');
  const seen = new Set();
  for (const a of list) {
    if (typeof a?.sub !== 'string' || a.sub === '') throw new Error('every account needs a non-empty string "sub"');
    if (a.sub === DENY) throw new Error(`"${DENY}" is reserved (login_hint=${DENY} refuses the sign-in)`);
    if (seen.has(a.sub)) throw new Error(`duplicate sub ${a.sub}`);
    seen.add(a.sub);
  }
  return list;
}

function accountsLoader(file) {
  let stamp = '';
  let list = null;
  return () => {
    try {
      const st = statSync(file);
      const now = `${st.mtimeMs}:${st.size}`;
      if (now !== stamp) {
        list = validateAccounts(JSON.parse(readFileSync(file, 'utf8')));
        stamp = now;
      }
    } catch (err) {
      if (!list) throw err;
      console.error(`[oidc] accounts file ${file} unreadable, keeping the last good one: ${err.message}`);
    }
    return list;
  };
}

// login_hint -> account: matches a sub first, then an email (case-insensitive); no hint -> the
// first account; `deny` or an unknown hint -> undefined.
function accountForHint(accounts, hint) {
  if (hint === undefined || hint === '') return accounts[0];
  if (hint === DENY) return undefined;
  return accounts.find((a) => a.sub === hint)
    ?? accounts.find((a) => typeof a.email === 'string' && a.email.toLowerCase() === hint.toLowerCase());
}

// ---- the provider's configuration -------------------------------------------------------------
function signingKeys() {
  // Fresh keys every start: RS256 (the default for ID tokens) and ES256 (for a client that asks).
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const tag = randomBytes(4).toString('hex');
  return [
    { ...rsa, kid: `rs256-${tag}`, alg: 'RS256', use: 'sig' },
    { ...ec, kid: `es256-${tag}`, alg: 'ES256', use: 'sig' },
  ];
}

function clientsFor(opts) {
  const main = {
    client_id: opts.clientId,
    client_secret: opts.clientSecret,
    redirect_uris: opts.redirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: opts.clientAuthMethod,
    id_token_signed_response_alg: opts.idTokenAlg,
  };
  // Extra clients: oidc-provider client metadata, verbatim (e.g. a second client using
  // client_secret_post: a client is registered with exactly one token endpoint auth method).
  const extra = opts.clientsFile ? JSON.parse(readFileSync(opts.clientsFile, 'utf8')) : [];
  if (!Array.isArray(extra)) throw new Error('the clients file must hold a JSON array of client metadata');
  return [main, ...extra];
}

function configuration(opts, accounts, interactionPolicy) {
  const { Check, base } = interactionPolicy;

  // The login prompt also fires when login_hint names someone other than the signed-in account
  // (or says deny), so a cookie jar that is reused across tests cannot keep the wrong user.
  const policy = base();
  policy.get('login').checks.add(new Check(
    'login_hint_account',
    'login_hint names another account',
    'login_required',
    (ctx) => {
      const hint = ctx.oidc.params.login_hint;
      if (hint === undefined) return Check.NO_NEED_TO_PROMPT;
      const account = accountForHint(accounts(), hint);
      return account?.sub === ctx.oidc.session.accountId ? Check.NO_NEED_TO_PROMPT : Check.REQUEST_PROMPT;
    },
  ));

  return {
    clients: clientsFor(opts),
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    jwks: { keys: signingKeys() },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    // Scope -> claims. groups and roles have scopes of their own (as Keycloak or Okta do it).
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: PROFILE_CLAIMS,
      groups: ['groups'],
      roles: ['roles'],
    },
    // By default oidc-provider leaves scope-requested claims out of the ID token whenever an
    // access token is issued too (they are then only at userinfo, as OIDC Core 5.4 allows). Real
    // providers (Google, Entra ID, Keycloak) put them in the ID token, and so do we.
    conformIdTokenClaims: false,
    async findAccount(_ctx, sub) {
      const account = accounts().find((a) => a.sub === sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          const out = { sub };
          for (const k of ['email', 'email_verified', ...PROFILE_CLAIMS, 'groups', 'roles']) {
            if (account[k] !== undefined) out[k] = account[k];
          }
          return out;
        },
      };
    },
    features: {
      devInteractions: { enabled: false }, // replaced by the automatic interaction below
      resourceIndicators: { enabled: false }, // no RFC 8707: `resource` is ignored, tokens are for userinfo
      revocation: { enabled: true },
      userinfo: { enabled: true },
    },
    interactions: {
      policy,
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    pkce: { required: () => true }, // every client, confidential or not; S256 is the only method
    responseTypes: ['code'],
    ttl: {
      AccessToken: opts.accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: 3600,
      RefreshToken: 24 * 3600,
      Interaction: 600,
      Session: 24 * 3600,
      Grant: 24 * 3600,
    },
    // Errors as a small JSON body rather than the default HTML page.
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  };
}

// ---- the interaction: sign in and consent, without a person -----------------------------------
async function interaction(provider, accounts, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;

  if (prompt.name === 'login') {
    // No login_hint while signed in (prompt=login, max_age): the same account signs in again.
    const current = params.login_hint === undefined && session?.accountId
      ? accounts().find((a) => a.sub === session.accountId) : undefined;
    const account = current ?? accountForHint(accounts(), params.login_hint);
    if (!account) {
      const why = params.login_hint === DENY ? 'the test user refused (login_hint=deny)'
        : `login_hint ${JSON.stringify(params.login_hint)} names no test account`;
      await provider.interactionFinished(req, res, { error: 'access_denied', error_description: why },
        { mergeWithLastSubmission: false });
      return;
    }
    if (session?.accountId && session.accountId !== account.sub) {
      // Another account than the session's: oidc-provider would first have the browser confirm
      // a logout with an auto-submitting HTML form (resume.js). End the old session here instead
      // and detach it from this interaction, so that following redirects still finishes the flow.
      const old = session.cookie ? await provider.Session.find(session.cookie) : undefined;
      if (old) await old.destroy();
      details.session = undefined;
      await details.persist();
    }
    await provider.interactionFinished(req, res, { login: { accountId: account.sub } },
      { mergeWithLastSubmission: false });
    return;
  }

  if (prompt.name === 'consent') {
    // Grant whatever is missing: scopes, claims (claims parameter) and resource scopes.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    return;
  }

  await provider.interactionFinished(req, res,
    { error: 'access_denied', error_description: `unsupported prompt ${prompt.name}` },
    { mergeWithLastSubmission: false });
}

// ---- main -------------------------------------------------------------------------------------
async function loadOidcProvider(nodeModules) {
  if (!nodeModules) return import('oidc-provider');
  // The package has no "exports" map: require.resolve finds lib/index.js from its "main".
  const require = createRequire(path.join(path.resolve(nodeModules), 'package.json'));
  return import(pathToFileURL(require.resolve('oidc-provider')).href);
}

async function main() {
  const opts = options(process.argv.slice(2), process.env);
  const accounts = accountsLoader(opts.accountsFile);
  accounts(); // fail at start on a bad file
  const { Provider, interactionPolicy } = await loadOidcProvider(opts.nodeModules);

  // Listen first: the issuer must carry the port, which PORT=0 leaves to the OS.
  const server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, '127.0.0.1', resolve);
  });
  const issuer = `http://127.0.0.1:${server.address().port}`;

  const config = configuration(opts, accounts, interactionPolicy);
  const clientIds = config.clients.map((c) => c.client_id);
  const provider = new Provider(issuer, config);
  // Static clients are only validated when first used: look each up now, so that bad metadata
  // (e.g. a redirect URI that is not a URL) stops the start instead of the first request.
  for (const id of clientIds) {
    try {
      if (!(await provider.Client.find(id))) throw new Error('not registered');
    } catch (err) {
      throw new Error(`client ${id}: ${err.error_description || err.message}`);
    }
  }
  for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error',
    'introspection.error', 'revocation.error', 'end_session.error', 'backchannel.error']) {
    provider.on(event, (_ctx, err) => {
      console.error(`[oidc] ${event}: ${err.name}: ${err.message}${err.error_description ? ` (${err.error_description})` : ''}`);
    });
  }

  const handler = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/interaction/') && req.method === 'GET') {
      interaction(provider, accounts, req, res).catch((err) => {
        console.error(`[oidc] interaction failed: ${err.stack || err}`);
        if (!res.headersSent) {
          res.writeHead(400, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify({ error: 'interaction_failed', error_description: String(err.message || err) }));
        }
      });
      return;
    }
    handler(req, res);
  });

  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  console.log(`READY ${issuer}`);
}

main().catch((err) => {
  console.error(`[oidc] ${err.stack || err}`);
  process.exit(1);
});
