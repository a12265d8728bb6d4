// Shared by the browser tests that run on the demo data set: a fresh data directory, `keel demo`
// (which prints the accounts and their passwords), `keel serve` on a free port, Chromium through
// playwright-core, and signed-in pages with cookies of their own. Not a test file itself.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const KEEL_BIN = resolve(process.env.KEEL_BIN || join(here, '../../target/debug/keel'));
export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];

function keelEnv() {
  // keel reads every KEEL_* variable as configuration and refuses unknown ones (KEEL_BIN
  // included), so the server gets none of the caller's KEEL_* variables except KEEL_LOG.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEEL_')));
  env.KEEL_LOG = process.env.KEEL_LOG || 'warn';
  env.RUST_BACKTRACE = '0';
  return env;
}

/** A demo site under a temporary directory named after `prefix`; `close()` removes it. */
export function demoSite(prefix) {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const dataDir = join(work, 'data');
  const site = { work, dataDir, server: null, browser: null, base: null };

  /** Runs `keel demo` and returns the printed accounts by e-mail. */
  site.loadDemo = (tickets = 30) => {
    assert.ok(existsSync(KEEL_BIN), `keel binary not found at ${KEEL_BIN}; build it with "cargo build -p keel" or set KEEL_BIN`);
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found`);
    const r = spawnSync(KEEL_BIN, ['--data-dir', dataDir, 'demo', '--tickets', String(tickets)], { cwd: work, env: keelEnv(), encoding: 'utf8' });
    assert.equal(r.status, 0, `keel demo failed:\n${r.stdout}\n${r.stderr}`);
    const accounts = {};
    for (const line of r.stdout.split('\n')) {
      const m = line.match(/^\s+(\S+@\S+)\s+(demo-\S+)/);
      if (m) accounts[m[1]] = m[2];
    }
    return accounts;
  };

  /** Starts `keel serve` and Chromium; resolves to the base URL. */
  site.start = async () => {
    const child = spawn(KEEL_BIN, ['--data-dir', dataDir, '--bind', '127.0.0.1:0', 'serve'], {
      cwd: work,
      env: keelEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    const output = () => `--- keel stdout ---\n${out}\n--- keel stderr ---\n${err}`;
    site.server = await new Promise((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`keel did not start within 20 s\n${output()}`)), 20_000);
      child.stdout.on('data', (d) => {
        out += d;
        const serving = out.match(/Keel is serving on (http:\/\/127\.0\.0\.1:\d+)/);
        if (serving) {
          clearTimeout(timer);
          resolvePromise({ child, base: serving[1], output });
        }
      });
      child.stderr.on('data', (d) => {
        err += d;
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`keel exited early (code ${code}, signal ${signal})\n${output()}`));
      });
    });
    process.on('exit', () => {
      try {
        if (child.exitCode === null) child.kill('SIGKILL');
      } catch {}
    });
    site.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    site.base = site.server.base;
    return site.base;
  };

  /** A signed-in page of its own (own cookies) for one person. */
  site.signIn = async (email, password, locale = 'en-US') => {
    const context = await site.browser.newContext({ locale, timezoneId: 'Asia/Shanghai', viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(10_000);
    const page = await context.newPage();
    await page.goto(site.base + '/login');
    await page.fill('#f-email', email);
    await page.fill('#f-password', password);
    await clickAndLoad(page, page.getByTestId('submit'));
    assert.notEqual(new URL(page.url()).pathname, '/login', `${email} signed in`);
    return page;
  };

  /** Stops the browser and the server (SIGTERM, then SIGKILL after 5 s) and removes the directory. */
  site.close = async () => {
    await site.browser?.close().catch(() => {});
    const child = site.server?.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(work, { recursive: true, force: true });
  };
  return site;
}

export async function clickAndLoad(page, locator) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), locator.click()]);
}

/** Raises an incident in the portal (in `category` when given); returns its path and number. */
export async function raiseIncident(page, base, title, description, category) {
  await page.goto(base + '/incidents/new');
  await page.fill('#f-title', title);
  await page.fill('#f-description', description);
  if (category) await page.locator('#f-category_id').selectOption({ label: category });
  await clickAndLoad(page, page.locator('form button[type="submit"]').last());
  const path = new URL(page.url()).pathname;
  assert.match(path, /^\/incidents\/[^/]+$/);
  const number = (await page.locator('h1 .mono').textContent()).trim();
  assert.match(number, /^INC-\d{6}$/);
  return { path, number };
}
