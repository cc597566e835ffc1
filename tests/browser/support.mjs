// Shared pieces of the browser tests: the portal as a child process, Chromium, TOTP codes, axe.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const here = new URL(".", import.meta.url).pathname;

/** The portal binary: PORTAL_BIN, or the debug build of this checkout. */
export const portalBin = process.env.PORTAL_BIN ?? resolve(here, "../../target/debug/secret-portal");

async function freePort() {
  return new Promise((ok) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Starts `secret-portal serve --demo` on SQLite in a fresh folder and waits until it listens, at
 * `http://<host>:<port>` (PORTAL_BASE_URL).
 * Resolves to { url, users: [{role, email, link}], lines, stop() }.
 */
export async function startPortal(extraEnv = {}, { host = "127.0.0.1" } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "portal-browser-"));
  const port = await freePort();
  // `host: "localhost"` puts the portal at a host name, where passkeys are on (DESIGN.md
  // section 11: WebAuthn refuses an IP address as relying-party id); it still listens on 127.0.0.1.
  const url = `http://${host}:${port}`;
  const env = { PATH: process.env.PATH, PORTAL_BIND: `127.0.0.1:${port}`, PORTAL_BASE_URL: url, RUST_LOG: "info", ...extraEnv };
  const child = spawn(portalBin, ["serve", "--demo"], {
    cwd: dir,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines = [];
  const users = [];
  let listening;
  const ready = new Promise((ok, fail) => {
    listening = ok;
    child.on("exit", (code) => fail(new Error(`portal exited with ${code}:\n${lines.join("\n")}`)));
  });
  const read = (stream) => {
    let buffer = "";
    stream.on("data", (chunk) => {
      buffer += chunk.toString();
      let i;
      while ((i = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        lines.push(line);
        const m = line.match(/^(wmda-admin|credential-manager) (\S+) (\S+)$/);
        if (m) users.push({ role: m[1], email: m[2], link: m[3] });
        if (line.includes("listening on http://")) listening();
      }
    });
  };
  read(child.stdout);
  read(child.stderr);
  await Promise.race([ready, new Promise((_, fail) => setTimeout(() => fail(new Error("portal did not start")), 20000))]);
  // Demo users are printed on stdout before the log line on stderr; the two streams arrive
  // independently, so give stdout a moment to catch up.
  for (let i = 0; i < 40 && users.length < 3; i++) await new Promise((r) => setTimeout(r, 50));
  return {
    url,
    dir,
    env,
    users,
    lines,
    stop: () =>
      new Promise((ok) => {
        child.once("exit", (code) => ok(code));
        child.kill("SIGTERM");
      }),
  };
}

/** Debian's Chromium, headless, with the flags this machine needs. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

function base32(text) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of text.replace(/[\s=]/g, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** RFC 6238 code (SHA-1, 6 digits, 30 s) for a base32 key, as an authenticator app computes it. */
export function totp(key, at = Date.now()) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const h = createHmac("sha1", base32(key)).update(counter).digest();
  const offset = h[19] & 0xf;
  return ((h.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).toString().padStart(6, "0");
}

/** A code that was not used yet: waits for the next 30-second step when `used` holds this one. */
export async function freshCode(key, used) {
  let code = totp(key);
  while (used.has(code)) {
    await new Promise((r) => setTimeout(r, 1000));
    code = totp(key);
  }
  used.add(code);
  return code;
}

const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/**
 * Runs axe-core on the page and returns the serious and critical violations. It is evaluated
 * through the DevTools protocol, which the page's CSP does not govern (the CSP still forbids inline
 * scripts for the page itself).
 */
export async function seriousViolations(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => globalThis.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}

/**
 * Runs another command of the portal binary (`reminders run-once`, `admin invite`, ...) against the
 * running portal's data: the same working directory (so the same ./data/portal.db, master key and
 * mail folder) and the same environment. Resolves to { code, stdout, stderr }.
 */
export function runPortalCommand(portal, args, timeoutMs = 30000) {
  return new Promise((ok, fail) => {
    const child = spawn(portalBin, args, { cwd: portal.dir, env: portal.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      fail(new Error(`secret-portal ${args.join(" ")} did not finish in ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      ok({ code, stdout, stderr });
    });
  });
}

/**
 * A TOTP code for a step this key has not used yet, without waiting when possible: the portal
 * accepts the steps from one before to one after the current one and refuses any step not later
 * than the last one it accepted, so after using the current step the next step's code works at
 * once. `steps` maps each key to the last step handed out (share one Map per test file).
 */
export async function nextCode(key, steps) {
  for (;;) {
    const now = Math.floor(Date.now() / 1000 / 30);
    const step = Math.max(now, (steps.get(key) ?? -Infinity) + 1);
    if (step <= now + 1) {
      steps.set(key, step);
      return totp(key, step * 30 * 1000);
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function decodeTransfer(body, encoding) {
  switch ((encoding ?? "7bit").toLowerCase()) {
    case "base64":
      return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
    case "quoted-printable": {
      const soft = body.replace(/=\r?\n/g, "");
      const bytes = [];
      for (let i = 0; i < soft.length; i++) {
        if (soft[i] === "=" && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
          bytes.push(parseInt(soft.slice(i + 1, i + 3), 16));
          i += 2;
        } else bytes.push(...Buffer.from(soft[i], "utf8"));
      }
      return Buffer.from(bytes).toString("utf8");
    }
    default:
      return body;
  }
}

/** RFC 2047 encoded words (`=?utf-8?b?...?=`, `=?utf-8?q?...?=`) decoded; blanks between them dropped. */
function decodeWords(value) {
  return value
    .replace(/(\?=)\s+(=\?)/g, "$1$2")
    .replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_, _charset, kind, text) =>
      kind.toLowerCase() === "b"
        ? Buffer.from(text, "base64").toString("utf8")
        : decodeTransfer(text.replace(/_/g, " "), "quoted-printable"),
    );
}

function splitMessage(raw) {
  const blank = raw.match(/\r?\n\r?\n/);
  const head = blank ? raw.slice(0, blank.index) : raw;
  const body = blank ? raw.slice(blank.index + blank[0].length) : "";
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const m = line.match(/^([A-Za-z-]+):\s*(.*)$/);
    if (m) headers[m[1].toLowerCase()] = m[2];
  }
  return { headers, body };
}

/**
 * The `.eml` files the portal wrote into `<dir>/data/mail` (mail goes there when no
 * PORTAL_SMTP_URL is set), oldest first, each as { file, raw, to, subject, text, html }: the
 * subject with its RFC 2047 words decoded, the plain-text and HTML parts with their transfer
 * encoding (quoted-printable or base64) undone.
 */
export function readEmails(dir) {
  const folder = join(dir, "data", "mail");
  let files;
  try {
    files = readdirSync(folder).filter((f) => f.endsWith(".eml")).sort();
  } catch {
    return [];
  }
  return files.map((file) => {
    const raw = readFileSync(join(folder, file), "utf8");
    const { headers, body } = splitMessage(raw);
    const email = { file, raw, to: decodeWords(headers.to ?? ""), subject: decodeWords(headers.subject ?? ""), text: "", html: "" };
    const boundary = (headers["content-type"] ?? "").match(/boundary="?([^";]+)"?/)?.[1];
    const parts = boundary ? body.split(`--${boundary}`).slice(1, -1).map((p) => splitMessage(p.replace(/^\r?\n/, ""))) : [{ headers, body }];
    for (const p of parts) {
      const type = (p.headers["content-type"] ?? "text/plain").toLowerCase();
      const decoded = decodeTransfer(p.body, p.headers["content-transfer-encoding"]);
      if (type.startsWith("text/plain")) email.text += decoded;
      else if (type.startsWith("text/html")) email.html += decoded;
    }
    return email;
  });
}

/** Polls `fn` every 200 ms until it returns something truthy; fails after `ms`. */
export async function waitFor(fn, ms = 10000, what = "a condition") {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Where screenshots go: docs/screenshots/ of this checkout when UPDATE_SCREENSHOTS=1 (to refresh
 * the committed pictures), otherwise a fresh temporary folder, so ordinary runs leave git clean.
 */
export function screenshotDir() {
  const dir =
    process.env.UPDATE_SCREENSHOTS === "1"
      ? resolve(here, "../../docs/screenshots")
      : mkdtempSync(join(tmpdir(), "portal-screenshots-"));
  mkdirSync(dir, { recursive: true });
  return dir;
}
