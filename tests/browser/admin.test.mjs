// The admin's journey in a real browser: sign in with TOTP, invite a user; the user accepts
// through the emailed link, enrols TOTP; the admin grants the role; the user sees the application.
// axe-core runs on every admin page seen.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { startPortal, launchBrowser, freshCode, seriousViolations } from "./support.mjs";

let portal;
let browser;

before(async () => {
  portal = await startPortal();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  assert.equal(await portal?.stop(), 0);
});

async function accessible(page, label) {
  assert.deepEqual(await seriousViolations(page), [], `${label}: serious or critical axe-core violations`);
}

/** The invitation link of the newest email to `to` among ./data/mail/*.eml. */
function emailedLink(to) {
  const dir = join(portal.dir, "data", "mail");
  const files = readdirSync(dir).filter((f) => f.endsWith(".eml")).sort();
  for (const f of files.reverse()) {
    const raw = readFileSync(join(dir, f), "utf8").replace(/=\r?\n/g, "");
    if (!raw.includes(`To: ${to}`)) continue;
    const m = raw.match(/https?:\/\/[^\s"<]+\/invite\/[A-Za-z0-9_-]{43}/);
    if (m) return m[0];
  }
  return null;
}

async function waitFor(fn, ms = 10000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Accepts an invitation in a fresh context; returns the page, signed in. */
async function accept(link, used) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(link);
  const password = "correct horse battery staple 42";
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Confirm password").fill(password);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.waitForURL("**/mfa/setup");
  const key = (await page.locator("#totp-key").innerText()).trim();
  await page.getByLabel("Authentication code").fill(await freshCode(key, used));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByRole("link", { name: "Continue" }).click();
  return page;
}

test("an admin invites a user who enrols, receives a grant and sees the application", async () => {
  const used = new Set();
  const adminUser = portal.users.find((u) => u.role === "wmda-admin");
  const admin = await accept(adminUser.link, used);
  await admin.waitForURL("**/admin");
  await accessible(admin, "overview");

  // Invite Karin to NL-DemoRegistry.
  await admin.getByRole("link", { name: "Users" }).click();
  await accessible(admin, "users");
  await admin.getByLabel("Email").fill("karin@demoregistry.example");
  await admin.getByLabel("Name", { exact: true }).fill("Karin de Vries");
  await admin.getByLabel("Organisation", { exact: true }).selectOption({ label: "NL-DemoRegistry" });
  await admin.getByRole("button", { name: "Send invitation", exact: true }).click();
  await admin.getByText("Invitation emailed to karin@demoregistry.example").waitFor();

  // Karin accepts through the emailed link and enrols.
  const link = await waitFor(() => emailedLink("karin@demoregistry.example"));
  const karin = await accept(link, used);
  await karin.waitForURL("**/manage-api-credentials");
  assert.ok((await karin.content()).includes("You are not a credential manager of any application yet"));

  // The admin grants her the role on the DM application.
  await admin.getByRole("link", { name: "Applications" }).click();
  await accessible(admin, "applications");
  await admin.getByRole("link", { name: "Partner-NL-DemoRegistry-DM" }).click();
  await accessible(admin, "application");
  await admin.getByLabel("Grant the credential manager role to").selectOption({ label: "Karin de Vries <karin@demoregistry.example>" });
  await admin.getByRole("button", { name: "Grant", exact: true }).click();
  await admin.getByText("karin@demoregistry.example").first().waitFor();

  // Her next request shows it.
  await karin.reload();
  await karin.getByRole("heading", { name: "Partner-NL-DemoRegistry-DM" }).waitFor();

  // Issue 14, point 4: a change to access asks first in a dialog; Cancel changes nothing, the
  // answer yes ends on the page with a notice of what happened.
  await admin.getByRole("link", { name: "Users" }).click();
  const disable = admin.getByRole("button", { name: "Disable karin@demoregistry.example" });
  await disable.click();
  const dialog = admin.getByRole("dialog", { name: "Disable Karin de Vries?" });
  await dialog.waitFor();
  assert.equal(await admin.evaluate(() => document.activeElement?.textContent), "Cancel", "the safe choice has the focus");
  await accessible(admin, "confirmation dialog");
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await dialog.waitFor({ state: "hidden" });
  assert.ok(admin.url().endsWith("/admin/users"));
  await karin.reload();
  await karin.getByRole("heading", { name: "Partner-NL-DemoRegistry-DM" }).waitFor();
  await disable.click();
  await dialog.getByRole("button", { name: "Disable" }).click();
  await admin.getByText("Karin de Vries is disabled").waitFor();
  assert.ok(admin.url().endsWith("/admin/users"), admin.url());
  await karin.reload();
  await karin.waitForURL("**/login**");
  await admin.getByRole("button", { name: "Enable karin@demoregistry.example" }).click();
  await admin.getByRole("dialog", { name: "Enable Karin de Vries?" }).getByRole("button", { name: "Enable" }).click();
  await admin.getByText("Karin de Vries is enabled").waitFor();

  // The audience dialog shows the value it would set.
  await admin.goto(`${portal.url}/admin/resources`);
  await admin.getByLabel("Audience").first().fill("https://api.wmda.example/smp");
  await admin.getByRole("button", { name: "Save audience" }).first().click();
  const audience = admin.getByRole("dialog", { name: "Change the audience of Search and Match production?" });
  await audience.getByText("New audience: https://api.wmda.example/smp").waitFor();
  await audience.getByRole("button", { name: "Change audience" }).click();
  await admin.getByText("The audience of Search and Match production is now https://api.wmda.example/smp").waitFor();

  for (const [name, path] of [["organisations", "/admin/organisations"], ["resources", "/admin/resources"], ["audit", "/admin/audit"]]) {
    await admin.goto(`${portal.url}${path}`);
    await accessible(admin, name);
  }
  await admin.context().close();
  await karin.context().close();
});
