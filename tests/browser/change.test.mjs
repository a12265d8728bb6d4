// Real-browser end-to-end test of configuration, change and problem management (issue 5),
// through the pages only: a service manager records CIs and their relations, raises a normal
// change on them, sees its CMDB impact and a schedule conflict with a standard change on the
// same server in an overlapping window, submits it to a CAB step with a 2-of-3 quorum that two
// of the three approvers approve (each signed in as themselves; the third then has nothing left
// to decide), and takes it through scheduling, implementation, the post-implementation review
// and closure. Then a problem is raised from two incidents, its known error recorded, and a new
// incident on the same category with the same symptoms is offered that known error.
//
// Runs on the demo data set (`keel demo`) with `keel serve` on a free port; the caller builds the
// binary: cargo build -p keel && bash tests/browser/run.sh. Screenshots go to a kept temporary
// directory whose path is printed.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoSite, clickAndLoad, raiseIncident } from './harness.mjs';

const site = demoSite('keel-change-e2e-');
const shots = mkdtempSync(join(tmpdir(), 'keel-change-e2e-shots-'));
after(() => site.close());

async function shot(t, page, name) {
  const file = join(shots, name);
  await page.screenshot({ path: file, fullPage: true });
  t.diagnostic(`screenshot: ${file}`);
}

/** `YYYY-MM-DDTHH:MM` (a datetime-local value) `days` from now at `hour`:00. */
function localAt(days, hour) {
  const d = new Date(Date.now() + days * 86_400_000);
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(hour)}:00`;
}

/** An attribute's input on the CI form (`attributes.<key>`). */
const attr = (page, key) => page.locator(`[name="attributes.${key}"]`);

/** Records a CI of `cls` in project `project` (an option label) and returns its page path. */
async function newCi(page, base, cls, name, project, attributes) {
  await page.goto(`${base}/cmdb/new?class=${cls}`);
  const form = page.getByTestId('ci-form');
  await form.locator('[name="name"]').fill(name);
  await form.locator('[name="project_id"]').selectOption({ label: project });
  await form.locator('[name="status"]').selectOption('live');
  for (const [key, value] of Object.entries(attributes)) {
    const input = attr(page, key);
    if ((await input.evaluate((e) => e.tagName)) === 'SELECT') await input.selectOption(value);
    else await input.fill(value);
  }
  await clickAndLoad(page, page.getByTestId('save'));
  const path = new URL(page.url()).pathname;
  assert.match(path, /^\/cmdb\/[^/]+$/, `${name} was recorded (now at ${page.url()})`);
  assert.equal((await page.locator('h1').textContent()).trim(), name);
  return path;
}

/** Adds a relation from the CI page at `path`: this CI `kind` the CI named `other`. */
async function relate(page, base, path, kind, other) {
  await page.goto(base + path);
  const form = page.getByTestId('add-relation');
  await form.locator('[name="kind"]').selectOption(kind);
  await form.locator('[name="other_id"]').selectOption({ label: other });
  await clickAndLoad(page, form.locator('button[type="submit"]'));
  await page.getByTestId('relations').getByRole('link', { name: other }).waitFor();
}

/** Fills the new-change form; returns the change page's path and number. */
async function raiseChange(page, base, fields) {
  await page.goto(base + '/changes/new');
  const form = page.locator('form[action="/changes"]');
  await form.locator('[name="project_id"]').selectOption({ label: fields.project });
  await form.locator('[name="change_type"]').selectOption(fields.type);
  if (fields.template) await form.locator('[name="template_id"]').selectOption({ label: fields.template });
  await form.locator('[name="title"]').fill(fields.title);
  for (const k of ['reason', 'implementation_plan', 'back_out_plan', 'test_plan']) {
    if (fields[k]) await form.locator(`[name="${k}"]`).fill(fields[k]);
  }
  await form.locator('[name="planned_start"]').fill(fields.start);
  await form.locator('[name="planned_end"]').fill(fields.end);
  await form.locator('[name="ci_ids"]').selectOption(fields.cis.map((label) => ({ label })));
  if (fields.approvers) {
    await form.locator('[name="approvers"]').selectOption(fields.approvers.map((label) => ({ label })));
    await form.locator('[name="quorum"]').selectOption(fields.quorum);
    if (fields.quorumN) await form.locator('[name="quorum_n"]').fill(String(fields.quorumN));
  }
  await clickAndLoad(page, form.locator('button[type="submit"]').last());
  const path = new URL(page.url()).pathname;
  assert.match(path, /^\/changes\/[^/]+$/, `the change was raised (now at ${page.url()}): ${await page.locator('.alert.error').allTextContents()}`);
  const number = (await page.locator('h1 .mono').textContent()).trim();
  assert.match(number, /^CHG-\d{6}$/);
  return { path, number };
}

/** Presses the lifecycle button that moves the change on the open page to `to`. */
async function moveChange(page, to) {
  await clickAndLoad(page, page.getByTestId('actions').locator(`button[data-action="${to}"]`));
  const errors = await page.locator('.alert.error').allTextContents();
  assert.deepEqual(errors, [], `moving to ${to}`);
}

/** The status badge of the open record page. */
async function status(page) {
  return (await page.getByTestId('status').textContent()).trim();
}

/** The number of changes the home page says await the signed-in approver (0 without the card). */
async function awaitingCount(page, base) {
  await page.goto(base + '/');
  const card = page.getByTestId('awaiting-approval');
  if ((await card.count()) === 0) return 0;
  return Number((await card.textContent()).match(/(\d+)/)[1]);
}

/** Opens a problem action's form on the problem page and submits it with `values`. */
async function problemAction(page, action, values) {
  const details = page.locator('details.action', { has: page.locator(`summary[data-action="${action}"]`) });
  await details.locator('summary').click();
  const form = details.locator('form');
  for (const [name, value] of Object.entries(values)) {
    const input = form.locator(`[name="${name}"]`);
    if ((await input.evaluate((e) => e.tagName)) === 'SELECT') await input.selectOption(value);
    else await input.fill(value);
  }
  await clickAndLoad(page, form.locator('button[type="submit"]'));
  assert.deepEqual(await page.locator('.alert.error').allTextContents(), [], `problem action ${action}`);
}

test('CMDB → change with impact, conflict and a 2-of-3 CAB → implement → review → close; problem → known error → suggested', { timeout: 300_000 }, async (t) => {
  const accounts = site.loadDemo();
  const manager = 'wang.fang@demo.keel.test';
  const approvers = { 'li.na@demo.keel.test': '李娜 Li Na', 'zhang.wei@demo.keel.test': '张伟 Zhang Wei', 'tom.becker@demo.keel.test': 'Tom Becker' };
  const contact = 'chen.jing@ecm.example';
  for (const a of [manager, contact, ...Object.keys(approvers)]) assert.ok(accounts[a], `keel demo printed a password for ${a}`);
  const base = await site.start();
  const project = 'ECM-OPS — 华东精密 IT 运维 / ECM IT operations';
  const changeProject = 'ECM-OPS · 华东精密 IT 运维 / ECM IT operations';

  const stamp = Date.now().toString(36);
  const server = `e2e-db-${stamp}`;
  const app = `e2e-billing-${stamp}`;
  const service = `e2e 计费服务 billing service ${stamp}`;
  // 王芳, 李娜 and 张伟 work in Chinese (their accounts' language), Tom Becker in English
  const mgr = await site.signIn(manager, accounts[manager]);
  let serverPath;

  await t.test('the manager records three CIs and their relations', async () => {
    serverPath = await newCi(mgr, base, 'server', server, project, { hostname: `${server}.ecm.example`, ip_address: '10.20.30.40' });
    const appPath = await newCi(mgr, base, 'application', app, project, { version: '2.1' });
    const servicePath = await newCi(mgr, base, 'service', service, project, { service_code: `BILL-${stamp}`, criticality: 'high' });
    await relate(mgr, base, appPath, 'out:runs_on', server);
    await relate(mgr, base, servicePath, 'out:depends_on', app);
    // the server's downstream impact reaches the application and, through it, the service
    await mgr.goto(base + serverPath);
    const impact = mgr.getByTestId('impact');
    await impact.getByRole('link', { name: app }).waitFor();
    await impact.getByRole('link', { name: service }).waitFor();
    assert.match(await mgr.getByTestId('affected').textContent(), new RegExp(service));
    await shot(t, mgr, 'ci-impact.png');
  });

  // one window, forty days ahead, that both changes use
  const start = localAt(40, 9);
  const end = localAt(40, 12);
  let standard;
  await t.test('a standard change on the server is scheduled in the window', async () => {
    standard = await raiseChange(mgr, base, {
      project: changeProject,
      type: 'standard',
      template: '操作系统安全补丁 OS security patch (low)',
      title: `Patch ${server}`,
      start,
      end,
      cis: [server],
    });
    await moveChange(mgr, 'submitted');
    await moveChange(mgr, 'scheduled');
    assert.equal(await status(mgr), '已排期');
  });

  let normal;
  await t.test('a normal change on the server and the application shows its impact and the conflict', async () => {
    normal = await raiseChange(mgr, base, {
      project: changeProject,
      type: 'normal',
      title: `Upgrade ${app} to 3.0`,
      reason: 'Version 2 is out of support',
      implementation_plan: 'Stop the application, upgrade, migrate the database, start',
      back_out_plan: 'Restore the snapshot taken before the upgrade',
      test_plan: 'Smoke test of the billing run',
      start: localAt(40, 10),
      end: localAt(40, 14),
      cis: [server, app],
      approvers: Object.values(approvers),
      quorum: 'at_least',
      quorumN: 2,
    });
    assert.equal(await status(mgr), '草稿');
    const impact = mgr.getByTestId('impact');
    for (const name of [server, app, service]) assert.match(await impact.textContent(), new RegExp(name), `the impact lists ${name}`);
    assert.match(await impact.textContent(), /华东精密制造有限公司/, 'the customer is affected');
    const conflicts = await mgr.getByTestId('conflicts').textContent();
    assert.match(conflicts, new RegExp(`${standard.number}:.*${server}`), conflicts);
    assert.match(await mgr.getByTestId('approval').textContent(), /至少 2\/3/);
    await shot(t, mgr, 'change-conflict.png');
  });

  await t.test('it is submitted, assessed and put before the CAB', async () => {
    await mgr.goto(base + normal.path);
    await moveChange(mgr, 'submitted');
    // once submitted it is on the forward schedule of change, marked as conflicting
    await mgr.goto(`${base}/changes/schedule?view=week&date=${start.slice(0, 10)}`);
    await mgr.locator('div:has(> a.mono)', { hasText: normal.number }).getByTestId('conflict').waitFor();
    await shot(t, mgr, 'schedule-conflict.png');
    await mgr.goto(base + normal.path);
    await mgr.locator('summary[data-action="risk"]').click();
    const risk = mgr.getByTestId('risk-form');
    for (const select of await risk.locator('select').all()) {
      const values = await select.locator('option').evaluateAll((os) => os.map((o) => o.value).filter(Boolean));
      await select.selectOption(values[0]);
    }
    await clickAndLoad(mgr, risk.locator('button[type="submit"]'));
    assert.doesNotMatch(await mgr.getByTestId('risk').textContent(), /未评估/);
    await moveChange(mgr, 'assessed');
    assert.equal(await status(mgr), '已评估');
    assert.equal(await mgr.getByTestId('decide').count(), 0, 'the manager is not an approver');
  });

  await t.test('two of the three approvers approve; the change is approved and the third has nothing left to decide', async () => {
    const [first, second, third] = Object.keys(approvers);
    const votes = [];
    for (const who of [second, third]) {
      const page = await site.signIn(who, accounts[who]);
      // the home page says how many changes wait for this approver and links the list
      const waiting = await awaitingCount(page, base);
      assert.ok(waiting >= 1, `${who} has changes awaiting approval`);
      await clickAndLoad(page, page.getByTestId('awaiting-approval').getByRole('link'));
      assert.equal(new URL(page.url()).pathname, '/changes/awaiting');
      assert.equal(await page.locator('main table tbody tr').count(), waiting, 'the count is the list');
      await clickAndLoad(page, page.getByRole('link', { name: normal.number }));
      await page.getByTestId('decide').locator('input[name="reason"]').fill(`OK from ${who}`);
      await clickAndLoad(page, page.getByTestId('decide').locator('button[data-action="approve"]'));
      assert.equal(await awaitingCount(page, base), waiting - 1, 'one fewer after the vote');
      await page.goto(base + normal.path);
      votes.push(page);
    }
    assert.equal(await status(votes[0]), '已评估', 'one approval of the two needed: still assessed');
    await votes[0].reload();
    assert.equal(await status(votes[0]), '已批准', 'after the second approval the change is approved');
    assert.equal(await status(votes[1]), 'Approved', 'in English for Tom Becker');
    await shot(t, votes[1], 'change-approved.png');
    const votesText = await votes[1].getByTestId('votes').textContent();
    assert.match(votesText, /OK from zhang\.wei/);
    assert.match(votesText, /OK from tom\.becker/);
    const last = await site.signIn(first, accounts[first], 'en-US');
    await last.goto(base + normal.path);
    assert.equal(await status(last), '已批准');
    assert.equal(await last.getByTestId('decide').count(), 0, 'the quorum is met: no vote is asked of the third approver');
    await last.goto(base + '/changes/awaiting');
    assert.equal(await last.getByRole('link', { name: normal.number }).count(), 0, 'it no longer awaits the third approver');
  });

  await t.test('it is scheduled, implemented, reviewed and closed', async () => {
    await mgr.goto(base + normal.path);
    await moveChange(mgr, 'scheduled');
    await moveChange(mgr, 'implementing');
    await moveChange(mgr, 'implemented');
    const review = mgr.getByTestId('review');
    await review.locator('[name="outcome"]').selectOption('successful');
    await review.locator('[name="notes"]').fill('Upgraded in 2 h; billing run passed');
    await clickAndLoad(mgr, review.locator('button[type="submit"]'));
    assert.equal(await status(mgr), '已评审');
    assert.match(await mgr.getByTestId('plans').textContent(), /Upgraded in 2 h/);
    await moveChange(mgr, 'closed');
    assert.equal(await status(mgr), '已关闭');
    await shot(t, mgr, 'change-closed.png');
  });

  const category = '网络 Network';
  const symptoms = `VPN tunnel ${stamp} drops every hour`;
  let known;
  await t.test('a problem is raised from two incidents and its known error recorded', async () => {
    const customer = await site.signIn(contact, accounts[contact], 'en-US');
    const one = await raiseIncident(customer, base, `VPN tunnel ${stamp} drops`, 'Disconnected at 10:00 again', category);
    const two = await raiseIncident(customer, base, `VPN ${stamp} disconnects every hour`, 'The tunnel drops, we lose the ERP', category);
    await mgr.goto(base + one.path);
    await clickAndLoad(mgr, mgr.getByTestId('problem-panel').locator('a.button'));
    assert.equal(new URL(mgr.url()).pathname, '/problems/new');
    const form = mgr.locator('form[action="/problems"]');
    await form.locator('[name="incident_ids"]').fill(`${one.number}, ${two.number}`);
    await clickAndLoad(mgr, form.locator('button[type="submit"]').last());
    assert.match(new URL(mgr.url()).pathname, /^\/problems\/[^/]+$/);
    const linked = await mgr.getByTestId('incidents').textContent();
    assert.ok(linked.includes(one.number) && linked.includes(two.number), linked);
    const team = await mgr.locator('details.action', { has: mgr.locator('summary[data-action="investigate"]') }).locator('[name="team_id"] option').nth(1).getAttribute('value');
    await problemAction(mgr, 'investigate', { team_id: team });
    await problemAction(mgr, 'record_workaround', { workaround: 'Reconnect with the backup gateway' });
    await problemAction(mgr, 'declare_known_error', { symptoms, publish_to_portal: 'true' });
    known = (await mgr.locator('a[href^="/known-errors/"]').first().textContent()).trim();
    assert.match(known, /^KE-\d{6}/);
  });

  await t.test('a new incident on the same category with the same symptoms is offered the known error', async () => {
    const customer = await site.signIn(contact, accounts[contact], 'en-US');
    const three = await raiseIncident(customer, base, `VPN tunnel ${stamp} drops every hour since Monday`, 'Same as last week', category);
    await mgr.goto(base + three.path);
    const suggestions = mgr.getByTestId('known-error-suggestions');
    await suggestions.getByRole('link', { name: new RegExp(known.split(' ')[0]) }).waitFor();
    assert.match(await suggestions.textContent(), /Reconnect with the backup gateway/);
    await clickAndLoad(mgr, suggestions.locator('button[type="submit"]').first());
    await mgr.getByTestId('problem-panel').getByRole('link', { name: new RegExp(known.split(' ')[0]) }).waitFor();
    await shot(t, mgr, 'incident-known-error.png');
  });
});
