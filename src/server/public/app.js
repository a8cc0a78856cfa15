// The live page: asks the same question twice over WS /api/v1/chat/stream, once in base mode
// and once with the adapter under HE, and draws each token's stage times as a stacked bar.
// No library, nothing fetched from elsewhere.
'use strict';

const STAGES = ['forward', 'dp_noise', 'encode', 'encrypt', 'ct_pt_multiply', 'decrypt', 'transfer',
  'extract_sum', 'lora_b', 'lm_head', 'sampling', 'network'];

const $ = (id) => document.getElementById(id);
const wsUrl = (path) => `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;

// A server started with a token is opened as http://host:port/#token=... (the fragment never
// reaches the server or its logs). Requests carry it as a bearer header; WebSockets, which
// cannot set headers, offer it as the subprotocol tensafe.bearer.<base64url token>.
const TOKEN = new URLSearchParams(location.hash.slice(1)).get('token');
const b64url = (s) => btoa(String.fromCharCode(...new TextEncoder().encode(s))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const authHeaders = () => (TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {});
const wsProtocols = () => (TOKEN ? ['tensafe', `tensafe.bearer.${b64url(TOKEN)}`] : []);

function legend() {
  const box = $('legend');
  for (const s of STAGES) {
    const key = document.createElement('span');
    key.className = 'key';
    const sw = document.createElement('span');
    sw.className = `swatch s-${s}`;
    key.append(sw, document.createTextNode(s));
    box.append(key);
  }
}

async function loadEngineFacts() {
  try {
    const [health, metrics] = await Promise.all([fetch('/health', { headers: authHeaders() }).then((r) => r.json()), fetch('/api/v1/metrics', { headers: authHeaders() }).then((r) => r.json())]);
    $('engine').textContent = `${health.model ?? '?'} · ${health.backend ?? '?'} · poly_n ${metrics.poly_n ?? '?'} · ${health.status}`;
    const sel = $('expert');
    for (const name of metrics.adapters ?? []) {
      const o = document.createElement('option');
      o.value = name;
      o.textContent = name;
      sel.append(o);
    }
  } catch (err) {
    $('engine').textContent = `engine facts unavailable: ${err.message}`;
  }
}

/** One column (base or HE): its socket, text, counters and bars. */
class Column {
  constructor(key, mode) {
    this.key = key;
    this.mode = mode;
    this.ws = null;
    this.maxMs = 1;
    this.bars = [];
  }

  reset() {
    $(`answer-${this.key}`).textContent = '';
    $(`bars-${this.key}`).replaceChildren();
    $(`last-${this.key}`).replaceChildren();
    $(`toks-${this.key}`).textContent = '0';
    $(`rate-${this.key}`).textContent = '–';
    this.maxMs = 1;
    this.bars = [];
  }

  status(text, cls) {
    const el = $(`status-${this.key}`);
    el.textContent = text;
    el.className = `status ${cls ?? ''}`;
  }

  start(request) {
    this.reset();
    this.status('connecting', 'running');
    return new Promise((resolve) => {
      const ws = new WebSocket(wsUrl('/api/v1/chat/stream'), wsProtocols());
      this.ws = ws;
      ws.onopen = () => {
        this.status('waiting', 'running');
        ws.send(JSON.stringify({ ...request, mode: this.mode }));
      };
      ws.onmessage = (ev) => {
        const msg = JSON.parse(ev.data);
        if (msg.type === 'queued') this.status(`queued (${msg.position === 1 ? 'next' : `place ${msg.position}`})`, 'running');
        else if (msg.type === 'input_info') this.status('generating', 'running');
        else if (msg.type === 'token') this.token(msg);
        else if (msg.type === 'done') {
          this.status('done', 'done');
          $(`rate-${this.key}`).textContent = (msg.aggregate.tokens_per_second ?? 0).toFixed(2);
          ws.close();
        } else if (msg.type === 'cancelled') {
          this.status('stopped');
          ws.close();
        } else if (msg.type === 'error') {
          this.status(`error: ${msg.message}`, 'error');
          ws.close();
        }
      };
      ws.onerror = () => this.status('connection error', 'error');
      ws.onclose = () => {
        this.ws = null;
        resolve();
      };
    });
  }

  stop() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ type: 'cancel' }));
  }

  token(msg) {
    $(`answer-${this.key}`).textContent += msg.token;
    $(`toks-${this.key}`).textContent = String(msg.index + 1);
    if (msg.aggregate) $(`rate-${this.key}`).textContent = (msg.aggregate.tokens_per_second ?? 0).toFixed(2);
    const stages = msg.stages ?? {};
    const total = STAGES.reduce((a, s) => a + (stages[s] ?? 0), 0);
    const bar = document.createElement('div');
    bar.className = 'bar';
    bar.dataset.tokenIndex = String(msg.index);
    bar.title = `token ${msg.index}: ${JSON.stringify(msg.token)}\n` +
      STAGES.filter((s) => stages[s] !== undefined).map((s) => `${s}: ${stages[s].toFixed(3)} ms`).join('\n');
    for (const s of STAGES) {
      const v = stages[s];
      if (v === undefined) continue;
      const seg = document.createElement('div');
      seg.className = `seg s-${s}`;
      seg.dataset.stage = s;
      seg.dataset.ms = String(v);
      bar.append(seg);
    }
    bar.dataset.total = String(total);
    $(`bars-${this.key}`).append(bar);
    this.bars.push(bar);
    if (total > this.maxMs) this.maxMs = total;
    this.rescale();
    this.last(stages);
  }

  // Bars share one scale per column: the largest token total so far fills the height.
  rescale() {
    for (const bar of this.bars) {
      for (const seg of bar.children) seg.style.height = `${(100 * Number(seg.dataset.ms)) / this.maxMs}%`;
    }
    const box = $(`bars-${this.key}`);
    box.scrollLeft = box.scrollWidth;
  }

  last(stages) {
    const box = $(`last-${this.key}`);
    box.replaceChildren();
    const max = Math.max(1e-9, ...STAGES.map((s) => stages[s] ?? 0));
    for (const s of STAGES) {
      if (stages[s] === undefined) continue;
      const row = document.createElement('div');
      row.className = 'row';
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = s;
      const h = document.createElement('span');
      h.className = `hbar s-${s}`;
      h.style.width = `${Math.max(1, (160 * stages[s]) / max)}px`;
      const v = document.createElement('span');
      v.textContent = `${stages[s].toFixed(3)} ms`;
      row.append(name, h, v);
      box.append(row);
    }
  }
}

const columns = [new Column('base', 'base'), new Column('he', 'he-lora')];

async function ask(ev) {
  ev.preventDefault();
  const err = $('form-error');
  err.hidden = true;
  const query = $('query').value;
  const maxTokens = Number($('max-tokens').value);
  const temperature = Number($('temperature').value);
  if (!query.trim()) {
    err.textContent = 'Ask a question first.';
    err.hidden = false;
    return;
  }
  const request = { query, max_tokens: maxTokens, temperature, expert: $('expert').value };
  $('go').disabled = true;
  $('stop').disabled = false;
  await Promise.all(columns.map((c) => c.start(request)));
  $('go').disabled = false;
  $('stop').disabled = true;
}

legend();
loadEngineFacts();
$('ask').addEventListener('submit', ask);
$('stop').addEventListener('click', () => columns.forEach((c) => c.stop()));
