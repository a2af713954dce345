/**
 * Typing indicators, sent sparingly: "typing" when a person starts, again at
 * most every `repeatMs` while they keep typing, and "stopped" once they pause
 * for `idleMs` or say so. One implementation for the widget and the app.
 */
export class TypingSignal {
  private on = false;
  private sentAt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly send: (typing: boolean) => void,
    private readonly repeatMs = 3000,
    private readonly idleMs = 4000,
  ) {}

  /** The person typed (`true`) or stopped (`false`, e.g. sent the message). */
  set(typing: boolean): void {
    this.clearTimer();
    if (typing) {
      const now = Date.now();
      if (!this.on || now - this.sentAt > this.repeatMs) {
        this.send(true);
        this.sentAt = now;
      }
      this.on = true;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.on = false;
        this.send(false);
      }, this.idleMs);
    } else if (this.on) {
      this.on = false;
      this.send(false);
    }
  }

  /** Forgets a pending "stopped" (on unmount). */
  dispose(): void {
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
