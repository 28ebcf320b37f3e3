// Drives the Portcullis console in headless Chromium, as a person would:
// sign in, create an API key and use it over MCP, revoke it; connect an OAuth
// app through the consent page, then disconnect it; check that a viewer cannot
// create a write key and that the activity page shows the calls just made.
//
// Run by tests/browser.rs, which starts the server and creates the users:
//   node console.mjs <base> <admin email> <password> <viewer email> <viewer password> <org id> <screenshot dir>
// Prints one JSON object: { ok, steps: { name: { ok, ...details } } } and
// exits non-zero when any step failed. Every step runs even after a failure,
// so one report shows everything that is wrong.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [base, adminEmail, password, viewerEmail, viewerPassword, orgId, shots] = process.argv.slice(2);
if (!shots) {
  console.error('usage: console.mjs <base> <admin email> <password> <viewer email> <viewer password> <org id> <screenshot dir>');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });

const CALLBACK = 'http://127.0.0.1:47201/callback';
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const steps = {};
const screenshots = [];

async function step(name, run) {
  try {
    steps[name] = { ok: true, ...(await run()) };
  } catch (error) {
    steps[name] = { ok: false, error: String(error?.stack ?? error) };
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/// Polls `probe` until it returns a truthy value or `ms` pass. Polling, not a
/// fixed sleep: it returns as soon as the condition holds.
async function eventually(probe, ms, what) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

async function shoot(page, name) {
  for (const [label, size] of [['desktop', DESKTOP], ['phone', PHONE]]) {
    await page.setViewportSize(size);
    const path = join(shots, `${name}-${label}.png`);
    await page.screenshot({ path, fullPage: true });
    screenshots.push(path);
    await readable(page, `${name} at ${size.width}px`);
  }
  await page.setViewportSize(DESKTOP);
}

/// The page reads well at this width: nothing scrolls sideways, no table
/// header or button breaks a word in the middle (its text fits on one line),
/// and no copy button covers the text it copies.
async function readable(page, where) {
  const problems = await page.evaluate(() => {
    const out = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > window.innerWidth + 1) {
      const wide = [...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.sr-only'))
        .slice(0, 3)
        .map((e) => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className}`);
      out.push(`horizontal overflow: ${doc.scrollWidth}px in ${window.innerWidth}px (${wide.join(', ')})`);
    }
    for (const el of document.querySelectorAll('table.list th, button')) {
      const style = getComputedStyle(el);
      if (el.offsetParent === null || style.visibility === 'hidden' || el.querySelector('.sr-only')) continue;
      const text = el.textContent.trim();
      if (!text || text.includes(' ')) continue;
      const range = document.createRange();
      range.selectNodeContents(el);
      const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      if (lines.size > 1) out.push(`"${text}" breaks mid-word`);
    }
    for (const button of document.querySelectorAll('button.copy[data-copy]')) {
      if (button.offsetParent === null) continue;
      const target = document.getElementById(button.dataset.copy);
      if (!target) continue;
      const b = button.getBoundingClientRect();
      const t = target.getBoundingClientRect();
      const overlap = b.left < t.right && t.left < b.right && b.top < t.bottom && t.top < b.bottom;
      if (overlap) out.push(`copy button covers #${button.dataset.copy}`);
    }
    return out;
  });
  for (const p of problems) layoutProblems.push(`${where}: ${p}`);
}

/// Layout problems found while taking screenshots; the `readable` step at
/// the end fails with all of them, so one does not hide the others.
const layoutProblems = [];

async function signIn(page, email, secret) {
  await page.fill('#email', email);
  await page.fill('#password', secret);
  await page.click('button[type=submit]');
}

/// One JSON-RPC message to /mcp the way Streamable HTTP clients send it; the
/// answer may be plain JSON or a one-event SSE stream.
async function mcp(key, body) {
  const response = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'MCP-Protocol-Version': '2025-06-18',
      Authorization: `Bearer ${key}`,
      'X-Organization-Id': orgId,
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  let message = null;
  if ((response.headers.get('content-type') ?? '').includes('text/event-stream')) {
    const data = text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trim()).filter(Boolean);
    message = data.length ? JSON.parse(data[data.length - 1]) : null;
  } else if (text) {
    try { message = JSON.parse(text); } catch { message = text; }
  }
  return { status: response.status, message };
}

const whoamiCall = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } };

function whoamiOf(message) {
  const result = message?.result;
  if (result?.structuredContent) return result.structuredContent;
  const text = result?.content?.find((c) => c.type === 'text')?.text;
  return text ? JSON.parse(text) : null;
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

const admin = await browser.newContext({ viewport: DESKTOP });
await admin.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
const page = await admin.newPage();
const consoleErrors = [];
page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
let key = null;
let keyName = `browser key ${Date.now()}`;

await step('sign_in', async () => {
  const response = await page.goto(`${base}/`);
  check(new URL(page.url()).pathname === '/login', `signed-out / went to ${page.url()}`);
  check(new URL(page.url()).searchParams.get('next') === '/', 'next=/ kept');
  await shoot(page, 'login');
  // A first sign-in with nothing connected lands on Connect; later ones on the keys.
  const landed = (u) => ['/console/keys', '/console/connect'].includes(new URL(u).pathname);
  await Promise.all([page.waitForURL(landed), signIn(page, adminEmail, password)]);
  await page.goto(`${base}/console/keys`);
  const csp = (await page.request.get(`${base}/console/keys`)).headers()['content-security-policy'];
  check(csp.includes("frame-ancestors 'none'") && csp.includes("script-src 'self'"), csp);
  await shoot(page, 'keys');
  return { landed: page.url(), first_status: response.status() };
});

await step('keyboard', async () => {
  await page.goto(`${base}/console/keys`);
  await page.keyboard.press('Tab');
  const first = await page.evaluate(() => document.activeElement?.textContent?.trim());
  check(first === 'Skip to content', `first Tab stop is ${first}`);
  // Reach the key name field with the keyboard alone.
  for (let i = 0; i < 40; i++) {
    if (await page.evaluate(() => document.activeElement?.id === 'key-name')) return { tabs: i + 1 };
    await page.keyboard.press('Tab');
  }
  throw new Error('the key name field is not reachable with Tab');
});

await step('create_key', async () => {
  await page.goto(`${base}/console/keys`);
  await page.fill('#key-name', keyName);
  check(await page.isChecked('input[name=mcp_read]'), 'read is ticked by default');
  await page.check('input[name=mcp_write]');
  await page.click('text=Create key');
  await page.waitForSelector('#secret');
  key = await page.inputValue('#secret');
  check(/^pcl_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/.test(key), `key looks like ${key.slice(0, 8)}`);
  const snippet = await page.textContent('#snippet-claude-code');
  check(snippet.includes(`claude mcp add --transport http portcullis ${base}/mcp`), snippet);
  check(snippet.includes(`Authorization: Bearer ${key}`) && snippet.includes(`X-Organization-Id: ${orgId}`), 'headers in snippet');
  check((await page.textContent('#snippet-cursor')).includes('"mcpServers"'), 'Cursor snippet');
  check((await page.textContent('#snippet-codex')).includes('[mcp_servers.portcullis]'), 'Codex snippet');
  const copy = page.locator('button[data-copy=secret]');
  check(await copy.isVisible(), 'the copy button is shown when scripts run');
  await copy.click();
  await eventually(async () => (await copy.textContent()) === 'Copied', 3000, 'the copy button to confirm');
  const clipboard = await page.evaluate(() => navigator.clipboard.readText());
  check(clipboard === key, 'the clipboard holds the key');
  await shoot(page, 'key-created');
  await page.goto(`${base}/console/keys`);
  const list = await page.content();
  // The secret is everything after the id; it may itself contain '_'.
  const secret = key.split('_').slice(2).join('_');
  check(!list.includes(key) && !list.includes(secret), 'the secret is not shown again');
  check(list.includes(keyName), 'the key is listed');
  return { copied: true };
});

await step('key_works_over_mcp', async () => {
  check(key, 'no key was created');
  const init = await mcp(key, {
    jsonrpc: '2.0', id: 0, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'console-browser-test', version: '1' } },
  });
  check(init.status === 200, `initialize answered ${init.status}: ${JSON.stringify(init.message)}`);
  const call = await mcp(key, whoamiCall);
  check(call.status === 200, `whoami answered ${call.status}: ${JSON.stringify(call.message)}`);
  const who = whoamiOf(call.message);
  check(who?.source === 'mcp-bearer', `whoami said ${JSON.stringify(who)}`);
  check(who.org_id === orgId, 'whoami names the org');
  return { source: who.source };
});

await step('revoke_key', async () => {
  check(key, 'no key was created');
  await page.goto(`${base}/console/keys`);
  await page.click(`button[aria-label="Revoke the key ${keyName}"]`);
  await page.waitForSelector('.notice');
  check((await page.textContent('.notice')).includes('revoked'), 'revocation confirmed');
  check(!(await page.content()).includes(keyName), 'the key left the list');
  // API keys are cached by the MCP layer for a few seconds.
  const refused = await eventually(async () => {
    const r = await mcp(key, whoamiCall);
    return r.status === 401 ? r : null;
  }, 6500, 'the revoked key to be refused');
  return { status: refused.status };
});

await step('oauth_app', async () => {
  const registered = await (await fetch(`${base}/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ client_name: 'Browser test app', redirect_uris: [CALLBACK], token_endpoint_auth_method: 'none' }),
  })).json();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authorize = new URL(`${base}/authorize`);
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: registered.client_id, redirect_uri: CALLBACK,
    scope: 'openid email mcp:read mcp:write', state: 'xyz', code_challenge: challenge,
    code_challenge_method: 'S256', resource: `${base}/mcp`,
  })) authorize.searchParams.set(k, v);

  // A fresh browser: the sign-in happens inside the OAuth flow.
  const context = await browser.newContext({ viewport: DESKTOP });
  const oauthPage = await context.newPage();
  // The client's callback is not a real server: answer it here and keep the URL.
  await context.route('http://127.0.0.1:47201/**', (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'callback' }));
  const callback = oauthPage.waitForRequest((r) => r.url().startsWith(CALLBACK));
  await oauthPage.goto(authorize.toString());
  check(new URL(oauthPage.url()).pathname === '/login', `authorize went to ${oauthPage.url()}`);
  await Promise.all([oauthPage.waitForSelector('form[action="/consent"]'), signIn(oauthPage, adminEmail, password)]);
  check((await oauthPage.content()).includes('Browser test app'), 'consent names the app');
  await shoot(oauthPage, 'consent');
  await oauthPage.click('button[value=approve]');
  const redirected = new URL((await callback).url());
  await oauthPage.waitForURL((u) => u.toString().startsWith(CALLBACK));
  check(redirected.searchParams.get('state') === 'xyz', 'state echoed');
  const code = redirected.searchParams.get('code');
  check(code, `no code in ${redirected}`);
  const tokens = await (await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: CALLBACK, code_verifier: verifier,
      client_id: registered.client_id, resource: `${base}/mcp`,
    }),
  })).json();
  check(tokens.access_token, `token exchange: ${JSON.stringify(tokens)}`);
  const userinfo = () => fetch(`${base}/userinfo`, { headers: { Authorization: `Bearer ${tokens.access_token}` } });
  const introspect = async () => (await (await fetch(`${base}/introspect`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: tokens.access_token, client_id: registered.client_id }),
  })).json()).active;
  check((await userinfo()).status === 200, 'the token works before');
  check((await introspect()) === true, 'introspection says active before');

  await oauthPage.goto(`${base}/console/apps`);
  const row = oauthPage.locator('#apps tr', { hasText: 'Browser test app' });
  check(await row.count() === 1, 'the app is listed under Connected apps');
  const rowText = await row.textContent();
  check(rowText.includes('127.0.0.1') && rowText.includes('mcp:read'), rowText);
  await shoot(oauthPage, 'apps');
  await oauthPage.click('button[aria-label="Disconnect Browser test app"]');
  await oauthPage.waitForSelector('.notice');
  check(!(await oauthPage.content()).includes('Browser test app'), 'the app left the list');
  const after = (await userinfo()).status;
  check(after === 401, `userinfo after revocation answered ${after}`);
  check((await introspect()) === false, 'introspection says inactive after');
  await context.close();
  return { userinfo_after: after };
});

await step('viewer_cannot_create_write_key', async () => {
  const context = await browser.newContext({ viewport: DESKTOP });
  const viewer = await context.newPage();
  await viewer.goto(`${base}/`);
  await Promise.all([viewer.waitForURL((u) => ['/console/keys', '/console/connect'].includes(new URL(u).pathname)), signIn(viewer, viewerEmail, viewerPassword)]);
  await viewer.goto(`${base}/console/keys`);
  check(await viewer.isDisabled('input[name=mcp_write]'), 'write is not offered to a viewer');
  check(!(await viewer.content()).includes('/console/org'), 'no Organization tab for a viewer');
  // Post it anyway, as a crafted form would: the server must refuse.
  await viewer.fill('#key-name', 'should not exist');
  await viewer.evaluate(() => {
    const box = document.querySelector('input[name=mcp_write]');
    box.disabled = false;
    box.checked = true;
  });
  await viewer.click('text=Create key');
  await viewer.waitForSelector('#key-error');
  const message = await viewer.textContent('#key-error');
  check(message.includes('at most mcp:read'), message);
  await shoot(viewer, 'viewer-refused');
  const org = await viewer.goto(`${base}/console/org`);
  check(org.status() === 403, `a viewer got ${org.status()} for the org page`);
  await context.close();
  return { message };
});

await step('activity', async () => {
  await page.goto(`${base}/console/activity`);
  // Calls recorded by the Rust test before the browser started.
  check(await page.locator('#calls tr', { hasText: 'list_widgets' }).count() > 0, 'recorded calls are listed');
  await shoot(page, 'activity');
  // The whoami calls made above reach the audit log through its writer.
  await eventually(async () => {
    await page.goto(`${base}/console/activity?org=${orgId}&tool=whoami`);
    return (await page.locator('#calls tbody tr').count()) > 0;
  }, 10000, 'the whoami calls in the activity log');
  const row = await page.locator('#calls tbody tr').first().textContent();
  check(row.includes('mcp-bearer') && row.includes(adminEmail), row);
  await page.goto(`${base}/console/activity`);
  await page.selectOption('#f-outcome', 'denied');
  await page.click('text=Filter');
  const rows = await page.locator('#calls tbody tr').allTextContents();
  check(rows.length > 0 && rows.every((r) => r.includes('denied')), `filtered rows: ${rows}`);
  return { denied_rows: rows.length };
});

await step('organization_and_connect', async () => {
  await page.goto(`${base}/console/org`);
  check((await page.textContent('#members')).includes(viewerEmail), 'members listed');
  await shoot(page, 'org');
  await page.goto(`${base}/console/connect`);
  check((await page.inputValue('#mcp-url')) === `${base}/mcp`, 'MCP URL');
  for (const client of ['ChatGPT', 'Claude (claude.ai and Claude Desktop)', 'Claude Code', 'Cursor', 'Codex', 'VS Code']) {
    check(await page.locator('h2', { hasText: client }).count() > 0, `steps for ${client}`);
  }
  await shoot(page, 'connect');
  return {};
});

await step('account_and_error_pages', async () => {
  await page.goto(`${base}/console/account`);
  check(await page.locator('#current').count() === 1, 'change-password form');
  await shoot(page, 'account');
  // In its own page, so the expected 404 is not a console error of the main one.
  const errorPage = await (await browser.newContext({ viewport: DESKTOP })).newPage();
  const missing = await errorPage.goto(`${base}/no-such-page`);
  check(missing.status() === 404, 'a missing page is 404');
  check(await errorPage.locator('a', { hasText: 'Back to the console' }).count() === 1, 'a way back');
  await shoot(errorPage, 'error');
  return {};
});

await step('readable', async () => {
  check(layoutProblems.length === 0, layoutProblems.join('\n'));
  return { checked: screenshots.length };
});

await step('no_script_errors', async () => {
  check(consoleErrors.length === 0, `console errors: ${consoleErrors.join('; ')}`);
  return {};
});

await browser.close();
const ok = Object.values(steps).every((s) => s.ok);
console.log(JSON.stringify({ ok, steps, screenshots }, null, 2));
process.exit(ok ? 0 : 1);
