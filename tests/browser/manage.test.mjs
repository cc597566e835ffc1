// The credential manager's journey in a real browser: accept the invitation, enrol TOTP, sign in,
// create a secret in the dialog, copy it, reload and see only the hint, delete it. axe-core runs
// on every page seen.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { join } from "node:path";
import { startPortal, launchBrowser, freshCode, seriousViolations, waitFor, screenshotDir } from "./support.mjs";

let portal;
let browser;
// A webhook receiver on loopback (the portal runs with PORTAL_WEBHOOK_ALLOW_PRIVATE=on): it
// answers 204 and keeps what it got.
const received = [];
const receiver = createServer((req, res) => {
  let body = "";
  req.on("data", (c) => (body += c));
  req.on("end", () => {
    received.push({ headers: req.headers, body });
    res.writeHead(204).end();
  });
});

before(async () => {
  portal = await startPortal({ PORTAL_WEBHOOK_ALLOW_PRIVATE: "on" });
  browser = await launchBrowser();
  await new Promise((ok) => receiver.listen(0, "127.0.0.1", ok));
});

after(async () => {
  receiver.close();
  await browser?.close();
  const code = await portal?.stop();
  assert.equal(code, 0, "the portal did not stop cleanly");
});

async function accessible(page, label) {
  const violations = await seriousViolations(page);
  assert.deepEqual(violations, [], `${label}: serious or critical axe-core violations`);
}

test("a credential manager creates, copies and deletes a secret", async () => {
  const jane = portal.users.find((u) => u.role === "credential-manager");
  assert.ok(jane, `no credential manager among ${JSON.stringify(portal.users)}`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: portal.url });
  const page = await context.newPage();
  const errors = [];
  // Script errors and CSP refusals ("Refused to ..."); HTTP statuses of resources are expected
  // (the 409 of a reloaded create form, the browser's favicon request).
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(e.message));

  // The invitation: choose a password.
  await page.goto(jane.link);
  await accessible(page, "invitation");
  const password = "correct horse battery staple 42";
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Confirm password").fill(password);
  await page.getByRole("button", { name: "Continue" }).click();

  // Enrol TOTP from the key shown as text.
  await page.waitForURL("**/mfa/setup");
  await accessible(page, "enrolment");
  const qr = await page.locator("img.qr").getAttribute("src");
  assert.match(qr, /^data:image\/png;base64,/, "the QR code is an inline image");
  const key = (await page.locator("#totp-key").innerText()).trim();
  const used = new Set();
  await page.getByLabel("Authentication code").fill(await freshCode(key, used));
  await page.getByRole("button", { name: "Verify" }).click();
  await page.getByRole("heading", { name: "Your recovery codes" }).waitFor();
  await accessible(page, "recovery codes");
  assert.equal(await page.locator("#recovery-codes li").count(), 10);
  await page.getByRole("link", { name: "Continue" }).click();

  // The page.
  await page.waitForURL("**/manage-api-credentials");
  await page.getByRole("heading", { name: "Manage API Credentials", level: 1 }).waitFor();
  await accessible(page, "manage page");
  const section = page.locator("section.app", { has: page.getByRole("heading", { name: "Partner-NL-DemoRegistry-DM" }) });

  // The dialog: focus moves in, Escape closes it.
  await section.getByRole("link", { name: "Create new secret" }).click();
  const dialog = section.locator("dialog[open]");
  await dialog.waitFor();
  assert.equal(await page.evaluate(() => document.activeElement?.closest("dialog") !== null), true, "focus is not in the dialog");
  await accessible(page, "create dialog");
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached" }).catch(() => {});
  assert.equal(await section.locator("dialog[open]").count(), 0, "Escape did not close the dialog");

  // Create a secret in the dialog.
  await section.getByRole("link", { name: "Create new secret" }).click();
  await dialog.getByLabel("Client secret name").fill("Browser test (Jane Doe)");
  const expires = await dialog.getByLabel("Expiration date").inputValue();
  assert.match(expires, /^\d{4}-\d{2}-\d{2}$/);
  await dialog.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: "Client secret created" }).waitFor();
  await accessible(page, "created");
  const value = (await page.locator("#secret-value").innerText()).trim();
  assert.match(value, /^wmdacs_[0-9A-Za-z]{32}[0-4][0-9A-Za-z]{5}$/);
  await page.getByRole("button", { name: "Copy secret" }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), value, "Copy secret copied something else");

  // Reload, go back to the page: only the hint remains.
  await page.reload();
  assert.equal((await page.content()).includes(value), false, "a reload showed the value again");
  await page.goto(`${portal.url}/manage-api-credentials`);
  const html = await page.content();
  assert.equal(html.includes(value), false);
  assert.ok(html.includes(`${value.slice(0, 10)}…`), "the hint is missing");

  // Copy client ID.
  const clientId = (await section.locator("dd code").first().innerText()).trim();
  await section.getByRole("button", { name: /Copy client ID/ }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), clientId);
  // Issue 18, point 4: screen readers hear "Copied" from a live region; focus stays put.
  await waitFor(async () => (await page.locator("body > .copy-status[role=status]").textContent()) === "Copied", 3000, "the Copied announcement");
  assert.equal(await page.evaluate(() => document.activeElement?.matches("button[data-copy-text]")), true, "focus moved");

  // Delete it through its dialog.
  await section.getByRole("link", { name: "Delete Browser test (Jane Doe)" }).click();
  const confirm = section.locator("dialog[open]");
  await confirm.waitFor();
  await accessible(page, "delete dialog");
  assert.match(await confirm.innerText(), /can no longer obtain new tokens/);
  await confirm.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByText("Deleted the client secret").waitFor();
  assert.equal(await section.getByText("Browser test (Jane Doe)").count(), 0);

  // Phone width: no sideways scrolling.
  await page.setViewportSize({ width: 360, height: 800 });
  await page.reload();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 360px`);

  // Issue 14, point 1: at 390 px a secret's row is a card in which each value keeps its
  // column's name beside it, on the same line; the table keeps its rows and cells for
  // screen readers.
  await page.setViewportSize({ width: 390, height: 844 });
  const smc = page.locator("section.app", { has: page.getByRole("heading", { name: "Partner-NL-DemoRegistry-SMC", exact: true }) });
  const row = smc.locator("tbody tr").first();
  for (const label of ["Created", "Expires (UTC)"]) {
    const cell = row.locator(`td[data-label="${label}"]`);
    const seen = await cell.evaluate((td) => {
      const before = getComputedStyle(td, "::before").content;
      const date = [...td.childNodes].find((n) => n.nodeType === Node.TEXT_NODE && /\d{4}-\d{2}-\d{2}/.test(n.textContent));
      const range = document.createRange();
      range.selectNodeContents(date);
      const cellTop = td.getBoundingClientRect().top + parseFloat(getComputedStyle(td).paddingTop);
      return { before, dateTop: range.getBoundingClientRect().top, cellTop, display: getComputedStyle(td).display };
    });
    assert.equal(seen.before, `"${label}: "`, `${label} is not shown`);
    assert.equal(seen.display, "block", "the row is not a card");
    assert.ok(Math.abs(seen.dateTop - seen.cellTop) < 4, `${label}: the date is not beside its label (${JSON.stringify(seen)})`);
  }
  assert.equal(await smc.getByRole("row").count() > 1, true, "the rows are gone for screen readers");
  assert.ok((await smc.getByRole("columnheader", { name: "Created" }).count()) === 1, "the header is gone for screen readers");
  await accessible(page, "manage page at 390 px");

  // Issue 16, point 3: turn self-rotation on for the DM application; the page says so.
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByRole("button", { name: "Turn on self-rotation of Partner-NL-DemoRegistry-DM" }).click();
  await page.getByText("Self-rotation is on for Partner-NL-DemoRegistry-DM").waitFor();
  await page.getByRole("button", { name: "Turn off self-rotation of Partner-NL-DemoRegistry-DM" }).waitFor();
  await accessible(page, "manage page, self-rotation on");

  // Issue 18, point 3: "Create replacement" of a secret of the SMC application: the form has its
  // name; the answer gives the next steps.
  const shots = screenshotDir();
  const smcSection = page.locator("section.app", { has: page.getByRole("heading", { name: "Partner-NL-DemoRegistry-SMC", exact: true }) });
  const replace = smcSection.getByRole("link", { name: /^Create replacement for / }).first();
  const replacedName = (await replace.getAttribute("aria-label")).replace("Create replacement for ", "");
  await replace.click();
  await page.getByRole("heading", { name: `Create a replacement for “${replacedName}”`, exact: false }).waitFor();
  await accessible(page, "replacement form");
  assert.equal(await page.getByLabel("Client secret name").inputValue(), replacedName);
  await page.getByRole("button", { name: "Create" }).click();
  await page.getByRole("heading", { name: "Next steps" }).waitFor();
  await accessible(page, "replacement created");
  await page.screenshot({ path: join(shots, "replacement-created.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  const createdOverflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(createdOverflow <= 0, `the replacement's page scrolls sideways by ${createdOverflow}px at 390px`);
  await accessible(page, "replacement created at 390 px");
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.getByRole("link", { name: "Back to Manage API Credentials" }).click();

  // Issue 18, point 1: the activity page, linked from the Manage page, accessible, fits a phone.
  await page.getByRole("link", { name: "Activity of your applications" }).click();
  await page.getByRole("heading", { name: "Activity of your applications", level: 1 }).waitFor();
  assert.ok((await page.getByText("Client secret created").count()) >= 2, "the secrets created above are listed");
  await accessible(page, "activity page");
  await page.screenshot({ path: join(shots, "activity.png"), fullPage: false });
  await page.setViewportSize({ width: 390, height: 844 });
  const activityOverflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(activityOverflow <= 0, `the activity page scrolls sideways by ${activityOverflow}px at 390px`);
  await accessible(page, "activity page at 390 px");
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${portal.url}/manage-api-credentials`);

  // Issue 17, point 1: add a webhook endpoint. A wrong URL gets its message beside the field;
  // a standard endpoint's signing secret is shown once; "Send test event" reaches the receiver,
  // and the delivery shows on the page; "Remove" asks in a dialog.
  const dm = page.locator("section.app", { has: page.getByRole("heading", { name: "Partner-NL-DemoRegistry-DM", exact: true }) });
  await dm.getByRole("link", { name: "Add webhook endpoint for Partner-NL-DemoRegistry-DM" }).click();
  await page.getByRole("heading", { name: "Add a webhook endpoint for Partner-NL-DemoRegistry-DM" }).waitFor();
  await accessible(page, "webhook form");
  await page.getByLabel("Endpoint URL").fill("https://hooks.example.org/wmda/secret-events");
  await page.screenshot({ path: join(shots, "webhook-add.png"), fullPage: true });
  await page.getByLabel("Endpoint URL").fill("https://user:secret@hooks.example.org/wmda");
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await page.getByText("The URL must not hold a user name or password.").waitFor();
  assert.equal(await page.getByLabel("Endpoint URL").getAttribute("aria-invalid"), "true");
  await accessible(page, "webhook form with an error");
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
  await page.getByLabel("Endpoint URL").fill(hookUrl);
  await page.getByLabel("Standard Webhooks (signed JSON)").check();
  await page.getByRole("button", { name: "Add endpoint" }).click();
  await page.getByRole("heading", { name: "Webhook endpoint added" }).waitFor();
  await accessible(page, "webhook added");
  const signing = (await page.locator("#signing-secret").innerText()).trim();
  assert.match(signing, /^whsec_[A-Za-z0-9+/=]{44}$/);
  await page.getByRole("button", { name: "Copy signing secret" }).click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), signing);
  await page.getByRole("link", { name: "Back to Manage API Credentials" }).click();
  await page.getByRole("heading", { name: "Manage API Credentials", level: 1 }).waitFor();
  assert.equal((await page.content()).includes(signing), false, "the signing secret was shown again");
  await dm.getByRole("button", { name: "Send test event to 127.0.0.1" }).click();
  await page.getByText("Test event sent").waitFor();
  await waitFor(() => received.length > 0, 10000, "the test event");
  assert.equal(JSON.parse(received[0].body).type, "webhook.test");
  assert.match(received[0].headers["webhook-signature"], /^v1,/);
  await waitFor(async () => {
    await page.reload();
    return (await dm.getByText("Delivered (204)").count()) > 0;
  }, 10000, "the delivery on the page");
  await dm.getByText("Recent deliveries (1)").click();
  await accessible(page, "manage page with a webhook endpoint");
  await dm.locator("article.endpoint").screenshot({ path: join(shots, "webhook-endpoint.png") });
  await page.setViewportSize({ width: 390, height: 844 });
  const hookOverflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(hookOverflow <= 0, `the page with a webhook endpoint scrolls sideways by ${hookOverflow}px at 390px`);
  await page.setViewportSize({ width: 1280, height: 900 });
  await dm.getByRole("button", { name: "Remove the webhook endpoint on 127.0.0.1" }).click();
  const ask = page.locator("dialog[open]");
  await ask.waitFor();
  await accessible(page, "remove endpoint dialog");
  await ask.getByRole("button", { name: "Remove", exact: true }).click();
  await page.getByText("The webhook endpoint is removed").waitFor();
  assert.equal(await dm.getByText("No webhook endpoints").count(), 1);

  // Issue 16, point 5: the API's documentation, linked from the page, works without a script of
  // its own, is accessible and fits a phone.
  await page.getByRole("link", { name: "machine API" }).first().click();
  await page.getByRole("heading", { name: "secret-portal machine API" }).waitFor();
  await page.getByRole("heading", { name: "POST /api/v1/self/secrets" }).waitFor();
  await accessible(page, "API documentation");
  await page.setViewportSize({ width: 390, height: 844 });
  const docsOverflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(docsOverflow <= 0, `the API documentation scrolls sideways by ${docsOverflow}px at 390px`);

  assert.deepEqual(errors, [], "console errors (a CSP violation shows here)");
  await context.close();
});
