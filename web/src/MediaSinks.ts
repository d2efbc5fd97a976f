import { h } from './dom.js';

/**
 * The elements that play remote media, kept outside the re-rendered screens
 * so playback never restarts: one audio element per remote party (a call,
 * or each conference participant) and a video element when there is video.
 */
export class MediaSinks {
  readonly #container: HTMLElement;
  readonly #sinks = new Map<string, HTMLMediaElement>();

  constructor(parent: HTMLElement) {
    this.#container = h('div', { testid: 'media-sinks', class: 'sinks', 'aria-hidden': 'true' });
    parent.append(this.#container);
  }

  /** Plays `stream` in the sink `key`; `muted` for the local preview (never play our own microphone). */
  attach(key: string, stream: MediaStream, opts: { muted?: boolean } = {}): void {
    const video = stream.getVideoTracks().length > 0;
    let el = this.#sinks.get(key);
    if (el && (el instanceof HTMLVideoElement) !== video) {
      this.detach(key);
      el = undefined;
    }
    if (!el) {
      el = video
        ? h('video', { testid: key === 'local' ? 'local-video' : 'remote-video', 'data-key': key, autoplay: true, playsinline: true })
        : h('audio', { testid: 'remote-audio', 'data-key': key, autoplay: true });
      this.#sinks.set(key, el);
      this.#container.append(el);
    }
    el.muted = opts.muted === true;
    if (el.srcObject !== stream) el.srcObject = stream;
    void el.play().catch(() => undefined); // autoplay may need a gesture on real phones; the call UI provides one
  }

  detach(key: string): void {
    const el = this.#sinks.get(key);
    if (!el) return;
    el.srcObject = null;
    el.remove();
    this.#sinks.delete(key);
  }

  keys(): string[] {
    return [...this.#sinks.keys()];
  }
}
