/** A minimal typed event emitter. */
export class Emitter<Events extends object> {
  private readonly handlers = new Map<keyof Events, Set<(value: never) => void>>();

  on<K extends keyof Events>(type: K, handler: (value: Events[K]) => void): () => void {
    let set = this.handlers.get(type);
    if (!set) {
      set = new Set();
      this.handlers.set(type, set);
    }
    set.add(handler as (value: never) => void);
    return () => {
      set.delete(handler as (value: never) => void);
    };
  }

  protected emit<K extends keyof Events>(type: K, value: Events[K]): void {
    const set = this.handlers.get(type);
    if (!set) return;
    for (const h of [...set]) {
      try {
        (h as (value: Events[K]) => void)(value);
      } catch (e) {
        console.error('jamuna: a listener failed', e);
      }
    }
  }
}
