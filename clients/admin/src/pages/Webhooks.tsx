/** Settings › Webhooks: admins subscribe HTTPS endpoints to events, see each signing secret once,
 * and follow each webhook's deliveries (failures included). */
import { useCallback, useEffect, useState } from 'react';
import { api } from '../client';
import { href } from '../router';
import { ago } from '../format';
import { ErrorLine, NoticeLine } from '../status';

/** One webhook, as `GET /api/v1/webhooks` lists it (never its secret). */
export interface Webhook {
  id: string;
  url: string;
  event_types: string[];
}

/** One delivery's last outcome (`GET /api/v1/webhooks/{id}/deliveries`). */
export interface Delivery {
  delivery_id: string;
  event_id: string;
  event_type: string;
  status: 'delivered' | 'failed';
  attempts: number;
  response_code: number | null;
  last_error: string | null;
  recorded_at: string;
}

const errorText = (e: unknown, fallback: string): string => (e instanceof Error ? e.message : fallback);

export function Webhooks() {
  const [hooks, setHooks] = useState<Webhook[]>([]);
  const [types, setTypes] = useState<string[]>([]);
  const [max, setMax] = useState(10);
  const [url, setUrl] = useState('');
  const [chosen, setChosen] = useState<string[]>(['MessagePosted']);
  const [secret, setSecret] = useState<{ id: string; secret: string } | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback((): void => {
    api
      .request<{ items: Webhook[]; event_types: string[]; max_webhooks: number }>('GET', '/api/v1/webhooks')
      .then((r) => {
        setHooks(r.items);
        setTypes(r.event_types);
        setMax(r.max_webhooks);
      })
      .catch((e: unknown) => setError(errorText(e, 'Could not load the webhooks.')));
  }, []);
  useEffect(load, [load]);

  const register = (): void => {
    setError(null);
    api
      .request<Webhook & { secret: string }>('POST', '/api/v1/webhooks', { body: { url: url.trim(), event_types: chosen } })
      .then((h) => {
        setSecret({ id: h.id, secret: h.secret });
        setUrl('');
        setOpen(h.id);
        setNotice('Webhook registered. Copy its signing secret now: it is not shown again.');
        load();
      })
      .catch((e: unknown) => setError(errorText(e, 'Could not register the webhook.')));
  };

  const rotate = (id: string): void => {
    if (!window.confirm('Replace the signing secret? Deliveries are signed with the new one from now on.')) return;
    api
      .request<{ secret: string }>('POST', `/api/v1/webhooks/${id}/secret`, { body: {} })
      .then((r) => {
        setSecret({ id, secret: r.secret });
        setNotice('Secret rotated. Copy the new one now: it is not shown again.');
      })
      .catch((e: unknown) => setError(errorText(e, 'Could not rotate the secret.')));
  };

  const remove = (id: string): void => {
    if (!window.confirm('Remove this webhook? Nothing more is sent to it.')) return;
    api
      .request<void>('DELETE', `/api/v1/webhooks/${id}`)
      .then(() => {
        if (secret?.id === id) setSecret(null);
        if (open === id) setOpen(null);
        setNotice('Webhook removed.');
        load();
      })
      .catch((e: unknown) => setError(errorText(e, 'Could not remove the webhook.')));
  };

  const toggle = (t: string): void => setChosen(chosen.includes(t) ? chosen.filter((c) => c !== t) : [...chosen, t]);

  return (
    <div className="page">
      <header className="page-head">
        <h1>Webhooks</h1>
        <a href={href('settings')}>‹ Install & settings</a>
      </header>
      <p>
        Jamuna POSTs the events you choose to your HTTPS endpoint as JSON, signed in <code>X-Jamuna-Signature</code> (
        <code>t=&lt;unix&gt;,v1=&lt;HMAC-SHA256 of &quot;t.body&quot;&gt;</code>), with the delivery&apos;s id in{' '}
        <code>X-Jamuna-Delivery</code>. Failed deliveries are retried with back-off; a delivery may arrive twice, with the same id.
      </p>
      <ErrorLine error={error} />
      {secret && (
        <section className="card" aria-label="Signing secret">
          <h2>Signing secret</h2>
          <p>Shown once. Keep it where your endpoint can read it, to verify each delivery&apos;s signature.</p>
          <div className="row">
            <code data-testid="webhook-secret">{secret.secret}</code>
            <button type="button" onClick={() => void navigator.clipboard?.writeText(secret.secret).then(() => setNotice('Copied.'))}>
              Copy
            </button>
            <button type="button" className="ghost" onClick={() => setSecret(null)}>
              Done
            </button>
          </div>
        </section>
      )}
      <form
        className="card"
        aria-label="Register a webhook"
        onSubmit={(e) => {
          e.preventDefault();
          register();
        }}
      >
        <h2>Register a webhook</h2>
        <label>
          Endpoint URL (https)
          <input
            type="url"
            required
            maxLength={2048}
            placeholder="https://hooks.example.com/jamuna"
            value={url}
            onChange={(e) => setUrl(e.target.value)}
          />
        </label>
        <fieldset className="row wrap">
          <legend>Events</legend>
          {types.map((t) => (
            <label key={t} className="check">
              <input type="checkbox" checked={chosen.includes(t)} onChange={() => toggle(t)} /> {t}
            </label>
          ))}
        </fieldset>
        <button type="submit" className="primary" disabled={chosen.length === 0 || hooks.length >= max}>
          Register
        </button>
        {hooks.length >= max && <p className="muted">A tenant has at most {max} webhooks.</p>}
      </form>
      <NoticeLine notice={notice} />
      {hooks.length === 0 ? (
        <p className="muted">No webhooks yet.</p>
      ) : (
        <table className="table" aria-label="Webhooks">
          <thead>
            <tr>
              <th>Endpoint</th>
              <th>Events</th>
              <th>
                <span className="sr">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {hooks.map((h) => (
              <tr key={h.id}>
                <td>
                  <code>{h.url}</code>
                </td>
                <td className="small">{h.event_types.join(', ')}</td>
                <td className="actions">
                  <button type="button" aria-expanded={open === h.id} onClick={() => setOpen(open === h.id ? null : h.id)}>
                    Deliveries
                  </button>
                  <button type="button" onClick={() => rotate(h.id)}>
                    Rotate secret
                  </button>
                  <button type="button" className="danger" onClick={() => remove(h.id)}>
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {open && <Deliveries webhook={open} url={hooks.find((h) => h.id === open)?.url ?? ''} />}
    </div>
  );
}

/** A webhook's last 100 deliveries, newest first, refreshed every 3 s while shown. */
function Deliveries({ webhook, url }: { webhook: string; url: string }) {
  const [items, setItems] = useState<Delivery[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    const fetchNow = (): void => {
      api
        .request<{ items: Delivery[] }>('GET', `/api/v1/webhooks/${webhook}/deliveries`)
        .then((r) => live && setItems(r.items))
        .catch((e: unknown) => live && setError(errorText(e, 'Could not load the deliveries.')));
    };
    fetchNow();
    const timer = setInterval(fetchNow, 3000);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [webhook]);

  const failed = items?.filter((d) => d.status === 'failed').length ?? 0;
  return (
    <section className="card" aria-label="Deliveries">
      <h2>
        Deliveries to <code>{url}</code>
      </h2>
      {error && <p className="error">{error}</p>}
      {items === null ? (
        <p className="muted">Loading…</p>
      ) : items.length === 0 ? (
        <p className="muted">Nothing delivered yet: deliveries appear here when a subscribed event happens.</p>
      ) : (
        <>
          <p className="small" data-testid="delivery-summary">
            {items.length - failed} delivered, {failed} failed
          </p>
          <table className="table" data-testid="deliveries">
            <thead>
              <tr>
                <th>Event</th>
                <th>Status</th>
                <th>Attempts</th>
                <th>Response</th>
                <th>Last error</th>
                <th>When</th>
                <th>Delivery id</th>
              </tr>
            </thead>
            <tbody>
              {items.map((d) => (
                <tr key={d.delivery_id} data-status={d.status}>
                  <td>{d.event_type}</td>
                  <td>
                    <span className={`badge badge-${d.status}`}>{d.status}</span>
                  </td>
                  <td>{d.attempts}</td>
                  <td>{d.response_code ?? '—'}</td>
                  <td className="small">{d.last_error ?? ''}</td>
                  <td className="small">{ago(d.recorded_at)}</td>
                  <td className="small">
                    <code>{d.delivery_id}</code>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
