/** Every change made through the admin API is an audit event by `admin`. */
import type { NewAuditEvent } from '../store/index.ts';
import type { AdminContext } from './context.ts';

export const ADMIN_ACTOR = 'admin';

export function auditChange(ctx: AdminContext, type: string, event: Omit<NewAuditEvent, 'type' | 'actor' | 'outcome'> = {}): Promise<void> {
  return ctx.audit({ ...event, type, actor: ADMIN_ACTOR, outcome: 'success' });
}
