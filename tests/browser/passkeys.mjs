// Passkeys in a real browser: Chromium's virtual authenticator (DevTools
// WebAuthn domain: a platform authenticator with resident keys and user
// verification) answers the ceremonies that static/passkeys.js starts, so
// the script, the CSP and the server are tested together. A person signs
// in with the password, adds a passkey from the account page (and is shown
// recovery codes), signs out, signs in again with the passkey button alone
// (nothing typed), and then meets the passkey as the second step after
// the password.
//
// Needs: BASE (an issuer whose host is a domain: http://localhost:PORT),
// EMAIL, PASSWORD, SHOTS (dir).
import { chromium } from "playwright-core";
import assert from "node:assert/strict";

const { BASE, EMAIL, PASSWORD, SHOTS } = process.env;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});

async function passwordStep(page) {
  await page.goto(`${BASE}/login`);
  await page.fill("input[name=email]", EMAIL);
  await page.fill("input[name=password]", PASSWORD);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true,
               hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });

  // Add a passkey from the account page.
  await passwordStep(page);
  await page.goto(`${BASE}/account/security`);
  await page.fill("#passkey-name", "This laptop");
  await page.getByRole("button", { name: "Add a passkey" }).click();
  await page.waitForSelector("text=recovery codes", { timeout: 10000 });
  const codes = await page.locator("li code").count();
  assert.equal(codes, 10, "ten recovery codes come with the first passkey");
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  assert.equal(credentials.length, 1);
  assert.ok(credentials[0].isResidentCredential, "the passkey is discoverable");
  await page.goto(`${BASE}/account/security`);
  assert.ok(await page.getByText("This laptop", { exact: true }).isVisible());
  await page.screenshot({ path: `${SHOTS}/account-passkeys-desktop.png`, fullPage: true });

  // Sign out. Conditional UI (WebAuthn §5.1.4: mediation "conditional"
  // from the e-mail field's autofill): the virtual authenticator answers
  // the page's pending request as soon as it loads, as a person picking
  // the passkey from the autofill list would; nothing is typed.
  await context.clearCookies();
  await Promise.all([
    page.waitForURL(/\/login\/passkey$/, { timeout: 10000 }),
    page.goto(`${BASE}/login`),
  ]);
  await page.goto(`${BASE}/account/security`);
  assert.ok(await page.getByText("This laptop", { exact: true }).isVisible(), "signed in from autofill");

  // And by the button, in a browser without conditional mediation.
  await context.clearCookies();
  await context.addInitScript(() => { delete window.PublicKeyCredential.isConditionalMediationAvailable; });
  await page.goto(`${BASE}/login`);
  assert.equal(await page.getAttribute("input[name=email]", "autocomplete"), "username webauthn");
  const button = page.getByRole("button", { name: "Sign in with a passkey" });
  assert.ok(await button.isVisible(), "the script shows the passkey button");
  await Promise.all([page.waitForURL(/\/login\/passkey$/, { timeout: 10000 }), button.click()]);
  await page.goto(`${BASE}/account/security`);
  assert.ok(await page.getByText("This laptop", { exact: true }).isVisible(), "signed in by the button");

  // The password now asks for a second step, which the passkey gives.
  await context.clearCookies();
  await passwordStep(page);
  await page.waitForSelector("text=Two-step verification");
  await Promise.all([page.waitForURL(/\/second-factor$/, { timeout: 10000 }),
                     page.getByRole("button", { name: "Use a passkey" }).click()]);
  await page.goto(`${BASE}/account/security`);
  assert.ok(await page.getByText("This laptop", { exact: true }).isVisible(), "signed in with password and passkey");
  assert.deepEqual(errors.filter((e) => /Content Security Policy/.test(e)), [], "no CSP violation");
  console.log("passkeys: ok");
} finally {
  await browser.close();
}
