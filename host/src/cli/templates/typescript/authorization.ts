// {{name}}: an authorization policy for grid-gateway (world `authorization`).
//
// A session for an address that has an active order, until that order ends or
// session_lifetime_secs pass, whichever comes first; a request under one of
// deny_path_prefixes is denied.

import {
  Address,
  allow,
  deny,
  denySession,
  grant,
  type AuthorizationPolicy,
  type Context,
  type Decision,
  type PolicyDefinition,
  type RequestMeta,
  type SessionDecision,
  type SessionRequest,
  settings as s,
} from '@grid/policy-sdk';

/** The settings (fixtures/settings.json): absent keys take their default, unknown keys are refused. */
export const schema = s.object({
  /** Longest session granted, in seconds. */
  session_lifetime_secs: s.u64(3600n),
  /** Path prefixes refused on every request, e.g. ["/admin"]. */
  deny_path_prefixes: s.list(s.string()),
});
export type Settings = s.Infer<typeof schema>;

function validate(c: Settings): string | undefined {
  if (c.session_lifetime_secs === 0n) return 'session_lifetime_secs must be above 0';
  const bad = c.deny_path_prefixes.find((p) => !p.startsWith('/'));
  if (bad !== undefined) return `deny_path_prefixes: ${JSON.stringify(bad)} must start with '/'`;
  return undefined;
}

export const policy: PolicyDefinition<Settings, AuthorizationPolicy> = {
  settings: schema,
  validate,
  create: (c) => ({
    authorizeSession(request: SessionRequest, ctx: Context): SessionDecision {
      const address = Address.parse(request.address);
      const now = ctx.now;
      let end: bigint | undefined;
      for (const o of request.orders) {
        if (o.status !== 'active' || !address.equals(o.user)) continue;
        const e = (o.startTime ?? now) + o.durationSecs;
        if (e > now && (end === undefined || e > end)) end = e;
      }
      if (end === undefined) return denySession(`${address} has no active order on this node`);
      const cap = now + c.session_lifetime_secs;
      return grant(end < cap ? end : cap);
    },
    authorizeRequest(request: RequestMeta): Decision {
      // Whole segments: "/admin" covers "/admin" and "/admin/x", not "/administrator".
      const prefix = c.deny_path_prefixes.find((p) => {
        const q = p.replace(/\/+$/, '');
        return request.path === q || request.path.startsWith(`${q}/`);
      });
      return prefix === undefined ? allow : deny(`path ${request.path} is not allowed on this node (${prefix})`);
    },
  }),
};
