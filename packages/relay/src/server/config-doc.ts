/** Renders docs/configuration.md from the settings table, so the doc cannot drift from the code. */
import { envName, SETTINGS, type Setting } from './config-schema.ts';

function formatDefault(s: Setting): string {
  if (s.default === null) return '—';
  if (Array.isArray(s.default)) return `\`${s.default.join(', ')}\``;
  if (s.type === 'duration' && typeof s.default === 'number') {
    const ms = s.default;
    for (const [unit, n] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) if (ms % n === 0 && ms >= n) return `\`${ms / n}${unit}\``;
    return `\`${ms}ms\``;
  }
  if (s.type === 'size' && typeof s.default === 'number') {
    const b = s.default;
    for (const [unit, n] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 1024]] as const) if (b % n === 0 && b >= n) return `\`${b / n}${unit}\``;
  }
  return `\`${String(s.default)}\``;
}

const TYPES: Record<string, string> = {
  string: 'string',
  path: 'path',
  url: 'https URL',
  enum: 'one of',
  int: 'integer',
  bool: 'true/false',
  duration: 'duration',
  size: 'size',
  listen: 'host:port',
  strings: 'list',
};

export function renderConfigDoc(): string {
  const sections = new Map<string, Setting[]>();
  for (const s of SETTINGS) {
    const section = s.key.includes('.') ? s.key.split('.')[0]! : 'general';
    sections.set(section, [...(sections.get(section) ?? []), s]);
  }
  let out = `# Relay configuration

<!-- Generated from packages/relay/src/server/config-schema.ts by \`pnpm docs:config\`; a test fails when this file is stale. -->

The relay reads its settings once, at start, from (later wins):

1. the defaults below;
2. a config file given with \`--config FILE\` (or \`DRAWBRIDGE_CONFIG\`): YAML, or JSON when the name ends in \`.json\`,
   with the dotted keys as nested objects (\`public: { listen: "0.0.0.0:443" }\`);
3. environment variables \`DRAWBRIDGE_*\` (one per setting, named in the table);
4. command-line flags (\`--data-dir\`).

Every value is validated before anything starts; an error names the setting, where the value came from and
what is wrong (\`setting queue.maxWait (from environment DRAWBRIDGE_QUEUE_MAX_WAIT): … is not a duration\`).
Unknown keys and unknown \`DRAWBRIDGE_*\` variables are errors too, so a typo never goes unnoticed.

Durations are a number of milliseconds or a value like \`250ms\`, \`85s\`, \`10m\`, \`1h\`, \`7d\`.
Sizes are a number of bytes or a value like \`16KiB\`, \`10MiB\`. Lists in environment variables are comma-separated.

Per-application settings (internal URL, timeouts, body limits, header rules, assignments) are not here: they
live in the store and are managed with \`drawbridge-relay app add|update\` (see [admin-api.md](admin-api.md)).

Example:

\`\`\`yaml
dataDir: /var/lib/drawbridge
public:
  listen: 0.0.0.0:443
  tlsCertFile: /etc/drawbridge/tls/fullchain.pem
  tlsKeyFile: /etc/drawbridge/tls/privkey.pem
connector:
  listen: 0.0.0.0:8443
  hosts: [relay.example.com]
queue:
  maxWait: 10s
\`\`\`
`;
  for (const [section, settings] of sections) {
    out += `\n## ${section}\n\n| setting | type | default | environment | meaning |\n|---|---|---|---|---|\n`;
    for (const s of settings) {
      let type = TYPES[s.type] ?? s.type;
      if (s.values) type += ` ${s.values.map((v) => `\`${v}\``).join(', ')}`;
      const range = s.min !== undefined || s.max !== undefined ? ` Range: ${s.min ?? '…'}–${s.max ?? '…'}.` : '';
      out += `| \`${s.key}\` | ${type} | ${formatDefault(s)} | \`${envName(s.key)}\` | ${s.doc}${range} |\n`;
    }
  }
  return out;
}
