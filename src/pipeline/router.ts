/**
 * Keyword router: picks the expert (adapter) for a query, from a config shaped like the
 * original's `moe_config.json`:
 *
 *   { "experts": { "banking_expert": { "gate_type": "step", "gate_keywords": ["bank", ...] },
 *                  "shared_attention": { "gate_type": "none", "always_active": true } },
 *     "default": "shared_attention" }            // optional; our addition
 *
 * Rule (documented because the original's code is not ours to copy): a keyword matches when it
 * occurs in the lower-cased query at the start of a word ("invest" matches "investing"; multi-word
 * keywords such as "interest rate" match as a phrase). The expert with the most matching keywords
 * wins; ties go to the expert listed first. With no match, the `default` expert is used, else the
 * first `always_active` one, else the first expert listed.
 */
import * as fs from 'node:fs';
import { formatError } from './safetensors';

export interface RouterExpertConfig {
  gate_type?: 'step' | 'none';
  gate_keywords?: string[];
  always_active?: boolean;
  [key: string]: unknown;
}

export interface RouterConfig {
  experts: Record<string, RouterExpertConfig>;
  default?: string;
  [key: string]: unknown;
}

export interface RouteDecision {
  expert: string;
  /** Keywords of the chosen expert found in the query (empty when the default was taken). */
  matched: string[];
  /** True when no keyword matched and the default expert was used. */
  fallback: boolean;
}

/** The keywords of the original demonstrator (moe_config.json), used by the synthetic experts. */
export const ORIGINAL_ROUTER_CONFIG: RouterConfig = {
  experts: {
    banking_expert: {
      gate_type: 'step',
      gate_keywords: ['bank', 'deposit', 'loan', 'mortgage', 'credit', 'savings', 'checking', 'interest rate', 'refinance'],
      always_active: false,
    },
    investment_expert: {
      gate_type: 'step',
      gate_keywords: ['invest', 'portfolio', 'stock', 'bond', 'etf', 'dividend', 'market', 'allocation', 'risk'],
      always_active: false,
    },
    shared_attention: { gate_type: 'none', always_active: true },
  },
  default: 'shared_attention',
};

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class KeywordRouter {
  private readonly names: string[];
  private readonly patterns: Map<string, Array<{ keyword: string; re: RegExp }>>;
  readonly defaultExpert: string;

  constructor(readonly config: RouterConfig) {
    if (typeof config !== 'object' || config === null || typeof config.experts !== 'object' || config.experts === null) {
      throw new TypeError('router config: `experts` must be an object mapping expert names to gates');
    }
    this.names = Object.keys(config.experts);
    if (this.names.length === 0) throw new RangeError('router config: `experts` is empty');
    this.patterns = new Map();
    for (const name of this.names) {
      const e = config.experts[name];
      const kws = e.gate_keywords ?? [];
      if (!Array.isArray(kws) || !kws.every((k) => typeof k === 'string' && k.trim().length > 0)) {
        throw new TypeError(`router config: experts.${name}.gate_keywords must be a list of non-empty strings`);
      }
      const gated = e.gate_type !== 'none';
      this.patterns.set(
        name,
        gated ? kws.map((k) => ({ keyword: k, re: new RegExp(`(^|[^\\p{L}\\p{N}])${escapeRegExp(k.toLowerCase().trim())}`, 'u') })) : [],
      );
    }
    if (config.default !== undefined) {
      if (!this.names.includes(config.default)) throw new RangeError(`router config: default '${config.default}' is not one of the experts (${this.names.join(', ')})`);
      this.defaultExpert = config.default;
    } else {
      this.defaultExpert = this.names.find((n) => config.experts[n].always_active === true) ?? this.names[0];
    }
  }

  static fromFile(file: string): KeywordRouter {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw formatError(`${file}: not readable JSON (${(e as Error).message})`);
    }
    return new KeywordRouter(raw as RouterConfig);
  }

  experts(): string[] {
    return [...this.names];
  }

  route(query: string): RouteDecision {
    if (typeof query !== 'string') throw new TypeError('query must be a string');
    const q = query.toLowerCase();
    let best: string | undefined;
    let bestMatched: string[] = [];
    for (const name of this.names) {
      const matched = this.patterns.get(name)!.filter((p) => p.re.test(q)).map((p) => p.keyword);
      if (matched.length > bestMatched.length) {
        best = name;
        bestMatched = matched;
      }
    }
    if (best === undefined) return { expert: this.defaultExpert, matched: [], fallback: true };
    return { expert: best, matched: bestMatched, fallback: false };
  }
}
