// Issue 19, point 5: real WebAuthn ceremonies in Debian's Chromium, with a virtual authenticator
// (the DevTools protocol's WebAuthn domain through playwright-core's CDP session), the portal at
// http://localhost:<port>: register a passkey on /account, sign in with password + passkey, sign
// in with the passkey alone, a counter gone backwards (WebAuthn.addCredential with a lower
// signCount) refused, remove the passkey. axe-core on the new pages.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { startPortal, launchBrowser, nextCode, seriousViolations, screenshotDir, runPortalCommand } from "./support.mjs";

let portal;
let browser;

before(async () => {
  portal = await startPortal({}, { host: "localhost" });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  assert.equal(await portal?.stop(), 0);
});

async function accessible(page, label) {
  assert.deepEqual(await seriousViolations(page), [], `${label}: serious or critical axe-core violations`);
}

const password = "correct horse battery staple 42";

/** Accepts the demo admin's invitation in `page`: password and TOTP; returns the TOTP key. */
async function enrol(page, link, steps) {
  await page.goto(link);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Confirm password").fill(password);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.waitForURL("**/mfa/setup");
  const key = (await page.locator("#totp-key").innerText()).trim();
  await page.getByLabel("Authentication code").fill(await nextCode(key, steps));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByRole("link", { name: "Continue" }).click();
  return key;
}

async function signOut(page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL("**/login");
}

test("a passkey is registered, signs in after the password and alone, is refused when cloned, and is removed", async () => {
  const steps = new Map();
  const admin = portal.users.find((u) => u.role === "wmda-admin");
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  await enrol(page, admin.link, steps);
  await page.waitForURL("**/admin");

  // /account, linked from the header.
  await page.getByRole("link", { name: "Your account" }).click();
  await page.waitForURL("**/account");
  await accessible(page, "account");
  await page.getByLabel("Name", { exact: true }).fill("Laptop");
  await page.getByRole("button", { name: "Add a passkey" }).click();
  await page.getByText("Passkey “Laptop” added. You can sign in with it alone").waitFor();
  const row = page.locator("tr", { hasText: "Laptop" });
  assert.match(await row.innerText(), /never/);
  assert.match(await row.innerText(), /yes/, "a discoverable credential was asked for and made");
  await accessible(page, "account with a passkey");
  await page.screenshot({ path: join(screenshotDir(), "account.png"), fullPage: true });
  const [credential] = (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
  assert.equal(credential.isResidentCredential, true);

  // Password, then the passkey instead of a code.
  await signOut(page);
  await page.getByLabel("Email").fill(admin.email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL("**/login/mfa");
  await accessible(page, "second step with a passkey");
  await page.getByRole("button", { name: "Use a passkey instead" }).click();
  await page.waitForURL("**/admin");

  // The passkey alone.
  await signOut(page);
  await accessible(page, "sign-in page with a passkey");
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  await page.waitForURL("**/admin");

  // A copy of the authenticator whose counter is behind: refused, still signed out.
  await signOut(page);
  const [used] = (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials;
  assert.ok(used.signCount >= 2, `the counter moved: ${used.signCount}`);
  await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: used.credentialId });
  await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: { ...used, signCount: 0 } });
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  const alert = page.locator("[data-passkey-error]");
  await alert.waitFor({ state: "visible" });
  assert.match(await alert.innerText(), /counter went backwards/);
  assert.match(page.url(), /\/login$/);

  // The authenticator is itself again: sign in, and remove the passkey on /account.
  await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: used.credentialId });
  await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: { ...used, signCount: used.signCount + 10 } });
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  await page.waitForURL("**/admin");
  await page.goto(`${portal.url}/account`);
  assert.doesNotMatch(await page.locator("tr", { hasText: "Laptop" }).innerText(), /never/);
  await page.getByRole("button", { name: "Remove Laptop" }).click();
  await page.getByText("Passkey “Laptop” removed.").waitFor();
  await page.getByText("You have no passkeys yet.").waitFor();
  await accessible(page, "account after removal");

  // Without it, the passkey sign-in is refused; the code still works.
  await signOut(page);
  await page.getByRole("button", { name: "Sign in with a passkey" }).click();
  await alert.waitFor({ state: "visible" });
  assert.match(await alert.innerText(), /not registered/);
  await page.getByLabel("Email").fill(admin.email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
  await page.waitForURL("**/login/mfa");
  assert.equal(await page.getByRole("button", { name: "Use a passkey instead" }).count(), 0);
  await context.close();
});

test("under PORTAL_ADMIN_MFA=passkey an invited admin registers a passkey before entering, and signs in with it", async () => {
  const strict = await startPortal({ PORTAL_ADMIN_MFA: "passkey" }, { host: "localhost" });
  try {
    const steps = new Map();
    const admin = strict.users.find((u) => u.role === "wmda-admin");
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable");
    await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "usb",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    // The invitation's TOTP enrolment leads to the passkey setup, not into the portal.
    await enrol(page, admin.link, steps);
    await page.waitForURL("**/passkey/setup");
    await accessible(page, "passkey setup");
    // The passkey enrolment link another admin (or the command line) sends: its page is accessible too.
    const sent = await runPortalCommand(strict, ["admin", "passkey-link", "--email", admin.email]);
    assert.equal(sent.code, 0, sent.stderr);
    const link = sent.stdout.trim();
    assert.match(link, /^http:\/\/localhost:\d+\/passkey\/enrol\/[A-Za-z0-9_-]{43}$/);
    const other = await context.newPage();
    await other.goto(link);
    await other.getByRole("heading", { name: "Register your passkey" }).waitFor();
    await accessible(other, "passkey enrolment link");
    await other.close();
    await page.getByLabel("Name", { exact: true }).fill("YubiKey");
    await page.getByRole("button", { name: "Register your passkey" }).click();
    await page.waitForURL("**/admin");
    await page.getByText("Passkey “YubiKey” registered").waitFor();

    // A code is refused at the second step; the passkey signs in.
    await signOut(page);
    await page.getByLabel("Email").fill(admin.email);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.waitForURL("**/login/mfa");
    await accessible(page, "passkey-only second step");
    assert.equal(await page.getByLabel("Authentication code").count(), 0);
    await page.getByRole("button", { name: "Use your passkey" }).click();
    await page.waitForURL("**/admin");
    await page.getByRole("link", { name: "Users" }).click();
    await page.getByText("TOTP, 1 passkey, 10 recovery codes").first().waitFor();
    await accessible(page, "users with factors");
    await context.close();
  } finally {
    assert.equal(await strict.stop(), 0);
  }
});
