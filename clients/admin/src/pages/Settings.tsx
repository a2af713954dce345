import { useEffect, useState } from 'react';
import { type Tenant } from '@jamuna/protocol';
import { api } from '../client';

export function Settings() {
  const [tenant, setTenant] = useState<Tenant | null>(null);
  const [origins, setOrigins] = useState('');
  const [selfSignup, setSelfSignup] = useState(true);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    api
      .tenant()
      .then((t) => {
        setTenant(t);
        setOrigins((t.settings?.allowed_origins ?? []).join('\n'));
        setSelfSignup(t.settings?.self_signup ?? true);
      })
      .catch((e: unknown) => setError(e instanceof Error ? e.message : 'Could not load the settings.'));
  }, []);

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
      </header>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
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
          const list = origins
            .split(/[\s,]+/)
            .map((o) => o.trim())
            .filter(Boolean);
          api
            .updateSettings({ allowed_origins: list, self_signup: selfSignup })
            .then(() => setNotice('Settings saved.'))
            .catch((err: unknown) => setError(err instanceof Error ? err.message : 'Could not save.'));
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
      <div aria-live="polite">{notice && <p className="notice-ok">{notice}</p>}</div>
    </div>
  );
}
