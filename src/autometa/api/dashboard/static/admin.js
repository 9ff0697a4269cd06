// Admin changes waiting in the contract's timelock (GET /api/utils/admin/pending), and the
// owner's "invalidate my outstanding signatures" button (the wallet sends invalidateNonces()).
import { api } from './api.js';
import * as wallet from './wallet.js';

const $ = (id) => document.getElementById(id);
const INVALIDATE_NONCES = '0x5f7af518'; // selector of invalidateNonces()

function row(text, muted) {
  return Object.assign(document.createElement('li'), { textContent: text, className: muted ? 'muted' : '' });
}

/** List the queued changes with when each may apply; the list stays as it was if the chain is down. */
export async function refreshPending() {
  let body;
  try { body = await api.adminPending(); } catch { return; }
  const items = body.changes.map((c) => {
    const li = row(`#${c.id} ${c.description}`);
    li.dataset.kind = c.kind;
    li.append(Object.assign(document.createElement('span'), {
      className: 'muted', textContent: c.ready ? ' — may apply now' : ` — may apply in ${c.seconds_left} s`,
    }));
    return li;
  });
  if (!items.length) items.push(row(`none (changes wait ${body.timelock_seconds} s before they apply)`, true));
  $('pending-list').replaceChildren(...items);
}

/** Send invalidateNonces() from the connected wallet: every signature not yet relayed becomes void. */
export async function invalidateSignatures(address, report) {
  try {
    const contracts = await api.contracts();
    const hash = await wallet.sendTransaction({ from: address, to: contracts.WorkflowRegistry, data: INVALIDATE_NONCES });
    report(`Your outstanding signatures are being invalidated in ${hash.slice(0, 10)}…; sign again for anything new.`, 'info');
  } catch (err) { report(`Could not invalidate your signatures: ${err.message}`); }
}
