/**
 * The dashboard's desktop notifications and sound: the setting (a bell in
 * the top bar) and the listener on the staff socket. What deserves a
 * notification is decided by the rules in `notify.ts`.
 */
import { useEffect, useRef, useState } from 'react';
import type { Me } from '@jamuna/protocol';
import { api, socket, storage } from './client';
import { go } from './router';
import { type Alert, Assignees, type NotifySettings, alertFor, parseSettings, settingsKey } from './notify';

type Permission = NotificationPermission | 'unsupported';

function currentPermission(): Permission {
  return typeof Notification === 'undefined' ? 'unsupported' : Notification.permission;
}

let audio: AudioContext | null = null;

/** A short two-note chime (WebAudio: no file to fetch). */
function chime(): void {
  try {
    audio ??= new AudioContext();
    const t = audio.currentTime;
    for (const [i, freq] of [880, 1320].entries()) {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = freq;
      gain.gain.setValueAtTime(0.0001, t + i * 0.12);
      gain.gain.exponentialRampToValueAtTime(0.15, t + i * 0.12 + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + i * 0.12 + 0.2);
      osc.connect(gain).connect(audio.destination);
      osc.start(t + i * 0.12);
      osc.stop(t + i * 0.12 + 0.22);
    }
  } catch {
    // No audio here (or not allowed yet): the notification is enough.
  }
}

function show(a: Alert, settings: NotifySettings): void {
  if (settings.desktop && currentPermission() === 'granted') {
    const n = new Notification(a.title, { body: a.body, tag: a.tag });
    n.onclick = () => {
      window.focus();
      go('inbox', 'all', a.conversationId);
      n.close();
    };
  }
  if (settings.sound) chime();
}

export function Notifications({ me, openConversation }: { me: Me; openConversation?: string }) {
  const key = settingsKey(me.id);
  const [settings, setSettings] = useState<NotifySettings>(() => parseSettings(storage.getItem(key)));
  const [permission, setPermission] = useState<Permission>(currentPermission);
  const [open, setOpen] = useState(false);
  const latest = useRef({ settings, openConversation });
  latest.current = { settings, openConversation };

  // Listen to the staff socket for as long as the user is signed in.
  useEffect(() => {
    const assignees = new Assignees();
    const ctl = new AbortController();
    api
      .conversations({ view: 'mine', limit: 100 }, ctl.signal)
      .then((p) => assignees.seed(p.items))
      .catch(() => undefined);
    const off = socket().on('event', (f) => {
      assignees.follow(f);
      const onScreen = (id: string): boolean => id === latest.current.openConversation && document.visibilityState === 'visible' && document.hasFocus();
      const alert = alertFor(f, { me: me.id, assigneeOf: (id) => assignees.of(id), onScreen });
      if (alert) show(alert, latest.current.settings);
    });
    return () => {
      ctl.abort();
      off();
    };
  }, [me.id]);

  const change = (next: NotifySettings): void => {
    setSettings(next);
    storage.setItem(key, JSON.stringify(next));
  };

  const allow = (): void => {
    void Notification.requestPermission().then(setPermission);
  };

  const on = settings.desktop || settings.sound;
  return (
    <div className="notify">
      <button type="button" className="ghost bell" aria-expanded={open} aria-controls="notify-settings" onClick={() => setOpen(!open)} title={on ? 'Notifications: on' : 'Notifications: off'} data-state={on ? 'on' : 'off'}>
        <svg aria-hidden="true" width="18" height="18" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
          <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
          <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
          {!on && <path d="M3 3l18 18" />}
        </svg>
        <span className="sr">Notifications</span>
      </button>
      {open && (
        <section id="notify-settings" className="notify-panel" aria-label="Notification settings">
          <h2>Notifications</h2>
          <p className="hint">On a handoff, and on a customer&apos;s message in a conversation assigned to you — not for what you do yourself, nor for the conversation you have open.</p>
          <label>
            <input type="checkbox" checked={settings.desktop} onChange={(e) => change({ ...settings, desktop: e.target.checked })} /> Desktop notifications
          </label>
          {settings.desktop && permission === 'default' && (
            <button type="button" className="primary" onClick={allow}>
              Allow desktop notifications
            </button>
          )}
          {settings.desktop && permission === 'denied' && <p className="warn">This browser blocks notifications from this site: allow them in its site settings.</p>}
          {permission === 'unsupported' && <p className="warn">This browser has no desktop notifications.</p>}
          {settings.desktop && permission === 'granted' && <p className="ok">Desktop notifications are allowed.</p>}
          <label>
            <input type="checkbox" checked={settings.sound} onChange={(e) => change({ ...settings, sound: e.target.checked })} /> Play a sound
          </label>
          <p className="hint">Saved in this browser, for you only.</p>
        </section>
      )}
    </div>
  );
}
