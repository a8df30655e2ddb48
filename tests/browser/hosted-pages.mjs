// Signs a person in with the keyboard alone through the hosted login and
// consent pages (OAuth) and the SAML auto-post page, signs out, and saves
// screenshots at phone and desktop widths for the docs.
//
// Needs: BASE (server URL), CLIENT_ID, SP_ENTITY, EMAIL, PASSWORD, SHOTS (dir).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const { BASE, CLIENT_ID, SP_ENTITY, EMAIL, PASSWORD, SHOTS } = process.env;
const REDIRECT = "https://app.example.com/callback";
const ACS = "https://sp.example.com/saml/acs";
const widths = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});

async function shoot(page, name) {
  for (const [label, size] of Object.entries(widths)) {
    await page.setViewportSize(size);
    await page.screenshot({ path: `${SHOTS}/${name}-${label}.png`, fullPage: true });
  }
  await page.setViewportSize(widths.desktop);
}

/** Presses Tab until the focused element matches, as a keyboard user would. */
async function tabTo(page, selector, max = 12) {
  for (let i = 0; i < max; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((s) => document.activeElement?.matches(s), selector)) return;
  }
  throw new Error(`could not reach ${selector} with Tab`);
}

try {
  const context = await browser.newContext({ viewport: widths.desktop });
  // The apps behind the redirect URIs do not exist here (no network): what
  // matters is the request the browser makes to them.
  const page = await context.newPage();

  // OAuth: authorize → login → consent → back to the app, keyboard only.
  const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
  await page.goto(`${BASE}/oauth/authorize?response_type=code&client_id=${CLIENT_ID}` +
    `&redirect_uri=${encodeURIComponent(REDIRECT)}&scope=openid%20email%20profile&state=st` +
    `&code_challenge=${challenge}&code_challenge_method=S256`);
  assert.match(await page.title(), /Sign in/);
  await shoot(page, "login");
  await tabTo(page, "input[name=email]");
  await page.keyboard.type(EMAIL);
  await tabTo(page, "input[name=password]");
  await page.keyboard.type(PASSWORD);
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/consent\?/);
  assert.ok(await page.getByRole("button", { name: "Allow" }).isVisible());
  await shoot(page, "consent");
  await tabTo(page, "button[value=approve]");
  const [toApp] = await Promise.all([
    page.waitForRequest((r) => r.url().startsWith(REDIRECT)),
    page.keyboard.press("Enter"),
  ]);
  const callback = new URL(toApp.url());
  assert.equal(callback.searchParams.get("state"), "st");
  assert.ok(callback.searchParams.get("code"), "a code came back");

  // SAML: IdP-initiated, already signed in: the auto-post page submits itself.
  const [post] = await Promise.all([
    page.waitForRequest((r) => r.url() === ACS && r.method() === "POST"),
    page.goto(`${BASE}/saml/sso/init?sp=${encodeURIComponent(SP_ENTITY)}&RelayState=home`).catch(() => {}),
  ]);
  assert.ok(post.postData().includes("SAMLResponse="), "the SP received a SAMLResponse");

  // Without JavaScript, the same page waits for a keyboard press on Continue.
  const noScript = await browser.newContext({ viewport: widths.desktop, javaScriptEnabled: false,
    storageState: await context.storageState() });
  const still = await noScript.newPage();
  await still.goto(`${BASE}/saml/sso/init?sp=${encodeURIComponent(SP_ENTITY)}&RelayState=home`);
  await shoot(still, "saml-autopost");
  await tabTo(still, "button[type=submit]");
  await Promise.all([
    still.waitForRequest((r) => r.url() === ACS && r.method() === "POST"),
    still.keyboard.press("Enter"),
  ]);
  await noScript.close();

  // Sign out from the hosted logout page, keyboard only.
  await page.goto(`${BASE}/logout`);
  await shoot(page, "logout");
  await tabTo(page, "button[value=logout]");
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: /signed out/i }).waitFor();
  await shoot(page, "signed-out");
  console.log("browser: keyboard-only sign-in, consent, SAML auto-post and sign-out passed");
} finally {
  await browser.close();
}
