// Notifications: the connected owner's subscriptions, their delivery log, re-send, delete and a
// small create form. Mounts its own section (no edits to app.js); every change is an EIP-712
// intent the API prepared, signed in the wallet, then submitted. Targets and secrets are sent once
// and never shown again (the API returns a hint only).
import { ApiError, request } from './api.js';
import * as wallet from './wallet.js';

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
};

let owner = null;

function say(text, bad = false) {
  const out = $('#nt-msg');
  out.textContent = text;
  out.className = bad ? 'error' : 'muted';
}

function reason(err) {
  if (err instanceof ApiError) return err.field ? `${err.message}` : err.message;
  return (err && err.message) || String(err);
}

async function signed(preparePath, body) {
  const prepared = await request('POST', preparePath, body);
  const signature = await wallet.signTypedData(owner, prepared.typed_data);
  return { signature, nonce: prepared.nonce, deadline: prepared.deadline };
}

function mount() {
  const main = document.querySelector('main');
  if (!main || $('#notifications')) return;
  const section = el('section', { id: 'notifications', className: 'card wide' });
  section.dataset.testid = 'notifications';
  section.innerHTML = `
    <h2>Notifications</h2>
    <p id="nt-msg" class="muted">Connect a wallet to manage notifications.</p>
    <table class="list"><thead><tr><th>#</th><th>Name</th><th>Channel</th><th>Target</th><th>Events</th><th></th></tr></thead>
      <tbody id="nt-subs"></tbody></table>
    <div id="nt-log"></div>
    <form id="nt-form" autocomplete="off">
      <select name="channel"><option value="webhook">webhook</option><option value="email">email</option>
        <option value="apprise">chat (apprise URL)</option></select>
      <input name="target" placeholder="https://… · you@example.org · slack://…" required>
      <input name="secret" type="password" placeholder="webhook secret (≥ 16 chars)">
      <input name="workflows" placeholder="workflow ids (all if empty)">
      <span id="nt-events"></span>
      <button type="submit">Subscribe</button>
    </form>`;
  main.append(section);
  $('#nt-form').addEventListener('submit', (ev) => { ev.preventDefault(); subscribe(ev.target).catch((e) => say(reason(e), true)); });
  request('GET', '/api/notifications/events').then((kinds) => {
    $('#nt-events').replaceChildren(...Object.keys(kinds.owner_events).map((k) => el('label', { title: kinds.owner_events[k] },
      el('input', { type: 'checkbox', name: 'events', value: k, checked: k === 'run.failed' || k === 'workflow.auto_paused' }), ` ${k} `)));
  }).catch(() => {});
}

async function refresh() {
  if (!owner) return;
  const subs = await request('GET', `/api/notifications/subscriptions?owner=${owner}`);
  say(subs.length ? `${subs.length} subscription(s) for ${owner.slice(0, 8)}…` : 'No subscriptions yet.');
  $('#nt-subs').replaceChildren(...subs.map((s) => {
    const log = el('button', { type: 'button', textContent: 'Log' });
    log.addEventListener('click', () => showLog(s.id).catch((e) => say(reason(e), true)));
    const del = el('button', { type: 'button', textContent: 'Delete' });
    del.addEventListener('click', () => remove(s.id).catch((e) => say(reason(e), true)));
    return el('tr', {}, el('td', { textContent: s.id }), el('td', { textContent: s.name }), el('td', { textContent: s.channel }),
      el('td', { textContent: s.target_hint }), el('td', { textContent: s.events.join(', ') }), el('td', {}, log, del));
  }));
}

async function showLog(id) {
  const page = await request('GET', `/api/notifications/subscriptions/${id}/deliveries?limit=20`);
  const rows = page.deliveries.map((d) => {
    const again = el('button', { type: 'button', textContent: 'Re-send' });
    again.addEventListener('click', () => resend(d.id, id).catch((e) => say(reason(e), true)));
    return el('tr', {}, el('td', { textContent: d.id }), el('td', { textContent: d.event_type }),
      el('td', { textContent: d.status }), el('td', { textContent: d.attempts }),
      el('td', { textContent: d.last_error || '' }), el('td', {}, d.status === 'pending' ? '' : again));
  });
  $('#nt-log').replaceChildren(el('h3', { textContent: `Delivery log of #${id} (${page.total})` }),
    el('table', { className: 'list' }, el('tbody', {}, ...rows)));
}

async function subscribe(form) {
  if (!owner) throw new Error('Connect a wallet first: subscriptions are signed by their owner.');
  const data = new FormData(form);
  const ids = String(data.get('workflows') || '').split(',').map((x) => x.trim()).filter(Boolean).map(Number);
  const body = {
    owner, channel: data.get('channel'), target: data.get('target'), secret: data.get('secret') || null,
    events: data.getAll('events'), workflow_ids: ids.length ? ids : null,
  };
  const sig = await signed('/api/notifications/subscriptions/prepare', body);
  await request('POST', '/api/notifications/subscriptions', { ...body, ...sig });
  form.reset();
  await refresh();
}

async function remove(id) {
  const sig = await signed(`/api/notifications/subscriptions/${id}/delete/prepare`, { owner });
  await request('DELETE', `/api/notifications/subscriptions/${id}`, { owner, ...sig });
  $('#nt-log').replaceChildren();
  await refresh();
}

async function resend(deliveryId, subId) {
  const sig = await signed(`/api/notifications/deliveries/${deliveryId}/resend/prepare`, { owner });
  await request('POST', `/api/notifications/deliveries/${deliveryId}/resend`, { owner, ...sig });
  await showLog(subId);
}

async function follow() {
  // The account the page's wallet shares, without prompting (app.js does the connecting).
  if (!wallet.hasWallet()) return;
  try {
    const accounts = await window.ethereum.request({ method: 'eth_accounts' });
    const next = accounts && accounts.length ? accounts[0] : null;
    if (next !== owner) { owner = next; $('#nt-log').replaceChildren(); await refresh(); }
  } catch { /* no wallet answer: keep what we show */ }
}

mount();
follow();
setInterval(follow, 3000);
wallet.onAccountsChanged(() => follow());
