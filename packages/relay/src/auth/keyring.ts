/**
 * Rotating keys shared by every relay of a deployment through the store.
 *
 * Time is cut into epochs of `periodMs`; epoch `e` has one key, stored under
 * `<prefix>.<e>` with `setSettingIfAbsent`, so relays racing to create it all
 * end up with the same key and nobody coordinates anything else. The key of
 * the current epoch seals or signs; the previous epoch's key stays valid for
 * verification (overlap), and the next epoch's is created early so verifiers
 * that cache a JWKS already know it when it comes into use.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from '../store/types.ts';

export interface KeyCodec<K> {
  /** A new key as a storable string. */
  generate(): Promise<string>;
  parse(stored: string): Promise<K>;
}

export interface EpochKey<K> {
  kid: string;
  epoch: number;
  key: K;
}

export interface KeyRingOptions<K> {
  store: Pick<Store, 'getSetting' | 'setSettingIfAbsent' | 'deleteSetting'>;
  /** Setting key prefix, e.g. `auth.session-key`. */
  prefix: string;
  periodMs: number;
  clock: () => number;
  codec: KeyCodec<K>;
}

/** A fresh key id: short, random, so a cookie from another deployment never matches by accident. */
export function newKid(): string {
  return randomBytes(9).toString('base64url');
}

export class KeyRing<K> {
  private readonly opts: KeyRingOptions<K>;
  private readonly byEpoch = new Map<number, EpochKey<K>>();
  private readonly byKid = new Map<string, EpochKey<K>>();
  private loaded = -1;
  private loading: Promise<void> | undefined;

  constructor(opts: KeyRingOptions<K>) {
    this.opts = opts;
  }

  private epochNow(): number {
    return Math.floor(this.opts.clock() / this.opts.periodMs);
  }

  /** Loads the keys of the epoch around now once per epoch; concurrent callers share the work. */
  private async ensure(): Promise<number> {
    const e = this.epochNow();
    while (this.loaded !== e) {
      this.loading ??= this.load(e).finally(() => (this.loading = undefined));
      await this.loading;
    }
    return e;
  }

  private async load(e: number): Promise<void> {
    const { store, prefix, codec } = this.opts;
    const keys = new Map<number, EpochKey<K>>();
    const previous = await store.getSetting(`${prefix}.${e - 1}`);
    if (previous !== null) keys.set(e - 1, await this.decode(e - 1, previous));
    for (const epoch of [e, e + 1]) {
      const stored = (await store.getSetting(`${prefix}.${epoch}`)) ?? (await store.setSettingIfAbsent(`${prefix}.${epoch}`, JSON.stringify({ kid: newKid(), key: await codec.generate() })));
      keys.set(epoch, await this.decode(epoch, stored));
    }
    this.byEpoch.clear();
    this.byKid.clear();
    for (const [epoch, k] of keys) {
      this.byEpoch.set(epoch, k);
      this.byKid.set(k.kid, k);
    }
    this.loaded = e;
    // Keys two epochs old verify nothing any more; remove them (any relay may, once).
    void store.deleteSetting(`${prefix}.${e - 2}`).catch(() => undefined);
  }

  private async decode(epoch: number, stored: string): Promise<EpochKey<K>> {
    const { kid, key } = JSON.parse(stored) as { kid: string; key: string };
    return { kid, epoch, key: await this.opts.codec.parse(key) };
  }

  /** The key to seal or sign with now. */
  async current(): Promise<EpochKey<K>> {
    const e = await this.ensure();
    return this.byEpoch.get(e)!;
  }

  /** The key of this id if it may still be used to open or verify; undefined otherwise. */
  async find(kid: string | undefined): Promise<EpochKey<K> | undefined> {
    const e = await this.ensure();
    const k = kid === undefined ? undefined : this.byKid.get(kid);
    return k && k.epoch <= e + 1 && k.epoch >= e - 1 ? k : undefined;
  }

  /** Previous, current and next keys: what a JWKS publishes. */
  async published(): Promise<Array<EpochKey<K>>> {
    await this.ensure();
    return [...this.byEpoch.values()].sort((a, b) => a.epoch - b.epoch);
  }
}
