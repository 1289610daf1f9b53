/**
 * A tiny XML model and writer for property tests: the same document written
 * canonically, or with the freedoms XML allows (white space between
 * elements and attributes, either quote, attributes in any order, comments
 * between elements, entities or character references for special
 * characters), so a test can check that none of them changes a decision.
 */

export type XmlNode = { readonly name: string; readonly attrs: readonly (readonly [string, string])[]; readonly children: readonly XmlNode[]; readonly text?: string };

export function el(name: string, attrs: Record<string, string> = {}, ...children: XmlNode[]): XmlNode {
  return { name, attrs: Object.entries(attrs), children };
}

export function textEl(name: string, text: string): XmlNode {
  return { name, attrs: [], children: [], text };
}

/** Choices made while writing; `canonical` always takes the first. */
export interface Style {
  pick(count: number): number;
}

export const canonical: Style = { pick: () => 0 };

/** A small deterministic generator (mulberry32) so fast-check can shrink a style to its seed. */
export function seededStyle(seed: number): Style {
  let state = seed >>> 0;
  return {
    pick(count: number): number {
      state = (state + 0x6d2b79f5) >>> 0;
      let t = state;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) % count);
    },
  };
}

const SPACES = ['', ' ', '\n  ', '\t', '\r\n'];
const COMMENTS = ['', '<!-- x -->', '<!--\n a comment with <tags> & ampersands\n-->', '<!---->'];

function escaped(value: string, style: Style, quote: string): string {
  const forms: Record<string, string[]> = { '&': ['&amp;', '&#38;', '&#x26;'], '<': ['&lt;', '&#60;'], '>': ['&gt;', '>'], "'": ['&apos;', '&#39;'], '"': ['&quot;', '&#34;'] };
  return [...value]
    .map((c) => {
      const options = forms[c];
      if (options === undefined) return c;
      // A quote inside the other quote may stay as it is.
      if ((c === "'" || c === '"') && c !== quote) return [c, ...options][style.pick(options.length + 1)] ?? c;
      return options[style.pick(options.length)] ?? c;
    })
    .join('');
}

function attributes(node: XmlNode, style: Style): string {
  const attrs = [...node.attrs];
  for (let i = attrs.length - 1; i > 0; i--) {
    const j = style.pick(i + 1);
    [attrs[i], attrs[j]] = [attrs[j]!, attrs[i]!];
  }
  return attrs
    .map(([name, value]) => {
      const quote = style.pick(2) === 0 ? "'" : '"';
      const space = ` ${SPACES[style.pick(SPACES.length)] ?? ''}`;
      return `${space}${name}=${quote}${escaped(value, style, quote)}${quote}`;
    })
    .join('');
}

export function render(node: XmlNode, style: Style = canonical): string {
  const open = `<${node.name}${attributes(node, style)}${SPACES[style.pick(SPACES.length)] ?? ''}`;
  if (node.text !== undefined) return `${open}>${escaped(node.text, style, '')}</${node.name}>`;
  if (node.children.length === 0 && style.pick(2) === 0) return `${open}/>`;
  const between = (): string => `${SPACES[style.pick(SPACES.length)] ?? ''}${COMMENTS[style.pick(COMMENTS.length)] ?? ''}${SPACES[style.pick(SPACES.length)] ?? ''}`;
  return `${open}>${node.children.map((c) => between() + render(c, style)).join('')}${between()}</${node.name}>`;
}
