/** Writes docs/configuration.md from the relay's settings table. */
import { writeFileSync } from 'node:fs';
import { renderConfigDoc } from '../packages/relay/src/server/config-doc.ts';

writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigDoc());
