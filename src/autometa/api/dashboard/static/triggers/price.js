// The PRICE trigger's part of the create form: an asset's USD price below/above a threshold.

export default {
  html: `<label>Asset <select name="token"></select></label>
    <label>Condition
      <select name="comparator"><option value="0">below</option><option value="1">above</option></select>
    </label>
    <label>Price (USD) <input name="price_usd" inputmode="decimal" placeholder="3200"></label>`,
  inputs: { 'trigger_data.token': 'token', 'trigger_data.comparator': 'comparator', 'trigger_data.price_usd': 'price_usd' },
  inputFor: () => undefined,
  read(form, { val, errors }) {
    const price = val('price_usd');
    if (!price) errors.push({ field: 'trigger_data.price_usd', message: 'required' });
    return { token: form.elements.token.value, comparator: Number(form.elements.comparator.value), price_usd: price || undefined };
  },
  text: (t) => `${t.token} ${Number(t.comparator) === 0 ? 'below' : 'above'} $${Number(t.price_usd)}`,
  // Past its time gate a price trigger waits for the price, not for a time.
  nextDue: (w, eligible) => (eligible ? 'when the price crosses' : null),
};
