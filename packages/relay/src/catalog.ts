/**
 * Where the relay looks up applications by host. Lookups are synchronous from
 * memory on the request path; the store-backed catalog refreshes its copy when
 * the store reports a change.
 */
import type { AppConfig } from '@drawbridge/shared';

export interface AppCatalog {
  /** The app published at `host` (lower case, no port). */
  findByHost(host: string): AppConfig | undefined;
}

/** A catalog held in memory; the store-backed one feeds it. */
export class MemoryCatalog implements AppCatalog {
  private byHost = new Map<string, AppConfig>();

  constructor(apps: AppConfig[] = []) {
    this.replace(apps);
  }

  findByHost(host: string): AppConfig | undefined {
    return this.byHost.get(host);
  }

  all(): AppConfig[] {
    return [...this.byHost.values()];
  }

  /** Replaces the whole set atomically (readers never see a half-updated map). */
  replace(apps: AppConfig[]): void {
    const next = new Map<string, AppConfig>();
    for (const app of apps) next.set(app.externalHost.toLowerCase(), app);
    this.byHost = next;
  }

  upsert(app: AppConfig): void {
    const next = new Map(this.byHost);
    for (const [host, a] of next) if (a.id === app.id) next.delete(host);
    next.set(app.externalHost.toLowerCase(), app);
    this.byHost = next;
  }
}
