// The whole journey end to end, in a real browser and with a partner system's token requests:
// 1. the demo WMDA admin signs in with password and TOTP, creates an organisation, registers an
//    application for it and invites a credential manager;
// 2. the user accepts through the link in the emailed invitation, chooses a password, enrols TOTP;
// 3. the admin grants the user the credential manager role on the application;
// 4. the user signs in, creates a secret (shown once), gets a token with it the way a partner system
//    does, deletes it on the page, and the same token request is then refused;
// 5. a secret expiring 7 days from today gets its reminder email from `reminders run-once`,
//    addressed to the user, naming the secret and the application, without the secret's value;
// 6. screenshots of the main pages (docs/screenshots/ with UPDATE_SCREENSHOTS=1, else a temporary
//    folder);
// 7. axe-core on every page seen: no serious or critical violations.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  startPortal,
  launchBrowser,
  nextCode,
  seriousViolations,
  readEmails,
  runPortalCommand,
  screenshotDir,
  waitFor,
} from "./support.mjs";

const ORG_NAME = "Deutsches Testregister";
const ORG = "DE-TestReg";
const APP = `Partner-${ORG}-DM`;
const USER = { email: "lena.schmidt@testreg.example", name: "Lena Schmidt" };
const ADMIN_PASSWORD = "admin staple horse battery 17";
const USER_PASSWORD = "correct horse battery staple 42";
const FIRST_SECRET = "Journey production (Lena Schmidt)";
const SHORT_SECRET = "Journey short-lived (Lena Schmidt)";

let portal;
let browser;
let shots;
const steps = new Map(); // TOTP steps used, per key
const errors = []; // console errors and CSP refusals on any page
const state = {}; // what one step hands to the next
let broken = null; // the first step that failed: the later ones are skipped

before(async () => {
  portal = await startPortal();
  browser = await launchBrowser();
  shots = screenshotDir();
});

after(async () => {
  await browser?.close();
  assert.equal(await portal?.stop(), 0, "the portal did not stop cleanly");
  if (shots) console.log(`# screenshots in ${shots}`);
});

/** A step of the journey: skipped once an earlier one failed, since it builds on it. */
function step(name, fn) {
  test(name, async (t) => {
    if (broken) {
      t.skip(`builds on "${broken}", which failed`);
      return;
    }
    try {
      await fn(t);
    } catch (e) {
      broken = name;
      throw e;
    }
  });
}

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  // Script errors and CSP refusals ("Refused to ..."); HTTP statuses of resources are expected
  // (the browser's favicon request).
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(e.message));
  return page;
}

async function accessible(page, label) {
  assert.deepEqual(await seriousViolations(page), [], `${label}: serious or critical axe-core violations`);
}

/** Checks the page with axe-core and takes its screenshot (full length unless told otherwise). */
async function look(page, name, { fullPage = true } = {}) {
  await accessible(page, name);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage });
}

/** The same at phone width (390 px, issue 14, point 12), then back to the page's own size. */
async function lookAtPhoneWidth(page, name) {
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  await look(page, name);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `${name}: the page scrolls sideways by ${overflow}px at 390 px`);
  await page.setViewportSize(size);
}

/** Password, then TOTP code, on /login and /login/mfa; screenshots the two pages when asked. */
async function signIn(page, email, password, key, screenshots = false) {
  await page.goto(`${portal.url}/login`);
  await page.getByRole("heading", { name: "Sign in", level: 1 }).waitFor();
  if (screenshots) await look(page, "sign-in");
  else await accessible(page, "sign-in");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL("**/login/mfa");
  if (screenshots) await look(page, "sign-in-code");
  else await accessible(page, "sign-in code");
  await page.getByLabel("Authentication code").fill(await nextCode(key, steps));
  await page.getByRole("button", { name: "Verify" }).click();
}

/**
 * Accepts an invitation: chooses a password, enrols TOTP from the key shown as text, sees the
 * recovery codes. Returns the TOTP key; the page ends signed in on its home page.
 */
async function acceptInvitation(page, link, password, screenshots = false) {
  await page.goto(link);
  await page.getByRole("heading", { name: "Accept your invitation" }).waitFor();
  if (screenshots) await look(page, "accept-invitation");
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Confirm password").fill(password);
  await page.getByRole("button", { name: "Continue" }).click();
  await page.waitForURL("**/mfa/setup");
  if (screenshots) await look(page, "mfa-enrolment");
  else await accessible(page, "enrolment");
  assert.match(await page.locator("img.qr").getAttribute("src"), /^data:image\/png;base64,/);
  const key = (await page.locator("#totp-key").innerText()).trim();
  await page.getByLabel("Authentication code").fill(await nextCode(key, steps));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByRole("heading", { name: "Your recovery codes" }).waitFor();
  assert.equal(await page.locator("#recovery-codes li").count(), 10);
  if (screenshots) await look(page, "recovery-codes");
  await page.getByRole("link", { name: "Continue" }).click();
  return key;
}

/** The partner-style token request (Azure AD v1 shape: form fields and resource=). */
async function tokenRequest(clientId, secret, resource) {
  const res = await fetch(`${portal.url}/oauth2/token`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ grant_type: "client_credentials", client_id: clientId, client_secret: secret, resource }).toString(),
  });
  return { status: res.status, body: await res.json() };
}

/** The claims of a JWT, unverified (the Rust tests verify signatures against the JWKS). */
function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url").toString("utf8"));
}

function utcDate(daysFromToday) {
  return new Date(Date.now() + daysFromToday * 86400 * 1000).toISOString().slice(0, 10);
}

/** Creates a secret in the application's dialog; returns its one-time value (on the created page). */
async function createSecret(page, name, expiresOn, screenshots = false) {
  const section = page.locator("section.app", { has: page.getByRole("heading", { name: APP }) });
  await section.getByRole("link", { name: "Create new secret" }).click();
  const dialog = section.locator("dialog[open]");
  await dialog.waitFor();
  await dialog.getByLabel("Client secret name").fill(name);
  const date = dialog.getByLabel("Expiration date");
  assert.equal(await date.inputValue(), await date.getAttribute("max"), "the form defaults to the latest date");
  if (expiresOn) await date.fill(expiresOn);
  if (screenshots) await look(page, "create-secret-dialog");
  else await accessible(page, "create dialog");
  await dialog.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: "Client secret created" }).waitFor();
  const value = (await page.locator("#secret-value").innerText()).trim();
  assert.match(value, /^wmdacs_[0-9A-Za-z]{32}[0-4][0-9A-Za-z]{5}$/);
  assert.match(await page.locator("main").innerText(), new RegExp(`valid until ${expiresOn ?? "\\d{4}-\\d{2}-\\d{2}"}`));
  if (screenshots) await look(page, "secret-created");
  else await accessible(page, "created");
  return value;
}

step("1. the admin signs in with password and TOTP, creates an organisation and an application, invites a user", async () => {
  const demoAdmin = portal.users.find((u) => u.role === "wmda-admin");
  assert.ok(demoAdmin, `no WMDA admin among ${JSON.stringify(portal.users)}`);
  state.adminEmail = demoAdmin.email;

  // The demo admin's invitation: choose a password, enrol TOTP; then sign out.
  const admin = await newPage();
  state.admin = admin;
  state.adminKey = await acceptInvitation(admin, demoAdmin.link, ADMIN_PASSWORD);
  await admin.waitForURL("**/admin");
  await admin.getByRole("button", { name: "Sign out" }).click();
  await admin.waitForURL("**/login**");

  // A real sign-in: password, then a TOTP code.
  await signIn(admin, state.adminEmail, ADMIN_PASSWORD, state.adminKey, true);
  await admin.waitForURL("**/admin");
  await admin.getByRole("heading", { name: "WMDA administration", level: 1 }).waitFor();
  await accessible(admin, "overview");

  // The organisation.
  await admin.getByRole("link", { name: "Organisations" }).click();
  await admin.getByRole("heading", { name: "Organisations", level: 1 }).waitFor();
  await admin.getByLabel("Name", { exact: true }).fill(ORG_NAME);
  await admin.getByLabel("Country code").fill("DE");
  await admin.getByLabel("Code", { exact: true }).fill("TestReg");
  await look(admin, "organisations");
  await admin.getByRole("button", { name: "Create organisation" }).click();
  await admin.waitForURL(/\/admin\/organisations\/[0-9a-f-]{36}$/);
  await admin.getByRole("heading", { name: `${ORG_NAME} (${ORG})`, level: 1 }).waitFor();
  state.orgUrl = admin.url();

  // Its DM application: the derived name first, the client ID generated, the allowed resources.
  await admin.getByRole("link", { name: APP, exact: true }).click();
  await admin.getByRole("heading", { name: `Register ${APP}`, level: 1 }).waitFor();
  const offered = await admin.locator("input[name=resource]").evaluateAll((xs) => xs.map((x) => [x.value, x.checked]));
  assert.deepEqual(offered.sort(), [["data-manager-production", true], ["data-manager-sandbox", true]], "a DM application is offered the Data Manager resources only");
  await look(admin, "application-register");
  await admin.getByRole("button", { name: "Register application" }).click();
  await admin.waitForURL(/\/admin\/applications\/[0-9a-f-]{36}$/);
  await admin.getByRole("heading", { name: APP, level: 1 }).waitFor();
  state.appUrl = admin.url();
  state.clientId = (await admin.locator("dl.facts dd code").first().innerText()).trim();
  assert.match(state.clientId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  await accessible(admin, "application");

  // The organisation's page lists it now.
  await admin.goto(state.orgUrl);
  await admin.getByRole("link", { name: APP, exact: true }).waitFor();
  await accessible(admin, "organisation");

  // Invite the credential manager.
  await admin.getByRole("navigation", { name: "Administration" }).getByRole("link", { name: "Users" }).click();
  await admin.getByLabel("Email").fill(USER.email);
  await admin.getByLabel("Name", { exact: true }).fill(USER.name);
  await admin.getByLabel("Organisation", { exact: true }).selectOption({ label: ORG });
  await admin.getByRole("button", { name: "Send invitation", exact: true }).click();
  await admin.getByText(`Invitation emailed to ${USER.email}`).waitFor();
  await look(admin, "users");
  await lookAtPhoneWidth(admin, "users-phone");
});

step("2. the user accepts through the emailed link, chooses a password and enrols TOTP", async () => {
  const invitation = await waitFor(
    () => readEmails(portal.dir).find((e) => e.to.includes(USER.email) && e.subject === "Your invitation to the WMDA secret portal" && e.html),
    10000,
    "the invitation email",
  );
  const link = invitation.text.match(/https?:\/\/\S+\/invite\/[A-Za-z0-9_-]{43}/)?.[0];
  assert.ok(link, `no invitation link in:\n${invitation.text}`);
  assert.ok(link.startsWith(portal.url), "the link is built from PORTAL_BASE_URL");
  assert.ok(invitation.html.includes(link), "the HTML part carries the same link");

  const page = await newPage();
  state.userKey = await acceptInvitation(page, link, USER_PASSWORD, true);
  await page.waitForURL("**/manage-api-credentials");
  assert.match(await page.locator("main").innerText(), /You are not a credential manager of any application yet/);
  await accessible(page, "manage page without grants");
  await page.context().close();

  // The link worked once.
  const again = await newPage();
  const response = await again.goto(link);
  assert.ok(response.status() >= 400, `a used invitation link answered ${response.status()}`);
  await again.context().close();
});

step("3. the admin grants the user the credential manager role on the application", async () => {
  const admin = state.admin;
  await admin.goto(state.appUrl);
  await admin.getByLabel("Grant the credential manager role to").selectOption({ label: `${USER.name} <${USER.email}>` });
  await admin.getByRole("button", { name: "Grant", exact: true }).click();
  await admin.waitForURL(state.appUrl);
  await admin.getByRole("heading", { name: "Credential managers (1)" }).waitFor();
  await admin.locator("li", { hasText: `${USER.name} <${USER.email}>` }).waitFor();
  await look(admin, "application");
  await admin.goto(state.orgUrl);
  await admin.getByText(`${APP}: 1 credential manager`).waitFor();
  await look(admin, "organisation");
});

step("4. the user signs in, creates a secret, gets a token with it, deletes it; the token request is then refused", async () => {
  const page = await newPage();
  state.user = page;
  await signIn(page, USER.email, USER_PASSWORD, state.userKey);
  await page.waitForURL("**/manage-api-credentials");
  const section = page.locator("section.app", { has: page.getByRole("heading", { name: APP }) });
  await section.waitFor();
  assert.equal(await page.locator("section.app").count(), 1, "the user sees exactly the application granted");
  assert.equal((await section.locator("dd code").first().innerText()).trim(), state.clientId);
  await section.getByText("This application has no client secrets.").waitFor();

  // The resources the application holds, from its "API authentication" panel.
  await section.locator("details.panel summary").click();
  const resources = await section.locator("details.panel tbody tr").evaluateAll((rows) =>
    rows.map((r) => [...r.querySelectorAll("code")].map((c) => c.textContent.trim())),
  );
  assert.deepEqual(resources.map((r) => r[0]).sort(), ["data-manager-production", "data-manager-sandbox"]);
  const [resource, audience] = resources.find((r) => r[0] === "data-manager-sandbox");
  await look(page, "manage-api-credentials");

  // Create a secret (the form's default date, the latest allowed): its value is shown once.
  const value = await createSecret(page, FIRST_SECRET, undefined, true);
  state.firstValue = value;

  // The partner system gets a token with it.
  const ok = await tokenRequest(state.clientId, value, resource);
  assert.equal(ok.status, 200, `token request: ${JSON.stringify(ok.body)}`);
  assert.equal(ok.body.token_type, "Bearer");
  assert.equal(ok.body.resource, resource);
  assert.equal(ok.body.scope, `${audience}/.default`);
  assert.ok(ok.body.expires_in > 0 && ok.body.expires_in <= 3600, `expires_in ${ok.body.expires_in}`);
  const jwt = claims(ok.body.access_token);
  assert.equal(jwt.iss, portal.url);
  assert.equal(jwt.sub, state.clientId);
  assert.equal(jwt.client_id, state.clientId);
  assert.equal(jwt.aud, audience);

  // Back on the page only the hint remains; delete the secret through its dialog.
  await page.getByRole("link", { name: "Back to Manage API Credentials" }).click();
  await page.waitForURL("**/manage-api-credentials");
  await lookAtPhoneWidth(page, "manage-api-credentials-phone");
  const html = await page.content();
  assert.equal(html.includes(value), false, "the page shows the value again");
  assert.ok(html.includes(`${value.slice(0, 10)}…`), "the hint is missing");
  await section.getByRole("link", { name: `Delete ${FIRST_SECRET}` }).click();
  const confirm = section.locator("dialog[open]");
  await confirm.waitFor();
  assert.match(await confirm.innerText(), /can no longer obtain new tokens/);
  await look(page, "delete-secret-dialog");
  await confirm.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByText(`Deleted the client secret "${FIRST_SECRET}"`).waitFor();
  await accessible(page, "after delete");
  assert.equal(await section.getByText(FIRST_SECRET).count(), 0);

  // The identical request is refused from now on.
  const refused = await tokenRequest(state.clientId, value, resource);
  assert.equal(refused.status, 401, `after deletion: ${JSON.stringify(refused.body)}`);
  assert.equal(refused.body.error, "invalid_client");
  assert.equal(refused.body.access_token, undefined);
});

step("5. a secret expiring 7 days from today gets a reminder email from `reminders run-once`", async () => {
  const page = state.user;
  await page.goto(`${portal.url}/manage-api-credentials`);
  const expiresOn = utcDate(7);
  const value = await createSecret(page, SHORT_SECRET, expiresOn);
  state.shortValue = value;
  await page.goto(`${portal.url}/manage-api-credentials`);
  const row = page.locator("tr", { hasText: SHORT_SECRET });
  assert.match(await row.innerText(), new RegExp(`${expiresOn}[\\s\\S]*Expires soon: 7 days`));

  const before = new Set(readEmails(portal.dir).map((e) => e.file));
  const run = await runPortalCommand(portal, ["reminders", "run-once"]);
  assert.equal(run.code, 0, `reminders run-once failed:\n${run.stderr}`);
  const line = run.stdout.split("\n").find((l) => l.includes(SHORT_SECRET));
  assert.ok(line, `run-once printed nothing about the secret:\n${run.stdout}`);
  assert.match(line, /^queued \(1 emails?\) /, `run-once: ${line}`);
  assert.ok(line.includes(APP), line);
  assert.equal(run.stdout.includes(value) || run.stderr.includes(value), false, "run-once printed the secret's value");

  const isReminder = (e) => e.subject.includes(`"${SHORT_SECRET}"`);
  const reminders = readEmails(portal.dir).filter((e) => !before.has(e.file) && isReminder(e));
  assert.equal(reminders.length, 1, `reminder emails: ${reminders.map((e) => `${e.to}: ${e.subject}`).join("; ")}`);
  const [mail] = reminders;
  assert.match(mail.to, new RegExp(`(^|<)${USER.email.replace(/\./g, "\\.")}(>|$)`), "the reminder goes to the application's credential manager");
  assert.equal(mail.subject, `Client secret "${SHORT_SECRET}" of ${APP} expires in 7 days`);
  for (const [part, body] of [["text", mail.text], ["html", mail.html]]) {
    assert.ok(body.includes(SHORT_SECRET), `the ${part} part does not name the secret`);
    assert.ok(body.includes(APP), `the ${part} part does not name the application`);
    assert.ok(body.includes(state.clientId), `the ${part} part does not give the client ID`);
    assert.ok(body.includes(expiresOn), `the ${part} part does not give the expiration date`);
    assert.ok(body.includes(value.slice(0, 10)), `the ${part} part does not give the hint`);
    assert.ok(body.includes(`${portal.url}/manage-api-credentials`), `the ${part} part does not link the page`);
  }
  // Neither the reminder nor any other email ever carries a secret value.
  for (const e of readEmails(portal.dir)) {
    assert.equal(e.raw.includes(value) || e.text.includes(value) || e.html.includes(value), false, `${e.file} carries the secret's value`);
  }

  // Nor does the portal's log (standard output and error).
  for (const v of [state.firstValue, value]) {
    assert.equal(portal.lines.some((l) => l.includes(v)), false, "the portal logged a secret value");
  }

  // A second pass sends nothing new for this notice.
  const rerun = await runPortalCommand(portal, ["reminders", "run-once"]);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.equal(readEmails(portal.dir).filter(isReminder).length, 1, "the reminder went out twice");
  await page.context().close();
});

step("6. the admin's overview, reminders and audit log show what happened", async () => {
  const admin = state.admin;
  await admin.goto(`${portal.url}/admin`);
  const soon = admin.locator("tr", { hasText: SHORT_SECRET });
  await soon.waitFor();
  assert.match(await soon.innerText(), new RegExp(`${APP}[\\s\\S]*7 days`));
  await look(admin, "admin-overview");

  await admin.getByRole("navigation", { name: "Administration" }).getByRole("link", { name: "Reminders" }).click();
  await admin.getByRole("heading", { name: "Reminders", level: 1 }).waitFor();
  assert.ok((await admin.locator("main").innerText()).includes(SHORT_SECRET), "the reminder sent is not listed");
  await look(admin, "admin-reminders");

  await admin.getByRole("navigation", { name: "Administration" }).getByRole("link", { name: "Audit log" }).click();
  await admin.getByRole("heading", { name: "Audit log", level: 1 }).waitFor();
  const log = await admin.locator("main table").innerText();
  // Actions in words (issue 14, point 5); the stored names are on hover and in the CSV.
  for (const action of ["Organisation created", "Application registered", "Credential manager role granted", "Client secret created", "Client secret deleted"]) {
    assert.ok(log.includes(action), `the audit log has no ${action}`);
  }
  assert.ok(log.includes(USER.email), "the audit log does not name the credential manager");
  assert.equal((await admin.content()).includes(state.shortValue), false, "the audit log shows a secret value");
  await look(admin, "audit-log", { fullPage: false }); // the newest events; the whole log is long
  await admin.context().close();

  assert.deepEqual(errors, [], "console errors (a CSP violation shows here)");
});
