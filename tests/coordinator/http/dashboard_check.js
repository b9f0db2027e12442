// Opens the glm dashboard in headless Chromium (Debian's, driven by
// playwright-core), waits until the loss chart has points and the node table
// lists the nodes, saves a screenshot, and prints one JSON line:
//   {"ok":true,"loss_points":42,"node_ids":["node-0",...],"console_errors":[],...}
// Exit 0 when everything held and the page logged no errors, else 1.
//
// node dashboard_check.js --url URL --chromium /usr/bin/chromium
//   --playwright DIR --user-data-dir DIR --screenshot FILE.png
//   [--min-points N] [--expect-nodes a,b,c] [--min-nodes N] [--timeout-ms MS]
'use strict';

function parseArgs(argv) {
  const out = {};
  for (let i = 2; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || i + 1 >= argv.length) throw new Error('bad argument ' + argv[i]);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['url', 'chromium', 'playwright', 'user-data-dir', 'screenshot']) {
    if (!out[k]) throw new Error('missing --' + k);
  }
  return out;
}

async function main() {
  const args = parseArgs(process.argv);
  const minPoints = Number(args['min-points'] || 1);
  const expectNodes = args['expect-nodes'] ? args['expect-nodes'].split(',') : [];
  const minNodes = Number(args['min-nodes'] || Math.max(1, expectNodes.length));
  const timeout = Number(args['timeout-ms'] || 30000);
  const { chromium } = require(args.playwright);
  const result = { ok: false, url: args.url, console_errors: [], page_errors: [], failed_requests: [] };
  let context;
  try {
    context = await chromium.launchPersistentContext(args['user-data-dir'], {
      executablePath: args.chromium,
      headless: true,
      chromiumSandbox: false,
      viewport: { width: 1440, height: 900 },
      deviceScaleFactor: 1,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: timeout,
    });
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') result.console_errors.push(m.text()); });
    page.on('pageerror', (e) => result.page_errors.push(String(e)));
    page.on('requestfailed', (r) => result.failed_requests.push(r.url() + ' ' + (r.failure() || {}).errorText));
    await page.goto(args.url, { waitUntil: 'load', timeout: timeout });
    await page.waitForFunction(([points, nodes]) => {
      const d = window.glmDashboard;
      return d && d.lossPoints() >= points && document.querySelector('#chart-loss canvas') &&
        document.querySelectorAll('#nodes tbody tr .badge').length >= nodes;
    }, [minPoints, minNodes], { timeout: timeout, polling: 100 });
    const seen = await page.evaluate(() => ({
      loss_points: window.glmDashboard.lossPoints(),
      objectives: window.glmDashboard.objectives(),
      polls: window.glmDashboard.polls(),
      node_ids: Array.from(document.querySelectorAll('#nodes tbody tr td:first-child')).map((td) => td.textContent),
      actor_rows: document.querySelectorAll('#actors tbody tr .badge').length,
      stage_rows: document.querySelectorAll('#stages .stage').length,
      connection: document.getElementById('conn').textContent,
    }));
    Object.assign(result, seen);
    await page.screenshot({ path: args.screenshot, fullPage: true });
    const missing = expectNodes.filter((n) => !seen.node_ids.includes(n));
    if (missing.length) throw new Error('node table lacks ' + missing.join(', '));
    result.ok = true;
  } catch (e) {
    result.error = String(e && e.message || e);
    try {
      if (context && context.pages()[0]) await context.pages()[0].screenshot({ path: args.screenshot, fullPage: true });
    } catch (ignored) { /* best effort */ }
  } finally {
    if (context) await context.close().catch(() => {});
  }
  process.stdout.write(JSON.stringify(result) + '\n');
  const clean = !result.console_errors.length && !result.page_errors.length && !result.failed_requests.length;
  process.exit(result.ok && clean ? 0 : 1);
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ ok: false, error: String(e && e.message || e) }) + '\n');
  process.exit(1);
});
