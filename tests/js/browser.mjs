// A scripted browser for Portcullis's sign-in and consent pages: follows
// redirects on the authorization server by hand, keeps cookies, fills the
// real forms (hidden fields csrf, next, request, org_id) and stops at the
// first redirect that leaves the server, which is the client's callback.

function hidden(html, name) {
  const match = html.match(new RegExp(`name="${name}" value="([^"]*)"`));
  if (!match) throw new Error(`no hidden field ${name} in page:\n${html}`);
  return match[1].replace(/&(#x[0-9a-f]+|#[0-9]+|amp|lt|gt|quot|apos);/gi, (_, e) => {
    const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e.toLowerCase()];
    if (named) return named;
    return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
  });
}

class CookieJar {
  constructor() {
    this.cookies = new Map();
  }
  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * Signs `email` in and approves the consent page for `authorizationUrl`,
 * ticking write/admin when `approve` names them. Returns the callback URL.
 */
export async function authorizeInBrowser(authorizationUrl, { email, password, approve }) {
  const origin = new URL(authorizationUrl).origin;
  const jar = new CookieJar();
  const request = async (url, init = {}) => {
    const response = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers ?? {}), cookie: jar.header() },
    });
    jar.store(response);
    return response;
  };
  const post = (path, fields) =>
    request(new URL(path, origin), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });

  let location = new URL(authorizationUrl);
  for (let step = 0; step < 10; step++) {
    if (location.origin !== origin) return location;
    const page = await request(location);
    let next;
    if (page.status >= 300 && page.status < 400) {
      next = page;
    } else if (page.status !== 200) {
      throw new Error(`${location} answered ${page.status}: ${await page.text()}`);
    } else {
      const html = await page.text();
      if (location.pathname === '/login') {
        next = await post('/login', { csrf: hidden(html, 'csrf'), next: hidden(html, 'next'), email, password });
      } else if (html.includes('action="/consent"')) {
        const fields = {
          csrf: hidden(html, 'csrf'),
          request: hidden(html, 'request'),
          org_id: hidden(html, 'org_id'),
          decision: 'approve',
        };
        if (approve.includes('mcp:write')) fields.grant_write = 'on';
        if (approve.includes('mcp:admin')) fields.grant_admin = 'on';
        next = await post('/consent', fields);
      } else {
        throw new Error(`unexpected page at ${location}:\n${html}`);
      }
      if (next.status < 300 || next.status >= 400) {
        throw new Error(`form post answered ${next.status}: ${await next.text()}`);
      }
    }
    location = new URL(next.headers.get('location'), location);
  }
  throw new Error('too many redirects');
}
