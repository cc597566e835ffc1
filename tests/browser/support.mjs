// Shared pieces of the browser tests: the portal as a child process, Chromium, TOTP codes, axe.
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
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
 * Starts `secret-portal serve --demo` on SQLite in a fresh folder and waits until it listens.
 * Resolves to { url, users: [{role, email, link}], lines, stop() }.
 */
export async function startPortal(extraEnv = {}) {
  const dir = mkdtempSync(join(tmpdir(), "portal-browser-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(portalBin, ["serve", "--demo"], {
    cwd: dir,
    env: { PATH: process.env.PATH, PORTAL_BIND: `127.0.0.1:${port}`, PORTAL_BASE_URL: url, RUST_LOG: "info", ...extraEnv },
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
