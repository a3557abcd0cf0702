import { io } from 'socket.io-client';
import type { ActiveCampaign } from '../../src/server/controller.js';
import { LiveEventSchema, type LiveEvent } from '../../src/server/events.js';
import type { Heatmap, RunDetail, RunListItem, StoreViews, ProfileInfo } from '../../src/server/views.js';
import { clearBanner, get, post, rememberToken, showError, showOk } from './api.js';
import { bars, destroyCharts, driftCharts, heatmap, histograms, liveAccuracy, pareto, significance } from './charts.js';
import { card, duration, el, fix, pct, table } from './dom.js';
import './style.css';

/**
 * The bench UI: hash routes #/ (runs), #/runs/:id, #/live, #/search[/:id], #/calibration.
 * Read-only views need nothing; control buttons send the token typed in the header.
 * When a view has drawn its plots it sets body[data-view] and body[data-painted] and records
 * window.cimbench.paintMs (route start to painted) and a performance mark 'cimbench-painted' (its
 * startTime: navigation start to painted), which the browser test and bench:ui read.
 */

declare global {
  interface Window {
    cimbench: { paintMs: number | null; liveEvents: number; lastEvent: LiveEvent | null };
  }
}
window.cimbench = { paintMs: null, liveEvents: 0, lastEvent: null };

const view = document.getElementById('view') as HTMLElement;

function painted(name: string, t0: number): void {
  // Two frames: the charts are created in the first, drawn by the second.
  requestAnimationFrame(() =>
    requestAnimationFrame(() => {
      window.cimbench.paintMs = performance.now() - t0;
      // performance.now() counts from navigation start: the mark's startTime is navigation to painted.
      performance.mark('cimbench-painted', { detail: { view: name } });
      document.body.dataset.view = name;
      document.body.dataset.painted = '1';
    }),
  );
}

function setView(name: string, ...children: HTMLElement[]): void {
  destroyCharts();
  view.replaceChildren(...children);
  document.body.dataset.view = name;
}

// ---- run list ----
async function runList(t0: number): Promise<void> {
  const { runs } = await get<{ runs: RunListItem[] }>('/api/runs?limit=200');
  setView(
    'runs',
    card(
      `Bench runs (${runs.length})`,
      runs.length === 0
        ? el('p', { class: 'muted' }, 'No runs in this database yet: cimbench demo, cimbench run, or start one on the Live page.')
        : table(
            ['run', 'campaign', 'mode', 'status', 'exit', 'network', 'link', 'cells', 'arrays', 'started'],
            runs.map((r) => [el('a', { href: `#/runs/${r.id}`, 'data-run': r.id }, `#${r.id}`), r.campaignName, r.mode, r.status, r.exitStatus ?? '-', r.networkName, r.link, r.cellsPlanned, r.arraysUsed, r.createdAt.replace('T', ' ').slice(0, 19)]),
            { id: 'run-table' },
          ),
    ),
  );
  painted('runs', t0);
}

// ---- run detail ----
async function runDetail(id: number, t0: number): Promise<void> {
  const d = await get<RunDetail>(`/api/runs/${id}`);
  const s = d.summary;
  const r = s.run;
  const arraySelect = el('select', { id: 'array-select' }, ...d.arrays.map((a) => el('option', { value: a.array }, `array ${a.array} (${a.cells} cells)`)));
  const heatBox = el('div', { class: 'grid', id: 'heatmaps' });
  const showArray = async (array: number): Promise<void> => {
    const h = await get<Heatmap>(`/api/runs/${id}/cells?array=${array}&bins=64`);
    heatBox.replaceChildren(card(`array ${array}: mean |G - target| (uS)`, heatmap('heatmap-error', h, h.absErrorUs, '|G - target| uS')), card(`array ${array}: mean write-verify pulses`, heatmap('heatmap-pulses', h, h.pulses, 'pulses')));
  };
  arraySelect.addEventListener('change', () => void showArray(Number(arraySelect.value)).catch(showError));

  // Discrepancy table with filters (client side: a run has a few hundred rows at most).
  const metricSel = el('select', { id: 'filter-metric' }, el('option', { value: '' }, 'all metrics'), ...[...new Set(s.discrepancies.map((x) => x.metric))].map((m) => el('option', { value: m }, m)));
  const layerSel = el('select', { id: 'filter-layer' }, el('option', { value: '' }, 'all layers'), ...[...new Map(s.discrepancies.map((x) => [x.layer, x.layerName])).entries()].map(([l, n]) => el('option', { value: l }, n)));
  const pointSel = el('select', { id: 'filter-point' }, el('option', { value: '' }, 'all time points'), ...s.points.map((p) => el('option', { value: p.point }, `${p.point}: ${duration(p.nominalS)}`)));
  const discBox = el('div', {});
  const renderDisc = (): void => {
    const rows = s.discrepancies.filter(
      (x) => (metricSel.value === '' || x.metric === metricSel.value) && (layerSel.value === '' || x.layer === Number(layerSel.value)) && (pointSel.value === '' || x.point === Number(pointSel.value)),
    );
    discBox.replaceChildren(
      table(
        ['point', 't', 'layer', 'metric', 'simulated', 'sim std', 'measured', 'measured - sim'],
        rows.map((x) => [x.point, duration(x.tS), x.layerName, x.metric, fix(x.simulated, 4), fix(x.simulatedStd, 4), fix(x.measured, 4), fix(x.difference, 4)]),
        { id: 'discrepancy-table', 'data-rows': String(rows.length) },
      ),
    );
  };
  for (const sel of [metricSel, layerSel, pointSel]) sel.addEventListener('change', renderDisc);
  renderDisc();

  const [accChart, gChart] = driftCharts(d.drift);
  setView(
    'run',
    el('h2', {}, `Run #${r.id}: ${r.campaignName} (${r.mode}) `, el('span', { class: 'muted' }, `${r.status}${r.exitStatus ? ` / ${r.exitStatus}` : ''}${r.reason ? ` (${r.reason})` : ''}`)),
    el(
      'p',
      {},
      `network ${r.networkName}, hardware ${r.hardwareProfile}, noise ${r.noiseProfile}; device ${r.chipId ?? '-'} firmware ${r.firmwareVersion ?? '-'}; `,
      `${s.cells.programmed} programmed, ${s.cells.failed} failed, ${s.cells.interrupted} interrupted of ${r.cellsPlanned} cells; mean ${fix(s.cells.meanPulses, 2)} pulses; `,
      `digital accuracy ${pct(s.digitalAccuracy)}; EDP ${r.cost.edpMsMj.toExponential(3)} ms*mJ`,
    ),
    el(
      'div',
      { class: 'grid' },
      card('Accuracy vs time since programming: simulated band, measured points', accChart as HTMLElement),
      card('Conductance error vs time since programming', gChart as HTMLElement),
      card('Programmed conductance per target level', histograms('histograms', d.histograms)),
      card(
        'Time points',
        table(
          ['point', 'after', 'actual', 'clock', 'simulated', 'measured', 'measured - sim'],
          s.points.map((p) => [p.point, duration(p.nominalS), duration(p.actualS), p.clock ?? '-', p.simulated ? `${pct(p.simulated.mean)} +- ${(100 * p.simulated.std).toFixed(1)}` : '-', pct(p.measured), p.difference === null ? '-' : `${(100 * p.difference).toFixed(2)} pt`]),
        ),
      ),
    ),
    card('Programming heatmap per array', el('label', {}, 'array ', arraySelect), heatBox),
    card('Discrepancies (measured vs simulated)', el('div', { class: 'filters' }, metricSel, layerSel, pointSel), discBox),
  );
  if (d.arrays.length > 0) await showArray(d.arrays[0]?.array ?? 0);
  painted('run', t0);
}

// ---- live ----
interface LiveState {
  runId: number | null;
  state: string;
  steps: Map<string, string>;
  progress: Map<string, { label: string; done: number; total: number }>;
  arrays: Map<number, { done: number; total: number; failed: number; pulses: number }>;
  points: Map<number, { tS: number; simMean: number | null; simStd: number | null; measured: number | null }>;
  log: string[];
}
const liveState: LiveState = { runId: null, state: '-', steps: new Map(), progress: new Map(), arrays: new Map(), points: new Map(), log: [] };
let liveRender: (() => void) | null = null;
let renderQueued = false;

function applyEvent(e: LiveEvent): void {
  window.cimbench.liveEvents++;
  window.cimbench.lastEvent = e;
  const s = liveState;
  if (e.kind === 'run-start') {
    Object.assign(s, { runId: e.runId, state: 'running', steps: new Map(e.steps.map((k) => [k, 'planned'])), progress: new Map(), arrays: new Map(), points: new Map(), log: [] });
  }
  if (e.runId !== null && s.runId !== null && e.runId !== s.runId && !e.kind.startsWith('search')) return;
  switch (e.kind) {
    case 'state':
      // run-stop comes before the engine's last transition to done: keep its exit status.
      if (!(e.to === 'done' && s.state.startsWith('done'))) s.state = e.to;
      s.log.push(`engine ${e.from} -> ${e.to}${e.reason ? ` (${e.reason})` : ''}`);
      break;
    case 'step':
      s.steps.set(e.key, e.status);
      if (e.phase === 'end') s.log.push(`${e.key} ${e.status} in ${fix(e.seconds, 1)} s`);
      break;
    case 'progress':
      s.progress.set(e.key, { label: e.label, done: e.done, total: e.total });
      break;
    case 'array-progress':
      s.arrays.set(e.array, { done: e.done, total: e.total, failed: e.failed, pulses: e.pulses });
      break;
    case 'prediction':
      for (const p of e.points) s.points.set(p.point, { tS: p.tS, simMean: p.mean, simStd: p.std, measured: s.points.get(p.point)?.measured ?? null });
      break;
    case 'accuracy': {
      const p = s.points.get(e.point);
      s.points.set(e.point, { tS: p?.tS ?? e.point, simMean: p?.simMean ?? null, simStd: p?.simStd ?? null, measured: e.value });
      break;
    }
    case 'event':
      s.log.push(`${e.level}: ${e.message}`);
      break;
    case 'run-stop':
      s.state = `done (${e.exitStatus})`;
      s.log.push(`run stopped: ${e.exitStatus}${e.reason ? ` (${e.reason})` : ''}`);
      break;
    case 'search-stage':
      s.log.push(`search ${e.stage} ${e.phase}${e.seconds !== undefined ? ` in ${e.seconds.toFixed(1)} s` : ''}`);
      break;
    case 'search-progress':
      s.progress.set(`search:${e.stage}`, { label: `search ${e.stage}${e.detail ? ` (${e.detail})` : ''}`, done: e.done, total: s.progress.get(`search:${e.stage}`)?.total ?? 0 });
      break;
    case 'error':
      s.log.push(`error ${e.code}: ${e.message}`);
      break;
  }
  if (s.log.length > 200) s.log.splice(0, s.log.length - 200);
  // One render per frame however fast events arrive.
  if (liveRender && !renderQueued) {
    renderQueued = true;
    requestAnimationFrame(() => {
      renderQueued = false;
      liveRender?.();
    });
  }
}

const socket = io({ transports: ['websocket', 'polling'] });
const conn = document.getElementById('conn') as HTMLElement;
socket.on('connect', () => ((conn.textContent = 'live'), conn.classList.add('online')));
socket.on('disconnect', () => ((conn.textContent = 'offline'), conn.classList.remove('online')));
let lastSeq = -1;
const accept = (raw: unknown): void => {
  const p = LiveEventSchema.safeParse(raw);
  if (!p.success) return;
  if (p.data.seq >= 0) {
    if (p.data.seq <= lastSeq) return;
    lastSeq = p.data.seq;
  }
  applyEvent(p.data);
};
socket.on('live', accept);
socket.on('replay', (raw: unknown) => {
  if (Array.isArray(raw)) for (const e of raw) accept(e);
});

async function liveView(t0: number): Promise<void> {
  const { files, active } = await get<{ files: string[]; active: ActiveCampaign | null }>('/api/campaigns');
  if (active && liveState.runId === null) liveState.runId = active.runId;
  const fileSel = el('select', { id: 'campaign-file' }, ...files.map((f) => el('option', { value: f }, f)));
  const modeSel = el('select', { id: 'campaign-mode' }, el('option', { value: 'full' }, 'full'), el('option', { value: 'program' }, 'program only'));
  const control = async (action: string): Promise<void> => {
    clearBanner();
    try {
      if (action === 'start') {
        const r = await post<{ runId: number }>('/api/campaigns', { file: fileSel.value, mode: modeSel.value });
        liveState.runId = r.runId;
        showOk(`started run ${r.runId}`);
      } else {
        if (liveState.runId === null) throw new Error('no run to control');
        const r = await post<{ state: string }>(`/api/campaigns/${liveState.runId}/${action}`, {});
        showOk(`${action}: run ${liveState.runId} is ${r.state}`);
      }
    } catch (err) {
      showError(err);
    }
  };
  const buttons = ['start', 'pause', 'resume', 'abort'].map((a) => {
    const b = el('button', { id: `btn-${a}` }, a);
    b.addEventListener('click', () => void control(a));
    return b;
  });
  const status = el('div', { id: 'live-status' });
  const stepsBox = el('div', { id: 'live-steps' });
  const progressBox = el('div', { id: 'live-progress' });
  const arraysBox = el('div', { id: 'live-arrays' });
  const logBox = el('div', { class: 'log', id: 'live-log' });
  const acc = liveAccuracy('live-accuracy');
  const bar = (done: number, total: number): HTMLElement => el('div', { class: 'bar' }, el('div', { style: `width: ${total > 0 ? Math.min(100, (100 * done) / total).toFixed(1) : 0}%` }));
  liveRender = () => {
    const s = liveState;
    status.textContent = `run ${s.runId ?? '-'}: ${s.state}; ${window.cimbench.liveEvents} events received`;
    stepsBox.replaceChildren(table(['step', 'status'], [...s.steps].map(([k, v]) => [k, v])));
    progressBox.replaceChildren(...[...s.progress].map(([k, p]) => el('div', { 'data-progress': k }, `${p.label}: ${p.done} / ${p.total || '?'}`, bar(p.done, p.total))));
    arraysBox.replaceChildren(
      table(
        ['array', 'cells done', 'failed', 'mean pulses', ''],
        [...s.arrays].sort((a, b) => a[0] - b[0]).map(([a, p]) => [a, `${p.done} / ${p.total}`, p.failed, p.done > 0 ? fix(p.pulses / p.done, 2) : '-', bar(p.done, p.total)]),
      ),
    );
    logBox.replaceChildren(...s.log.slice(-60).map((l) => el('div', {}, l)));
    acc.update([...s.points.values()].sort((a, b) => a.tS - b.tS));
  };
  setView(
    'live',
    card('Campaign control', el('label', {}, 'stored campaign ', fileSel), ' ', modeSel, ' ', ...buttons, el('p', { class: 'muted' }, 'Start, pause, resume and abort need the control token printed by cimbench serve.')),
    el('div', { class: 'grid' }, card('Status', status, stepsBox), card('Progress', progressBox), card('Programming per array', arraysBox), card('Accuracy: simulated band, measured points', acc.element), card('Events', logBox)),
  );
  liveRender();
  painted('live', t0);
}

// ---- search ----
async function searchView(id: number | null, t0: number): Promise<void> {
  const { searches } = await get<{ searches: ReturnType<StoreViews['listSearches']> }>('/api/searches');
  const list = card(
    `Search runs (${searches.length})`,
    searches.length === 0
      ? el('p', { class: 'muted' }, 'No search runs recorded (cimbench search or cimbench demo).')
      : table(['search', 'space', 'method', 'preset', 'budget', 'status', 'test accuracy', 'EDP'], searches.map((s) => [el('a', { href: `#/search/${s.id}` }, `#${s.id}`), s.space, s.method, s.preset, s.budget, s.status, pct(s.testAccuracy), s.edpMsMj?.toExponential(3) ?? '-'])),
  );
  const target = id ?? searches[0]?.id ?? null;
  if (target === null) {
    setView('search', list);
    painted('search', t0);
    return;
  }
  const d = await get<ReturnType<StoreViews['searchDetail']>>(`/api/searches/${target}`);
  const m = d.run.metrics as { testAccuracy?: number; edpMsMj?: number; chosen?: string[] } | null;
  const chosen = m && typeof m.testAccuracy === 'number' && typeof m.edpMsMj === 'number' ? { edpMsMj: m.edpMsMj, accuracy: m.testAccuracy } : null;
  const parts: HTMLElement[] = [];
  if (d.front && d.front.length > 0) parts.push(card('Pareto front: accuracy vs EDP, chosen network', pareto('pareto', d.front, chosen)));
  else if (chosen) parts.push(card('Chosen network: test accuracy vs EDP (this method writes no Pareto front)', pareto('pareto', [], chosen)));
  if (d.topK) parts.push(card('Hardware stage top-K (EDP, ms*mJ)', table(['#', 'EDP', 'choices'], d.topK.map((c, i) => [i + 1, c.edpMsMj.toExponential(3), c.choices.join(' | ')]))));
  for (const [kind, sig] of Object.entries(d.significance)) if (sig) parts.push(card(`${kind} significance`, significance(`significance-${kind}`, sig)));
  setView('search', list, el('h2', {}, `Search #${d.run.id}: ${d.run.space} ${d.run.method} (${d.run.status})`), m?.chosen ? el('p', {}, `chosen: ${m.chosen.join(' | ')}`) : el('span'), el('div', { class: 'grid' }, ...parts));
  painted('search', t0);
}

// ---- calibration ----
function flatten(value: unknown, prefix = '', out: Map<string, number> = new Map()): Map<string, number> {
  if (typeof value === 'number') out.set(prefix, value);
  else if (Array.isArray(value)) value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  return out;
}

async function calibrationView(t0: number): Promise<void> {
  const { profiles } = await get<{ profiles: ProfileInfo[] }>('/api/calibration/profiles');
  const noise = profiles.filter((p) => p.kind === 'noise');
  const before = el('select', { id: 'cal-before' }, ...noise.map((p) => el('option', { value: p.name }, p.name)));
  const afterSel = el('select', { id: 'cal-after' }, ...noise.map((p) => el('option', { value: p.name }, p.name)));
  if (noise.length > 1) afterSel.selectedIndex = noise.length - 1;
  const box = el('div', { class: 'grid' });
  const render = (): void => {
    const a = noise.find((p) => p.name === before.value);
    const b = noise.find((p) => p.name === afterSel.value);
    if (!a || !b) return;
    const fa = flatten(a.parameters);
    const fb = flatten(b.parameters);
    const keys = [...new Set([...fa.keys(), ...fb.keys()])].sort();
    const changed = keys.filter((k) => fa.get(k) !== fb.get(k) && fa.has(k) && fb.has(k));
    box.replaceChildren(
      card(`${a.name} (before) vs ${b.name} (after)`, table(['parameter', 'before', 'after', 'after - before'], keys.map((k) => [k, fix(fa.get(k), 4), fix(fb.get(k), 4), fa.has(k) && fb.has(k) ? fix((fb.get(k) as number) - (fa.get(k) as number), 4) : '-']))),
      card('Relative change of the parameters that differ', bars('calibration-change', changed, changed.map((k) => ((fb.get(k) as number) - (fa.get(k) as number)) / Math.max(Math.abs(fa.get(k) as number), 1e-12)), 'relative change')),
      card('Provenance (after)', el('pre', {}, JSON.stringify(b.provenance, null, 2))),
    );
  };
  before.addEventListener('change', render);
  afterSel.addEventListener('change', render);
  setView(
    'calibration',
    card('Calibration profiles', table(['kind', 'name', 'file', 'description'], profiles.map((p) => [p.kind, p.name, p.file, p.description ?? '-']))),
    card('Noise profile before / after', el('label', {}, 'before ', before), ' ', el('label', {}, 'after ', afterSel)),
    box,
  );
  render();
  painted('calibration', t0);
}

// ---- router ----
async function route(): Promise<void> {
  const t0 = performance.now();
  delete document.body.dataset.painted;
  window.cimbench.paintMs = null;
  liveRender = null;
  const hash = location.hash.replace(/^#/, '') || '/';
  try {
    let m: RegExpExecArray | null;
    if ((m = /^\/runs\/(\d+)$/.exec(hash))) await runDetail(Number(m[1]), t0);
    else if (hash === '/live') await liveView(t0);
    else if ((m = /^\/search(?:\/(\d+))?$/.exec(hash))) await searchView(m[1] ? Number(m[1]) : null, t0);
    else if (hash === '/calibration') await calibrationView(t0);
    else await runList(t0);
  } catch (err) {
    showError(err);
    document.body.dataset.painted = 'error';
  }
}

const tokenInput = document.getElementById('token') as HTMLInputElement;
tokenInput.value = sessionStorage.getItem('cimbench.token') ?? '';
tokenInput.addEventListener('change', () => rememberToken(tokenInput.value.trim()));
window.addEventListener('hashchange', () => void route());
void route();
