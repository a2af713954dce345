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
