import { useState } from 'react';
import { ApiError, type Me } from '@jamuna/protocol';
import { api } from '../client';
import { ErrorLine } from '../status';

export function Login({ onSignedIn }: { onSignedIn: (me: Me) => void }) {
  const [tenant, setTenant] = useState(() => localStorage.getItem('jamuna.admin.tenant') ?? 'demo');
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  return (
    <main className="login">
      <form
        className="login-card"
        aria-labelledby="login-title"
        onSubmit={(e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          api
            .login(tenant.trim(), email.trim(), password)
            .then(async () => {
              const me = await api.me();
              if (me.role === 'customer') {
                await api.logout();
                throw new ApiError(403, 'forbidden', 'This dashboard is for agents and admins.');
              }
              localStorage.setItem('jamuna.admin.tenant', tenant.trim());
              onSignedIn(me);
            })
            .catch((err: unknown) => setError(err instanceof ApiError ? (err.status === 401 ? 'Wrong e-mail or password.' : err.message) : 'Sign-in failed.'))
            .finally(() => setBusy(false));
        }}
      >
        <h1 id="login-title">
          Jamuna <span>support</span>
        </h1>
        <p className="muted">Sign in to answer your customers.</p>
        <label>
          Workspace
          <input name="tenant" value={tenant} onChange={(e) => setTenant(e.target.value)} required autoComplete="organization" />
        </label>
        <label>
          E-mail
          <input name="email" type="email" value={email} onChange={(e) => setEmail(e.target.value)} required autoComplete="username" autoFocus />
        </label>
        <label>
          Password
          <input name="password" type="password" value={password} onChange={(e) => setPassword(e.target.value)} required autoComplete="current-password" />
        </label>
        <ErrorLine error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
