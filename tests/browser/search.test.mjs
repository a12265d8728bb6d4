// Real-browser end-to-end test of search (issue 7): an agent's type-ahead in the header search
// box, the results page in English and in Chinese (Chinese words and their parts, English
// stemming, a ticket number found exactly, highlighted snippets, facet counts, a `status:`
// filter), and the portal, where a contact finds only their organisation's tickets and never
// the text of an internal note.
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

const site = demoSite('keel-search-e2e-');
const shots = mkdtempSync(join(tmpdir(), 'keel-search-e2e-shots-'));
after(() => site.close());

async function shot(t, page, name) {
  const file = join(shots, name);
  await page.screenshot({ path: file, fullPage: true });
  t.diagnostic(`screenshot: ${file}`);
}

/** Opens the results page for `q`. */
async function search(page, base, q) {
  await page.goto(`${base}/search?q=${encodeURIComponent(q)}`);
  return page.getByTestId('search-hits');
}

/** The numbers of the hits on the results page, in order. */
async function hitNumbers(page) {
  const titles = await page.getByTestId('search-hits').locator('article.hit h3').allTextContents();
  return titles.map((s) => (s.match(/[A-Z]+-\d{6}/) || [''])[0]);
}

/** Waits until the index holds what was committed last (the follower runs every 200 ms). */
async function waitFound(page, base, q, number) {
  const until = Date.now() + 20_000;
  for (;;) {
    await search(page, base, q);
    if ((await hitNumbers(page)).includes(number)) return;
    assert.ok(Date.now() < until, `${number} found for "${q}" within 20 s`);
    await page.waitForTimeout(300);
  }
}

test('Search: type-ahead, results in English and Chinese, filters and facets; contacts see only their own', { timeout: 180_000 }, async (t) => {
  const accounts = site.loadDemo();
  const contactA = 'chen.jing@ecm.example';
  const contactB = 'alice.moore@northwind.example';
  const agent = 'emma.clarke@demo.keel.test';
  for (const a of [contactA, contactB, agent]) assert.ok(accounts[a], `keel demo printed a password for ${a}`);
  const base = await site.start();

  const stamp = Date.now().toString(36);
  const secret = `kmsecret${stamp}`; // only in an internal note
  const otherOrg = `nwonly${stamp}`; // only in organisation B's ticket
  const a = await site.signIn(contactA, accounts[contactA]);
  const mine = await raiseIncident(a, base, '打印机无法打印', 'The printer on the third floor jams every morning. 三楼的打印机每天早上卡纸。');
  const b = await site.signIn(contactB, accounts[contactB]);
  const theirs = await raiseIncident(b, base, `打印机无法打印 Northwind ${otherOrg}`, `Branch printer offline, ${otherOrg}`);

  const desk = await site.signIn(agent, accounts[agent]);
  await t.test('the agent adds an internal note with a word of its own', async () => {
    await desk.goto(base + mine.path);
    const form = desk.getByTestId('reply');
    await form.locator('textarea[name="body"]').fill(`Internal: ${secret} warranty expired, do not tell the customer`);
    await form.locator('select[name="visibility"]').selectOption('internal');
    await clickAndLoad(desk, form.locator('button[type="submit"]'));
    await desk.getByTestId('conversation').locator('article.internal', { hasText: secret }).waitFor();
    await waitFound(desk, base, secret, mine.number);
  });

  await t.test('type-ahead in the header search box shows hits as the agent types', async () => {
    await desk.goto(base + '/');
    await desk.getByTestId('search-box').fill('打印机');
    const suggest = desk.locator('#search-suggest');
    await suggest.getByRole('link', { name: new RegExp(mine.number) }).waitFor();
    await suggest.getByRole('link', { name: new RegExp(theirs.number) }).waitFor();
    await shot(t, desk, 'type-ahead.png');
    await Promise.all([desk.waitForNavigation({ waitUntil: 'load' }), desk.getByTestId('search-box').press('Enter')]);
    assert.equal(new URL(desk.url()).pathname, '/search');
    assert.equal(new URL(desk.url()).searchParams.get('q'), '打印机');
  });

  await t.test('results in English: highlighted, counted by type and status, filtered by status', async () => {
    const hits = await search(desk, base, '打印机');
    assert.ok((await hitNumbers(desk)).includes(mine.number), '打印机 finds 打印机无法打印');
    assert.ok((await hits.innerHTML()).includes('<b>打印机</b>'), 'the matched word is highlighted');
    const summary = (await hits.locator('p').first().textContent()).trim();
    const total = Number(summary.match(/^(\d+) found$/)?.[1]);
    assert.ok(total >= 2, `summary "${summary}"`);
    const facets = desk.getByTestId('search-facets');
    const allTypes = facets.locator('li', { has: desk.getByRole('link', { name: 'All types', exact: true }) });
    assert.equal((await allTypes.locator('.muted').textContent()).trim(), String(total), 'all types counts every hit');
    const incidents = facets.locator('li', { has: desk.getByRole('link', { name: 'Incident', exact: true }) });
    assert.ok(Number((await incidents.locator('.muted').textContent()).trim()) >= 2, 'incidents are counted');
    await shot(t, desk, 'results-en.png');

    // the status facet adds a `status:` filter to the query
    await clickAndLoad(desk, facets.getByRole('link', { name: 'New', exact: true }));
    assert.equal(new URL(desk.url()).searchParams.get('q'), '打印机 status:new');
    const statuses = await desk.getByTestId('search-hits').locator('article.hit p.muted').allTextContents();
    assert.ok(statuses.length >= 2 && statuses.every((s) => s.trim().endsWith('· New')), statuses.join(' | '));
    assert.ok((await hitNumbers(desk)).includes(mine.number));
    await search(desk, base, '打印机 status:closed');
    assert.ok(!(await hitNumbers(desk)).includes(mine.number), 'a new ticket is not closed');

    // a part of the Chinese word, English stemming, the ticket number exactly
    await search(desk, base, '打印');
    assert.ok((await hitNumbers(desk)).includes(mine.number), '打印 finds 打印机无法打印');
    await search(desk, base, 'printers');
    assert.ok((await hitNumbers(desk)).includes(mine.number), 'printers finds printer');
    assert.ok((await desk.getByTestId('search-hits').innerHTML()).includes('<b>printer</b>'), 'the snippet shows the match');
    await search(desk, base, mine.number);
    assert.deepEqual(await hitNumbers(desk), [mine.number], 'the number finds exactly its ticket');
  });

  await t.test('results in Chinese after switching the language', async () => {
    await clickAndLoad(desk, desk.getByTestId('lang-zh'));
    assert.equal(await desk.locator('html').getAttribute('lang'), 'zh-CN');
    await desk.getByTestId('search-q').fill('打印机');
    await clickAndLoad(desk, desk.locator('form[role="search"] button[type="submit"]').last());
    const hits = desk.getByTestId('search-hits');
    assert.match((await hits.locator('p').first().textContent()).trim(), /^找到 \d+ 条$/);
    assert.ok((await hits.innerHTML()).includes('<b>打印机</b>'));
    const facets = desk.getByTestId('search-facets');
    await facets.getByRole('heading', { name: '类型' }).waitFor();
    await facets.getByRole('link', { name: '事件', exact: true }).waitFor();
    await facets.getByRole('link', { name: '新建', exact: true }).waitFor();
    await hits.locator('article.hit', { hasText: mine.number }).getByText('事件 · 新建').waitFor();
    await shot(t, desk, 'results-zh.png');
    await search(desk, base, '打印');
    assert.ok((await hitNumbers(desk)).includes(mine.number));
  });

  await t.test("the portal: a contact finds their organisation's tickets only, never an internal note", async () => {
    await a.goto(base + '/');
    await a.getByTestId('search-box').fill('打印机');
    await a.locator('#search-suggest').getByRole('link', { name: new RegExp(mine.number) }).waitFor();
    assert.equal(await a.locator('#search-suggest').getByText(theirs.number).count(), 0, "no type-ahead hit of another organisation");

    await search(a, base, '打印机');
    const numbers = await hitNumbers(a);
    assert.ok(numbers.includes(mine.number), 'their own ticket is found');
    assert.ok(!numbers.includes(theirs.number), "another organisation's ticket is not");
    let html = await a.content();
    assert.ok(!html.includes(otherOrg) && !html.includes(theirs.number), "nothing of organisation B's ticket in the page");
    assert.ok(!html.includes(secret) && !html.includes('warranty expired'), 'nor the internal note');
    await shot(t, a, 'portal-results.png');

    for (const q of [secret, 'warranty', otherOrg, theirs.number]) {
      const hits = await search(a, base, q);
      assert.equal(await hits.locator('article.hit').count(), 0, `no hit for "${q}"`);
      html = await hits.innerHTML();
      assert.ok(!html.includes(mine.number) && !html.includes('<b>'), `nothing shown for "${q}"`);
      const facets = await a.getByTestId('search-facets').locator('.muted').allTextContents();
      assert.deepEqual(facets, [], `nothing counted for "${q}"`);
    }
    // the contact of organisation B finds their ticket by its word
    await waitFound(b, base, otherOrg, theirs.number);
    assert.deepEqual(await hitNumbers(b), [theirs.number]);
  });
});
