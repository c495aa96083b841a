// Local, Entra-shaped OpenID provider for the test suite only (never for real sign-ins).
//
// A thin wrapper around panva's oidc-provider. It serves HTTPS on 127.0.0.1 with the test CA's
// certificate, mounts the provider at /<tenant>/v2.0 so MSAL treats it like an Entra authority,
// and bends three behaviours towards Entra (see shared/facts/test-idp.md §2):
//   1. /auth requests asking for offline_access get prompt=consent (MSAL never sends it, and
//      without it oidc-provider drops offline_access, so no refresh token);
//   2. scopes named in IDP_EXTRA_SCOPES are accepted (Entra resource scopes such as User.Read);
//   3. the device authorization response carries `interval` (and optionally `message`).
// Test-only hooks live under /__test__/ (stats, revoke, reset). It prints one JSON ready line
// and exits when stdin closes or on SIGTERM, so a crashed test run leaves no node process.
//
// Env: IDP_TLS_CERT, IDP_TLS_KEY (required); IDP_TENANT, IDP_CLIENT_ID, IDP_USERS (comma list,
// default alice@example.test,bob@example.test); IDP_ID_TOKEN_TTL, IDP_ACCESS_TOKEN_TTL (3600),
// IDP_REFRESH_TOKEN_TTL (14 days), IDP_DEVICE_CODE_TTL (900) in seconds; IDP_ROTATE_REFRESH_TOKEN
// (1; 0 = reuse allowed); IDP_AUTO_LOGIN (1 = no login form); IDP_EXTRA_SCOPES (space/comma list);
// IDP_DEVICE_INTERVAL (seconds; 0 = omitted, MSAL then polls every 5 s); IDP_DEVICE_MESSAGE (1 = add
// an Entra-like `message`).

import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { URL } from 'node:url';

import Provider from 'oidc-provider';

const env = process.env;
const num = (name, fallback) => (env[name] === undefined || env[name] === '' ? fallback : Number(env[name]));
const list = (name, fallback) => (env[name] ? env[name].split(/[\s,]+/).filter(Boolean) : fallback);

const TENANT = env.IDP_TENANT || '00000000-0000-0000-0000-0000000000aa';
const CLIENT_ID = env.IDP_CLIENT_ID || '11111111-1111-1111-1111-111111111111';
const PREFIX = `/${TENANT}/v2.0`;
const USERS = list('IDP_USERS', ['alice@example.test', 'bob@example.test']);
const EXTRA_SCOPES = list('IDP_EXTRA_SCOPES', []);
const AUTO_LOGIN = env.IDP_AUTO_LOGIN === '1';
const ROTATE = num('IDP_ROTATE_REFRESH_TOKEN', 1) !== 0;
const DEVICE_INTERVAL = num('IDP_DEVICE_INTERVAL', 0);
const DEVICE_MESSAGE = env.IDP_DEVICE_MESSAGE === '1';
const TTL = {
  IdToken: num('IDP_ID_TOKEN_TTL', 3600),
  AccessToken: num('IDP_ACCESS_TOKEN_TTL', 3600),
  RefreshToken: num('IDP_REFRESH_TOKEN_TTL', 14 * 24 * 3600),
  DeviceCode: num('IDP_DEVICE_CODE_TTL', 900),
};

// ---- accounts: Entra-like oid per user, pairwise sub = base64url(sha256(client_id:oid)) ----
const accounts = new Map(); // accountId -> {username, oid, name}
const accountIdOf = new Map(); // username -> accountId
USERS.forEach((username, i) => {
  const oid = `aaaaaaaa-0000-4000-8000-${String(i + 1).padStart(12, '0')}`;
  const accountId = createHash('sha256').update(`${CLIENT_ID}:${oid}`).digest('base64url');
  const local = username.split('@')[0];
  accounts.set(accountId, { username, oid, name: `${local[0].toUpperCase()}${local.slice(1)} Test` });
  accountIdOf.set(username.toLowerCase(), accountId);
});

function findAccount(_ctx, accountId) {
  const user = accounts.get(accountId);
  if (!user) return undefined;
  return {
    accountId,
    async claims() {
      return {
        sub: accountId, oid: user.oid, tid: TENANT, ver: '2.0',
        name: user.name, preferred_username: user.username, email: user.username,
      };
    },
  };
}

// ---- storage: a plain Map, so revoke(username) and reset can walk it ----
const store = new Map(); // `${model}:${id}` -> {payload, expiresAt}

class TestAdapter {
  constructor(model) { this.model = model; }

  async upsert(id, payload, expiresIn) {
    store.set(`${this.model}:${id}`, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
  }

  async find(id) {
    const key = `${this.model}:${id}`;
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt > Date.now()) return entry.payload;
    store.delete(key);
    return undefined;
  }

  async findBy(field, value) {
    const prefix = `${this.model}:`;
    for (const [key, { payload }] of store) {
      if (key.startsWith(prefix) && payload[field] === value) return this.find(key.slice(prefix.length));
    }
    return undefined;
  }

  findByUid(uid) { return this.findBy('uid', uid); }

  findByUserCode(userCode) { return this.findBy('userCode', userCode); }

  async consume(id) {
    const entry = store.get(`${this.model}:${id}`);
    if (entry) entry.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) { store.delete(`${this.model}:${id}`); }

  async revokeByGrantId(grantId) { removeWhere((payload) => payload.grantId === grantId); }
}

function removeWhere(predicate) {
  let removed = 0;
  for (const [key, { payload }] of store) {
    if (predicate(payload)) { store.delete(key); removed += 1; }
  }
  return removed;
}

// ---- test hooks: token-endpoint calls by grant_type, /auth and /device/auth calls ----
let stats;
function resetStats() { stats = { token: {}, token_error: {}, auth: 0, device_auth: 0 }; }
resetStats();

// ---- HTML: a one-field login form (plus an abort button), device pages without external assets ----
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head>`
  + `<body><h1>${esc(title)}</h1>${body}</body></html>`;

function loginPage(uid, hint, error) {
  return page('Sign in', `${error ? `<p class="error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
  <input type="text" name="username" value="${esc(hint)}" autofocus>
  <button type="submit">Sign in</button>
  <button type="submit" name="abort" value="1">Cancel</button>
</form>`);
}

const deviceFlow = {
  enabled: true,
  async userCodeInputSource(ctx, form, _out, err) {
    ctx.body = page('Enter code', `${err ? '<p class="error">The code you entered is incorrect.</p>' : ''}${form}
<button type="submit" form="op.deviceInputForm">Continue</button>`);
  },
  async userCodeConfirmSource(ctx, form, _client, _info, userCode) {
    ctx.body = page('Confirm device', `<p>Code <code>${esc(userCode)}</code></p>${form}
<button type="submit" form="op.deviceConfirmForm">Continue</button>`);
  },
  async successSource(ctx) { ctx.body = page('Sign-in Success', '<p>You can close this page.</p>'); },
};

// ---- the provider ----
function makeProvider(issuer, jwk) {
  const provider = new Provider(issuer, {
    adapter: TestAdapter,
    clients: [{
      client_id: CLIENT_ID,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      redirect_uris: ['http://localhost', 'http://127.0.0.1'],
      response_types: ['code'],
      grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    }],
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    scopes: ['openid', 'offline_access', 'profile', 'email', ...EXTRA_SCOPES],
    claims: {
      openid: ['sub', 'oid', 'tid', 'ver'], profile: ['name', 'preferred_username'], email: ['email'],
    },
    conformIdTokenClaims: false,
    findAccount,
    features: { devInteractions: { enabled: false }, deviceFlow, revocation: { enabled: true } },
    pkce: { required: () => true },
    rotateRefreshToken: () => ROTATE,
    expiresWithSession: () => false,
    ttl: {
      ...TTL,
      AuthorizationCode: 120,
      Interaction: 600,
      Session: 14 * 24 * 3600,
      Grant: Math.max(TTL.RefreshToken, 14 * 24 * 3600),
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    renderError(ctx, out) { ctx.type = 'html'; ctx.body = page('Error', `<pre>${esc(JSON.stringify(out))}</pre>`); },
  });

  provider.use(async (ctx, next) => {
    await next();
    const route = ctx.oidc?.route;
    if (route === 'token') {
      const grantType = ctx.oidc.params?.grant_type || 'unknown';
      stats.token[grantType] = (stats.token[grantType] || 0) + 1;
      if (ctx.status >= 400) stats.token_error[grantType] = (stats.token_error[grantType] || 0) + 1;
    } else if (route === 'authorization') {
      stats.auth += 1;
    } else if (route === 'device_authorization') {
      stats.device_auth += 1;
      if (ctx.status === 200 && ctx.body) {
        if (DEVICE_INTERVAL > 0) ctx.body.interval = DEVICE_INTERVAL;
        if (DEVICE_MESSAGE) {
          ctx.body.message = `To sign in, use a web browser to open the page ${ctx.body.verification_uri} `
            + `and enter the code ${ctx.body.user_code} to authenticate.`;
        }
      }
    }
  });
  return provider;
}

// ---- interactions: login form (or auto-login), consent always granted on the server ----
async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function grantConsent(provider, details) {
  const { prompt: { details: missing }, params, session, grantId } = details;
  const grant = grantId ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  return { consent: { grantId: await grant.save() } };
}

function login(username) {
  const accountId = accountIdOf.get(String(username || '').trim().toLowerCase());
  if (!accountId) {
    return { error: 'access_denied', error_description: `unknown test user ${JSON.stringify(username)}` };
  }
  return { login: { accountId } };
}

async function interaction(provider, req, res, path) {
  const details = await provider.interactionDetails(req, res);
  const submitted = req.method === 'POST' && path.endsWith('/login');
  let result;
  if (details.prompt.name === 'consent') {
    result = await grantConsent(provider, details);
  } else if (submitted) {
    const form = await readForm(req);
    result = form.get('abort')
      ? { error: 'access_denied', error_description: 'the user cancelled the sign-in' }
      : login(form.get('username'));
  } else if (AUTO_LOGIN) {
    result = login(details.params.login_hint || USERS[0]);
  } else {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(loginPage(details.uid, details.params.login_hint || USERS[0]));
    return;
  }
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

// ---- test hooks ----
function testHook(req, res, path) {
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && path === '/__test__/stats') return reply(200, stats);
  if (req.method === 'POST' && path === '/__test__/reset') {
    store.clear();
    resetStats();
    return reply(200, {});
  }
  const revoke = path.match(/^\/__test__\/revoke\/(.+)$/);
  if (req.method === 'POST' && revoke) {
    const accountId = accountIdOf.get(decodeURIComponent(revoke[1]).toLowerCase());
    if (!accountId) return reply(404, { error: 'unknown test user' });
    return reply(200, { removed: removeWhere((p) => p.accountId === accountId) });
  }
  return reply(404, { error: 'no such test hook' });
}

// Entra never needs prompt=consent for offline_access and knows select_account; oidc-provider
// needs the former and rejects the latter. Rewritten before oidc-provider sees the URL, because
// its mount-path detection compares req.originalUrl with req.url.
function entraPrompt(url) {
  const scopes = (url.searchParams.get('scope') || '').split(' ');
  if (!scopes.includes('offline_access')) return;
  const prompts = new Set((url.searchParams.get('prompt') || '').split(' ').filter(Boolean));
  prompts.delete('select_account');
  prompts.add('consent');
  url.searchParams.set('prompt', [...prompts].join(' '));
}

function makeHandler(provider) {
  const callback = provider.callback();
  return (req, res) => {
    const url = new URL(req.url, 'https://127.0.0.1');
    const fail = (err) => {
      if (!res.headersSent) res.writeHead(err.statusCode || 500, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page('Error', `<pre>${esc(err.error_description || err.message)}</pre>`));
    };
    if (url.pathname.startsWith('/interaction/')) {
      interaction(provider, req, res, url.pathname).catch(fail);
    } else if (url.pathname.startsWith('/__test__/')) {
      testHook(req, res, url.pathname);
    } else if (url.pathname === PREFIX || url.pathname.startsWith(`${PREFIX}/`)) {
      if (url.pathname === `${PREFIX}/auth` && req.method === 'GET') entraPrompt(url);
      req.originalUrl = url.pathname + url.search;
      req.url = url.pathname.slice(PREFIX.length) + url.search;
      callback(req, res);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found\n');
    }
  };
}

// ---- start ----
function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `test-${randomBytes(4).toString('hex')}`;
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

function main() {
  if (!env.IDP_TLS_CERT || !env.IDP_TLS_KEY) {
    process.stderr.write('idp.mjs: set IDP_TLS_CERT and IDP_TLS_KEY to the test server certificate and key\n');
    process.exit(2);
  }
  const server = createServer({ cert: readFileSync(env.IDP_TLS_CERT), key: readFileSync(env.IDP_TLS_KEY) });
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address();
    const issuer = `https://127.0.0.1:${port}${PREFIX}`;
    server.on('request', makeHandler(makeProvider(issuer, signingKey())));
    process.stdout.write(`${JSON.stringify({ issuer, port, client_id: CLIENT_ID, tenant: TENANT })}\n`);
  });
  // Die with the test run: stdin is a pipe from the test process.
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

main();
