/** Builders for application configs in tests. */
import { type AppConfig, type ConnectorConfig, DEFAULT_APP_LIMITS, DEFAULT_APP_TIMEOUTS } from '@drawbridge/shared';

export function appConfig(overrides: Partial<AppConfig> & Pick<AppConfig, 'internalUrl'>): AppConfig {
  return {
    id: 'app_hello',
    name: 'hello',
    externalHost: 'hello.test',
    group: 'test-group',
    preauth: 'passthrough',
    hostHeader: null,
    headers: [],
    assignments: [],
    timeouts: { ...DEFAULT_APP_TIMEOUTS },
    limits: { ...DEFAULT_APP_LIMITS },
    insecureSkipVerify: false,
    denyRobots: true,
    ...overrides,
  };
}

export function connectorConfig(apps: AppConfig[], overrides: Partial<ConnectorConfig> = {}): ConnectorConfig {
  return {
    connectorId: 'con_test',
    connectorName: 'test',
    group: { id: 'test-group', name: 'test' },
    revision: '1',
    apps,
    connections: 2,
    pullIntervalMs: 60_000,
    rotationAgeMs: 180 * 24 * 3600 * 1000,
    ...overrides,
  };
}
