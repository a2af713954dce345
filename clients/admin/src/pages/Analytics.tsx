import { useEffect, useMemo, useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { ApiError, type Analytics } from '@jamuna/protocol';
import { api } from '../client';
import { duration, isoDate, percent } from '../format';
import { ErrorLine } from '../status';

const DAY = 86_400_000;

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
function mean(xs: (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x != null);
  return v.length ? sum(v) / v.length : null;
}

export function AnalyticsPage() {
  const [to, setTo] = useState(() => isoDate(new Date()));
  const [from, setFrom] = useState(() => isoDate(new Date(Date.now() - 29 * DAY)));
  const [data, setData] = useState<Analytics | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);

  useEffect(() => {
    setLoading(true);
    api
      .analytics(from, to)
      .then((d) => {
        setData(d);
        setError(null);
      })
      .catch((e: unknown) => setError(e instanceof ApiError && e.status === 404 ? 'The analytics API is not available on this server yet.' : e instanceof Error ? e.message : 'Could not load analytics.'))
      .finally(() => setLoading(false));
  }, [from, to]);

  const preset = (days: number): void => {
    setTo(isoDate(new Date()));
    setFrom(isoDate(new Date(Date.now() - (days - 1) * DAY)));
  };

  const days = useMemo(
    () =>
      (data?.days ?? []).map((d) => ({
        ...d,
        label: d.date.slice(5),
        handoff_rate: d.conversations_started ? d.handoffs / d.conversations_started : null,
        first_response_p50_min: d.first_response_p50_s == null ? null : d.first_response_p50_s / 60,
        first_response_p90_min: d.first_response_p90_s == null ? null : d.first_response_p90_s / 60,
        resolution_p50_min: d.resolution_p50_s == null ? null : d.resolution_p50_s / 60,
        resolution_p90_min: d.resolution_p90_s == null ? null : d.resolution_p90_s / 60,
      })),
    [data],
  );

  const totals = useMemo(() => {
    const ds = data?.days ?? [];
    const started = sum(ds.map((d) => d.conversations_started));
    const resolved = sum(ds.map((d) => d.resolved));
    const csatCount = sum(ds.map((d) => d.csat_count));
    const t = data?.total;
    if (t) {
      return {
        started: t.conversations_started,
        handoffs: t.handoffs,
        botAnswers: t.bot_answers,
        containment: t.containment_rate,
        handoffRate: t.conversations_started ? t.handoffs / t.conversations_started : null,
        firstResponse: t.first_response_p50_s,
        resolution: t.resolution_p50_s,
        csat: t.csat_avg,
        csatCount: t.csat_count,
      };
    }
    return {
      started,
      handoffs: sum(ds.map((d) => d.handoffs)),
      botAnswers: sum(ds.map((d) => d.bot_answers)),
      containment: resolved ? sum(ds.map((d) => d.resolved_without_human)) / resolved : null,
      handoffRate: started ? sum(ds.map((d) => d.handoffs)) / started : null,
      firstResponse: mean(ds.map((d) => d.first_response_p50_s)),
      resolution: mean(ds.map((d) => d.resolution_p50_s)),
      csat: csatCount ? sum(ds.map((d) => (d.csat_avg ?? 0) * d.csat_count)) / csatCount : null,
      csatCount,
    };
  }, [data]);

  const pct = (v: unknown): string => (typeof v === 'number' ? percent(v) : '—');

  return (
    <div className="page analytics">
      <header className="page-head">
        <h1>Analytics</h1>
        <form className="row wrap" aria-label="Date range" onSubmit={(e) => e.preventDefault()}>
          <label>
            From <input type="date" value={from} max={to} onChange={(e) => e.target.value && setFrom(e.target.value)} />
          </label>
          <label>
            To <input type="date" value={to} min={from} onChange={(e) => e.target.value && setTo(e.target.value)} />
          </label>
          <button type="button" onClick={() => preset(7)}>
            7 days
          </button>
          <button type="button" onClick={() => preset(30)}>
            30 days
          </button>
          <button type="button" onClick={() => preset(90)}>
            90 days
          </button>
        </form>
      </header>
      <ErrorLine error={error} />
      <section className="kpis" aria-label="Totals" aria-busy={loading}>
        <Kpi label="Conversations" value={String(totals.started)} testid="kpi-conversations" />
        <Kpi label="Bot containment" value={percent(totals.containment)} hint="resolved without a human" />
        <Kpi label="Handoff rate" value={percent(totals.handoffRate)} hint={`${totals.handoffs} handoffs`} />
        <Kpi label="First response" value={duration(totals.firstResponse)} hint="median" />
        <Kpi label="Resolution time" value={duration(totals.resolution)} hint="median" />
        <Kpi label="CSAT" value={totals.csat == null ? '—' : `${totals.csat.toFixed(1)} / 5`} hint={`${totals.csatCount} ratings`} />
      </section>
      <div className="charts">
        <Chart title="Conversations per day">
          <BarChart data={days}>
            <CartesianGrid strokeDasharray="3 3" vertical={false} />
            <XAxis dataKey="label" fontSize={12} />
            <YAxis allowDecimals={false} fontSize={12} width={32} />
            <Tooltip />
            <Legend />
            <Bar dataKey="conversations_started" name="started" fill="#4f46e5" />
            <Bar dataKey="handoffs" name="handed over" fill="#f59e0b" />
            <Bar dataKey="resolved" name="resolved" fill="#10b981" />
          </BarChart>
        </Chart>
        <Chart title="Bot containment and handoff rate">
          <LineChart data={days}>
            <CartesianGrid strokeDasharray="3 3" vertical={false} />
            <XAxis dataKey="label" fontSize={12} />
            <YAxis domain={[0, 1]} tickFormatter={pct} fontSize={12} width={40} />
            <Tooltip formatter={pct} />
            <Legend />
            <Line type="monotone" dataKey="containment_rate" name="containment" stroke="#10b981" connectNulls dot={false} strokeWidth={2} />
            <Line type="monotone" dataKey="handoff_rate" name="handoff rate" stroke="#f59e0b" connectNulls dot={false} strokeWidth={2} />
          </LineChart>
        </Chart>
        <Chart title="First response and resolution time (minutes)">
          <LineChart data={days}>
            <CartesianGrid strokeDasharray="3 3" vertical={false} />
            <XAxis dataKey="label" fontSize={12} />
            <YAxis fontSize={12} width={40} tickFormatter={(v: number) => (v < 10 ? v.toFixed(1) : v.toFixed(0))} />
            <Tooltip formatter={(v) => (typeof v === 'number' ? `${v.toFixed(1)} min` : '—')} />
            <Legend />
            <Line type="monotone" dataKey="first_response_p50_min" name="first response p50" stroke="#4f46e5" connectNulls dot={false} strokeWidth={2} />
            <Line type="monotone" dataKey="first_response_p90_min" name="first response p90" stroke="#a5b4fc" connectNulls dot={false} />
            <Line type="monotone" dataKey="resolution_p50_min" name="resolution p50" stroke="#0ea5e9" connectNulls dot={false} strokeWidth={2} />
            <Line type="monotone" dataKey="resolution_p90_min" name="resolution p90" stroke="#7dd3fc" connectNulls dot={false} />
          </LineChart>
        </Chart>
        <Chart title="Customer satisfaction (CSAT)">
          <LineChart data={days}>
            <CartesianGrid strokeDasharray="3 3" vertical={false} />
            <XAxis dataKey="label" fontSize={12} />
            <YAxis domain={[1, 5]} fontSize={12} width={32} />
            <Tooltip />
            <Line type="monotone" dataKey="csat_avg" name="average rating" stroke="#ec4899" connectNulls strokeWidth={2} />
          </LineChart>
        </Chart>
        <Chart title="Top intents">
          <BarChart data={(data?.intents ?? []).slice(0, 10)} layout="vertical" margin={{ left: 24 }}>
            <CartesianGrid strokeDasharray="3 3" horizontal={false} />
            <XAxis type="number" allowDecimals={false} fontSize={12} />
            <YAxis type="category" dataKey="intent" width={120} fontSize={12} />
            <Tooltip />
            <Bar dataKey="count" name="questions" fill="#6366f1" />
          </BarChart>
        </Chart>
      </div>
      <details className="card">
        <summary>Figures per day (table)</summary>
        <table className="table small">
          <thead>
            <tr>
              <th scope="col">Date</th>
              <th scope="col">Started</th>
              <th scope="col">Bot answers</th>
              <th scope="col">Handoffs</th>
              <th scope="col">Resolved</th>
              <th scope="col">Containment</th>
              <th scope="col">First response p50</th>
              <th scope="col">CSAT</th>
            </tr>
          </thead>
          <tbody>
            {(data?.days ?? []).map((d) => (
              <tr key={d.date}>
                <td>{d.date}</td>
                <td>{d.conversations_started}</td>
                <td>{d.bot_answers}</td>
                <td>{d.handoffs}</td>
                <td>{d.resolved}</td>
                <td>{percent(d.containment_rate)}</td>
                <td>{duration(d.first_response_p50_s)}</td>
                <td>{d.csat_avg == null ? '—' : d.csat_avg.toFixed(1)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </div>
  );
}

function Kpi({ label, value, hint, testid }: { label: string; value: string; hint?: string; testid?: string }) {
  return (
    <div className="kpi">
      <span className="kpi-label">{label}</span>
      <span className="kpi-value" data-testid={testid}>
        {value}
      </span>
      {hint && <span className="kpi-hint">{hint}</span>}
    </div>
  );
}

function Chart({ title, children }: { title: string; children: React.ReactElement }) {
  return (
    <figure className="chart card">
      <figcaption>{title}</figcaption>
      <div className="chart-box">
        <ResponsiveContainer width="100%" height={240}>
          {children}
        </ResponsiveContainer>
      </div>
    </figure>
  );
}
