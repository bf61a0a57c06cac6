// What a policy is: settings read by a schema and checked by `validate`, then one
// function per export of its world. Mirrors guest-sdk/src/policy.rs and context.rs.

import type {
  Decision,
  Level,
  NodeInfo,
  Order,
  Quote,
  QuoteRequest,
  RequestMeta,
  SessionDecision,
  SessionRequest,
} from './types.js';
import { readSettings, type Schema, SettingsError } from './settings.js';

/** What a policy may ask of the host during an evaluation: the time and a log. */
export interface Context {
  /** Unix time in seconds, as the gateway sees it (a fixture's `now` natively). */
  readonly now: bigint;
  /** A line in the gateway's log, tagged with the policy's name. */
  log(level: Level, message: string): void;
}

export interface PricingPolicy {
  quote(request: QuoteRequest, node: NodeInfo, ctx: Context): Quote;
}

export interface PayeePolicy {
  check(order: Order, node: NodeInfo, ctx: Context): Decision;
}

export interface AuthorizationPolicy {
  authorizeSession(request: SessionRequest, ctx: Context): SessionDecision;
  authorizeRequest(request: RequestMeta, ctx: Context): Decision;
}

/** A policy: how its settings read, what else they must satisfy, and how it is made from them. */
export interface PolicyDefinition<S, P> {
  /** The settings document's schema (see settings.ts); "" means every default. */
  settings: Schema<S>;
  /** Checks across fields; returns the message for the operator, or undefined when valid. */
  validate?: (settings: S) => string | undefined;
  /** The policy for valid settings. */
  create: (settings: S) => P;
}

/** Reads and validates a settings document; throws a SettingsError with the operator's message. */
export function parseSettings<S, P>(definition: PolicyDefinition<S, P>, text: string): P {
  const settings = readSettings(definition.settings, text);
  const problem = definition.validate?.(settings);
  if (problem !== undefined) throw new SettingsError(problem);
  return definition.create(settings);
}

/** The message of a settings refusal, or undefined when the settings are accepted. */
export function validateSettings<S, P>(definition: PolicyDefinition<S, P>, text: string): string | undefined {
  try {
    parseSettings(definition, text);
    return undefined;
  } catch (e) {
    if (e instanceof SettingsError) return e.message;
    throw e;
  }
}
