// The STATE trigger's part of the create form: a contract's view, re-checked on-chain at every
// run. Inputs are prefixed `state_`: the contract-call action already has a `target` input.
// The calldata is hex (a selector and its arguments, e.g. balanceOf(address) is 0x70a08231 + the
// address padded to 32 bytes); the API checks it and the threshold's range for its type.

const COMPARATORS = ['<', '<=', '>', '>=', '==', '!='];

export default {
  html: `<label>Contract <input name="state_target" placeholder="0x…" autocomplete="off"></label>
    <label>Calldata (hex) <input name="state_calldata" placeholder="0x70a08231000…" autocomplete="off"></label>
    <label>Return word # <input name="state_word" inputmode="numeric" value="0"></label>
    <label>Read as
      <select name="state_read_as">
        <option value="uint256">uint256</option><option value="int256">int256</option>
        <option value="bool">bool</option><option value="address">address</option>
      </select>
    </label>
    <label>Condition
      <select name="state_comparator">${COMPARATORS.map((c) => `<option value="${c}">${c}</option>`).join('')}</select>
    </label>
    <label>Threshold <input name="state_threshold" placeholder="1100000000000000000" autocomplete="off"></label>
    <label>View gas <input name="state_view_gas" inputmode="numeric" value="100000"></label>`,
  inputs: {
    'trigger_data.target': 'state_target',
    'trigger_data.calldata': 'state_calldata',
    'trigger_data.word': 'state_word',
    'trigger_data.read_as': 'state_read_as',
    'trigger_data.comparator': 'state_comparator',
    'trigger_data.threshold': 'state_threshold',
    'trigger_data.view_gas': 'state_view_gas',
  },
  inputFor: () => undefined,
  read(form, { val, int, errors }) {
    const readAs = form.elements.state_read_as.value;
    let threshold = val('state_threshold');
    if (!threshold) errors.push({ field: 'trigger_data.threshold', message: 'required' });
    else if (readAs !== 'address') {
      if (!/^-?\d+$/.test(threshold)) errors.push({ field: 'trigger_data.threshold', message: 'must be a whole number' });
      // past 2^53 it travels as a decimal string (the API reads both)
      else if (Number.isSafeInteger(Number(threshold))) threshold = Number(threshold);
    }
    const target = val('state_target');
    if (!target) errors.push({ field: 'trigger_data.target', message: 'required' });
    return {
      target,
      calldata: val('state_calldata') || '0x',
      word: int('state_word', 'trigger_data.word', true) ?? 0,
      read_as: readAs,
      comparator: form.elements.state_comparator.value,
      threshold: threshold || undefined,
      view_gas: int('state_view_gas', 'trigger_data.view_gas', true) ?? 100000,
    };
  },
  text: (t) => `${t.target.slice(0, 10)}… ${String(t.calldata).slice(0, 10)}[${t.word}] as ${t.read_as} ${t.comparator} ${t.threshold}`,
  // Past its time gate (start, cooldown) a STATE trigger waits for its condition, checked every block.
  nextDue: (w, eligible) => (eligible ? 'when the condition holds' : null),
};
