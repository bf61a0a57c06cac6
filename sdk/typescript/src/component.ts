// The exports of a component: turns a policy definition into the functions componentize-js
// binds to the world's exports. The component's entry module passes the host import:
//
//   import * as host from 'grid:policy/host@0.1.0';
//   export const { validateSettings, quote } = pricingExports(linearPricing, host);

import type { Decision, Level, NodeInfo, Order, Quote, QuoteRequest, RequestMeta, SessionDecision, SessionRequest } from './types.js';
import {
  type AuthorizationPolicy,
  type Context,
  type PayeePolicy,
  type PolicyDefinition,
  type PricingPolicy,
  parseSettings,
  validateSettings,
} from './policy.js';

/** The `grid:policy/host` import as componentize-js provides it. */
export interface Host {
  log(level: Level, message: string): void;
  settings(): string;
  now(): bigint;
}

/** `validate-settings`: a refusal is thrown as its message, which becomes the `err` of the result. */
function validator<S, P>(definition: PolicyDefinition<S, P>): (text: string) => void {
  return (text: string) => {
    const problem = validateSettings(definition, text);
    if (problem !== undefined) throw problem;
  };
}

/**
 * The policy for this instance's settings, made on first use and kept: the host validated
 * the same settings text before putting this version into service.
 */
function instance<S, P>(definition: PolicyDefinition<S, P>, host: Host): () => P {
  let policy: P | undefined;
  return () => (policy ??= parseSettings(definition, host.settings()));
}

function context(host: Host): Context {
  return {
    get now() {
      return host.now();
    },
    log: (level, message) => host.log(level, message),
  };
}

export function pricingExports<S>(definition: PolicyDefinition<S, PricingPolicy>, host: Host) {
  const policy = instance(definition, host);
  const ctx = context(host);
  return {
    validateSettings: validator(definition),
    quote: (request: QuoteRequest, node: NodeInfo): Quote => policy().quote(request, node, ctx),
  };
}

export function payeeExports<S>(definition: PolicyDefinition<S, PayeePolicy>, host: Host) {
  const policy = instance(definition, host);
  const ctx = context(host);
  return {
    validateSettings: validator(definition),
    check: (order: Order, node: NodeInfo): Decision => policy().check(order, node, ctx),
  };
}

export function authorizationExports<S>(definition: PolicyDefinition<S, AuthorizationPolicy>, host: Host) {
  const policy = instance(definition, host);
  const ctx = context(host);
  return {
    validateSettings: validator(definition),
    authorizeSession: (request: SessionRequest): SessionDecision => policy().authorizeSession(request, ctx),
    authorizeRequest: (request: RequestMeta): Decision => policy().authorizeRequest(request, ctx),
  };
}
