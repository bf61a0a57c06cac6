// {{name}}: a pricing policy for grid-gateway (world `pricing`).
//
// price = ⌈cpu_core_per_second × duration × cores⌉, one breakdown line "cpu".
// Refused, in this order: a duration below min_duration_secs, more than the node has
// free, a payment below the price.

import {
  Amount,
  accept,
  firstShortfall,
  type NodeInfo,
  type PolicyDefinition,
  type PricingPolicy,
  type Quote,
  type QuoteRequest,
  priceLine,
  refuse,
  settings as s,
} from '@grid/policy-sdk';

/** The settings (fixtures/settings.json): absent keys take their default, unknown keys are refused. */
export const schema = s.object({
  /** One CPU core for one second, in the token's smallest unit. */
  cpu_core_per_second: s.amount('5555555555556'),
  /** Shortest order sold, in seconds. */
  min_duration_secs: s.u64(60n),
});
export type Settings = s.Infer<typeof schema>;

export const policy: PolicyDefinition<Settings, PricingPolicy> = {
  settings: schema,
  validate: (c) => (c.cpu_core_per_second.isZero() ? 'cpu_core_per_second must be above 0' : undefined),
  create: (c) => ({
    quote(request: QuoteRequest, node: NodeInfo): Quote {
      if (request.durationSecs < c.min_duration_secs) {
        const reason = `duration ${request.durationSecs}s is below the ${c.min_duration_secs}s this node sells at least`;
        return refuse(Amount.ZERO, [], 'duration-out-of-range', reason);
      }
      const short = firstShortfall(request.resources, node.free);
      if (short !== undefined) return refuse(Amount.ZERO, [], 'insufficient-capacity', `not enough free capacity: ${short}`);
      const price = c.cpu_core_per_second.checkedMul(request.durationSecs)?.mulDivCeil(request.resources.cpuMillis, 1000n);
      if (price === undefined) return refuse(Amount.ZERO, [], 'other', 'the price does not fit in a u256');
      const breakdown = [priceLine('cpu', price)];
      if (Amount.parse(request.payment).lt(price)) {
        return refuse(price, breakdown, 'insufficient-payment', `payment ${request.payment} is below the price ${price}`);
      }
      return accept(price, breakdown);
    },
  }),
};
