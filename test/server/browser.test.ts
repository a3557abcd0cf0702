import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { ensureUiBuilt } from '../../bench-ui/build.js';
import { recordRun, startTestServer, tempDir, type TestServer } from './helpers.js';

/** What bench-ui exposes on window for tests (counts of live events, the last one). */
declare global {
  interface Window {
    cimbench: { liveEvents: number; lastEvent?: { kind: string } };
  }
}

/**
 * End to end in headless Debian chromium (platform-facts.md): run list, a demo-like run with its
 * plots, live progress of a short emulated campaign, control refused without the token and
 * accepted with it. Screenshots go to $TMPDIR/cimbench-ui-screenshots (outside the repository).
 */

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install chromium); the browser tests need Debian's chromium`;
export const SCREENSHOT_DIR = join(tmpdir(), 'cimbench-ui-screenshots');

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** Non-blank pixels of a canvas (a chart that drew data has many). */
async function inkOf(page: Page, chart: string): Promise<number> {
  return page.$eval(`canvas[data-chart="${chart}"]`, (c) => {
    const canvas = c as HTMLCanvasElement;
    const data = (canvas.getContext('2d') as CanvasRenderingContext2D).getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if ((data[i] as number) > 0) n++;
    return n;
  });
}

async function waitPainted(page: Page, view: string): Promise<void> {
  await page.waitForFunction((v) => document.body.dataset.painted === '1' && document.body.dataset.view === v, view, { timeout: 15_000 });
}

describe('bench UI in headless chromium', { skip }, () => {
  let srv: TestServer;
  let browser: Browser;
  let page: Page;
  let runId: number;
  const pageErrors: string[] = [];

  before(async () => {
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const uiDir = await ensureUiBuilt();
    const dir = tempDir();
    const r = await recordRun(join(dir, 'bench.db'));
    assert.equal(r.outcome.exitStatus, 'success');
    runId = r.runId;
    srv = await startTestServer(join(dir, 'bench.db'), { uiDir });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async () => {
    await browser?.close();
    await srv?.close();
  });

  it('loads the run list', async () => {
    await page.goto(`${srv.url}/`);
    await waitPainted(page, 'runs');
    assert.equal(await page.locator(`#run-table a[data-run="${runId}"]`).count(), 1);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'runs.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
  });

  it('opens the run: heatmaps, histograms and drift plots draw data; the discrepancy table filters', async () => {
    await page.click(`a[data-run="${runId}"]`);
    await waitPainted(page, 'run');
    for (const chart of ['heatmap-error', 'heatmap-pulses', 'histograms', 'drift-accuracy', 'drift-conductance']) {
      const c = page.locator(`canvas[data-chart="${chart}"]`);
      await c.waitFor();
      assert.equal(await c.getAttribute('data-drawn'), '1', `${chart} not drawn`);
      assert.ok(Number(await c.getAttribute('data-points')) > 0, `${chart} has no data`);
      assert.ok((await inkOf(page, chart)) > 2000, `${chart} looks blank`);
    }
    const all = Number(await page.getAttribute('#discrepancy-table', 'data-rows'));
    assert.ok(all > 2);
    await page.selectOption('#filter-metric', 'accuracy');
    assert.equal(await page.getAttribute('#discrepancy-table', 'data-rows'), '2');
    // Another array redraws its heatmap.
    await page.selectOption('#array-select', '1');
    await page.waitForFunction(() => document.querySelector('#heatmaps h3')?.textContent?.startsWith('array 1'));
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'run-detail.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
  });

  it('shows the calibration profiles before / after', async () => {
    await page.goto(`${srv.url}/#/calibration`);
    await waitPainted(page, 'calibration');
    await page.selectOption('#cal-before', 'ideal');
    await page.selectOption('#cal-after', 'rram-wan2022');
    await page.locator('canvas[data-chart="calibration-change"][data-drawn="1"]').waitFor();
    assert.ok(Number(await page.getAttribute('canvas[data-chart="calibration-change"]', 'data-points')) > 0);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'calibration.png'), fullPage: true });
  });

  it('refuses control without the token, accepts it with the token, and shows live progress of the campaign', async () => {
    await page.goto(`${srv.url}/#/live`);
    await waitPainted(page, 'live');
    await page.waitForFunction(() => document.getElementById('conn')?.classList.contains('online'));
    await page.selectOption('#campaign-file', 'small.json');
    await page.selectOption('#campaign-mode', 'program');
    await page.fill('#token', '');
    await page.click('#btn-start');
    await page.waitForFunction(() => document.getElementById('banner')?.dataset.code === 'UNAUTHORIZED');
    assert.equal(srv.server.controller.current(), null, 'a campaign started without the token');
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'live-refused.png'), fullPage: true });

    const before = await page.evaluate(() => window.cimbench.liveEvents);
    await page.fill('#token', srv.token);
    await page.click('#btn-start');
    await page.waitForFunction(() => document.getElementById('banner')?.dataset.code === 'OK');
    // Per-array programming progress arrives while the campaign runs.
    await page.waitForFunction(() => window.cimbench.lastEvent?.kind === 'array-progress' || document.querySelectorAll('#live-arrays tbody tr').length > 0, undefined, { timeout: 20_000 });
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'live-running.png'), fullPage: true });
    await page.waitForFunction(() => /done \(success\)/.test(document.getElementById('live-status')?.textContent ?? ''), undefined, { timeout: 30_000 });
    const received = (await page.evaluate(() => window.cimbench.liveEvents)) - before;
    assert.ok(received >= 10, `only ${received} live events`);
    const rows = await page.locator('#live-arrays tbody tr').count();
    assert.ok(rows >= 2, `per-array progress rows: ${rows}`);
    assert.match((await page.textContent('#live-log')) ?? '', /program ended/);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'live-done.png'), fullPage: true });
    await srv.server.controller.settled();
    assert.deepEqual(pageErrors, []);
    process.stderr.write(`screenshots in ${SCREENSHOT_DIR}\n`);
  });
});
