// A small XML reader for JUnit output: elements with attributes and children, nesting checked,
// so tests can assert the shape CI tools read (testsuites › testsuite › testcase › failure|error).

/** An XML element. */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const unescape = (s: string) =>
  s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(
    /&amp;/g,
    "&",
  );

/** Parses a well-formed document (no DTD, CDATA or comments); throws on mismatched tags. */
export function parseXml(text: string): XmlElement {
  const body = text.replace(/^<\?xml[^?]*\?>\s*/, "");
  const root: XmlElement = { name: "#root", attrs: {}, children: [], text: "" };
  const stack = [root];
  const token = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+="[^"]*")*)\s*(\/?)>|([^<]+)/g;
  let m: RegExpExecArray | null;
  let consumed = 0;
  while ((m = token.exec(body))) {
    if (m.index !== consumed) {
      throw new Error(`unexpected text at ${consumed}: ${body.slice(consumed, consumed + 20)}`);
    }
    consumed = token.lastIndex;
    if (m[5] !== undefined) {
      stack.at(-1)!.text += unescape(m[5]);
      continue;
    }
    if (m[1]) {
      const open = stack.pop()!;
      if (open.name !== m[2]) throw new Error(`</${m[2]}> closes <${open.name}>`);
      continue;
    }
    const attrs: Record<string, string> = {};
    for (const a of m[3].matchAll(/([\w:.-]+)="([^"]*)"/g)) attrs[a[1]] = unescape(a[2]);
    const el: XmlElement = { name: m[2], attrs, children: [], text: "" };
    stack.at(-1)!.children.push(el);
    if (!m[4]) stack.push(el);
  }
  if (consumed !== body.length) throw new Error(`unparsed tail: ${body.slice(consumed, consumed + 20)}`);
  if (stack.length !== 1) throw new Error(`<${stack.at(-1)!.name}> is never closed`);
  const elements = root.children;
  if (elements.length !== 1) throw new Error(`expected one root element, found ${elements.length}`);
  return elements[0];
}

/**
 * Asserts the JUnit shape (the Jenkins/Surefire schema CI systems read) and returns the
 * counted totals: testsuites with tests/failures/errors equal to the sum of its suites, each
 * suite's counts equal to its testcases, each testcase with classname and name and at most
 * one failure or error, each of those with a message.
 */
export function checkJUnit(
  xml: string,
): { tests: number; failures: number; errors: number; root: XmlElement } {
  const root = parseXml(xml);
  if (root.name !== "testsuites") throw new Error(`root is <${root.name}>, not <testsuites>`);
  let tests = 0, failures = 0, errors = 0;
  for (const suite of root.children) {
    if (suite.name !== "testsuite") throw new Error(`<testsuites> holds <${suite.name}>`);
    if (!suite.attrs.name) throw new Error("a testsuite without a name");
    let t = 0, f = 0, e = 0;
    for (const tc of suite.children) {
      if (tc.name !== "testcase") throw new Error(`<testsuite> holds <${tc.name}>`);
      if (!tc.attrs.name || !tc.attrs.classname) throw new Error("a testcase without name or classname");
      t++;
      const bad = tc.children.filter((c) => c.name === "failure" || c.name === "error");
      if (bad.length > 1) throw new Error(`testcase ${tc.attrs.name} has ${bad.length} failures/errors`);
      for (const c of tc.children) {
        if (!["failure", "error", "skipped", "system-out", "system-err"].includes(c.name)) {
          throw new Error(`<testcase> holds <${c.name}>`);
        }
        if ((c.name === "failure" || c.name === "error") && !c.attrs.message) {
          throw new Error(`<${c.name}> without message`);
        }
      }
      if (bad[0]?.name === "failure") f++;
      if (bad[0]?.name === "error") e++;
    }
    for (const [k, v] of [["tests", t], ["failures", f], ["errors", e]] as const) {
      if (Number(suite.attrs[k]) !== v) {
        throw new Error(`suite ${suite.attrs.name}: ${k}="${suite.attrs[k]}", counted ${v}`);
      }
    }
    tests += t;
    failures += f;
    errors += e;
  }
  for (const [k, v] of [["tests", tests], ["failures", failures], ["errors", errors]] as const) {
    if (Number(root.attrs[k]) !== v) throw new Error(`testsuites: ${k}="${root.attrs[k]}", counted ${v}`);
  }
  return { tests, failures, errors, root };
}
