/**
 * The embeddable chat widget. A site adds one tag:
 *
 *   <script src="https://chat.example.com/widget.js" data-tenant-key="wk_…"></script>
 *
 * and gets a launcher button with a chat panel, rendered in a shadow root so
 * the site's CSS and the widget's cannot touch each other.
 */
import { createRoot } from 'react-dom/client';
import type { Identity } from '@jamuna/protocol';
import { type Controls, Widget } from './Widget';
import { readConfig } from './config';
import css from './widget.css?inline';

declare global {
  interface Window {
    Jamuna?: { open(): void; close(): void; toggle(): void; identify(identity: Identity): Promise<boolean> };
  }
}

function mount(): void {
  const script = (document.currentScript as HTMLScriptElement | null) ?? document.querySelector<HTMLScriptElement>('script[data-tenant-key]');
  const config = readConfig(script);
  if (!config) {
    console.error('jamuna: the widget script needs a data-tenant-key attribute');
    return;
  }
  // The host page may identify its customer before the widget is mounted: kept until it is.
  const controls: Controls = {
    open: () => undefined,
    close: () => undefined,
    toggle: () => undefined,
    identify: (identity) => {
      controls.pending = identity;
      return Promise.resolve(true);
    },
  };
  window.Jamuna = controls;
  const start = (): void => {
    if (document.getElementById('jamuna-widget')) return;
    const host = document.createElement('div');
    host.id = 'jamuna-widget';
    host.style.setProperty('--jamuna-accent', config.color);
    document.body.appendChild(host);
    const shadow = host.attachShadow({ mode: 'open' });
    const style = document.createElement('style');
    style.textContent = css;
    shadow.appendChild(style);
    const container = document.createElement('div');
    container.className = 'jw-root';
    shadow.appendChild(container);
    createRoot(container).render(<Widget config={config} controls={controls} />);
  };
  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
}

mount();
