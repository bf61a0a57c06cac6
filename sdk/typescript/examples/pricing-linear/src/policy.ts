// pricing-linear in TypeScript: a port of policies/pricing-linear (same settings, same
// answers on the same fixtures).
//
// price = duration × (cpu cores × cpu rate + memory GiB × memory rate
//                     + storage GiB × storage rate + gpus × gpu rate of the model)
//
// Each part is rounded up to the token's smallest unit, so the node never under-charges by
// rounding. The quote is refused, with the reason, when the duration is outside the
// configured range, a GPU model has no price, the node lacks free capacity, or the payment
// is below the price.

import {
  Amount,
  accept,
  firstShortfall,
  type PolicyDefinition,
  type PriceLine,
  type PricingPolicy,
  type Quote,
  type NodeInfo,
  type QuoteRequest,
  type Refusal,
  type Resources,
  priceLine,
  refuse,
  settings as s,
} from '@grid/policy-sdk';

const GIB = 1n << 30n;
/** The key of `gpu_per_second` that prices GPUs of any model not listed by name. */
export const ANY_GPU_MODEL = '*';

/**
 * Rates are per second in the token's smallest unit; the defaults assume an 18-decimal
 * token and price a core-hour at 0.02, a GiB-hour of memory at 0.005, of storage at 0.0001
 * and a GPU-hour at 1.
 */
export const schema = s.object({
  cpu_core_per_second: s.amount('5555555555556'),
  memory_gib_per_second: s.amount('1388888888889'),
  storage_gib_per_second: s.amount('27777777778'),
  gpu_per_second: s.map(s.amount(), () => new Map([[ANY_GPU_MODEL, Amount.parse('277777777777778')]])),
  min_duration_secs: s.u64(60n),
  max_duration_secs: s.u64(30n * 24n * 3600n),
});
export type Settings = s.Infer<typeof schema>;

function validate(c: Settings): string | undefined {
  if (c.min_duration_secs > c.max_duration_secs) {
    return `min_duration_secs (${c.min_duration_secs}) is above max_duration_secs (${c.max_duration_secs})`;
  }
  if (c.max_duration_secs === 0n) return 'max_duration_secs must be above 0';
  for (const model of c.gpu_per_second.keys()) {
    if (model !== ANY_GPU_MODEL && model.toLowerCase() !== model) {
      return `gpu_per_second: model ${JSON.stringify(model)} must be lower case`;
    }
  }
  return undefined;
}

function overflow(): RefusalError {
  return new RefusalError({ kind: 'other', reason: 'the price does not fit in a u256' });
}

/** A price and its breakdown. */
export interface Priced {
  price: Amount;
  breakdown: PriceLine[];
}

class RefusalError extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.reason);
  }
}

export class LinearPricing implements PricingPolicy {
  constructor(readonly settings: Settings) {}

  /** The GPU rate for a model, falling back to "*". */
  private gpuRate(model: string | undefined): [string, Amount] | undefined {
    const named = model?.toLowerCase();
    const rate = named === undefined ? undefined : this.settings.gpu_per_second.get(named);
    if (named !== undefined && rate !== undefined) return [named, rate];
    const any = this.settings.gpu_per_second.get(ANY_GPU_MODEL);
    return any === undefined ? undefined : [named ?? ANY_GPU_MODEL, any];
  }

  /**
   * The price and its breakdown; throws the refusal when a resource has no price or a u256
   * overflows. Each part is rate × duration × quantity / unit, rounded up, the product taken
   * exactly; written out rather than looped over a list of parts, which costs a quote more
   * than its arithmetic in a component's interpreter.
   */
  price(resources: Resources, durationSecs: bigint): Priced {
    const s = this.settings;
    const cpu = s.cpu_core_per_second.checkedMul(durationSecs)?.mulDivCeil(resources.cpuMillis, 1000n);
    const memory = s.memory_gib_per_second.checkedMul(durationSecs)?.mulDivCeil(resources.memoryBytes, GIB);
    const storage = s.storage_gib_per_second.checkedMul(durationSecs)?.mulDivCeil(resources.storageBytes, GIB);
    if (cpu === undefined || memory === undefined || storage === undefined) throw overflow();
    const breakdown = [priceLine('cpu', cpu), priceLine('memory', memory), priceLine('storage', storage)];
    let total = cpu.checkedAdd(memory)?.checkedAdd(storage);
    if (resources.gpus > 0) {
      const rate = this.gpuRate(resources.gpuModel);
      if (rate === undefined) {
        throw new RefusalError({
          kind: 'unsupported-resource',
          reason: `gpu model ${resources.gpuModel ?? '(any)'} is not sold here`,
        });
      }
      const gpu = rate[1].checkedMul(durationSecs)?.mulDivCeil(BigInt(resources.gpus), 1n);
      if (gpu === undefined) throw overflow();
      breakdown.push(priceLine(`gpu:${rate[0]}`, gpu));
      total = total?.checkedAdd(gpu);
    }
    if (total === undefined) throw overflow();
    return { price: total, breakdown };
  }

  quote(request: QuoteRequest, node: NodeInfo): Quote {
    const d = request.durationSecs;
    const { min_duration_secs: min, max_duration_secs: max } = this.settings;
    if (d < min || d > max) {
      return refuse(Amount.ZERO, [], 'duration-out-of-range', `duration ${d}s is outside the ${min}s..=${max}s this node sells`);
    }
    // A record, not a destructured tuple: array destructuring runs the iterator protocol,
    // which an interpreter pays for in full.
    let priced: Priced;
    try {
      priced = this.price(request.resources, d);
    } catch (e) {
      if (e instanceof RefusalError) return { price: '0', breakdown: [], refusal: e.refusal };
      throw e;
    }
    const { price, breakdown } = priced;
    const shortfall = firstShortfall(request.resources, node.free);
    if (shortfall !== undefined) {
      return refuse(price, breakdown, 'insufficient-capacity', `not enough free capacity: ${shortfall}`);
    }
    const payment = Amount.parse(request.payment);
    if (payment.lt(price)) {
      return refuse(price, breakdown, 'insufficient-payment', `payment ${payment} is below the price ${price}`);
    }
    return accept(price, breakdown);
  }
}

export const linearPricing: PolicyDefinition<Settings, PricingPolicy> = {
  settings: schema,
  validate,
  create: (settings) => new LinearPricing(settings),
};
