// {{name}}: a payee policy for grid-gateway (world `payee`).
//
// An order is accepted when its payee is the node's own wallet or one of `payees`.

import { allow, deny, sameAddress, type Decision, type NodeInfo, type Order, type PayeePolicy, type PolicyDefinition, settings as s } from '@grid/policy-sdk';

/** The settings (fixtures/settings.json): absent keys take their default, unknown keys are refused. */
export const schema = s.object({
  /** Payees accepted besides the node's own wallet. */
  payees: s.list(s.address()),
});
export type Settings = s.Infer<typeof schema>;

export const policy: PolicyDefinition<Settings, PayeePolicy> = {
  settings: schema,
  create: (c) => ({
    check(order: Order, node: NodeInfo): Decision {
      if (sameAddress(order.payee, node.wallet) || c.payees.some((p) => p.equals(order.payee))) return allow;
      return deny(`payee ${order.payee} is not accepted by this node`);
    },
  }),
};
