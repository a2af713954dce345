import { useState } from 'react';
import { type Role } from '@jamuna/protocol';
import { api } from '../client';
import { usePeople } from '../people';
import { ago } from '../format';
import { ErrorLine, NoticeLine } from '../status';

export function Users() {
  const people = usePeople();
  const [form, setForm] = useState({ name: '', email: '', password: '', role: 'agent' as Role });
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [roleFilter, setRoleFilter] = useState<Role | 'team' | ''>('team');
  const all = [...people.users.values()].filter((u) => !roleFilter || (roleFilter === 'team' ? u.role !== 'customer' : u.role === roleFilter));

  const run = async (f: () => Promise<unknown>, ok: string): Promise<void> => {
    setError(null);
    try {
      await f();
      setNotice(ok);
      people.reload();
    } catch (e) {
      setError(e instanceof Error ? e.message : 'That did not work.');
    }
  };

  return (
    <div className="page">
      <header className="page-head">
        <h1>Users</h1>
      </header>
      <form
        className="card row wrap"
        aria-label="Add a team member"
        onSubmit={(e) => {
          e.preventDefault();
          void run(() => api.createUser(form), `${form.email} can now sign in.`).then(() => setForm({ name: '', email: '', password: '', role: 'agent' }));
        }}
      >
        <label>
          Name
          <input value={form.name} required onChange={(e) => setForm({ ...form, name: e.target.value })} />
        </label>
        <label>
          E-mail
          <input type="email" value={form.email} required onChange={(e) => setForm({ ...form, email: e.target.value })} />
        </label>
        <label>
          Initial password
          <input type="password" value={form.password} required minLength={8} autoComplete="new-password" onChange={(e) => setForm({ ...form, password: e.target.value })} />
        </label>
        <label>
          Role
          <select value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value as Role })}>
            <option value="agent">Agent</option>
            <option value="admin">Admin</option>
          </select>
        </label>
        <button type="submit" className="primary">
          Add user
        </button>
      </form>
      <NoticeLine notice={notice} />
      <ErrorLine error={error} />
      <div className="row filters">
        <label>
          Show{' '}
          <select value={roleFilter} onChange={(e) => setRoleFilter(e.target.value as Role | 'team' | '')}>
            <option value="team">The team</option>
            <option value="">Everyone</option>
            <option value="admin">Admins</option>
            <option value="agent">Agents</option>
            <option value="customer">Customers</option>
          </select>
        </label>
      </div>
      <table className="table">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">E-mail</th>
            <th scope="col">Role</th>
            <th scope="col">Joined</th>
            <th scope="col">
              <span className="sr">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {all.map((u) => (
            <tr key={u.id} className={u.erased ? 'erased' : ''}>
              <td>{u.erased ? <em>erased</em> : u.name || <span className="muted">—</span>}</td>
              <td>{u.email ?? <span className="muted">—</span>}</td>
              <td>
                <label>
                  <span className="sr">Role of {u.email ?? u.id}</span>
                  <select value={u.role} disabled={u.erased || u.id === people.me.id} onChange={(e) => void run(() => api.changeRole(u.id, e.target.value as Role), 'Role changed.')}>
                    <option value="customer">Customer</option>
                    <option value="agent">Agent</option>
                    <option value="admin">Admin</option>
                  </select>
                </label>
              </td>
              <td className="small">{ago(u.registered_at)}</td>
              <td>
                {!u.erased && u.id !== people.me.id && (
                  <button
                    type="button"
                    className="danger"
                    onClick={() => {
                      if (window.confirm(`Erase ${u.email ?? u.name ?? u.id}? Their personal data (name, e-mail, messages) is deleted for good. This cannot be undone.`)) void run(() => api.eraseUser(u.id), 'User erased.');
                    }}
                  >
                    Erase (GDPR)
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
