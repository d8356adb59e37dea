export { createAdminServer, adminRouter } from './server.ts';
export type { AdminContext } from './context.ts';
export { ensureAdminCredential, readAdminCredential, adminCredentialPath, credentialMatches, CredentialError, CredentialErrorCode, ADMIN_TOKEN_FILE } from './credential.ts';
export { AdminError, AdminErrorCode } from './errors.ts';
