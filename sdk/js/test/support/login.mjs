// Drives TruSec's hosted pages with fetch, as a browser without JavaScript
// would: follows redirects by hand, keeps cookies, and submits the login and
// consent forms with their hidden fields. Resolves with the URL the browser
// is finally sent to (the app's redirect_uri, with ?code=…&state=…).
import assert from 'node:assert/strict';

class CookieJar {
  #cookies = new Map();
  take(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair.indexOf('=');
      this.#cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }
  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/** The hidden inputs of the page's one form, and its action. */
function form(html) {
  const action = /<form[^>]*action="([^"]*)"/.exec(html)?.[1];
  assert.ok(action !== undefined, `a form on the page:\n${html.slice(0, 500)}`);
  const fields = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    fields[m[1]] = m[2].replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#x2F;', '/');
  }
  return { action, fields };
}

export async function signIn(authorizationUrl, { email, password, decision = 'approve', leaveAt }) {
  const jar = new CookieJar();
  let url = authorizationUrl;
  let init = { method: 'GET' };
  for (let hop = 0; hop < 12; hop++) {
    if (leaveAt !== undefined && url.startsWith(leaveAt)) return url;
    const response = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...init.headers, cookie: jar.header() },
    });
    jar.take(response);
    if (response.status >= 300 && response.status < 400) {
      url = new URL(response.headers.get('location'), url).toString();
      init = { method: 'GET' };
      continue;
    }
    const html = await response.text();
    assert.equal(response.status, 200, `page ${url}: ${html.slice(0, 300)}`);
    const { action, fields } = form(html);
    const page = new URL(url).pathname;
    const body = new URLSearchParams(fields);
    if (page.endsWith('/login')) {
      body.set('email', email);
      body.set('password', password);
    } else if (page.endsWith('/consent')) {
      body.set('decision', decision);
    } else {
      assert.fail(`unexpected page ${page}`);
    }
    url = new URL(action, url).toString();
    init = { method: 'POST', body: body.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } };
  }
  assert.fail('too many hops');
}
