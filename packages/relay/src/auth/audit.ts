/**
 * Audit events of user access. Written before the answer goes out, so an
 * event exists by the time the user sees the result; a store failure is
 * logged and never turns a sign-in into an error page.
 *
 * Types: `user.signin` (success | failure | rate_limited), `user.signout`,
 * `access.denied`, `token.accepted`, `token.rejected`, `session.rejected`,
 * `sso.header_failed`, `session.streams_closed`.
 */
import type { Logger } from 'pino';
import type { NewAuditEvent, Store } from '../store/types.ts';

export class AuthAudit {
  private readonly store: Pick<Store, 'appendAudit'>;
  private readonly logger: Logger;
  private readonly clock: () => number;

  constructor(store: Pick<Store, 'appendAudit'>, logger: Logger, clock: () => number) {
    this.store = store;
    this.logger = logger;
    this.clock = clock;
  }

  async record(event: NewAuditEvent): Promise<void> {
    try {
      await this.store.appendAudit({ at: this.clock(), ...event });
    } catch (err) {
      this.logger.error({ err, type: event.type, requestId: event.requestId }, 'audit event could not be stored');
    }
  }
}
