/**
 * A small typed event emitter that runs in browsers, Node and React Native
 * (no dependency on Node's `events`). A listener that throws does not stop
 * the others; the error is handed to `onListenerError`.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type EventMap<E> = { [K in keyof E]: (...args: any[]) => void };

export class Emitter<E extends EventMap<E>> {
  readonly #listeners = new Map<keyof E, Set<E[keyof E]>>();
  onListenerError: (err: unknown, event: keyof E) => void = () => undefined;

  on<K extends keyof E>(event: K, listener: E[K]): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  once<K extends keyof E>(event: K, listener: E[K]): () => void {
    const wrapped = ((...args: Parameters<E[K]>) => {
      this.off(event, wrapped);
      listener(...args);
    }) as E[K];
    return this.on(event, wrapped);
  }

  off<K extends keyof E>(event: K, listener: E[K]): void {
    this.#listeners.get(event)?.delete(listener);
  }

  /** Resolves with the arguments of the next `event`, or rejects after `timeoutMs`. */
  next<K extends keyof E>(event: K, timeoutMs = 10_000): Promise<Parameters<E[K]>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`timed out waiting for ${String(event)}`));
      }, timeoutMs);
      const off = this.once(event, ((...args: Parameters<E[K]>) => {
        clearTimeout(timer);
        resolve(args);
      }) as E[K]);
    });
  }

  protected emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(...args);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }

  protected removeAllListeners(): void {
    this.#listeners.clear();
  }
}
