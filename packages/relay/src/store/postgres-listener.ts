/**
 * One dedicated connection that LISTENs on the store's channel. When it drops
 * it reconnects with backoff and then reports a resync: notices sent while it
 * was away are lost, so listeners must reload.
 */
import pg from 'pg';

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5_000;

export interface PgListenerOptions {
  config: pg.ClientConfig;
  channel: string;
  onPayload: (payload: string) => void;
  onResync: () => void;
  onError: (err: unknown) => void;
}

export class PgListener {
  readonly #options: PgListenerOptions;
  #client: pg.Client | null = null;
  #timer: NodeJS.Timeout | null = null;
  #backoff = MIN_BACKOFF_MS;
  #closed = false;

  constructor(options: PgListenerOptions) {
    this.#options = options;
  }

  /** Resolves once LISTEN is in effect, so no change committed afterwards is missed. */
  async start(): Promise<void> {
    const client = new pg.Client(this.#options.config);
    const onLost = (err?: Error): void => this.#lost(client, err);
    client.on('error', onLost);
    client.on('end', onLost);
    client.on('notification', (message) => {
      if (message.channel === this.#options.channel && message.payload !== undefined) this.#options.onPayload(message.payload);
    });
    this.#client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.#options.channel)}`);
    } catch (err) {
      this.#client = null;
      client.removeAllListeners();
      client.on('error', () => {});
      await client.end().catch(() => {});
      throw err;
    }
    this.#backoff = MIN_BACKOFF_MS;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }

  #lost(client: pg.Client, err?: Error): void {
    if (this.#closed || this.#client !== client) return;
    this.#client = null;
    if (err) this.#options.onError(err);
    client.removeAllListeners();
    client.on('error', () => {});
    client.end().catch(() => {});
    this.#schedule();
  }

  #schedule(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.start().then(
        () => this.#options.onResync(),
        (err: unknown) => {
          this.#options.onError(err);
          this.#backoff = Math.min(this.#backoff * 2, MAX_BACKOFF_MS);
          this.#schedule();
        },
      );
    }, this.#backoff);
    this.#timer.unref();
  }
}
