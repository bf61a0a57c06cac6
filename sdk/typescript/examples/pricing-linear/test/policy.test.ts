// pricing-linear's native tests: every fixture of policies/pricing-linear, and the cases
// of its Rust tests.
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { Amount, type NodeInfo, parseSettings, type QuoteRequest, SettingsError } from '@grid/policy-sdk';
import { fixture } from '@grid/policy-sdk';
import { checkDir } from '@grid/policy-sdk/testing';
import { LinearPricing, linearPricing } from '../src/policy.js';

// dist/examples/pricing-linear/test -> the repository's policies/pricing-linear/fixtures
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', '..', '..', 'policies', 'pricing-linear', 'fixtures');

test('every fixture of policies/pricing-linear gives its expected answer', () => {
  const ran = checkDir(FIXTURES, linearPricing, fixture.runPricing);
  assert.ok(ran >= 6, `only ${ran} fixtures`);
});

function node(freeGpus: number, model?: string): NodeInfo {
  const res = { cpuMillis: 8000n, memoryBytes: 32n << 30n, storageBytes: 100n << 30n, gpus: freeGpus, gpuModel: model };
  return { wallet: '0x' + '0'.repeat(40), chainId: 1n, total: res, free: { ...res } };
}

function request(gpus: number, model: string | undefined, payment: bigint): QuoteRequest {
  return {
    resources: { cpuMillis: 1000n, memoryBytes: 1n << 30n, storageBytes: 0n, gpus, gpuModel: model },
    durationSecs: 100n,
    payment: payment.toString(),
  };
}

const policy = (text: string) => parseSettings(linearPricing, text) as LinearPricing;

test('a gpu model without a price is unsupported', () => {
  const p = policy('{"gpu_per_second":{"nvidia-a100":"1"}}');
  const q = p.quote(request(1, 'nvidia-h100', 1n << 128n), node(4, 'nvidia-h100'));
  assert.equal(q.refusal?.kind, 'unsupported-resource');
  assert.match(q.refusal?.reason ?? '', /nvidia-h100/);
  assert.equal(p.quote(request(1, undefined, 1n << 128n), node(4)).refusal?.kind, 'unsupported-resource');
});

test('gpu model match ignores case and falls back to *', () => {
  const p = policy(
    '{"gpu_per_second":{"nvidia-a100":"7","*":"3"},"cpu_core_per_second":"0","memory_gib_per_second":"0","storage_gib_per_second":"0"}',
  );
  let q = p.quote(request(1, 'NVIDIA-A100', 10_000n), node(1, 'nvidia-a100'));
  assert.equal(q.price, '700');
  assert.equal(q.refusal, undefined);
  q = p.quote(request(2, 'amd-mi300', 10_000n), node(2, 'amd-mi300'));
  assert.equal(q.price, '600');
  assert.equal(q.breakdown.at(-1)?.item, 'gpu:amd-mi300');
});

test('prices round up, never down', () => {
  const p = policy('{"cpu_core_per_second":"1","memory_gib_per_second":"0","storage_gib_per_second":"0","min_duration_secs":1}');
  const req = request(0, undefined, 1000n);
  req.resources.cpuMillis = 1n; // a thousandth of a core for one second
  req.durationSecs = 1n;
  assert.equal(p.quote(req, node(0)).price, '1');
});

test('an overflowing price is refused, not wrapped', () => {
  const p = policy(`{"cpu_core_per_second":"${Amount.MAX}","max_duration_secs":1000000}`);
  const q = p.quote(request(0, undefined, 1n << 128n), node(0));
  assert.equal(q.refusal?.kind, 'other');
  assert.match(q.refusal?.reason ?? '', /u256/);
});

test('settings are validated', () => {
  const refused = (text: string, pattern: RegExp) =>
    assert.throws(() => parseSettings(linearPricing, text), (e: unknown) => e instanceof SettingsError && pattern.test(e.message));
  refused('{"min_duration_secs":10,"max_duration_secs":5}', /min_duration_secs/);
  refused('{"gpu_per_second":{"NVIDIA":"1"}}', /lower case/);
  refused('{"cpu_per_core":"1"}', /unknown field/);
  refused('{"cpu_core_per_second":"-1"}', /not an amount/);
  refused('{"min_duration_secs":"60"}', /min_duration_secs: expected a non-negative integer/);
  // No settings at all is the built-in default, which must be valid.
  assert.equal(policy('').settings.min_duration_secs, 60n);
});
