// authz-order-owner's native tests: every fixture of policies/authz-order-owner, and the
// cases of its Rust tests.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { fixture, type Order, parseSettings, SettingsError } from '@grid/policy-sdk';
import { checkDir } from '@grid/policy-sdk/testing';
import { OrderOwner, orderOwner, pathHasPrefix } from '../src/policy.js';

// dist/examples/authz-order-owner/test -> the repository's policies/authz-order-owner/fixtures
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..', '..', 'policies', 'authz-order-owner', 'fixtures');
const at = (now: bigint) => ({ now, log: () => {} });
const USER = '0x' + 'aa'.repeat(20);

test('every fixture of policies/authz-order-owner gives its expected answer', () => {
  const ran = checkDir(FIXTURES, orderOwner, fixture.runAuthorization);
  assert.ok(ran >= 6, `only ${ran} fixtures`);
});

function activeOrder(user: string, start: bigint, duration: bigint): Order {
  return {
    id: '1',
    user,
    provider: '0x' + '11'.repeat(20),
    payee: '0x' + '11'.repeat(20),
    resources: { cpuMillis: 0n, memoryBytes: 0n, storageBytes: 0n, gpus: 0 },
    durationSecs: duration,
    payment: '1',
    startTime: start,
    createdAt: start,
    status: 'active',
  };
}

const policy = () => parseSettings(orderOwner, '') as OrderOwner;

test('a session never outlives the last order', () => {
  const d = policy().authorizeSession({ address: USER, orders: [activeOrder(USER, 1000n, 100n), activeOrder(USER, 1000n, 500n)] }, at(1050n));
  assert.deepEqual(d, { tag: 'grant', val: { expiresAt: 1500n } });
  // An ended order does not count.
  const ended = policy().authorizeSession({ address: USER, orders: [activeOrder(USER, 1000n, 10n)] }, at(1050n));
  assert.equal(ended.tag, 'deny');
});

test('orders of someone else do not grant a session, and addresses compare by value', () => {
  const other = policy().authorizeSession({ address: USER, orders: [activeOrder('0x' + 'bb'.repeat(20), 1000n, 1000n)] }, at(1000n));
  assert.equal(other.tag, 'deny');
  const upper = policy().authorizeSession({ address: USER, orders: [activeOrder(USER.toUpperCase().replace('0X', '0x'), 1000n, 1000n)] }, at(1000n));
  assert.equal(upper.tag, 'grant');
});

test('path prefixes match whole segments', () => {
  assert.ok(pathHasPrefix('/admin', '/admin'));
  assert.ok(pathHasPrefix('/admin/users', '/admin/'));
  assert.ok(!pathHasPrefix('/administrator', '/admin'));
  assert.ok(pathHasPrefix('/anything', '/'));
});

test('settings are validated', () => {
  for (const [bad, needle] of [
    ['{"session_lifetime_secs":0}', 'above 0'],
    ['{"deny_path_prefixes":["admin"]}', 'start with'],
    ['{"deny_methods":["GET /"]}', 'not an HTTP method'],
    [`{"allow":["${USER}"],"deny":["${USER.toUpperCase().replace('0X', '0x')}"]}`, 'both'],
  ] as const) {
    assert.throws(() => parseSettings(orderOwner, bad), (e: unknown) => e instanceof SettingsError && e.message.includes(needle), bad);
  }
  parseSettings(orderOwner, '');
});
