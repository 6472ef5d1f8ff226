// A real OpenID Connect provider for the tests of OIDC sign-in: panva's oidc-provider (OpenID
// Certified) with its development login and consent pages, where a person signs in by typing an
// email address (any password). The account's `email` claim is what was typed when it holds an
// "@"; a login without one is an account without an email address (the "missing claim" case).
//
//   node provider.mjs CONFIG.json
//
// CONFIG: {"host": "127.0.0.1", "port": 0, "keys": "/path/jwks.json",
//          "tls": {"key": "/path/key.pem", "cert": "/path/cert.pem"}, "idTokenClaims": false,
//          "hmac": false,
//          "clients": [{"client_id": "mcpyard", "client_secret": "...",
//                       "redirect_uris": ["http://127.0.0.1/oauth/oidc/callback"]}]}
// port 0 picks a free port; with `tls` the issuer is https (as a Workspace requires). `keys` is the signing key set, created there when absent (two
// providers given the same file sign with the same key). `idTokenClaims` puts the scopes' claims
// in the ID token too (by default, as the specification says for the code flow, they are served
// by the userinfo endpoint only). Clients are native applications: their loopback redirect URIs
// match on any port (RFC 8252 section 7.3), so one registration serves a gateway on any port.
//
// Prints one line `issuer <url>` once listening; stops on SIGTERM.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTlsServer } from 'node:https';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function signingKeys(path) {
  if (existsSync(path)) {
    return JSON.parse(readFileSync(path, 'utf8'));
  }
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };
  const jwks = { keys: [jwk] };
  writeFileSync(path, JSON.stringify(jwks), { mode: 0o600 });
  return jwks;
}

const server = config.tls
  ? createTlsServer({ key: readFileSync(config.tls.key), cert: readFileSync(config.tls.cert) })
  : createServer();
server.listen(config.port ?? 0, config.host ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  const issuer = `${config.tls ? 'https' : 'http'}://${address}:${port}`;
  const provider = new Provider(issuer, {
    clients: config.clients.map((client) => ({
      application_type: 'native',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...client,
    })),
    jwks: signingKeys(config.keys),
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: { openid: ['sub'], email: ['email', 'email_verified'] },
    conformIdTokenClaims: !config.idTokenClaims,
    // `hmac`: ID tokens may also be MAC'd with the client secret (a client's
    // id_token_signed_response_alg HS256), which a relying party must refuse.
    enabledJWA: config.hmac ? { idTokenSigningAlgValues: ['RS256', 'HS256'] } : undefined,
    pkce: { required: () => true },
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return sub.includes('@') ? { sub, email: sub, email_verified: true } : { sub };
        },
      };
    },
  });
  server.on('request', provider.callback());
  console.log(`issuer ${issuer}`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
