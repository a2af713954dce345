/** How the host page configured the widget, read from its script tag. */
export interface WidgetConfig {
  tenantKey: string;
  apiBase: string;
  title: string;
  subtitle: string;
  color: string;
  /** A help-centre URL for sources, with `{id}` for the article id; empty for none. */
  articleUrl: string;
  /** Open the panel at start. */
  open: boolean;
}

export function readConfig(script: HTMLScriptElement | null): WidgetConfig | null {
  const d = script?.dataset ?? {};
  const tenantKey = d.tenantKey ?? '';
  if (!tenantKey) return null;
  let apiBase = d.apiBase ?? '';
  if (!apiBase && script?.src) apiBase = new URL(script.src, location.href).origin;
  return {
    tenantKey,
    apiBase: apiBase || location.origin,
    title: d.title ?? 'Support',
    subtitle: d.subtitle ?? 'We usually answer in a few minutes',
    color: d.color ?? '#4f46e5',
    articleUrl: d.articleUrl ?? '',
    open: d.open === 'true',
  };
}
