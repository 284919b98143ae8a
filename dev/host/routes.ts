/**
 * ASP.NET Core route templates as the Functions host uses them for HTTP triggers: literal segments
 * (case-insensitive), `{name}`, optional `{name?}`, defaults `{name=value}`, catch-all `{*name}`, and
 * inline constraints `{name:int}`, `{name:length(3,8)}`, `{name:regex(^a+$)}`, ….
 */

type Constraint = (value: string) => boolean;

interface RouteParameter {
  name: string;
  optional: boolean;
  catchAll: boolean;
  defaultValue?: string;
  constraints: Constraint[];
}

interface RouteSegment {
  /** Parts of one path segment: literal text and parameters (usually a single part). */
  parts: (string | RouteParameter)[];
}

export interface RouteTemplate {
  template: string;
  /** Orders routes as ASP.NET does: literals before parameters, constrained before free, catch-all last. */
  precedence: number[];
  match(path: string): Record<string, string> | undefined;
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function numberArgs(args: string): number[] {
  return args.split(',').map((a) => Number(a.trim()));
}

function constraintFor(spec: string, template: string): Constraint {
  const open = spec.indexOf('(');
  const name = (open < 0 ? spec : spec.slice(0, open)).toLowerCase();
  const args = open < 0 ? '' : spec.slice(open + 1, spec.lastIndexOf(')'));
  switch (name) {
    case 'int':
      return (v) => /^-?\d+$/.test(v) && Math.abs(Number(v)) <= 2 ** 31;
    case 'long':
      return (v) => /^-?\d+$/.test(v);
    case 'bool':
      return (v) => /^(true|false)$/i.test(v);
    case 'decimal':
    case 'double':
    case 'float':
      return (v) => NUMBER.test(v);
    case 'guid':
      return (v) => /^[{(]?[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}[)}]?$/i.test(v);
    case 'datetime':
      return (v) => !Number.isNaN(Date.parse(v));
    case 'alpha':
      return (v) => /^[a-z]+$/i.test(v);
    case 'min':
      return (v) => /^-?\d+$/.test(v) && Number(v) >= (numberArgs(args)[0] ?? 0);
    case 'max':
      return (v) => /^-?\d+$/.test(v) && Number(v) <= (numberArgs(args)[0] ?? 0);
    case 'range': {
      const [min = 0, max = 0] = numberArgs(args);
      return (v) => /^-?\d+$/.test(v) && Number(v) >= min && Number(v) <= max;
    }
    case 'length': {
      const [a = 0, b] = numberArgs(args);
      return (v) => (b === undefined ? v.length === a : v.length >= a && v.length <= b);
    }
    case 'minlength':
      return (v) => v.length >= (numberArgs(args)[0] ?? 0);
    case 'maxlength':
      return (v) => v.length <= (numberArgs(args)[0] ?? 0);
    case 'regex': {
      const regex = new RegExp(args, 'i');
      return (v) => regex.test(v);
    }
    case 'required':
      return (v) => v.length > 0;
    default:
      throw new Error(`Route "${template}": unknown constraint "${spec}"`);
  }
}

/** Splits "name:int:regex(a:b)" on colons that are not inside parentheses. */
function splitConstraints(body: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of body) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ':' && depth === 0) {
      parts.push(current);
      current = '';
    } else {
      current += ch;
    }
  }
  parts.push(current);
  return parts;
}

function parseParameter(body: string, template: string): RouteParameter {
  let text = body.trim();
  const catchAll = text.startsWith('*');
  text = text.replace(/^\*{1,2}/, '');
  let defaultValue: string | undefined;
  let optional = catchAll;
  const [head = '', ...specs] = splitConstraints(text);
  let name = head;
  // "?" and "=default" follow the last constraint, or the name when there are none.
  const last = specs.length ? specs.length - 1 : -1;
  let tail = last >= 0 ? (specs[last] ?? '') : name;
  const eq = tail.indexOf('=');
  if (eq >= 0 && !tail.slice(0, eq).includes('(')) {
    defaultValue = tail.slice(eq + 1);
    tail = tail.slice(0, eq);
    optional = true;
  }
  if (tail.endsWith('?')) {
    tail = tail.slice(0, -1);
    optional = true;
  }
  if (last >= 0) specs[last] = tail;
  else name = tail;
  if (!/^[A-Za-z_][\w]*$/.test(name)) throw new Error(`Route "${template}": invalid parameter "{${body}}"`);
  return {
    name,
    optional,
    catchAll,
    defaultValue,
    constraints: specs.map((s) => constraintFor(s, template)),
  };
}

function parseSegment(text: string, template: string): RouteSegment {
  const parts: (string | RouteParameter)[] = [];
  let rest = text;
  while (rest.length > 0) {
    const open = rest.indexOf('{');
    if (open < 0) {
      parts.push(rest);
      break;
    }
    if (open > 0) parts.push(rest.slice(0, open));
    const close = rest.indexOf('}', open);
    if (close < 0) throw new Error(`Route "${template}": unclosed "{"`);
    parts.push(parseParameter(rest.slice(open + 1, close), template));
    rest = rest.slice(close + 1);
  }
  return { parts };
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function segmentRank(segment: RouteSegment): number {
  const [only] = segment.parts;
  if (segment.parts.length === 1 && typeof only === 'string') return 1;
  if (segment.parts.length > 1) return 2;
  const p = only as RouteParameter;
  if (p.catchAll) return 5;
  if (p.optional) return 4;
  return p.constraints.length ? 2 : 3;
}

export function parseRoute(template: string): RouteTemplate {
  const clean = template.replace(/^[~/]+|\/+$/g, '');
  const segments = clean ? clean.split('/').map((s) => parseSegment(s, template)) : [];
  const params: RouteParameter[] = [];
  let pattern = '';
  for (const segment of segments) {
    const [only] = segment.parts;
    const single = segment.parts.length === 1 && typeof only !== 'string' ? only : undefined;
    if (single?.catchAll) {
      params.push(single);
      pattern += '(?:/(.*))?';
    } else if (single?.optional) {
      // An optional parameter alone in its segment makes the whole segment optional.
      params.push(single);
      pattern += '(?:/([^/]+))?';
    } else {
      pattern += '/';
      for (const part of segment.parts) {
        if (typeof part === 'string') {
          pattern += escapeRegex(part);
        } else {
          params.push(part);
          pattern += part.optional ? '([^/]*?)' : '([^/]+?)';
        }
      }
    }
  }
  const regex = new RegExp(`^${pattern}/?$`, 'i');
  return {
    template: clean,
    precedence: segments.map(segmentRank),
    match(path) {
      const normalized = `/${path.replace(/^\/+/, '')}`.replace(/\/+$/, '') || '';
      const found = regex.exec(normalized);
      if (!found) return undefined;
      const values: Record<string, string> = {};
      for (const [index, param] of params.entries()) {
        const raw = found[index + 1];
        const value = raw === undefined || raw === '' ? param.defaultValue : safeDecode(raw, param.catchAll);
        if (value === undefined) {
          if (!param.optional) return undefined;
          continue;
        }
        if (!param.constraints.every((check) => check(value))) return undefined;
        values[param.name] = value;
      }
      return values;
    },
  };
}

function safeDecode(value: string, keepSlashes: boolean): string {
  try {
    return keepSlashes ? value.split('/').map(decodeURIComponent).join('/') : decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** Sorts routes so the most specific template is tried first. */
export function compareRoutes(a: RouteTemplate, b: RouteTemplate): number {
  const length = Math.max(a.precedence.length, b.precedence.length);
  for (let i = 0; i < length; i++) {
    const diff = (a.precedence[i] ?? 0) - (b.precedence[i] ?? 0);
    if (diff !== 0) return diff;
  }
  return 0;
}
