// The SDK's helpers give the answers of the Rust SDK's (guest-sdk/src) on the same cases.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Address,
  Amount,
  AmountParseError,
  fixture,
  firstShortfall,
  fitsIn,
  parseSettings,
  quantity,
  type Resources,
  sameAddress,
  SettingsError,
  settings as s,
} from '../src/index.js';

const MAX = '115792089237316195423570985008687907853269984665640564039457584007913129639935';

test('amounts parse and print the full u256 range and refuse what is not a plain decimal', () => {
  assert.equal(Amount.parse(MAX).toString(), MAX);
  assert.ok(Amount.parse(MAX).equals(Amount.MAX));
  assert.ok(Amount.parse('0').isZero());
  for (const bad of ['', '-1', '+1', '1.5', '1e18', '0x10', ' 1', 'abc', MAX.replace(/5$/, '6')]) {
    assert.throws(() => Amount.parse(bad), AmountParseError, bad);
  }
});

test('amount arithmetic is checked', () => {
  assert.equal(Amount.MAX.checkedAdd(Amount.from(1)), undefined);
  assert.equal(Amount.ZERO.checkedSub(Amount.from(1)), undefined);
  assert.equal(Amount.MAX.checkedMul(2n), undefined);
  assert.equal(Amount.from(7).checkedMul(6n)?.toString(), '42');
  assert.equal(Amount.from(7).checkedDiv(0n), undefined);
  assert.equal(Amount.from(7).checkedMul(-1n), undefined, 'a factor is a u64');
  assert.equal(Amount.of(-1n), undefined);
});

test('mulDivCeil rounds up and survives wide products', () => {
  assert.equal(Amount.from(10).mulDivCeil(1n, 3n)?.toString(), '4');
  assert.equal(Amount.from(9).mulDivCeil(1n, 3n)?.toString(), '3');
  assert.equal(Amount.MAX.mulDivCeil(2n, 2n)?.toString(), MAX);
  assert.equal(Amount.MAX.mulDivCeil(3n, 2n), undefined);
  assert.equal(Amount.from(1).mulDivCeil(1n, 0n), undefined);
});

test('cpu and byte quantities', () => {
  const cpu = quantity.parseCpuMillis;
  assert.equal(cpu('2'), 2000n);
  assert.equal(cpu('500m'), 500n);
  assert.equal(cpu('0.5'), 500n);
  assert.equal(cpu('1.0001'), 1001n);
  assert.equal(cpu('100u'), 1n);
  assert.equal(cpu('0'), 0n);
  assert.equal(cpu('2e3'), 2_000_000n);
  assert.equal(cpu('1.' + '0'.repeat(60)), 1000n);
  const bytes = quantity.parseBytes;
  assert.equal(bytes('4Gi'), 4n << 30n);
  assert.equal(bytes('1G'), 1_000_000_000n);
  assert.equal(bytes('1.5Ki'), 1536n);
  assert.equal(bytes('128974848'), 128_974_848n);
  assert.equal(bytes('129e6'), 129_000_000n);
  assert.equal(bytes('123Mi'), 123n << 20n);
  assert.equal(bytes('1m'), 1n, 'a fraction of a byte rounds up');
  for (const bad of ['', '-1', 'Gi', '1.2.3', '4GB', '1x', '1e', '1e99', '.', '99999999999Ei']) {
    assert.throws(() => bytes(bad), quantity.QuantityError, bad);
  }
  for (const b of [0n, 1536n, 3n << 20n, 4n << 30n, 12345n]) assert.equal(bytes(quantity.formatBytes(b)), b);
  for (const m of [0n, 250n, 1000n, 2500n]) assert.equal(cpu(quantity.formatCpuMillis(m)), m);
  assert.equal(quantity.formatBytes(4n << 30n), '4Gi');
  assert.equal(quantity.formatCpuMillis(2000n), '2');
});

test('addresses compare by value, not letter case', () => {
  const a = '0xAbCdEf0123456789aBcDeF0123456789AbCdEf01';
  const b = '0xabcdef0123456789abcdef0123456789abcdef01';
  assert.ok(Address.parse(a).equals(Address.parse(b)));
  assert.ok(sameAddress(a, b));
  assert.equal(Address.parse(a).toString(), b);
  assert.ok(!sameAddress(a, '0x' + '1'.repeat(40)));
  for (const bad of ['', '0x', b.slice(2), b.slice(0, -1), b.slice(0, -1) + 'g']) {
    assert.throws(() => Address.parse(bad), bad);
    assert.ok(!sameAddress(bad, bad), `${bad} is not an address, so not the same as itself`);
  }
});

test('resources: fits and the first shortfall, gpu model case-insensitive', () => {
  const res = (cpu: bigint, mem: bigint, gpus: number, model?: string): Resources => ({
    cpuMillis: cpu, memoryBytes: mem, storageBytes: 0n, gpus, gpuModel: model,
  });
  const free = res(4000n, 8n << 30n, 2, 'nvidia-a100');
  assert.ok(fitsIn(res(4000n, 8n << 30n, 2), free));
  assert.ok(fitsIn(res(1000n, 1n, 1, 'NVIDIA-A100'), free));
  assert.ok(!fitsIn(res(4001n, 1n, 0), free));
  assert.ok(!fitsIn(res(1n, 1n, 3), free));
  assert.ok(!fitsIn(res(1n, 1n, 1, 'nvidia-h100'), free));
  assert.equal(firstShortfall(res(5000n, 1n, 0), free), 'cpu: asked 5, free 4');
  assert.equal(firstShortfall(res(1n, 1n, 0, 'nvidia-h100'), free), undefined);
});

const demo = {
  settings: s.object({ rate: s.amount('5'), owners: s.list(s.address()), limit: s.optional(s.u64()) }),
  validate: (c: { owners: Address[] }) => (c.owners.length > 2 ? 'at most 2 owners' : undefined),
  create: (c: unknown) => c,
};

test('settings: defaults, unknown fields, types, and the policy validate', () => {
  const c = parseSettings(demo, '') as { rate: Amount; owners: Address[]; limit?: bigint };
  assert.equal(c.rate.toString(), '5');
  assert.deepEqual(c.owners, []);
  assert.equal(c.limit, undefined);
  const refused = (text: string, pattern: RegExp) =>
    assert.throws(() => parseSettings(demo, text), (e: unknown) => e instanceof SettingsError && pattern.test(e.message), text);
  refused('{"rat":"1"}', /unknown field `rat`/);
  refused('{"rate":"1.5"}', /^rate: "1.5" is not an amount/);
  refused('{"owners":["0x12"]}', /^owners\[0\]: "0x12" is not an address/);
  refused('{"limit":-1}', /^limit: expected a non-negative integer/);
  refused('{"owners":["0x' + '1'.repeat(40) + '","0x' + '2'.repeat(40) + '","0x' + '3'.repeat(40) + '"]}', /at most 2 owners/);
  refused('[1]', /expected an object/);
  refused('{', /not valid JSON/);
});

test('fixtures: parse strictly, normalise to the WIT values, and a wrong answer is a mismatch', () => {
  const text = JSON.stringify({
    now: 5,
    call: { authorize_request: { request: { method: 'GET', path: '/', caller: '0x' + 'A'.repeat(40) } } },
    expect: { decision: 'deny', reason: 'no' },
  });
  const f = fixture.parseFixture(text);
  assert.equal(f.now, 5n);
  assert.ok('authorizeRequest' in f.call);
  if ('authorizeRequest' in f.call) {
    assert.equal(f.call.authorizeRequest.request.caller, '0x' + 'a'.repeat(40));
    assert.deepEqual(f.call.authorizeRequest.request.headers, []);
  }
  assert.equal(fixture.mismatch(f, { tag: 'deny', val: 'no' }), undefined);
  assert.match(fixture.mismatch(f, { tag: 'allow' }) ?? '', /expected \{"decision":"deny","reason":"no"\}\n +got \{"decision":"allow"\}/);
  assert.throws(() => fixture.parseFixture(text.replace('"method"', '"verb"')), /unknown field `verb`/);
  assert.throws(() => fixture.parseFixture('{"call":{"price":{}}}'), /unknown call `price`/);
  assert.throws(() => fixture.parseFixture('{"call":{"quote":{}}}'), /missing field `request`/);
});

test('quote answers print as the gateway prints them', () => {
  const call = fixture.parseFixture(
    '{"call":{"quote":{"request":{"resources":{"cpu_millis":1,"memory_bytes":1},"duration_secs":1,"payment":7},"node":{"wallet":"0x' +
      '1'.repeat(40) + '","total":{"cpu_millis":1,"memory_bytes":1},"free":{"cpu_millis":1,"memory_bytes":1}}}}}',
  ).call;
  assert.deepEqual(
    fixture.outcomeJson(call, { price: '007', breakdown: [{ item: 'cpu', amount: '7' }], refusal: { kind: 'insufficient-payment', reason: 'r' } }),
    { price: '7', breakdown: [{ item: 'cpu', amount: '7' }], refusal: { kind: 'insufficient_payment', reason: 'r' } },
  );
  if ('quote' in call) assert.equal(call.quote.request.payment, '7', 'a JSON number amount becomes its decimal string');
});

test('component exports: validate-settings throws the message (the err), settings are read once per instance', async () => {
  const { pricingExports } = await import('../src/component.js');
  let reads = 0;
  const logged: string[] = [];
  const host = {
    settings: () => {
      reads += 1;
      return '{"rate":"3"}';
    },
    now: () => 42n,
    log: (_level: string, message: string) => void logged.push(message),
  };
  const definition = {
    settings: s.object({ rate: s.amount('1') }),
    validate: (c: { rate: Amount }) => (c.rate.isZero() ? 'rate must be above 0' : undefined),
    create: (c: { rate: Amount }) => ({
      quote: (_r: unknown, _n: unknown, ctx: { now: bigint; log: (l: 'info', m: string) => void }) => {
        ctx.log('info', `now ${ctx.now}`);
        return { price: c.rate.toString(), breakdown: [] };
      },
    }),
  };
  const exports = pricingExports(definition, host);
  assert.throws(() => exports.validateSettings('{"rate":"0"}'), (e: unknown) => e === 'rate must be above 0');
  assert.throws(() => exports.validateSettings('{"rat":"1"}'), (e: unknown) => typeof e === 'string' && /unknown field/.test(e));
  exports.validateSettings('');
  const req = {} as Parameters<typeof exports.quote>[0];
  const node = {} as Parameters<typeof exports.quote>[1];
  assert.equal(exports.quote(req, node).price, '3');
  assert.equal(exports.quote(req, node).price, '3');
  assert.equal(reads, 1);
  assert.deepEqual(logged, ['now 42', 'now 42']);
});
