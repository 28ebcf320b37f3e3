// The official TypeScript MCP SDK as a client of Portcullis, driven by
// tests/sdk_clients.rs. One run = one way of connecting:
//
//   node sdk_client.mjs <mcp-url> <mode>
//     mode: oauth-dcr | oauth-cimd | oauth-preregistered | apikey
//
// Inputs come from the environment (PCL_EMAIL, PCL_PASSWORD, PCL_SCOPE,
// PCL_APPROVE, PCL_REDIRECT_URI, PCL_CLIENT_METADATA_URL, PCL_CLIENT_ID,
// PCL_CLIENT_SECRET, PCL_API_KEY, PCL_ORG_HEADER, PCL_ORG_ID). The script
// prints one JSON object on stdout: what the SDK registered and received,
// the tool names it listed and whoami's structured result. Any failure
// exits non-zero with the error on stderr.
//
// The browser step of OAuth is done by this script itself:
// redirectToAuthorization() signs in and consents by posting Portcullis's
// real forms with fetch and a cookie jar, then keeps the code from the
// callback URL.
import { auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { authorizeInBrowser } from './browser.mjs';

const [mcpUrl, mode] = process.argv.slice(2);
const env = (name) => {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required for mode ${mode}`);
  return value;
};

class TestProvider {
  constructor({ clientMetadataUrl, preregistered }) {
    this.redirect = env('PCL_REDIRECT_URI');
    this.clientMetadataUrl = clientMetadataUrl;
    this.client = preregistered;
    this.saved = undefined;
    this.verifier = undefined;
    this.code = undefined;
    this.authorizationUrl = undefined;
  }
  get redirectUrl() {
    return this.redirect;
  }
  get clientMetadata() {
    return {
      client_name: 'MCP TypeScript SDK test',
      redirect_uris: [this.redirect],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    return 'sdk-state-1';
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(verifier) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url) {
    this.authorizationUrl = url.href;
    const callback = await authorizeInBrowser(url, {
      email: env('PCL_EMAIL'),
      password: env('PCL_PASSWORD'),
      approve: process.env.PCL_APPROVE ?? 'mcp:read mcp:write',
    });
    if (!callback.href.startsWith(this.redirect.replace(/\/$/, ''))) {
      throw new Error(`callback ${callback.href} is not on ${this.redirect}`);
    }
    if (callback.searchParams.get('state') !== 'sdk-state-1') throw new Error(`state not echoed: ${callback}`);
    this.code = callback.searchParams.get('code');
    if (!this.code) throw new Error(`no code in ${callback}`);
  }
}

async function listAndWhoami(transport) {
  const client = new Client({ name: 'portcullis-sdk-test', version: '1.0.0' });
  await client.connect(transport);
  const { tools } = await client.listTools();
  const whoami = await client.callTool({ name: 'whoami', arguments: {} });
  if (whoami.isError) throw new Error(`whoami failed: ${JSON.stringify(whoami)}`);
  const out = {
    protocol_version: transport.protocolVersion ?? null,
    server: client.getServerVersion(),
    tools: tools.map((t) => t.name).sort(),
    whoami: whoami.structuredContent ?? null,
  };
  await client.close();
  return out;
}

async function oauth(providerOptions) {
  const provider = new TestProvider(providerOptions);
  const serverUrl = new URL(mcpUrl);
  const scope = process.env.PCL_SCOPE || undefined;
  const first = await auth(provider, { serverUrl, scope });
  if (first !== 'REDIRECT') throw new Error(`auth() answered ${first} before sign-in`);
  const second = await auth(provider, { serverUrl, scope, authorizationCode: provider.code });
  if (second !== 'AUTHORIZED') throw new Error(`auth() with the code answered ${second}`);
  const tokens = provider.tokens();
  // A second auth() without a code refreshes with the stored refresh token.
  const refreshed = await auth(provider, { serverUrl, scope });
  if (refreshed !== 'AUTHORIZED') throw new Error(`refresh answered ${refreshed}`);
  const transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  const result = await listAndWhoami(transport);
  return {
    ...result,
    authorization_url: provider.authorizationUrl,
    client_id: provider.client.client_id,
    token_endpoint_auth_method: provider.client.token_endpoint_auth_method ?? null,
    granted_scope: tokens.scope,
    token_type: tokens.token_type,
    had_refresh_token: typeof tokens.refresh_token === 'string',
    refreshed_scope: provider.tokens().scope,
    refresh_rotated: provider.tokens().refresh_token !== tokens.refresh_token,
  };
}

async function main() {
  switch (mode) {
    case 'oauth-dcr':
      return oauth({});
    case 'oauth-cimd':
      return oauth({ clientMetadataUrl: env('PCL_CLIENT_METADATA_URL') });
    case 'oauth-preregistered': {
      const preregistered = { client_id: env('PCL_CLIENT_ID') };
      if (process.env.PCL_CLIENT_SECRET) preregistered.client_secret = process.env.PCL_CLIENT_SECRET;
      return oauth({ preregistered });
    }
    case 'apikey': {
      const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), {
        requestInit: {
          headers: {
            Authorization: `Bearer ${env('PCL_API_KEY')}`,
            [env('PCL_ORG_HEADER')]: env('PCL_ORG_ID'),
          },
        },
      });
      return listAndWhoami(transport);
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

try {
  process.stdout.write(`${JSON.stringify(await main())}\n`);
} catch (error) {
  console.error(error?.stack ?? String(error));
  process.exit(1);
}
