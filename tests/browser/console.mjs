// The admin console in Chromium, by keyboard and mouse, from the first-run
// setup link on: create the first administrator, sign in through the
// hosted login, register an OAuth client and copy its secret, register a
// SAML SP by pasting its metadata and test its SSO, create a user and sign
// them in to the SP and to the client from a private window, end a
// session, rotate an API key, filter the audit log. Screenshots at 390 and
// 1280 px for the docs (docs/img/console-*.png).
//
// Needs: BASE, SETUP_URL, KEY (a secret API key), METADATA (a file of SP
// metadata), SP_KEY (the private key of its encryption certificate),
// SESSION_TOKEN (a live session of EMAIL), EMAIL, SHOTS.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const { BASE, SETUP_URL, KEY, METADATA, SP_KEY, SESSION_TOKEN, EMAIL, SHOTS } = process.env;
const ADMIN = "root@example.com";
const ADMIN_PASSWORD = "a long admin passphrase";
const widths = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});

async function shoot(page, name) {
  for (const [label, size] of Object.entries(widths)) {
    await page.setViewportSize(size);
    // Nothing may stick out sideways at phone width but the tables, which scroll in their own box.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    const culprits = overflow > 1 ? await page.evaluate(() => [...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest(".table-wrap"))
      .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className}`)) : [];
    assert.ok(overflow <= 1, `${name} overflows by ${overflow}px at ${label} width: ${culprits.join(", ")}`);
    await page.screenshot({ path: `${SHOTS}/console-${name}-${label}.png`, fullPage: true });
  }
  await page.setViewportSize(widths.desktop);
}

// The SP's metadata publishes an encryption key, so its assertions arrive
// encrypted: opened here by an independent tool, xmlsec1, with the SP's key.
async function decrypted(samlResponse) {
  const dir = await mkdtemp(join(tmpdir(), "trusec-console-"));
  try {
    const file = join(dir, "response.xml");
    await writeFile(file, Buffer.from(samlResponse, "base64"));
    return execFileSync("xmlsec1", ["--decrypt", "--privkey-pem", SP_KEY, file], { encoding: "utf8" });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function api(path, body) {
  const resp = await fetch(`${BASE}${path}`, {
    method: body ? "POST" : "GET",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: resp.status, body: await resp.json() };
}

try {
  const context = await browser.newContext({ viewport: widths.desktop });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  const page = await context.newPage();

  // First run: the link `trusec serve` printed.
  await page.goto(SETUP_URL);
  assert.match(await page.title(), /administrator/i);
  await shoot(page, "setup");
  await page.locator("#email").fill(ADMIN);
  await page.locator("#password").fill(ADMIN_PASSWORD);
  await page.keyboard.press("Enter");

  // The console signs in through the hosted login (and consent), as any app.
  await page.waitForURL(/\/login\?/);
  await page.locator("#email").fill(ADMIN);
  await page.locator("#password").fill(ADMIN_PASSWORD);
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/(consent|console)/);
  if (page.url().includes("/consent")) {
    await page.getByRole("button", { name: "Allow" }).click();
  }
  await page.waitForURL(/\/console\/applications/);

  // An OAuth client: registered, its secret shown once and copied.
  await page.getByLabel("Name").fill("Billing");
  await page.getByLabel(/Redirect URIs/).fill("https://billing.example/callback");
  await page.getByRole("button", { name: "Register" }).click();
  await page.getByRole("heading", { name: "Client secret" }).waitFor();
  const secret = await page.locator("#client-secret").inputValue();
  assert.match(secret, /^trusec_cs_/);
  await page.getByRole("button", { name: "Copy", exact: true }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await shoot(page, "application");
  const tryLink = await page.getByRole("link", { name: /^Try the sign-in/ }).getAttribute("href");

  // A SAML SP: metadata pasted, read back before saving, then saved.
  await page.getByRole("link", { name: "SAML" }).click();
  await page.getByLabel(/Metadata XML/).fill(await readFile(METADATA, "utf8"));
  await page.getByRole("button", { name: "Read the metadata" }).click();
  await page.getByRole("heading", { name: "Check what was read" }).waitFor();
  assert.ok(await page.getByText("https://acme-crm.example/saml/acs").first().isVisible());
  await shoot(page, "saml-preview");
  await page.getByRole("button", { name: "Register this service provider" }).click();
  await page.getByRole("heading", { name: "Attributes" }).waitFor();
  await shoot(page, "saml-sp");

  // The SSO tested before anyone signs in: the assertion the administrator's
  // own sign-in would send, its signature checked, nothing sent.
  await page.getByRole("button", { name: "Test the SSO" }).click();
  await page.getByText(/^Signature valid/).waitFor();
  assert.ok(await page.locator("code", { hasText: ADMIN }).first().isVisible());
  await shoot(page, "saml-test");
  const ssoLink = await page.getByRole("link", { name: /^Sign in to / }).getAttribute("href");
  await page.getByRole("link", { name: /^← / }).click();
  await page.getByRole("heading", { name: "Attributes" }).waitFor();

  // A user, created; another user's session ended, seen at once by /v1.
  await page.getByRole("link", { name: "Users" }).click();
  await page.locator("#email").fill("grace@example.com");
  await page.locator("#name").fill("Grace Hopper");
  await page.locator("#password").fill("another long passphrase");
  await page.getByRole("button", { name: "Create user" }).click();
  await page.getByRole("heading", { name: "grace@example.com" }).waitFor();

  // The test user signs in to each app from a private window: the SAML SP
  // by the console's IdP-initiated link, the OAuth client by the code flow.
  const privateWindow = await browser.newContext({ viewport: widths.desktop });
  // The apps themselves do not exist here: each answers with a stub page.
  await privateWindow.route(/^https:\/\/(acme-crm|billing)\.example\//,
    (route) => route.fulfill({ status: 200, contentType: "text/html", body: "<title>app</title>" }));
  const grace = await privateWindow.newPage();
  const [acs] = await Promise.all([
    grace.waitForRequest((r) => r.url() === "https://acme-crm.example/saml/acs" && r.method() === "POST"),
    (async () => {
      await grace.goto(`${BASE}${ssoLink}`);
      await grace.locator("#email").fill("grace@example.com");
      await grace.locator("#password").fill("another long passphrase");
      await grace.keyboard.press("Enter");
    })(),
  ]);
  await grace.waitForURL("https://acme-crm.example/saml/acs");
  const samlResponse = new URLSearchParams(acs.postData()).get("SAMLResponse");
  const sent = Buffer.from(samlResponse, "base64").toString();
  assert.match(sent, /<saml2:EncryptedAssertion/);
  assert.doesNotMatch(sent, /grace@example\.com/, "nothing of grace's in the clear");
  assert.match(await decrypted(samlResponse), /<saml2:NameID[^>]*>grace@example\.com</);
  await grace.goto(`${BASE}${tryLink}`);
  await grace.locator("#email").fill("grace@example.com");
  await grace.locator("#password").fill("another long passphrase");
  await grace.keyboard.press("Enter");
  await grace.waitForURL(/\/consent\?/);
  const [toApp] = await Promise.all([
    grace.waitForRequest((r) => r.url().startsWith("https://billing.example/callback")),
    grace.getByRole("button", { name: "Allow" }).click(),
  ]);
  const callback = new URL(toApp.url());
  assert.equal(callback.searchParams.get("state"), "console-try");
  assert.ok(callback.searchParams.get("code"), "the app got a code for grace");
  await privateWindow.close();
  await page.getByRole("link", { name: "← Users" }).click();
  await page.getByLabel("Search by email or name").fill(EMAIL);
  await page.keyboard.press("Enter");
  await page.getByRole("link", { name: EMAIL }).click();
  await shoot(page, "user");
  assert.equal((await api("/v1/sessions/verify", { token: SESSION_TOKEN })).body.valid, true);
  await page.getByRole("button", { name: /^End the session|^End$/ }).first().click();
  await page.getByText("The session was ended on every instance.").waitFor();
  assert.equal((await api("/v1/sessions/verify", { token: SESSION_TOKEN })).body.valid, false);

  // An API key rotated: the new one shown once and working.
  await page.getByRole("link", { name: "API keys" }).click();
  await page.getByRole("button", { name: /^Rotate/ }).first().click();
  await page.getByText(/was rotated/).waitFor();
  const rotated = await page.locator("#new-key").inputValue();
  const works = await fetch(`${BASE}/v1/users`, { headers: { authorization: `Bearer ${rotated}` } });
  assert.equal(works.status, 200);
  await shoot(page, "api-keys");

  // The audit log, filtered by keyboard to the session just ended.
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByLabel("Type").focus();
  await page.getByLabel("Type").selectOption("session.revoked");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.waitForURL(/type=session.revoked/);
  assert.ok(await page.locator("td", { hasText: "session.revoked" }).first().isVisible());
  await shoot(page, "audit");

  await page.getByRole("link", { name: "Dashboard" }).click();
  await page.getByRole("heading", { name: "Dashboard" }).waitFor();
  await shoot(page, "dashboard");
  console.log("browser: console setup, sign-in, client, SP and its SSO test, user signed in to both, session, key rotation and audit filter passed");
} finally {
  await browser.close();
}
