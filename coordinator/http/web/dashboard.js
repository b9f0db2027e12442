// glm dashboard: polls /api/status and renders charts (uPlot) and tables.
// No framework, no network beyond this server. window.glmDashboard exposes
// counters the browser test waits on.
(function () {
  'use strict';

  const OBJECTIVE_COLORS = { total: '#1d2733', blank: '#2f6fde', sentence: '#e8731c', document: '#1f9d55' };
  const STEP_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000, 1000000];
  const EXTRA_COLORS = ['#9b51e0', '#d1362f', '#0f9bb0', '#b08a0f'];
  const state = {
    lastStep: -1,          // newest history step held
    steps: [],             // history x values
    loss: {},              // objective ("total" too) -> values aligned with steps
    lr: [],
    tps: [],
    objectives: [],        // loss series order, "total" first
    charts: {},            // name -> uPlot
    polls: 0,
    failures: 0,
    pollMs: 1000,
  };

  const $ = (id) => document.getElementById(id);

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  function fmtNum(v, digits) {
    if (v === null || v === undefined || !isFinite(v)) return '–';
    if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(2) + 'M';
    if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    return Number(v).toFixed(digits);
  }
  function fmtInt(v) { return Number(v || 0).toLocaleString('en-US'); }
  function fmtBytes(b) {
    if (!b) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return b.toFixed(i ? 1 : 0) + ' ' + u[i];
  }
  function fmtAgo(ms, now) {
    if (!ms) return 'never';
    const s = Math.max(0, (now - ms) / 1000);
    if (s < 1) return 'just now';
    if (s < 90) return s.toFixed(0) + ' s ago';
    if (s < 5400) return (s / 60).toFixed(0) + ' min ago';
    return (s / 3600).toFixed(1) + ' h ago';
  }
  function fmtDuration(s) {
    if (!isFinite(s) || s < 0) return '–';
    if (s < 60) return s.toFixed(s < 10 ? 1 : 0) + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + Math.floor(s % 60) + ' s';
    return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  }
  function fmtTime(ms) { return ms ? new Date(ms).toLocaleTimeString('en-GB') : '–'; }
  function badgeClass(state) {
    if (['alive', 'running', 'complete', 'done', 'ok'].includes(state)) return 'ok';
    if (['suspect', 'pending', 'restarting', 'in_progress', 'starting', 'checkpointing'].includes(state)) return 'warn';
    if (['dead', 'failed'].includes(state)) return 'bad';
    return '';
  }
  function badge(state) { return '<span class="badge ' + badgeClass(state) + '">' + esc(state || '–') + '</span>'; }
  function fillTable(id, rows, empty) {
    const body = $(id).querySelector('tbody');
    const cols = $(id).querySelectorAll('thead th').length;
    body.innerHTML = rows.length ? rows.join('') :
      '<tr><td class="empty" colspan="' + cols + '">' + esc(empty) + '</td></tr>';
  }

  // --- Charts ---------------------------------------------------------------
  function chartSize(el) {
    const width = Math.max(200, el.clientWidth);
    return { width: width, height: el.classList.contains('small') ? 170 : 260 };
  }
  function makeChart(name, el, series, yLabel, data, yValues) {
    if (state.charts[name]) state.charts[name].destroy();
    el.innerHTML = '';
    const size = chartSize(el);
    const opts = {
      width: size.width, height: size.height,
      scales: { x: { time: false } },
      series: [{ label: 'step' }].concat(series),
      // Steps are integers: no 1.2, 1.4, ... ticks on a short run.
      axes: [{ label: 'step', stroke: '#6b7785', grid: { stroke: '#eef1f4' }, incrs: STEP_INCRS },
             { label: yLabel, stroke: '#6b7785', grid: { stroke: '#eef1f4' }, size: 64,
               values: yValues || ((u, vals) => vals.map((v) => fmtNum(v, Math.abs(v) < 10 ? 1 : 0))) }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
    };
    state.charts[name] = new uPlot(opts, data, el);
  }
  function colorFor(objective, index) {
    return OBJECTIVE_COLORS[objective] || EXTRA_COLORS[index % EXTRA_COLORS.length];
  }
  function renderCharts() {
    const lossEl = $('chart-loss');
    lossEl.dataset.points = String(state.steps.length);
    if (!state.steps.length) {
      for (const id of ['chart-loss', 'chart-lr', 'chart-tps']) {
        if (!state.charts[id]) $(id).innerHTML = '<div class="empty">no training steps yet</div>';
      }
      return;
    }
    const lossData = [state.steps].concat(state.objectives.map((o) => state.loss[o]));
    const lossKey = state.objectives.join(',');
    if (!state.charts['chart-loss'] || state.charts['chart-loss'].glmKey !== lossKey) {
      makeChart('chart-loss', lossEl, state.objectives.map((o, i) => ({
        label: o, stroke: colorFor(o, i), width: o === 'total' ? 2 : 1.5, spanGaps: true,
        dash: o === 'total' ? [6, 4] : undefined,
        value: (u, v) => fmtNum(v, 4),
      })), 'loss', lossData);
      state.charts['chart-loss'].glmKey = lossKey;
    } else {
      state.charts['chart-loss'].setData(lossData);
    }
    const lrData = [state.steps, state.lr];
    if (!state.charts['chart-lr']) {
      makeChart('chart-lr', $('chart-lr'), [{ label: 'lr', stroke: '#9b51e0', width: 1.5,
        value: (u, v) => (v == null ? '–' : v.toExponential(2)) }], 'lr', lrData,
        (u, vals) => vals.map((v) => (v === 0 ? '0' : v.toExponential(1))));
    } else {
      state.charts['chart-lr'].setData(lrData);
    }
    const tpsData = [state.steps, state.tps];
    if (!state.charts['chart-tps']) {
      makeChart('chart-tps', $('chart-tps'), [{ label: 'tokens/s', stroke: '#0f9bb0', width: 1.5,
        value: (u, v) => fmtNum(v, 0) }], 'tokens/s', tpsData);
    } else {
      state.charts['chart-tps'].setData(tpsData);
    }
  }
  function resizeCharts() {
    for (const id in state.charts) state.charts[id].setSize(chartSize($(id)));
  }

  // --- History --------------------------------------------------------------
  function resetHistory() {
    state.lastStep = -1; state.steps = []; state.loss = {}; state.lr = []; state.tps = []; state.objectives = [];
  }
  function appendHistory(points) {
    for (const p of points) {
      if (p.step <= state.lastStep) continue;
      const keys = ['total'].concat(Object.keys(p.objective_loss || {}).sort());
      for (const k of keys) {
        if (!state.loss[k]) {
          state.loss[k] = new Array(state.steps.length).fill(null);
          state.objectives.push(k);
        }
      }
      state.steps.push(p.step);
      for (const k of state.objectives) {
        const v = k === 'total' ? p.loss : (p.objective_loss || {})[k];
        state.loss[k].push(v === undefined ? null : v);
      }
      state.lr.push(p.learning_rate);
      state.tps.push(p.tokens_per_second);
      state.lastStep = p.step;
    }
    // "total" first, then the objectives in a stable order.
    const order = ['total', 'blank', 'sentence', 'document'];
    state.objectives.sort((a, b) => {
      const ia = order.indexOf(a), ib = order.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
  }

  // --- Tables and header ----------------------------------------------------
  function renderStatus(s) {
    const now = s.time_ms || Date.now();
    const t = s.trainer || {};
    $('job').textContent = s.job || 'glm job';
    $('phase').textContent = s.phase || '–';
    $('kpi-step').textContent = fmtInt(t.step) + (t.max_steps ? ' / ' + fmtInt(t.max_steps) : '');
    $('kpi-loss').textContent = fmtNum(t.loss, 4);
    $('kpi-lr').textContent = t.learning_rate ? t.learning_rate.toExponential(2) : '–';
    $('kpi-tps').textContent = fmtNum((s.throughput || {}).tokens_per_second, 0);
    $('kpi-world').textContent = t.world_size ? t.world_size + ' (gen ' + (t.generation || 0) + ')' : '–';
    $('kpi-uptime').textContent = s.started_ms ? fmtDuration((now - s.started_ms) / 1000) : '–';
    const frac = t.max_steps ? Math.min(1, t.step / t.max_steps) : 0;
    $('step-progress').querySelector('.bar').style.width = (100 * frac).toFixed(1) + '%';

    const stages = s.stages || [];
    $('stages').innerHTML = stages.length ? stages.map((st) => {
      const known = st.total || (st.pending + st.leased + st.done);
      const pct = known ? (100 * st.done / known) : 0;
      const failPct = known ? Math.min(100 - pct, 100 * st.failed / known) : 0;
      return '<div class="stage"><div class="label"><span><b>' + esc(st.stage) + '</b> ' + pct.toFixed(0) +
        '%</span><span>' + fmtInt(st.done) + ' done · ' + fmtInt(st.leased) + ' leased · ' + fmtInt(st.pending) +
        ' pending · ' + fmtInt(st.failed) + ' failed' + (st.total ? ' · ' + fmtInt(st.total) + ' planned' : '') +
        '</span></div><div class="progress"><div class="bar" style="width:' + pct.toFixed(1) +
        '%"></div><div class="failed" style="left:' + pct.toFixed(1) + '%;width:' + failPct.toFixed(1) +
        '%"></div></div></div>';
    }).join('') : '<div class="empty">no pipeline stages yet</div>';

    fillTable('objectives', (s.objectives || []).map((o) => {
      const drift = (o.consumed_rate || 0) - (o.target_rate || 0);
      return '<tr><td>' + esc(o.objective) + '</td><td>' + fmtInt(o.produced) + '</td><td>' + fmtInt(o.consumed) +
        '</td><td>' + (100 * (o.target_rate || 0)).toFixed(1) + '%</td><td>' + (100 * (o.consumed_rate || 0)).toFixed(1) +
        '%</td><td>' + (drift >= 0 ? '+' : '') + (100 * drift).toFixed(2) + ' pp</td></tr>';
    }), 'no objectives yet');

    fillTable('nodes', (s.nodes || []).map((n) => '<tr><td>' + esc(n.id) + '</td><td>' + esc(n.address || '') +
      '</td><td>' + badge(n.state) + '</td><td>' + fmtAgo(n.last_heartbeat_ms, now) + '</td><td>' + (n.num_cpus || 0) + ' / ' +
      (n.num_gpus || 0) + '</td><td>' + (n.num_actors || 0) + '</td></tr>'), 'no nodes registered');

    fillTable('actors', (s.actors || []).map((a) => '<tr><td>' + esc(a.id) + '</td><td>' + esc(a.kind) + '</td><td>' +
      esc(a.node_id) + '</td><td>' + badge(a.state) + '</td><td>' + (a.restarts || 0) + '</td></tr>'), 'no actors');

    fillTable('failures', (s.failures || []).slice().reverse().slice(0, 12).map((f) => '<tr><td>' + fmtAgo(f.time_ms, now) +
      '</td><td>' + badge(f.kind) + '</td><td>' + esc(f.subject) + '</td><td class="wrap">' + esc(f.message) + '</td></tr>'),
      'no failures');

    fillTable('checkpoints', (s.checkpoints || []).slice().reverse().slice(0, 8).map((c) => '<tr><td>' + fmtInt(c.step) +
      '</td><td>' + badge(c.state) + '</td><td>' + fmtTime(c.time_ms) + '</td><td>' + fmtDuration(c.duration_s) +
      '</td><td>' + fmtBytes(c.bytes) + '</td><td class="wrap">' + esc(c.path) + '</td></tr>'), 'no checkpoints yet');
  }

  // --- Polling --------------------------------------------------------------
  function setConn(text, cls) {
    const el = $('conn');
    el.textContent = text;
    el.className = 'conn ' + cls;
  }
  async function poll() {
    try {
      // The first load takes at most 2000 points of history (plenty for a
      // chart's width); later polls only the steps after the newest held.
      const query = state.lastStep < 0 ? 'max_history=2000' : 'history_after=' + state.lastStep;
      const res = await fetch('/api/status?' + query, { cache: 'no-store' });
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const s = await res.json();
      if (s.trainer && s.trainer.step < state.lastStep) {
        // The job went back (resumed from an earlier checkpoint): start over.
        resetHistory();
        setTimeout(poll, 0);
        return;
      }
      appendHistory(s.history || []);
      renderStatus(s);
      renderCharts();
      state.polls++;
      if (s.poll_interval_ms) state.pollMs = s.poll_interval_ms;
      setConn('live · ' + new Date().toLocaleTimeString('en-GB'), 'live');
    } catch (e) {
      state.failures++;
      // Not console.error: a coordinator that went away is an expected state.
      setConn('disconnected, retrying (' + e.message + ')', 'down');
    }
    setTimeout(poll, state.pollMs);
  }

  window.glmDashboard = {
    lossPoints: () => state.steps.length,
    objectives: () => state.objectives.slice(),
    polls: () => state.polls,
    failedPolls: () => state.failures,
  };
  if (typeof ResizeObserver !== 'undefined') {
    new ResizeObserver(resizeCharts).observe(document.querySelector('main'));
  } else {
    window.addEventListener('resize', resizeCharts);
  }
  poll();
})();
