// What people type into the audit page's filters, turned into what the gatekeeper
// searches for: a person by the name the log shows (or their username) → `sub`;
// a ticket by its number, or its id with or without dashes → `key_prefix`;
// an address → `client_ip`, an address range in CIDR form → `client_net`.
// Pure functions; the page supplies its people and asks the portal for numbers.

const SUBJECT = /^(user|agent|support):\S+$/;
const UUID_DASHED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_HEX = /^[0-9a-f]{32}$/i;
const NUMBER = /^#?\s*(\d{1,9})$/;

export class LookupError extends Error {}

// people: [{sub, names: [...]}] from the page (members and agent tokens).
export function resolveSubject(text, people) {
  const value = text.trim();
  if (!value || SUBJECT.test(value)) return value;
  const wanted = value.toLowerCase();
  const found = people.filter((p) => p.names.some((n) => n && n.toLowerCase() === wanted));
  const subs = [...new Set(found.map((p) => p.sub))];
  if (subs.length === 1) return subs[0];
  if (subs.length > 1) throw new LookupError(`Several people are called “${value}”: use their subject (${subs.join(", ")}).`);
  throw new LookupError(`No member or agent token is called “${value}”. Give a name as the log shows it, or user:<id> / agent:<id>.`);
}

// {prefix} for a ticket id (tickets/<32 hex>/), {number} for a ticket number,
// {prefix: text} for anything else (a key prefix as it is).
export function ticketFilter(text) {
  const value = text.trim();
  if (UUID_DASHED.test(value) || UUID_HEX.test(value)) return { prefix: `tickets/${value.replace(/-/g, "").toLowerCase()}/` };
  const number = NUMBER.exec(value);
  if (number) return { number: Number(number[1]) };
  return { prefix: value };
}

// {client_net} for a range ("10.0.0.0/8"), {client_ip} for anything else. The
// gatekeeper checks either strictly and says what is wrong (host bits set, say).
export function addressFilter(text) {
  const value = text.trim();
  return value.includes("/") ? { client_net: value } : { client_ip: value };
}
