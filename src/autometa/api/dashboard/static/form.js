// The create form: reads the inputs into the API's create body, checks what the browser can
// (number formats), and asks the API (`/api/dashboard/validate`) for the rest as the user types,
// so the form and the relayer apply the same rules.

import { api } from './api.js';
import { toWei } from './units.js';

// API field → input name (per trigger/action kind where names collide).
const FIELD_INPUT = {
  'trigger_data.token': 'token', 'trigger_data.comparator': 'comparator', 'trigger_data.price_usd': 'price_usd',
  'trigger_data.at': 'at', 'trigger_data.interval': 'interval',
  'action_data.amount_wei': 'amount', 'action_data.token': 'erc20_token', 'action_data.amount': 'erc20_amount',
  'action_data.target': 'target', 'action_data.data': 'data', 'action_data.value_wei': 'value',
  'max_fee_per_run_wei': 'max_fee', 'max_runs': 'max_runs',
};

export function inputFor(form, field) {
  if (field === 'action_data.to') return form.elements[form.elements.action_type.value === '1' ? 'erc20_to' : 'to'];
  if (field === 'trigger_data.at' && !form.elements.at.value && form.elements.in_s.value) return form.elements.in_s;
  const name = FIELD_INPUT[field];
  return name ? form.elements[name] : null;
}

const val = (form, name) => form.elements[name].value.trim();

// The create body for `user`, and the problems found before asking the API.
export function readForm(form, user) {
  const errors = [];
  const wei = (name, field, optional = false) => {
    const text = val(form, name);
    if (!text) { if (!optional) errors.push({ field, message: 'required' }); return undefined; }
    try { return toWei(text).toString(); } catch (e) { errors.push({ field, message: e.message }); return undefined; }
  };
  const int = (name, field, optional = false) => {
    const text = val(form, name);
    if (!text) { if (!optional) errors.push({ field, message: 'required' }); return undefined; }
    if (!/^\d+$/.test(text)) { errors.push({ field, message: 'must be a whole number' }); return undefined; }
    return Number.isSafeInteger(Number(text)) ? Number(text) : text;
  };
  const trigger = Number(form.elements.trigger_type.value);
  const action = Number(form.elements.action_type.value);
  let trigger_data;
  if (trigger === 2) {
    const price = val(form, 'price_usd');
    if (!price) errors.push({ field: 'trigger_data.price_usd', message: 'required' });
    trigger_data = { token: form.elements.token.value, comparator: Number(form.elements.comparator.value), price_usd: price || undefined };
  } else if (trigger === 0) {
    let at;
    if (val(form, 'at')) at = Math.floor(new Date(val(form, 'at')).getTime() / 1000);
    else if (val(form, 'in_s')) {
      const s = int('in_s', 'trigger_data.at');
      if (s !== undefined) at = Math.floor(Date.now() / 1000) + Number(s);
    } else errors.push({ field: 'trigger_data.at', message: 'pick a time, or seconds from now' });
    trigger_data = { at };
  } else {
    trigger_data = { interval: int('interval', 'trigger_data.interval') };
  }
  let action_data;
  if (action === 0) action_data = { to: val(form, 'to'), amount_wei: wei('amount', 'action_data.amount_wei') };
  else if (action === 1) {
    action_data = { token: val(form, 'erc20_token'), to: val(form, 'erc20_to'), amount: int('erc20_amount', 'action_data.amount') };
  } else {
    action_data = { target: val(form, 'target'), data: val(form, 'data') || '0x', value_wei: wei('value', 'action_data.value_wei', true) ?? '0' };
  }
  const body = { user_address: user, trigger_type: trigger, trigger_data, action_type: action, action_data };
  const fee = wei('max_fee', 'max_fee_per_run_wei', true);
  if (fee !== undefined) body.max_fee_per_run_wei = fee;
  const runs = int('max_runs', 'max_runs', true);
  if (runs !== undefined) body.max_runs = runs;
  return { body, errors };
}

export function showKind(form) {
  const t = form.elements.trigger_type.value, a = form.elements.action_type.value;
  form.querySelectorAll('[data-when]').forEach((d) => { d.hidden = d.dataset.when !== t; });
  form.querySelectorAll('[data-do]').forEach((d) => { d.hidden = d.dataset.do !== a; });
}

// Put errors on their inputs and in the list; `all` shows errors of untouched fields too.
export function showErrors(form, list, errors, all) {
  form.querySelectorAll('[aria-invalid]').forEach((i) => i.removeAttribute('aria-invalid'));
  const shown = errors.filter((e) => {
    const input = inputFor(form, e.field);
    return all || !input || input.dataset.touched === '1';
  });
  list.replaceChildren(...shown.map((e) => {
    const input = inputFor(form, e.field);
    if (input) input.setAttribute('aria-invalid', 'true');
    const li = document.createElement('li');
    li.textContent = `${e.field}: ${e.message}`;
    return li;
  }));
  return shown.length;
}

// Full check: the browser's, then the API's. Returns {body, errors}.
export async function check(form, user) {
  const { body, errors } = readForm(form, user);
  if (!user) return { body, errors: [{ field: 'user_address', message: 'connect a wallet first' }, ...errors] };
  // The API checks everything else, also while some fields are still empty or malformed.
  const answer = await api.validate(body);
  const local = new Set(errors.map((e) => e.field));
  return { body, errors: [...errors, ...answer.errors.filter((e) => !local.has(e.field))] };
}
