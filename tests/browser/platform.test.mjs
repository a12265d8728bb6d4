// Real-browser end-to-end test of Keel's web UI: first-run setup, sign-in, language switch,
// customer organisation, service project, process tailoring, history, sign-out.
//
// Starts the `keel` binary itself (KEEL_BIN, default ../../target/debug/keel relative to this
// file) on a free port with a fresh data directory, and drives Debian's Chromium
// (/usr/bin/chromium, headless) through playwright-core. The caller builds the binary:
//   cargo build -p keel && bash tests/browser/run.sh

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const KEEL_BIN = resolve(process.env.KEEL_BIN || join(here, '../../target/debug/keel'));
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

const ADMIN = {
  name: 'Ada Admin',
  email: 'ada.admin@example.com',
  password: 'correct-horse-battery-staple',
};
const ORG = { name: '华东电力集团', code: 'hddl' }; // codes are stored in capitals
const PROJECT = { name: '华东电力运维服务', code: 'hddl-ops' };
const REASON = '合同不含问题管理（e2e）';

// Everything temporary goes under one directory; screenshots go to their own, which is kept.
const work = mkdtempSync(join(tmpdir(), 'keel-e2e-'));
const shots = mkdtempSync(join(tmpdir(), 'keel-e2e-shots-'));

let server; // { child, base, setupLink, output() }
let context;

/** Starts keel on 127.0.0.1:0 (the OS picks a free port) and waits for its setup link. */
function startKeel() {
  const dataDir = join(work, 'data');
  // keel reads every KEEL_* variable as configuration and refuses unknown ones (KEEL_BIN
  // included), so the server gets none of the caller's KEEL_* variables except KEEL_LOG.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEEL_')));
  env.KEEL_LOG = process.env.KEEL_LOG || 'warn';
  env.RUST_BACKTRACE = '0';
  const child = spawn(KEEL_BIN, ['--data-dir', dataDir, '--bind', '127.0.0.1:0', 'serve'], {
    cwd: work, // no stray ./keel.toml gets picked up
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  const output = () => `--- keel stdout ---\n${out}\n--- keel stderr ---\n${err}`;
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`keel printed no setup link within 20 s\n${output()}`));
    }, 20_000);
    const check = () => {
      const serving = out.match(/Keel is serving on (http:\/\/127\.0\.0\.1:\d+)/);
      const setup = out.match(/(http:\/\/127\.0\.0\.1:\d+\/setup\?token=[^\s]+)/);
      if (serving && setup) {
        clearTimeout(timer);
        resolvePromise({ child, base: serving[1], setupLink: setup[1], output });
      }
    };
    child.stdout.on('data', (d) => {
      out += d;
      check();
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`cannot start ${KEEL_BIN}: ${e.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`keel exited early (code ${code}, signal ${signal})\n${output()}`));
    });
  });
}

async function stopKeel() {
  const child = server?.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

// If the runner dies some other way, never leave the server behind.
process.on('exit', () => {
  try {
    if (server?.child && server.child.exitCode === null) server.child.kill('SIGKILL');
  } catch {}
});

after(async () => {
  await context?.close().catch(() => {});
  await stopKeel();
  rmSync(work, { recursive: true, force: true });
});

/** Clicks something that submits or navigates and waits for the new page to load. */
async function clickAndLoad(page, locator) {
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), locator.click()]);
}

test('Keel platform: setup, sign-in, 中文, organisation, project, tailoring, history, sign-out', { timeout: 60_000 }, async (t) => {
  assert.ok(existsSync(KEEL_BIN), `keel binary not found at ${KEEL_BIN}; build it with "cargo build -p keel" or set KEEL_BIN`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found; install it with "apt-get install -y chromium"`);

  server = await startKeel();
  const { base } = server;

  context = await chromium.launchPersistentContext(join(work, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    locale: 'en-US',
    timezoneId: 'Asia/Shanghai',
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  const page = context.pages()[0] ?? (await context.newPage());
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  const path = () => new URL(page.url()).pathname;

  // Steps run in order; once one fails the rest are skipped instead of failing in cascade.
  let broken = null;
  const step = (name, opts, fn) => {
    if (typeof opts === 'function') [fn, opts] = [opts, {}];
    if (broken) return t.test(name, { skip: `an earlier step failed: ${broken}` }, () => {});
    return t.test(name, opts, async (st) => {
      try {
        await fn(st);
      } catch (e) {
        if (!opts.todo) {
          broken = name;
          st.diagnostic(`page: ${page.url()}`);
          st.diagnostic(server.output());
        }
        throw e;
      }
    });
  };

  try {
    // The language links return to the page they were clicked on, query string included.
    await step('switching language on the setup page keeps the one-time link', async (st) => {
      try {
        await page.goto(server.setupLink);
        await clickAndLoad(page, page.getByTestId('lang-zh'));
        st.diagnostic(`landed on ${page.url()}`);
        assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
        await page.getByRole('heading', { level: 1, name: '创建首位管理员' }).waitFor({ timeout: 1_000 });
      } finally {
        await context.clearCookies(); // back to English (Accept-Language) for the steps below
      }
    });

    // (1) first-run setup: a too-short password is refused in place, the typed values stay.
    await step('setup refuses a short password in place, then creates the administrator', async () => {
      await page.goto(server.setupLink);
      await page.locator('h1', { hasText: 'Create the first administrator' }).waitFor();
      assert.equal(await page.locator('#f-time_zone').inputValue(), 'Asia/Shanghai');
      await page.fill('#f-display_name', ADMIN.name);
      await page.fill('#f-email', ADMIN.email);
      await page.fill('#f-password', 'short');
      await clickAndLoad(page, page.getByTestId('submit'));

      assert.equal(path(), '/setup', 'stays on the setup page');
      const field = page.locator('.field.invalid', { has: page.locator('#f-password') });
      const error = field.locator('.error[data-field="password"]');
      assert.equal(await error.isVisible(), true, 'the password error is shown next to the field');
      assert.equal((await error.textContent()).trim(), 'Use at least 10 characters.');
      assert.equal(await page.locator('.field.invalid').count(), 1, 'only the password field is marked');
      assert.equal(await page.locator('#f-display_name').inputValue(), ADMIN.name, 'name kept');
      assert.equal(await page.locator('#f-email').inputValue(), ADMIN.email, 'e-mail kept');
      assert.equal(await page.locator('#f-password').inputValue(), '', 'password not echoed back');

      await page.fill('#f-password', ADMIN.password);
      await clickAndLoad(page, page.getByTestId('submit'));
      assert.equal(path(), '/login');
      await page.getByRole('status').filter({ hasText: 'The administrator was created. Sign in.' }).waitFor();
    });

    // (2) sign in
    await step('signs in', async () => {
      await page.fill('#f-email', ADMIN.email);
      await page.fill('#f-password', ADMIN.password);
      await clickAndLoad(page, page.getByTestId('submit'));
      assert.equal(path(), '/');
      await page.getByText(`Welcome, ${ADMIN.name}.`).waitFor();
      assert.equal(await page.getByTestId('profile-link').textContent(), ADMIN.name);
      assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    });

    // (3) switch to Chinese
    await step('switches the interface to 中文', async () => {
      await clickAndLoad(page, page.getByTestId('lang-zh'));
      assert.equal(path(), '/', 'stays on the same page');
      assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
      const nav = page.locator('nav.side');
      for (const label of ['首页', '客户单位', '客户联系人', '服务项目', '职能小组', '员工', '审计日志']) {
        assert.equal(await nav.getByRole('link', { name: label, exact: true }).count(), 1, `nav shows ${label}`);
      }
      await page.getByRole('heading', { level: 1, name: '首页' }).waitFor();
      await page.getByText(`欢迎，${ADMIN.name}。`).waitFor();
      assert.equal((await page.getByTestId('logout').textContent()).trim(), '退出登录');
    });

    // (4) customer organisation
    let orgPath;
    await step('creates a customer organisation (客户单位)', async () => {
      await clickAndLoad(page, page.locator('nav.side').getByRole('link', { name: '客户单位', exact: true }));
      assert.equal(path(), '/organizations');
      await clickAndLoad(page, page.getByTestId('new'));
      assert.equal(path(), '/organizations/new');
      await page.fill('#f-name', ORG.name);
      await page.fill('#f-code', ORG.code);
      await page.fill('#f-description', '浏览器端到端测试创建的客户单位');
      await clickAndLoad(page, page.getByTestId('save'));
      orgPath = path();
      assert.match(orgPath, /^\/organizations\/[^/]+$/);
      await page.getByRole('status').filter({ hasText: '已创建。' }).waitFor();
      assert.equal(await page.locator('#f-name').inputValue(), ORG.name);
      assert.equal(await page.locator('#f-code').inputValue(), ORG.code.toUpperCase());

      await clickAndLoad(page, page.locator('nav.side').getByRole('link', { name: '客户单位', exact: true }));
      await page.locator('#results').getByRole('link', { name: ORG.name }).waitFor();
    });

    // (5) service project for that organisation
    let projectPath;
    await step('creates a service project (服务项目) for it', async () => {
      await clickAndLoad(page, page.locator('nav.side').getByRole('link', { name: '服务项目', exact: true }));
      assert.equal(path(), '/projects');
      await clickAndLoad(page, page.getByTestId('new'));
      assert.equal(path(), '/projects/new');
      await page.fill('#f-code', PROJECT.code);
      await page.fill('#f-name', PROJECT.name);
      await page.selectOption('#f-organization_id', { label: `${ORG.name} (${ORG.code.toUpperCase()})` });
      await page.selectOption('#f-manager_user_id', { label: `${ADMIN.name} <${ADMIN.email}>` });
      await clickAndLoad(page, page.getByTestId('save'));
      projectPath = path();
      assert.match(projectPath, /^\/projects\/[^/]+$/);
      await page.getByRole('status').filter({ hasText: '已创建。' }).waitFor();
      const title = `${PROJECT.code.toUpperCase()} — ${PROJECT.name}`;
      await page.getByRole('heading', { level: 1, name: title }).waitFor();
      const orgSelected = await page.locator('#f-organization_id option:checked').textContent();
      assert.equal(orgSelected, `${ORG.name} (${ORG.code.toUpperCase()})`);
    });

    // (6) process tailoring
    const tailoring = page.getByTestId('tailoring');
    const row = (process) => tailoring.locator(`tr[data-process="${process}"]`);
    await step('switches off problem management with a reason; mandatory rows have no switch', async () => {
      assert.equal(await tailoring.locator('tbody tr').count(), 14, 'all fourteen processes are listed');
      const problem = row('problem');
      assert.equal((await problem.locator('td').first().textContent()).trim(), '问题管理');
      assert.equal((await problem.locator('td').nth(1).textContent()).trim(), '可裁剪流程');
      assert.equal((await problem.locator('.badge').textContent()).trim(), '启用');
      assert.equal(await problem.locator('.badge.on').count(), 1);

      await problem.locator('input[name="reason"]').fill(REASON);
      await clickAndLoad(page, problem.locator('form button[type="submit"]'));
      assert.equal(path(), projectPath, 'back on the project page');

      const after = row('problem');
      assert.equal(await after.locator('.badge.off').count(), 1, 'the row shows the process off');
      assert.equal((await after.locator('.badge').textContent()).trim(), '已裁剪');
      const decision = (await after.locator('td').nth(3).textContent()).trim();
      assert.ok(decision.includes(REASON), `the decision shows the reason: ${decision}`);
      assert.ok(decision.includes(ADMIN.name), `the decision shows who decided: ${decision}`);
      assert.equal((await after.locator('form button[type="submit"]').textContent()).trim(), '启用',
        'the switch now offers to switch it back on');
      assert.equal(await after.locator('input[name="enabled"]').inputValue(), 'true');

      // Mandatory processes cannot be switched off: no form in their rows.
      for (const p of ['service_desk', 'incident', 'business_relationship', 'information_security', 'supplier', 'finance']) {
        assert.equal(await row(p).locator('form').count(), 0, `${p} has no switch form`);
        assert.equal((await row(p).locator('td').nth(1).textContent()).trim(), '必选流程');
        assert.equal(await row(p).locator('.badge.on').count(), 1, `${p} stays on`);
      }
      // Other tailorable processes keep their switch.
      assert.equal(await row('release').locator('form').count(), 1);
      assert.equal(await row('release').locator('.badge.on').count(), 1);
    });

    await step('confirms the tailoring decision with a flash message', async (st) => {
      st.diagnostic(`landed on ${page.url()}`);
      await page.getByRole('status').filter({ hasText: '裁剪决定已记录。' }).waitFor({ timeout: 1_000 });
    });

    // (7) history panel
    await step('the history panel lists the change', async () => {
      await page.getByRole('heading', { level: 2, name: '变更历史' }).waitFor();
      const rows = page.locator('table.history tbody tr');
      assert.equal(await rows.count(), 2, 'creation and the tailoring change');
      const newest = rows.first();
      assert.equal((await newest.locator('td').nth(1).textContent()).trim(), ADMIN.name, 'who');
      assert.equal((await newest.locator('td').nth(2).textContent()).trim(), '修改', 'action');
      const changes = newest.locator('td.changes');
      const disabled = changes.locator('div', { has: page.locator('strong', { hasText: '已裁剪流程' }) });
      assert.equal((await disabled.locator('ins').textContent()).trim(), 'problem');
      const reason = changes.locator('div', { has: page.locator('strong', { hasText: '裁剪原因' }) });
      assert.equal((await reason.locator('ins').textContent()).trim(), REASON);
      assert.equal((await rows.nth(1).locator('td').nth(2).textContent()).trim(), '创建');

      const file = join(shots, 'project-tailored.png');
      await page.screenshot({ path: file, fullPage: true });
      t.diagnostic(`screenshot: ${file}`);
    });

    // (8) sign out; the home page then asks for a sign-in
    await step('signs out and / redirects to the login page', async () => {
      await clickAndLoad(page, page.getByTestId('logout'));
      assert.equal(path(), '/login');
      await page.getByRole('status').filter({ hasText: '您已退出登录。' }).waitFor();
      assert.equal(await page.getByTestId('logout').count(), 0);

      await page.goto(base + '/');
      const url = new URL(page.url());
      assert.equal(url.pathname, '/login');
      assert.equal(url.searchParams.get('next'), '/');
      await page.getByRole('heading', { level: 1, name: '登录 Keel' }).waitFor();
      assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN', 'the language choice survives sign-out');
      assert.equal(await page.locator('nav.side').count(), 0, 'no navigation when signed out');

      // The old project page is no longer reachable either.
      await page.goto(base + projectPath);
      assert.equal(new URL(page.url()).pathname, '/login');
    });

    if (!broken) assert.deepEqual(pageErrors, [], 'no script errors in the pages');
  } finally {
    const file = join(shots, 'final.png');
    await page.screenshot({ path: file, fullPage: true }).catch(() => {});
    console.log(`Screenshot: ${file}`);
  }
});
