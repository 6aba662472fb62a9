// A job summary (the HTML @actions/core's summary writes) rendered for a terminal: headings
// underlined, tables as aligned columns, lists as bullets, entities decoded, no tags left. Used by
// `npm run demo`, where a person reads the summary the Actions UI would show.

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };

export function decode(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|\w+);/gi, (all, e: string) => {
    if (e[0] === '#')
      return String.fromCodePoint(e[1]?.toLowerCase() === 'x' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
    return ENTITIES[e.toLowerCase()] ?? all;
  });
}

/** Inline HTML to text: <br> is a line break, every other tag goes. */
function inline(html: string): string {
  return decode(html.replace(/<br\s*\/?>/gi, '\n').replace(/<[^>]+>/g, ''));
}

function table(html: string): string {
  const rows = [...html.matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/gi)].map((r) => ({
    header: /<th[\s>]/i.test(r[1] ?? ''),
    cells: [...(r[1] ?? '').matchAll(/<t([hd])[^>]*>([\s\S]*?)<\/t\1>/gi)].map((c) =>
      inline(c[2] ?? '')
        .replace(/\s+/g, ' ')
        .trim(),
    ),
  }));
  const widths: number[] = [];
  for (const r of rows) r.cells.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  const line = (cells: string[]) =>
    `  ${cells.map((c, i) => c + ' '.repeat((widths[i] ?? 0) - [...c].length)).join('  ')}`.trimEnd();
  const out: string[] = [];
  for (const r of rows) {
    out.push(line(r.cells));
    if (r.header) out.push(line(widths.map((w) => '─'.repeat(w))));
  }
  return `\n${out.join('\n')}\n\n`;
}

const BLOCK = /<table[^>]*>([\s\S]*?)<\/table>|<h([1-6])[^>]*>([\s\S]*?)<\/h\2>|<(ul|ol)[^>]*>([\s\S]*?)<\/\4>/gi;

function block(m: RegExpMatchArray): string {
  if (m[1] !== undefined) return table(m[1]);
  if (m[3] !== undefined) {
    const title = inline(m[3]).trim();
    return `${title}\n${'═'.repeat([...title].length)}\n`;
  }
  const items = [...(m[5] ?? '').matchAll(/<li[^>]*>([\s\S]*?)<\/li>/gi)];
  return `${items.map((li, k) => `  ${m[4]?.toLowerCase() === 'ol' ? `${k + 1}.` : '•'} ${inline(li[1] ?? '').trim()}`).join('\n')}\n`;
}

/** Blocks (tables, headings, lists) are laid out; the text between them only loses its tags. Entities are decoded once. */
export function renderSummary(html: string): string {
  let out = '';
  let last = 0;
  for (const m of html.matchAll(BLOCK)) {
    out += inline(html.slice(last, m.index).replace(/<\/?(p|div|details|summary)[^>]*>/gi, '\n'));
    out += block(m);
    last = (m.index ?? 0) + m[0].length;
  }
  out += inline(html.slice(last));
  return out.replace(/\n{3,}/g, '\n\n').trim();
}
