// Verifies an OpenID Connect ID token the way a relying party must (OIDC Core 3.1.3.7), with
// node:crypto only: the issuer's discovery document gives jwks_uri; the JWS signature (RS256 or
// ES256) is checked with the key its `kid` names; then iss, aud (and azp), exp, iat and nonce.
// On success prints the token's header and payload as one JSON object {"header": ..., "payload":
// ...} on stdout and exits 0; otherwise prints the reason on stderr and exits 1.
//
//   node verify_id_token.mjs --issuer URL --audience CLIENT_ID [--nonce N] [--alg RS256|ES256] TOKEN
//
// Used by tests-e2e/idp/smoke.sh; handy for the gateway's own sign-in tests too.

import { createPublicKey, verify } from 'node:crypto';
import process from 'node:process';

function parseArgs(argv) {
  const o = { issuer: null, audience: null, nonce: undefined, alg: undefined, token: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--issuer') o.issuer = argv[++i];
    else if (a === '--audience') o.audience = argv[++i];
    else if (a === '--nonce') o.nonce = argv[++i];
    else if (a === '--alg') o.alg = argv[++i];
    else if (!a.startsWith('--') && o.token === null) o.token = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.issuer || !o.audience || !o.token) throw new Error('--issuer, --audience and TOKEN are required');
  return o;
}

async function getJson(url) {
  const res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return res.json();
}

const ALGS = {
  RS256: { hash: 'sha256', kty: 'RSA', opts: {} },
  ES256: { hash: 'sha256', kty: 'EC', crv: 'P-256', opts: { dsaEncoding: 'ieee-p1363' } },
};

async function main() {
  const o = parseArgs(process.argv.slice(2));
  const parts = o.token.split('.');
  if (parts.length !== 3) throw new Error('not a compact JWS (three dot-separated parts)');
  const decode = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  const header = decode(parts[0]);
  const payload = decode(parts[1]);

  const alg = ALGS[header.alg];
  if (!alg) throw new Error(`unexpected alg ${header.alg}`);
  if (o.alg && header.alg !== o.alg) throw new Error(`alg is ${header.alg}, expected ${o.alg}`);

  const discovery = await getJson(`${o.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
  if (discovery.issuer !== o.issuer) throw new Error(`discovery issuer ${discovery.issuer} is not ${o.issuer}`);
  const { keys } = await getJson(discovery.jwks_uri);
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`no key with kid ${header.kid} at ${discovery.jwks_uri}`);
  if (jwk.kty !== alg.kty || (alg.crv && jwk.crv !== alg.crv)) throw new Error(`key ${header.kid} does not fit ${header.alg}`);
  if (jwk.d !== undefined || jwk.p !== undefined) throw new Error('the JWKS publishes private key material');

  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const ok = verify(alg.hash, Buffer.from(`${parts[0]}.${parts[1]}`), { key, ...alg.opts }, Buffer.from(parts[2], 'base64url'));
  if (!ok) throw new Error('bad signature');

  const now = Math.floor(Date.now() / 1000);
  if (payload.iss !== o.issuer) throw new Error(`iss ${payload.iss} is not ${o.issuer}`);
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!aud.includes(o.audience)) throw new Error(`aud ${JSON.stringify(payload.aud)} lacks ${o.audience}`);
  if (aud.length > 1 && payload.azp !== o.audience) throw new Error(`several audiences and azp ${payload.azp} is not ${o.audience}`);
  if (typeof payload.exp !== 'number' || payload.exp <= now - 60) throw new Error(`expired (exp ${payload.exp}, now ${now})`);
  if (typeof payload.iat !== 'number' || payload.iat > now + 60) throw new Error(`iat ${payload.iat} is in the future`);
  if (typeof payload.sub !== 'string' || payload.sub === '') throw new Error('no sub');
  if (o.nonce !== undefined && payload.nonce !== o.nonce) throw new Error(`nonce ${payload.nonce} is not ${o.nonce}`);

  process.stdout.write(`${JSON.stringify({ header, payload })}\n`);
}

main().catch((err) => {
  process.stderr.write(`verify_id_token: ${err.message}\n`);
  process.exit(1);
});
