import { useEffect, useState } from 'react';
import { type PrechatMode, type Tenant } from '@jamuna/protocol';
import { DEFAULT_RETENTION, type ModelStatus, api, kbModel, pointFor, saveSettings, settingsOf } from '../client';
import { CannedReplies } from './CannedReplies';
import { href } from '../router';
import { ErrorLine, NoticeLine } from '../status';

/** From "rarely hands off" to "hands off readily": the share of answerable questions kept. */
const PRESETS: { label: string; retention: number }[] = [
  { label: 'Rarely hands off', retention: 0.98 },
  { label: 'Balanced', retention: 0.95 },
  { label: 'Hands off more', retention: 0.9 },
  { label: 'Hands off readily', retention: 0.85 },
];

const pct = (v: number): string => `${Math.round(v * 1000) / 10}%`;

/** What `retention` implies on the tenant's own held-out examples. */
function Implication({ model, retention }: { model: ModelStatus | null | 'error'; retention: number }) {
  if (model === null) return <p className="muted">Loading what this means for your bot…</p>;
  const points = model === 'error' ? [] : (model.trained?.operating_points ?? []);
  if (model === 'error' || !model.trained || model.state === 'untrained') {
    return (
      <p data-testid="handoff-implication">
        Train the bot first (Knowledge base › Gaps › Train now): the trade-off is measured on your own examples.
      </p>
    );
  }
  const p = pointFor(points, retention);
  if (!p) {
    return (
      <p data-testid="handoff-implication">
        Your bot has too few intents to measure this trade-off: it answers every question its intents match. Add intents and train again.
      </p>
    );
  }
  const right = p.in_scope_retention > 0 ? p.in_scope_accuracy / p.in_scope_retention : 0;
  return (
    <p data-testid="handoff-implication">
      On your own examples: keeps {pct(p.in_scope_retention)} of answerable questions, {pct(right)} of them answered right; hands off{' '}
      {pct(p.oos_recall)} of questions it does not know.
      {model.state === 'stale' && ' (Measured before your latest examples: train again from Knowledge base › Gaps to update.)'}
    </p>
  );
}

export function Settings() {
  const [tenant, setTenant] = useState<Tenant | null>(null);
  const [origins, setOrigins] = useState('');
  const [selfSignup, setSelfSignup] = useState(true);
  const [retention, setRetention] = useState(DEFAULT_RETENTION);
  const [prechat, setPrechat] = useState<PrechatMode>('off');
  const [identitySecret, setIdentitySecret] = useState<string | null>(null);
  const [grace, setGrace] = useState(3600);
  const [model, setModel] = useState<ModelStatus | null | 'error'>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api
      .tenant()
      .then((t) => {
        const s = settingsOf(t);
        setTenant(t);
        setOrigins(s.allowed_origins.join('\n'));
        setSelfSignup(s.self_signup);
        setRetention(s.handoff_retention);
        setPrechat(s.prechat);
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : 'Could not load the settings.'));
    kbModel()
      .then(setModel)
      .catch(() => setModel('error'));
  }, []);

  /** Every setting goes in each save: the server replaces them all. */
  const save = (done: string): void => {
    const list = origins
      .split(/[\s,]+/)
      .map((o) => o.trim())
      .filter(Boolean);
    setError(null);
    saveSettings({ allowed_origins: list, self_signup: selfSignup, handoff_retention: retention, prechat })
      .then(() => setNotice(done))
      .catch((err: unknown) => setError(err instanceof Error ? err.message : 'Could not save.'));
  };

  const key = tenant?.widget_key ?? '';
  const snippet = `<script src="${location.origin}/widget.js" data-tenant-key="${key}"></script>`;

  const rotate = (): void => {
    const ok = window.confirm(
      'Rotate the widget key? The current key stops working at once: the chat on your site will not start for new visitors until you paste the new snippet (its data-tenant-key) into every page that shows the chat. Conversations already open keep working.',
    );
    if (!ok || !tenant) return;
    setError(null);
    api
      .request<{ widget_key: string; version: number }>('POST', '/api/v1/tenant/widget-key', { body: {} })
      .then((r) => {
        setTenant({ ...tenant, widget_key: r.widget_key });
        setNotice('Widget key rotated. Paste the new snippet into your site: the old key no longer works.');
      })
      .catch((err: unknown) => setError(err instanceof Error ? err.message : 'Could not rotate the key.'));
  };

  return (
    <div className="page">
      <header className="page-head">
        <h1>Install & settings</h1>
        <a href={href('settings', 'webhooks')}>Webhooks ›</a>
      </header>
      <ErrorLine error={error} />
      <section className="card">
        <h2>Add the chat widget to your site</h2>
        <p>Paste this tag before <code>&lt;/body&gt;</code> on every page that should show the chat:</p>
        <pre className="code">{snippet}</pre>
        <div className="row">
          <button type="button" onClick={() => void navigator.clipboard?.writeText(snippet).then(() => setNotice('Copied.'))}>
            Copy
          </button>
          <a className="button" href={`/?key=${encodeURIComponent(key)}`} target="_blank" rel="noreferrer">
            Try it on the demo site
          </a>
        </div>
        <h3>Widget key</h3>
        <p>
          The key in the snippet is public: any page can use it to open chats with your team. If it is used where it should not be, rotate
          it: the old key is refused at once, and the snippet above shows the new one.
        </p>
        <div className="row">
          <code data-testid="widget-key">{key}</code>
          <button type="button" onClick={rotate} disabled={!tenant}>
            Rotate key
          </button>
        </div>
      </section>
      <form
        className="card"
        onSubmit={(e) => {
          e.preventDefault();
          save('Settings saved.');
        }}
      >
        <h2>Security</h2>
        <label>
          Sites allowed to embed the chat (one origin per line, e.g. <code>https://www.example.com</code>; empty allows any)
          <textarea rows={4} value={origins} onChange={(e) => setOrigins(e.target.value)} />
        </label>
        <label className="check">
          <input type="checkbox" checked={selfSignup} onChange={(e) => setSelfSignup(e.target.checked)} /> Customers may create accounts themselves
        </label>
        <button type="submit" className="primary">
          Save settings
        </button>
      </form>
      <form
        className="card"
        aria-label="How readily the bot hands off"
        onSubmit={(e) => {
          e.preventDefault();
          save(`Saved: the bot now answers ${pct(retention)} of the questions it could answer.`);
        }}
      >
        <h2>How readily the bot hands off</h2>
        <p>
          When the bot is unsure whether it knows a question, it hands the conversation to your team. Keeping more of the questions it
          could answer means catching fewer of those it does not know.
        </p>
        <div className="row" role="group" aria-label="Presets">
          {PRESETS.map((p) => (
            <button
              type="button"
              key={p.retention}
              aria-pressed={Math.abs(retention - p.retention) < 1e-6}
              onClick={() => setRetention(p.retention)}
            >
              {p.label} ({pct(p.retention)})
            </button>
          ))}
        </div>
        <label>
          Answerable questions the bot answers: <strong data-testid="handoff-retention">{pct(retention)}</strong>
          <input
            type="range"
            min={80}
            max={99.5}
            step={0.5}
            value={retention * 100}
            onChange={(e) => setRetention(Math.round(Number(e.target.value) * 10) / 1000)}
          />
        </label>
        <Implication model={model} retention={retention} />
        <button type="submit" className="primary" disabled={!tenant}>
          Save
        </button>
      </form>
      <form
        className="card"
        aria-label="Who your customers are"
        onSubmit={(e) => {
          e.preventDefault();
          save('Saved: the pre-chat form is ' + prechat + '.');
        }}
      >
        <h2>Who your customers are</h2>
        <label>
          Pre-chat form (name and e-mail before the first message)
          <select value={prechat} onChange={(e) => setPrechat(e.target.value as PrechatMode)} data-testid="prechat-mode">
            <option value="off">Off</option>
            <option value="optional">Optional (may be skipped)</option>
            <option value="required">Required</option>
          </select>
        </label>
        <button type="submit" className="primary" disabled={!tenant}>
          Save the pre-chat form
        </button>
        <h3>Identify signed-in customers</h3>
        <p>
          Your server signs a signed-in customer&apos;s id with the identity secret, and your page passes it to the chat:{' '}
          <code>Jamuna.identify(&#123; id, name, email, attributes, signature &#125;)</code>, where <code>signature</code> is{' '}
          <code>hex(HMAC-SHA256(secret, id))</code>. Never put the secret in a page.
        </p>
        <div className="row">
          <label>
            The old secret keeps working for{' '}
            <select value={grace} onChange={(e) => setGrace(Number(e.target.value))}>
              <option value={0}>no time (stops at once)</option>
              <option value={3600}>an hour</option>
              <option value={86400}>a day</option>
              <option value={604800}>a week</option>
            </select>
          </label>
          <button
            type="button"
            disabled={!tenant}
            onClick={() => {
              setError(null);
              api
                .rotateIdentitySecret(grace)
                .then((r) => setIdentitySecret(r.secret))
                .catch((err: unknown) => setError(err instanceof Error ? err.message : 'Could not make a secret.'));
            }}
          >
            New identity secret
          </button>
        </div>
        {identitySecret && (
          <p>
            Copy it now, it is shown only once: <code data-testid="identity-secret">{identitySecret}</code>
          </p>
        )}
      </form>
      <NoticeLine notice={notice} />
      <CannedReplies />
    </div>
  );
}
