// The dashboard: who is looking (wallet or address), their workflows and escrow, the create
// form, signed status changes, the live execution feed (SSE), charts, prices and workers.

import { invalidateSignatures, refreshPending } from './admin.js';
import { api, ApiError, followRelayed, setChain, currentChain } from './api.js';
import { barChart, bucketize, lineChart } from './charts.js';
import { check, inputFor, showErrors, showKind } from './form.js';
import { kindOf, loadKinds } from './triggers.js';
import { ago, formatWei, isAddress, shortHex, toWei, when } from './units.js';
import * as wallet from './wallet.js';

const $ = (id) => document.getElementById(id);
const state = { address: null, mode: null, walletChain: null, chain: null, chains: [], executions: new Map(), source: null,
  workflows: [], unreachable: false, busy: false };
const UINT32_MAX = 4294967295;

// ------------------------------------------------------------------ messages

function banner(text, kind = 'error') {
  $('banner-text').textContent = text;
  $('banner').className = `banner ${kind === 'info' ? 'info' : ''}`;
  $('banner').dataset.kind = kind;
  $('banner').hidden = false;
}
function clearBanner(kind) { if (!kind || $('banner').dataset.kind === kind) $('banner').hidden = true; }

// One sentence for anything that went wrong, naming what to do next.
export function describe(err, doing) {
  if (err instanceof wallet.WalletError) {
    if (err.code === 'rejected') return `You rejected the signature in your wallet; nothing was ${doing}.`;
    return err.message;
  }
  if (err instanceof ApiError) {
    if (err.code === 'unreachable') return err.message;
    if (err.code === 'insufficient_escrow') {
      const d = err.details || {};
      return `Insufficient escrow: your escrow holds ${formatWei(d.balance_wei ?? 0)} coin, less than the ${formatWei(d.fee_wei ?? 0)} coin ` +
        'relayer fee. Deposit to your escrow first; nothing was ' + doing + '.';
    }
    if (err.code === 'rate_limited') return `Too many requests: ${err.message}`;
    return `Refused (${err.code}): ${err.message}`;
  }
  return `Unexpected error: ${err && err.message ? err.message : err}`;
}

function reportReach(ok) {
  if (!ok && !state.unreachable) banner('The backend is unreachable: check that the Autometa API is running. Retrying…', 'unreachable');
  if (ok && state.unreachable) clearBanner('unreachable');
  state.unreachable = !ok;
}

async function guarded(fn) {
  try { const out = await fn(); reportReach(true); return out; } catch (err) {
    if (err instanceof ApiError && err.code === 'unreachable') { reportReach(false); return undefined; }
    throw err;
  }
}

// ------------------------------------------------------------------ who

async function useAddress(address, mode) {
  state.address = address; state.mode = mode;
  $('account-empty').hidden = true; $('account-info').hidden = false;
  $('acct-address').textContent = address;
  $('acct-mode').textContent = mode === 'wallet' ? 'connected wallet (can sign)' : 'view only';
  $('deposit-form').hidden = mode !== 'wallet';
  $('invalidate-sigs').hidden = mode !== 'wallet';
  $('connect').textContent = mode === 'wallet' ? shortHex(address, 4) : 'Connect wallet';
  document.body.dataset.address = address;
  openFeed();
  await refreshAccount();
  validateSoon();
}

async function connectWallet() {
  try {
    const { address, chainId } = await wallet.connect();
    followWallet(chainId);
    await useAddress(address, 'wallet');
  } catch (err) { banner(describe(err, 'connected')); }
}

// ------------------------------------------------------------------ workflows and escrow

function triggerText(spec) {
  try { return kindOf(spec.trigger_type).module.text(spec.trigger_data); } catch { return `unknown trigger kind ${spec.trigger_type}`; }
}
function actionText(spec) {
  const a = spec.action_data;
  if (spec.action_type === 0) return `send ${formatWei(a.amount_wei)} coin to ${shortHex(a.to, 4)}`;
  if (spec.action_type === 1) return `send ${a.amount} of ${shortHex(a.token, 4)} to ${shortHex(a.to, 4)}`;
  return `call ${shortHex(a.target, 4)}${a.value_wei && a.value_wei !== '0' ? ` with ${formatWei(a.value_wei)} coin` : ''}`;
}

function cell(text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; }
function pill(text) { const s = document.createElement('span'); s.className = `pill ${text}`; s.textContent = text; return s; }

/** The next due time is when a run may happen; past it, a condition kind (price) says what it waits for. */
function nextDue(w) {
  if (w.status !== 'active') return '–';
  const eligible = w.next_due_time !== null && w.next_due_time !== undefined && w.next_due_time <= Date.now() / 1000;
  let waiting = null;
  try { waiting = kindOf(w.spec.trigger_type).module.nextDue(w, eligible); } catch { return '–'; }
  if (waiting) return waiting;
  return when(w.next_due_time);
}

function renderWorkflows() {
  const rows = state.workflows.map((w) => {
    const tr = document.createElement('tr');
    tr.dataset.workflowId = w.id; tr.dataset.status = w.status; tr.dataset.chain = w.chain || '';
    const status = document.createElement('td'); status.append(pill(w.status));
    const runs = w.max_runs >= UINT32_MAX ? `${w.run_count}` : `${w.run_count} / ${w.max_runs}`;
    const runway = w.escrow && w.status === 'active' ? `${w.escrow.runway_runs} runs` : '–';
    tr.append(cell(`#${w.id}`), cell(w.chain || (w.chain_id ? String(w.chain_id) : '–')), cell(triggerText(w.spec)), cell(actionText(w.spec), 'opt'), status,
      cell(nextDue(w), 'opt'), cell(runs), cell(runway, 'opt'));
    const actions = cell('', 'actions');
    if (state.mode === 'wallet' && w.owner.toLowerCase() === state.address.toLowerCase()) {
      const ops = w.status === 'active' ? ['pause', 'cancel'] : w.status === 'paused' ? ['resume', 'cancel'] : [];
      for (const op of ops) {
        const b = document.createElement('button');
        b.type = 'button'; b.textContent = op; b.className = op === 'cancel' ? 'danger' : 'secondary';
        b.dataset.op = op; b.dataset.testid = w.chain && w.chain !== defaultChain() ? `${op}-${w.chain}-${w.id}` : `${op}-${w.id}`;
        b.addEventListener('click', () => changeStatus(w, op, b));
        actions.append(b);
      }
    }
    tr.append(actions);
    return tr;
  });
  $('wf-rows').replaceChildren(...rows);
  $('wf-empty').hidden = rows.length > 0;
  $('wf-count').textContent = rows.length ? `(${rows.length})` : '';
}

async function refreshAccount() {
  if (!state.address) return;
  const address = state.address;
  const [list, escrow] = await Promise.all([
    guarded(() => api.workflows(address, $('wf-every-chain').checked ? null : (currentChain() || defaultChain()))),
    guarded(() => api.escrow(address)).catch((err) => { $('acct-balance').textContent = describe(err, 'read'); return undefined; }),
  ]);
  if (address !== state.address) return;
  if (list) { state.workflows = list.workflows; renderWorkflows(); }
  if (escrow) {
    state.escrow = escrow;
    $('acct-balance').textContent = `${formatWei(escrow.balance_wei)} coin (${escrow.source})`;
    $('acct-runway').textContent = escrow.runway_runs === null
      ? 'no active workflows'
      : `${escrow.runway_runs} more runs of your ${escrow.active_workflows} active workflow(s) at their fee caps`;
  }
}

async function changeStatus(w, op, button) {
  if (state.busy) { banner('Another request is still in progress; try again in a moment.', 'info'); return; }
  const id = w.id, on = w.chain || currentChain();
  if (state.walletChain !== null && w.chain_id && state.walletChain !== w.chain_id) {
    banner(`Workflow #${id} is on chain ${w.chain || w.chain_id}: switch your wallet to chain ${w.chain_id} to sign for it.`, 'warning');
    return;
  }
  state.busy = true; button.disabled = true;
  const past = { pause: 'paused', resume: 'resumed', cancel: 'cancelled' }[op];
  try {
    const prepared = await api.prepareStatus(id, op, state.address, on);
    banner(`Sign the ${op} of workflow #${id} in your wallet…`, 'info');
    const signature = await wallet.signTypedData(state.address, prepared.typed_data);
    let done = await api.changeStatus(id, op, { user_address: state.address, signature, nonce: prepared.nonce,
      deadline: prepared.deadline, max_relayer_fee_wei: prepared.max_relayer_fee_wei }, on);
    if (done && done.state) {  // 202: sent, not mined yet
      done = await followRelayed(done, (s) => banner(`Submitted, tx ${shortHex(s.tx_hash)}, waiting to be mined…`, 'info'));
      if (done.state === 'pending') { banner(`Submitted, tx ${done.tx_hash}: still not mined.`, 'info'); return; }
      if (done.state !== 'mined') throw new ApiError(409, done.state, `Transaction ${shortHex(done.tx_hash)} ${done.state}: ${done.message}`);
      done = { status: done.workflow_status, tx_hash: done.tx_hash };
    }
    banner(`Workflow #${id} ${past} (now ${done.status}) in ${shortHex(done.tx_hash)}.`, 'info');
    await refreshAccount();
  } catch (err) {
    banner(describe(err, past));
  } finally { state.busy = false; button.disabled = false; }
}

async function deposit(event) {
  event.preventDefault();
  if (state.mode !== 'wallet') return;
  let value;
  try { value = toWei($('deposit-amount').value); } catch (e) { banner(`Deposit amount ${e.message}.`); return; }
  if (value <= 0n) { banner('Deposit amount must be positive.'); return; }
  try {
    const account = state.escrow || (await api.escrow(state.address));
    if (!account.deposit) { banner('The chain is unreachable, so deposits are not possible right now.'); return; }
    const hash = await wallet.sendTransaction({ from: state.address, to: account.deposit.to, data: account.deposit.data,
      value: '0x' + value.toString(16) });
    banner(`Deposit of ${formatWei(value)} coin sent in ${shortHex(hash)}; the balance updates once it is mined.`, 'info');
    setTimeout(refreshAccount, 1500);
  } catch (err) { banner(describe(err, 'deposited')); }
}

// ------------------------------------------------------------------ create

let validateTimer = null;
let validateSeq = 0;
function validateSoon(all = false) {
  clearTimeout(validateTimer);
  validateTimer = setTimeout(() => validateNow(all), 250);
}
async function validateNow(all = false) {
  const form = $('create-form'), seq = ++validateSeq;
  try {
    const { body, errors } = await check(form, state.address);
    if (seq !== validateSeq) return null;
    const shown = showErrors(form, $('create-errors'), errors, all);
    form.dataset.valid = errors.length ? 'false' : 'true';
    return shown || errors.length ? null : body;
  } catch (err) {
    if (seq === validateSeq) showErrors(form, $('create-errors'), [{ field: 'form', message: describe(err, 'checked') }], true);
    return null;
  }
}

async function create(event) {
  event.preventDefault();
  const form = $('create-form'), status = $('create-status');
  if (state.busy) { status.textContent = 'Another request is still in progress; try again in a moment.'; return; }
  form.querySelectorAll('input').forEach((i) => { i.dataset.touched = '1'; });
  if (state.mode !== 'wallet') { banner('Connect a wallet to create workflows (viewing an address cannot sign).'); return; }
  clearTimeout(validateTimer);
  const body = await validateNow(true);
  if (!body) { status.textContent = 'Fix the fields above first.'; return; }
  state.busy = true; $('create-submit').disabled = true;
  try {
    status.textContent = 'Preparing…';
    const prepared = await api.prepareCreate(body);
    status.textContent = 'Sign the request in your wallet…';
    const signature = await wallet.signTypedData(state.address, prepared.typed_data);
    status.textContent = 'Relaying…';
    let created = await api.create({ ...body, signature, nonce: prepared.nonce, deadline: prepared.deadline,
      max_relayer_fee_wei: prepared.max_relayer_fee_wei });
    if (created && created.state) {  // 202: sent, not mined yet; never a failure
      created = await followRelayed(created, (s) => { status.textContent = `Submitted, tx ${shortHex(s.tx_hash)}, waiting to be mined…`; });
      if (created.state === 'pending') { status.textContent = `Submitted, tx ${created.tx_hash}: still not mined; it will show up in your workflows once it is.`; return; }
      if (created.state !== 'mined') throw new ApiError(409, created.state, `Transaction ${shortHex(created.tx_hash)} ${created.state}: ${created.message}`);
    }
    status.textContent = `Created workflow #${created.workflow_id} in ${shortHex(created.tx_hash)}.`;
    clearBanner();
    await refreshAccount();
  } catch (err) {
    status.textContent = 'Not created.';
    banner(describe(err, 'created'));
    if (err instanceof ApiError && err.field && inputFor(form, err.field)) {
      const message = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message;
      showErrors(form, $('create-errors'), [{ field: err.field, message }], true);
    }
  } finally { state.busy = false; $('create-submit').disabled = false; }
}

// ------------------------------------------------------------------ live feed and charts

function openFeed() {
  if (state.source) state.source.close();
  state.executions.clear();
  state.feedKnown = false;
  $('feed-empty').textContent = 'loading…';
  renderFeed(null);  // nothing of the previous scope stays on screen
  const preloaded = preloadFeed();
  const query = new URLSearchParams({ backlog: '100' });
  if (state.address) query.set('user', state.address);
  const source = new EventSource(`/api/executions/stream?${query}`);
  state.source = source;
  const feedState = (s) => { $('feed-state').textContent = s; $('feed-state').className = `pill ${s === 'live' ? 'live' : 'offline'}`; };
  source.addEventListener('open', () => { feedState('live'); reportReach(true); });
  source.addEventListener('error', () => { feedState(source.readyState === EventSource.CLOSED ? 'offline' : 'reconnecting'); });
  source.addEventListener('execution', (event) => {
    const row = JSON.parse(event.data);
    const fresh = !state.executions.has(row.id);
    state.executions.set(row.id, row);
    renderFeed(fresh ? row.id : null);
    if (row.status !== 'pending') refreshSoon();
  });
  $('chart-scope').textContent = state.address ? `(workflows of ${shortHex(state.address, 4)})` : '(all workflows)';
  return preloaded;
}

let refreshTimer = null;
function refreshSoon() { clearTimeout(refreshTimer); refreshTimer = setTimeout(refreshAccount, 300); }

function renderFeed(freshId) {
  const rows = [...state.executions.values()].sort((a, b) => b.id - a.id);
  const trs = rows.slice(0, 50).map((e) => {
    const tr = document.createElement('tr');
    tr.dataset.executionId = e.id; tr.dataset.workflowId = e.workflow_id; tr.dataset.status = e.status;
    if (e.id === freshId) tr.className = 'fresh';
    const status = document.createElement('td'); status.append(pill(e.status));
    const why = e.skip_reason || e.revert_reason;
    if (why) status.title = why;
    const price = e.price_usd ? `$${e.price_usd}${e.price_source ? ' · ' + e.price_source : ''}` : (e.price_source || '–');
    const tx = cell(e.tx_hash ? shortHex(e.tx_hash, 4) : '–', 'mono nowrap'); if (e.tx_hash) tx.title = e.tx_hash;
    tr.append(cell(new Date(e.occurred_at).toLocaleTimeString(), 'opt'), cell(`#${e.workflow_id}`), cell(String(e.run_index), 'opt'),
      status, cell(price), tx, cell(e.gas_used ?? '–', 'opt'), cell(e.fee_wei ? formatWei(e.fee_wei) : '–', 'opt'),
      cell(typeof e.latency_s === 'number' ? `${e.latency_s.toFixed(2)} s` : '–'));
    return tr;
  });
  $('feed-rows').replaceChildren(...trs);
  $('feed-empty').hidden = trs.length > 0;
  if (state.feedKnown) $('feed-empty').textContent = 'No executions yet.';
  drawCharts(rows);
}

let chartTimer = null;
function drawCharts(rows) {
  clearTimeout(chartTimer);
  chartTimer = setTimeout(() => {
    const buckets = bucketize(rows, 12);
    lineChart($('chart-success'), buckets, 'success', { max: 1, fmt: (v) => `${Math.round(v * 100)}%` });
    barChart($('chart-fees'), buckets, 'fees', { fmt: (v) => (v ? v.toPrecision(2) : '0') });
    lineChart($('chart-latency'), buckets, 'latency', { fmt: (v) => v.toFixed(1) });
  }, 100);
}

// ------------------------------------------------------------------ prices, workers, chain

async function refreshChain() {
  const health = await guarded(() => api.health());
  if (health === undefined) { $('chain').textContent = 'backend unreachable'; return; }
  if (health === null) { $('chain').textContent = 'backend degraded'; return; }
  state.chain = { chain_id: health.chain_id, contract: health.contract };
  $('chain').textContent = `chain ${health.chain_id} · block ${health.latest_block}`;
}

// ------------------------------------------------------------------ which chain

function defaultChain() { return state.chains.length ? state.chains[0].name : null; }

async function loadChains() {
  const chains = await guarded(() => api.chains());
  if (!chains || !chains.length) return;
  state.chains = chains;
  $('chain-select').replaceChildren(...chains.map((c) => Object.assign(document.createElement('option'),
    { value: c.name, textContent: `${c.name} (${c.chain_id})` })));
  $('chain-select').value = currentChain() || chains[0].name;
  $('chain-select').disabled = chains.length < 2;
  if (state.walletChain !== null) followWallet(state.walletChain);  // the wallet connected first
}

// Switch what the page shows and relays to: the header, the account's escrow, the create form.
async function selectChain(name) {
  if (!name || name === (currentChain() || defaultChain())) { $('chain-select').value = name || defaultChain(); return; }
  setChain(name === defaultChain() ? null : name);
  $('chain-select').value = name;
  state.escrow = null;
  await Promise.all([refreshChain(), refreshAccount(), refreshPending()]);
  validateSoon();
}

// The wallet's chain picks the dashboard's: a chain this backend does not serve is said, not guessed.
function followWallet(chainId) {
  state.walletChain = chainId;
  if (chainId === null || !state.chains.length) return;
  const served = state.chains.find((c) => c.chain_id === chainId);
  if (served) { clearBanner('warning'); selectChain(served.name); return; }
  const names = state.chains.map((c) => `${c.name} (${c.chain_id})`).join(', ');
  banner(`Your wallet is on chain ${chainId}, which this backend does not serve (it serves ${names}): switch networks in the wallet.`, 'warning');
}

async function refreshPrices(assets) {
  const items = await Promise.all(assets.map(async (symbol) => {
    const li = document.createElement('li'); li.dataset.symbol = symbol;
    try {
      const p = await api.price(symbol);
      li.append(Object.assign(document.createElement('span'), { textContent: symbol }),
        Object.assign(document.createElement('span'), { textContent: priceLabel(p) }));
    } catch (err) {
      li.append(Object.assign(document.createElement('span'), { textContent: symbol }),
        Object.assign(document.createElement('span'), { textContent: err instanceof ApiError ? err.message : 'unavailable', className: 'muted' }));
    }
    return li;
  }));
  $('price-list').replaceChildren(...items);
}

async function refreshWorkers() {
  const w = await guarded(() => api.workers());
  if (!w) return;
  const items = w.workers.map((x) => {
    const li = document.createElement('li'); li.dataset.role = x.role;
    const lease = x.role === 'scheduler' ? (x.active ? ' · holds the lease' : ' · standing by') : '';
    const where = x.pid ? ` · pid ${x.pid}${x.host ? ' on ' + x.host : ''}` : '';
    li.append(Object.assign(document.createElement('span'), { textContent: `${x.role} ${x.worker_id}${lease}${where}` }),
      Object.assign(document.createElement('span'), { textContent: `last heartbeat ${ago(x.age_s)}`, className: 'muted' }));
    return li;
  });
  if (!items.length) items.push(Object.assign(document.createElement('li'), { textContent: 'no worker seen in the last 2 minutes', className: 'muted' }));
  $('worker-list').replaceChildren(...items);
}

// ------------------------------------------------------------------ start

// What the page can show at once: the last executions over REST while the live feed connects
// (its backlog comes later), so "No executions yet" is only said once it is known.
async function preloadFeed() {
  const scope = state.address;
  const page = await guarded(() => api.executions(scope));
  if (!page || state.address !== scope) return;
  for (const row of page.items) if (!state.executions.has(row.id)) state.executions.set(row.id, row);
  state.feedKnown = true;
  renderFeed(null);
}

function priceLabel(p) {
  // an on-chain feed's age is its own update time, not how long a cache held it
  const age = p.source === 'oracle' ? `updated ${ago(p.age_s)}` : `${p.age_s.toFixed(0)} s old`;
  return `$${p.usd} · ${p.source} · ${age}`;
}

async function start() {
  const form = $('create-form');
  form.addEventListener('input', (e) => { if (e.target.name) e.target.dataset.touched = '1'; showKind(form); validateSoon(); });
  form.addEventListener('change', () => { showKind(form); validateSoon(); });
  form.addEventListener('submit', create);
  $('connect').addEventListener('click', connectWallet);
  $('deposit-form').addEventListener('submit', deposit);
  $('invalidate-sigs').addEventListener('click', () => invalidateSignatures(state.address, banner));
  $('banner-close').addEventListener('click', () => { $('banner').hidden = true; });
  $('view-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const text = $('view-address').value.trim();
    if (!isAddress(text)) { banner('That is not an address: expected 0x followed by 40 hex digits.'); return; }
    useAddress(text, 'view');
  });
  wallet.onAccountsChanged((accounts) => { if (accounts && accounts[0] && state.mode === 'wallet') useAddress(accounts[0], 'wallet'); });
  wallet.onChainChanged((chainId) => followWallet(chainId));
  $('chain-select').addEventListener('change', (e) => selectChain(e.target.value));
  $('wf-every-chain').addEventListener('change', () => refreshAccount());
  if (!wallet.hasWallet()) $('connect').title = 'no browser wallet found; you can still view an address';

  // Everything at once: nothing waits for another answer it does not need.
  const feedLoaded = openFeed();
  const assets = { assets: [] };
  let formReady = false;
  // The form's trigger kinds come from the API: until it answers, try again with the other reads.
  const setupForm = async () => {
    if (formReady) return;
    try {
      if (!(await guarded(() => loadKinds(form)))) return;
    } catch (err) { banner(`The create form could not load its trigger kinds: ${err.message}`); return; }
    if (!assets.assets.length) Object.assign(assets, (await guarded(() => api.assets())) || {});
    form.elements.token?.replaceChildren(...assets.assets.map((a) => Object.assign(document.createElement('option'), { value: a, textContent: a })));
    formReady = true;
    showKind(form);
  };
  const assetsLoaded = guarded(() => api.assets()).then((found) => {
    Object.assign(assets, found || { assets: [] });
    return assets.assets;
  });
  await Promise.all([loadChains(), refreshChain(), refreshWorkers(), feedLoaded, refreshPending(),
    assetsLoaded.then((list) => refreshPrices(list)), assetsLoaded.then(() => setupForm())]);
  setInterval(refreshAccount, 3000);
  setInterval(() => { refreshChain(); refreshWorkers(); refreshPrices(assets.assets); refreshPending(); setupForm(); }, 5000);
  document.body.dataset.ready = '1';
}

start();
