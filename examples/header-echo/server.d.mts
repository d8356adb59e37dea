import type { Server } from 'node:http';
/** The header echo application as an unstarted HTTP server. */
export function createHeaderEcho(): Server;
