// The LOG trigger's part of the create form: a contract's event (topic0) and up to three topic
// filters; each matching log runs the workflow once, after the network's confirmations.

export default {
  html: `<label>Contract <input name="log_emitter" placeholder="0x…" autocomplete="off"></label>
    <label>Event topic0 <input name="log_topic0" placeholder="0x… (keccak of the event signature)" autocomplete="off"></label>
    <label>Topic 1 <input name="log_topic1" placeholder="any" autocomplete="off"></label>
    <label>Topic 2 <input name="log_topic2" placeholder="any" autocomplete="off"></label>
    <label>Topic 3 <input name="log_topic3" placeholder="any" autocomplete="off"></label>`,
  inputs: {
    'trigger_data.emitter': 'log_emitter',
    'trigger_data.topic0': 'log_topic0',
    'trigger_data.topics': 'log_topic1',
  },
  inputFor: () => undefined,
  read(form, { val, errors }) {
    const emitter = val('log_emitter');
    const topic0 = val('log_topic0');
    if (!emitter) errors.push({ field: 'trigger_data.emitter', message: 'required' });
    if (!topic0) errors.push({ field: 'trigger_data.topic0', message: 'required' });
    const topics = [1, 2, 3].map((i) => val(`log_topic${i}`) || null);
    return { emitter: emitter || undefined, topic0: topic0 || undefined, topics };
  },
  text: (t) => `log ${String(t.topic0).slice(0, 10)}… of ${t.emitter}`,
  nextDue: (w, eligible) => (eligible ? 'on the next matching log' : null),
};
