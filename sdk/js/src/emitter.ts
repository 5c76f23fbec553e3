/** A small typed event emitter: `on(type, handler)` returns the function that unsubscribes. */

export type Handler<T> = (payload: T) => void;

export class Emitter<Events extends object> {
  #handlers = new Map<keyof Events, Set<Handler<never>>>();

  /** Subscribe to `type`; returns a function that unsubscribes. */
  on<K extends keyof Events>(type: K, handler: Handler<Events[K]>): () => void {
    let set = this.#handlers.get(type);
    if (!set) {
      set = new Set();
      this.#handlers.set(type, set);
    }
    set.add(handler);
    return () => this.off(type, handler);
  }

  /** Subscribe for the next event of `type` only. */
  once<K extends keyof Events>(type: K, handler: Handler<Events[K]>): () => void {
    const off = this.on(type, (payload) => {
      off();
      handler(payload);
    });
    return off;
  }

  off<K extends keyof Events>(type: K, handler: Handler<Events[K]>): void {
    this.#handlers.get(type)?.delete(handler);
  }

  /**
   * Call every handler of `type`. A handler that throws does not stop the others nor the SDK:
   * its error is rethrown on a later task, where the page's error reporting sees it.
   */
  emit<K extends keyof Events>(type: K, payload: Events[K]): void {
    const set = this.#handlers.get(type);
    if (!set) return;
    for (const handler of Array.from(set) as Handler<Events[K]>[]) {
      try {
        handler(payload);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }
}

/** Where a part of the SDK sends its events (the Call re-emits them to the page). */
export interface EventSink<Events extends object> {
  emit<K extends keyof Events>(type: K, payload: Events[K]): void;
}
