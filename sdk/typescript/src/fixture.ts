// Fixtures: one evaluation of a policy written down as JSON with the answer expected, in
// the format of guest-sdk/src/fixture.rs, shared with `grid-gateway policy run --input`:
//
//   { "now": 1700000000,
//     "call": { "quote": { "request": { ...QuoteRequest }, "node": { ...NodeInfo } } },
//     "expect": { "price": "…", "breakdown": [ … ], "refusal": null } }
//
// `call` is one of `quote`, `check`, `authorize_session`, `authorize_request`. Field names
// are the WIT's in snake_case; this module turns them into the values a component receives
// (camelCase, BigInt u64, canonical amounts, lowercase addresses) and turns an answer back
// into the JSON the gateway prints, to compare with `expect`.

import type {
  Decision,
  NodeInfo,
  Order,
  Quote,
  QuoteRequest,
  RequestMeta,
  SessionDecision,
  SessionRequest,
} from './types.js';
import type { AuthorizationPolicy, Context, PayeePolicy, PricingPolicy } from './policy.js';
import * as s from './settings.js';
import type { Schema } from './settings.js';

export type Call =
  | { quote: { request: QuoteRequest; node: NodeInfo } }
  | { check: { order: Order; node: NodeInfo } }
  | { authorizeSession: { request: SessionRequest } }
  | { authorizeRequest: { request: RequestMeta } };

export type World = 'pricing' | 'payee' | 'authorization';
export type Outcome = Quote | Decision | SessionDecision;

export interface Fixture {
  /** The unix time the policy sees; undefined means the real clock. */
  now: bigint | undefined;
  call: Call;
  /** The answer expected, as the gateway prints it (JSON). */
  expect: unknown;
}

/** Why a fixture is not valid. */
export class FixtureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FixtureError';
  }
}

// ---- reading: fixture JSON -> WIT values ----

const camel = (name: string) => name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function as<T, U>(schema: Schema<T>, f: (value: T) => U): Schema<U> {
  const out: Schema<U> = { read: (v, p) => f(schema.read(v, p)) };
  if (schema.fallback) {
    const fallback = schema.fallback;
    out.fallback = () => f(fallback());
  }
  return out;
}

/** A WIT record: a JSON object with snake_case fields, unknown ones refused. */
function record<F extends Record<string, Schema<unknown>>, T>(fields: F): Schema<T> {
  return as(s.object(fields), (o) => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(o)) if (v !== undefined) out[camel(k)] = v;
    return out as T;
  });
}

function withFallback<T>(schema: Schema<T>, fallback: T): Schema<T> {
  return { ...schema, fallback: () => fallback };
}

const u32: Schema<number> = as(s.u64(), (v) => {
  if (v > 0xffffffffn) throw new s.SettingsError(`${v} does not fit in u32`);
  return Number(v);
});
const amountText = as(s.amount(), (a) => a.toString());
const addressText = as(s.address(), (a) => a.toString());
const status = as(s.string(), (v) => {
  if (!['created', 'active', 'cancelled', 'completed'].includes(v)) {
    throw new s.SettingsError(`unknown order status ${JSON.stringify(v)}`);
  }
  return v as Order['status'];
});

const resources = record<Record<string, Schema<unknown>>, QuoteRequest['resources']>({
  cpu_millis: s.u64(),
  memory_bytes: s.u64(),
  storage_bytes: s.u64(0n),
  gpus: withFallback(u32, 0),
  gpu_model: s.optional(s.string()),
});
const order = record<Record<string, Schema<unknown>>, Order>({
  id: s.string(),
  user: addressText,
  provider: addressText,
  payee: addressText,
  resources,
  duration_secs: s.u64(),
  payment: amountText,
  start_time: s.optional(s.u64()),
  created_at: s.u64(),
  status,
});
const nodeInfo = record<Record<string, Schema<unknown>>, NodeInfo>({
  wallet: addressText,
  chain_id: s.u64(0n),
  total: resources,
  free: resources,
});
const quoteRequest = record<Record<string, Schema<unknown>>, QuoteRequest>({
  resources,
  duration_secs: s.u64(),
  payment: amountText,
  order: s.optional(order),
});
const sessionRequest = record<Record<string, Schema<unknown>>, SessionRequest>({
  address: addressText,
  orders: s.list(order),
});
const headerPair: Schema<[string, string]> = {
  read(v, p) {
    if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'string' || typeof v[1] !== 'string') {
      throw new s.SettingsError(`${p}: expected a [name, value] pair of strings`);
    }
    return [v[0], v[1]];
  },
};
const requestMeta = record<Record<string, Schema<unknown>>, RequestMeta>({
  method: s.string(),
  path: s.string(),
  host: s.optional(s.string()),
  headers: s.list(headerPair),
  caller: s.optional(addressText),
  order_id: s.optional(s.string()),
  scopes: s.list(s.string()),
});

const calls: Record<string, Schema<Call>> = {
  quote: as(s.object({ request: quoteRequest, node: nodeInfo }), (c) => ({ quote: c })),
  check: as(s.object({ order, node: nodeInfo }), (c) => ({ check: c })),
  authorize_session: as(s.object({ request: sessionRequest }), (c) => ({ authorizeSession: c })),
  authorize_request: as(s.object({ request: requestMeta }), (c) => ({ authorizeRequest: c })),
};

/** Parses a fixture from its JSON text; the error names the field. */
export function parseFixture(text: string): Fixture {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FixtureError(`not JSON: ${(e as Error).message}`);
  }
  try {
    const top = s
      .object({ now: s.optional(s.u64()), call: { read: (v: unknown) => v }, expect: s.optional({ read: (v: unknown) => v }) })
      .read(json, '');
    const call = top.call;
    if (typeof call !== 'object' || call === null || Array.isArray(call) || Object.keys(call).length !== 1) {
      throw new s.SettingsError(`call: expected one of ${Object.keys(calls).join(', ')}`);
    }
    const [name, args] = Object.entries(call)[0] as [string, unknown];
    const schema = calls[name];
    if (!Object.hasOwn(calls, name) || schema === undefined) {
      throw new s.SettingsError(`call: unknown call \`${name}\`, expected one of ${Object.keys(calls).join(', ')}`);
    }
    return { now: top.now, call: schema.read(args, `call.${name}`), expect: top.expect };
  } catch (e) {
    if (e instanceof s.SettingsError) throw new FixtureError(e.message);
    throw e;
  }
}

/** The world whose export a call invokes. */
export function worldOf(call: Call): World {
  if ('quote' in call) return 'pricing';
  if ('check' in call) return 'payee';
  return 'authorization';
}

// ---- running natively ----

/** The fixture's clock (or the real one), with a log to stderr. */
export function contextOf(fixture: Fixture): Context {
  const now = fixture.now ?? BigInt(Math.floor(Date.now() / 1000));
  return { now, log: (level, message) => console.error(`[${level}] ${message}`) };
}

export function runPricing(fixture: Fixture, policy: PricingPolicy): Quote {
  if (!('quote' in fixture.call)) throw wrongWorld(fixture, 'pricing');
  return policy.quote(fixture.call.quote.request, fixture.call.quote.node, contextOf(fixture));
}

export function runPayee(fixture: Fixture, policy: PayeePolicy): Decision {
  if (!('check' in fixture.call)) throw wrongWorld(fixture, 'payee');
  return policy.check(fixture.call.check.order, fixture.call.check.node, contextOf(fixture));
}

export function runAuthorization(fixture: Fixture, policy: AuthorizationPolicy): Decision | SessionDecision {
  const call = fixture.call;
  if ('authorizeSession' in call) return policy.authorizeSession(call.authorizeSession.request, contextOf(fixture));
  if ('authorizeRequest' in call) return policy.authorizeRequest(call.authorizeRequest.request, contextOf(fixture));
  throw wrongWorld(fixture, 'authorization');
}

function wrongWorld(fixture: Fixture, policy: World): FixtureError {
  return new FixtureError(`the fixture calls the ${worldOf(fixture.call)} world but the policy is a ${policy} policy`);
}

// ---- comparing: answer -> the JSON the gateway prints ----

const snake = (name: string) => name.replace(/-/g, '_');

/** An answer in the JSON form of `grid-gateway policy run` (and of `expect`). */
export function outcomeJson(call: Call, outcome: Outcome): unknown {
  if ('quote' in call) {
    const q = outcome as Quote;
    return {
      price: canonicalAmount(q.price),
      breakdown: q.breakdown.map((l) => ({ item: l.item, amount: canonicalAmount(l.amount) })),
      refusal: q.refusal ? { kind: snake(q.refusal.kind), reason: q.refusal.reason } : null,
    };
  }
  const d = outcome as Decision | SessionDecision;
  if (d.tag === 'allow') return { decision: 'allow' };
  if (d.tag === 'deny') return { decision: 'deny', reason: d.val };
  return { decision: 'grant', expires_at: jsonNumber(d.val.expiresAt), scopes: d.val.scopes ?? null };
}

function canonicalAmount(text: string): string {
  return amountText.read(text, 'amount');
}

function jsonNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FixtureError(`${v} is beyond what a fixture compares exactly`);
  return Number(v);
}

/** Undefined when the answer matches `expect` (or there is none); else both, as the Rust SDK prints them. */
export function mismatch(fixture: Fixture, outcome: Outcome): string | undefined {
  if (fixture.expect === undefined) return undefined;
  const got = outcomeJson(fixture.call, outcome);
  return deepEqual(got, fixture.expect)
    ? undefined
    : `expected ${JSON.stringify(fixture.expect)}\n     got ${JSON.stringify(got)}`;
}

/** JSON value equality (object key order does not matter, array order does). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every((k) => Object.hasOwn(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}
