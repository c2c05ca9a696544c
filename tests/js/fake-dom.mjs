// A very small stand-in for the browser's document, enough for el() and svg():
// elements with attributes, dataset, listeners and children, where a string
// child becomes a text node (as append() does in a browser). Not a DOM: the
// browser tests (tests/e2e) run the pages in Chromium.

class Text {
  constructor(data) { this.data = String(data); }
  get textContent() { return this.data; }
  serialize() { return this.data.replace(/&/g, "&amp;").replace(/</g, "&lt;"); }
}

export class FakeElement {
  constructor(tag, namespace = null) {
    this.tagName = tag;
    this.namespace = namespace;
    this.attributes = new Map();
    this.children = [];
    this.listeners = {};
    this.hidden = false;
    const element = this;
    this.dataset = new Proxy({}, {
      set(target, key, value) { element.attributes.set(`data-${key}`, String(value)); return true; },
      get(target, key) { return element.attributes.get(`data-${String(key)}`); },
    });
  }
  setAttribute(name, value) { this.attributes.set(name, String(value)); }
  getAttribute(name) { return this.attributes.has(name) ? this.attributes.get(name) : null; }
  addEventListener(type, listener) { (this.listeners[type] ||= []).push(listener); }
  append(...nodes) { this.children.push(...nodes.map((n) => (n instanceof FakeElement ? n : new Text(n)))); }
  replaceChildren(...nodes) { this.children = []; this.append(...nodes); }
  prepend(...nodes) { this.children.unshift(...nodes.map((n) => (n instanceof FakeElement ? n : new Text(n)))); }
  remove() { this.removed = true; }
  get textContent() { return this.children.map((c) => c.textContent).join(""); }
  set textContent(value) { this.children = [new Text(value)]; }
  // Elements (not text) below this one, depth first, that have this tag.
  findAll(tag) {
    return this.children.filter((c) => c instanceof FakeElement)
      .flatMap((c) => [...(c.tagName === tag ? [c] : []), ...c.findAll(tag)]);
  }
  serialize() {
    const attrs = [...this.attributes].map(([k, v]) => ` ${k}="${v.replace(/"/g, "&quot;")}"`).join("");
    return `<${this.tagName}${attrs}>${this.children.map((c) => c.serialize()).join("")}</${this.tagName}>`;
  }
}

export function installFakeDocument() {
  globalThis.document = {
    createElement: (tag) => new FakeElement(tag),
    createElementNS: (namespace, tag) => new FakeElement(tag, namespace),
  };
}
