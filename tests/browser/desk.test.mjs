// Real-browser end-to-end test of the service desk: a contact raises an incident in the portal,
// an agent assigns it, adds an internal note and a public reply, the contact sees the reply but
// not the note, the agent resolves, the contact confirms and rates; a contact of another
// organisation sees none of it (list and direct URL); the portal speaks Chinese in zh-CN.
//
// Loads the demo (`keel demo`, which prints the accounts and their passwords) into a fresh data
// directory, starts `keel serve` on a free port and drives Debian's Chromium through
// playwright-core. The caller builds the binary: cargo build -p keel && bash tests/browser/run.sh

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const KEEL_BIN = resolve(process.env.KEEL_BIN || join(here, '../../target/debug/keel'));
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'];

const work = mkdtempSync(join(tmpdir(), 'keel-desk-e2e-'));
const dataDir = join(work, 'data');
let server;
let browser;

function keelEnv() {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEEL_')));
  env.KEEL_LOG = process.env.KEEL_LOG || 'warn';
  env.RUST_BACKTRACE = '0';
  return env;
}

/** Runs `keel demo` and returns the printed accounts by e-mail. */
function loadDemo() {
  const r = spawnSync(KEEL_BIN, ['--data-dir', dataDir, 'demo', '--tickets', '30'], { cwd: work, env: keelEnv(), encoding: 'utf8' });
  assert.equal(r.status, 0, `keel demo failed:\n${r.stdout}\n${r.stderr}`);
  const accounts = {};
  for (const line of r.stdout.split('\n')) {
    const m = line.match(/^\s+(\S+@\S+)\s+(demo-\S+)/);
    if (m) accounts[m[1]] = m[2];
  }
  return accounts;
}

function startKeel() {
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
  return new Promise((resolvePromise, reject) => {
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
}

process.on('exit', () => {
  try {
    if (server?.child && server.child.exitCode === null) server.child.kill('SIGKILL');
  } catch {}
});

after(async () => {
  await browser?.close().catch(() => {});
  const child = server?.child;
  if (child && child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
  rmSync(work, { recursive: true, force: true });
});

async function clickAndLoad(page, locator) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), locator.click()]);
}

/** A signed-in page of its own (own cookies) for one person. */
async function signIn(base, email, password, locale = 'en-US') {
  const context = await browser.newContext({ locale, timezoneId: 'Asia/Shanghai', viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  await page.goto(base + '/login');
  await page.fill('#f-email', email);
  await page.fill('#f-password', password);
  await clickAndLoad(page, page.getByTestId('submit'));
  assert.notEqual(new URL(page.url()).pathname, '/login', `${email} signed in`);
  return page;
}

/** The transition form of an action on a ticket page. */
const actionForm = (page, action) => page.locator('form', { has: page.locator(`input[name="action"][value="${action}"]`) });

test('Service desk: portal → agent → note and reply → resolve → confirm and rate; other customers see nothing', { timeout: 120_000 }, async (t) => {
  assert.ok(existsSync(KEEL_BIN), `keel binary not found at ${KEEL_BIN}; build it with "cargo build -p keel" or set KEEL_BIN`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found`);
  const accounts = loadDemo();
  const contact = 'chen.jing@ecm.example';
  const agent = 'emma.clarke@demo.keel.test';
  const stranger = 'alice.moore@northwind.example';
  for (const a of [contact, agent, stranger]) assert.ok(accounts[a], `keel demo printed a password for ${a}`);
  server = await startKeel();
  const { base } = server;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });

  const title = `打印机卡纸 e2e ${Date.now()}`;
  const note = 'Internal: the toner supplier is slow, do not tell the customer';
  const reply = '您好，我们已安排工程师今天下午上门处理。';
  let ticketPath;
  let number;

  const customer = await signIn(base, contact, accounts[contact]);
  await t.test('the contact raises an incident in the portal', async () => {
    await customer.goto(base + '/incidents/new');
    await customer.fill('#f-title', title);
    await customer.fill('#f-description', '三楼财务部的打印机一直卡纸。');
    await clickAndLoad(customer, customer.locator('form button[type="submit"]').last());
    ticketPath = new URL(customer.url()).pathname;
    assert.match(ticketPath, /^\/incidents\/[^/]+$/);
    number = (await customer.locator('h1 .mono').textContent()).trim();
    assert.match(number, /^INC-\d{6}$/);
  });

  await t.test('the portal page in zh-CN shows Chinese', async () => {
    await clickAndLoad(customer, customer.getByTestId('lang-zh'));
    assert.equal(await customer.locator('html').getAttribute('lang'), 'zh-CN');
    await customer.goto(base + ticketPath);
    assert.equal((await customer.getByTestId('status').textContent()).trim(), '新建');
    await customer.getByRole('heading', { level: 2, name: '沟通记录' }).waitFor();
    await customer.goto(base + '/incidents');
    await customer.getByTestId('new').filter({ hasText: '提交工单' }).waitFor();
    await customer.locator('#results').getByRole('link', { name: number }).waitFor();
  });

  const desk = await signIn(base, agent, accounts[agent]);
  await t.test('the agent assigns it, adds an internal note and a public reply', async () => {
    await desk.goto(base + ticketPath);
    await desk.locator('summary[data-action="assign"]').click();
    const assign = actionForm(desk, 'assign');
    await assign.locator('select[name="team_id"]').selectOption({ label: '服务台 Service desk' });
    await clickAndLoad(desk, assign.locator('button[type="submit"]'));
    assert.equal((await desk.getByTestId('status').textContent()).trim(), 'Assigned');

    const form = desk.getByTestId('reply');
    await form.locator('textarea[name="body"]').fill(note);
    await form.locator('select[name="visibility"]').selectOption('internal');
    await clickAndLoad(desk, form.locator('button[type="submit"]'));
    await desk.getByTestId('reply').locator('textarea[name="body"]').fill(reply);
    await desk.getByTestId('reply').locator('select[name="visibility"]').selectOption('public');
    await clickAndLoad(desk, desk.getByTestId('reply').locator('button[type="submit"]'));
    const conversation = desk.getByTestId('conversation');
    await conversation.locator('article.internal', { hasText: note }).waitFor();
    await conversation.locator('article.public', { hasText: reply }).waitFor();
  });

  await t.test('the contact sees the reply but not the internal note', async () => {
    await customer.goto(base + ticketPath);
    const conversation = customer.getByTestId('conversation');
    await conversation.getByText(reply).waitFor();
    assert.equal(await customer.getByText(note).count(), 0, 'the internal note is not on the page');
    assert.ok(!(await customer.content()).includes('toner supplier'), 'nor anywhere in the HTML');
  });

  await t.test('the agent starts and resolves it', async () => {
    await desk.goto(base + ticketPath);
    await clickAndLoad(desk, desk.locator('button[data-action="start"]'));
    await desk.locator('summary[data-action="resolve"]').click();
    const resolveForm = actionForm(desk, 'resolve');
    await resolveForm.locator('select[name="resolution_code"]').selectOption('solved');
    await resolveForm.locator('textarea[name="resolution_notes"]').fill('Replaced the pick-up roller.');
    await clickAndLoad(desk, resolveForm.locator('button[type="submit"]'));
    assert.equal((await desk.getByTestId('status').textContent()).trim(), 'Resolved');
  });

  await t.test('the contact confirms the resolution and rates the service', async () => {
    await customer.goto(base + ticketPath);
    await clickAndLoad(customer, customer.locator('button[data-action="confirm"]'));
    assert.equal((await customer.getByTestId('status').textContent()).trim(), '已关闭');
    const rating = customer.getByTestId('rating');
    await rating.locator('select[name="score"]').selectOption('5');
    await rating.locator('input[name="comment"]').fill('很快，谢谢！');
    await clickAndLoad(customer, rating.locator('button[type="submit"]'));
    await customer.getByText('★★★★★').waitFor();
  });

  await t.test("another organisation's contact sees nothing of it", async () => {
    const other = await signIn(base, stranger, accounts[stranger]);
    await other.goto(base + '/incidents');
    assert.equal(await other.locator('#results').getByText(number).count(), 0, 'not in their list');
    assert.equal(await other.getByText(title).count(), 0);
    const direct = await other.goto(base + ticketPath);
    assert.equal(direct.status(), 404, 'the direct URL answers 404');
    assert.ok(!(await other.content()).includes(title));
    const byNumber = await other.goto(base + '/incidents/' + number);
    assert.equal(byNumber.status(), 404, 'the number answers 404 too');
  });
});
