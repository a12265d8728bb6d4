// Real-browser end-to-end test of the agent workspace's saved views and bulk change (issue 3):
// an agent filters the queue, saves it as a view with chosen columns shared with a team, sees
// its count beside the tabs, ticks tickets and assigns them to a team and puts them on hold
// with a pending reason in bulk (a step refused for want of a reason first), checks the result
// in the view and in its CSV export; a team mate sees the team view, an agent outside the team
// sees neither it nor the owner's private view.
//
// Runs on the demo data set (`keel demo`) with `keel serve` on a free port; the caller builds the
// binary: cargo build -p keel && bash tests/browser/run.sh. Screenshots go to a kept temporary
// directory whose path is printed.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoSite, clickAndLoad } from './harness.mjs';

const site = demoSite('keel-views-e2e-');
const shots = mkdtempSync(join(tmpdir(), 'keel-views-e2e-shots-'));
after(() => site.close());

const DESK_TEAM = '服务台 Service desk';

async function shot(t, page, name) {
  const file = join(shots, name);
  await page.screenshot({ path: file, fullPage: true });
  t.diagnostic(`screenshot: ${file}`);
}

/** Raises an incident in the portal; returns its number. */
async function raise(page, base, title) {
  await page.goto(base + '/incidents/new');
  await page.fill('#f-title', title);
  await page.fill('#f-description', 'Raised by the saved views browser test.');
  await clickAndLoad(page, page.locator('form button[type="submit"]').last());
  const number = (await page.locator('h1 .mono').textContent()).trim();
  assert.match(number, /^INC-\d{6}$/);
  return number;
}

/** Saves the queue shown now as a view; returns the view's id. */
async function saveView(page, { name, audience, team, columns }) {
  const form = page.getByTestId('view-form');
  await form.locator('summary').click();
  await page.fill('#view-name', name);
  await page.selectOption('#view-audience', audience);
  if (team) await page.selectOption('#view-share-team', { label: team });
  if (columns) {
    for (const box of await form.locator('input[name="columns"]').all()) {
      await box.setChecked(columns.includes(await box.getAttribute('value')));
    }
  }
  await clickAndLoad(page, page.getByTestId('view-submit'));
  const saved = new URL(page.url()).searchParams.get('saved');
  assert.ok(saved, `saved as a view: ${page.url()}`);
  return saved;
}

/** Ticks every ticket of the queue and applies one step in bulk. */
async function bulk(page, step, fields = {}) {
  for (const box of await page.locator('#bulk-form input[name="ids"]').all()) await box.check();
  await page.selectOption('#bulk-action', step);
  for (const [id, value] of Object.entries(fields)) {
    if ((await page.locator(id).evaluate((e) => e.tagName)) === 'SELECT') await page.selectOption(id, value);
    else await page.fill(id, value);
  }
  await clickAndLoad(page, page.getByTestId('bulk-submit'));
}

/** The queue's rows as { column: text } objects. */
async function rows(page) {
  const columns = await page.locator('table.queue thead th[data-column]').evaluateAll((ths) => ths.map((th) => th.dataset.column));
  const out = [];
  for (const tr of await page.locator('table.queue tbody tr').all()) {
    const cells = await tr.locator('td').allTextContents();
    const own = cells.slice(cells.length - columns.length).map((c) => c.trim());
    out.push(Object.fromEntries(columns.map((c, i) => [c, own[i]])));
  }
  return out;
}

test('Saved views and bulk change: filter, save shared with a team, assign and pend in bulk, export; others see only what is theirs', { timeout: 180_000 }, async (t) => {
  const accounts = site.loadDemo();
  const contact = 'chen.jing@ecm.example';
  const owner = 'emma.clarke@demo.keel.test'; // in the service desk team
  const mate = 'li.na@demo.keel.test'; // in the service desk team too
  const outsider = 'tom.becker@demo.keel.test'; // not in it
  for (const a of [contact, owner, mate, outsider]) assert.ok(accounts[a], `keel demo printed a password for ${a}`);
  const base = await site.start();

  const stamp = `bulkview${Date.now().toString(36)}`;
  const customer = await site.signIn(contact, accounts[contact]);
  const numbers = [await raise(customer, base, `Scanner offline ${stamp}`), await raise(customer, base, `Badge reader broken ${stamp}`)];

  // The agent filters the open queue down to the two new tickets.
  const desk = await site.signIn(owner, accounts[owner]);
  await desk.goto(base + '/incidents?view=open');
  await desk.fill('form.filters input[name="q"]', stamp);
  await clickAndLoad(desk, desk.locator('form.filters button[type="submit"]'));
  assert.deepEqual((await rows(desk)).map((r) => r.number).sort(), [...numbers].sort(), 'the filter finds the two tickets');

  // Saved with chosen columns, shared with the service desk team; counted beside the tabs.
  const teamViewName = `Desk ${stamp}`;
  const columns = ['number', 'title', 'status', 'team'];
  const teamView = await saveView(desk, { name: teamViewName, audience: 'team', team: DESK_TEAM, columns });
  assert.deepEqual(
    await desk.locator('table.queue thead th[data-column]').evaluateAll((ths) => ths.map((th) => th.dataset.column)),
    columns,
    'the view shows the chosen columns in order',
  );
  const entry = desk.getByTestId('saved-views').locator('li', { hasText: teamViewName });
  assert.equal((await entry.locator('.count').textContent()).trim(), '2', 'the sidebar counts the view');
  await shot(t, desk, '1-saved-view.png');

  // Bulk assignment to the team, from the view.
  await bulk(desk, 'assign', { '#bulk-team': { label: DESK_TEAM } });
  assert.equal(new URL(desk.url()).searchParams.get('saved'), teamView, 'back on the view');
  for (const r of await rows(desk)) {
    assert.equal(r.status, 'Assigned', `${r.number} assigned`);
    assert.equal(r.team, DESK_TEAM, `${r.number} in the team`);
  }

  // Putting them on hold needs a reason: both refused, named, still ticked, nothing changed.
  await bulk(desk, 'pend');
  const refused = desk.getByTestId('bulk-refused');
  assert.equal(await refused.count(), 2, 'one refusal per ticket');
  for (const n of numbers) assert.ok((await refused.allTextContents()).some((e) => e.startsWith(n)), `${n} named`);
  assert.equal(await desk.locator('#bulk-form input[name="ids"]:checked').count(), 2, 'the ticks stay');
  await shot(t, desk, '2-bulk-refused.png');

  // With the reason both go on hold.
  await desk.goto(`${base}/incidents?saved=${teamView}`);
  await bulk(desk, 'pend', { '#bulk-pending-reason': 'waiting_for_customer', '#bulk-note': 'Asked for the device serial numbers' });
  const after = await rows(desk);
  assert.equal(after.length, 2);
  for (const r of after) assert.equal(r.status, 'Pending', `${r.number} pending`);
  await shot(t, desk, '3-bulk-pending.png');

  // The view's CSV export holds the same tickets with their new status and team.
  const href = await desk.getByTestId('export').getAttribute('href');
  assert.equal(href, `/api/v1/incident-views/${teamView}/export`);
  const csv = await (await desk.request.get(base + href)).text();
  const lines = csv.trim().split(/\r?\n/);
  const header = lines[0].split(',');
  const [iNumber, iStatus, iTeam] = ['number', 'status', 'team'].map((c) => header.indexOf(c));
  const exported = lines.slice(1).map((l) => l.split(','));
  assert.deepEqual(exported.map((c) => c[iNumber]).sort(), [...numbers].sort(), 'the export lists the view tickets');
  for (const c of exported) assert.deepEqual([c[iStatus], c[iTeam]], ['pending', DESK_TEAM], `${c[iNumber]} exported as pending in the team`);

  // A private view of the owner's.
  await desk.goto(`${base}/incidents?view=open&q=${stamp}`);
  const privateName = `Mine ${stamp}`;
  const privateView = await saveView(desk, { name: privateName, audience: 'private' });

  // A team mate sees the team view, not the private one.
  const matePage = await site.signIn(mate, accounts[mate]);
  await matePage.goto(base + '/incidents');
  const mateViews = await matePage.getByTestId('saved-views').textContent();
  assert.ok(mateViews.includes(teamViewName), 'the team view reaches the team');
  assert.ok(!mateViews.includes(privateName), 'the private view does not');

  // An agent outside the team sees neither, and the private view is not found for them.
  const other = await site.signIn(outsider, accounts[outsider]);
  await other.goto(base + '/incidents');
  const otherViews = await other.getByTestId('saved-views').textContent();
  assert.ok(!otherViews.includes(teamViewName) && !otherViews.includes(privateName), 'no view of the owner listed');
  const res = await other.goto(`${base}/incidents?saved=${privateView}`);
  assert.equal(res.status(), 404, 'the private view is not found for another agent');
  await shot(t, other, '4-outsider.png');
});
