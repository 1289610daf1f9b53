import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { PolicyRefused, PolicyRule, refuse, shown } from './refusal.js';

/**
 * Untrusted XML text (a domain definition on a hook's stdin) parsed once,
 * within limits, into a plain element tree the policy reads. fast-xml-parser
 * does the lexing; this module decides what is accepted: well-formed text
 * only (its validator first, as its parser is lenient), one root element,
 * the five XML entities and numeric character references but no DOCTYPE
 * at all (an `<!ATTLIST>` gives elements default attributes libvirt would
 * see and the parser would not), a bounded size, depth and element count.
 *
 * libvirt reads attributes with xmlGetProp, which ignores namespaces, and
 * compares element names without their prefix: `<source x:file='...'>` or
 * `<x:source>` could be read by libvirt and not by the policy. So a prefixed
 * attribute (other than an xmlns declaration) on an element the policy
 * reads, and a prefixed element whose local name is one the policy reads,
 * are refused.
 */

export interface XmlElement {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: readonly XmlElement[];
  /** The element's own text (CDATA included), trimmed; child elements' text is theirs. */
  readonly text: string;
}

/** libvirt domain XML is a few KiB; a MiB leaves room for hundreds of devices. */
export const XML_BYTES_MAX = 1024 * 1024;
export const XML_ELEMENTS_MAX = 20_000;
/** libvirt's deepest domain elements are about 8 levels down. */
export const XML_LEVELS_MAX = 32;

const XML_ELEMENT = '<?xml>';

/** The elements whose attributes or text the policy reads (domain-xml.ts, domain-disk.ts, domain-lease.ts). */
const READ_ELEMENTS: ReadonlySet<string> = new Set(['domain', 'name', 'uuid', 'devices', 'emulator', 'seclabel', 'label', 'disk', 'driver', 'source', 'host', 'target', 'readonly', 'shareable', 'lease', 'lockspace', 'key']);

function checkNamespaces(name: string, attributes: ReadonlyMap<string, string>): void {
  const colon = name.indexOf(':');
  if (colon >= 0 && READ_ELEMENTS.has(name.slice(colon + 1))) {
    refuse(PolicyRule.xml, `<${name}>`, `is a prefixed element libvirt reads as <${name.slice(colon + 1)}> (it ignores namespaces) and the policy would not`);
  }
  if (!READ_ELEMENTS.has(name)) return;
  for (const attribute of attributes.keys()) {
    if (attribute.includes(':') && !attribute.startsWith('xmlns:')) {
      refuse(PolicyRule.xml, `<${name}>`, `has the namespace-prefixed attribute ${shown(attribute)}: libvirt reads attributes by local name, ignoring namespaces, and could read another value than the policy`);
    }
  }
}

/** Refuses a DOCTYPE in the prolog (after the XML declaration, comments, processing instructions and whitespace). */
function checkNoDoctype(text: string): void {
  let at = text.startsWith('\uFEFF') ? 1 : 0;
  for (;;) {
    while (at < text.length && ' \t\r\n'.includes(text[at]!)) at += 1;
    if (text.startsWith('<?', at)) {
      const end = text.indexOf('?>', at + 2);
      if (end < 0) return;
      at = end + 2;
    } else if (text.startsWith('<!--', at)) {
      const end = text.indexOf('-->', at + 4);
      if (end < 0) return;
      at = end + 3;
    } else {
      if (text.startsWith('<!DOCTYPE', at)) refuse(PolicyRule.xml, XML_ELEMENT, 'has a DOCTYPE (libvirt never writes one; its declarations could give elements attributes the policy would not see)');
      return;
    }
  }
}

const NAMED_ENTITIES: Readonly<Record<string, string>> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
const REFERENCE = /&([^;&\s]{0,16});?/g;

/** XML 1.0 Char production: what a character reference may name. */
function isXmlChar(code: number): boolean {
  return code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code <= 0xd7ff) || (code >= 0xe000 && code <= 0xfffd) || (code >= 0x10000 && code <= 0x10ffff);
}

function referenced(body: string): string {
  const named = NAMED_ENTITIES[body];
  if (named !== undefined && Object.hasOwn(NAMED_ENTITIES, body)) return named;
  const numeric = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(body);
  const code = numeric === null ? NaN : numeric[1] !== undefined ? Number.parseInt(numeric[1], 16) : Number(numeric[2]);
  if (!isXmlChar(code)) refuse(PolicyRule.xml, XML_ELEMENT, `has the reference ${shown(`&${body};`)}, which is not an XML entity or character`);
  return String.fromCodePoint(code);
}

/** The parser's default decoder leaves `&#47;` undecoded; this one decodes it and refuses what it does not know. */
const strictEntities = {
  setExternalEntities: (): void => undefined,
  addInputEntities: (entities: Record<string, string>): void => {
    if (Object.keys(entities).length > 0) refuse(PolicyRule.xml, XML_ELEMENT, 'declares DOCTYPE entities (libvirt never writes them; they could expand without bound)');
  },
  reset: (): void => undefined,
  setXmlVersion: (): void => undefined,
  decode: (text: string): string =>
    text.replace(REFERENCE, (whole, body: string) => {
      if (!whole.endsWith(';')) refuse(PolicyRule.xml, XML_ELEMENT, `has a bare '&' in ${shown(text)}`);
      return referenced(body);
    }),
};

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  // Attribute values stay exactly as written (a path may end in a space); element text is trimmed below.
  trimValues: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  cdataPropName: '#cdata',
  entityDecoder: strictEntities,
  maxNestedTags: XML_LEVELS_MAX,
});

type OrderedNode = Record<string, unknown>;

class TreeBuilder {
  private elements = 0;

  element(node: OrderedNode): XmlElement | string {
    const name = Object.keys(node).find((key) => key !== ':@');
    if (name === undefined) refuse(PolicyRule.xml, XML_ELEMENT, 'has an empty node');
    if (name === '#text') return String(node[name]);
    if (name === '#cdata') return this.texts(node[name]).join('');
    this.elements += 1;
    if (this.elements > XML_ELEMENTS_MAX) refuse(PolicyRule.xml, XML_ELEMENT, `has more than ${XML_ELEMENTS_MAX} elements`);
    const attributes = new Map(Object.entries((node[':@'] ?? {}) as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
    checkNamespaces(name, attributes);
    const children: XmlElement[] = [];
    const text: string[] = [];
    for (const child of this.nodes(node[name])) {
      const built = this.element(child);
      if (typeof built === 'string') text.push(built);
      else children.push(built);
    }
    return { name, attributes, children, text: text.join('').trim() };
  }

  private texts(value: unknown): string[] {
    return this.nodes(value).map((n) => String(n['#text'] ?? ''));
  }

  private nodes(value: unknown): OrderedNode[] {
    return Array.isArray(value) ? (value as OrderedNode[]) : [];
  }
}

function decodedUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return refuse(PolicyRule.xml, XML_ELEMENT, 'is not valid UTF-8');
  }
}

function checkedText(input: string | Uint8Array): string {
  const bytes = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (bytes > XML_BYTES_MAX) refuse(PolicyRule.xml, XML_ELEMENT, `is ${bytes} bytes, at most ${XML_BYTES_MAX} are read`);
  return typeof input === 'string' ? input : decodedUtf8(input);
}

function parsed(text: string): OrderedNode[] {
  checkNoDoctype(text);
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const at = valid.err.line === undefined || valid.err.col === undefined ? '' : `line ${valid.err.line} column ${valid.err.col}: `;
    refuse(PolicyRule.xml, XML_ELEMENT, `is not well-formed: ${at}${valid.err.msg}`);
  }
  try {
    return parser.parse(text) as OrderedNode[];
  } catch (error) {
    // Our decoder's refusals pass through; anything else is the parser's own refusal (depth, reserved names).
    if (error instanceof PolicyRefused) throw error;
    return refuse(PolicyRule.xml, XML_ELEMENT, `cannot be parsed: ${(error as Error).message}`);
  }
}

/** The single root element of an XML document, or a PolicyRefused thrown. */
export function parseXmlTree(input: string | Uint8Array): XmlElement {
  const builder = new TreeBuilder();
  const roots = parsed(checkedText(input)).map((node) => builder.element(node)).filter((n): n is XmlElement => typeof n !== 'string');
  const [root, ...others] = roots;
  if (root === undefined) return refuse(PolicyRule.xml, XML_ELEMENT, 'has no root element');
  if (others.length > 0) refuse(PolicyRule.xml, XML_ELEMENT, `has ${roots.length} root elements, one is allowed`);
  return root;
}

/** The one child NAME of an element, undefined when absent; two are ambiguous and refused. */
export function onlyChild(parent: XmlElement, name: string, label: string): XmlElement | undefined {
  const found = parent.children.filter((c) => c.name === name);
  if (found.length > 1) refuse(PolicyRule.xml, label, `has ${found.length} <${name}> elements, at most one is read`);
  return found[0];
}

export function childrenNamed(parent: XmlElement, name: string): XmlElement[] {
  return parent.children.filter((c) => c.name === name);
}
