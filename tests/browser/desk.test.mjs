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
import { demoSite, clickAndLoad } from './harness.mjs';

const site = demoSite('keel-desk-e2e-');
after(() => site.close());

/** The transition form of an action on a ticket page. */
const actionForm = (page, action) => page.locator('form', { has: page.locator(`input[name="action"][value="${action}"]`) });

test('Service desk: portal → agent → note and reply → resolve → confirm and rate; other customers see nothing', { timeout: 120_000 }, async (t) => {
  const accounts = site.loadDemo();
  const contact = 'chen.jing@ecm.example';
  const agent = 'emma.clarke@demo.keel.test';
  const stranger = 'alice.moore@northwind.example';
  for (const a of [contact, agent, stranger]) assert.ok(accounts[a], `keel demo printed a password for ${a}`);
  const base = await site.start();

  const title = `打印机卡纸 e2e ${Date.now()}`;
  const note = 'Internal: the toner supplier is slow, do not tell the customer';
  const reply = '您好，我们已安排工程师今天下午上门处理。';
  let ticketPath;
  let number;

  const customer = await site.signIn(contact, accounts[contact]);
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

  const desk = await site.signIn(agent, accounts[agent]);
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
    const other = await site.signIn(stranger, accounts[stranger]);
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
