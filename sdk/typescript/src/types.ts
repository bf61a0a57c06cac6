// The values a policy sees and returns: the WIT records of wit/types.wit as the generated
// declarations (src/generated/wit) type them in JavaScript (kebab-case names become
// camelCase, u64 is a BigInt, an option is an optional field, a variant is `{ tag, val }`),
// with the helpers of guest-sdk/src/types.rs.
/// <reference path="./generated/wit/pricing.d.ts" />
/// <reference path="./generated/wit/payee.d.ts" />
/// <reference path="./generated/wit/authorization.d.ts" />

import type {
  Decision,
  PriceLine,
  Quote,
  RefusalKind,
  RequestMeta,
  Resources,
  SessionDecision,
  SessionGrant,
} from 'grid:policy/types@0.1.0';
import { Amount } from './amount.js';
import { formatBytes, formatCpuMillis } from './quantity.js';

export type {
  Address as AddressText,
  Amount as AmountText,
  Decision,
  NodeInfo,
  Order,
  OrderStatus,
  PriceLine,
  Quote,
  QuoteRequest,
  Refusal,
  RefusalKind,
  RequestMeta,
  Resources,
  SessionDecision,
  SessionGrant,
  SessionRequest,
} from 'grid:policy/types@0.1.0';
export type { Level } from 'grid:policy/host@0.1.0';

/** A quote that takes the order at its payment. */
export function accept(price: Amount, breakdown: PriceLine[]): Quote {
  return { price: price.toString(), breakdown };
}

/** A quote that refuses, with the kind (mapped to the gateway's error code) and a reason. */
export function refuse(price: Amount, breakdown: PriceLine[], kind: RefusalKind, reason: string): Quote {
  return { price: price.toString(), breakdown, refusal: { kind, reason } };
}

/** One line of a price breakdown. */
export function priceLine(item: string, amount: Amount): PriceLine {
  return { item, amount: amount.toString() };
}

export const allow: Decision = Object.freeze({ tag: 'allow' });

export function deny(reason: string): Decision {
  return { tag: 'deny', val: reason };
}

export function grant(expiresAt: bigint, scopes?: string[]): SessionDecision {
  const g: SessionGrant = { expiresAt };
  if (scopes !== undefined) g.scopes = [...scopes];
  return { tag: 'grant', val: g };
}

export function denySession(reason: string): SessionDecision {
  return { tag: 'deny', val: reason };
}

/** True when `want` fits in `available` on every dimension, GPU model compared case-insensitively. */
export function fitsIn(want: Resources, available: Resources): boolean {
  return (
    want.cpuMillis <= available.cpuMillis &&
    want.memoryBytes <= available.memoryBytes &&
    want.storageBytes <= available.storageBytes &&
    want.gpus <= available.gpus &&
    (want.gpus === 0 ||
      want.gpuModel === undefined ||
      (available.gpuModel !== undefined && want.gpuModel.toLowerCase() === available.gpuModel.toLowerCase()))
  );
}

/** The first dimension `want` lacks in `available`, as a sentence ("cpu: asked 16, free 8"). */
export function firstShortfall(want: Resources, available: Resources): string | undefined {
  if (want.cpuMillis > available.cpuMillis) {
    return `cpu: asked ${formatCpuMillis(want.cpuMillis)}, free ${formatCpuMillis(available.cpuMillis)}`;
  }
  if (want.memoryBytes > available.memoryBytes) {
    return `memory: asked ${formatBytes(want.memoryBytes)}, free ${formatBytes(available.memoryBytes)}`;
  }
  if (want.storageBytes > available.storageBytes) {
    return `storage: asked ${formatBytes(want.storageBytes)}, free ${formatBytes(available.storageBytes)}`;
  }
  if (want.gpus > available.gpus) return `gpu: asked ${want.gpus}, free ${available.gpus}`;
  // What fitsIn checks beyond the four counts above, without checking them again.
  if (
    want.gpus !== 0 &&
    want.gpuModel !== undefined &&
    (available.gpuModel === undefined || want.gpuModel.toLowerCase() !== available.gpuModel.toLowerCase())
  ) {
    return `gpu model: asked ${want.gpuModel ?? 'any'}, offered ${available.gpuModel ?? 'none'}`;
  }
  return undefined;
}

/** A request header by name (case-insensitive). */
export function header(request: RequestMeta, name: string): string | undefined {
  const lower = name.toLowerCase();
  return request.headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}
