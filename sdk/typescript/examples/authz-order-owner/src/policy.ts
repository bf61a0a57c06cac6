// authz-order-owner in TypeScript: a port of policies/authz-order-owner (same settings,
// same answers on the same fixtures). Sessions only for addresses that own an active
// order on this node; per-request rules from settings.

import {
  type Address,
  type AuthorizationPolicy,
  type Context,
  type Decision,
  type PolicyDefinition,
  type RequestMeta,
  type SessionDecision,
  type SessionRequest,
  allow,
  deny,
  denySession,
  grant,
  settings as s,
} from '@grid/policy-sdk';
import { Address as AddressValue } from '@grid/policy-sdk';

export const schema = s.object({
  /** Longest session granted, in seconds; a session also never outlives the caller's last active order. */
  session_lifetime_secs: s.u64(3600n),
  /** If not empty, only these addresses get sessions. */
  allow: s.list(s.address()),
  /** These addresses never get a session, and their sessions' requests are denied. */
  deny: s.list(s.address()),
  /** HTTP methods refused on every request (compared case-insensitively), e.g. ["TRACE"]. */
  deny_methods: s.list(s.string()),
  /** Path prefixes refused on every request, e.g. ["/admin"]. */
  deny_path_prefixes: s.list(s.string()),
  /** Scopes put on every granted session; absent leaves sessions unscoped. */
  scopes: s.optional(s.list(s.string())),
});
export type Settings = s.Infer<typeof schema>;

const U64_MAX = (1n << 64n) - 1n;
/** `a + b` saturating at u64's top, as the Rust policy's `saturating_add`. */
const saturatingAdd = (a: bigint, b: bigint) => (a + b > U64_MAX ? U64_MAX : a + b);

const contains = (list: Address[], a: Address) => list.some((x) => x.equals(a));

function validate(c: Settings): string | undefined {
  if (c.session_lifetime_secs === 0n) return 'session_lifetime_secs must be above 0';
  const both = c.allow.find((a) => contains(c.deny, a));
  if (both !== undefined) return `${both} is in both allow and deny`;
  const badPrefix = c.deny_path_prefixes.find((p) => !p.startsWith('/'));
  if (badPrefix !== undefined) return `deny_path_prefixes: ${JSON.stringify(badPrefix)} must start with '/'`;
  const badMethod = c.deny_methods.find((m) => !/^[A-Za-z]+$/.test(m));
  if (badMethod !== undefined) return `deny_methods: ${JSON.stringify(badMethod)} is not an HTTP method`;
  return undefined;
}

/**
 * True when `path` is `prefix` or lies under it as whole segments ("/admin" covers "/admin"
 * and "/admin/x", not "/administrator").
 */
export function pathHasPrefix(path: string, prefix: string): boolean {
  const p = prefix.replace(/\/+$/, '');
  if (p === '') return true;
  return path === p || (path.startsWith(p) && path[p.length] === '/');
}

export class OrderOwner implements AuthorizationPolicy {
  /** deny_methods lower-cased, and deny_path_prefixes without trailing slashes (as pathHasPrefix
   * trims them), worked out once per instance rather than on every request. */
  private readonly deniedMethods: Set<string>;
  private readonly deniedPrefixes: Array<{ prefix: string; trimmed: string }>;

  constructor(readonly settings: Settings) {
    this.deniedMethods = new Set(settings.deny_methods.map((m) => m.toLowerCase()));
    this.deniedPrefixes = settings.deny_path_prefixes.map((prefix) => ({ prefix, trimmed: prefix.replace(/\/+$/, '') }));
  }

  private refusedAddress(address: Address): string | undefined {
    if (contains(this.settings.deny, address)) return `${address} is denied by the node's policy`;
    if (this.settings.allow.length > 0 && !contains(this.settings.allow, address)) {
      return `${address} is not on the node's allow list`;
    }
    return undefined;
  }

  authorizeSession(request: SessionRequest, ctx: Context): SessionDecision {
    const address = AddressValue.parse(request.address);
    const refused = this.refusedAddress(address);
    if (refused !== undefined) return denySession(refused);
    const now = ctx.now;
    // The session lasts until the last of the caller's active orders ends, capped by the
    // configured lifetime. An order without a start time is counted from now.
    let lastEnd: bigint | undefined;
    for (const o of request.orders) {
      if (o.status !== 'active' || !address.equals(o.user)) continue;
      const end = saturatingAdd(o.startTime ?? now, o.durationSecs);
      if (end > now && (lastEnd === undefined || end > lastEnd)) lastEnd = end;
    }
    if (lastEnd === undefined) return denySession(`${address} has no active order on this node`);
    const cap = saturatingAdd(now, this.settings.session_lifetime_secs);
    return grant(lastEnd < cap ? lastEnd : cap, this.settings.scopes);
  }

  authorizeRequest(request: RequestMeta): Decision {
    if (request.caller !== undefined) {
      const refused = this.refusedAddress(AddressValue.parse(request.caller));
      if (refused !== undefined) return deny(refused);
    }
    if (this.deniedMethods.has(request.method.toLowerCase())) {
      return deny(`method ${request.method} is not allowed on this node`);
    }
    const path = request.path;
    // pathHasPrefix with its prefixes trimmed already; an index loop, not for-of (whose
    // iterator protocol an interpreter runs in full)
    const prefixes = this.deniedPrefixes;
    for (let i = 0; i < prefixes.length; i++) {
      const { prefix, trimmed: p } = prefixes[i]!;
      if (p === '' || path === p || (path.startsWith(p) && path[p.length] === '/')) {
        return deny(`path ${path} is not allowed on this node (${prefix})`);
      }
    }
    return allow;
  }
}

export const orderOwner: PolicyDefinition<Settings, AuthorizationPolicy> = {
  settings: schema,
  validate,
  create: (settings) => new OrderOwner(settings),
};
